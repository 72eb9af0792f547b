/* datatype_coll.c - derived datatypes in collectives and packing: Gather
 * (every root) and Allgather of contiguous vectors into the columns of a
 * matrix through a resized vector receive type (a transpose), Alltoall of
 * matrix columns, Scatter through a resized indexed send type; Pack /
 * Unpack / Pack_size of a matrix column sent as MPI_PACKED (Get_count in
 * bytes). */
#define TEST_NAME "datatype_coll"
#include "check.h"

static int rank, size, left, right;

#define ROWS 6
#define COLS 5
static double mval(int owner, int i, int j) { return owner * 1000 + i * 10 + j + 0.5; }

/* collectives whose receive side is a resized column type: every rank's
 * contiguous vector becomes one column of a ROWS x size matrix */
static void check_coll(void)
{
    MPI_Datatype col, colr, idx;
    double v[ROWS], *mat = malloc(sizeof(double) * ROWS * (size_t)size);
    int root, i, r;

    CHECK_MPI(MPI_Type_vector(ROWS, 1, size, MPI_DOUBLE, &col));
    CHECK_MPI(MPI_Type_create_resized(col, 0, sizeof(double), &colr));
    CHECK_MPI(MPI_Type_commit(&colr));
    for (i = 0; i < ROWS; i++)
        v[i] = mval(rank, i, 0);
    for (root = 0; root < size; root++) {
        for (i = 0; i < ROWS * size; i++)
            mat[i] = -1;
        CHECK_MPI(MPI_Gather(v, ROWS, MPI_DOUBLE, mat, 1, colr, root,
                             MPI_COMM_WORLD));
        if (rank == root)
            for (i = 0; i < ROWS; i++)
                for (r = 0; r < size; r++)
                    CHECK_EQ_DBL(mat[i * size + r], mval(r, i, 0),
                                 "Gather into columns (root %d): [%d][%d]",
                                 root, i, r);
    }
    for (i = 0; i < ROWS * size; i++)
        mat[i] = -1;
    CHECK_MPI(MPI_Allgather(v, ROWS, MPI_DOUBLE, mat, 1, colr,
                            MPI_COMM_WORLD));
    for (i = 0; i < ROWS; i++)
        for (r = 0; r < size; r++)
            CHECK_EQ_DBL(mat[i * size + r], mval(r, i, 0),
                         "Allgather into columns: [%d][%d]", i, r);
    /* Alltoall: column r of my matrix goes to rank r, arriving as column
     * `rank of sender` of its matrix */
    {
        double *src = malloc(sizeof(double) * ROWS * (size_t)size);
        for (i = 0; i < ROWS; i++)
            for (r = 0; r < size; r++)
                src[i * size + r] = rank * 1000 + i * 10 + r;
        CHECK_MPI(MPI_Alltoall(src, 1, colr, mat, 1, colr, MPI_COMM_WORLD));
        for (i = 0; i < ROWS; i++)
            for (r = 0; r < size; r++)
                CHECK_EQ_DBL(mat[i * size + r], r * 1000 + i * 10 + rank,
                             "Alltoall of columns: [%d][%d]", i, r);
        free(src);
    }
    CHECK_MPI(MPI_Type_free(&col));
    CHECK_MPI(MPI_Type_free(&colr));

    /* Scatter with an indexed send type: rank r gets elements
     * {3r+2, 3r} of the root's array (extent resized to 3 ints) */
    {
        int bl[2] = {1, 1}, dp[2] = {2, 0}, *src, got[2];
        MPI_Datatype t;
        src = malloc(sizeof(int) * 3 * (size_t)size);
        CHECK_MPI(MPI_Type_indexed(2, bl, dp, MPI_INT, &t));
        CHECK_MPI(MPI_Type_create_resized(t, 0, 3 * sizeof(int), &idx));
        CHECK_MPI(MPI_Type_free(&t));
        CHECK_MPI(MPI_Type_commit(&idx));
        for (root = 0; root < size; root++) {
            for (i = 0; i < 3 * size; i++)
                src[i] = root * 1000 + i;
            CHECK_MPI(MPI_Scatter(src, 1, idx, got, 2, MPI_INT, root,
                                  MPI_COMM_WORLD));
            CHECK_EQ_INT(got[0], root * 1000 + 3 * rank + 2,
                         "Scatter(indexed) root %d [0]", root);
            CHECK_EQ_INT(got[1], root * 1000 + 3 * rank,
                         "Scatter(indexed) root %d [1]", root);
        }
        CHECK_MPI(MPI_Type_free(&idx));
        free(src);
    }
    free(mat);
}

static void check_pack(void)
{
    MPI_Datatype col;
    double m[ROWS][COLS], r[ROWS][COLS];
    int n = 7, nin = -1, psize = -1, pos = 0, i, j, cnt;
    char buf[1024];
    MPI_Status st;

    for (i = 0; i < ROWS; i++)
        for (j = 0; j < COLS; j++) {
            m[i][j] = mval(rank, i, j);
            r[i][j] = -1;
        }
    CHECK_MPI(MPI_Type_vector(ROWS, 1, COLS, MPI_DOUBLE, &col));
    CHECK_MPI(MPI_Type_commit(&col));
    CHECK_MPI(MPI_Pack_size(1, col, MPI_COMM_WORLD, &psize));
    CHECK(psize >= ROWS * (int)sizeof(double) && psize < 512,
          "Pack_size(column) = %d", psize);
    CHECK_MPI(MPI_Pack(&n, 1, MPI_INT, buf, sizeof buf, &pos, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Pack(&m[0][3], 1, col, buf, sizeof buf, &pos,
                       MPI_COMM_WORLD));
    CHECK_MPI(MPI_Sendrecv(buf, pos, MPI_PACKED, right, 12, buf + 512, 512,
                           MPI_PACKED, left, 12, MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, MPI_PACKED, &cnt));
    CHECK_EQ_INT(cnt, pos, "MPI_PACKED message size");
    pos = 0;
    CHECK_MPI(MPI_Unpack(buf + 512, 512, &pos, &nin, 1, MPI_INT,
                         MPI_COMM_WORLD));
    CHECK_EQ_INT(nin, 7, "unpacked int");
    CHECK_MPI(MPI_Unpack(buf + 512, 512, &pos, &r[0][1], 1, col,
                         MPI_COMM_WORLD));
    for (i = 0; i < ROWS; i++)
        for (j = 0; j < COLS; j++)
            CHECK_EQ_DBL(r[i][j], j == 1 ? mval(left, i, 3) : -1,
                         "unpacked column: r[%d][%d]", i, j);
    CHECK_MPI(MPI_Type_free(&col));
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    right = (rank + 1) % size;
    left = (rank + size - 1) % size;

    check_coll();
    check_pack();
    return zr_finish();
}
