/* errors.c - error classes returned under MPI_ERRORS_RETURN for invalid
 * arguments: bad rank (MPI_ERR_RANK), negative count (MPI_ERR_COUNT),
 * MPI_DATATYPE_NULL and uncommitted types (MPI_ERR_TYPE), MPI_COMM_NULL
 * (MPI_ERR_COMM; raised on MPI_COMM_WORLD's handler), bad tags (MPI_ERR_TAG),
 * bad roots (MPI_ERR_ROOT), MPI_OP_NULL (MPI_ERR_OP), MPI_GROUP_NULL
 * (MPI_ERR_GROUP), a too small receive buffer (MPI_ERR_TRUNCATE), in
 * point-to-point, nonblocking and collective calls; every returned code has
 * an error string; afterwards the job works normally. */
#define TEST_NAME "errors"
#include "check.h"
#include <limits.h>

static int rank, size, left, right;

int main(int argc, char **argv)
{
    MPI_Comm c;
    MPI_Request rq;
    MPI_Datatype unc;
    int buf[8] = {0}, in[8], *tag_ub = NULL, flag = 0, i, sum = -1;

    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    right = (rank + 1) % size;
    left = (rank + size - 1) % size;
    /* world: for errors with no valid communicator (MPI_COMM_NULL) */
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
    CHECK_MPI(MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN));

    /* ranks */
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, size, 0, c), MPI_ERR_RANK);
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, -5, 0, c), MPI_ERR_RANK);
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, MPI_ANY_SOURCE, 0, c),
                    MPI_ERR_RANK);
    CHECK_ERR_CLASS(MPI_Recv(in, 1, MPI_INT, size, 0, c, MPI_STATUS_IGNORE),
                    MPI_ERR_RANK);
    CHECK_ERR_CLASS(MPI_Isend(buf, 1, MPI_INT, size + 3, 0, c, &rq),
                    MPI_ERR_RANK);
    CHECK_ERR_CLASS(MPI_Irecv(in, 1, MPI_INT, -7, 0, c, &rq), MPI_ERR_RANK);

    /* counts */
    CHECK_ERR_CLASS(MPI_Send(buf, -1, MPI_INT, right, 0, c), MPI_ERR_COUNT);
    CHECK_ERR_CLASS(MPI_Recv(in, -1, MPI_INT, left, 0, c, MPI_STATUS_IGNORE),
                    MPI_ERR_COUNT);
    CHECK_ERR_CLASS(MPI_Bcast(buf, -1, MPI_INT, 0, c), MPI_ERR_COUNT);
    /* MPICH 4.0.2 does not check: success with 1 rank, crash with more */
    SKIP_IF_XFAIL("mpich-allreduce-negative-count")
    {
        CHECK_ERR_CLASS(MPI_Allreduce(buf, in, -2, MPI_INT, MPI_SUM, c),
                        MPI_ERR_COUNT);
    }

    /* datatypes */
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_DATATYPE_NULL, right, 0, c),
                    MPI_ERR_TYPE);
    CHECK_ERR_CLASS(MPI_Recv(in, 1, MPI_DATATYPE_NULL, left, 0, c,
                             MPI_STATUS_IGNORE),
                    MPI_ERR_TYPE);
    CHECK_ERR_CLASS(MPI_Bcast(buf, 1, MPI_DATATYPE_NULL, 0, c), MPI_ERR_TYPE);
    CHECK_MPI(MPI_Type_contiguous(2, MPI_INT, &unc)); /* not committed */
    CHECK_ERR_CLASS(MPI_Send(buf, 1, unc, right, 0, c), MPI_ERR_TYPE);
    CHECK_MPI(MPI_Type_free(&unc));

    /* communicators (raised on MPI_COMM_WORLD's handler) */
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, 0, 0, MPI_COMM_NULL),
                    MPI_ERR_COMM);
    CHECK_ERR_CLASS(MPI_Recv(in, 1, MPI_INT, 0, 0, MPI_COMM_NULL,
                             MPI_STATUS_IGNORE),
                    MPI_ERR_COMM);
    CHECK_ERR_CLASS(MPI_Comm_size(MPI_COMM_NULL, &i), MPI_ERR_COMM);
    CHECK_ERR_CLASS(MPI_Barrier(MPI_COMM_NULL), MPI_ERR_COMM);
    CHECK_ERR_CLASS(MPI_Allreduce(buf, in, 1, MPI_INT, MPI_SUM,
                                  MPI_COMM_NULL),
                    MPI_ERR_COMM);

    /* tags */
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, right, -1, c), MPI_ERR_TAG);
    CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, right, -5, c), MPI_ERR_TAG);
    CHECK_ERR_CLASS(MPI_Isend(buf, 1, MPI_INT, right, -3, c, &rq),
                    MPI_ERR_TAG);
    if (MPI_ANY_TAG != -5) /* any negative tag but MPI_ANY_TAG */
        CHECK_ERR_CLASS(MPI_Recv(in, 1, MPI_INT, left, -5, c,
                                 MPI_STATUS_IGNORE),
                        MPI_ERR_TAG);
    CHECK_MPI(MPI_Comm_get_attr(c, MPI_TAG_UB, &tag_ub, &flag));
    CHECK_EQ_INT(flag, 1, "MPI_TAG_UB present");
    if (*tag_ub < INT_MAX)
        CHECK_ERR_CLASS(MPI_Send(buf, 1, MPI_INT, right, *tag_ub + 1, c),
                        MPI_ERR_TAG);

    /* roots (every rank passes the same bad root) */
    CHECK_ERR_CLASS(MPI_Bcast(buf, 1, MPI_INT, size, c), MPI_ERR_ROOT);
    CHECK_ERR_CLASS(MPI_Bcast(buf, 1, MPI_INT, -1, c), MPI_ERR_ROOT);
    CHECK_ERR_CLASS(MPI_Reduce(buf, in, 1, MPI_INT, MPI_SUM, size + 1, c),
                    MPI_ERR_ROOT);
    CHECK_ERR_CLASS(MPI_Gather(buf, 1, MPI_INT, in, 1, MPI_INT, -3, c),
                    MPI_ERR_ROOT);

    /* ops */
    CHECK_ERR_CLASS(MPI_Allreduce(buf, in, 1, MPI_INT, MPI_OP_NULL, c),
                    MPI_ERR_OP);
    CHECK_ERR_CLASS(MPI_Reduce(buf, in, 1, MPI_INT, MPI_OP_NULL, 0, c),
                    MPI_ERR_OP);

    /* groups */
    {
        MPI_Comm nc = MPI_COMM_NULL;
        CHECK_ERR_CLASS(MPI_Comm_create(c, MPI_GROUP_NULL, &nc),
                        MPI_ERR_GROUP);
        CHECK_ERR_CLASS(MPI_Group_size(MPI_GROUP_NULL, &i), MPI_ERR_GROUP);
    }

    /* truncation */
    for (i = 0; i < 8; i++)
        buf[i] = rank * 10 + i;
    CHECK_MPI(MPI_Isend(buf, 8, MPI_INT, right, 1, c, &rq));
    CHECK_ERR_CLASS(MPI_Recv(in, 2, MPI_INT, left, 1, c, MPI_STATUS_IGNORE),
                    MPI_ERR_TRUNCATE);
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));

    /* error strings for a few returned codes */
    {
        int codes[3], len, k;
        char s[MPI_MAX_ERROR_STRING];
        codes[0] = MPI_Send(buf, 1, MPI_INT, size, 0, c);
        codes[1] = MPI_Bcast(buf, 1, MPI_INT, size, c);
        codes[2] = MPI_Send(buf, 1, MPI_INT, 0, 0, MPI_COMM_NULL);
        for (k = 0; k < 3; k++) {
            len = -1;
            CHECK_MPI(MPI_Error_string(codes[k], s, &len));
            CHECK(len > 0 && (size_t)len == strlen(s),
                  "Error_string(code %d): len %d, strlen %zu", codes[k], len,
                  strlen(s));
        }
    }

    /* everything still works */
    CHECK_MPI(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, c));
    CHECK_EQ_INT(sum, size * (size - 1) / 2, "Allreduce after errors");
    CHECK_MPI(MPI_Sendrecv(&rank, 1, MPI_INT, right, 2, in, 1, MPI_INT, left,
                           2, c, MPI_STATUS_IGNORE));
    CHECK_EQ_INT(in[0], left, "Sendrecv after errors");
    CHECK_MPI(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_MAX,
                            MPI_COMM_WORLD));
    CHECK_EQ_INT(sum, size - 1, "Allreduce on world after errors");
    CHECK_MPI(MPI_Comm_free(&c));
    return zr_finish();
}
