/* grequest.c - generalized requests: Grequest_start / Grequest_complete;
 * Test says "not yet" until completed; Wait, Test, Waitall and
 * Request_get_status take the status from the query callback, and the
 * request's free callback runs once, when it is freed; Cancel calls the
 * cancel callback with whether it completed; Request_free of a running one
 * leaves the free callback to Grequest_complete. With zerorank's header: a
 * Wait that could never end is MPI_ERR_REQUEST. */
#define TEST_NAME "grequest"
#include "check.h"

static int queries, frees, cancels, cancel_complete = -1;

static int query(void *extra, MPI_Status *st)
{
    (void)extra;
    queries++;
    MPI_Status_set_elements(st, MPI_BYTE, 12);
    MPI_Status_set_cancelled(st, 0);
    st->MPI_SOURCE = MPI_UNDEFINED;
    st->MPI_TAG = MPI_UNDEFINED;
    return MPI_SUCCESS;
}

static int release(void *extra)
{
    (void)extra;
    frees++;
    return MPI_SUCCESS;
}

static int cancel(void *extra, int complete)
{
    (void)extra;
    cancels++;
    cancel_complete = complete;
    return MPI_SUCCESS;
}

static void check_status(MPI_Status *st, const char *what)
{
    int n = -1;
    CHECK_MPI(MPI_Get_count(st, MPI_BYTE, &n));
    CHECK_EQ_INT(n, 12, "%s: the query callback's count", what);
}

int main(int argc, char **argv)
{
    MPI_Request rq, saved, two[3];
    MPI_Status st, sts[3];
    int flag = -1, x = 5, y = -1, me;

    CHECK_MPI(MPI_Init(&argc, &argv));
    me = zr_rank(MPI_COMM_WORLD);

    CHECK_MPI(MPI_Grequest_start(query, release, cancel, NULL, &rq));
    CHECK_MPI(MPI_Test(&rq, &flag, &st));
    CHECK_EQ_INT(flag, 0, "Test before Grequest_complete");
    CHECK_EQ_INT(queries + frees, 0, "callbacks before Grequest_complete");
    CHECK_MPI(MPI_Grequest_complete(rq));
    CHECK_MPI(MPI_Test(&rq, &flag, &st));
    CHECK_EQ_INT(flag, 1, "Test after Grequest_complete");
    CHECK(rq == MPI_REQUEST_NULL, "Test did not free the request");
    check_status(&st, "Test");
    CHECK_EQ_INT(frees, 1, "free callbacks after Test");

    /* Request_get_status leaves it; Wait frees it */
    CHECK_MPI(MPI_Grequest_start(query, release, cancel, NULL, &rq));
    CHECK_MPI(MPI_Request_get_status(rq, &flag, &st));
    CHECK_EQ_INT(flag, 0, "Request_get_status before Grequest_complete");
    CHECK_MPI(MPI_Grequest_complete(rq));
    CHECK_MPI(MPI_Request_get_status(rq, &flag, &st));
    CHECK_EQ_INT(flag, 1, "Request_get_status after Grequest_complete");
    check_status(&st, "Request_get_status");
    CHECK_EQ_INT(frees, 1, "Request_get_status freed the request");
    CHECK_MPI(MPI_Wait(&rq, &st));
    check_status(&st, "Wait");
    CHECK_EQ_INT(frees, 2, "free callbacks after Wait");

    /* Cancel */
    CHECK_MPI(MPI_Grequest_start(query, release, cancel, NULL, &rq));
    CHECK_MPI(MPI_Cancel(&rq));
    CHECK_EQ_INT(cancels, 1, "cancel callbacks");
    CHECK_EQ_INT(cancel_complete, 0, "cancel callback: complete");
    CHECK_MPI(MPI_Grequest_complete(rq));
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    CHECK_EQ_INT(frees, 3, "free callbacks after a cancelled one");

    /* Request_free of a running one */
    CHECK_MPI(MPI_Grequest_start(query, release, cancel, NULL, &rq));
    saved = rq;
    CHECK_MPI(MPI_Request_free(&rq));
    CHECK(rq == MPI_REQUEST_NULL, "Request_free did not set MPI_REQUEST_NULL");
    /* MPI-3.1 12.2: free_fn is not called until after MPI_Grequest_complete;
     * MPICH 4.0 calls it in MPI_Request_free */
    DEVIATION("mpich-grequest-free-early")
        CHECK_EQ_INT(frees, 3, "Request_free of a running one called free");
    CHECK_MPI(MPI_Grequest_complete(saved));
    CHECK_EQ_INT(frees, 4, "Grequest_complete of a freed one: free callbacks");

    /* among other requests in Waitall */
    CHECK_MPI(MPI_Grequest_start(query, release, cancel, NULL, &two[0]));
    CHECK_MPI(MPI_Irecv(&y, 1, MPI_INT, me, 3, MPI_COMM_WORLD, &two[1]));
    CHECK_MPI(MPI_Isend(&x, 1, MPI_INT, me, 3, MPI_COMM_WORLD, &two[2]));
    CHECK_MPI(MPI_Grequest_complete(two[0]));
    CHECK_MPI(MPI_Waitall(3, two, sts));
    check_status(&sts[0], "Waitall");
    CHECK_EQ_INT(y, 5, "Waitall: the receive");
    CHECK_EQ_INT(frees, 5, "free callbacks after Waitall");

#ifdef ZERORANK_MPI
    /* only this thread could complete it: the wait is an error, not a hang */
    CHECK_MPI(MPI_Grequest_start(query, release, cancel, NULL, &rq));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Wait(&rq, MPI_STATUS_IGNORE), MPI_ERR_REQUEST);
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
#endif
    return zr_finish();
}
