/* OSU-style ping-pong latency (per-iteration RTT percentiles) and streaming bandwidth.
 * Usage: mpirun -np 2 ./pingpong <impl-name>
 * Output: "latency <impl> <size> p50=.. p90=.. p99=.." (one-way us = RTT/2)
 *         "bw <impl> <size> MBps=.."  (median of several windows, MB = 1e6 B) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 64

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double pct(double *v, int n, double p) {
    int i = (int)(p * (n - 1) + 0.5);
    if (i >= n) i = n - 1;
    return v[i];
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *impl = argc > 1 ? argv[1] : "mpi";
    if (size != 2) {
        if (rank == 0) fprintf(stderr, "needs exactly 2 ranks\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int peer = 1 - rank;
    const size_t sizes[] = {0, 8, 64, 1024, 8192, 65536, 1 << 20, 4 << 20};
    const int nsizes = sizeof(sizes) / sizeof(sizes[0]);
    size_t maxn = 4 << 20;
    char *sbuf = malloc(maxn), *rbuf = malloc(maxn);
    memset(sbuf, 1, maxn);
    memset(rbuf, 0, maxn);
    double *samples = malloc(sizeof(double) * 10000);

    for (int s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        int iters = n <= 8192 ? 10000 : 200;
        int warm = n <= 8192 ? 1000 : 20;
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < warm + iters; i++) {
            if (rank == 0) {
                double t0 = MPI_Wtime();
                MPI_Send(sbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
                MPI_Recv(rbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                double t1 = MPI_Wtime();
                if (i >= warm) samples[i - warm] = (t1 - t0) * 1e6 / 2.0;
            } else {
                MPI_Recv(rbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(sbuf, (int)n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
            }
        }
        if (rank == 0) {
            qsort(samples, iters, sizeof(double), cmpd);
            printf("latency %s %zu p50=%.3f p90=%.3f p99=%.3f\n", impl, n,
                   pct(samples, iters, 0.5), pct(samples, iters, 0.9), pct(samples, iters, 0.99));
            fflush(stdout);
        }
    }

    const size_t bwsizes[] = {8, 1024, 65536, 1 << 20, 4 << 20};
    MPI_Request reqs[WINDOW];
    char ack[4] = {0};
    for (size_t s = 0; s < sizeof bwsizes / sizeof bwsizes[0]; s++) {
        size_t n = bwsizes[s];
        int warm = 2, reps = n <= 65536 ? 200 : (n <= (1 << 20) ? 15 : 7);
        double rates[256];
        MPI_Barrier(MPI_COMM_WORLD);
        for (int r = 0; r < warm + reps; r++) {
            if (rank == 0) {
                double t0 = MPI_Wtime();
                for (int w = 0; w < WINDOW; w++)
                    MPI_Isend(sbuf, (int)n, MPI_CHAR, peer, 100, MPI_COMM_WORLD, &reqs[w]);
                MPI_Waitall(WINDOW, reqs, MPI_STATUSES_IGNORE);
                MPI_Recv(ack, 4, MPI_CHAR, peer, 101, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                double t1 = MPI_Wtime();
                if (r >= warm) rates[r - warm] = (double)n * WINDOW / (t1 - t0) / 1e6;
            } else {
                /* Distinct parts of the buffer while the window fits (as zr-pingpong must,
                 * since Rust will not alias them); one buffer for larger messages. */
                for (int w = 0; w < WINDOW; w++)
                    MPI_Irecv(n * WINDOW <= maxn ? rbuf + w * n : rbuf, (int)n, MPI_CHAR, peer,
                              100, MPI_COMM_WORLD, &reqs[w]);
                MPI_Waitall(WINDOW, reqs, MPI_STATUSES_IGNORE);
                MPI_Send(ack, 4, MPI_CHAR, peer, 101, MPI_COMM_WORLD);
            }
        }
        if (rank == 0) {
            qsort(rates, reps, sizeof(double), cmpd);
            printf("bw %s %zu MBps=%.1f\n", impl, n, pct(rates, reps, 0.5));
            fflush(stdout);
        }
    }
    free(sbuf); free(rbuf); free(samples);
    MPI_Finalize();
    return 0;
}
