/* persistent.c - persistent point-to-point requests: Send_init, Ssend_init,
 * Rsend_init, Recv_init, Start, Startall.  A ring exchange started again and
 * again with new data (handles stay, requests go inactive); inactive requests
 * in Wait, Test, Waitany, Testany, Waitsome, Testsome, Request_get_status
 * (empty statuses, MPI_UNDEFINED); active ones completed by Waitany/Waitsome
 * and Request_get_status; an Ssend_init that cannot complete before the
 * receive is posted; a strided (vector) datatype on both sides, freed after
 * the init; MPI_PROC_NULL; Cancel of a started receive, then the same request
 * started again; Request_free of inactive and of started requests; and the
 * errors: starting an active, a non-persistent or the null request, Startall
 * with one bad request starting none, bad rank / count / tag at init. */
#define TEST_NAME "persistent"
#include "check.h"

#define N 8
#define ITERS 5

static int rank, size, left, right;

static int val(int src, int it, int i) { return src * 100003 + it * 101 + i; }

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

/* The same two requests started ITERS times with new data each time. */
static void check_ring_restarts(void)
{
    int sbuf[N], rbuf[N], it, i, n = -1, flag = -1, index = -1;
    MPI_Request rq[2], keep[2];
    MPI_Status st[2], s1;

    CHECK_MPI(MPI_Recv_init(rbuf, N, MPI_INT, left, 20, MPI_COMM_WORLD,
                            &rq[0]));
    CHECK_MPI(MPI_Send_init(sbuf, N, MPI_INT, right, 20, MPI_COMM_WORLD,
                            &rq[1]));
    CHECK(rq[0] != MPI_REQUEST_NULL && rq[1] != MPI_REQUEST_NULL,
          "*_init returned MPI_REQUEST_NULL");
    keep[0] = rq[0];
    keep[1] = rq[1];

    /* inactive: every completion call returns at once */
    CHECK_MPI(MPI_Wait(&rq[0], &s1));
    check_empty_status(&s1, "Wait(inactive)");
    CHECK(rq[0] == keep[0], "Wait(inactive) changed the handle");
    CHECK_MPI(MPI_Test(&rq[1], &flag, &s1));
    CHECK_EQ_INT(flag, 1, "Test(inactive): flag");
    check_empty_status(&s1, "Test(inactive)");
    CHECK(rq[1] == keep[1], "Test(inactive) changed the handle");
    flag = -1;
    CHECK_MPI(MPI_Request_get_status(rq[0], &flag, &s1));
    CHECK_EQ_INT(flag, 1, "Request_get_status(inactive): flag");
    check_empty_status(&s1, "Request_get_status(inactive)");
    CHECK_MPI(MPI_Waitany(2, rq, &index, &s1));
    CHECK_EQ_INT(index, MPI_UNDEFINED, "Waitany(all inactive): index");
    check_empty_status(&s1, "Waitany(all inactive)");
    CHECK_MPI(MPI_Testany(2, rq, &index, &flag, &s1));
    CHECK_EQ_INT(flag, 1, "Testany(all inactive): flag");
    CHECK_EQ_INT(index, MPI_UNDEFINED, "Testany(all inactive): index");
    {
        int idx[2];
        CHECK_MPI(MPI_Waitsome(2, rq, &n, idx, st));
        CHECK_EQ_INT(n, MPI_UNDEFINED, "Waitsome(all inactive): outcount");
        CHECK_MPI(MPI_Testsome(2, rq, &n, idx, st));
        CHECK_EQ_INT(n, MPI_UNDEFINED, "Testsome(all inactive): outcount");
    }
    CHECK_MPI(MPI_Waitall(2, rq, st));
    check_empty_status(&st[0], "Waitall(all inactive)");
    CHECK(rq[0] == keep[0] && rq[1] == keep[1],
          "a completion call on inactive requests changed a handle");

    for (it = 0; it < ITERS; it++) {
        for (i = 0; i < N; i++) {
            sbuf[i] = val(rank, it, i);
            rbuf[i] = -1;
        }
        CHECK_MPI(MPI_Startall(2, rq));
        CHECK_MPI(MPI_Waitall(2, rq, st));
        CHECK(rq[0] == keep[0] && rq[1] == keep[1],
              "iteration %d: Waitall changed a persistent handle", it);
        CHECK_EQ_INT(st[0].MPI_SOURCE, left, "iteration %d: source", it);
        CHECK_EQ_INT(st[0].MPI_TAG, 20, "iteration %d: tag", it);
        CHECK_MPI(MPI_Get_count(&st[0], MPI_INT, &n));
        CHECK_EQ_INT(n, N, "iteration %d: count", it);
        for (i = 0; i < N; i++)
            CHECK_EQ_INT(rbuf[i], val(left, it, i), "iteration %d: elem %d",
                         it, i);
        /* a completed request is inactive again */
        CHECK_MPI(MPI_Waitany(2, rq, &index, &s1));
        CHECK_EQ_INT(index, MPI_UNDEFINED,
                     "iteration %d: Waitany after Waitall", it);
    }

    /* one at a time with Start, completed by Waitany and Waitsome */
    for (it = 0; it < 2; it++) {
        int seen = 0, k, idx[2];
        for (i = 0; i < N; i++)
            sbuf[i] = val(rank, 50 + it, i);
        CHECK_MPI(MPI_Start(&rq[0]));
        CHECK_MPI(MPI_Start(&rq[1]));
        for (k = 0; k < 2;) {
            if (it == 0) {
                CHECK_MPI(MPI_Waitany(2, rq, &index, &s1));
                CHECK(index == 0 || index == 1, "Waitany: index %d", index);
                seen |= 1 << index;
                k++;
            } else {
                CHECK_MPI(MPI_Waitsome(2, rq, &n, idx, st));
                CHECK(n >= 1 && n <= 2 - k, "Waitsome: outcount %d", n);
                for (i = 0; i < n; i++)
                    seen |= 1 << idx[i];
                k += n;
            }
        }
        CHECK_EQ_INT(seen, 3, "round %d: both requests completed", it);
        CHECK(rq[0] == keep[0] && rq[1] == keep[1],
              "Waitany/Waitsome changed a persistent handle");
        for (i = 0; i < N; i++)
            CHECK_EQ_INT(rbuf[i], val(left, 50 + it, i), "round %d: elem %d",
                         it, i);
    }

    /* Request_get_status on a started request: the request stays active
     * until a wait */
    CHECK_MPI(MPI_Start(&rq[0]));
    CHECK_MPI(MPI_Start(&rq[1]));
    do {
        CHECK_MPI(MPI_Request_get_status(rq[0], &flag, &s1));
    } while (!flag);
    CHECK_EQ_INT(s1.MPI_SOURCE, left, "Request_get_status: source");
    CHECK(rq[0] == keep[0], "Request_get_status changed the handle");
    CHECK_MPI(MPI_Wait(&rq[0], &s1));
    CHECK_EQ_INT(s1.MPI_SOURCE, left, "Wait after Request_get_status: source");
    CHECK_EQ_INT(s1.MPI_TAG, 20, "Wait after Request_get_status: tag");
    CHECK_MPI(MPI_Wait(&rq[0], &s1));
    check_empty_status(&s1, "second Wait after Request_get_status");
    CHECK_MPI(MPI_Wait(&rq[1], MPI_STATUS_IGNORE));

    CHECK_MPI(MPI_Request_free(&rq[0]));
    CHECK_MPI(MPI_Request_free(&rq[1]));
    CHECK(rq[0] == MPI_REQUEST_NULL && rq[1] == MPI_REQUEST_NULL,
          "Request_free did not set MPI_REQUEST_NULL");
}

/* An Ssend_init started cannot complete before the receiver posts its
 * receive, which it does only after a barrier; an Rsend_init is started
 * after the receive is posted. */
static void check_modes(void)
{
    int out = val(rank, 30, 0), in = -1, flag = -1;
    MPI_Request sq, rq;
    MPI_Status st;

    CHECK_MPI(MPI_Ssend_init(&out, 1, MPI_INT, right, 30, MPI_COMM_WORLD,
                             &sq));
    CHECK_MPI(MPI_Start(&sq));
    CHECK_MPI(MPI_Test(&sq, &flag, &st));
    CHECK_EQ_INT(flag, 0, "Ssend_init completed before the receive was posted");
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    CHECK_MPI(MPI_Recv(&in, 1, MPI_INT, left, 30, MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(in, val(left, 30, 0), "Ssend_init payload");
    CHECK_MPI(MPI_Wait(&sq, &st));
    CHECK(sq != MPI_REQUEST_NULL, "Wait freed a persistent Ssend request");
    CHECK_MPI(MPI_Request_free(&sq));

    CHECK_MPI(MPI_Rsend_init(&out, 1, MPI_INT, right, 31, MPI_COMM_WORLD,
                             &sq));
    CHECK_MPI(MPI_Irecv(&in, 1, MPI_INT, left, 31, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    CHECK_MPI(MPI_Start(&sq));
    CHECK_MPI(MPI_Wait(&sq, &st));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK_EQ_INT(in, val(left, 30, 0), "Rsend_init payload");
    CHECK_MPI(MPI_Request_free(&sq));
}

/* Every other int of a buffer, sent and received with a vector type that is
 * freed right after the init (the requests keep it). */
static void check_strided(void)
{
    int sbuf[2 * N], rbuf[2 * N], it, i;
    MPI_Datatype vec;
    MPI_Request rq[2];
    MPI_Status st[2];

    CHECK_MPI(MPI_Type_vector(N, 1, 2, MPI_INT, &vec));
    CHECK_MPI(MPI_Type_commit(&vec));
    CHECK_MPI(MPI_Recv_init(rbuf, 1, vec, left, 40, MPI_COMM_WORLD, &rq[0]));
    CHECK_MPI(MPI_Send_init(sbuf, 1, vec, right, 40, MPI_COMM_WORLD, &rq[1]));
    CHECK_MPI(MPI_Type_free(&vec));
    for (it = 0; it < 3; it++) {
        for (i = 0; i < 2 * N; i++) {
            sbuf[i] = i % 2 ? -7 : val(rank, it, i / 2);
            rbuf[i] = -9;
        }
        CHECK_MPI(MPI_Startall(2, rq));
        CHECK_MPI(MPI_Waitall(2, rq, st));
        for (i = 0; i < 2 * N; i++)
            CHECK_EQ_INT(rbuf[i], i % 2 ? -9 : val(left, it, i / 2),
                         "strided, iteration %d: elem %d", it, i);
    }
    CHECK_MPI(MPI_Request_free(&rq[0]));
    CHECK_MPI(MPI_Request_free(&rq[1]));
}

static void check_proc_null(void)
{
    int x = 5, n = -1;
    MPI_Request rq[2];
    MPI_Status st[2];

    CHECK_MPI(MPI_Recv_init(&x, 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD,
                            &rq[0]));
    CHECK_MPI(MPI_Send_init(&x, 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD,
                            &rq[1]));
    CHECK_MPI(MPI_Startall(2, rq));
    CHECK_MPI(MPI_Waitall(2, rq, st));
    /* MPICH < 4.2 reports another source (pmodels/mpich#6805) */
    DEVIATION("mpich-procnull-status")
        CHECK_NULL_STATUS(st[0], MPI_PROC_NULL, "started Recv_init(PROC_NULL)");
    CHECK_MPI(MPI_Get_count(&st[0], MPI_INT, &n));
    CHECK_EQ_INT(n, 0, "PROC_NULL receive: count");
    CHECK_EQ_INT(x, 5, "PROC_NULL receive changed the buffer");
    CHECK_MPI(MPI_Request_free(&rq[0]));
    CHECK_MPI(MPI_Request_free(&rq[1]));
}

/* A started receive nobody matches is cancelled; the same request then
 * receives a real message. */
static void check_cancel_and_restart(void)
{
    int in = -1, out = val(rank, 60, 0), flag = -1;
    MPI_Request rq, sq;
    MPI_Status st;

    CHECK_MPI(MPI_Recv_init(&in, 1, MPI_INT, left, 60, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Start(&rq));
    CHECK_MPI(MPI_Cancel(&rq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK(rq != MPI_REQUEST_NULL, "Wait freed a cancelled persistent request");
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK_EQ_INT(flag, 1, "Test_cancelled after cancelling a started receive");
    CHECK_EQ_INT(in, -1, "the cancelled receive changed the buffer");
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

    CHECK_MPI(MPI_Start(&rq));
    CHECK_MPI(MPI_Isend(&out, 1, MPI_INT, right, 60, MPI_COMM_WORLD, &sq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK_EQ_INT(flag, 0, "the restarted receive is not cancelled");
    CHECK_EQ_INT(in, val(left, 60, 0), "restarted receive payload");
    CHECK_MPI(MPI_Wait(&sq, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Request_free(&rq));
}

/* A started send freed before it completes still goes out. */
static void check_free_started(void)
{
    int out = val(rank, 70, 0), in = -1, ack = 0, ack_in = -1;
    MPI_Request sq;

    CHECK_MPI(MPI_Send_init(&out, 1, MPI_INT, right, 70, MPI_COMM_WORLD,
                            &sq));
    CHECK_MPI(MPI_Start(&sq));
    CHECK_MPI(MPI_Request_free(&sq));
    CHECK(sq == MPI_REQUEST_NULL, "Request_free did not set MPI_REQUEST_NULL");
    CHECK_MPI(MPI_Recv(&in, 1, MPI_INT, left, 70, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE));
    CHECK_EQ_INT(in, val(left, 70, 0), "freed started send: payload");
    /* my right neighbour has my message: `out` may go */
    CHECK_MPI(MPI_Sendrecv(&ack, 1, MPI_INT, left, 71, &ack_in, 1, MPI_INT,
                           right, 71, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
}

static void check_errors(void)
{
    int x = 0, flag = -1;
    MPI_Request rq[2], nb, null = MPI_REQUEST_NULL;
    MPI_Status st;

    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Send_init(&x, 1, MPI_INT, size, 0, MPI_COMM_WORLD,
                                  &rq[0]),
                    MPI_ERR_RANK);
    CHECK_ERR_CLASS(MPI_Recv_init(&x, -1, MPI_INT, left, 0, MPI_COMM_WORLD,
                                  &rq[0]),
                    MPI_ERR_COUNT);
    CHECK_ERR_CLASS(MPI_Send_init(&x, 1, MPI_INT, right, -5, MPI_COMM_WORLD,
                                  &rq[0]),
                    MPI_ERR_TAG);

    /* a receive nobody sends to, started: starting it again is an error */
    CHECK_MPI(MPI_Recv_init(&x, 1, MPI_INT, left, 80, MPI_COMM_WORLD,
                            &rq[0]));
    CHECK_MPI(MPI_Recv_init(&x, 1, MPI_INT, left, 81, MPI_COMM_WORLD,
                            &rq[1]));
    CHECK_MPI(MPI_Start(&rq[0]));
    /* Open MPI 4.1 starts an active request again (erroneous, not detected) */
    SKIP_IF_XFAIL("ompi-start-active")
    {
        CHECK_ERR_CLASS(MPI_Start(&rq[0]), MPI_ERR_REQUEST);
        /* Startall with the active one starts neither */
        CHECK_ERR_CLASS(MPI_Startall(2, rq), MPI_ERR_REQUEST);
        CHECK_MPI(MPI_Test(&rq[1], &flag, &st));
        CHECK_EQ_INT(flag, 1, "Startall with a bad request started another");
        check_empty_status(&st, "Test(not started by a failed Startall)");
    }
    CHECK_MPI(MPI_Cancel(&rq[0]));
    CHECK_MPI(MPI_Wait(&rq[0], &st));
    CHECK_MPI(MPI_Test_cancelled(&st, &flag));
    CHECK_EQ_INT(flag, 1, "cancelled after the failed starts");

    /* a non-persistent request, and the null request, cannot be started */
    CHECK_MPI(MPI_Irecv(&x, 1, MPI_INT, left, 82, MPI_COMM_WORLD, &nb));
    CHECK_ERR_CLASS(MPI_Start(&nb), MPI_ERR_REQUEST);
    CHECK_MPI(MPI_Cancel(&nb));
    CHECK_MPI(MPI_Wait(&nb, MPI_STATUS_IGNORE));
    CHECK_ERR_CLASS(MPI_Start(&null), MPI_ERR_REQUEST);

    CHECK_MPI(MPI_Request_free(&rq[0]));
    CHECK_MPI(MPI_Request_free(&rq[1]));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;

    check_ring_restarts();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_modes();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_strided();
    check_proc_null();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_cancel_and_restart();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_free_started();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_errors();
    return zr_finish();
}
