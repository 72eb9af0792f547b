/* datatype_comm.c - sending and receiving non-contiguous data with derived
 * datatypes, checked element by element, with sentinels proving that bytes
 * outside the type map are never written: contiguous; a matrix column via
 * vector (sent from, and received into, a matrix); several columns at once
 * via a resized vector; indexed (incl. received through the indexed type);
 * a struct with padding (holes untouched; received through a differently laid
 * out struct with the same type signature); absolute addresses with
 * MPI_BOTTOM; a type freed while a nonblocking send using it is pending;
 * Bcast of structs from every root.  Pack / Unpack and the other collectives
 * with derived types: datatype_coll.c. */
#define TEST_NAME "datatype_comm"
#include "check.h"
#include <stddef.h>

static int rank, size, left, right;

#define ROWS 6
#define COLS 5
static double mval(int owner, int i, int j) { return owner * 1000 + i * 10 + j + 0.5; }

static void check_contiguous_vector(void)
{
    MPI_Datatype c5, col, cols;
    double m[ROWS][COLS], r[ROWS * 3], mr[ROWS][COLS];
    int out[15], in[16], i, j, cnt;
    MPI_Status st;
    MPI_Request rq;

    CHECK_MPI(MPI_Type_contiguous(5, MPI_INT, &c5));
    CHECK_MPI(MPI_Type_commit(&c5));
    for (i = 0; i < 15; i++)
        out[i] = rank * 100 + i;
    in[15] = -1;
    CHECK_MPI(MPI_Sendrecv(out, 3, c5, right, 1, in, 15, MPI_INT, left, 1,
                           MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, MPI_INT, &cnt));
    CHECK_EQ_INT(cnt, 15, "3 x contiguous(5) received as ints: count");
    for (i = 0; i < 15; i++)
        CHECK_EQ_INT(in[i], left * 100 + i, "contiguous elem %d", i);
    CHECK_EQ_INT(in[15], -1, "contiguous receive wrote past the end");
    CHECK_MPI(MPI_Type_free(&c5));

    for (i = 0; i < ROWS; i++)
        for (j = 0; j < COLS; j++) {
            m[i][j] = mval(rank, i, j);
            mr[i][j] = -1.0;
        }
    CHECK_MPI(MPI_Type_vector(ROWS, 1, COLS, MPI_DOUBLE, &col));
    CHECK_MPI(MPI_Type_commit(&col));
    /* send column (rank % COLS) into a contiguous array */
    CHECK_MPI(MPI_Sendrecv(&m[0][rank % COLS], 1, col, right, 2, r, ROWS,
                           MPI_DOUBLE, left, 2, MPI_COMM_WORLD, &st));
    for (i = 0; i < ROWS; i++)
        CHECK_EQ_DBL(r[i], mval(left, i, left % COLS), "column elem %d", i);
    /* receive a contiguous array into column 2 of a matrix */
    for (i = 0; i < ROWS; i++)
        r[i] = mval(rank, i, 99);
    CHECK_MPI(MPI_Sendrecv(r, ROWS, MPI_DOUBLE, right, 3, &mr[0][2], 1, col,
                           left, 3, MPI_COMM_WORLD, &st));
    for (i = 0; i < ROWS; i++)
        for (j = 0; j < COLS; j++)
            CHECK_EQ_DBL(mr[i][j], j == 2 ? mval(left, i, 99) : -1.0,
                         "received into column 2: m[%d][%d]", i, j);

    /* three consecutive columns with a resized column type */
    CHECK_MPI(MPI_Type_create_resized(col, 0, sizeof(double), &cols));
    CHECK_MPI(MPI_Type_commit(&cols));
    CHECK_MPI(MPI_Irecv(r, ROWS * 3, MPI_DOUBLE, left, 4, MPI_COMM_WORLD,
                        &rq));
    CHECK_MPI(MPI_Send(&m[0][1], 3, cols, right, 4, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Wait(&rq, &st));
    for (j = 0; j < 3; j++)
        for (i = 0; i < ROWS; i++)
            CHECK_EQ_DBL(r[j * ROWS + i], mval(left, i, 1 + j),
                         "3 resized columns: column %d row %d", 1 + j, i);
    CHECK_MPI(MPI_Type_free(&cols));
    CHECK_MPI(MPI_Type_free(&col));
}

static void check_indexed(void)
{
    int bl[3] = {1, 2, 3}, dp[3] = {5, 0, 9}, a[14], b[14], c[6], i, cnt;
    static const int order[6] = {5, 0, 1, 9, 10, 11};
    MPI_Datatype t;
    MPI_Status st;

    CHECK_MPI(MPI_Type_indexed(3, bl, dp, MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    for (i = 0; i < 14; i++) {
        a[i] = rank * 100 + i;
        b[i] = -1;
    }
    /* typed -> contiguous: elements in type-map order */
    CHECK_MPI(MPI_Sendrecv(a, 1, t, right, 5, c, 6, MPI_INT, left, 5,
                           MPI_COMM_WORLD, &st));
    for (i = 0; i < 6; i++)
        CHECK_EQ_INT(c[i], left * 100 + order[i], "indexed -> contig elem %d",
                     i);
    /* typed -> typed: same positions, holes untouched */
    CHECK_MPI(MPI_Sendrecv(a, 1, t, right, 6, b, 1, t, left, 6,
                           MPI_COMM_WORLD, &st));
    CHECK_MPI(MPI_Get_count(&st, t, &cnt));
    CHECK_EQ_INT(cnt, 1, "indexed: Get_count");
    CHECK_MPI(MPI_Get_elements(&st, t, &cnt));
    CHECK_EQ_INT(cnt, 6, "indexed: Get_elements");
    for (i = 0; i < 14; i++) {
        int in_map = i == 0 || i == 1 || i == 5 || (i >= 9 && i <= 11);
        CHECK_EQ_INT(b[i], in_map ? left * 100 + i : -1,
                     "indexed -> indexed position %d", i);
    }
    CHECK_MPI(MPI_Type_free(&t));
}

struct S {
    char c;
    double d;
    int i[3];
    short s;
};
static MPI_Datatype make_s(void)
{
    int bl[4] = {1, 1, 3, 1};
    MPI_Aint dp[4];
    MPI_Datatype ty[4], t, r;
    dp[0] = offsetof(struct S, c);
    dp[1] = offsetof(struct S, d);
    dp[2] = offsetof(struct S, i);
    dp[3] = offsetof(struct S, s);
    ty[0] = MPI_CHAR;
    ty[1] = MPI_DOUBLE;
    ty[2] = MPI_INT;
    ty[3] = MPI_SHORT;
    CHECK_MPI(MPI_Type_create_struct(4, bl, dp, ty, &t));
    CHECK_MPI(MPI_Type_create_resized(t, 0, sizeof(struct S), &r));
    CHECK_MPI(MPI_Type_free(&t));
    CHECK_MPI(MPI_Type_commit(&r));
    return r;
}
static void fill_s(struct S *s, int owner, int k)
{
    s->c = (char)('a' + owner % 26);
    s->d = owner * 1.5 + k;
    s->i[0] = owner;
    s->i[1] = k;
    s->i[2] = owner * 10 + k;
    s->s = (short)(-owner - k);
}
static void check_s(const struct S *s, int owner, int k, const char *what)
{
    struct S e;
    fill_s(&e, owner, k);
    CHECK_EQ_INT(s->c, e.c, "%s[%d].c", what, k);
    CHECK_EQ_DBL(s->d, e.d, "%s[%d].d", what, k);
    CHECK_EQ_INT(s->i[0], e.i[0], "%s[%d].i[0]", what, k);
    CHECK_EQ_INT(s->i[1], e.i[1], "%s[%d].i[1]", what, k);
    CHECK_EQ_INT(s->i[2], e.i[2], "%s[%d].i[2]", what, k);
    CHECK_EQ_INT(s->s, e.s, "%s[%d].s", what, k);
}
/* every byte of `s` outside the fields still holds 0xEE */
static void check_holes(const struct S *s, const char *what)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t b;
    for (b = 0; b < sizeof *s; b++) {
        int field = b == offsetof(struct S, c) ||
                    (b >= offsetof(struct S, d) &&
                     b < offsetof(struct S, d) + sizeof(double)) ||
                    (b >= offsetof(struct S, i) &&
                     b < offsetof(struct S, i) + 3 * sizeof(int)) ||
                    (b >= offsetof(struct S, s) &&
                     b < offsetof(struct S, s) + sizeof(short));
        if (!field)
            CHECK_EQ_INT(p[b], 0xEE, "%s: padding byte %zu written", what, b);
    }
}

static void check_struct(void)
{
    enum { N = 4 };
    struct S out[N], in[N];
    unsigned char packed[N * 23], *p;
    MPI_Datatype st_t, flat, tmp;
    int k, bl[4] = {1, 1, 3, 1};
    MPI_Aint dp[4] = {0, 1, 9, 21};
    MPI_Datatype ty[4];

    st_t = make_s();
    for (k = 0; k < N; k++)
        fill_s(&out[k], rank, k);
    memset(in, 0xEE, sizeof in);
    CHECK_MPI(MPI_Sendrecv(out, N, st_t, right, 7, in, N, st_t, left, 7,
                           MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    for (k = 0; k < N; k++) {
        check_s(&in[k], left, k, "struct");
        check_holes(&in[k], "struct receive");
    }

    /* same type signature, unaligned packed layout (23 bytes apart) */
    ty[0] = MPI_CHAR;
    ty[1] = MPI_DOUBLE;
    ty[2] = MPI_INT;
    ty[3] = MPI_SHORT;
    CHECK_MPI(MPI_Type_create_struct(4, bl, dp, ty, &tmp));
    CHECK_MPI(MPI_Type_create_resized(tmp, 0, 23, &flat));
    CHECK_MPI(MPI_Type_free(&tmp));
    CHECK_MPI(MPI_Type_commit(&flat));
    CHECK_MPI(MPI_Sendrecv(out, N, st_t, right, 8, packed, N, flat, left, 8,
                           MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    for (k = 0; k < N; k++) {
        struct S e;
        p = packed + 23 * k;
        memset(&e, 0, sizeof e);
        memcpy(&e.c, p, 1);
        memcpy(&e.d, p + 1, sizeof(double));
        memcpy(e.i, p + 9, 3 * sizeof(int));
        memcpy(&e.s, p + 21, sizeof(short));
        check_s(&e, left, k, "struct -> packed struct");
    }
    /* and back */
    memset(in, 0xEE, sizeof in);
    CHECK_MPI(MPI_Sendrecv(packed, N, flat, right, 9, in, N, st_t, left, 9,
                           MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    for (k = 0; k < N; k++) {
        /* packed holds left's data; it went one more step to the right */
        check_s(&in[k], (left + size - 1) % size, k, "packed -> struct");
        check_holes(&in[k], "packed -> struct");
    }
    CHECK_MPI(MPI_Type_free(&flat));

    /* Bcast of structs from every root */
    {
        int root;
        for (root = 0; root < size; root++) {
            memset(in, 0xEE, sizeof in);
            if (rank == root)
                for (k = 0; k < N; k++)
                    fill_s(&in[k], root, k);
            CHECK_MPI(MPI_Bcast(in, N, st_t, root, MPI_COMM_WORLD));
            for (k = 0; k < N; k++) {
                check_s(&in[k], root, k, "Bcast struct");
                if (rank != root)
                    check_holes(&in[k], "Bcast struct");
            }
        }
    }
    CHECK_MPI(MPI_Type_free(&st_t));
}

/* MPI_BOTTOM with absolute addresses of unrelated variables */
static void check_bottom(void)
{
    static int a, b[3];
    static double d;
    int ra = 0, rb[3] = {0, 0, 0};
    double rd = 0;
    int bl[3] = {1, 3, 1};
    MPI_Aint ad[3], rad[3];
    MPI_Datatype ty[3], st, rt;

    a = rank;
    b[0] = rank + 1;
    b[1] = rank + 2;
    b[2] = rank + 3;
    d = rank + 0.25;
    ty[0] = MPI_INT;
    ty[1] = MPI_INT;
    ty[2] = MPI_DOUBLE;
    CHECK_MPI(MPI_Get_address(&a, &ad[0]));
    CHECK_MPI(MPI_Get_address(b, &ad[1]));
    CHECK_MPI(MPI_Get_address(&d, &ad[2]));
    CHECK_MPI(MPI_Get_address(&ra, &rad[0]));
    CHECK_MPI(MPI_Get_address(rb, &rad[1]));
    CHECK_MPI(MPI_Get_address(&rd, &rad[2]));
    CHECK_MPI(MPI_Type_create_struct(3, bl, ad, ty, &st));
    CHECK_MPI(MPI_Type_create_struct(3, bl, rad, ty, &rt));
    CHECK_MPI(MPI_Type_commit(&st));
    CHECK_MPI(MPI_Type_commit(&rt));
    CHECK_MPI(MPI_Sendrecv(MPI_BOTTOM, 1, st, right, 10, MPI_BOTTOM, 1, rt,
                           left, 10, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    CHECK_EQ_INT(ra, left, "MPI_BOTTOM: a");
    CHECK_EQ_INT(rb[0] + rb[1] * 10 + rb[2] * 100,
                 (left + 1) + (left + 2) * 10 + (left + 3) * 100,
                 "MPI_BOTTOM: b[]");
    CHECK_EQ_DBL(rd, left + 0.25, "MPI_BOTTOM: d");
    CHECK_MPI(MPI_Type_free(&st));
    CHECK_MPI(MPI_Type_free(&rt));
}

/* Freeing a datatype does not affect a pending operation using it. */
static void check_free_pending(void)
{
    MPI_Datatype t;
    MPI_Request rq;
    int a[20], r[10], i;

    for (i = 0; i < 20; i++)
        a[i] = rank * 100 + i;
    CHECK_MPI(MPI_Type_vector(10, 1, 2, MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    CHECK_MPI(MPI_Isend(a, 1, t, right, 11, MPI_COMM_WORLD, &rq));
    CHECK_MPI(MPI_Type_free(&t));
    CHECK_MPI(MPI_Recv(r, 10, MPI_INT, left, 11, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    for (i = 0; i < 10; i++)
        CHECK_EQ_INT(r[i], left * 100 + 2 * i, "vector freed while pending, "
                                               "elem %d", i);
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    right = (rank + 1) % size;
    left = (rank + size - 1) % size;

    check_contiguous_vector();
    check_indexed();
    check_struct();
    check_bottom();
    check_free_pending();
    return zr_finish();
}
