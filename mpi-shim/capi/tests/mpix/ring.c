/* MPIX_Ring_*: every rank broadcasts N messages; every rank must deliver all of them,
 * each sender's in order, in one total order (digests compared with MPI_Allgather);
 * a bad call gets an MPI error code under MPI_ERRORS_RETURN. Prints "OK ring" on rank 0. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100

static void fail(int rank, const char *what, long a, long b)
{
    fprintf(stderr, "FAIL ring: [rank %d] %s: %ld %ld\n", rank, what, a, b);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    int rank, size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    char buf[64];
    int origin, seq, bytes;
    /* Before MPIX_Ring_create: an error, not a crash. */
    if (MPIX_Ring_bcast(MPI_COMM_WORLD, "x", 1, NULL) == MPI_SUCCESS)
        fail(rank, "bcast without a group succeeded", 0, 0);
    if (MPIX_Ring_create(MPI_COMM_WORLD) != MPI_SUCCESS)
        fail(rank, "MPIX_Ring_create", 0, 0);
    if (MPIX_Ring_create(MPI_COMM_WORLD) == MPI_SUCCESS)
        fail(rank, "a second MPIX_Ring_create succeeded", 0, 0);
    int round, vsize, members[16];
    if (MPIX_Ring_view(MPI_COMM_WORLD, &round, &vsize, members, 16) != MPI_SUCCESS)
        fail(rank, "MPIX_Ring_view", 0, 0);
    if (vsize != size)
        fail(rank, "view size", vsize, size);
    for (int i = 0; i < vsize && i < 16; i++)
        if (members[i] != i)
            fail(rank, "view member", members[i], i);
    if (MPIX_Ring_bcast(MPI_COMM_WORLD, "x", -1, NULL) != MPI_ERR_COUNT)
        fail(rank, "a negative count is not MPI_ERR_COUNT", 0, 0);
    for (int k = 0; k < N; k++) {
        int n = snprintf(buf, sizeof buf, "%d:%d", rank, k);
        if (MPIX_Ring_bcast(MPI_COMM_WORLD, buf, n + 1, &seq) != MPI_SUCCESS || seq != k + 1)
            fail(rank, "MPIX_Ring_bcast seq", seq, k + 1);
    }
    int *next = calloc((size_t)size, sizeof *next);
    uint64_t digest = 1469598103934665603ull;
    for (int got = 0; got < N * size; got++) {
        if (MPIX_Ring_recv(MPI_COMM_WORLD, buf, sizeof buf, &origin, &seq, &bytes, 30.0) !=
            MPI_SUCCESS)
            fail(rank, "MPIX_Ring_recv", got, 0);
        if (origin == MPI_UNDEFINED)
            fail(rank, "no delivery within 30 s after", got, N * size);
        if (seq != next[origin] + 1)
            fail(rank, "sequence from rank", origin, seq);
        next[origin] = seq;
        char want[64];
        snprintf(want, sizeof want, "%d:%d", origin, seq - 1);
        if (strcmp(buf, want) != 0 || bytes != (int)strlen(want) + 1)
            fail(rank, "payload from rank", origin, seq);
        digest = (digest ^ (uint64_t)origin) * 1099511628211ull;
        digest = (digest ^ (uint64_t)seq) * 1099511628211ull;
    }
    /* Nothing more: the wait ends with MPI_UNDEFINED. */
    if (MPIX_Ring_recv(MPI_COMM_WORLD, buf, sizeof buf, &origin, NULL, NULL, 0.05) !=
            MPI_SUCCESS ||
        origin != MPI_UNDEFINED)
        fail(rank, "a delivery beyond the last", origin, 0);
    uint64_t *all = malloc((size_t)size * sizeof *all);
    MPI_Allgather(&digest, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        if (all[r] != digest)
            fail(rank, "delivery order differs from rank", r, 0);
    /* Truncation: a 40-byte broadcast into a 4-byte buffer. */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        MPIX_Ring_bcast(MPI_COMM_WORLD, "0123456789012345678901234567890123456789", 40, NULL);
    if (MPIX_Ring_recv(MPI_COMM_WORLD, buf, 4, &origin, NULL, &bytes, 30.0) != MPI_ERR_TRUNCATE ||
        bytes != 40)
        fail(rank, "truncation", bytes, 40);
    MPI_Barrier(MPI_COMM_WORLD);
    if (MPIX_Ring_free(MPI_COMM_WORLD) != MPI_SUCCESS)
        fail(rank, "MPIX_Ring_free", 0, 0);
    free(next);
    free(all);
    if (rank == 0)
        printf("OK ring\n");
    MPI_Finalize();
    return 0;
}
