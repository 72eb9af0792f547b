/* errhandler.c - user error handlers: Comm_create_errhandler,
 * Comm_set_errhandler / Comm_get_errhandler with one, the handler called with
 * the communicator and the code when a point-to-point or collective call
 * fails (and the call returning the code), MPI calls inside the handler,
 * inheritance by Comm_dup, Comm_call_errhandler (user handler and
 * MPI_ERRORS_RETURN), and Errhandler_free of a handler still in use. */
#define TEST_NAME "errhandler"
#include "check.h"

static int calls;
static MPI_Comm seen_comm = MPI_COMM_NULL;
static int seen_code = MPI_SUCCESS, seen_len = -1;

static void handler(MPI_Comm *comm, int *code, ...)
{
    char text[MPI_MAX_ERROR_STRING];
    calls++;
    seen_comm = *comm;
    seen_code = *code;
    /* MPI may be called from a handler */
    seen_len = -1;
    MPI_Error_string(*code, text, &seen_len);
}

static void expect_call(int rc, MPI_Comm comm, int cls, const char *what)
{
    int c = -1;
    CHECK_EQ_INT(calls, 1, "%s: handler calls", what);
    CHECK(seen_comm == comm, "%s: the handler's communicator", what);
    CHECK_MPI(MPI_Error_class(seen_code, &c));
    CHECK_EQ_INT(c, cls, "%s: the handler's error class", what);
    CHECK_EQ_INT(rc, seen_code, "%s: the call returns the handler's code",
                 what);
    CHECK(seen_len > 0, "%s: MPI_Error_string inside the handler", what);
    calls = 0;
}

int main(int argc, char **argv)
{
    MPI_Errhandler h, got;
    MPI_Comm c, d;
    int x = 1, rc, size;

    CHECK_MPI(MPI_Init(&argc, &argv));
    size = zr_size(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Comm_create_errhandler(handler, &h));
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
    CHECK_MPI(MPI_Comm_set_errhandler(c, h));
    CHECK_MPI(MPI_Comm_get_errhandler(c, &got));
    CHECK(got == h, "Comm_get_errhandler: another handler");
    CHECK_MPI(MPI_Errhandler_free(&got));

    rc = MPI_Send(&x, 1, MPI_INT, size, 0, c);
    expect_call(rc, c, MPI_ERR_RANK, "Send to a bad rank");
    rc = MPI_Bcast(&x, 1, MPI_INT, -3, c);
    expect_call(rc, c, MPI_ERR_ROOT, "Bcast with a bad root");

    /* inherited by a duplicate, which the handler then names */
    CHECK_MPI(MPI_Comm_dup(c, &d));
    rc = MPI_Recv(&x, -1, MPI_INT, 0, 0, d, MPI_STATUS_IGNORE);
    expect_call(rc, d, MPI_ERR_COUNT, "Recv with a negative count on the dup");

    /* Comm_call_errhandler */
    rc = MPI_Comm_call_errhandler(c, MPI_ERR_OTHER);
    CHECK_EQ_INT(rc, MPI_SUCCESS, "Comm_call_errhandler (user handler)");
    CHECK_EQ_INT(calls, 1, "Comm_call_errhandler: handler calls");
    CHECK(seen_comm == c, "Comm_call_errhandler: the handler's communicator");
    CHECK_EQ_INT(seen_code, MPI_ERR_OTHER, "Comm_call_errhandler: the code");
    calls = 0;
    CHECK_MPI(MPI_Comm_set_errhandler(d, MPI_ERRORS_RETURN));
    rc = MPI_Comm_call_errhandler(d, MPI_ERR_OTHER);
    CHECK_EQ_INT(rc, MPI_SUCCESS, "Comm_call_errhandler (MPI_ERRORS_RETURN)");
    CHECK_EQ_INT(calls, 0, "MPI_ERRORS_RETURN called the user handler");

    /* freed, the handler stays on the communicator that has it */
    CHECK_MPI(MPI_Errhandler_free(&h));
    CHECK(h == MPI_ERRHANDLER_NULL, "Errhandler_free: the handle");
    rc = MPI_Send(&x, 1, MPI_INT, 0, -7, c);
    expect_call(rc, c, MPI_ERR_TAG, "Send with a bad tag after Errhandler_free");

    CHECK_MPI(MPI_Comm_free(&d));
    CHECK_MPI(MPI_Comm_free(&c));
    return zr_finish();
}
