/* coll_small.c - small collectives on one node (MPI_Allreduce, MPI_Reduce, MPI_Bcast,
 * MPI_Allgather), where a call of predefined types and op takes the fast entry (a few
 * hundred instructions) and any other call the general path: ranks on either path must
 * meet in the same call, in correct and in erroneous programs. Under MPI_ERRORS_RETURN.
 *
 * Correct programs, whose results are checked, at every size from 1 to 2048 ints (8 KiB,
 * the most a fast call takes) and at 4096 (past it, on every rank):
 *   - rank 0 passes a derived contiguous type (general path), the others MPI_INT;
 *   - some ranks pass MPI_IN_PLACE, the others a send buffer (the roots of MPI_Reduce
 *     turn by turn).
 * Erroneous programs (the last rank passes another count than the others): one element
 * more, a zero count (but to MPI_Bcast, where a rank with nothing to receive returns at
 * once), 4096 elements, and to MPI_Reduce 16384 (a stream of chunks the root must read
 * to the end), and the same bytes of another type (4 MPI_DOUBLEs for 8 MPI_INTs, to
 * MPI_Allreduce and MPI_Reduce): every rank's call returns MPI_SUCCESS or MPI_ERR_TRUNCATE,
 * at least one rank gets MPI_ERR_TRUNCATE, and MPI_COMM_WORLD works afterwards.
 * Rank 0 prints "OK coll_small". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 4096
#define HUGE 16384

static int rank, size;

static void fail(const char *what, int code)
{
    fprintf(stderr, "FAIL coll_small: [rank %d] %s returned %d\n", rank, what, code);
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
        fprintf(stderr, "FAIL coll_small: nobody saw the disagreement in %s\n", what);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* Rank r's operand element i, and the sum over the ranks. */
static int operand(int r, int i) { return (r + 1) * 1000 + i % 97; }
static int total(int i)
{
    int r, t = 0;
    for (r = 0; r < size; r++)
        t += operand(r, i);
    return t;
}

static void check_sum(const char *what, const int *got, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (got[i] != total(i)) {
            fprintf(stderr, "FAIL coll_small: [rank %d] %s of %d: element %d is %d, not %d\n",
                    rank, what, n, i, got[i], total(i));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
}

int main(int argc, char **argv)
{
    static int a[MAXN + 1], b[MAXN + 1];
    int n, i, k;
    MPI_Datatype block;
    setvbuf(stdout, NULL, _IONBF, 0);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

    /* Every size, every rank on the fast entry but rank 0 on the general path (a derived
     * contiguous type), then every other rank in place. */
    for (n = 1; n <= MAXN; n = n < 64 ? n + 1 : n * 2) {
        for (i = 0; i < n; i++) {
            a[i] = operand(rank, i);
            b[i] = -1;
        }
        if (rank == 0) {
            MPI_Type_contiguous(n, MPI_INT, &block);
            MPI_Type_commit(&block);
            k = MPI_Allreduce(a, b, 1, block, MPI_SUM, MPI_COMM_WORLD);
            MPI_Type_free(&block);
        } else {
            k = MPI_Allreduce(a, b, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        }
        if (k != MPI_SUCCESS)
            fail("MPI_Allreduce (derived type on rank 0)", k);
        check_sum("MPI_Allreduce (derived type on rank 0)", b, n);
        for (i = 0; i < n; i++)
            b[i] = operand(rank, i);
        k = rank % 2 ? MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD)
                     : MPI_Allreduce(a, b, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        if (k != MPI_SUCCESS)
            fail("MPI_Allreduce (in place on odd ranks)", k);
        check_sum("MPI_Allreduce (in place on odd ranks)", b, n);
    }

    /* MPI_Reduce to each root in turn, MPI_Bcast from it, MPI_Allgather: the same mixes. */
    for (n = 1; n <= MAXN; n = n < 64 ? n + 1 : n * 2) {
        int root = n % size, r;
        for (i = 0; i < n; i++) {
            a[i] = operand(rank, i);
            b[i] = -1;
        }
        if (rank == 0) {
            MPI_Type_contiguous(n, MPI_INT, &block);
            MPI_Type_commit(&block);
            k = MPI_Reduce(a, b, 1, block, MPI_SUM, root, MPI_COMM_WORLD);
        } else if (rank == root && rank % 2) {
            memcpy(b, a, sizeof(int) * (size_t)n);
            k = MPI_Reduce(MPI_IN_PLACE, b, n, MPI_INT, MPI_SUM, root, MPI_COMM_WORLD);
        } else {
            k = MPI_Reduce(a, b, n, MPI_INT, MPI_SUM, root, MPI_COMM_WORLD);
        }
        if (k != MPI_SUCCESS)
            fail("MPI_Reduce", k);
        if (rank == root)
            check_sum("MPI_Reduce", b, n);
        for (i = 0; i < n; i++)
            b[i] = rank == root ? total(i) : -1;
        k = rank == 0 ? MPI_Bcast(b, 1, block, root, MPI_COMM_WORLD)
                      : MPI_Bcast(b, n, MPI_INT, root, MPI_COMM_WORLD);
        if (k != MPI_SUCCESS)
            fail("MPI_Bcast", k);
        check_sum("MPI_Bcast", b, n);
        if (rank == 0)
            MPI_Type_free(&block);
        /* Allgather of n / size + 1 ints a rank (rank r's block: r's operand). */
        {
            static int all[4 * (MAXN + 1)];
            int m = n / size + 1;
            for (i = 0; i < m * size; i++)
                all[i] = -1;
            for (i = 0; i < m; i++)
                all[rank * m + i] = a[i] = operand(rank, i);
            if (rank == 0) {
                MPI_Type_contiguous(m, MPI_INT, &block);
                MPI_Type_commit(&block);
                k = MPI_Allgather(a, 1, block, all, 1, block, MPI_COMM_WORLD);
                MPI_Type_free(&block);
            } else if (rank % 2) {
                k = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, m, MPI_INT,
                                  MPI_COMM_WORLD);
            } else {
                k = MPI_Allgather(a, m, MPI_INT, all, m, MPI_INT, MPI_COMM_WORLD);
            }
            if (k != MPI_SUCCESS)
                fail("MPI_Allgather", k);
            for (r = 0; r < size; r++)
                for (i = 0; i < m; i++)
                    if (all[r * m + i] != operand(r, i)) {
                        fprintf(stderr, "FAIL coll_small: [rank %d] MPI_Allgather of %d: "
                                "block %d element %d is %d, not %d\n",
                                rank, m, r, i, all[r * m + i], operand(r, i));
                        MPI_Abort(MPI_COMM_WORLD, 1);
                    }
        }
    }

    /* The last rank passes another count. */
    {
        static const int theirs[4] = {8, 0, MAXN, HUGE};
        static int big[HUGE * 4];
        const int mine = 7;
        int t;
        for (t = 0; t < 4; t++) {
            n = rank == size - 1 ? theirs[t] : mine;
            if (theirs[t] <= MAXN) {
                in_step("MPI_Allreduce", judge("MPI_Allreduce",
                        MPI_Allreduce(a, b, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD)));
                /* (A rank that broadcasts nothing returns at once, as in Open MPI,
                 * and the root finishes too: nobody need see that disagreement.) */
                if (theirs[t] > 0)
                    in_step("MPI_Bcast", judge("MPI_Bcast",
                            MPI_Bcast(b, n, MPI_INT, 0, MPI_COMM_WORLD)));
                in_step("MPI_Allgather", judge("MPI_Allgather",
                        MPI_Allgather(a, n, MPI_INT, big, n, MPI_INT, MPI_COMM_WORLD)));
            }
            in_step("MPI_Reduce", judge("MPI_Reduce",
                    MPI_Reduce(big, b, n, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD)));
        }
        /* The same bytes, another element type: 8 ints, and 4 doubles on the last rank. */
        for (t = 0; t < 2; t++) {
            int last = rank == size - 1;
            MPI_Datatype ty = last ? MPI_DOUBLE : MPI_INT;
            n = last ? 4 : 8;
            in_step("MPI_Allreduce of other types", judge("MPI_Allreduce of other types",
                    MPI_Allreduce(a, b, n, ty, MPI_SUM, MPI_COMM_WORLD)));
            in_step("MPI_Reduce of other types", judge("MPI_Reduce of other types",
                    MPI_Reduce(a, b, n, ty, MPI_SUM, t, MPI_COMM_WORLD)));
        }
    }

    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
        fail("MPI_Barrier", -1);
    if (rank == 0)
        printf("OK coll_small\n");
    MPI_Finalize();
    return 0;
}
