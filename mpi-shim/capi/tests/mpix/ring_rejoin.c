/* MPIX_Ring_rejoin, at 3 ranks: rank 0 stops rank 2 (SIGSTOP) until ranks 0 and 1 have
 * a view without it and have delivered a broadcast it misses, then continues it
 * (SIGCONT). Rank 2's calls then fail with MPI_ERR_OTHER (the group went on without it);
 * it rejoins, is in the view again under its rank, and its first broadcast (sequence 1
 * again) reaches every rank. Rank 2 learns it was left out from MPIX_Ring_progress.
 * Every rank replicates a digest of its deliveries (MPIX_Ring_replicate): rank 2 must come
 * back with the one of what ranks 0 and 1 broadcast while it was out, and all three must
 * end with the same. A rejoin of a running member is MPI_ERR_OTHER. Every wait is
 * bounded. Prints "OK ring_rejoin" on rank 0. */
#define _DEFAULT_SOURCE /* kill, usleep */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank;

/* The replicated state (MPIX_Ring_replicate): a count and a digest of every delivery, in
 * order. Every rank must end with the same. */
struct digest {
    long long count;
    unsigned long long hash;
};
static struct digest dg = {0, 1469598103934665603ull};

static void apply(void *ctx, int origin, int seq, const void *buf, int bytes)
{
    struct digest *d = ctx;
    const unsigned char *b = buf;
    d->hash = (d->hash ^ (unsigned)origin) * 1099511628211ull;
    d->hash = (d->hash ^ (unsigned)seq) * 1099511628211ull;
    for (int i = 0; i < bytes; i++)
        d->hash = (d->hash ^ b[i]) * 1099511628211ull;
    d->count++;
}

static int snapshot(void *ctx, void *buf, int maxbytes)
{
    if (buf != NULL && maxbytes >= (int)sizeof(struct digest))
        memcpy(buf, ctx, sizeof(struct digest));
    return (int)sizeof(struct digest);
}

static void restore(void *ctx, const void *buf, int bytes)
{
    if (bytes != (int)sizeof(struct digest)) {
        fprintf(stderr, "FAIL ring_rejoin: [rank %d] a state of %d bytes\n", rank, bytes);
        abort();
    }
    memcpy(ctx, buf, sizeof(struct digest));
}

/* Plain broadcasts ranks 0 and 1 each send while rank 2 is out. */
#define WHILE_OUT 10

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "FAIL ring_rejoin: [rank %d] %s: %ld %ld\n", rank, what, a, b);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* The current view's size, and whether rank r is in it. */
static int view_size(int r, int *has)
{
    int round, size, members[8];
    if (MPIX_Ring_view(MPI_COMM_WORLD, &round, &size, members, 8) != MPI_SUCCESS)
        fail("MPIX_Ring_view", 0, 0);
    *has = 0;
    for (int i = 0; i < size && i < 8; i++)
        if (members[i] == r)
            *has = 1;
    return size;
}

/* The sequence numbers of the deliveries looked for ("during" from rank 0, "back" from
 * rank 2); 0 until they come. Every delivery taken goes through take(), whichever wait
 * takes it. */
static int during_seq, back_seq;

/* Take the next delivery, waiting up to `timeout` s; MPIX_Ring_recv's code. */
static int take(double timeout)
{
    char buf[64];
    int origin, seq, bytes;
    int err = MPIX_Ring_recv(MPI_COMM_WORLD, buf, sizeof buf, &origin, &seq, &bytes, timeout);
    if (err == MPI_SUCCESS && origin == 0 && strcmp(buf, "during") == 0)
        during_seq = seq;
    if (err == MPI_SUCCESS && origin == 2 && strcmp(buf, "back") == 0)
        back_seq = seq;
    return err;
}

/* Take deliveries (up to 30 s) until *seq is set. */
static void await_delivery(const int *seq, const char *what)
{
    double end = MPI_Wtime() + 30.0;
    while (*seq == 0) {
        if (MPI_Wtime() > end) {
            fprintf(stderr, "FAIL ring_rejoin: [rank %d] no %s in 30 s\n", rank, what);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (take(0.1) != MPI_SUCCESS)
            fail("MPIX_Ring_recv while waiting for a delivery", 0, 0);
    }
}

/* Take deliveries (up to 30 s) until the view has `size` members, rank 2 in it or not. */
static void await_view(int size, int with2)
{
    int has;
    double end = MPI_Wtime() + 30.0;
    while (view_size(2, &has) != size || has != with2) {
        if (MPI_Wtime() > end)
            fail("no view of the size in 30 s", size, with2);
        if (take(0.05) != MPI_SUCCESS)
            fail("MPIX_Ring_recv while waiting for a view", size, 0);
    }
}

int main(int argc, char **argv)
{
    int size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 3)
        fail("run it at 3 ranks, not", size, 3);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int pid = (int)getpid(), pids[3];
    MPI_Allgather(&pid, 1, MPI_INT, pids, 1, MPI_INT, MPI_COMM_WORLD);
    if (MPIX_Ring_create(MPI_COMM_WORLD) != MPI_SUCCESS)
        fail("MPIX_Ring_create", 0, 0);
    if (MPIX_Ring_replicate(MPI_COMM_WORLD, apply, NULL, restore, &dg) != MPI_ERR_ARG)
        fail("a null snapshot function is not MPI_ERR_ARG", 0, 0);
    if (MPIX_Ring_replicate(MPI_COMM_WORLD, apply, snapshot, restore, &dg) != MPI_SUCCESS)
        fail("MPIX_Ring_replicate", 0, 0);
    if (MPIX_Ring_rejoin(MPI_COMM_WORLD, 1.0) != MPI_ERR_OTHER)
        fail("a rejoin of a running member is not MPI_ERR_OTHER", 0, 0);
    if (MPIX_Ring_rejoin(MPI_COMM_WORLD, -1.0) != MPI_ERR_ARG)
        fail("a negative timeout is not MPI_ERR_ARG", 0, 0);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 2) {
        /* Stopped in here; once continued, the calls fail. */
        int err = MPI_SUCCESS;
        double end = MPI_Wtime() + 30.0;
        while (err == MPI_SUCCESS) {
            if (MPI_Wtime() > end)
                fail("still a member 30 s on: never stopped or never told", 0, 0);
            /* MPIX_Ring_progress as a computing rank would call it; no delivery comes. */
            err = MPIX_Ring_progress(MPI_COMM_WORLD);
            usleep(20000);
        }
        if (err != MPI_ERR_OTHER)
            fail("a member left out fails with", err, MPI_ERR_OTHER);
        int r_, s_, m_[3];
        err = MPIX_Ring_view(MPI_COMM_WORLD, &r_, &s_, m_, 3);
        if (err != MPI_ERR_OTHER)
            fail("MPIX_Ring_view of a member left out gives", err, MPI_ERR_OTHER);
        if (MPIX_Ring_rejoin(MPI_COMM_WORLD, 20.0) != MPI_SUCCESS)
            fail("MPIX_Ring_rejoin", 0, 0);
        int has;
        if (view_size(2, &has) != 3 || !has)
            fail("the view after the rejoin lacks rank 2", 0, 0);
        /* The replicated state came: it has applied what the others delivered meanwhile. */
        if (dg.count < 1 + 2 * WHILE_OUT)
            fail("rejoined with deliveries applied", (long)dg.count, 1 + 2 * WHILE_OUT);
        int seq;
        if (MPIX_Ring_bcast(MPI_COMM_WORLD, "back", 5, &seq) != MPI_SUCCESS || seq != 1)
            fail("first broadcast after the rejoin: seq", seq, 1);
    } else {
        if (rank == 0) {
            usleep(200000);
            kill(pids[2], SIGSTOP);
        }
        await_view(2, 0);
        for (int k = 0; k < WHILE_OUT; k++) {
            char msg[32];
            int m = snprintf(msg, sizeof msg, "out %d %d", rank, k);
            if (MPIX_Ring_bcast(MPI_COMM_WORLD, msg, m + 1, NULL) != MPI_SUCCESS)
                fail("MPIX_Ring_bcast while rank 2 is out", k, 0);
        }
        /* Sent in the view without rank 2, so delivered before the view that lets it back
         * in (virtual synchrony): the state it gets covers them. */
        if (rank == 0 && MPIX_Ring_bcast(MPI_COMM_WORLD, "during", 7, NULL) != MPI_SUCCESS)
            fail("MPIX_Ring_bcast while rank 2 is out", 0, 0);
        await_delivery(&during_seq, "\"during\" from rank 0");
        if (rank == 0)
            kill(pids[2], SIGCONT);
        await_view(3, 1);
    }
    await_delivery(&back_seq, "\"back\" from rank 2");
    if (back_seq != 1)
        fail("rank 2's first broadcast as a new member has seq", back_seq, 1);
    /* Every rank has taken "back", the last broadcast: the replicated states agree. */
    struct digest all[3];
    MPI_Allgather(&dg, (int)sizeof dg, MPI_BYTE, all, (int)sizeof dg, MPI_BYTE, MPI_COMM_WORLD);
    for (int r = 0; r < 3; r++)
        if (all[r].count != dg.count || all[r].hash != dg.hash)
            fail("the replicated state differs from rank", r, (long)all[r].count);
    MPI_Barrier(MPI_COMM_WORLD);
    if (MPIX_Ring_free(MPI_COMM_WORLD) != MPI_SUCCESS)
        fail("MPIX_Ring_free", 0, 0);
    if (rank == 0)
        printf("OK ring_rejoin\n");
    MPI_Finalize();
    return 0;
}
