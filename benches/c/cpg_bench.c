/* corosync's side of `benches/abcast.sh`: one client of a corosync node's CPG (closed
 * process group) service that does what `zr-abcast --measure-from` does, so that the two
 * are measured the same way: every client multicasts agreed-order messages of SIZE
 * bytes as fast as flow control allows (or RATE a second), counts the messages it
 * delivers between MEASURE_FROM and STOP_AT (Unix ms), times its own from send to
 * delivery, notes every membership change with its time, and exits at UNTIL.
 *
 * usage: cpg_bench ID SIZE RATE MEASURE_FROM STOP_AT UNTIL
 * prints: bench id=ID delivered=N bytes=B window_ms=W p50_us=P p99_us=Q views=V
 *         (V: configuration changes between MEASURE_FROM and STOP_AT)
 *         view t=<unix ms> members=<n>   (one line per configuration change)
 *
 * Build: cc -O2 -o cpg_bench cpg_bench.c -lcpg (Debian: libcpg-dev). */
#include <corosync/cpg.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t unix_ms(void) { return now_ns() / 1000000ull; }

static unsigned my_id;
static uint64_t measure_from, stop_at;
static uint64_t delivered, bytes, views;
static uint64_t *lat;
static size_t nlat, caplat;

struct head {
    uint32_t origin;
    uint32_t pad;
    uint64_t sent_ns;
};

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
                    void *msg, size_t len)
{
    (void)h, (void)g, (void)nodeid, (void)pid;
    uint64_t t = unix_ms();
    if (t < measure_from || t >= stop_at || len < sizeof(struct head))
        return;
    delivered++;
    bytes += len;
    struct head hd;
    memcpy(&hd, msg, sizeof hd);
    if (hd.origin == my_id) {
        if (nlat == caplat) {
            caplat = caplat ? 2 * caplat : 1 << 16;
            lat = realloc(lat, caplat * sizeof *lat);
            if (!lat) {
                perror("realloc");
                exit(1);
            }
        }
        lat[nlat++] = (now_ns() - hd.sent_ns) / 1000;
    }
}

static void confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *m,
                    size_t nm, const struct cpg_address *l, size_t nl,
                    const struct cpg_address *j, size_t nj)
{
    (void)h, (void)g, (void)m, (void)l, (void)nl, (void)j, (void)nj;
    uint64_t t = unix_ms();
    if (t >= measure_from && t < stop_at)
        views++;
    printf("view t=%llu members=%zu\n", (unsigned long long)unix_ms(), nm);
    fflush(stdout);
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s ID SIZE RATE MEASURE_FROM STOP_AT UNTIL\n", argv[0]);
        return 2;
    }
    my_id = (unsigned)strtoul(argv[1], NULL, 10);
    size_t size = strtoull(argv[2], NULL, 10);
    uint64_t rate = strtoull(argv[3], NULL, 10);
    measure_from = strtoull(argv[4], NULL, 10);
    stop_at = strtoull(argv[5], NULL, 10);
    uint64_t until = strtoull(argv[6], NULL, 10);
    if (size < sizeof(struct head))
        size = sizeof(struct head);
    cpg_callbacks_t cb = {.cpg_deliver_fn = deliver, .cpg_confchg_fn = confchg};
    cpg_handle_t h;
    cs_error_t e;
    for (int tries = 0; (e = cpg_initialize(&h, &cb)) != CS_OK; tries++) {
        if (tries > 100) {
            fprintf(stderr, "cpg_initialize: error %d (is corosync running?)\n", e);
            return 1;
        }
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    struct cpg_name group;
    strcpy(group.value, "zrbench");
    group.length = (uint32_t)strlen(group.value);
    if ((e = cpg_join(h, &group)) != CS_OK) {
        fprintf(stderr, "cpg_join: error %d\n", e);
        return 1;
    }
    int fd;
    cpg_fd_get(h, &fd);
    char *buf = calloc(1, size);
    struct iovec iov = {.iov_base = buf, .iov_len = size};
    uint64_t gap_ns = rate ? 1000000000ull / rate : 0, next = now_ns();
    for (;;) {
        uint64_t t = unix_ms();
        if (t >= until)
            break;
        /* Deliveries first, without blocking. */
        cpg_dispatch(h, CS_DISPATCH_ALL);
        if (t >= stop_at || now_ns() < next) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 1);
            continue;
        }
        struct head hd = {.origin = my_id, .sent_ns = now_ns()};
        memcpy(buf, &hd, sizeof hd);
        e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
        if (e == CS_ERR_TRY_AGAIN) {
            /* Flow control: wait for deliveries. */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 1);
            continue;
        }
        if (e != CS_OK) {
            fprintf(stderr, "cpg_mcast_joined: error %d\n", e);
            return 1;
        }
        next = gap_ns ? next + gap_ns : 0;
    }
    uint64_t p50 = 0, p99 = 0;
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, cmp);
        p50 = lat[nlat / 2];
        p99 = lat[(size_t)(nlat * 0.99)];
    }
    printf("bench id=%u delivered=%llu bytes=%llu window_ms=%llu p50_us=%llu p99_us=%llu "
           "views=%llu\n",
           my_id, (unsigned long long)delivered, (unsigned long long)bytes,
           (unsigned long long)(stop_at - measure_from), (unsigned long long)p50,
           (unsigned long long)p99, (unsigned long long)views);
    cpg_finalize(h);
    return 0;
}
