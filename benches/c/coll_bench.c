/* OSU-style collective latency: MPI_Barrier, MPI_Bcast, MPI_Allreduce, MPI_Reduce and
 * MPI_Allgather, 4 B to 1 MiB in powers of 4 (per rank for Allgather; MPI_FLOAT/MPI_SUM
 * for the reductions, MPI_BYTE otherwise; root 0).
 *
 * usage: mpirun -np N ./coll_bench <impl-name> [iteration-scale]
 *   iteration-scale (default 1.0; also $COLL_BENCH_SCALE) multiplies the iteration counts
 *   (2000 up to 1 KiB, 1000 up to 16 KiB, 200 up to 256 KiB, 50 above);
 *   $COLL_BENCH_BUDGET (default 0.3) caps the seconds spent per (op, size): fewer
 *   iterations (at least 5) when an iteration is slow, e.g. when ranks share cores.
 *
 * For each (op, size): warm-up iterations, then timed iterations, each one
 *   MPI_Barrier; t0 = MPI_Wtime(); <op>; t = MPI_Wtime() - t0
 * (the barrier is not timed). Output, one line per (op, size), times in microseconds:
 *   coll <impl> <op> <np> <bytes> p50=<median on rank 0> p99=<p99 on rank 0>
 *        avgmax=<max over ranks of the per-rank average>
 *        p50max=<max over ranks of the per-rank median> iters=<n>
 * (p50max is the latency of the call as a whole: for a broadcast the root's time alone
 * says nothing of when the others have the data.)
 * Barrier reports bytes 0. After the timed loop every op is run once more on known data
 * and its result checked, so a broken collective aborts instead of reporting a time.
 *
 * Machine state: each line also carries rtt0=<ns> rtt1=<ns>, the round trip of one cache
 * line between ranks 0 and 1 measured right before and right after the timed loop, through
 * a page of their own (a file in /dev/shm both map), not through MPI, so it is the same
 * probe for every implementation. Some machines (this project's 2-vCPU VM) switch every
 * few seconds between round trips of ~100 ns and ~450 ns, which changes every
 * implementation's small-message latency 2-3x; benches/coll.sh groups the rounds by it.
 * -1 when there is no probe (one rank, more ranks than CPUs, or the page could not be
 * shared). */
#include <mpi.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES (1 << 20)

enum { OP_BARRIER, OP_BCAST, OP_ALLREDUCE, OP_REDUCE, OP_ALLGATHER, NOPS };
static const char *op_name[NOPS] = {"barrier", "bcast", "allreduce", "reduce",
                                    "allgather"};

static int rank, size;
static unsigned char *sbuf, *rbuf;

static int cmpd(const void *a, const void *b);
#define cmpd_fwd cmpd

/* The focused-run settings (see the header). */
static const char *ops_wanted;
static size_t min_bytes = 4, max_bytes = MAX_BYTES;

/* Is `op` in $COLL_BENCH_OPS (every op when it is unset)? */
static int wanted(int op)
{
    const char *p = ops_wanted;
    size_t n = strlen(op_name[op]);
    if (!p)
        return 1;
    while (*p) {
        if (strncmp(p, op_name[op], n) == 0 && (p[n] == ',' || p[n] == 0))
            return 1;
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return 0;
}

/* The probe page (ranks 0 and 1 only) and the sequence number both sides keep. */
static volatile long *probe_line;
static long probe_seq;

/* Share a page between ranks 0 and 1 (collective); probe_line stays NULL if that fails
 * anywhere, or when ranks may share CPUs (a spinning round trip would then take a
 * scheduler tick). */
static void probe_setup(void)
{
    char path[64] = "/dev/shm/coll_bench_probe_XXXXXX";
    int ok = 1, all = 0, fd = -1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (size < 2 || cpus < size)
        return;
    if (rank == 0) {
        fd = mkstemp(path);
        if (fd < 0 || ftruncate(fd, 4096) != 0)
            ok = 0;
    }
    MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        fd = open(path, O_RDWR);
        if (fd < 0)
            ok = 0;
    }
    if (rank < 2 && ok) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            ok = 0;
        else
            probe_line = (volatile long *)m;
    }
    if (fd >= 0)
        close(fd);
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0)
        unlink(path);
    if (!all)
        probe_line = NULL;
}

/* Round trip of the probe line in ns (rank 0; the others return -1): 200 exchanges, the
 * median of 5 batches of 40. Spins are bounded, a stuck peer gives -1. */
static double probe(void)
{
    double batch[5];
    int b, i;
    if (!probe_line || rank > 1)
        return -1;
    for (b = 0; b < 5; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (i = 0; i < 40; i++) {
            long want = rank == 0 ? probe_seq + 2 : probe_seq + 1, spins = 0;
            if (rank == 0)
                __atomic_store_n(probe_line, probe_seq + 1, __ATOMIC_RELEASE);
            while (__atomic_load_n(probe_line, __ATOMIC_ACQUIRE) != want)
                if (++spins > 100000000L)
                    return -1;
            if (rank == 1)
                __atomic_store_n(probe_line, probe_seq + 2, __ATOMIC_RELEASE);
            probe_seq += 2;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        batch[b] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 40;
    }
    qsort(batch, 5, sizeof(double), cmpd_fwd);
    return rank == 0 ? batch[2] : -1;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    if (i >= n)
        i = n - 1;
    return v[i];
}

static void run_op(int op, size_t bytes)
{
    int nf = (int)(bytes / sizeof(float));
    switch (op) {
    case OP_BARRIER:
        MPI_Barrier(MPI_COMM_WORLD);
        break;
    case OP_BCAST:
        MPI_Bcast(rbuf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
        break;
    case OP_ALLREDUCE:
        MPI_Allreduce(sbuf, rbuf, nf, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        break;
    case OP_REDUCE:
        MPI_Reduce(sbuf, rbuf, nf, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
        break;
    case OP_ALLGATHER:
        MPI_Allgather(sbuf, (int)bytes, MPI_BYTE, rbuf, (int)bytes, MPI_BYTE,
                      MPI_COMM_WORLD);
        break;
    }
}

static void fail(const char *op, size_t bytes, size_t i, double got, double exp)
{
    fprintf(stderr,
            "coll_bench: [rank %d] WRONG RESULT: %s of %zu bytes, element %zu: "
            "expected %g, got %g\n",
            rank, op, bytes, i, exp, got);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Runs the op once on known data and checks the result. */
static void verify(int op, size_t bytes)
{
    size_t i, nf = bytes / sizeof(float), r;
    float *sf = (float *)sbuf, *rf = (float *)rbuf;
    switch (op) {
    case OP_BARRIER:
        MPI_Barrier(MPI_COMM_WORLD);
        break;
    case OP_BCAST:
        for (i = 0; i < bytes; i++)
            rbuf[i] = rank == 0 ? (unsigned char)(i * 7 + 1) : 0;
        run_op(op, bytes);
        for (i = 0; i < bytes; i++)
            if (rbuf[i] != (unsigned char)(i * 7 + 1))
                fail("bcast", bytes, i, rbuf[i], (unsigned char)(i * 7 + 1));
        break;
    case OP_ALLREDUCE:
    case OP_REDUCE:
        for (i = 0; i < nf; i++) {
            sf[i] = (float)(rank + 1 + (int)(i % 5));
            rf[i] = -1.0f;
        }
        run_op(op, bytes);
        if (op == OP_ALLREDUCE || rank == 0)
            for (i = 0; i < nf; i++) {
                double exp = size * (size + 1) / 2.0 + size * (double)(i % 5);
                if (rf[i] != exp)
                    fail(op_name[op], bytes, i, rf[i], exp);
            }
        break;
    case OP_ALLGATHER:
        for (i = 0; i < bytes; i++)
            sbuf[i] = (unsigned char)(rank * 13 + i);
        memset(rbuf, 0, bytes * (size_t)size);
        run_op(op, bytes);
        for (r = 0; r < (size_t)size; r++)
            for (i = 0; i < bytes; i++)
                if (rbuf[r * bytes + i] != (unsigned char)(r * 13 + i))
                    fail("allgather", bytes, r * bytes + i, rbuf[r * bytes + i],
                         (unsigned char)(r * 13 + i));
        break;
    }
}

int main(int argc, char **argv)
{
    const char *impl;
    double scale = 1.0, budget = 0.3, *samples;
    int op;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    impl = argc > 1 ? argv[1] : "mpi";
    if (argc > 2)
        scale = atof(argv[2]);
    else if (getenv("COLL_BENCH_SCALE"))
        scale = atof(getenv("COLL_BENCH_SCALE"));
    if (!(scale > 0))
        scale = 1.0;
    if (getenv("COLL_BENCH_BUDGET"))
        budget = atof(getenv("COLL_BENCH_BUDGET"));
    if (!(budget > 0))
        budget = 0.3;

    sbuf = malloc(MAX_BYTES);
    rbuf = malloc((size_t)MAX_BYTES * (size_t)size);
    samples = malloc(sizeof(double) * 100000);
    if (!sbuf || !rbuf || !samples) {
        fprintf(stderr, "coll_bench: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (getenv("COLL_BENCH_OPS"))
        ops_wanted = getenv("COLL_BENCH_OPS");
    if (getenv("COLL_BENCH_MIN"))
        min_bytes = (size_t)atol(getenv("COLL_BENCH_MIN"));
    if (getenv("COLL_BENCH_MAX"))
        max_bytes = (size_t)atol(getenv("COLL_BENCH_MAX"));
    if (max_bytes > MAX_BYTES)
        max_bytes = MAX_BYTES;
    memset(sbuf, 1, MAX_BYTES);
    memset(rbuf, 0, (size_t)MAX_BYTES * (size_t)size);
    probe_setup();

    for (op = 0; op < NOPS; op++) {
        size_t bytes;
        if (!wanted(op))
            continue;
        for (bytes = op == OP_BARRIER ? 0 : 4; bytes <= max_bytes; bytes *= 4) {
            int iters, warm, i;
            if (op != OP_BARRIER && bytes < min_bytes)
                continue;
            double sum = 0, avg, avgmax = 0, med, medmax = 0, rtt0, rtt1;
            if (bytes <= 1024)
                iters = 2000;
            else if (bytes <= 16384)
                iters = 1000;
            else if (bytes <= 262144)
                iters = 200;
            else
                iters = 50;
            iters = (int)(iters * scale);
            if (iters > 100000)
                iters = 100000;
            warm = iters / 10 + 2;
            /* Cap the time per (op, size) at `budget` seconds: estimate one
             * iteration (barrier + op) on rank 0 and tell the others, so
             * that an oversubscribed implementation that busy-polls (one
             * barrier can then take a scheduler tick) still finishes. */
            {
                double t0, est = 1e9;
                int plan[2];
                /* the fastest of 4 (the first one may be cold) */
                for (i = 0; i < 4; i++) {
                    t0 = MPI_Wtime();
                    MPI_Barrier(MPI_COMM_WORLD);
                    run_op(op, bytes);
                    t0 = MPI_Wtime() - t0;
                    if (t0 < est)
                        est = t0;
                }
                if (rank == 0) {
                    double cap = est > 0 ? budget / est : 1e9;
                    if (iters > cap)
                        iters = (int)cap;
                    if (warm > cap / 10)
                        warm = (int)(cap / 10);
                    if (iters < 5)
                        iters = 5;
                    if (warm < 1)
                        warm = 1;
                }
                plan[0] = iters;
                plan[1] = warm;
                MPI_Bcast(plan, 2, MPI_INT, 0, MPI_COMM_WORLD);
                iters = plan[0];
                warm = plan[1];
            }

            for (i = 0; i < warm; i++) {
                MPI_Barrier(MPI_COMM_WORLD);
                run_op(op, bytes);
            }
            MPI_Barrier(MPI_COMM_WORLD);
            rtt0 = probe();
            for (i = 0; i < iters; i++) {
                double t0;
                MPI_Barrier(MPI_COMM_WORLD);
                t0 = MPI_Wtime();
                run_op(op, bytes);
                samples[i] = (MPI_Wtime() - t0) * 1e6;
                sum += samples[i];
            }
            rtt1 = probe();
            avg = sum / iters;
            MPI_Reduce(&avg, &avgmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
            qsort(samples, (size_t)iters, sizeof(double), cmpd);
            med = pct(samples, iters, 0.5);
            MPI_Reduce(&med, &medmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
            verify(op, bytes);
            if (rank == 0) {
                printf("coll %s %s %d %zu p50=%.3f p99=%.3f avgmax=%.3f p50max=%.3f "
                       "iters=%d rtt0=%.0f rtt1=%.0f\n",
                       impl, op_name[op], size, bytes, med, pct(samples, iters, 0.99),
                       avgmax, medmax, iters, rtt0, rtt1);
                fflush(stdout);
            }
            if (op == OP_BARRIER)
                break;
        }
    }
    free(samples);
    free(rbuf);
    free(sbuf);
    MPI_Finalize();
    return 0;
}
