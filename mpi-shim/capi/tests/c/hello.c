/* hello.c - the smallest program: Init, rank/size, Barrier, one line per rank,
 * Finalize.  Used for start-up timing. */
#define TEST_NAME "hello"
#include "check.h"

int main(int argc, char **argv)
{
    int rank, size;
    CHECK_MPI(MPI_Init(&argc, &argv));
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    CHECK(size >= 1, "MPI_Comm_size: expected >= 1, got %d", size);
    CHECK(rank >= 0 && rank < size, "MPI_Comm_rank: expected 0..%d, got %d",
          size - 1, rank);
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    printf("hello from %d of %d\n", rank, size);
    fflush(stdout);
    return zr_finish();
}
