/* A first check of zerorank's MPI C ABI: environment, point-to-point (blocking,
 * immediate, wildcards, PROC_NULL), errors returned (bad rank, truncation) and a barrier,
 * at any number of ranks. Prints "OK smoke <n> ranks ..." from rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, flag;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Initialized(&flag);
    int right = (rank + 1) % size, left = (rank + size - 1) % size;
    long out[4] = {rank, rank * 10, rank * 100, -rank}, in[4];
    MPI_Status st;
    MPI_Sendrecv(out, 4, MPI_LONG, right, 7, in, 4, MPI_LONG, left, 7, MPI_COMM_WORLD, &st);
    int count;
    MPI_Get_count(&st, MPI_LONG, &count);
    if (in[0] != left || in[1] != left * 10 || st.MPI_SOURCE != left || st.MPI_TAG != 7 || count != 4) {
        fprintf(stderr, "FAIL rank %d: got %ld from %d tag %d count %d\n", rank, in[0], st.MPI_SOURCE, st.MPI_TAG, count);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Request r[2];
    int x = rank, y = -1;
    MPI_Irecv(&y, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &r[0]);
    MPI_Isend(&x, 1, MPI_INT, right, 3, MPI_COMM_WORLD, &r[1]);
    MPI_Status sts[2];
    MPI_Waitall(2, r, sts);
    if (y != left || sts[0].MPI_SOURCE != left || r[0] != MPI_REQUEST_NULL) { fprintf(stderr, "FAIL waitall\n"); MPI_Abort(MPI_COMM_WORLD, 1); }
    /* errors return */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rc = MPI_Send(&x, 1, MPI_INT, size + 5, 0, MPI_COMM_WORLD), cls;
    MPI_Error_class(rc, &cls);
    if (cls != MPI_ERR_RANK) { fprintf(stderr, "FAIL bad rank gave %d\n", rc); MPI_Abort(MPI_COMM_WORLD, 1); }
    char big[8];
    if (rank == 0 && size > 1) { char msg[16] = "0123456789abcde"; MPI_Send(msg, 16, MPI_CHAR, 1, 9, MPI_COMM_WORLD); }
    if (rank == 1) { rc = MPI_Recv(big, 8, MPI_CHAR, 0, 9, MPI_COMM_WORLD, &st); MPI_Error_class(rc, &cls);
        if (cls != MPI_ERR_TRUNCATE) { fprintf(stderr, "FAIL truncation gave %d\n", rc); MPI_Abort(MPI_COMM_WORLD, 1);} }
    MPI_Recv(big, 1, MPI_CHAR, MPI_PROC_NULL, 0, MPI_COMM_WORLD, &st);
    if (st.MPI_SOURCE != MPI_PROC_NULL) { fprintf(stderr, "FAIL proc null\n"); MPI_Abort(MPI_COMM_WORLD, 1); }
    MPI_Barrier(MPI_COMM_WORLD);
    char name[MPI_MAX_PROCESSOR_NAME]; int len;
    MPI_Get_processor_name(name, &len);
    if (rank == 0) printf("OK smoke %d ranks on %s\n", size, name);
    MPI_Finalize();
    return 0;
}
