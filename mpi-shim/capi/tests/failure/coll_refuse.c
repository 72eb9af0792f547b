/* coll_refuse.c - one rank passes an invalid datatype to a collective that the other ranks
 * call correctly (an erroneous program), under MPI_ERRORS_RETURN, on one node.
 *
 * For every blocking collective, first the last rank and then rank 0 (the root of the
 * rooted ones) passes MPI_DATATYPE_NULL. That rank must get MPI_ERR_TYPE; the others
 * must get MPI_SUCCESS or MPI_ERR_TRUNCATE, nobody may hang, and MPI_COMM_WORLD must work
 * afterwards. Rank 0 prints "OK coll_refuse". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 3000 /* elements per block: more than one 4 KiB publication, and a stream */

static int rank, size;

static void fail(const char *what, int code, int expected)
{
    fprintf(stderr, "FAIL coll_refuse: [rank %d] %s returned %d, expected %s\n", rank, what,
            code, expected ? "MPI_ERR_TYPE" : "MPI_SUCCESS or MPI_ERR_TRUNCATE");
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void judge(const char *what, int code, int bad)
{
    int cls = code;
    if (code != MPI_SUCCESS)
        MPI_Error_class(code, &cls);
    if (bad ? cls != MPI_ERR_TYPE : (cls != MPI_SUCCESS && cls != MPI_ERR_TRUNCATE))
        fail(what, code, bad);
    {
        int one = 1, all = 0, k = MPI_Allreduce(&one, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        if (k != MPI_SUCCESS || all != size)
            fail("MPI_Allreduce after a refused call", k, 0);
    }
}

int main(int argc, char **argv)
{
    int odd, i, *counts, *displs;
    int *a, *b;
    setvbuf(stdout, NULL, _IONBF, 0);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    a = calloc((size_t)N * size, sizeof(int));
    b = calloc((size_t)N * size, sizeof(int));
    counts = malloc(sizeof(int) * size);
    displs = malloc(sizeof(int) * size);
    if (!a || !b || !counts || !displs)
        fail("malloc", 0, 0);
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
