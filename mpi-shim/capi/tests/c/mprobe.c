/* mprobe.c - matched probes: Mprobe, Improbe, Mrecv, Imrecv.  A matched
 * message cannot be taken by a receive posted after the probe (that receive
 * gets the next message); small and large (past every eager limit) messages;
 * Improbe before anything was sent says no; Imrecv; a vector receive type;
 * MPI_ERR_TRUNCATE for a short receive; MPI_PROC_NULL gives
 * MPI_MESSAGE_NO_PROC. */
#define TEST_NAME "mprobe"
#include "check.h"

#define BIG 100000
#define SMALL 4

static int rank, size, left, right;

static int val(int src, int tag, int i) { return src * 100003 + tag * 1009 + i; }

static void fill(int *b, int n, int tag)
{
    int i;
    for (i = 0; i < n; i++)
        b[i] = val(rank, tag, i);
}

static void check_msg(const int *b, int n, int tag, const char *what)
{
    int i;
    for (i = 0; i < n; i++)
        CHECK_EQ_INT(b[i], val(left, tag, i), "%s: elem %d", what, i);
}

static void check_status(MPI_Status *st, int tag, int n, const char *what)
{
    int c = -1;
    CHECK_EQ_INT(st->MPI_SOURCE, left, "%s: source", what);
    CHECK_EQ_INT(st->MPI_TAG, tag, "%s: tag", what);
    CHECK_MPI(MPI_Get_count(st, MPI_INT, &c));
    CHECK_EQ_INT(c, n, "%s: count", what);
}

int main(int argc, char **argv)
{
    int *s1, *s2, *s3, *r1, *r2, *r3, flag = -1, i, strided[2 * SMALL];
    MPI_Request sq[3], rq;
    MPI_Message m1, m3, m;
    MPI_Status st;
    MPI_Datatype vec;

    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;
    s1 = malloc(sizeof(int) * SMALL);
    s2 = malloc(sizeof(int) * BIG);
    s3 = malloc(sizeof(int) * SMALL);
    r1 = malloc(sizeof(int) * SMALL);
    r2 = malloc(sizeof(int) * BIG);
    r3 = malloc(sizeof(int) * SMALL);

    /* nothing was sent yet: Improbe says no */
    CHECK_MPI(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag,
                          &m, &st));
    CHECK_EQ_INT(flag, 0, "Improbe before any send");
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

    fill(s1, SMALL, 1);
    fill(s2, BIG, 2);
    fill(s3, SMALL, 3);
    CHECK_MPI(MPI_Isend(s1, SMALL, MPI_INT, right, 1, MPI_COMM_WORLD, &sq[0]));
    CHECK_MPI(MPI_Isend(s2, BIG, MPI_INT, right, 2, MPI_COMM_WORLD, &sq[1]));
    CHECK_MPI(MPI_Isend(s3, SMALL, MPI_INT, right, 3, MPI_COMM_WORLD, &sq[2]));

    /* match the first; a receive for anything then gets the second */
    CHECK_MPI(MPI_Mprobe(left, MPI_ANY_TAG, MPI_COMM_WORLD, &m1, &st));
    check_status(&st, 1, SMALL, "Mprobe");
    CHECK(m1 != MPI_MESSAGE_NULL, "Mprobe gave MPI_MESSAGE_NULL");
    CHECK_MPI(MPI_Irecv(r2, BIG, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG,
                        MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    check_status(&st, 2, BIG, "a receive posted after the probe");
    check_msg(r2, BIG, 2, "a receive posted after the probe");

    /* Improbe until the third is there, then Imrecv it */
    do {
        CHECK_MPI(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD,
                              &flag, &m3, &st));
    } while (!flag);
    check_status(&st, 3, SMALL, "Improbe");
    CHECK_MPI(MPI_Imrecv(r3, SMALL, MPI_INT, &m3, &rq));
    CHECK(m3 == MPI_MESSAGE_NULL, "Imrecv did not set MPI_MESSAGE_NULL");
    CHECK_MPI(MPI_Wait(&rq, &st));
    check_status(&st, 3, SMALL, "Imrecv");
    check_msg(r3, SMALL, 3, "Imrecv");

    /* the first, received last */
    CHECK_MPI(MPI_Mrecv(r1, SMALL, MPI_INT, &m1, &st));
    CHECK(m1 == MPI_MESSAGE_NULL, "Mrecv did not set MPI_MESSAGE_NULL");
    check_status(&st, 1, SMALL, "Mrecv");
    check_msg(r1, SMALL, 1, "Mrecv");
    CHECK_MPI(MPI_Waitall(3, sq, MPI_STATUSES_IGNORE));

    /* a large message matched, then received into a vector type */
    CHECK_MPI(MPI_Type_vector(SMALL, 1, 2, MPI_INT, &vec));
    CHECK_MPI(MPI_Type_commit(&vec));
    CHECK_MPI(MPI_Isend(s1, SMALL, MPI_INT, right, 4, MPI_COMM_WORLD, &sq[0]));
    CHECK_MPI(MPI_Isend(s2, BIG, MPI_INT, right, 5, MPI_COMM_WORLD, &sq[1]));
    CHECK_MPI(MPI_Mprobe(left, 5, MPI_COMM_WORLD, &m, &st));
    check_status(&st, 5, BIG, "Mprobe of a large message");
    memset(r2, 0, sizeof(int) * BIG);
    CHECK_MPI(MPI_Mrecv(r2, BIG, MPI_INT, &m, &st));
    check_msg(r2, BIG, 2, "Mrecv of a large message"); /* s2 sent again */
    for (i = 0; i < 2 * SMALL; i++)
        strided[i] = -1;
    CHECK_MPI(MPI_Mprobe(left, 4, MPI_COMM_WORLD, &m, &st));
    CHECK_MPI(MPI_Mrecv(strided, 1, vec, &m, &st));
    for (i = 0; i < 2 * SMALL; i++)
        CHECK_EQ_INT(strided[i], i % 2 ? -1 : val(left, 1, i / 2),
                     "Mrecv into a vector: elem %d", i);
    CHECK_MPI(MPI_Waitall(2, sq, MPI_STATUSES_IGNORE));
    CHECK_MPI(MPI_Type_free(&vec));

    /* a receive shorter than the message */
    CHECK_MPI(MPI_Isend(s1, SMALL, MPI_INT, right, 6, MPI_COMM_WORLD, &sq[0]));
    CHECK_MPI(MPI_Mprobe(left, 6, MPI_COMM_WORLD, &m, &st));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Mrecv(r1, SMALL - 1, MPI_INT, &m, &st),
                    MPI_ERR_TRUNCATE);
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
    CHECK_MPI(MPI_Wait(&sq[0], MPI_STATUS_IGNORE));

    /* MPI_PROC_NULL */
    CHECK_MPI(MPI_Mprobe(MPI_PROC_NULL, 0, MPI_COMM_WORLD, &m, &st));
    CHECK(m == MPI_MESSAGE_NO_PROC, "Mprobe(MPI_PROC_NULL): the message");
    CHECK_EQ_INT(st.MPI_SOURCE, MPI_PROC_NULL, "Mprobe(MPI_PROC_NULL): source");
    CHECK_MPI(MPI_Mrecv(r1, SMALL, MPI_INT, &m, &st));
    CHECK_EQ_INT(st.MPI_SOURCE, MPI_PROC_NULL, "Mrecv(NO_PROC): source");
    CHECK(m == MPI_MESSAGE_NULL, "Mrecv(NO_PROC): the message");

    free(s1);
    free(s2);
    free(s3);
    free(r1);
    free(r2);
    free(r3);
    return zr_finish();
}
