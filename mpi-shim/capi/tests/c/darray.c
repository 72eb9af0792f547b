/* darray.c - MPI_Type_create_darray: each rank packs its part of a global
 * array (element value = its global index) with the darray type and checks
 * the packed elements against the indices it owns, computed here: 2-D C
 * order BLOCK x CYCLIC(2), 2-D Fortran order CYCLIC x NONE, 3-D C order
 * BLOCK(explicit) x BLOCK x CYCLIC; size, extent (the whole array) and lower
 * bound; with zerorank's header, MPI_ERR_ARG for a grid that does not
 * match the size. */
#define TEST_NAME "darray"
#include "check.h"

static int rank, size;

/* Indices along one dimension owned by process coordinate c of p. */
static int owned(int g, int dist, int darg, int p, int c, int *out)
{
    int n = 0, i, b;
    if (dist == MPI_DISTRIBUTE_NONE) {
        for (i = 0; i < g; i++)
            out[n++] = i;
    } else if (dist == MPI_DISTRIBUTE_BLOCK) {
        b = darg == MPI_DISTRIBUTE_DFLT_DARG ? (g + p - 1) / p : darg;
        for (i = c * b; i < c * b + b && i < g; i++)
            out[n++] = i;
    } else {
        b = darg == MPI_DISTRIBUTE_DFLT_DARG ? 1 : darg;
        for (i = 0; i < g; i++)
            if ((i / b) % p == c)
                out[n++] = i;
    }
    return n;
}

static void check(int nd, const int *g, const int *dist, const int *darg,
                  const int *p, int order, const char *what)
{
    int total = 1, i, c[3], rest, idx[3][64], cnt[3], expect = 0, pos = 0,
        psize = -1, *global, *packed, k0, k1, k2, sz = -1;
    MPI_Aint lb = -1, ext = -1;
    MPI_Datatype t;

    for (i = 0; i < nd; i++)
        total *= g[i];
    rest = rank;
    for (i = nd - 1; i >= 0; i--) {
        c[i] = rest % p[i];
        rest /= p[i];
    }
    for (i = 0; i < nd; i++)
        cnt[i] = owned(g[i], dist[i], darg[i], p[i], c[i], idx[i]);
    for (i = nd; i < 3; i++) {
        cnt[i] = 1;
        idx[i][0] = 0;
    }
    CHECK_MPI(MPI_Type_create_darray(size, rank, nd, g, dist, darg, p, order,
                                     MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    CHECK_MPI(MPI_Type_get_extent(t, &lb, &ext));
    CHECK_EQ_INT(lb, 0, "%s: lower bound", what);
    CHECK_EQ_INT(ext, total * (int)sizeof(int), "%s: extent", what);
    CHECK_MPI(MPI_Type_size(t, &sz));
    CHECK_EQ_INT(sz, cnt[0] * cnt[1] * cnt[2] * (int)sizeof(int), "%s: size",
                 what);

    global = malloc(sizeof(int) * total);
    packed = malloc(sizeof(int) * total + 1);
    for (i = 0; i < total; i++)
        global[i] = i;
    CHECK_MPI(MPI_Pack_size(1, t, MPI_COMM_WORLD, &psize));
    CHECK_MPI(MPI_Pack(global, 1, t, packed, psize, &pos, MPI_COMM_WORLD));
    /* the local array's order: the first index slowest for C order, the
     * last slowest for Fortran order */
    for (k0 = 0; k0 < (order == MPI_ORDER_C ? cnt[0] : cnt[nd - 1]); k0++)
        for (k1 = 0; k1 < (nd < 2 ? 1 : order == MPI_ORDER_C ? cnt[1] : cnt[nd - 2]); k1++)
            for (k2 = 0; k2 < (nd < 3 ? 1 : order == MPI_ORDER_C ? cnt[2] : cnt[0]); k2++) {
                int gi[3], lin = 0, d;
                if (order == MPI_ORDER_C) {
                    gi[0] = idx[0][k0];
                    gi[1] = nd > 1 ? idx[1][k1] : 0;
                    gi[2] = nd > 2 ? idx[2][k2] : 0;
                    for (d = 0; d < nd; d++)
                        lin = lin * g[d] + gi[d];
                } else {
                    /* nd is 2 here: k0 runs over dimension 1, k1 over 0 */
                    gi[1] = idx[1][k0];
                    gi[0] = idx[0][k1];
                    lin = gi[0] + g[0] * gi[1];
                }
                CHECK_EQ_INT(((int *)packed)[expect], lin,
                             "%s: packed element %d", what, expect);
                expect++;
            }
    CHECK_EQ_INT(pos, expect * (int)sizeof(int), "%s: packed bytes", what);
    CHECK_MPI(MPI_Type_free(&t));
    free(global);
    free(packed);
}

int main(int argc, char **argv)
{
    int p2[2] = {0, 0}, p3[3] = {0, 0, 0};
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Dims_create(size, 2, p2));
    CHECK_MPI(MPI_Dims_create(size, 3, p3));
    {
        int g[2] = {5, 7}, dist[2] = {MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_CYCLIC},
            darg[2] = {MPI_DISTRIBUTE_DFLT_DARG, 2};
        check(2, g, dist, darg, p2, MPI_ORDER_C, "2-D C BLOCK x CYCLIC(2)");
    }
    {
        int g[2] = {6, 4}, dist[2] = {MPI_DISTRIBUTE_CYCLIC, MPI_DISTRIBUTE_NONE},
            darg[2] = {MPI_DISTRIBUTE_DFLT_DARG, MPI_DISTRIBUTE_DFLT_DARG},
            p[2] = {0, 1};
        p[0] = size;
        check(2, g, dist, darg, p, MPI_ORDER_FORTRAN, "2-D Fortran CYCLIC x NONE");
    }
    {
        int g[3] = {4, 3, 5},
            dist[3] = {MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_BLOCK,
                       MPI_DISTRIBUTE_CYCLIC},
            darg[3] = {4, MPI_DISTRIBUTE_DFLT_DARG, MPI_DISTRIBUTE_DFLT_DARG};
        darg[0] = (4 + p3[0] - 1) / p3[0];
        check(3, g, dist, darg, p3, MPI_ORDER_C, "3-D C BLOCK x BLOCK x CYCLIC");
    }
#ifdef ZERORANK_MPI
    /* erroneous in MPI-3.1, which need not be detected (MPICH 4.0 divides by
     * zero); zerorank refuses it */
    {
        int g[1] = {8}, dist[1] = {MPI_DISTRIBUTE_BLOCK},
            darg[1] = {MPI_DISTRIBUTE_DFLT_DARG}, p[1], ignored;
        MPI_Datatype t;
        p[0] = size + 1;
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
        CHECK_ERR_CLASS(MPI_Type_create_darray(size, rank, 1, g, dist, darg, p,
                                               MPI_ORDER_C, MPI_INT, &t),
                        MPI_ERR_ARG);
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_ARE_FATAL));
        (void)ignored;
    }
#endif
    return zr_finish();
}
