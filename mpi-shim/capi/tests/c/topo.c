/* topo.c - process topologies: Dims_create (known answers, fixed entries,
 * MPI_ERR_DIMS when impossible), Cart_create (periodic / non-periodic,
 * reorder, fewer processes than the communicator -> MPI_COMM_NULL),
 * Topo_test, Cartdim_get, Cart_get, Cart_coords, Cart_rank (incl. wrap-around
 * in periodic dimensions), Cart_shift (incl. MPI_PROC_NULL at non-periodic
 * edges) with a halo exchange, Cart_sub.  (Cart_map, distributed graphs and
 * neighbourhood collectives are outside zerorank's scope.) */
#define TEST_NAME "topo"
#include "check.h"

static int rank, size;

static void dims(int n, int nd, const int *in, const int *exp)
{
    int d[4], i;
    for (i = 0; i < nd; i++)
        d[i] = in ? in[i] : 0;
    CHECK_MPI(MPI_Dims_create(n, nd, d));
    for (i = 0; i < nd; i++)
        CHECK_EQ_INT(d[i], exp[i], "Dims_create(%d, %d) dims[%d]", n, nd, i);
}

/* most balanced 2-D factorisation: d1 = largest divisor <= sqrt(n) */
static void balanced2(int n, int *d0, int *d1)
{
    int k;
    for (k = 1; k * k <= n; k++)
        if (n % k == 0)
            *d1 = k;
    *d0 = n / *d1;
}

static void check_dims_create(void)
{
    int d[2] = {2, 0}, e[2];
    dims(6, 2, NULL, (int[]){3, 2});
    dims(7, 2, NULL, (int[]){7, 1});
    dims(12, 3, NULL, (int[]){3, 2, 2});
    dims(16, 2, NULL, (int[]){4, 4});
    dims(1, 3, NULL, (int[]){1, 1, 1});
    dims(8, 3, (int[]){2, 0, 0}, (int[]){2, 2, 2});
    dims(24, 3, (int[]){0, 3, 0}, (int[]){4, 3, 2});
    dims(30, 3, NULL, (int[]){5, 3, 2});
    dims(60, 3, NULL, (int[]){5, 4, 3});
    dims(64, 3, NULL, (int[]){4, 4, 4});
    dims(2, 1, NULL, (int[]){2});
    dims(9, 2, (int[]){3, 0}, (int[]){3, 3});
    dims(16, 4, NULL, (int[]){2, 2, 2, 2});
    dims(27, 2, NULL, (int[]){9, 3});
    dims(120, 4, NULL, (int[]){5, 4, 3, 2});
    dims(6, 3, (int[]){0, 1, 0}, (int[]){3, 1, 2});
    dims(1000, 3, NULL, (int[]){10, 10, 10});
    balanced2(size, &e[0], &e[1]);
    dims(size, 2, NULL, e);
    /* 7 processes cannot have a dimension of 2 */
    CHECK_ERR_CLASS(MPI_Dims_create(7, 2, d), MPI_ERR_DIMS);
}

/* row-major cartesian layout */
static void coords_of(int r, const int *d, int nd, int *c)
{
    int k;
    for (k = nd - 1; k >= 0; k--) {
        c[k] = r % d[k];
        r /= d[k];
    }
}

static void check_cart2d(void)
{
    MPI_Comm cart, row;
    int d[2] = {0, 0}, per[2] = {1, 0}, c[2], c2[2], gd[2], gp[2], gc[2];
    int r, s, t = -1, nd = -1, src, dst, i;
    double halo[2], mine;

    CHECK_MPI(MPI_Dims_create(size, 2, d));
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 2, d, per, 0, &cart));
    CHECK(cart != MPI_COMM_NULL, "Cart_create gave MPI_COMM_NULL");
    CHECK_EQ_INT(zr_rank(cart), rank, "cart rank with reorder=0");
    CHECK_MPI(MPI_Topo_test(cart, &t));
    CHECK_EQ_INT(t, MPI_CART, "Topo_test(cart)");
    CHECK_MPI(MPI_Topo_test(MPI_COMM_WORLD, &t));
    CHECK_EQ_INT(t, MPI_UNDEFINED, "Topo_test(MPI_COMM_WORLD)");
    CHECK_MPI(MPI_Cartdim_get(cart, &nd));
    CHECK_EQ_INT(nd, 2, "Cartdim_get");
    CHECK_MPI(MPI_Cart_get(cart, 2, gd, gp, gc));
    coords_of(rank, d, 2, c);
    for (i = 0; i < 2; i++) {
        CHECK_EQ_INT(gd[i], d[i], "Cart_get dims[%d]", i);
        CHECK_EQ_INT(gp[i] != 0, per[i], "Cart_get periods[%d]", i);
        CHECK_EQ_INT(gc[i], c[i], "Cart_get coords[%d]", i);
    }
    for (r = 0; r < size; r++) {
        coords_of(r, d, 2, c);
        CHECK_MPI(MPI_Cart_coords(cart, r, 2, c2));
        CHECK_EQ_INT(c2[0], c[0], "Cart_coords(%d)[0]", r);
        CHECK_EQ_INT(c2[1], c[1], "Cart_coords(%d)[1]", r);
        CHECK_MPI(MPI_Cart_rank(cart, c, &s));
        CHECK_EQ_INT(s, r, "Cart_rank(coords of %d)", r);
        /* dimension 0 is periodic: out-of-range coordinates wrap */
        c2[0] = c[0] + d[0];
        c2[1] = c[1];
        CHECK_MPI(MPI_Cart_rank(cart, c2, &s));
        CHECK_EQ_INT(s, r, "Cart_rank(coords of %d, +dims[0])", r);
        c2[0] = c[0] - 2 * d[0];
        CHECK_MPI(MPI_Cart_rank(cart, c2, &s));
        CHECK_EQ_INT(s, r, "Cart_rank(coords of %d, -2*dims[0])", r);
    }

    coords_of(rank, d, 2, c);
    /* periodic dimension */
    for (i = -2; i <= 2; i++) {
        CHECK_MPI(MPI_Cart_shift(cart, 0, i, &src, &dst));
        CHECK_EQ_INT(src, ((c[0] - i) % d[0] + d[0]) % d[0] * d[1] + c[1],
                     "Cart_shift(dim 0, disp %d): source", i);
        CHECK_EQ_INT(dst, ((c[0] + i) % d[0] + d[0]) % d[0] * d[1] + c[1],
                     "Cart_shift(dim 0, disp %d): dest", i);
    }
    /* non-periodic dimension */
    for (i = -2; i <= 2; i++) {
        CHECK_MPI(MPI_Cart_shift(cart, 1, i, &src, &dst));
        CHECK_EQ_INT(src,
                     c[1] - i >= 0 && c[1] - i < d[1] ? rank - i
                                                      : MPI_PROC_NULL,
                     "Cart_shift(dim 1, disp %d): source", i);
        CHECK_EQ_INT(dst,
                     c[1] + i >= 0 && c[1] + i < d[1] ? rank + i
                                                      : MPI_PROC_NULL,
                     "Cart_shift(dim 1, disp %d): dest", i);
    }
    /* halo exchange along the non-periodic dimension: edges keep -1 */
    mine = rank + 0.5;
    halo[0] = halo[1] = -1;
    CHECK_MPI(MPI_Cart_shift(cart, 1, 1, &src, &dst));
    CHECK_MPI(MPI_Sendrecv(&mine, 1, MPI_DOUBLE, dst, 1, &halo[0], 1,
                           MPI_DOUBLE, src, 1, cart, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_Sendrecv(&mine, 1, MPI_DOUBLE, src, 2, &halo[1], 1,
                           MPI_DOUBLE, dst, 2, cart, MPI_STATUS_IGNORE));
    CHECK_EQ_DBL(halo[0], c[1] > 0 ? rank - 1 + 0.5 : -1, "halo from left");
    CHECK_EQ_DBL(halo[1], c[1] < d[1] - 1 ? rank + 1 + 0.5 : -1,
                 "halo from right");

    /* Cart_sub: keep dimension 1 -> the row of my c[0] */
    {
        int keep[2] = {0, 1}, sum = -1, exp = 0;
        CHECK_MPI(MPI_Cart_sub(cart, keep, &row));
        CHECK_EQ_INT(zr_size(row), d[1], "Cart_sub(keep dim 1): size");
        CHECK_EQ_INT(zr_rank(row), c[1], "Cart_sub(keep dim 1): rank");
        CHECK_MPI(MPI_Topo_test(row, &t));
        CHECK_EQ_INT(t, MPI_CART, "Topo_test(Cart_sub)");
        CHECK_MPI(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, row));
        for (i = 0; i < d[1]; i++)
            exp += c[0] * d[1] + i;
        CHECK_EQ_INT(sum, exp, "Allreduce over a Cart_sub row");
        CHECK_MPI(MPI_Comm_free(&row));
        keep[0] = 1;
        keep[1] = 0;
        CHECK_MPI(MPI_Cart_sub(cart, keep, &row));
        CHECK_EQ_INT(zr_size(row), d[0], "Cart_sub(keep dim 0): size");
        CHECK_EQ_INT(zr_rank(row), c[0], "Cart_sub(keep dim 0): rank");
        CHECK_MPI(MPI_Comm_free(&row));
    }
    CHECK_MPI(MPI_Comm_free(&cart));
}

static void check_cart_more(void)
{
    MPI_Comm cart;
    int d3[3] = {0, 0, 0}, p3[3] = {0, 1, 0}, c[3], r, n1;

    /* 3-D with reorder: coordinates and ranks stay consistent */
    CHECK_MPI(MPI_Dims_create(size, 3, d3));
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 3, d3, p3, 1, &cart));
    CHECK_EQ_INT(zr_size(cart), size, "3-D cart size");
    CHECK_MPI(MPI_Cart_coords(cart, zr_rank(cart), 3, c));
    CHECK_MPI(MPI_Cart_rank(cart, c, &r));
    CHECK_EQ_INT(r, zr_rank(cart), "3-D cart: rank(coords(me))");
    CHECK_EQ_INT((c[0] * d3[1] + c[1]) * d3[2] + c[2], r,
                 "3-D cart: row-major rank");
    CHECK_MPI(MPI_Comm_free(&cart));

    /* fewer processes than the communicator: the rest get COMM_NULL */
    n1 = size > 1 ? size - 1 : 1;
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 1, &n1, p3, 0, &cart));
    if (rank >= n1) {
        CHECK(cart == MPI_COMM_NULL, "rank %d outside a %d-process cart "
                                     "got a communicator",
              rank, n1);
    } else {
        CHECK(cart != MPI_COMM_NULL, "rank %d inside cart got NULL", rank);
        CHECK_EQ_INT(zr_size(cart), n1, "1-D cart of %d: size", n1);
        CHECK_MPI(MPI_Comm_free(&cart));
    }
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    /* Dims_create is not tied to a communicator: errors go to the
     * MPI_COMM_WORLD handler */
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));

    check_dims_create();
    check_cart2d();
    check_cart_more();
    return zr_finish();
}
