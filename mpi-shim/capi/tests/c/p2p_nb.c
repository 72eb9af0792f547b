/* p2p_nb.c - nonblocking point-to-point and request completion:
 * Isend / Issend / Irecv; Wait, Waitall, Waitany, Waitsome, Test, Testall,
 * Testany, Testsome, Request_get_status (incl. MPI_REQUEST_NULL entries and
 * all-inactive arrays: empty statuses, MPI_UNDEFINED index / outcount);
 * "not yet complete" answers made deterministic with barriers; Issend does
 * not complete before the receive is posted; Request_free on a send; Cancel
 * on a receive (Test_cancelled true) and on a completed receive (false);
 * MPI_PROC_NULL receives through the multiple-completion calls. */
#define TEST_NAME "p2p_nb"
#include "check.h"

#define K 6

static int rank, size, left, right;

static int val(int src, int tag, int i) { return src * 100003 + tag * 101 + i; }

static void check_empty_status(MPI_Status *st, const char *what)
{
    int n = -1, flag = -1;
    CHECK_EQ_INT(st->MPI_SOURCE, MPI_ANY_SOURCE, "%s: empty status source",
                 what);
    CHECK_EQ_INT(st->MPI_TAG, MPI_ANY_TAG, "%s: empty status tag", what);
    CHECK_MPI(MPI_Get_count(st, MPI_INT, &n));
    CHECK_EQ_INT(n, 0, "%s: empty status count", what);
    CHECK_MPI(MPI_Test_cancelled(st, &flag));
    CHECK_EQ_INT(flag, 0, "%s: empty status cancelled", what);
}

static void check_msg(const MPI_Status *st, const int *buf, int tag, int n,
                      const char *what)
{
    int cnt = -1, i;
    CHECK_EQ_INT(st->MPI_SOURCE, left, "%s: source", what);
    CHECK_EQ_INT(st->MPI_TAG, tag, "%s: tag", what);
    CHECK_MPI(MPI_Get_count(st, MPI_INT, &cnt));
    CHECK_EQ_INT(cnt, n, "%s: count", what);
    for (i = 0; i < n; i++)
        CHECK_EQ_INT(buf[i], val(left, tag, i), "%s: elem %d", what, i);
}

/* K receives from left with tags 10..10+K-1 and K sends to right in reverse
 * tag order; message tag t has t-9 ints. */
static int sbuf[K][K + 1], rbuf[K][K + 1];
static void post_recvs(MPI_Request *rq)
{
    int k;
    for (k = 0; k < K; k++) {
        memset(rbuf[k], 0, sizeof rbuf[k]);
        CHECK_MPI(MPI_Irecv(rbuf[k], K + 1, MPI_INT,
                            k % 2 ? MPI_ANY_SOURCE : left, 10 + k,
                            MPI_COMM_WORLD, &rq[k]));
    }
}
static void post_sends(MPI_Request *rq)
{
    int k, i;
    for (k = K - 1; k >= 0; k--) {
        for (i = 0; i < k + 1; i++)
            sbuf[k][i] = val(rank, 10 + k, i);
        CHECK_MPI(k % 3 == 0
                      ? MPI_Issend(sbuf[k], k + 1, MPI_INT, right, 10 + k,
                                   MPI_COMM_WORLD, &rq[k])
                      : MPI_Isend(sbuf[k], k + 1, MPI_INT, right, 10 + k,
                                  MPI_COMM_WORLD, &rq[k]));
    }
}

static void check_waitall_test(void)
{
    MPI_Request rq[2 * K + 2], one;
    MPI_Status st[2 * K + 2], s1;
    int k, flag = -1;

    post_recvs(rq);
    post_sends(rq + K);
    rq[2 * K] = MPI_REQUEST_NULL;
    rq[2 * K + 1] = MPI_REQUEST_NULL;
    CHECK_MPI(MPI_Waitall(2 * K + 2, rq, st));
    for (k = 0; k < 2 * K + 2; k++)
        CHECK(rq[k] == MPI_REQUEST_NULL, "Waitall: request %d not freed", k);
    for (k = 0; k < K; k++)
        check_msg(&st[k], rbuf[k], 10 + k, k + 1, "Waitall recv");
    check_empty_status(&st[2 * K], "Waitall(MPI_REQUEST_NULL)");

    /* Test on MPI_REQUEST_NULL */
    one = MPI_REQUEST_NULL;
    CHECK_MPI(MPI_Test(&one, &flag, &s1));
    CHECK_EQ_INT(flag, 1, "Test(MPI_REQUEST_NULL): flag");
    check_empty_status(&s1, "Test(MPI_REQUEST_NULL)");
    CHECK_MPI(MPI_Wait(&one, &s1));
    check_empty_status(&s1, "Wait(MPI_REQUEST_NULL)");
    flag = -1;
    CHECK_MPI(MPI_Request_get_status(MPI_REQUEST_NULL, &flag, &s1));
    CHECK_EQ_INT(flag, 1, "Request_get_status(MPI_REQUEST_NULL): flag");
    check_empty_status(&s1, "Request_get_status(MPI_REQUEST_NULL)");

    /* Test polling loop */
    CHECK_MPI(MPI_Irecv(rbuf[0], K + 1, MPI_INT, left, 10, MPI_COMM_WORLD,
                        &one));
    sbuf[0][0] = val(rank, 10, 0);
    CHECK_MPI(MPI_Isend(sbuf[0], 1, MPI_INT, right, 10, MPI_COMM_WORLD,
                        &rq[0]));
    do {
        CHECK_MPI(MPI_Test(&one, &flag, &s1));
    } while (!flag);
    CHECK(one == MPI_REQUEST_NULL, "Test(flag=1) did not free the request");
    check_msg(&s1, rbuf[0], 10, 1, "Test loop");
    CHECK_MPI(MPI_Wait(&rq[0], MPI_STATUS_IGNORE));
}

static void check_waitany_waitsome(void)
{
    MPI_Request rq[K], sq[K];
    MPI_Status st[K], s1;
    int seen[K], idx[K], k, j, n, index = -1, done;

    post_recvs(rq);
    post_sends(sq);
    memset(seen, 0, sizeof seen);
    for (k = 0; k < K; k++) {
        CHECK_MPI(MPI_Waitany(K, rq, &index, &s1));
        CHECK(index >= 0 && index < K, "Waitany: index %d", index);
        CHECK_EQ_INT(seen[index], 0, "Waitany: index %d twice", index);
        seen[index] = 1;
        CHECK(rq[index] == MPI_REQUEST_NULL, "Waitany: request not freed");
        check_msg(&s1, rbuf[index], 10 + index, index + 1, "Waitany");
    }
    CHECK_MPI(MPI_Waitany(K, rq, &index, &s1));
    CHECK_EQ_INT(index, MPI_UNDEFINED, "Waitany(all inactive): index");
    check_empty_status(&s1, "Waitany(all inactive)");
    CHECK_MPI(MPI_Waitall(K, sq, MPI_STATUSES_IGNORE));

    post_recvs(rq);
    post_sends(sq);
    memset(seen, 0, sizeof seen);
    for (done = 0; done < K;) {
        CHECK_MPI(MPI_Waitsome(K, rq, &n, idx, st));
        CHECK(n >= 1 && n <= K - done, "Waitsome: outcount %d with %d left",
              n, K - done);
        for (j = 0; j < n; j++) {
            CHECK(idx[j] >= 0 && idx[j] < K, "Waitsome: index %d", idx[j]);
            CHECK_EQ_INT(seen[idx[j]], 0, "Waitsome: index %d twice", idx[j]);
            seen[idx[j]] = 1;
            check_msg(&st[j], rbuf[idx[j]], 10 + idx[j], idx[j] + 1,
                      "Waitsome");
        }
        done += n;
    }
    CHECK_MPI(MPI_Waitsome(K, rq, &n, idx, st));
    CHECK_EQ_INT(n, MPI_UNDEFINED, "Waitsome(all inactive): outcount");
    CHECK_MPI(MPI_Waitall(K, sq, MPI_STATUSES_IGNORE));
}

/* Receives posted before a barrier cannot have matched anything that is only
 * sent after it: Testall / Testany / Testsome must say "not yet". */
static void check_test_family(void)
{
    MPI_Request rq[K], sq[K];
    MPI_Status st[K], s1;
    int seen[K], idx[K], k, j, n, flag = -1, index = -1, done;

    post_recvs(rq);
    CHECK_MPI(MPI_Testall(K, rq, &flag, st));
    CHECK_EQ_INT(flag, 0, "Testall before anything was sent");
    CHECK_MPI(MPI_Testany(K, rq, &index, &flag, &s1));
    CHECK_EQ_INT(flag, 0, "Testany before anything was sent: flag");
    CHECK_EQ_INT(index, MPI_UNDEFINED, "Testany before anything was sent");
    CHECK_MPI(MPI_Testsome(K, rq, &n, idx, st));
    CHECK_EQ_INT(n, 0, "Testsome before anything was sent: outcount");
    CHECK_MPI(MPI_Request_get_status(rq[0], &flag, &s1));
    CHECK_EQ_INT(flag, 0, "Request_get_status before anything was sent");
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    post_sends(sq);

    /* Testany until everything arrived */
    memset(seen, 0, sizeof seen);
    for (done = 0; done < K;) {
        CHECK_MPI(MPI_Testany(K, rq, &index, &flag, &s1));
        if (!flag)
            continue;
        CHECK(index >= 0 && index < K, "Testany: index %d", index);
        CHECK_EQ_INT(seen[index], 0, "Testany: index %d twice", index);
        seen[index] = 1;
        check_msg(&s1, rbuf[index], 10 + index, index + 1, "Testany");
        done++;
    }
    CHECK_MPI(MPI_Testany(K, rq, &index, &flag, &s1));
    CHECK_EQ_INT(flag, 1, "Testany(all inactive): flag");
    CHECK_EQ_INT(index, MPI_UNDEFINED, "Testany(all inactive): index");
    check_empty_status(&s1, "Testany(all inactive)");
    CHECK_MPI(MPI_Testall(K, rq, &flag, st));
    CHECK_EQ_INT(flag, 1, "Testall(all inactive): flag");
    CHECK_MPI(MPI_Testsome(K, rq, &n, idx, st));
    CHECK_EQ_INT(n, MPI_UNDEFINED, "Testsome(all inactive): outcount");
    CHECK_MPI(MPI_Waitall(K, sq, MPI_STATUSES_IGNORE));
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

    /* Testsome until everything arrived */
    post_recvs(rq);
    post_sends(sq);
    memset(seen, 0, sizeof seen);
    for (done = 0; done < K;) {
        CHECK_MPI(MPI_Testsome(K, rq, &n, idx, st));
        CHECK(n >= 0 && n <= K - done, "Testsome: outcount %d", n);
        for (j = 0; j < n; j++) {
            CHECK_EQ_INT(seen[idx[j]], 0, "Testsome: index %d twice", idx[j]);
            seen[idx[j]] = 1;
            check_msg(&st[j], rbuf[idx[j]], 10 + idx[j], idx[j] + 1,
                      "Testsome");
        }
        done += n;
    }
    CHECK_MPI(MPI_Waitall(K, sq, MPI_STATUSES_IGNORE));
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

    /* Testall until everything arrived */
    post_recvs(rq);
    post_sends(sq);
    do {
        CHECK_MPI(MPI_Testall(K, rq, &flag, st));
    } while (!flag);
    for (k = 0; k < K; k++)
        check_msg(&st[k], rbuf[k], 10 + k, k + 1, "Testall");
    CHECK_MPI(MPI_Waitall(K, sq, MPI_STATUSES_IGNORE));
}

/* An Issend cannot complete before the receiver has posted its receive,
 * which here happens only after a barrier the sender has not entered yet. */
static void check_issend(void)
{
    MPI_Request rq;
    MPI_Status st;
    int out = val(rank, 50, 0), in = -1, flag = -1;

    CHECK_MPI(MPI_Issend(&out, 1, MPI_INT, right, 50, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Test(&rq, &flag, &st));
    CHECK_EQ_INT(flag, 0, "Issend completed before the receive was posted");
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    CHECK_MPI(MPI_Recv(&in, 1, MPI_INT, left, 50, MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(in, val(left, 50, 0), "Issend payload");
    CHECK_MPI(MPI_Wait(&rq, &st));
}

static void check_request_free(void)
{
    int *out = malloc(sizeof(int) * 1000), *in = malloc(sizeof(int) * 1000);
    int i, ack = 0, ack_in = -1;
    MPI_Request rq;

    for (i = 0; i < 1000; i++)
        out[i] = val(rank, 60, i);
    CHECK_MPI(MPI_Isend(out, 1000, MPI_INT, right, 60, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Request_free(&rq));
    CHECK(rq == MPI_REQUEST_NULL, "Request_free did not set REQUEST_NULL");
    CHECK_MPI(MPI_Recv(in, 1000, MPI_INT, left, 60, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE));
    for (i = 0; i < 1000; i++)
        CHECK_EQ_INT(in[i], val(left, 60, i), "freed Isend payload elem %d",
                     i);
    /* ack: my right neighbour has received my message, so `out` is free */
    CHECK_MPI(MPI_Sendrecv(&ack, 1, MPI_INT, left, 61, &ack_in, 1, MPI_INT,
                           right, 61, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    CHECK_EQ_INT(ack_in, 0, "ack");
    free(out);
    free(in);
}

static void check_cancel(void)
{
    MPI_Request rq, sq;
    MPI_Status st;
    int in = -1, out = val(rank, 71, 0), flag = -1;

    /* a receive nobody will ever match */
    CHECK_MPI(MPI_Irecv(&in, 1, MPI_INT, MPI_ANY_SOURCE, 70, MPI_COMM_WORLD,
                        &rq));
    CHECK_MPI(MPI_Cancel(&rq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK(rq == MPI_REQUEST_NULL, "Wait(cancelled) did not free request");
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK_EQ_INT(flag, 1, "Test_cancelled after cancelling a receive");
    CHECK_EQ_INT(in, -1, "cancelled receive modified the buffer");

    /* cancelling a receive that has already completed has no effect */
    CHECK_MPI(MPI_Irecv(&in, 1, MPI_INT, left, 71, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Isend(&out, 1, MPI_INT, right, 71, MPI_COMM_WORLD, &sq));
    do {
        CHECK_MPI(MPI_Request_get_status(rq, &flag, &st));
    } while (!flag);
    CHECK(rq != MPI_REQUEST_NULL, "Request_get_status freed the request");
    CHECK_MPI(MPI_Cancel(&rq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK_EQ_INT(flag, 0, "Test_cancelled for a completed receive");
    CHECK_EQ_INT(in, val(left, 71, 0), "completed receive payload");
    CHECK_EQ_INT(st.MPI_SOURCE, left, "completed receive source");
    CHECK_MPI(MPI_Wait(&sq, MPI_STATUS_IGNORE));
}

static void check_proc_null_multi(void)
{
    MPI_Request rq[3];
    MPI_Status st[3];
    int buf[3] = {1, 2, 3}, k, index = -1, flag = -1, n = -1, idx[3];

    for (k = 0; k < 3; k++)
        CHECK_MPI(MPI_Irecv(&buf[k], 1, MPI_INT, MPI_PROC_NULL, k,
                            MPI_COMM_WORLD, &rq[k]));
    CHECK_MPI(MPI_Waitall(3, rq, st));
    /* MPICH < 4.2 reports source 0, tag 0 (pmodels/mpich#6805) */
    DEVIATION("mpich-procnull-status")
    for (k = 0; k < 3; k++)
        CHECK_NULL_STATUS(st[k], MPI_PROC_NULL, "Waitall(Irecv(PROC_NULL))");

    CHECK_MPI(MPI_Irecv(&buf[0], 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD,
                        &rq[0]));
    CHECK_MPI(MPI_Testany(1, rq, &index, &flag, &st[0]));
    CHECK_EQ_INT(flag, 1, "Testany(Irecv(PROC_NULL)): flag");
    CHECK_EQ_INT(index, 0, "Testany(Irecv(PROC_NULL)): index");
    DEVIATION("mpich-procnull-status")
        CHECK_NULL_STATUS(st[0], MPI_PROC_NULL, "Testany(Irecv(PROC_NULL))");

    CHECK_MPI(MPI_Isend(&buf[0], 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD,
                        &rq[0]));
    CHECK_MPI(MPI_Irecv(&buf[1], 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD,
                        &rq[1]));
    CHECK_MPI(MPI_Waitsome(2, rq, &n, idx, st));
    CHECK(n >= 1 && n <= 2, "Waitsome(PROC_NULL): outcount %d", n);
    if (n < 2) {
        CHECK_MPI(MPI_Waitsome(2, rq, &n, idx, st));
        CHECK_EQ_INT(n, 1, "second Waitsome(PROC_NULL): outcount");
    }
    CHECK_EQ_INT(buf[0] * 100 + buf[1] * 10 + buf[2], 123,
                 "PROC_NULL receives modified their buffers");
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    right = (rank + 1) % size;
    left = (rank + size - 1) % size;

    check_waitall_test();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_waitany_waitsome();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_test_family();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_issend();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_request_free();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_cancel();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_proc_null_multi();
    return zr_finish();
}
