/* coll_roots.c - the ranks of MPI_COMM_WORLD disagree on a collective's root, or call
 * different rooted collectives at the same point (an erroneous program), under
 * MPI_ERRORS_RETURN. None of these may hang, crash, or leave the communicator unusable.
 *
 * For a small (4 ints, one publication) and a large (100000 ints, a stream) message:
 *   1. MPI_Bcast and MPI_Scatter where every rank names the next rank as the root: every
 *      rank waits for a root that is not publishing this call, so all must get
 *      MPI_ERR_TRUNCATE.
 *   2. MPI_Reduce and MPI_Gather to root 0 where the last rank names itself: rank 0 and the
 *      last rank must get MPI_ERR_TRUNCATE; the others MPI_SUCCESS or MPI_ERR_TRUNCATE.
 *   3. Rank 0 calls MPI_Gather to root 0 while the others call MPI_Scatter from root 0:
 *      all must get MPI_ERR_TRUNCATE.
 *   4. MPI_Bcast and MPI_Reduce where the last rank names size + 3: it must get
 *      MPI_ERR_ROOT; the others MPI_SUCCESS or MPI_ERR_TRUNCATE, and rank 0, the root that
 *      waits for the last rank's contribution to the reduction, MPI_ERR_TRUNCATE.
 *   5. Twenty MPI_Bcast calls in a row where every rank names itself the root: MPI_SUCCESS
 *      or MPI_ERR_TRUNCATE, and nobody waits forever for readers that never come.
 * After every case, MPI_Allreduce and a checked MPI_Bcast from rank 0 must work.
 * Rank 0 prints "OK coll_roots". Needs at least 2 ranks. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define SMALL 4
#define LARGE 100000

static int rank, size;

static void fail(const char *what, int code, const char *expected)
{
    fprintf(stderr, "FAIL coll_roots: [rank %d] %s returned %d, expected %s\n", rank, what,
            code, expected);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int class_of(int code)
{
    int cls = code;
    if (code != MPI_SUCCESS)
        MPI_Error_class(code, &cls);
    return cls;
}

/* The communicator still works: a sum and a broadcast whose data is checked. */
static void still_works(const char *after, int *buf, int n)
{
    int one = 1, all = 0, i, k;
    k = MPI_Allreduce(&one, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (k != MPI_SUCCESS || all != size) {
        fprintf(stderr, "FAIL coll_roots: [rank %d] after %s: MPI_Allreduce gave %d (sum %d)\n",
                rank, after, k, all);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (i = 0; i < n; i++)
        buf[i] = rank == 0 ? 7 * i + 1 : -1;
    k = MPI_Bcast(buf, n, MPI_INT, 0, MPI_COMM_WORLD);
    for (i = 0; k == MPI_SUCCESS && i < n; i++)
        if (buf[i] != 7 * i + 1) {
            fprintf(stderr, "FAIL coll_roots: [rank %d] after %s: MPI_Bcast element %d is %d\n",
                    rank, after, i, buf[i]);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    if (k != MPI_SUCCESS)
        fail("MPI_Bcast after a failed call", k, "MPI_SUCCESS");
}

/* `must` ranks get exactly `want`; the others `want`, or MPI_SUCCESS when `may_succeed`. */
static void judge(const char *what, int code, int must, int want, int may_succeed)
{
    int cls = class_of(code);
    if (must ? cls != want : (cls != want && !(may_succeed && cls == MPI_SUCCESS)))
        fail(what, code, want == MPI_ERR_ROOT ? "MPI_ERR_ROOT"
                         : must || !may_succeed ? "MPI_ERR_TRUNCATE"
                                                : "MPI_SUCCESS or MPI_ERR_TRUNCATE");
}

int main(int argc, char **argv)
{
    int sizes[2] = {SMALL, LARGE}, s, i, *a, *b;
    setvbuf(stdout, NULL, _IONBF, 0);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (size < 2)
        fail("MPI_Comm_size", size, "at least 2 ranks");
    a = calloc((size_t)LARGE * size, sizeof(int));
    b = calloc((size_t)LARGE * size, sizeof(int));
    if (!a || !b)
        fail("calloc", 0, "memory");
    for (s = 0; s < 2; s++) {
        int n = sizes[s], last = rank == size - 1, next = (rank + 1) % size;
        char what[96];
        for (i = 0; i < n; i++)
            a[i] = rank + i;

        snprintf(what, sizeof what, "MPI_Bcast of %d ints from the next rank", n);
        judge(what, MPI_Bcast(a, n, MPI_INT, next, MPI_COMM_WORLD), 1, MPI_ERR_TRUNCATE, 0);
        still_works(what, b, n);
        snprintf(what, sizeof what, "MPI_Scatter of %d ints from the next rank", n);
        judge(what, MPI_Scatter(a, n / size, MPI_INT, b, n / size, MPI_INT, next,
                                MPI_COMM_WORLD),
              1, MPI_ERR_TRUNCATE, 0);
        still_works(what, b, n);

        snprintf(what, sizeof what, "MPI_Reduce of %d ints, the last rank its own root", n);
        judge(what, MPI_Reduce(a, b, n, MPI_INT, MPI_SUM, last ? rank : 0, MPI_COMM_WORLD),
              rank == 0 || last, MPI_ERR_TRUNCATE, 1);
        still_works(what, b, n);
        snprintf(what, sizeof what, "MPI_Gather of %d ints, the last rank its own root", n);
        judge(what, MPI_Gather(a, n / size, MPI_INT, b, n / size, MPI_INT, last ? rank : 0,
                               MPI_COMM_WORLD),
              rank == 0 || last, MPI_ERR_TRUNCATE, 1);
        still_works(what, b, n);

        snprintf(what, sizeof what, "MPI_Gather (rank 0) against MPI_Scatter of %d ints", n);
        judge(what,
              rank == 0 ? MPI_Gather(a, n / size, MPI_INT, b, n / size, MPI_INT, 0,
                                     MPI_COMM_WORLD)
                        : MPI_Scatter(a, n / size, MPI_INT, b, n / size, MPI_INT, 0,
                                      MPI_COMM_WORLD),
              1, MPI_ERR_TRUNCATE, 0);
        still_works(what, b, n);

        snprintf(what, sizeof what, "MPI_Bcast of %d ints, the last rank naming size+3", n);
        judge(what, MPI_Bcast(a, n, MPI_INT, last ? size + 3 : 0, MPI_COMM_WORLD), last,
              last ? MPI_ERR_ROOT : MPI_ERR_TRUNCATE, 1);
        still_works(what, b, n);
        snprintf(what, sizeof what, "MPI_Reduce of %d ints, the last rank naming size+3", n);
        judge(what,
              MPI_Reduce(a, b, n, MPI_INT, MPI_SUM, last ? size + 3 : 0, MPI_COMM_WORLD),
              last || rank == 0, last ? MPI_ERR_ROOT : MPI_ERR_TRUNCATE, 1);
        still_works(what, b, n);

        snprintf(what, sizeof what, "MPI_Bcast of %d ints, every rank its own root", n);
        for (i = 0; i < 20; i++)
            judge(what, MPI_Bcast(a, n, MPI_INT, rank, MPI_COMM_WORLD), 0, MPI_ERR_TRUNCATE,
                  1);
        still_works(what, b, n);
    }
    if (rank == 0)
        printf("OK coll_roots\n");
    free(a);
    free(b);
    MPI_Finalize();
    return 0;
}
