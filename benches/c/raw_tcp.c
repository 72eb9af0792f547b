/*
 * Raw TCP between two namespaces, for benches/abcast.sh: a sender writing 64 KiB at a
 * time from one buffer, and a receiver that either reads into one 64 KiB buffer over and
 * over (what iperf3 does: the buffer stays in the CPU's cache) or keeps what it receives,
 * reading on through a KEEP_MIB region and only then starting over (what a receiver that
 * hands its data on without copying does, zerorank's ring broadcast keeping its window
 * of broadcasts: every byte lands in memory not touched for a while).
 *
 *   raw_tcp recv PORT SECONDS KEEP_MIB     prints the MB/s received over SECONDS, after
 *                                          0.5 s of warm-up (KEEP_MIB 0: one 64 KiB buffer)
 *   raw_tcp send HOST PORT SECONDS         sends for SECONDS (+ 1 s), then closes
 *
 * Both give up after SECONDS + 10 s whatever happens (alarm), so a run never hangs.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CHUNK = 64 << 10 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int recv_side(int port, double secs, size_t keep) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) {
        perror("raw_tcp recv: bind/listen");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    if (s < 0) {
        perror("raw_tcp recv: accept");
        return 1;
    }
    size_t size = keep ? keep : CHUNK, off = 0, total = 0;
    char *buf = malloc(size);
    if (!buf) {
        perror("raw_tcp recv: malloc");
        return 1;
    }
    memset(buf, 1, size); /* touched once, as a reused pool would be */
    double t0 = now(), start = 0, t = t0;
    for (;;) {
        size_t room = size - off < CHUNK ? size - off : CHUNK;
        ssize_t n = recv(s, buf + off, room, 0);
        if (n <= 0)
            break;
        t = now();
        if (t - t0 >= 0.5) {
            if (start == 0)
                start = t;
            total += (size_t)n;
        }
        if (keep) {
            off += (size_t)n;
            if (off == size)
                off = 0;
        }
        if (start != 0 && t - start >= secs)
            break;
    }
    if (start == 0 || t <= start) {
        fprintf(stderr, "raw_tcp recv: the sender stopped before the measurement\n");
        return 1;
    }
    printf("%.0f\n", total / (t - start) / 1e6);
    return 0;
}

static int send_side(const char *host, int port, double secs) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "raw_tcp send: bad address %s\n", host);
        return 2;
    }
    int s = -1;
    for (int i = 0; i < 100; i++) { /* the receiver may not listen yet: 2 s at most */
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
            break;
        close(s);
        s = -1;
        usleep(20000);
    }
    if (s < 0) {
        perror("raw_tcp send: connect");
        return 1;
    }
    char *buf = malloc(CHUNK);
    memset(buf, 2, CHUNK);
    double end = now() + secs + 1;
    while (now() < end)
        if (send(s, buf, CHUNK, 0) <= 0)
            break;
    close(s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "recv") == 0) {
        alarm((unsigned)atof(argv[3]) + 10);
        return recv_side(atoi(argv[2]), atof(argv[3]), (size_t)atoi(argv[4]) << 20);
    }
    if (argc == 5 && strcmp(argv[1], "send") == 0) {
        alarm((unsigned)atof(argv[4]) + 10);
        return send_side(argv[2], atoi(argv[3]), atof(argv[4]));
    }
    fprintf(stderr, "usage: raw_tcp recv PORT SECONDS KEEP_MIB | raw_tcp send HOST PORT SECONDS\n");
    return 2;
}
