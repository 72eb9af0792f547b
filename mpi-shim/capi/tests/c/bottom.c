/* bottom.c - MPI_BOTTOM with a datatype of absolute addresses (built from
 * MPI_Get_address) in the calls that stage or check buffers themselves:
 * Send_init / Recv_init, Mrecv, Alltoallw and Neighbor_alltoallw. */
#define TEST_NAME "bottom"
#include "check.h"

static int rank, size, left, right;

/* A type whose one block is the 3 ints at `p`, by absolute address. */
static MPI_Datatype absolute(int *p)
{
    MPI_Aint at;
    int len = 3;
    MPI_Datatype t;
    CHECK_MPI(MPI_Get_address(p, &at));
    CHECK_MPI(MPI_Type_create_struct(1, &len, &at, (MPI_Datatype[]){MPI_INT}, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    return t;
}

static void check3(const int *got, int src, int tag, const char *what)
{
    int k;
    for (k = 0; k < 3; k++)
        CHECK_EQ_INT(got[k], src * 100 + tag * 10 + k, "%s: int %d", what, k);
}

static void fill3(int *b, int tag)
{
    int k;
    for (k = 0; k < 3; k++)
        b[k] = rank * 100 + tag * 10 + k;
}

int main(int argc, char **argv)
{
    int out[3], in[3], *sc, *rc, *sd, *rd, i;
    MPI_Datatype to, ti, *st, *rt;
    MPI_Request rq[2];
    MPI_Message m;
    MPI_Comm ring;

    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;
    to = absolute(out);
    ti = absolute(in);

    /* persistent */
    fill3(out, 1);
    CHECK_MPI(MPI_Recv_init(MPI_BOTTOM, 1, ti, left, 1, MPI_COMM_WORLD, &rq[0]));
    CHECK_MPI(MPI_Send_init(MPI_BOTTOM, 1, to, right, 1, MPI_COMM_WORLD, &rq[1]));
    CHECK_MPI(MPI_Startall(2, rq));
    CHECK_MPI(MPI_Waitall(2, rq, MPI_STATUSES_IGNORE));
    check3(in, left, 1, "Send_init/Recv_init at MPI_BOTTOM");
    CHECK_MPI(MPI_Request_free(&rq[0]));
    CHECK_MPI(MPI_Request_free(&rq[1]));

    /* matched receive */
    fill3(out, 2);
    CHECK_MPI(MPI_Isend(out, 3, MPI_INT, right, 2, MPI_COMM_WORLD, &rq[0]));
    CHECK_MPI(MPI_Mprobe(left, 2, MPI_COMM_WORLD, &m, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Mrecv(MPI_BOTTOM, 1, ti, &m, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Wait(&rq[0], MPI_STATUS_IGNORE));
    check3(in, left, 2, "Mrecv at MPI_BOTTOM");

    /* Alltoallw: nothing to anyone but the right neighbour */
    sc = calloc(size, sizeof(int));
    rc = calloc(size, sizeof(int));
    sd = calloc(size, sizeof(int));
    rd = calloc(size, sizeof(int));
    st = malloc(sizeof(MPI_Datatype) * size);
    rt = malloc(sizeof(MPI_Datatype) * size);
    for (i = 0; i < size; i++) {
        st[i] = to;
        rt[i] = ti;
    }
    sc[right] = 1;
    rc[left] = 1;
    fill3(out, 3);
    CHECK_MPI(MPI_Alltoallw(MPI_BOTTOM, sc, sd, st, MPI_BOTTOM, rc, rd, rt,
                            MPI_COMM_WORLD));
    check3(in, left, 3, "Alltoallw at MPI_BOTTOM");

    /* Neighbor_alltoallw on a one-way distributed graph */
    {
        int one = 1;
        MPI_Aint zero = 0;
        CHECK_MPI(MPI_Dist_graph_create_adjacent(
            MPI_COMM_WORLD, 1, &left, MPI_UNWEIGHTED, 1, &right, MPI_UNWEIGHTED,
            MPI_INFO_NULL, 0, &ring));
        fill3(out, 4);
        CHECK_MPI(MPI_Neighbor_alltoallw(MPI_BOTTOM, &one, &zero, &to,
                                         MPI_BOTTOM, &one, &zero, &ti, ring));
        check3(in, left, 4, "Neighbor_alltoallw at MPI_BOTTOM");
        CHECK_MPI(MPI_Comm_free(&ring));
    }
    free(sc);
    free(rc);
    free(sd);
    free(rd);
    free(st);
    free(rt);
    CHECK_MPI(MPI_Type_free(&to));
    CHECK_MPI(MPI_Type_free(&ti));
    return zr_finish();
}
