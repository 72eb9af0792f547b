/* MPIX_Ring_* on one communicator after another: a group on MPI_COMM_WORLD, then, four
 * times, a group on a new MPI_Comm_dup of it, each freed (MPIX_Ring_free, MPI_Comm_free)
 * before the next is made. In each, every rank broadcasts 20 messages and delivers all of
 * them, then the last rank alone broadcasts one more, which every rank must deliver
 * before it frees the group (a group progresses only inside group calls, and a freed
 * group's tasks must not hold on to the next one's connections). Then a group whose
 * communicator is freed without MPIX_Ring_free: MPI_Comm_free leaves it, and a
 * communicator made next (one rank each, which may get the same handle) has no group
 * until it makes its own, whose view is that one rank. A broadcast over
 * ZERORANK_MPIX_RING_MAX_BYTES is MPI_ERR_COUNT, and MPI_Error_string of it gives the
 * reason. Prints "OK ring_dup" on rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define N 20

static void fail(int rank, const char *what, long a, long b)
{
    fprintf(stderr, "FAIL ring_dup: [rank %d] %s: %ld %ld\n", rank, what, a, b);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void one_group(MPI_Comm c, int rank, int size, int round)
{
    char buf[64];
    int origin, seq, bytes, got, k;
    if (MPIX_Ring_create(c) != MPI_SUCCESS)
        fail(rank, "MPIX_Ring_create in round", round, 0);
    for (k = 0; k < N; k++) {
        int m = snprintf(buf, sizeof buf, "%d:%d", rank, k);
        if (MPIX_Ring_bcast(c, buf, m + 1, &seq) != MPI_SUCCESS || seq != k + 1)
            fail(rank, "MPIX_Ring_bcast in round", round, k);
    }
    for (got = 0; got < N * size; got++) {
        if (MPIX_Ring_recv(c, buf, sizeof buf, &origin, &seq, &bytes, 20.0) != MPI_SUCCESS)
            fail(rank, "MPIX_Ring_recv in round", round, got);
        if (origin == MPI_UNDEFINED)
            fail(rank, "no delivery within 20 s in round, after", round, got);
    }
    if (rank == size - 1 && MPIX_Ring_bcast(c, "last", 5, &seq) != MPI_SUCCESS)
        fail(rank, "the last MPIX_Ring_bcast in round", round, 0);
    if (MPIX_Ring_recv(c, buf, sizeof buf, &origin, &seq, &bytes, 20.0) != MPI_SUCCESS ||
        origin != size - 1 || seq != N + 1 || bytes != 5)
        fail(rank, "the last broadcast was not delivered in round; origin", round, origin);
    if (MPIX_Ring_free(c) != MPI_SUCCESS)
        fail(rank, "MPIX_Ring_free in round", round, 0);
}

int main(int argc, char **argv)
{
    int rank, size, round;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    one_group(MPI_COMM_WORLD, rank, size, 0);
    for (round = 1; round <= 4; round++) {
        MPI_Comm d;
        if (MPI_Comm_dup(MPI_COMM_WORLD, &d) != MPI_SUCCESS)
            fail(rank, "MPI_Comm_dup in round", round, 0);
        MPI_Comm_set_errhandler(d, MPI_ERRORS_RETURN);
        one_group(d, rank, size, round);
        if (MPI_Comm_free(&d) != MPI_SUCCESS)
            fail(rank, "MPI_Comm_free in round", round, 0);
    }
    {
        MPI_Comm d, solo;
        int round_, vsize = -1, member = -1, seq, origin, bytes, e;
        char buf[16];
        if (MPI_Comm_dup(MPI_COMM_WORLD, &d) != MPI_SUCCESS || MPIX_Ring_create(d) != MPI_SUCCESS)
            fail(rank, "a group on a dup to free without MPIX_Ring_free", 0, 0);
        e = MPIX_Ring_bcast(d, buf, ZERORANK_MPIX_RING_MAX_BYTES + 1, &seq);
        if (e != MPI_ERR_COUNT)
            fail(rank, "a broadcast over the largest was not MPI_ERR_COUNT but", e, 0);
        {
            /* The reason comes with the class's text under MPI_ERRORS_RETURN. */
            char text[MPI_MAX_ERROR_STRING];
            int len = 0;
            if (MPI_Error_string(e, text, &len) != MPI_SUCCESS ||
                strstr(text, "latest: MPIX_Ring_bcast: a broadcast of") == NULL) {
                fprintf(stderr, "FAIL ring_dup: [rank %d] MPI_Error_string: %s\n", rank, text);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
        if (MPI_Comm_free(&d) != MPI_SUCCESS)
            fail(rank, "MPI_Comm_free of a communicator with a group", 0, 0);
        if (MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &solo) != MPI_SUCCESS)
            fail(rank, "MPI_Comm_split", 0, 0);
        MPI_Comm_set_errhandler(solo, MPI_ERRORS_RETURN);
        e = MPIX_Ring_view(solo, &round_, &vsize, &member, 1);
        if (e == MPI_SUCCESS)
            fail(rank, "a new communicator has a group before MPIX_Ring_create; its size", vsize, 0);
        if (MPIX_Ring_create(solo) != MPI_SUCCESS)
            fail(rank, "MPIX_Ring_create on a split after a freed group", 0, 0);
        if (MPIX_Ring_view(solo, &round_, &vsize, &member, 1) != MPI_SUCCESS || vsize != 1 ||
            member != 0)
            fail(rank, "the one-rank group's view: size, member", vsize, member);
        if (MPIX_Ring_bcast(solo, "solo", 5, &seq) != MPI_SUCCESS ||
            MPIX_Ring_recv(solo, buf, sizeof buf, &origin, &seq, &bytes, INFINITY) != MPI_SUCCESS ||
            origin != 0 || bytes != 5)
            fail(rank, "the one-rank group's own broadcast: origin, bytes", origin, bytes);
        if (MPIX_Ring_free(solo) != MPI_SUCCESS || MPI_Comm_free(&solo) != MPI_SUCCESS)
            fail(rank, "freeing the one-rank group", 0, 0);
    }
    if (rank == 0)
        printf("OK ring_dup\n");
    MPI_Finalize();
    return 0;
}
