/* subarray.c - MPI_Type_create_subarray: a 2-D C-order and a 3-D
 * Fortran-order block sent to the right neighbour and checked element by
 * element; size, extent (the whole array), lower bound 0 and true lower
 * bound; receiving into a block of a larger array leaves the rest alone
 * (a halo exchange); two arrays in one send; the envelope and contents; and
 * MPI_ERR_ARG for a bad order (with zerorank's header also for a block
 * outside the array and for no dimension). */
#define TEST_NAME "subarray"
#include "check.h"

static int rank, size, left, right;

static int val(int src, int i) { return src * 100003 + i; }

static void check_2d_c(void)
{
    enum { R = 6, C = 8 };
    int sizes[2] = {R, C}, subs[2] = {3, 4}, starts[2] = {1, 2};
    int a[2][R][C], got[24], i, j, k, sz = -1;
    MPI_Aint lb = -1, ext = -1, tlb = -1, text = -1;
    MPI_Datatype t;

    CHECK_MPI(MPI_Type_create_subarray(2, sizes, subs, starts, MPI_ORDER_C,
                                       MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    CHECK_MPI(MPI_Type_size(t, &sz));
    CHECK_EQ_INT(sz, 12 * (int)sizeof(int), "2-D C: size");
    CHECK_MPI(MPI_Type_get_extent(t, &lb, &ext));
    CHECK_EQ_INT(lb, 0, "2-D C: lower bound");
    CHECK_EQ_INT(ext, R * C * (int)sizeof(int), "2-D C: extent");
    CHECK_MPI(MPI_Type_get_true_extent(t, &tlb, &text));
    CHECK_EQ_INT(tlb, (1 * C + 2) * (int)sizeof(int), "2-D C: true lower bound");
    CHECK_EQ_INT(text, ((3 * C) - (C - 4)) * (int)sizeof(int),
                 "2-D C: true extent");

    for (k = 0; k < 2; k++)
        for (i = 0; i < R; i++)
            for (j = 0; j < C; j++)
                a[k][i][j] = val(rank, k * 1000 + i * C + j);
    /* two arrays' blocks in one message */
    CHECK_MPI(MPI_Sendrecv(a, 2, t, right, 1, got, 24, MPI_INT, left, 1,
                           MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    for (k = 0; k < 2; k++)
        for (i = 0; i < 3; i++)
            for (j = 0; j < 4; j++)
                CHECK_EQ_INT(got[k * 12 + i * 4 + j],
                             val(left, k * 1000 + (1 + i) * C + (2 + j)),
                             "2-D C: array %d, block (%d, %d)", k, i, j);

    /* a halo exchange: receive into the block, the rest stays */
    for (i = 0; i < 12; i++)
        got[i] = val(rank, 5000 + i);
    memset(a, 0, sizeof a);
    CHECK_MPI(MPI_Sendrecv(got, 12, MPI_INT, right, 2, a, 1, t, left, 2,
                           MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    for (i = 0; i < R; i++)
        for (j = 0; j < C; j++) {
            int in = i >= 1 && i < 4 && j >= 2 && j < 6;
            CHECK_EQ_INT(a[0][i][j],
                         in ? val(left, 5000 + (i - 1) * 4 + (j - 2)) : 0,
                         "2-D C receive: (%d, %d)", i, j);
        }
    CHECK_MPI(MPI_Type_free(&t));
}

static void check_3d_fortran(void)
{
    enum { X = 4, Y = 5, Z = 6 };
    int sizes[3] = {X, Y, Z}, subs[3] = {2, 3, 2}, starts[3] = {1, 1, 3};
    int a[X * Y * Z], got[12], i, j, k, n = 0;
    MPI_Aint lb = -1, ext = -1;
    MPI_Datatype t;

    CHECK_MPI(MPI_Type_create_subarray(3, sizes, subs, starts,
                                       MPI_ORDER_FORTRAN, MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    CHECK_MPI(MPI_Type_get_extent(t, &lb, &ext));
    CHECK_EQ_INT(ext, X * Y * Z * (int)sizeof(int), "3-D Fortran: extent");
    for (i = 0; i < X * Y * Z; i++)
        a[i] = val(rank, i);
    CHECK_MPI(MPI_Sendrecv(a, 1, t, right, 3, got, 12, MPI_INT, left, 3,
                           MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    /* column-major: the first index varies fastest */
    for (k = 0; k < 2; k++)
        for (j = 0; j < 3; j++)
            for (i = 0; i < 2; i++, n++)
                CHECK_EQ_INT(got[n],
                             val(left, (1 + i) + X * ((1 + j) + Y * (3 + k))),
                             "3-D Fortran: (%d, %d, %d)", i, j, k);
    CHECK_MPI(MPI_Type_free(&t));
}

static void check_envelope_and_errors(void)
{
    int sizes[2] = {4, 4}, subs[2] = {2, 2}, starts[2] = {2, 1};
    int ni = -1, na = -1, nd = -1, comb = -1, ints[8];
    MPI_Aint addrs[1];
    MPI_Datatype t, types[1];

    CHECK_MPI(MPI_Type_create_subarray(2, sizes, subs, starts, MPI_ORDER_C,
                                       MPI_DOUBLE, &t));
    CHECK_MPI(MPI_Type_get_envelope(t, &ni, &na, &nd, &comb));
    CHECK_EQ_INT(comb, MPI_COMBINER_SUBARRAY, "envelope: combiner");
    CHECK_EQ_INT(ni, 8, "envelope: integers");
    CHECK_EQ_INT(na, 0, "envelope: addresses");
    CHECK_EQ_INT(nd, 1, "envelope: datatypes");
    CHECK_MPI(MPI_Type_get_contents(t, 8, 0, 1, ints, addrs, types));
    CHECK_EQ_INT(ints[0], 2, "contents: ndims");
    CHECK_EQ_INT(ints[1], 4, "contents: sizes[0]");
    CHECK_EQ_INT(ints[3], 2, "contents: subsizes[0]");
    CHECK_EQ_INT(ints[5], 2, "contents: starts[0]");
    CHECK_EQ_INT(ints[6], 1, "contents: starts[1]");
    CHECK_EQ_INT(ints[7], MPI_ORDER_C, "contents: order");
    CHECK(types[0] == MPI_DOUBLE, "contents: the old type");
    CHECK_MPI(MPI_Type_free(&t));

    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Type_create_subarray(2, sizes, subs, starts, 99,
                                             MPI_INT, &t),
                    MPI_ERR_ARG);
#ifdef ZERORANK_MPI
    /* erroneous in MPI-3.1, which need not be detected: MPICH takes a block
     * outside the array, Open MPI no dimension; zerorank refuses both */
    starts[0] = 3; /* 3 + 2 > 4 */
    CHECK_ERR_CLASS(MPI_Type_create_subarray(2, sizes, subs, starts,
                                             MPI_ORDER_C, MPI_INT, &t),
                    MPI_ERR_ARG);
    starts[0] = 0;
    CHECK_ERR_CLASS(MPI_Type_create_subarray(0, sizes, subs, starts,
                                             MPI_ORDER_C, MPI_INT, &t),
                    MPI_ERR_ARG);
#endif
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_ARE_FATAL));
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;
    check_2d_c();
    check_3d_fortran();
    check_envelope_and_errors();
    return zr_finish();
}
