/* unsupported.c - functions outside zerorank's scope are exported, but every
 * call returns MPI_ERR_UNSUPPORTED_OPERATION (after printing a line naming
 * the function) instead of succeeding silently.  With MPI_ERRORS_RETURN on
 * MPI_COMM_WORLD (and MPI_COMM_SELF, for calls without a communicator) this
 * calls MPI_Open_port, MPI_Win_create and MPI_Comm_get_parent and checks their
 * error class.  The checks are compiled only against zerorank's own mpi.h
 * (which defines ZERORANK_MPI); with any other implementation's header the
 * program just initialises, finalises and prints OK. */
#define TEST_NAME "unsupported"
#include "check.h"

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
#ifdef ZERORANK_MPI
    {
        char port[MPI_MAX_PORT_NAME];
        int out = 1;
        MPI_Win win = MPI_WIN_NULL;
        MPI_Comm parent = MPI_COMM_WORLD;

        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
        CHECK_ERR_CLASS(MPI_Open_port(MPI_INFO_NULL, port),
                        MPI_ERR_UNSUPPORTED_OPERATION);
        CHECK_ERR_CLASS(MPI_Win_create(&out, (MPI_Aint)sizeof out,
                                       (int)sizeof out, MPI_INFO_NULL,
                                       MPI_COMM_WORLD, &win),
                        MPI_ERR_UNSUPPORTED_OPERATION);
        CHECK_ERR_CLASS(MPI_Comm_get_parent(&parent),
                        MPI_ERR_UNSUPPORTED_OPERATION);
        /* the job goes on normally afterwards */
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD,
                                          MPI_ERRORS_ARE_FATAL));
        (void)win;
        (void)parent;
    }
#endif
    return zr_finish();
}
