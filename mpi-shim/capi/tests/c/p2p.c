/* p2p.c - blocking point-to-point: Send/Recv/Ssend (star pattern with
 * wildcard receives), Sendrecv and Sendrecv_replace around a ring, Probe /
 * Iprobe with MPI_ANY_SOURCE / MPI_ANY_TAG, Get_count / Get_elements
 * (including MPI_UNDEFINED for a partial derived element), MPI_PROC_NULL as
 * source / destination of every call, non-overtaking order per sender (mixing
 * small and large messages), a >= 8 MiB message with a checked pattern,
 * zero-length messages, and truncation of a small message (MPI_ERR_TRUNCATE
 * with MPI_ERRORS_RETURN; bytes past the receive count untouched; more in
 * truncate.c). */
#define TEST_NAME "p2p"
#include "check.h"

static int rank, size, left, right;

static int val(int src, int dst, int i) { return src * 1000003 + dst * 1009 + i; }

/* Rank 0 talks to every other rank in turn: Send -> Recv, then the other
 * rank answers with Ssend, received with MPI_ANY_SOURCE / MPI_ANY_TAG. */
static void check_star(void)
{
    int buf[64], i, r, cnt;
    MPI_Status st;

    if (rank == 0) {
        int *seen = calloc((size_t)size, sizeof(int));
        for (r = 1; r < size; r++) {
            for (i = 0; i < r + 1; i++)
                buf[i] = val(0, r, i);
            CHECK_MPI(MPI_Send(buf, r + 1, MPI_INT, r, r, MPI_COMM_WORLD));
        }
        for (r = 1; r < size; r++) {
            memset(buf, 0, sizeof buf);
            CHECK_MPI(MPI_Recv(buf, 64, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG,
                               MPI_COMM_WORLD, &st));
            CHECK(st.MPI_SOURCE >= 1 && st.MPI_SOURCE < size,
                  "star reply: bad source %d", st.MPI_SOURCE);
            CHECK_EQ_INT(seen[st.MPI_SOURCE], 0, "duplicate reply from %d",
                         st.MPI_SOURCE);
            seen[st.MPI_SOURCE] = 1;
            CHECK_EQ_INT(st.MPI_TAG, 100 + st.MPI_SOURCE, "star reply tag");
            CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
            CHECK_EQ_INT(cnt, 2 * st.MPI_SOURCE, "star reply count");
            for (i = 0; i < cnt; i++)
                CHECK_EQ_INT(buf[i], val(st.MPI_SOURCE, 0, i),
                             "star reply from %d elem %d", st.MPI_SOURCE, i);
        }
        free(seen);
    } else {
        memset(buf, 0, sizeof buf);
        CHECK_MPI(MPI_Recv(buf, 64, MPI_INT, 0, rank, MPI_COMM_WORLD, &st));
        CHECK_EQ_INT(st.MPI_SOURCE, 0, "star: status.MPI_SOURCE");
        CHECK_EQ_INT(st.MPI_TAG, rank, "star: status.MPI_TAG");
        CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
        CHECK_EQ_INT(cnt, rank + 1, "star: Get_count");
        for (i = 0; i < rank + 1; i++)
            CHECK_EQ_INT(buf[i], val(0, rank, i), "star: elem %d", i);
        for (i = 0; i < 2 * rank; i++)
            buf[i] = val(rank, 0, i);
        CHECK_MPI(MPI_Ssend(buf, 2 * rank, MPI_INT, 0, 100 + rank,
                            MPI_COMM_WORLD));
    }
}

static void check_sendrecv(void)
{
    double out[5], in[5];
    int rep[7], i, cnt;
    MPI_Status st;

    for (i = 0; i < 5; i++) {
        out[i] = rank * 10.0 + i + 0.25;
        in[i] = -1.0;
    }
    CHECK_MPI(MPI_Sendrecv(out, 5, MPI_DOUBLE, right, 11, in, 5, MPI_DOUBLE,
                           left, 11, MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(st.MPI_SOURCE, left, "Sendrecv: source");
    CHECK_EQ_INT(st.MPI_TAG, 11, "Sendrecv: tag");
    CHECK_MPI(MPI_Get_count(&st, MPI_DOUBLE, &cnt));
    CHECK_EQ_INT(cnt, 5, "Sendrecv: count");
    for (i = 0; i < 5; i++)
        CHECK_EQ_DBL(in[i], left * 10.0 + i + 0.25, "Sendrecv elem %d", i);

    /* wildcard receive side */
    CHECK_MPI(MPI_Sendrecv(out, 3, MPI_DOUBLE, right, 12 + rank, in, 5,
                           MPI_DOUBLE, MPI_ANY_SOURCE, MPI_ANY_TAG,
                           MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(st.MPI_SOURCE, left, "Sendrecv(ANY): source");
    CHECK_EQ_INT(st.MPI_TAG, 12 + left, "Sendrecv(ANY): tag");
    CHECK_MPI(MPI_Get_count(&st, MPI_DOUBLE, &cnt));
    CHECK_EQ_INT(cnt, 3, "Sendrecv(ANY): count");

    for (i = 0; i < 7; i++)
        rep[i] = val(rank, right, i);
    CHECK_MPI(MPI_Sendrecv_replace(rep, 7, MPI_INT, right, 13, left, 13,
                                   MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(st.MPI_SOURCE, left, "Sendrecv_replace: source");
    for (i = 0; i < 7; i++)
        CHECK_EQ_INT(rep[i], val(left, rank, i), "Sendrecv_replace elem %d",
                     i);
}

/* Every rank sends one message to its right neighbour with tag 200+rank and
 * (rank % 3) + 1 ints; the receiver discovers it with Probe / Iprobe. */
static void check_probe(void)
{
    MPI_Request rq;
    MPI_Status st;
    int out[3], in[3] = {-1, -1, -1}, i, cnt, flag = 0, n = rank % 3 + 1;

    for (i = 0; i < n; i++)
        out[i] = val(rank, right, i);
    CHECK_MPI(MPI_Isend(out, n, MPI_INT, right, 200 + rank, MPI_COMM_WORLD,
                        &rq));
    CHECK_MPI(MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(st.MPI_SOURCE, left, "Probe(ANY,ANY): source");
    CHECK_EQ_INT(st.MPI_TAG, 200 + left, "Probe(ANY,ANY): tag");
    CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
    CHECK_EQ_INT(cnt, left % 3 + 1, "Probe(ANY,ANY): count");
    /* probing again (specific source, specific tag) sees the same message */
    CHECK_MPI(MPI_Iprobe(left, 200 + left, MPI_COMM_WORLD, &flag, &st));
    CHECK_EQ_INT(flag, 1, "Iprobe after Probe: flag");
    CHECK_EQ_INT(st.MPI_SOURCE, left, "Iprobe: source");
    /* nothing with another tag */
    CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, 999, MPI_COMM_WORLD, &flag, &st));
    CHECK_EQ_INT(flag, 0, "Iprobe(tag 999) with no such message");
    CHECK_MPI(MPI_Recv(in, cnt, MPI_INT, left, 200 + left, MPI_COMM_WORLD,
                       &st));
    for (i = 0; i < cnt; i++)
        CHECK_EQ_INT(in[i], val(left, rank, i), "probed message elem %d", i);
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    CHECK(rq == MPI_REQUEST_NULL, "Wait did not set MPI_REQUEST_NULL");

    /* Iprobe polling until the message arrives. */
    CHECK_MPI(MPI_Isend(out, n, MPI_INT, right, 300, MPI_COMM_WORLD, &rq));
    do {
        CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, 300, MPI_COMM_WORLD, &flag, &st));
    } while (!flag);
    CHECK_EQ_INT(st.MPI_SOURCE, left, "Iprobe loop: source");
    CHECK_EQ_INT(st.MPI_TAG, 300, "Iprobe loop: tag");
    CHECK_MPI(MPI_Recv(in, 3, MPI_INT, left, 300, MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
    CHECK_EQ_INT(cnt, left % 3 + 1, "Iprobe loop: count");
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
}

/* Get_count with a derived type: 3 ints received as pairs of ints is not a
 * whole number of elements -> MPI_UNDEFINED; Get_elements counts basic
 * elements. */
static void check_get_count(void)
{
    MPI_Datatype pair;
    MPI_Status st;
    MPI_Request rq;
    int out[3] = {1, 2, 3}, in[8], cnt = -7;
    unsigned char bo[10], bi[100];

    CHECK_MPI(MPI_Type_contiguous(2, MPI_INT, &pair));
    CHECK_MPI(MPI_Type_commit(&pair));
    CHECK_MPI(MPI_Isend(out, 3, MPI_INT, right, 400, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Recv(in, 4, pair, left, 400, MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, pair, &cnt));
    CHECK_EQ_INT(cnt, MPI_UNDEFINED, "Get_count(3 ints as int pairs)");
    CHECK_MPI(MPI_Get_elements(&st, pair, &cnt));
    CHECK_EQ_INT(cnt, 3, "Get_elements(3 ints as int pairs)");
    CHECK_EQ_INT(in[0] + in[1] * 10 + in[2] * 100, 321, "pair payload");
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));

    /* 4 ints = 2 whole pairs */
    CHECK_MPI(MPI_Sendrecv(out, 2, pair, right, 401, in, 4, MPI_INT, left, 401,
                           MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
    CHECK_EQ_INT(cnt, 4, "Get_count(2 pairs as ints)");

    memset(bo, 7, sizeof bo);
    CHECK_MPI(MPI_Sendrecv(bo, 10, MPI_BYTE, right, 402, bi, 100, MPI_BYTE,
                           left, 402, MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, MPI_BYTE, &cnt));
    CHECK_EQ_INT(cnt, 10, "Get_count(10 bytes)");
    CHECK_MPI(MPI_Type_free(&pair));
}

static void check_proc_null(void)
{
    int buf[4] = {11, 22, 33, 44}, i, flag = 0;
    MPI_Status st;
    MPI_Request rq;

    CHECK_MPI(MPI_Send(buf, 4, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Ssend(buf, 4, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Rsend(buf, 4, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD));

    st.MPI_SOURCE = 77;
    st.MPI_TAG = 77;
    CHECK_MPI(MPI_Recv(buf, 4, MPI_INT, MPI_PROC_NULL, 5, MPI_COMM_WORLD,
                       &st));
    CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Recv(PROC_NULL)");
    for (i = 0; i < 4; i++)
        CHECK_EQ_INT(buf[i], 11 * (i + 1), "Recv(PROC_NULL) touched buf");

    CHECK_MPI(MPI_Irecv(buf, 4, MPI_INT, MPI_PROC_NULL, MPI_ANY_TAG,
                        MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Test(&rq, &flag, &st));
    CHECK_EQ_INT(flag, 1, "Test(Irecv(PROC_NULL)) completes at once");
    CHECK(rq == MPI_REQUEST_NULL, "Test did not free the request");
    /* MPICH < 4.2 reports source 0, tag 0 (pmodels/mpich#6805) */
    DEVIATION("mpich-procnull-status")
        CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Irecv(PROC_NULL)");

    CHECK_MPI(MPI_Isend(buf, 4, MPI_INT, MPI_PROC_NULL, 1, MPI_COMM_WORLD,
                        &rq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK_MPI(MPI_Issend(buf, 4, MPI_INT, MPI_PROC_NULL, 1, MPI_COMM_WORLD,
                         &rq));
    CHECK_MPI(MPI_Wait(&rq, &st));

    CHECK_MPI(MPI_Sendrecv(buf, 4, MPI_INT, MPI_PROC_NULL, 1, buf, 4, MPI_INT,
                           MPI_PROC_NULL, 1, MPI_COMM_WORLD, &st));
    CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Sendrecv(PROC_NULL, PROC_NULL)");
    CHECK_MPI(MPI_Sendrecv_replace(buf, 4, MPI_INT, MPI_PROC_NULL, 1,
                                   MPI_PROC_NULL, 1, MPI_COMM_WORLD, &st));
    CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Sendrecv_replace(PROC_NULL)");
    for (i = 0; i < 4; i++)
        CHECK_EQ_INT(buf[i], 11 * (i + 1), "PROC_NULL recvs touched buf");

    /* Send real data one way, PROC_NULL the other way (the matching
     * operation is pre-posted so that nothing can block). */
    {
        int in = -1, out = rank, in2 = -1;
        CHECK_MPI(MPI_Irecv(&in2, 1, MPI_INT, left, 2, MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Sendrecv(&out, 1, MPI_INT, right, 2, &in, 1, MPI_INT,
                               MPI_PROC_NULL, 2, MPI_COMM_WORLD, &st));
        CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Sendrecv(right, PROC_NULL)");
        CHECK_EQ_INT(in, -1, "Sendrecv from PROC_NULL touched buf");
        CHECK_MPI(MPI_Wait(&rq, &st));
        CHECK_EQ_INT(in2, left, "Sendrecv(right, PROC_NULL): sent value");
        CHECK_MPI(MPI_Isend(&out, 1, MPI_INT, right, 3, MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Sendrecv(&out, 1, MPI_INT, MPI_PROC_NULL, 3, &in, 1,
                               MPI_INT, left, 3, MPI_COMM_WORLD, &st));
        CHECK_EQ_INT(in, left, "Sendrecv(PROC_NULL, left): value");
        CHECK_EQ_INT(st.MPI_SOURCE, left, "Sendrecv(PROC_NULL, left): src");
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    }

    CHECK_MPI(MPI_Probe(MPI_PROC_NULL, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
    CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Probe(PROC_NULL)");
    flag = 0;
    CHECK_MPI(MPI_Iprobe(MPI_PROC_NULL, 3, MPI_COMM_WORLD, &flag, &st));
    CHECK_EQ_INT(flag, 1, "Iprobe(PROC_NULL): flag");
    CHECK_NULL_STATUS(st, MPI_PROC_NULL, "Iprobe(PROC_NULL)");
}

/* Non-overtaking: NMSG messages with the same tag from the same sender are
 * received in order, even when large (rendezvous) and small (eager)
 * messages alternate and receives use MPI_ANY_SOURCE. */
#define NMSG 64
#define BIGN (64 * 1024)
static void check_ordering(void)
{
    MPI_Request rq[NMSG];
    int *out[NMSG], *in, i, k, cnt, len;
    MPI_Status st;

    in = malloc(sizeof(int) * BIGN);
    for (k = 0; k < NMSG; k++) {
        len = (k % 8 == 3) ? BIGN : 1 + k % 5;
        out[k] = malloc(sizeof(int) * (size_t)len);
        for (i = 0; i < len; i++)
            out[k][i] = val(rank, k, i);
        CHECK_MPI(MPI_Isend(out[k], len, MPI_INT, right, 500, MPI_COMM_WORLD,
                            &rq[k]));
    }
    for (k = 0; k < NMSG; k++) {
        len = (k % 8 == 3) ? BIGN : 1 + k % 5;
        CHECK_MPI(MPI_Recv(in, BIGN, MPI_INT, MPI_ANY_SOURCE, 500,
                           MPI_COMM_WORLD, &st));
        CHECK_EQ_INT(st.MPI_SOURCE, left, "ordering: source of msg %d", k);
        CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
        CHECK_EQ_INT(cnt, len, "ordering: length of message %d", k);
        CHECK_EQ_INT(in[0], val(left, k, 0), "ordering: message %d first", k);
        CHECK_EQ_INT(in[len - 1], val(left, k, len - 1),
                     "ordering: message %d last", k);
    }
    CHECK_MPI(MPI_Waitall(NMSG, rq, MPI_STATUSES_IGNORE));
    for (k = 0; k < NMSG; k++)
        free(out[k]);
    free(in);
}

/* >= 8 MiB with an odd tail, checked byte by byte, in both blocking and
 * nonblocking forms. */
static unsigned char pat(int src, size_t i)
{
    return (unsigned char)((size_t)src * 131u + i * 7u + (i >> 9) + (i >> 17));
}
static void check_large(void)
{
    const size_t n = (8u << 20) + 13;
    unsigned char *out = malloc(n), *in = malloc(n);
    size_t i;
    int cnt;
    MPI_Status st;
    MPI_Request rq[2];

    for (i = 0; i < n; i++)
        out[i] = pat(rank, i);
    memset(in, 0, n);
    CHECK_MPI(MPI_Sendrecv(out, (int)n, MPI_BYTE, right, 600, in, (int)n,
                           MPI_BYTE, left, 600, MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, MPI_BYTE, &cnt));
    CHECK_EQ_INT(cnt, n, "large: Get_count");
    for (i = 0; i < n; i++)
        if (in[i] != pat(left, i))
            CHECK_EQ_UINT(in[i], pat(left, i), "large msg byte %zu", i);

    memset(in, 0, n);
    CHECK_MPI(MPI_Irecv(in, (int)n, MPI_BYTE, left, 601, MPI_COMM_WORLD,
                        &rq[0]));
    CHECK_MPI(MPI_Isend(out, (int)n, MPI_BYTE, right, 601, MPI_COMM_WORLD,
                        &rq[1]));
    CHECK_MPI(MPI_Waitall(2, rq, MPI_STATUSES_IGNORE));
    for (i = 0; i < n; i++)
        if (in[i] != pat(left, i))
            CHECK_EQ_UINT(in[i], pat(left, i), "large Isend byte %zu", i);
    free(out);
    free(in);
}

static void check_zero_length(void)
{
    int dummy = 5, in = 9, cnt = -1;
    MPI_Status st;
    MPI_Request rq;

    CHECK_MPI(MPI_Isend(&dummy, 0, MPI_INT, right, 700, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Recv(&in, 1, MPI_INT, MPI_ANY_SOURCE, 700, MPI_COMM_WORLD,
                       &st));
    CHECK_EQ_INT(st.MPI_SOURCE, left, "zero-length: source");
    CHECK_EQ_INT(st.MPI_TAG, 700, "zero-length: tag");
    CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
    CHECK_EQ_INT(cnt, 0, "zero-length: Get_count");
    CHECK_EQ_INT(in, 9, "zero-length receive modified the buffer");
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));

    /* zero-length with count 0 on both sides, blocking synchronous */
    if (size > 1) {
        if (rank == 0)
            CHECK_MPI(MPI_Ssend(&dummy, 0, MPI_INT, 1, 701, MPI_COMM_WORLD));
        else if (rank == 1) {
            CHECK_MPI(MPI_Recv(&in, 0, MPI_INT, 0, 701, MPI_COMM_WORLD, &st));
            CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
            CHECK_EQ_INT(cnt, 0, "zero-length Ssend: Get_count");
        }
    }
}

static void check_truncate(void)
{
    MPI_Comm c;
    MPI_Request rq;
    MPI_Status st;
    int out[10], in[10], i;

    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
    CHECK_MPI(MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN));
    for (i = 0; i < 10; i++)
        out[i] = val(rank, right, i);
    for (i = 0; i < 10; i++)
        in[i] = -100 - i;
    CHECK_MPI(MPI_Isend(out, 10, MPI_INT, right, 800, c, &rq));
    CHECK_ERR_CLASS(MPI_Recv(in, 5, MPI_INT, left, 800, c, &st),
                    MPI_ERR_TRUNCATE);
    for (i = 5; i < 10; i++)
        CHECK_EQ_INT(in[i], -100 - i, "truncated receive wrote past count "
                                      "(element %d)", i);
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));

    /* The communicator still works afterwards.  (Large / nonblocking
     * truncation: see truncate.c.) */
    CHECK_MPI(MPI_Sendrecv(out, 10, MPI_INT, right, 802, in, 10, MPI_INT,
                           left, 802, c, &st));
    for (i = 0; i < 10; i++)
        CHECK_EQ_INT(in[i], val(left, rank, i), "after truncation elem %d", i);
    CHECK_MPI(MPI_Comm_free(&c));
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    right = (rank + 1) % size;
    left = (rank + size - 1) % size;

    /* Barriers between phases: a phase's wildcard receives must only see
     * that phase's messages. */
    check_star();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_sendrecv();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_probe();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_get_count();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_proc_null();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_ordering();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_large();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_zero_length();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_truncate();
    return zr_finish();
}
