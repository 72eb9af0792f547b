/* coll_disagree.c - the last rank passes one element more than the others to collectives
 * (an erroneous program), on ranks spread over nodes.
 *
 * usage: coll_disagree return | fatal
 *   return: MPI_ERRORS_RETURN. Every rank's call of MPI_Allreduce, MPI_Reduce, MPI_Bcast,
 *           MPI_Allgather and MPI_Scan returns, with MPI_SUCCESS or MPI_ERR_TRUNCATE, at
 *           least one rank gets MPI_ERR_TRUNCATE, and MPI_COMM_WORLD works afterwards; rank
 *           0 prints "OK coll_disagree".
 *   fatal:  MPI_ERRORS_ARE_FATAL (the default). MPI_Allreduce ends the job with an error
 *           naming MPI_ERR_TRUNCATE; no rank prints "SURVIVED". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE 100000

static int rank, size;

static void fail(const char *what, int code)
{
    fprintf(stderr, "FAIL coll_disagree: [rank %d] %s returned %d\n", rank, what, code);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* A call's return code is MPI_SUCCESS or of class MPI_ERR_TRUNCATE; 1 if it is an error. */
static int judge(const char *what, int code)
{
    int cls = code;
    if (code == MPI_SUCCESS)
        return 0;
    MPI_Error_class(code, &cls);
    if (cls != MPI_ERR_TRUNCATE)
        fail(what, code);
    return 1;
}

/* Still in step, and somebody saw the disagreement. */
static void in_step(const char *what, int mine)
{
    int in[2] = {1, mine}, out[2] = {0, 0}, k;
    k = MPI_Allreduce(in, out, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS || out[0] != size)
        fail("MPI_Allreduce after a disagreement", k);
    if (out[1] == 0) {
        fprintf(stderr, "FAIL coll_disagree: nobody saw the disagreement in %s\n", what);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

int main(int argc, char **argv)
{
    int count, fatal;
    float *a, *b;
    setvbuf(stdout, NULL, _IONBF, 0);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    fatal = argc > 1 && strcmp(argv[1], "fatal") == 0;
    if (!fatal)
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    count = BASE + (rank == size - 1);
    a = calloc((size_t)count, sizeof(float));
    b = calloc((size_t)count * (size_t)size, sizeof(float));
    if (!a || !b)
        fail("calloc", 0);
    if (fatal) {
        MPI_Allreduce(a, b, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        printf("SURVIVED rank %d\n", rank);
        MPI_Finalize();
        return 0;
    }
    in_step("MPI_Allreduce", judge("MPI_Allreduce",
            MPI_Allreduce(a, b, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)));
    in_step("MPI_Reduce", judge("MPI_Reduce",
            MPI_Reduce(a, b, count, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD)));
    in_step("MPI_Bcast", judge("MPI_Bcast", MPI_Bcast(a, count, MPI_FLOAT, 0, MPI_COMM_WORLD)));
    in_step("MPI_Allgather", judge("MPI_Allgather",
            MPI_Allgather(a, count, MPI_FLOAT, b, count, MPI_FLOAT, MPI_COMM_WORLD)));
    in_step("MPI_Scan", judge("MPI_Scan",
            MPI_Scan(a, b, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)));
    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
        fail("MPI_Barrier", -1);
    if (rank == 0)
        printf("OK coll_disagree\n");
    free(a);
    free(b);
    MPI_Finalize();
    return 0;
}
