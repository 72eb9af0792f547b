/* p2p_modes.c - ready sends: Rsend / Irsend after the receives are known to
 * be posted, and to MPI_PROC_NULL.  (Persistent requests, buffered sends and
 * matched probes are outside zerorank's scope: see unsupported.c.) */
#define TEST_NAME "p2p_modes"
#include "check.h"

static int rank, size, left, right;

static int val(int src, int tag, int i) { return src * 100003 + tag * 101 + i; }

static void check_ready(void)
{
    int out = val(rank, 5, 0), out2 = val(rank, 6, 0), in = -1, in2 = -1;
    MPI_Request rq[3];

    CHECK_MPI(MPI_Irecv(&in, 1, MPI_INT, left, 5, MPI_COMM_WORLD, &rq[0]));
    CHECK_MPI(MPI_Irecv(&in2, 1, MPI_INT, left, 6, MPI_COMM_WORLD, &rq[1]));
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD)); /* all receives are posted */
    CHECK_MPI(MPI_Rsend(&out, 1, MPI_INT, right, 5, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Irsend(&out2, 1, MPI_INT, right, 6, MPI_COMM_WORLD, &rq[2]));
    CHECK_MPI(MPI_Waitall(3, rq, MPI_STATUSES_IGNORE));
    CHECK_EQ_INT(in, val(left, 5, 0), "Rsend payload");
    CHECK_EQ_INT(in2, val(left, 6, 0), "Irsend payload");
}

static void check_ready_procnull(void)
{
    int out = 7;
    MPI_Request rq;
    MPI_Status st;

    CHECK_MPI(MPI_Rsend(&out, 1, MPI_INT, MPI_PROC_NULL, 9, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Irsend(&out, 1, MPI_INT, MPI_PROC_NULL, 9, MPI_COMM_WORLD,
                         &rq));
    CHECK_MPI(MPI_Wait(&rq, &st));
    CHECK(rq == MPI_REQUEST_NULL, "Wait(Irsend to PROC_NULL): not freed");
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    right = (rank + 1) % size;
    left = (rank + size - 1) % size;

    check_ready();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    check_ready_procnull();
    check_ready();
    return zr_finish();
}
