/* init_thread.c - MPI_Init_thread / MPI_Query_thread / MPI_Is_thread_main.
 *
 * The four thread levels are monotonic (SINGLE < FUNNELED < SERIALIZED <
 * MULTIPLE).  We request MPI_THREAD_MULTIPLE, so the provided level is one of
 * the four levels and necessarily <= required (MPI-3.1 12.4.3 allows
 * provided > required only when required is not the highest level).
 * MPI_Query_thread must report exactly the provided level. */
#define TEST_NAME "init_thread"
#include "check.h"

int main(int argc, char **argv)
{
    int required = MPI_THREAD_MULTIPLE, provided = -1, queried = -1;
    int flag = -1, mn = -1, mx = -1, sum = 0, size;

    CHECK(MPI_THREAD_SINGLE < MPI_THREAD_FUNNELED &&
              MPI_THREAD_FUNNELED < MPI_THREAD_SERIALIZED &&
              MPI_THREAD_SERIALIZED < MPI_THREAD_MULTIPLE,
          "thread level constants not monotonic: %d %d %d %d",
          MPI_THREAD_SINGLE, MPI_THREAD_FUNNELED, MPI_THREAD_SERIALIZED,
          MPI_THREAD_MULTIPLE);

    CHECK_MPI(MPI_Initialized(&flag));
    CHECK_EQ_INT(flag, 0, "MPI_Initialized before MPI_Init_thread");
    CHECK_MPI(MPI_Init_thread(&argc, &argv, required, &provided));
    CHECK_MPI(MPI_Initialized(&flag));
    CHECK_EQ_INT(flag, 1, "MPI_Initialized after MPI_Init_thread");

    CHECK(provided == MPI_THREAD_SINGLE || provided == MPI_THREAD_FUNNELED ||
              provided == MPI_THREAD_SERIALIZED ||
              provided == MPI_THREAD_MULTIPLE,
          "MPI_Init_thread: provided %d is not a thread level", provided);
    CHECK(provided <= required,
          "MPI_Init_thread: provided %d > required %d", provided, required);

    CHECK_MPI(MPI_Query_thread(&queried));
    CHECK_EQ_INT(queried, provided, "MPI_Query_thread vs provided");
    CHECK_MPI(MPI_Is_thread_main(&flag));
    CHECK_EQ_INT(flag, 1, "MPI_Is_thread_main on the thread that called "
                          "MPI_Init_thread");

    /* Every process of one launch gets the same level from the same call. */
    CHECK_MPI(MPI_Allreduce(&provided, &mn, 1, MPI_INT, MPI_MIN,
                            MPI_COMM_WORLD));
    CHECK_MPI(MPI_Allreduce(&provided, &mx, 1, MPI_INT, MPI_MAX,
                            MPI_COMM_WORLD));
    CHECK_EQ_INT(mn, mx, "provided thread level differs between ranks");

    /* The library works normally afterwards. */
    size = zr_size(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Allreduce(&flag, &sum, 1, MPI_INT, MPI_SUM,
                            MPI_COMM_WORLD));
    CHECK_EQ_INT(sum, size, "Allreduce of 1 per rank");
    return zr_finish();
}
