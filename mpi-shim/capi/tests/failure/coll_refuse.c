/* coll_refuse.c - one rank passes an invalid argument to a collective that the other ranks
 * call correctly (an erroneous program), under MPI_ERRORS_RETURN.
 *
 * usage: coll_refuse [across]
 *
 * For every blocking collective and for MPI_Ibcast and MPI_Iallreduce, first the last rank
 * and then rank 0 (the root of the rooted ones) passes MPI_DATATYPE_NULL. That rank must
 * get MPI_ERR_TYPE; the others must get MPI_SUCCESS or MPI_ERR_TRUNCATE, nobody may hang,
 * and MPI_COMM_WORLD must work afterwards. MPI_Ibarrier's bad argument is a null request.
 *
 * With "across" (ranks on several nodes, where every collective starts with the ranks'
 * agreement on the call), the others must get MPI_ERR_TRUNCATE, and the bad rank also
 * passes roots outside the communicator (size + 3, then -1) to MPI_Bcast, MPI_Reduce,
 * MPI_Gather and MPI_Scatter and must get MPI_ERR_ROOT. The non-blocking calls always
 * start with the agreement, so their other ranks get MPI_ERR_TRUNCATE on one node too.
 * Rank 0 prints "OK coll_refuse". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 3000 /* elements per block: more than one 4 KiB publication, and a stream */

static int rank, size;

static void fail(const char *what, int code, const char *expected)
{
    fprintf(stderr, "FAIL coll_refuse: [rank %d] %s returned %d, expected %s\n", rank, what,
            code, expected);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* The bad rank gets `own`; the others MPI_ERR_TRUNCATE (`told`) or also MPI_SUCCESS. */
static void judge_as(const char *what, int code, int bad, int own, int told)
{
    int cls = code;
    if (code != MPI_SUCCESS)
        MPI_Error_class(code, &cls);
    if (bad ? cls != own : (cls != MPI_ERR_TRUNCATE && (told || cls != MPI_SUCCESS)))
        fail(what, code,
             bad ? "its own error" : told ? "MPI_ERR_TRUNCATE" : "MPI_SUCCESS or MPI_ERR_TRUNCATE");
    {
        int one = 1, all = 0, k = MPI_Allreduce(&one, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        if (k != MPI_SUCCESS || all != size)
            fail("MPI_Allreduce after a refused call", k, "MPI_SUCCESS");
    }
}

static int across;

static void judge(const char *what, int code, int bad)
{
    judge_as(what, code, bad, MPI_ERR_TYPE, across);
}

/* A non-blocking call: its start's error (the bad rank) or its completion's. */
static void judge_started(const char *what, int code, MPI_Request *req, int bad)
{
    if (code == MPI_SUCCESS && !bad)
        code = MPI_Wait(req, MPI_STATUS_IGNORE);
    judge_as(what, code, bad, bad && req == NULL ? MPI_ERR_ARG : MPI_ERR_TYPE, 1);
}

int main(int argc, char **argv)
{
    int odd, i, *counts, *displs;
    int *a, *b;
    setvbuf(stdout, NULL, _IONBF, 0);
    MPI_Init(&argc, &argv);
    across = argc > 1 && strcmp(argv[1], "across") == 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    a = calloc((size_t)N * size, sizeof(int));
    b = calloc((size_t)N * size, sizeof(int));
    counts = malloc(sizeof(int) * size);
    displs = malloc(sizeof(int) * size);
    if (!a || !b || !counts || !displs)
        fail("malloc", 0, "memory");
    for (i = 0; i < size; i++) {
        counts[i] = N;
        displs[i] = i * N;
    }
    for (odd = size - 1;; odd = 0) {
        int bad = rank == odd;
        MPI_Datatype t = bad ? MPI_DATATYPE_NULL : MPI_INT;
        judge("MPI_Bcast", MPI_Bcast(a, N, t, 0, MPI_COMM_WORLD), bad);
        judge("MPI_Reduce", MPI_Reduce(a, b, N, t, MPI_SUM, 0, MPI_COMM_WORLD), bad);
        judge("MPI_Allreduce", MPI_Allreduce(a, b, N, t, MPI_SUM, MPI_COMM_WORLD), bad);
        judge("MPI_Scan", MPI_Scan(a, b, N, t, MPI_SUM, MPI_COMM_WORLD), bad);
        judge("MPI_Exscan", MPI_Exscan(a, b, N, t, MPI_SUM, MPI_COMM_WORLD), bad);
        judge("MPI_Reduce_scatter_block",
              MPI_Reduce_scatter_block(a, b, N / size, t, MPI_SUM, MPI_COMM_WORLD), bad);
        judge("MPI_Reduce_scatter",
              MPI_Reduce_scatter(a, b, counts, t, MPI_SUM, MPI_COMM_WORLD), bad);
        judge("MPI_Gather", MPI_Gather(a, N, t, b, N, t, 0, MPI_COMM_WORLD), bad);
        judge("MPI_Gatherv", MPI_Gatherv(a, N, t, b, counts, displs, t, 0, MPI_COMM_WORLD), bad);
        judge("MPI_Scatter", MPI_Scatter(a, N, t, b, N, t, 0, MPI_COMM_WORLD), bad);
        judge("MPI_Scatterv",
              MPI_Scatterv(a, counts, displs, t, b, N, t, 0, MPI_COMM_WORLD), bad);
        judge("MPI_Allgather", MPI_Allgather(a, N, t, b, N, t, MPI_COMM_WORLD), bad);
        judge("MPI_Allgatherv",
              MPI_Allgatherv(a, N, t, b, counts, displs, t, MPI_COMM_WORLD), bad);
        judge("MPI_Alltoall", MPI_Alltoall(a, N, t, b, N, t, MPI_COMM_WORLD), bad);
        judge("MPI_Alltoallv",
              MPI_Alltoallv(a, counts, displs, t, b, counts, displs, t, MPI_COMM_WORLD), bad);
        {
            MPI_Request req = MPI_REQUEST_NULL;
            judge_started("MPI_Ibcast", MPI_Ibcast(a, N, t, 0, MPI_COMM_WORLD, &req), &req, bad);
            judge_started("MPI_Iallreduce",
                          MPI_Iallreduce(a, b, N, t, MPI_SUM, MPI_COMM_WORLD, &req), &req, bad);
            judge_started("MPI_Ibarrier",
                          MPI_Ibarrier(MPI_COMM_WORLD, bad ? NULL : &req), bad ? NULL : &req,
                          bad);
        }
        if (across) {
            int roots[2] = {size + 3, -1}, k;
            for (k = 0; k < 2; k++) {
                int root = bad ? roots[k] : 0;
                judge_as("MPI_Bcast with a bad root",
                         MPI_Bcast(a, N, MPI_INT, root, MPI_COMM_WORLD), bad, MPI_ERR_ROOT, 1);
                judge_as("MPI_Reduce with a bad root",
                         MPI_Reduce(a, b, N, MPI_INT, MPI_SUM, root, MPI_COMM_WORLD), bad,
                         MPI_ERR_ROOT, 1);
                judge_as("MPI_Gather with a bad root",
                         MPI_Gather(a, N, MPI_INT, b, N, MPI_INT, root, MPI_COMM_WORLD), bad,
                         MPI_ERR_ROOT, 1);
                judge_as("MPI_Scatter with a bad root",
                         MPI_Scatter(a, N, MPI_INT, b, N, MPI_INT, root, MPI_COMM_WORLD), bad,
                         MPI_ERR_ROOT, 1);
            }
        }
        if (odd == 0)
            break;
    }
    if (rank == 0)
        printf("OK coll_refuse\n");
    free(a);
    free(b);
    free(counts);
    free(displs);
    MPI_Finalize();
    return 0;
}
