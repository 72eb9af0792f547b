/* osu_bench.c - the benchmarks of zr-bench (benches/src/bin/zr-bench.rs) as one MPI C
 * program, for building with zrcc, mpicc.openmpi and mpicc.mpich alike and comparing the
 * three on the same machine (benches/compare).
 *
 * usage: <launcher> -n N ./osu_bench <test> [-m MIN] [-M MAX] [-i ITERS] [-x WARMUP]
 *                                           [-W WINDOW] [-n IMPL-NAME]
 *   test: latency | bw | bibw (exactly 2 ranks) | bcast | allreduce | reduce | allgather
 *         | alltoall | barrier
 *   MIN, MAX: bytes (K and M suffixes); sizes are 0 (when MIN is 0) and the powers of two
 *   from MIN to MAX, reductions only whole 4-byte floats; defaults 0 and 4M (point to
 *   point) or 1M (collectives).
 *   ITERS, WARMUP, WINDOW: as zr-bench (defaults: 10000 latency / 1000 collective
 *   iterations up to 8 KiB and 100 above; bandwidth windows 100, 20 above 64 KiB; warm-up
 *   a tenth, at least 2; window 64).
 *
 * Every timed iteration is kept and the percentiles taken from the sorted times (zr-bench
 * uses an hdrhistogram with 3 significant digits; the same definition otherwise: the
 * smallest time with at least that share of the times at or below it). Output on rank 0:
 * CSV with zr-bench's header and columns (times in microseconds):
 *   test,implementation,ranks,size,iterations,mb_per_s,mean_us,p50_us,p90_us,p99_us,p999_us,max_us
 * latency: half of each round trip between ranks 0 and 1. bw: rank 0 sends WINDOW
 * MPI_Isend to rank 1, which posted WINDOW MPI_Irecv, then a 4-byte acknowledgement;
 * bibw: both ways at once; the time of each window, MB/s (1e6 bytes) from the median
 * window. Collectives: each call timed on every rank after an untimed MPI_Barrier; mean =
 * the mean over ranks of each rank's mean, percentiles = the largest over ranks. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum test { LATENCY, BW, BIBW, BCAST, ALLREDUCE, REDUCE, ALLGATHER, ALLTOALL, BARRIER };
static const char *names[] = {"latency",   "bw",        "bibw",     "bcast",  "allreduce",
                              "reduce",    "allgather", "alltoall", "barrier"};

static int rank, size;

static void usage(const char *why)
{
    if (rank == 0)
        fprintf(stderr,
                "osu_bench: %s\nusage: osu_bench <latency|bw|bibw|bcast|allreduce|reduce|"
                "allgather|alltoall|barrier> [-m MIN] [-M MAX] [-i ITERS] [-x WARMUP] "
                "[-W WINDOW] [-n IMPL-NAME]\n",
                why);
    MPI_Finalize();
    exit(2);
}

static long parse_size(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0)
        usage("a size must be a byte count (e.g. 0, 64, 8K, 4M)");
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    if (*end != '\0')
        usage("a size must be a byte count (e.g. 0, 64, 8K, 4M)");
    return v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* stats[] = {mean, p50, p90, p99, p99.9, max} of t[0..n) (sorted here), microseconds */
static void summarise(double *t, long n, double stats[6])
{
    static const double q[4] = {0.5, 0.9, 0.99, 0.999};
    double sum = 0;
    long i;
    memset(stats, 0, 6 * sizeof(double));
    if (n == 0)
        return;
    qsort(t, (size_t)n, sizeof(double), cmp);
    for (i = 0; i < n; i++)
        sum += t[i];
    stats[0] = sum / (double)n;
    for (i = 0; i < 4; i++) {
        long k = (long)(q[i] * (double)n + 0.999999999) - 1;
        stats[1 + i] = t[k < 0 ? 0 : k >= n ? n - 1 : k];
    }
    stats[5] = t[n - 1];
}

static void row(const char *test, const char *impl, long bytes, long iters, double mbps,
                const double s[6])
{
    char bw[32] = "";
    if (mbps >= 0)
        snprintf(bw, sizeof bw, "%.3f", mbps);
    printf("%s,%s,%d,%ld,%ld,%s,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", test, impl, size, bytes, iters,
           bw, s[0], s[1], s[2], s[3], s[4], s[5]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    enum test t = BARRIER;
    long min = 0, max = -1, iters_opt = -1, warm_opt = -1, window = 64, n, it, i;
    const char *impl = "unnamed";
    int found = 0, a;
    char *sbuf, *rbuf;
    float *fs, *fr;
    double *times;
    MPI_Request *reqs;
    MPI_Status *sts;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2)
        usage("which benchmark?");
    for (i = 0; i <= BARRIER; i++)
        if (strcmp(argv[1], names[i]) == 0)
            t = (enum test)i, found = 1;
    if (!found)
        usage("unknown benchmark");
    for (a = 2; a < argc; a += 2) {
        if (a + 1 >= argc)
            usage("an option lacks its value");
        if (strcmp(argv[a], "-m") == 0)
            min = parse_size(argv[a + 1]);
        else if (strcmp(argv[a], "-M") == 0)
            max = parse_size(argv[a + 1]);
        else if (strcmp(argv[a], "-i") == 0)
            iters_opt = atol(argv[a + 1]);
        else if (strcmp(argv[a], "-x") == 0)
            warm_opt = atol(argv[a + 1]);
        else if (strcmp(argv[a], "-W") == 0)
            window = atol(argv[a + 1]);
        else if (strcmp(argv[a], "-n") == 0)
            impl = argv[a + 1];
        else
            usage("unknown option");
    }
    if (t <= BIBW && size != 2)
        usage("latency, bw and bibw need exactly 2 ranks");
    if (window < 1)
        usage("the window must be at least 1");
    if (max < 0)
        max = t <= BIBW ? 4L << 20 : 1L << 20;
    if (t == BARRIER)
        min = max = 0;

    sbuf = malloc((size_t)(max > 0 ? max : 1) * (size_t)(size > window ? size : window));
    rbuf = malloc((size_t)(max > 0 ? max : 1) * (size_t)(size > window ? size : window));
    fs = malloc((size_t)max + 4);
    fr = malloc((size_t)max + 4);
    reqs = malloc(sizeof(MPI_Request) * 2 * (size_t)window);
    sts = malloc(sizeof(MPI_Status) * 2 * (size_t)window);
    if (!sbuf || !rbuf || !fs || !fr || !reqs || !sts)
        usage("out of memory");
    memset(sbuf, 1, (size_t)(max > 0 ? max : 1) * (size_t)(size > window ? size : window));
    for (i = 0; i < max / 4; i++)
        fs[i] = (float)(i % 1000);
    if (rank == 0)
        printf("test,implementation,ranks,size,iterations,mb_per_s,mean_us,p50_us,p90_us,p99_us,"
               "p999_us,max_us\n");

    for (n = min; n <= max;) {
        long iters, warm, cnt = 0;
        double stats[6], worst[6], mean = 0, mbps = -1;
        int reduction = t == ALLREDUCE || t == REDUCE;
        if (reduction && (n < 4 || n % 4)) {
            n = n == 0 ? 1 : n * 2;
            continue;
        }
        if (t == BW || t == BIBW)
            iters = iters_opt >= 0 ? iters_opt : n > (64 << 10) ? 20 : 100;
        else
            iters = iters_opt >= 0 ? iters_opt : n > (8 << 10) ? 100 : t == LATENCY ? 10000 : 1000;
        warm = warm_opt >= 0 ? warm_opt : (iters / 10 > 2 ? iters / 10 : 2);
        times = malloc(sizeof(double) * (size_t)(iters + 1));
        if (!times)
            usage("out of memory");
        MPI_Barrier(MPI_COMM_WORLD);
        for (it = 0; it < warm + iters; it++) {
            double t0, dt;
            int peer = 1 - rank;
            if (t == LATENCY) {
                if (rank == 0) {
                    t0 = MPI_Wtime();
                    MPI_Send(sbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
                    MPI_Recv(rbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    dt = (MPI_Wtime() - t0) / 2;
                } else {
                    MPI_Recv(rbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    MPI_Send(sbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
                    dt = 0;
                }
            } else if (t == BW || t == BIBW) {
                int k = 0, w, ack = 0;
                int sends = rank == 0 || t == BIBW, recvs = rank == 1 || t == BIBW;
                t0 = MPI_Wtime();
                if (recvs)
                    for (w = 0; w < window; w++)
                        MPI_Irecv(rbuf + (size_t)w * (size_t)n, (int)n, MPI_CHAR, peer, 100,
                                  MPI_COMM_WORLD, &reqs[k++]);
                if (sends)
                    for (w = 0; w < window; w++)
                        MPI_Isend(sbuf, (int)n, MPI_CHAR, peer, 100, MPI_COMM_WORLD, &reqs[k++]);
                MPI_Waitall(k, reqs, sts);
                if (rank == 0)
                    MPI_Recv(&ack, 1, MPI_INT, peer, 101, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                else
                    MPI_Send(&ack, 1, MPI_INT, peer, 101, MPI_COMM_WORLD);
                dt = MPI_Wtime() - t0;
            } else {
                MPI_Barrier(MPI_COMM_WORLD);
                t0 = MPI_Wtime();
                switch (t) {
                case BCAST:
                    MPI_Bcast(sbuf, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
                    break;
                case ALLREDUCE:
                    MPI_Allreduce(fs, fr, (int)(n / 4), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                    break;
                case REDUCE:
                    MPI_Reduce(fs, fr, (int)(n / 4), MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
                    break;
                case ALLGATHER:
                    MPI_Allgather(sbuf, (int)n, MPI_CHAR, rbuf, (int)n, MPI_CHAR, MPI_COMM_WORLD);
                    break;
                case ALLTOALL:
                    MPI_Alltoall(sbuf, (int)n, MPI_CHAR, rbuf, (int)n, MPI_CHAR, MPI_COMM_WORLD);
                    break;
                default:
                    MPI_Barrier(MPI_COMM_WORLD);
                }
                dt = MPI_Wtime() - t0;
            }
            if (it >= warm)
                times[cnt++] = dt * 1e6;
        }
        summarise(times, cnt, stats);
        free(times);
        if (t <= BIBW) {
            if (t != LATENCY && stats[1] > 0)
                mbps = (double)n * (double)window * (t == BIBW ? 2.0 : 1.0) / stats[1];
            if (rank == 0)
                row(names[t], impl, n, cnt, mbps, stats);
        } else {
            MPI_Allreduce(stats, worst, 6, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            MPI_Allreduce(&stats[0], &mean, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            worst[0] = mean / size;
            if (rank == 0)
                row(names[t], impl, n, cnt, -1, worst);
        }
        if (n == max)
            break;
        if (n == 0)
            n = 1;
        else {
            long next = 1;
            while (next <= n)
                next *= 2;
            n = next > max ? max : next;
        }
    }
    free(sbuf);
    free(rbuf);
    free(fs);
    free(fr);
    free(reqs);
    free(sts);
    MPI_Finalize();
    return 0;
}
