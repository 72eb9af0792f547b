/* ops_loc.c - MPI_MINLOC and MPI_MAXLOC on every predefined pair type
 * (MPI_FLOAT_INT, MPI_DOUBLE_INT, MPI_LONG_INT, MPI_2INT, MPI_SHORT_INT,
 * MPI_LONG_DOUBLE_INT) laid out as the C structs MPI-3.1 5.9.4 describes,
 * through MPI_Allreduce and MPI_Reduce (last rank as root), with exact
 * expected values.  Ties must resolve to the smallest index - the indices are
 * chosen to decrease with the rank, so "first rank wins" is caught - and
 * values span the type's range.  Also checks the pair types' size and extent
 * against the C structs. */
#define TEST_NAME "ops_loc"
#include "check.h"

#define L 8

static int rank, size;

/* value of rank q, element e; `big` is a large exactly representable
 * power of two for the value type */
static long double pval(int q, int e, long double big)
{
    switch (e) {
    case 0: return q;
    case 1: return 7;                        /* all tie */
    case 2: return (q * 7 + 3) % 5;          /* some ties */
    case 3: return -(q % 3);                 /* negative, ties */
    case 4: return q % 2;
    case 5: return q % 2 ? big : -big;       /* extremes */
    case 6: return -3;                       /* all tie */
    default: return -q;
    }
}
static int pidx(int q, int e)
{
    if (e == 4)
        return q; /* index order = rank order */
    if (e == 6)
        return (q * 37 + 11) % 101;
    return (size - q) * 10 + e; /* higher rank, smaller index */
}

static void expect(int maxloc, int e, long double big, long double *v, int *ix)
{
    int q;
    *v = pval(0, e, big);
    *ix = pidx(0, e);
    for (q = 1; q < size; q++) {
        long double x = pval(q, e, big);
        int j = pidx(q, e);
        if (maxloc ? x > *v : x < *v) {
            *v = x;
            *ix = j;
        } else if (x == *v && j < *ix) {
            *ix = j;
        }
    }
}

#define PAIR_TEST(FN, VT, DT, BIG)                                            \
    static void FN(void)                                                      \
    {                                                                         \
        typedef struct {                                                      \
            VT v;                                                             \
            int i;                                                            \
        } pair;                                                               \
        pair in[L], out[L];                                                   \
        int k, e, root, ei, tsize = -1;                                       \
        long double ev;                                                       \
        MPI_Aint lb = -1, ext = -1;                                           \
        CHECK_MPI(MPI_Type_size(DT, &tsize));                                 \
        CHECK_EQ_INT(tsize, sizeof(VT) + sizeof(int), "MPI_Type_size(%s)",    \
                     #DT);                                                    \
        CHECK_MPI(MPI_Type_get_extent(DT, &lb, &ext));                        \
        CHECK_EQ_INT(lb, 0, "lower bound of %s", #DT);                        \
        CHECK_EQ_INT(ext, sizeof(pair), "extent of %s vs sizeof(struct)",     \
                     #DT);                                                    \
        for (k = 0; k < 4; k++) {                                             \
            int maxloc = k % 2;                                               \
            MPI_Op op = maxloc ? MPI_MAXLOC : MPI_MINLOC;                     \
            for (e = 0; e < L; e++) {                                         \
                in[e].v = (VT)pval(rank, e, BIG);                             \
                in[e].i = pidx(rank, e);                                      \
                out[e].v = (VT)-1;                                            \
                out[e].i = -12345;                                            \
            }                                                                 \
            root = size - 1;                                                  \
            if (k < 2)                                                        \
                CHECK_MPI(MPI_Allreduce(in, out, L, DT, op, MPI_COMM_WORLD)); \
            else                                                              \
                CHECK_MPI(                                                    \
                    MPI_Reduce(in, out, L, DT, op, root, MPI_COMM_WORLD));    \
            if (k >= 2 && rank != root)                                       \
                continue;                                                     \
            for (e = 0; e < L; e++) {                                         \
                expect(maxloc, e, BIG, &ev, &ei);                             \
                CHECK_EQ_DBL(out[e].v, (VT)ev, "%s %s %s element %d value",   \
                             k < 2 ? "Allreduce" : "Reduce",                  \
                             maxloc ? "MPI_MAXLOC" : "MPI_MINLOC", #DT, e);   \
                CHECK_EQ_INT(out[e].i, ei, "%s %s %s element %d index",       \
                             k < 2 ? "Allreduce" : "Reduce",                  \
                             maxloc ? "MPI_MAXLOC" : "MPI_MINLOC", #DT, e);   \
            }                                                                 \
        }                                                                     \
    }

PAIR_TEST(t_float_int, float, MPI_FLOAT_INT, 1267650600228229401496703205376.0L)
PAIR_TEST(t_double_int, double, MPI_DOUBLE_INT, 1267650600228229401496703205376.0L)
PAIR_TEST(t_long_int, long, MPI_LONG_INT, 1073741824.0L)
PAIR_TEST(t_2int, int, MPI_2INT, 1073741824.0L)
PAIR_TEST(t_short_int, short, MPI_SHORT_INT, 16384.0L)
PAIR_TEST(t_long_double_int, long double, MPI_LONG_DOUBLE_INT,
          1267650600228229401496703205376.0L)

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);

    t_float_int();
    t_double_int();
    t_long_int();
    t_2int();
    t_short_int();
    t_long_double_int();
    return zr_finish();
}
