/* neighbor.c - neighbourhood collectives: Neighbor_allgather(v),
 * Neighbor_alltoall(v,w) and Ineighbor_alltoall on a periodic ring (a
 * Cartesian communicator: at 1 and 2 ranks both neighbours are one process),
 * on a non-periodic 2-D grid (MPI_PROC_NULL neighbours leave their receive
 * blocks untouched), and on a distributed graph with an edge to the right
 * only. Every block says who sent it and for which direction. */
#define TEST_NAME "neighbor"
#include "check.h"

#define K 3 /* ints per block */

static int rank, size;

/* what `src` puts in its send block `b` (element k) */
static int val(int src, int b, int k) { return src * 1000 + b * 10 + k; }

/* Periodic ring: sources and destinations are [left, right]. Block 0 goes
 * left, block 1 right; what arrives from the left (receive block 0) is the
 * left neighbour's block for its right (its block 1), and the other way. */
static void check_ring(void)
{
    int dims[1], periods[1] = {1}, left, right, i, k, b;
    int sbuf[2 * K], rbuf[2 * K], one[K], counts[2] = {K, K}, displs[2] = {0, K};
    MPI_Aint wdispls[2] = {0, K * (MPI_Aint)sizeof(int)};
    MPI_Datatype types[2] = {MPI_INT, MPI_INT};
    MPI_Comm ring;
    MPI_Request rq;

    dims[0] = size;
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 1, dims, periods, 0, &ring));
    CHECK_MPI(MPI_Cart_shift(ring, 0, 1, &left, &right));
    for (b = 0; b < 2; b++)
        for (k = 0; k < K; k++)
            sbuf[b * K + k] = val(rank, b, k);

    /* allgather: the same block to both */
    for (k = 0; k < K; k++)
        one[k] = val(rank, 7, k);
    CHECK_MPI(MPI_Neighbor_allgather(one, K, MPI_INT, rbuf, K, MPI_INT, ring));
    for (k = 0; k < K; k++) {
        CHECK_EQ_INT(rbuf[k], val(left, 7, k), "ring allgather from the left");
        CHECK_EQ_INT(rbuf[K + k], val(right, 7, k),
                     "ring allgather from the right");
    }
    for (i = 0; i < 2 * K; i++)
        rbuf[i] = -1;
    CHECK_MPI(MPI_Neighbor_allgatherv(one, K, MPI_INT, rbuf, counts, displs,
                                      MPI_INT, ring));
    CHECK_EQ_INT(rbuf[K], val(right, 7, 0), "ring allgatherv from the right");

    /* alltoall and its v, w and non-blocking forms */
    for (i = 0; i < 4; i++) {
        const char *what[4] = {"alltoall", "alltoallv", "alltoallw",
                               "ialltoall"};
        for (k = 0; k < 2 * K; k++)
            rbuf[k] = -1;
        switch (i) {
        case 0:
            CHECK_MPI(MPI_Neighbor_alltoall(sbuf, K, MPI_INT, rbuf, K, MPI_INT,
                                            ring));
            break;
        case 1:
            CHECK_MPI(MPI_Neighbor_alltoallv(sbuf, counts, displs, MPI_INT, rbuf,
                                             counts, displs, MPI_INT, ring));
            break;
        case 2:
            CHECK_MPI(MPI_Neighbor_alltoallw(sbuf, counts, wdispls, types, rbuf,
                                             counts, wdispls, types, ring));
            break;
        default:
            CHECK_MPI(MPI_Ineighbor_alltoall(sbuf, K, MPI_INT, rbuf, K, MPI_INT,
                                             ring, &rq));
            CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
        }
        /* At 1 and 2 ranks the left and right neighbour are one process:
         * the block it sent rightwards is the one from the left (MPI-4.0
         * 7.6 made this explicit). MPICH 4.0 pairs them the other way in
         * Neighbor_alltoallv/w, Open MPI 4.1 in Ineighbor_alltoall. */
        if (size <= 2) {
            DEVIATION("neighbor-periodic-pair")
            for (k = 0; k < K; k++) {
                CHECK_EQ_INT(rbuf[k], val(left, 1, k),
                             "ring %s: from the left, int %d", what[i], k);
                CHECK_EQ_INT(rbuf[K + k], val(right, 0, k),
                             "ring %s: from the right, int %d", what[i], k);
            }
        } else {
            for (k = 0; k < K; k++) {
                CHECK_EQ_INT(rbuf[k], val(left, 1, k),
                             "ring %s: from the left, int %d", what[i], k);
                CHECK_EQ_INT(rbuf[K + k], val(right, 0, k),
                             "ring %s: from the right, int %d", what[i], k);
            }
        }
    }
    CHECK_MPI(MPI_Comm_free(&ring));
}

/* A non-periodic 2-D grid: neighbours past an edge are MPI_PROC_NULL and
 * their receive blocks stay as they were. */
static void check_grid(void)
{
    int dims[2] = {0, 0}, periods[2] = {0, 0}, nb[4], d, k;
    int sbuf[4 * K], rbuf[4 * K];
    MPI_Comm grid;

    CHECK_MPI(MPI_Dims_create(size, 2, dims));
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &grid));
    CHECK_MPI(MPI_Cart_shift(grid, 0, 1, &nb[0], &nb[1]));
    CHECK_MPI(MPI_Cart_shift(grid, 1, 1, &nb[2], &nb[3]));
    for (d = 0; d < 4; d++)
        for (k = 0; k < K; k++) {
            sbuf[d * K + k] = val(rank, d, k);
            rbuf[d * K + k] = -1;
        }
    CHECK_MPI(MPI_Neighbor_alltoall(sbuf, K, MPI_INT, rbuf, K, MPI_INT, grid));
    for (d = 0; d < 4; d++)
        for (k = 0; k < K; k++) {
            /* from the negative side comes that neighbour's positive block */
            int want = nb[d] == MPI_PROC_NULL ? -1 : val(nb[d], d ^ 1, k);
            CHECK_EQ_INT(rbuf[d * K + k], want, "grid: block %d int %d", d, k);
        }
    CHECK_MPI(MPI_Comm_free(&grid));
}

/* A distributed graph with one edge, to the right. */
static void check_dist_graph(void)
{
    int left = (rank + size - 1) % size, right = (rank + 1) % size, k;
    int sbuf[K], rbuf[K];
    MPI_Comm dg;
    MPI_Request rq;

    CHECK_MPI(MPI_Dist_graph_create_adjacent(
        MPI_COMM_WORLD, 1, &left, MPI_UNWEIGHTED, 1, &right, MPI_UNWEIGHTED,
        MPI_INFO_NULL, 0, &dg));
    for (k = 0; k < K; k++) {
        sbuf[k] = val(rank, 5, k);
        rbuf[k] = -1;
    }
    CHECK_MPI(MPI_Ineighbor_alltoall(sbuf, K, MPI_INT, rbuf, K, MPI_INT, dg,
                                     &rq));
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    for (k = 0; k < K; k++)
        CHECK_EQ_INT(rbuf[k], val(left, 5, k), "dist graph: int %d", k);
    CHECK_MPI(MPI_Comm_free(&dg));
}

int main(int argc, char **argv)
{
    int x = 0, y;
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    check_ring();
    check_grid();
    check_dist_graph();
    /* no topology: an error */
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    /* Open MPI 4.1 returns MPI_ERR_INTERN */
    DEVIATION("ompi-neighbor-no-topology")
        CHECK_ERR_CLASS(MPI_Neighbor_allgather(&x, 1, MPI_INT, &y, 1, MPI_INT,
                                               MPI_COMM_WORLD),
                        MPI_ERR_TOPOLOGY);
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
    return zr_finish();
}
