/* coll_nb.c - nonblocking collectives: Ibarrier (cannot complete while one
 * rank has not started it - made deterministic), Ibcast (every root), Ireduce
 * (every root), Iallreduce (with and without MPI_IN_PLACE), Iscan, Iexscan,
 * Igather, Iscatter, Iallgather, Ialltoall, Ireduce_scatter_block; several
 * nonblocking collectives outstanding at once, completed in reverse order or
 * by Testall polling, overlapped with point-to-point traffic. */
#define TEST_NAME "coll_nb"
#include "check.h"

static int rank, size;
static const int counts[] = {0, 1, 7, 1000, 262147};
#define NCOUNTS ((int)(sizeof counts / sizeof counts[0]))
#define MAXN 262147

static int in(int r, int i) { return 3 * r + i; }
static long long sum_upto(int nranks, int i) /* sum over r < nranks */
{
    return 3LL * nranks * (nranks - 1) / 2 + (long long)nranks * i;
}
static int bpat(int root, int i) { return root * 1000 + (i * 7) % 997; }

static int *a, *b;

static void check_ibarrier(void)
{
    MPI_Request rq;
    int flag = -1, r, x = 1;

    if (rank != 0) {
        CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Test(&rq, &flag, MPI_STATUS_IGNORE));
        CHECK_EQ_INT(flag, 0, "Ibarrier completed before rank 0 started it");
        CHECK_MPI(MPI_Send(&x, 1, MPI_INT, 0, 1, MPI_COMM_WORLD));
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    } else {
        for (r = 1; r < size; r++)
            CHECK_MPI(MPI_Recv(&x, 1, MPI_INT, MPI_ANY_SOURCE, 1,
                               MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &rq));
        do {
            CHECK_MPI(MPI_Test(&rq, &flag, MPI_STATUS_IGNORE));
        } while (!flag);
        CHECK(rq == MPI_REQUEST_NULL, "Test(Ibarrier) did not free request");
    }
}

static void check_ibcast_ireduce(void)
{
    int root, c, n, i, ip;
    MPI_Request rq;

    for (root = 0; root < size; root++)
        for (c = 0; c < NCOUNTS; c++) {
            n = counts[c];
            if (n > 1000 && root != 0 && root != size - 1)
                continue;
            for (i = 0; i < n; i++)
                a[i] = rank == root ? bpat(root, i) : -1;
            CHECK_MPI(MPI_Ibcast(a, n, MPI_INT, root, MPI_COMM_WORLD, &rq));
            CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
            for (i = 0; i < n; i++)
                if (a[i] != bpat(root, i))
                    CHECK_EQ_INT(a[i], bpat(root, i),
                                 "Ibcast root %d count %d elem %d", root, n, i);

            for (ip = 0; ip < 2; ip++) {
                for (i = 0; i < n; i++) {
                    a[i] = in(rank, i);
                    b[i] = a[i];
                }
                /* MPICH 4.0.2 crashes in the blocking MPI_Reduce with
                 * MPI_IN_PLACE at root != 0 (pmodels/mpich#6540); the
                 * nonblocking one is checked in full. */
                CHECK_MPI(MPI_Ireduce(ip && rank == root ? MPI_IN_PLACE : a, b,
                                      n, MPI_INT, MPI_SUM, root,
                                      MPI_COMM_WORLD, &rq));
                CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
                if (rank == root)
                    for (i = 0; i < n; i++)
                        if (b[i] != sum_upto(size, i))
                            CHECK_EQ_INT(b[i], sum_upto(size, i),
                                         "Ireduce%s root %d count %d elem %d",
                                         ip ? "(IN_PLACE)" : "", root, n, i);
            }
        }
}

static void check_iallreduce_iscan(void)
{
    int c, n, i, ip;
    MPI_Request rq;

    for (c = 0; c < NCOUNTS; c++)
        for (ip = 0; ip < 2; ip++) {
            n = counts[c];
            for (i = 0; i < n; i++)
                b[i] = a[i] = in(rank, i);
            CHECK_MPI(MPI_Iallreduce(ip ? MPI_IN_PLACE : a, b, n, MPI_INT,
                                     MPI_SUM, MPI_COMM_WORLD, &rq));
            CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
            for (i = 0; i < n; i++)
                if (b[i] != sum_upto(size, i))
                    CHECK_EQ_INT(b[i], sum_upto(size, i),
                                 "Iallreduce%s count %d elem %d",
                                 ip ? "(IN_PLACE)" : "", n, i);

            for (i = 0; i < n; i++)
                b[i] = a[i] = in(rank, i);
            CHECK_MPI(MPI_Iscan(ip ? MPI_IN_PLACE : a, b, n, MPI_INT, MPI_SUM,
                                MPI_COMM_WORLD, &rq));
            CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
            for (i = 0; i < n; i++)
                if (b[i] != sum_upto(rank + 1, i))
                    CHECK_EQ_INT(b[i], sum_upto(rank + 1, i),
                                 "Iscan%s count %d elem %d",
                                 ip ? "(IN_PLACE)" : "", n, i);

            for (i = 0; i < n; i++)
                b[i] = a[i] = in(rank, i);
            CHECK_MPI(MPI_Iexscan(ip ? MPI_IN_PLACE : a, b, n, MPI_INT,
                                  MPI_SUM, MPI_COMM_WORLD, &rq));
            CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
            if (rank > 0)
                for (i = 0; i < n; i++)
                    if (b[i] != sum_upto(rank, i))
                        CHECK_EQ_INT(b[i], sum_upto(rank, i),
                                     "Iexscan%s count %d elem %d",
                                     ip ? "(IN_PLACE)" : "", n, i);
        }
}

static void check_data_movement(void)
{
    const int n = 513;
    int root, i, r;
    MPI_Request rq;

    for (root = 0; root < size; root++) {
        for (i = 0; i < n; i++)
            a[i] = rank * 10007 + i;
        CHECK_MPI(MPI_Igather(a, n, MPI_INT, b, n, MPI_INT, root,
                              MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
        if (rank == root)
            for (r = 0; r < size; r++)
                for (i = 0; i < n; i++)
                    CHECK_EQ_INT(b[r * n + i], r * 10007 + i,
                                 "Igather root %d from %d elem %d", root, r, i);
        if (rank == root)
            for (i = 0; i < n * size; i++)
                a[i] = root * 7 + i;
        CHECK_MPI(MPI_Iscatter(a, n, MPI_INT, b, n, MPI_INT, root,
                               MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
        for (i = 0; i < n; i++)
            CHECK_EQ_INT(b[i], root * 7 + rank * n + i,
                         "Iscatter root %d elem %d", root, i);
    }

    for (i = 0; i < n; i++)
        a[i] = rank * 10007 + i;
    CHECK_MPI(MPI_Iallgather(a, n, MPI_INT, b, n, MPI_INT, MPI_COMM_WORLD,
                             &rq));
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    for (r = 0; r < size; r++)
        for (i = 0; i < n; i++)
            CHECK_EQ_INT(b[r * n + i], r * 10007 + i,
                         "Iallgather from %d elem %d", r, i);

    for (r = 0; r < size; r++)
        for (i = 0; i < n; i++)
            a[r * n + i] = rank * 100 + r + i * 10000;
    CHECK_MPI(MPI_Ialltoall(a, n, MPI_INT, b, n, MPI_INT, MPI_COMM_WORLD,
                            &rq));
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    for (r = 0; r < size; r++)
        for (i = 0; i < n; i++)
            CHECK_EQ_INT(b[r * n + i], r * 100 + rank + i * 10000,
                         "Ialltoall from %d elem %d", r, i);

    for (i = 0; i < n * size; i++)
        a[i] = in(rank, i);
    CHECK_MPI(MPI_Ireduce_scatter_block(a, b, n, MPI_INT, MPI_SUM,
                                        MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    for (i = 0; i < n; i++)
        CHECK_EQ_INT(b[i], sum_upto(size, rank * n + i),
                     "Ireduce_scatter_block elem %d", i);
}

/* Several collectives in flight at once (issued in the same order by every
 * rank), completed in reverse order / by polling, with p2p in between. */
static void check_concurrent(void)
{
    enum { N = 4096 };
    int *x = a, *y = a + N, *z = a + 2 * N, *w = a + 3 * N, *al = a + 4 * N;
    int *alr = b, i, r, flag = 0, round, out, inn = -1;
    int right = (rank + 1) % size, left = (rank + size - 1) % size;
    MPI_Request rq[5];

    for (round = 0; round < 2; round++) {
        for (i = 0; i < N; i++) {
            x[i] = rank == 0 ? bpat(0, i) : -1;
            y[i] = in(rank, i);
            z[i] = rank == size - 1 ? bpat(size - 1, i) : -1;
        }
        for (r = 0; r < size; r++)
            for (i = 0; i < 8; i++)
                al[r * 8 + i] = rank * 100 + r + i * 10000;
        CHECK_MPI(MPI_Ibcast(x, N, MPI_INT, 0, MPI_COMM_WORLD, &rq[0]));
        CHECK_MPI(MPI_Iallreduce(y, w, N, MPI_INT, MPI_SUM, MPI_COMM_WORLD,
                                 &rq[1]));
        CHECK_MPI(MPI_Ibcast(z, N, MPI_INT, size - 1, MPI_COMM_WORLD,
                             &rq[2]));
        CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &rq[3]));
        CHECK_MPI(MPI_Ialltoall(al, 8, MPI_INT, alr, 8, MPI_INT,
                                MPI_COMM_WORLD, &rq[4]));
        /* point-to-point on the same communicator meanwhile */
        out = rank;
        CHECK_MPI(MPI_Sendrecv(&out, 1, MPI_INT, right, 5, &inn, 1, MPI_INT,
                               left, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        CHECK_EQ_INT(inn, left, "Sendrecv during nonblocking collectives");
        if (round == 0) {
            for (i = 4; i >= 0; i--)
                CHECK_MPI(MPI_Wait(&rq[i], MPI_STATUS_IGNORE));
        } else {
            do {
                CHECK_MPI(MPI_Testall(5, rq, &flag, MPI_STATUSES_IGNORE));
            } while (!flag);
        }
        for (i = 0; i < N; i++) {
            CHECK_EQ_INT(x[i], bpat(0, i), "concurrent Ibcast(0) elem %d", i);
            CHECK_EQ_INT(z[i], bpat(size - 1, i),
                         "concurrent Ibcast(last) elem %d", i);
            CHECK_EQ_INT(w[i], sum_upto(size, i),
                         "concurrent Iallreduce elem %d", i);
        }
        for (r = 0; r < size; r++)
            for (i = 0; i < 8; i++)
                CHECK_EQ_INT(alr[r * 8 + i], r * 100 + rank + i * 10000,
                             "concurrent Ialltoall from %d elem %d", r, i);
    }
}

int main(int argc, char **argv)
{
    size_t n;
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    n = (size_t)MAXN + 1;
    if (n < (size_t)513 * size + 1)
        n = (size_t)513 * size + 1;
    if (n < 4 * 4096 + 8 * (size_t)size)
        n = 4 * 4096 + 8 * (size_t)size;
    a = malloc(sizeof(int) * n);
    b = malloc(sizeof(int) * n);

    check_ibarrier();
    check_ibcast_ireduce();
    check_iallreduce_iscan();
    check_data_movement();
    check_concurrent();
    free(a);
    free(b);
    return zr_finish();
}
