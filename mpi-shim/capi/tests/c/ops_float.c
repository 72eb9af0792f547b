/* ops_float.c - MPI_SUM, MPI_PROD, MPI_MIN and MPI_MAX on MPI_FLOAT,
 * MPI_DOUBLE and MPI_LONG_DOUBLE, and MPI_SUM / MPI_PROD on MPI_C_COMPLEX,
 * MPI_C_FLOAT_COMPLEX, MPI_C_DOUBLE_COMPLEX and MPI_C_LONG_DOUBLE_COMPLEX,
 * through MPI_Allreduce.  Inputs are small multiples of powers of two (and
 * small Gaussian integers) so every partial result is exact; MIN / MAX also
 * see +-FLT_MAX / DBL_MAX / LDBL_MAX and -infinity. */
#define TEST_NAME "ops_float"
#include "check.h"
#include <complex.h>
#include <float.h>
#include <math.h>

#define L 8 /* elements per reduction */

static int rank, size;

enum { SUM, PROD, MIN, MAX };
static const char *opname[4] = {"MPI_SUM", "MPI_PROD", "MPI_MIN", "MPI_MAX"};
static MPI_Op ophandle(int o)
{
    return o == SUM ? MPI_SUM : o == PROD ? MPI_PROD : o == MIN ? MPI_MIN
                                                                : MPI_MAX;
}

/* floating point: long double is the common domain (exact for our inputs) */
enum { FLT, DBL, LDBL };
static long double fmaxof(int k)
{
    return k == FLT ? FLT_MAX : k == DBL ? DBL_MAX : LDBL_MAX;
}
static long double fgen(int k, int o, int q, int i)
{
    int n = size;
    switch (o) {
    case SUM:
        if (i == L - 1)
            return (q + 1) * 1099511627776.0L; /* 2^40 */
        return ((q * 3 + i) % 7 - 3) + 0.5L * (q % 2) + 0.25L * (i % 2);
    case PROD:
        if (q == i % n)
            return 2.0L;
        if (n > 1 && q == (i + 1) % n)
            return -0.5L;
        if (n > 2 && q == (i + 2) % n)
            return i % 2 ? 0.25L : 4.0L;
        return 1.0L;
    default: /* MIN, MAX */
        if (i == L - 2)
            return q % 3 == 0 ? fmaxof(k) : (q % 3 == 1 ? -fmaxof(k) : 0.0L);
        if (i == L - 1)
            return q == n - 1 ? -INFINITY : (long double)q;
        return ((q * 5 + i * 3) % 11 - 5) * 0.75L;
    }
}
static void fput(int k, void *b, int i, long double v)
{
    if (k == FLT)
        ((float *)b)[i] = (float)v;
    else if (k == DBL)
        ((double *)b)[i] = (double)v;
    else
        ((long double *)b)[i] = v;
}
static long double fget(int k, const void *b, int i)
{
    return k == FLT ? ((const float *)b)[i]
                    : k == DBL ? ((const double *)b)[i]
                               : ((const long double *)b)[i];
}

static void check_floats(void)
{
    static const char *names[3] = {"MPI_FLOAT", "MPI_DOUBLE",
                                   "MPI_LONG_DOUBLE"};
    MPI_Datatype dts[3];
    static const int ops[4] = {SUM, PROD, MIN, MAX};
    long double in[L], out[L], e, x; /* large enough for every kind */
    int k, j, o, i, q;

    dts[0] = MPI_FLOAT;
    dts[1] = MPI_DOUBLE;
    dts[2] = MPI_LONG_DOUBLE;
    for (k = 0; k < 3; k++)
        for (j = 0; j < 4; j++) {
            o = ops[j];
            for (i = 0; i < L; i++)
                fput(k, in, i, fgen(k, o, rank, i));
            CHECK_MPI(MPI_Allreduce(in, out, L, dts[k], ophandle(o),
                                    MPI_COMM_WORLD));
            for (i = 0; i < L; i++) {
                e = fgen(k, o, 0, i);
                for (q = 1; q < size; q++) {
                    x = fgen(k, o, q, i);
                    e = o == SUM ? e + x
                                 : o == PROD ? e * x
                                             : o == MIN ? (x < e ? x : e)
                                                        : (x > e ? x : e);
                }
                CHECK_EQ_DBL(fget(k, out, i), e, "%s on %s, element %d",
                             opname[o], names[k], i);
            }
        }
}

static long double complex cgen(int o, int q, int i)
{
    int n = size;
    if (o == SUM)
        return (q - i * 0.5L) + (q * 0.25L + i) * I;
    if (q == i % n)
        return 1.0L + 1.0L * I;
    if (n > 1 && q == (i + 1) % n)
        return 1.0L * I;
    if (n > 2 && q == (i + 2) % n)
        return 2.0L - 1.0L * I;
    return 1.0L;
}

static void check_complex(void)
{
    static const char *names[4] = {"MPI_C_COMPLEX", "MPI_C_FLOAT_COMPLEX",
                                   "MPI_C_DOUBLE_COMPLEX",
                                   "MPI_C_LONG_DOUBLE_COMPLEX"};
    MPI_Datatype dts[4];
    long double complex lin[L], lout[L], e, x, g;
    float complex *fin = (float complex *)lin, *fout = (float complex *)lout;
    double complex *din = (double complex *)lin, *dout = (double complex *)lout;
    int k, o, i, q, kind;

    dts[0] = MPI_C_COMPLEX;
    dts[1] = MPI_C_FLOAT_COMPLEX;
    dts[2] = MPI_C_DOUBLE_COMPLEX;
    dts[3] = MPI_C_LONG_DOUBLE_COMPLEX;
    for (k = 0; k < 4; k++)
        for (o = SUM; o <= PROD; o++) {
            kind = k < 2 ? FLT : k == 2 ? DBL : LDBL;
            for (i = 0; i < L; i++) {
                x = cgen(o, rank, i);
                if (kind == FLT)
                    fin[i] = (float complex)x;
                else if (kind == DBL)
                    din[i] = (double complex)x;
                else
                    lin[i] = x;
            }
            CHECK_MPI(MPI_Allreduce(lin, lout, L, dts[k], ophandle(o),
                                    MPI_COMM_WORLD));
            for (i = 0; i < L; i++) {
                e = cgen(o, 0, i);
                for (q = 1; q < size; q++)
                    e = o == SUM ? e + cgen(o, q, i) : e * cgen(o, q, i);
                g = kind == FLT ? fout[i] : kind == DBL ? dout[i] : lout[i];
                CHECK_EQ_DBL(creall(g), creall(e), "%s on %s, element %d (re)",
                             opname[o], names[k], i);
                CHECK_EQ_DBL(cimagl(g), cimagl(e), "%s on %s, element %d (im)",
                             opname[o], names[k], i);
            }
        }
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);

    check_floats();
    check_complex();
    return zr_finish();
}
