/* ops_user.c - user-defined reduction operations: Op_create / Op_free /
 * Op_commutative; a commutative op (a + b + 1, which also counts that the op
 * is applied exactly size-1 times per element) and a non-commutative,
 * associative op (concatenation of base-16 digit strings, on a derived
 * datatype) whose result must be rank 0 op rank 1 op ... op rank n-1, through
 * Allreduce, Reduce (every root), Scan, Exscan, Reduce_scatter_block and
 * Reduce_local, for 1 element and for 100000 elements (segmented
 * algorithms).  The user function must receive the datatype handle that was
 * passed to the reduction. */
#define TEST_NAME "ops_user"
#include "check.h"
#include <stdint.h>

static int rank, size;
static MPI_Datatype cat_t; /* {uint64 value, uint64 digits} */
static int bad_dt;         /* the op function saw an unexpected datatype */

/* commutative: a op b = a + b + 1 */
static void plus1(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    int k, *a = in, *b = inout;
    if (*dt != MPI_INT)
        bad_dt = 1;
    for (k = 0; k < *len; k++)
        b[k] = a[k] + b[k] + 1;
}

/* non-commutative: (v1, l1) op (v2, l2) = (v1 * 16^l2 + v2, l1 + l2),
 * i.e. digit-string concatenation (modulo 2^64); inout = in op inout */
typedef struct {
    uint64_t v, len;
} cat;
static cat cat_op(cat a, cat b)
{
    cat r;
    uint64_t k, m = 1;
    for (k = 0; k < b.len; k++)
        m *= 16u;
    r.v = a.v * m + b.v;
    r.len = a.len + b.len;
    return r;
}
static void concat(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    int k;
    cat *a = in, *b = inout;
    if (*dt != cat_t)
        bad_dt = 1;
    for (k = 0; k < *len; k++)
        b[k] = cat_op(a[k], b[k]);
}
static cat digit(int q, int i)
{
    cat c;
    c.v = (uint64_t)((q + i) % 15 + 1);
    c.len = 1;
    return c;
}
/* digit(lo, i) op ... op digit(hi - 1, i) */
static cat cat_range(int lo, int hi, int i)
{
    cat r = digit(lo, i);
    int q;
    for (q = lo + 1; q < hi; q++)
        r = cat_op(r, digit(q, i));
    return r;
}

#define CHECK_CAT(got, exp, ...)                                              \
    do {                                                                      \
        CHECK_EQ_UINT((got).v, (exp).v, __VA_ARGS__);                         \
        CHECK_EQ_UINT((got).len, (exp).len, __VA_ARGS__);                     \
    } while (0)

static void check_commutative(void)
{
    MPI_Op op = MPI_OP_NULL;
    int commute = -1, in[3], out[3], i;

    CHECK_MPI(MPI_Op_commutative(MPI_SUM, &commute));
    CHECK_EQ_INT(commute, 1, "MPI_Op_commutative(MPI_SUM)");
    CHECK_MPI(MPI_Op_create(plus1, 1, &op));
    CHECK(op != MPI_OP_NULL, "Op_create returned MPI_OP_NULL");
    CHECK_MPI(MPI_Op_commutative(op, &commute));
    CHECK_EQ_INT(commute, 1, "MPI_Op_commutative(user, commute=1)");
    for (i = 0; i < 3; i++)
        in[i] = rank * (i + 1);
    CHECK_MPI(MPI_Allreduce(in, out, 3, MPI_INT, op, MPI_COMM_WORLD));
    for (i = 0; i < 3; i++)
        CHECK_EQ_INT(out[i], (i + 1) * size * (size - 1) / 2 + (size - 1),
                     "Allreduce(a+b+1) element %d", i);
    CHECK_MPI(MPI_Reduce_local(in, out, 3, MPI_INT, op));
    CHECK_EQ_INT(out[1], 2 * size * (size - 1) / 2 + (size - 1) + in[1] + 1,
                 "Reduce_local(a+b+1)");
    CHECK_EQ_INT(bad_dt, 0, "user op got a different datatype handle");
    CHECK_MPI(MPI_Op_free(&op));
    CHECK(op == MPI_OP_NULL, "Op_free did not set MPI_OP_NULL");
}

static void check_noncommutative(void)
{
    MPI_Op op;
    int commute = -1, c, n, i, root;
    static const int ns[2] = {1, 100000};
    cat *in, *out;

    CHECK_MPI(MPI_Type_contiguous(2, MPI_UINT64_T, &cat_t));
    CHECK_MPI(MPI_Type_commit(&cat_t));
    CHECK_MPI(MPI_Op_create(concat, 0, &op));
    CHECK_MPI(MPI_Op_commutative(op, &commute));
    CHECK_EQ_INT(commute, 0, "MPI_Op_commutative(user, commute=0)");
    in = malloc(sizeof(cat) * (size_t)ns[1] * (size_t)size);
    out = malloc(sizeof(cat) * (size_t)ns[1] * (size_t)size);

    for (c = 0; c < 2; c++) {
        n = ns[c];
        for (i = 0; i < n; i++)
            in[i] = digit(rank, i);

        CHECK_MPI(MPI_Allreduce(in, out, n, cat_t, op, MPI_COMM_WORLD));
        for (i = 0; i < n; i++)
            CHECK_CAT(out[i], cat_range(0, size, i),
                      "Allreduce(concat) count %d element %d", n, i);

        for (root = 0; root < size; root++) {
            CHECK_MPI(MPI_Reduce(in, out, n, cat_t, op, root, MPI_COMM_WORLD));
            if (rank == root)
                for (i = 0; i < n; i++)
                    CHECK_CAT(out[i], cat_range(0, size, i),
                              "Reduce(concat) root %d count %d element %d",
                              root, n, i);
        }

        CHECK_MPI(MPI_Scan(in, out, n, cat_t, op, MPI_COMM_WORLD));
        for (i = 0; i < n; i++)
            CHECK_CAT(out[i], cat_range(0, rank + 1, i),
                      "Scan(concat) count %d element %d", n, i);

        CHECK_MPI(MPI_Exscan(in, out, n, cat_t, op, MPI_COMM_WORLD));
        if (rank > 0)
            for (i = 0; i < n; i++)
                CHECK_CAT(out[i], cat_range(0, rank, i),
                          "Exscan(concat) count %d element %d", n, i);

        /* block j of everybody's input is reduced onto rank j */
        if (c == 0 || size <= 8) {
            for (i = 0; i < n * size; i++)
                in[i] = digit(rank, i);
            CHECK_MPI(MPI_Reduce_scatter_block(in, out, n, cat_t, op,
                                               MPI_COMM_WORLD));
            for (i = 0; i < n; i++)
                CHECK_CAT(out[i], cat_range(0, size, rank * n + i),
                          "Reduce_scatter_block(concat) count %d element %d",
                          n, i);
        }
    }

    /* Reduce_local: inoutbuf = inbuf op inoutbuf */
    {
        cat a[2], b[2];
        a[0] = digit(2, 0); /* 3 */
        a[1] = digit(9, 0); /* 10 */
        b[0] = digit(4, 0); /* 5 */
        b[1] = digit(0, 0); /* 1 */
        CHECK_MPI(MPI_Reduce_local(a, b, 2, cat_t, op));
        CHECK_EQ_UINT(b[0].v, 0x35, "Reduce_local(concat)[0]");
        CHECK_EQ_UINT(b[1].v, 0xA1, "Reduce_local(concat)[1]");
        CHECK_EQ_UINT(b[1].len, 2, "Reduce_local(concat)[1] length");
    }
    CHECK_EQ_INT(bad_dt, 0, "user op got a different datatype handle");
    CHECK_MPI(MPI_Op_free(&op));
    CHECK(op == MPI_OP_NULL, "Op_free did not set MPI_OP_NULL");
    CHECK_MPI(MPI_Type_free(&cat_t));
    free(in);
    free(out);
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);

    check_commutative();
    check_noncommutative();
    return zr_finish();
}
