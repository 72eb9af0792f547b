/* unsupported.c - functions outside zerorank's scope are exported, but every
 * call returns MPI_ERR_UNSUPPORTED_OPERATION (after printing a line naming
 * the function) instead of succeeding silently.  With MPI_ERRORS_RETURN on
 * MPI_COMM_WORLD (and MPI_COMM_SELF, for calls without a communicator) this
 * calls MPI_Buffer_attach, MPI_Win_create and MPI_Mprobe and checks their
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
        static char buf[1 << 16];
        int out = 1;
        MPI_Win win = MPI_WIN_NULL;
        MPI_Message msg = MPI_MESSAGE_NULL;
        MPI_Status st;

        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
        CHECK_ERR_CLASS(MPI_Buffer_attach(buf, (int)sizeof buf),
                        MPI_ERR_UNSUPPORTED_OPERATION);
        CHECK_ERR_CLASS(MPI_Win_create(&out, (MPI_Aint)sizeof out,
                                       (int)sizeof out, MPI_INFO_NULL,
                                       MPI_COMM_WORLD, &win),
                        MPI_ERR_UNSUPPORTED_OPERATION);
        /* the source is MPI_PROC_NULL so that an implementation that does
         * have Mprobe returns at once (and fails the check) */
        CHECK_ERR_CLASS(
            MPI_Mprobe(MPI_PROC_NULL, 0, MPI_COMM_WORLD, &msg, &st),
            MPI_ERR_UNSUPPORTED_OPERATION);
        /* the job goes on normally afterwards */
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD,
                                          MPI_ERRORS_ARE_FATAL));
        (void)win;
        (void)msg;
    }
#endif
    return zr_finish();
}
