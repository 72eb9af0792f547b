/* coll_oversize.c - on one node, reductions the shared-memory slots do not take (elements
 * over 4 KiB, operands of 1 GiB or more) run point-to-point schedules instead. Every rank
 * must make the same choice; this checks that it does in a correct program, and that an
 * erroneous one whose ranks choose differently gets errors, not a hang. Under
 * MPI_ERRORS_RETURN:
 *   1. Every rank reduces 16 KiB elements (a contiguous type of 2048 doubles) with a user
 *      op: MPI_Allreduce, MPI_Reduce to the last rank and MPI_Scan return MPI_SUCCESS
 *      with the right sums.
 *   2. The last rank passes 1 such element, the others 2048 MPI_DOUBLEs (the same bytes,
 *      another datatype: erroneous), to MPI_Allreduce, then to MPI_Reduce to the last
 *      rank and to rank 0: every rank that folds the last rank's operand or is the last
 *      rank gets MPI_ERR_TRUNCATE (here: all of them in MPI_Allreduce, the root and the
 *      last rank in MPI_Reduce); the others MPI_SUCCESS or MPI_ERR_TRUNCATE.
 *   3. The last rank passes 2^28 + 16 floats (1 GiB + 64 B, in place, never touched) to
 *      MPI_Allreduce, the others 16: every rank gets MPI_ERR_TRUNCATE.
 * After every case MPI_Allreduce and MPI_Bcast on MPI_COMM_WORLD must work.
 * Rank 0 prints "OK coll_oversize". Needs at least 2 ranks. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define ELEM 2048 /* doubles per element of the large type */

static int rank, size, last;
static MPI_Datatype big;

static void fail(const char *what, int code, const char *expected)
{
    fprintf(stderr, "FAIL coll_oversize: [rank %d] %s returned %d, expected %s\n", rank,
            what, code, expected);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int class_of(int code)
{
    int cls = code;
    if (code != MPI_SUCCESS)
        MPI_Error_class(code, &cls);
    return cls;
}

static void expect(const char *what, int code, int must_fail)
{
    int cls = class_of(code);
    if (must_fail && cls != MPI_ERR_TRUNCATE)
        fail(what, code, "MPI_ERR_TRUNCATE");
    if (!must_fail && cls != MPI_SUCCESS && cls != MPI_ERR_TRUNCATE)
        fail(what, code, "MPI_SUCCESS or MPI_ERR_TRUNCATE");
}

/* The communicator still works: a checked MPI_Allreduce and MPI_Bcast. */
static void in_step(const char *after)
{
    int one = 1, n = 0, v = rank == 0 ? 4242 : -1, k;
    k = MPI_Allreduce(&one, &n, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS || n != size)
        fail(after, k, "a working MPI_Allreduce afterwards");
    k = MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS || v != 4242)
        fail(after, k, "a working MPI_Bcast afterwards");
}

/* Elementwise sum of doubles, for the large type and for MPI_DOUBLE. */
static void vsum(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    int n = *len * (*dt == big ? ELEM : 1), i;
    for (i = 0; i < n; i++)
        ((double *)inout)[i] += ((double *)in)[i];
}

static double value(int r, int i)
{
    return (double)(r + 1) * 1000.0 + (double)(i % 977);
}

static void check_sum(const char *what, const double *got, int n, int ranks)
{
    int i, r;
    for (i = 0; i < n; i++) {
        double want = 0;
        for (r = 0; r < ranks; r++)
            want += value(r, i);
        if (got[i] != want) {
            fprintf(stderr, "FAIL coll_oversize: [rank %d] %s: element %d is %g, expected %g\n",
                    rank, what, i, got[i], want);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
}

int main(int argc, char **argv)
{
    MPI_Op op;
    double *a, *b;
    float *huge;
    int i, k, count = 3, n = 3 * ELEM;
    size_t huge_count = ((size_t)1 << 28) + 16;
    setvbuf(stdout, NULL, _IONBF, 0);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    last = size - 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Type_contiguous(ELEM, MPI_DOUBLE, &big);
    MPI_Type_commit(&big);
    MPI_Op_create(vsum, 1, &op);
    a = malloc(sizeof(double) * (size_t)n);
    b = malloc(sizeof(double) * (size_t)n);
    if (!a || !b)
        fail("malloc", 0, "memory");
    for (i = 0; i < n; i++)
        a[i] = value(rank, i);

    /* 1. A correct program: every rank passes the large type. */
    k = MPI_Allreduce(a, b, count, big, op, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS)
        fail("MPI_Allreduce of 16 KiB elements", k, "MPI_SUCCESS");
    check_sum("MPI_Allreduce of 16 KiB elements", b, n, size);
    k = MPI_Reduce(a, b, 2, big, op, last, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS)
        fail("MPI_Reduce of 16 KiB elements", k, "MPI_SUCCESS");
    if (rank == last)
        check_sum("MPI_Reduce of 16 KiB elements", b, 2 * ELEM, size);
    k = MPI_Scan(a, b, 1, big, op, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS)
        fail("MPI_Scan of 16 KiB elements", k, "MPI_SUCCESS");
    check_sum("MPI_Scan of 16 KiB elements", b, ELEM, rank + 1);
    in_step("the correct large-element calls");

    /* 2. The last rank's datatype differs: it takes the schedule, the others the slots. */
    if (rank == last)
        k = MPI_Allreduce(a, b, 1, big, op, MPI_COMM_WORLD);
    else
        k = MPI_Allreduce(a, b, ELEM, MPI_DOUBLE, op, MPI_COMM_WORLD);
    expect("MPI_Allreduce with datatypes that disagree", k, 1);
    in_step("MPI_Allreduce with datatypes that disagree");
    if (rank == last)
        k = MPI_Reduce(a, b, 1, big, op, last, MPI_COMM_WORLD);
    else
        k = MPI_Reduce(a, b, ELEM, MPI_DOUBLE, op, last, MPI_COMM_WORLD);
    expect("MPI_Reduce to the last rank with datatypes that disagree", k, rank == last);
    in_step("MPI_Reduce to the last rank with datatypes that disagree");
    if (rank == last)
        k = MPI_Reduce(a, b, 1, big, op, 0, MPI_COMM_WORLD);
    else
        k = MPI_Reduce(a, b, ELEM, MPI_DOUBLE, op, 0, MPI_COMM_WORLD);
    expect("MPI_Reduce to rank 0 with datatypes that disagree", k, rank == 0 || rank == last);
    in_step("MPI_Reduce to rank 0 with datatypes that disagree");

    /* 3. The last rank's operand is 1 GiB + 64 B (malloc'd, never touched). */
    huge = malloc(sizeof(float) * (rank == last ? huge_count : 16));
    if (!huge)
        fail("malloc of 1 GiB", 0, "memory");
    for (i = 0; i < 16; i++)
        huge[i] = 1.0f;
    k = MPI_Allreduce(MPI_IN_PLACE, huge, rank == last ? (int)huge_count : 16, MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD);
    expect("MPI_Allreduce where one operand is 1 GiB", k, 1);
    in_step("MPI_Allreduce where one operand is 1 GiB");
    free(huge);

    MPI_Op_free(&op);
    MPI_Type_free(&big);
    free(a);
    free(b);
    if (rank == 0)
        printf("OK coll_oversize\n");
    MPI_Finalize();
    return 0;
}
