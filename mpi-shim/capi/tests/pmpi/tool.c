/* The MPI profiling interface: this program is its own "tool". It defines MPI_Send,
 * MPI_Recv, MPI_Allreduce and MPI_Wtime itself, counting the calls and forwarding each
 * to its PMPI_ name; main then calls the MPI_ names. Every call must reach the library
 * exactly once through the tool (a PMPI_ name that came back to the tool's MPI_ function
 * would recurse until the stack overflows), and the results must be right. Rank 0
 * prints the library's version string and then "OK pmpi N ranks". */
#include <mpi.h>
#include <stdio.h>

static int sends, recvs, allreduces, wtimes;

int MPI_Send(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{
    sends++;
    return PMPI_Send(buf, count, datatype, dest, tag, comm);
}

int MPI_Recv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
             MPI_Status *status)
{
    recvs++;
    return PMPI_Recv(buf, count, datatype, source, tag, comm, status);
}

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                  MPI_Comm comm)
{
    allreduces++;
    return PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
}

double MPI_Wtime(void)
{
    wtimes++;
    return PMPI_Wtime();
}

static int fail(int rank, const char *what, long got, long want)
{
    fprintf(stderr, "FAIL pmpi: [rank %d] %s: %ld, not %ld\n", rank, what, got, want);
    PMPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

int main(int argc, char **argv)
{
    int rank, size, i, sum = 0, v = 0, want_sum;
    double t0, t1;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    t0 = MPI_Wtime();
    for (i = 0; i < 3; i++) {
        int mine = rank + 1;
        if (MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return fail(rank, "MPI_Allreduce", -1, 0);
    }
    want_sum = size * (size + 1) / 2;
    if (sum != want_sum)
        return fail(rank, "allreduce sum", sum, want_sum);
    if (size > 1) {
        if (rank == 0) {
            v = 42;
            if (MPI_Send(&v, 1, MPI_INT, 1, 7, MPI_COMM_WORLD) != MPI_SUCCESS)
                return fail(rank, "MPI_Send", -1, 0);
        } else if (rank == 1) {
            if (MPI_Recv(&v, 1, MPI_INT, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                return fail(rank, "MPI_Recv", -1, 0);
            if (v != 42)
                return fail(rank, "received value", v, 42);
        }
    }
    t1 = MPI_Wtime();
    if (!(t1 >= t0))
        return fail(rank, "MPI_Wtime went back", (long)(t1 - t0), 0);
    if (allreduces != 3)
        return fail(rank, "MPI_Allreduce calls seen by the tool", allreduces, 3);
    if (wtimes != 2)
        return fail(rank, "MPI_Wtime calls seen by the tool", wtimes, 2);
    if (sends != (size > 1 && rank == 0))
        return fail(rank, "MPI_Send calls seen by the tool", sends, size > 1 && rank == 0);
    if (recvs != (size > 1 && rank == 1))
        return fail(rank, "MPI_Recv calls seen by the tool", recvs, size > 1 && rank == 1);
#ifdef ZERORANK_MPIX_RING
    /* zerorank's extension under its profiling names too (zerorank's mpi.h only). */
    if (PMPIX_Ring_create(MPI_COMM_WORLD) != MPI_SUCCESS ||
        PMPIX_Ring_free(MPI_COMM_WORLD) != MPI_SUCCESS)
        return fail(rank, "PMPIX_Ring_create and PMPIX_Ring_free", -1, 0);
#endif
    if (rank == 0) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len;
        MPI_Get_library_version(lib, &len);
        printf("library: %s\n", lib);
    }
    MPI_Finalize();
    if (rank == 0)
        printf("OK pmpi %d ranks\n", size);
    return 0;
}
