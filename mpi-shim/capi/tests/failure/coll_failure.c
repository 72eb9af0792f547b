/* coll_failure.c - a rank fails while the others are inside collectives.
 *
 * usage: coll_failure fatal | kill
 *   fatal: rank 1 calls MPI_Bcast with an invalid root (MPI_ERRORS_ARE_FATAL, the
 *          default), while the other ranks wait in MPI_Allreduce.
 *   kill:  rank 1 kills itself with SIGKILL while the others wait in MPI_Allreduce.
 * Either way the job must end promptly with a non-zero status and a message that names
 * the cause; the survivors must never print "SURVIVED". */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int rank, in = 1, out = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        if (argc > 1 && strcmp(argv[1], "kill") == 0)
            raise(SIGKILL);
        MPI_Bcast(&in, 1, MPI_INT, 12345, MPI_COMM_WORLD);
    } else {
        MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    }
    printf("SURVIVED rank %d\n", rank);
    MPI_Finalize();
    return 0;
}
