/* Broadcasts queued just before MPI_Finalize still go out: rank 0 queues a few with
 * MPIX_Ring_bcast and calls MPI_Finalize with no MPIX_Ring_recv or MPIX_Ring_free after
 * them; every other rank must deliver them all (waiting up to 20 s each) before it
 * finalizes. Prints "OK ring_finalize" on rank 0 after its MPI_Finalize, and on the
 * others' success a line each. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#define LAST 5

int main(int argc, char **argv)
{
    int rank, size, k, origin, seq, bytes;
    char buf[64];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (MPIX_Ring_create(MPI_COMM_WORLD) != MPI_SUCCESS) {
        fprintf(stderr, "FAIL ring_finalize: [rank %d] MPIX_Ring_create\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0) {
        for (k = 0; k < LAST; k++) {
            int m = snprintf(buf, sizeof buf, "last:%d", k);
            if (MPIX_Ring_bcast(MPI_COMM_WORLD, buf, m + 1, &seq) != MPI_SUCCESS || seq != k + 1) {
                fprintf(stderr, "FAIL ring_finalize: MPIX_Ring_bcast %d\n", k);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
        /* Queued, not yet sent: fewer than 32 and no call that sends them. */
        MPI_Finalize();
        printf("OK ring_finalize\n");
        return 0;
    }
    for (k = 0; k < LAST; k++) {
        char want[64];
        snprintf(want, sizeof want, "last:%d", k);
        if (MPIX_Ring_recv(MPI_COMM_WORLD, buf, sizeof buf, &origin, &seq, &bytes, 20.0) !=
                MPI_SUCCESS ||
            origin != 0 || seq != k + 1 || strcmp(buf, want) != 0) {
            fprintf(stderr, "FAIL ring_finalize: [rank %d] delivery %d: origin %d seq %d\n",
                    rank, k, origin, seq);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Finalize();
    printf("rank %d delivered rank 0's last %d\n", rank, LAST);
    return 0;
}
