/*
 * zerorank: the `long double` reduction kernels (MPI_LONG_DOUBLE,
 * MPI_C_LONG_DOUBLE_COMPLEX, MPI_LONG_DOUBLE_INT), called from src/op.rs.
 *
 * Rust has no `long double`, so these few loops are C, compiled by build.rs with the
 * system C compiler: the arithmetic is exactly gcc's (on x86_64 Linux: the 80-bit x87
 * extended type, stored in 16 bytes, round to nearest even, full 64-bit precision).
 *
 * Conventions shared with op.rs:
 * - `in` and `inout` each hold `n` whole elements, with no alignment guarantee: every
 *   access goes through memcpy.
 * - inout[i] = in[i] (op) inout[i], strictly element-wise (no reassociation).
 * - Only the value bytes of each element are written: the 6 unused bytes of an 80-bit
 *   long double and the padding of struct { long double, int } keep what inout held, like
 *   the 10-byte `fstpt` store gcc emits for `a[i] = a[i] + b[i]`.
 * - MAX/MIN/MINLOC/MAXLOC copy the chosen operand's bytes, so they are bit-exact even for
 *   NaNs and non-canonical encodings.
 * - The complex product is the textbook formula (as MPICH's MPI_PROD): re = ar*br - ai*bi,
 *   im = ar*bi + ai*br, each product rounded to long double; no C99 Annex G inf/NaN
 *   recovery (that is what op.rs does for float and double complex too).
 * - The op is chosen once per call, outside the loops.
 */
#include <float.h>
#include <stddef.h>
#include <string.h>

#if LDBL_MANT_DIG == 64
/* x87 extended: sign+exponent (2 bytes) and 64-bit significand; the rest is padding. */
#define ZR_LD_VALUE_BYTES 10
#else
#define ZR_LD_VALUE_BYTES sizeof(long double)
#endif

/* Op codes; keep in sync with `LdOp` in op.rs. */
enum { ZR_LD_MAX = 0, ZR_LD_MIN = 1, ZR_LD_SUM = 2, ZR_LD_PROD = 3, ZR_LD_MINLOC = 4, ZR_LD_MAXLOC = 5 };

typedef struct {
    long double re, im;
} zr_cld;

typedef struct {
    long double value;
    int index;
} zr_ldi;

static inline long double ld_load(const unsigned char *p)
{
    long double v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ld_store(unsigned char *p, long double v)
{
    memcpy(p, &v, ZR_LD_VALUE_BYTES);
}

/* Layout of the C types, for op.rs to check against its Elem::size/align. */
void zr_long_double_layout(size_t *ld_size, size_t *ld_align, size_t *ldi_size,
                           size_t *ldi_index_offset, int *mant_dig)
{
    *ld_size = sizeof(long double);
    *ld_align = _Alignof(long double);
    *ldi_size = sizeof(zr_ldi);
    *ldi_index_offset = offsetof(zr_ldi, index);
    *mant_dig = LDBL_MANT_DIG;
}

/* MPI_LONG_DOUBLE: MAX, MIN, SUM, PROD. Returns 0, or -1 for an op it does not do. */
int zr_long_double_reduce(int op, const unsigned char *in, unsigned char *inout, size_t n)
{
    const size_t s = sizeof(long double);
    size_t i;
    switch (op) {
    case ZR_LD_MAX:
        for (i = 0; i < n; i++) {
            /* inout = inout > in ? inout : in (false on NaN: take in) */
            if (!(ld_load(inout + i * s) > ld_load(in + i * s)))
                memcpy(inout + i * s, in + i * s, ZR_LD_VALUE_BYTES);
        }
        return 0;
    case ZR_LD_MIN:
        for (i = 0; i < n; i++) {
            if (!(ld_load(inout + i * s) < ld_load(in + i * s)))
                memcpy(inout + i * s, in + i * s, ZR_LD_VALUE_BYTES);
        }
        return 0;
    case ZR_LD_SUM:
        for (i = 0; i < n; i++)
            ld_store(inout + i * s, ld_load(in + i * s) + ld_load(inout + i * s));
        return 0;
    case ZR_LD_PROD:
        for (i = 0; i < n; i++)
            ld_store(inout + i * s, ld_load(in + i * s) * ld_load(inout + i * s));
        return 0;
    default:
        return -1;
    }
}

/* MPI_C_LONG_DOUBLE_COMPLEX: SUM, PROD. Returns 0, or -1 for an op it does not do. */
int zr_complex_long_double_reduce(int op, const unsigned char *in, unsigned char *inout, size_t n)
{
    const size_t s = sizeof(zr_cld);
    const size_t im = offsetof(zr_cld, im);
    size_t i;
    switch (op) {
    case ZR_LD_SUM:
        for (i = 0; i < n; i++) {
            unsigned char *o = inout + i * s;
            const unsigned char *a = in + i * s;
            ld_store(o, ld_load(a) + ld_load(o));
            ld_store(o + im, ld_load(a + im) + ld_load(o + im));
        }
        return 0;
    case ZR_LD_PROD:
        for (i = 0; i < n; i++) {
            unsigned char *o = inout + i * s;
            const unsigned char *a = in + i * s;
            long double ar = ld_load(a), ai = ld_load(a + im);
            long double br = ld_load(o), bi = ld_load(o + im);
            long double rr = ar * br;
            long double ii = ai * bi;
            long double ri = ar * bi;
            long double ir = ai * br;
            ld_store(o, rr - ii);
            ld_store(o + im, ri + ir);
        }
        return 0;
    default:
        return -1;
    }
}

/* MPI_LONG_DOUBLE_INT: MINLOC, MAXLOC (on equal values the smaller index; NaN values
 * compare neither less, greater nor equal, so inout is kept). Returns 0, or -1. */
int zr_long_double_int_reduce(int op, const unsigned char *in, unsigned char *inout, size_t n)
{
    const size_t s = sizeof(zr_ldi);
    const size_t ix = offsetof(zr_ldi, index);
    size_t i;
    if (op != ZR_LD_MINLOC && op != ZR_LD_MAXLOC)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char *o = inout + i * s;
        const unsigned char *a = in + i * s;
        long double av = ld_load(a), ov = ld_load(o);
        int take = op == ZR_LD_MINLOC ? av < ov : av > ov;
        if (take) {
            memcpy(o, a, ZR_LD_VALUE_BYTES);
            memcpy(o + ix, a + ix, sizeof(int));
        } else if (av == ov) {
            int ai, oi;
            memcpy(&ai, a + ix, sizeof ai);
            memcpy(&oi, o + ix, sizeof oi);
            if (ai < oi)
                memcpy(o + ix, &ai, sizeof ai);
        }
    }
    return 0;
}
