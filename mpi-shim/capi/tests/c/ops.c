/* ops.c - every predefined reduction operation on every C integer-like
 * datatype MPI-3.1 (5.9.2) allows it for, through MPI_Allreduce, against
 * exact expected values:
 *   MPI_SUM, MPI_PROD, MPI_MIN, MPI_MAX, MPI_BAND, MPI_BOR, MPI_BXOR and
 *   MPI_LAND, MPI_LOR, MPI_LXOR on the C integer types (short .. unsigned
 *   long long, signed / unsigned char, int8_t .. uint64_t);
 *   MIN / MAX / SUM / PROD / BAND / BOR / BXOR on MPI_AINT, MPI_OFFSET,
 *   MPI_COUNT ("multi-language types");
 *   LAND / LOR / LXOR on MPI_C_BOOL; BAND / BOR / BXOR on MPI_BYTE.
 * Inputs are chosen so that nothing overflows and floating results are
 * exact; element patterns exercise the type's extremes (catching signed /
 * unsigned confusion and truncation to a narrower width) and logical values
 * other than 1 (including only the top bit set, or only a high byte set).
 * Floating and complex types: ops_float.c; MINLOC / MAXLOC: ops_loc.c;
 * user-defined ops: ops_user.c. */
#define TEST_NAME "ops"
#include "check.h"
#include <stdint.h>

#define L 8 /* elements per reduction */

static int rank, size;

enum { SUM, PROD, MIN, MAX, BAND, BOR, BXOR, LAND, LOR, LXOR, NOPS };
static const char *opname[NOPS] = {"MPI_SUM",  "MPI_PROD", "MPI_MIN",
                                   "MPI_MAX",  "MPI_BAND", "MPI_BOR",
                                   "MPI_BXOR", "MPI_LAND", "MPI_LOR",
                                   "MPI_LXOR"};
static MPI_Op ophandle(int o)
{
    switch (o) {
    case SUM: return MPI_SUM;
    case PROD: return MPI_PROD;
    case MIN: return MPI_MIN;
    case MAX: return MPI_MAX;
    case BAND: return MPI_BAND;
    case BOR: return MPI_BOR;
    case BXOR: return MPI_BXOR;
    case LAND: return MPI_LAND;
    case LOR: return MPI_LOR;
    default: return MPI_LXOR;
    }
}

static unsigned long long mix(unsigned long long x) /* splitmix64 */
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* ------------------------------------------------------------------ */
/* integers: values are handled as 64-bit patterns truncated to the type's
 * width; storage goes through the fixed-width type of the same size and
 * signedness (two's complement everywhere MPI runs). */
typedef struct {
    const char *name;
    MPI_Datatype dt;
    int size; /* bytes */
    int sgn;
    int logical; /* LAND/LOR/LXOR allowed */
} itype;

static unsigned long long imask(const itype *t)
{
    return t->size == 8 ? ~0ULL : (1ULL << (8 * t->size)) - 1;
}
static long long isext(const itype *t, unsigned long long u) /* as signed */
{
    unsigned long long sb = 1ULL << (8 * t->size - 1);
    u &= imask(t);
    if (t->sgn && (u & sb))
        return -(long long)((~u & imask(t)) + 1);
    return (long long)u;
}
static int ilt(const itype *t, unsigned long long a, unsigned long long b)
{
    if (t->sgn)
        return isext(t, a) < isext(t, b);
    return (a & imask(t)) < (b & imask(t));
}
static void iput(const itype *t, void *buf, int i, unsigned long long v)
{
    switch (t->size * 2 + !t->sgn) {
    case 2: ((int8_t *)buf)[i] = (int8_t)isext(t, v); break;
    case 3: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case 4: ((int16_t *)buf)[i] = (int16_t)isext(t, v); break;
    case 5: ((uint16_t *)buf)[i] = (uint16_t)v; break;
    case 8: ((int32_t *)buf)[i] = (int32_t)isext(t, v); break;
    case 9: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case 16: ((int64_t *)buf)[i] = (int64_t)isext(t, v); break;
    default: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    }
}
static unsigned long long iget(const itype *t, const void *buf, int i)
{
    long long s;
    switch (t->size * 2 + !t->sgn) {
    case 2: s = ((const int8_t *)buf)[i]; break;
    case 3: return ((const uint8_t *)buf)[i];
    case 4: s = ((const int16_t *)buf)[i]; break;
    case 5: return ((const uint16_t *)buf)[i];
    case 8: s = ((const int32_t *)buf)[i]; break;
    case 9: return ((const uint32_t *)buf)[i];
    case 16: s = ((const int64_t *)buf)[i]; break;
    default: return ((const uint64_t *)buf)[i];
    }
    return (unsigned long long)s & imask(t);
}

/* input of rank q, element i, for op o */
static unsigned long long igen(const itype *t, int o, int q, int i)
{
    int n = size, bits = 8 * t->size;
    unsigned long long tmax = t->sgn ? imask(t) >> 1 : imask(t);
    unsigned long long tmin = t->sgn ? tmax + 1 : 0; /* bit pattern */
    unsigned long long top = 1ULL << (bits - 1);
    switch (o) {
    case SUM:
        if (i == L - 1) /* needs the full width */
            return q == 0 ? tmax / 4 : 1;
        return (unsigned long long)((q * 3 + i) % 7 - (t->sgn ? 3 : 0));
    case PROD:
        if (i == L - 1)
            return q == 0 ? tmax / 8 : (q == 1 ? 2 : 1);
        if (q == i % n)
            return 2;
        if (n > 1 && q == (i + 1) % n)
            return t->sgn ? (unsigned long long)-1LL : 3;
        if (n > 2 && q == (i + 2) % n)
            return 5;
        return 1;
    case MIN:
    case MAX:
        if (i == L - 2)
            return q % 3 == 0 ? tmax : (q % 3 == 1 ? tmin : 0);
        if (i == L - 1)
            return q == n - 1 ? tmin + 1 : tmax - 1;
        if (i == L - 3) /* top bit set: huge if unsigned, negative if not */
            return q % 2 ? top : 1;
        return (unsigned long long)((q * 5 + i * 3) % 11 - (t->sgn ? 5 : 0));
    case BAND:
        if (i == 0)
            return ~(1ULL << (q % bits));
        return mix((unsigned long long)q * 1000 + i) | mix(i + 77u);
    case BOR:
        if (i == 0)
            return 1ULL << (q % bits);
        return mix((unsigned long long)q * 1000 + i) & mix(i + 99u);
    case BXOR:
        return mix((unsigned long long)q * 1000 + i + 500);
    default: /* logical */
        switch (i) {
        case 0: return 1;
        case 1: return 0;
        case 2: return q == 0 ? 0 : 2;
        case 3: return q % 2 ? top : 0;
        case 4: return q == n - 1 ? 1 : 0;
        case 5: return q % 3 == 0 ? ~0ULL : 4;
        case 6: return q % 2 == 0 ? (bits > 8 ? 0x100ULL : 0x10ULL) : 0;
        default: return q == 0 ? 1 : 0;
        }
    }
}

static unsigned long long iapply(const itype *t, int o, unsigned long long a,
                                 unsigned long long b)
{
    unsigned long long m = imask(t);
    a &= m;
    b &= m;
    switch (o) {
    case SUM: return (a + b) & m;
    case PROD: return (a * b) & m;
    case MIN: return ilt(t, b, a) ? b : a;
    case MAX: return ilt(t, a, b) ? b : a;
    case BAND: return a & b;
    case BOR: return a | b;
    case BXOR: return a ^ b;
    case LAND: return a && b;
    case LOR: return a || b;
    default: return (a != 0) != (b != 0);
    }
}

static void check_int_type(const itype *t, const int *ops, int nops)
{
    unsigned char in[L * 8], out[L * 8];
    int k, o, i, q;
    for (k = 0; k < nops; k++) {
        o = ops[k];
        for (i = 0; i < L; i++)
            iput(t, in, i, igen(t, o, rank, i));
        memset(out, 0xA5, sizeof out);
        CHECK_MPI(MPI_Allreduce(in, out, L, t->dt, ophandle(o),
                                MPI_COMM_WORLD));
        for (i = 0; i < L; i++) {
            /* (with one process the input comes back unchanged, even for
             * the logical ops) */
            unsigned long long e = igen(t, o, 0, i) & imask(t);
            for (q = 1; q < size; q++)
                e = iapply(t, o, e, igen(t, o, q, i));
            if (t->sgn && t->dt == MPI_OFFSET && (o == MIN || o == MAX)) {
                /* Open MPI 4.1.4 compares MPI_OFFSET as unsigned */
                DEVIATION("ompi-offset-minmax")
                    CHECK_EQ_INT(isext(t, iget(t, out, i)), isext(t, e),
                                 "%s on %s, element %d", opname[o], t->name,
                                 i);
            } else if (t->sgn) {
                CHECK_EQ_INT(isext(t, iget(t, out, i)), isext(t, e),
                             "%s on %s, element %d", opname[o], t->name, i);
            } else if (o == MIN || o == MAX) {
                /* MPICH 4.0.2 compares every unsigned type as signed
                 * (pmodels/mpich#6083); Open MPI 4.1.2-4.1.4 does so for
                 * MPI_UNSIGNED_LONG (open-mpi/ompi#10525) */
                DEVIATION(t->dt == MPI_UNSIGNED_LONG
                              ? "mpich-unsigned-minmax ompi-ulong-minmax"
                              : "mpich-unsigned-minmax")
                    CHECK_EQ_UINT(iget(t, out, i), e, "%s on %s, element %d",
                                  opname[o], t->name, i);
            } else {
                CHECK_EQ_UINT(iget(t, out, i), e, "%s on %s, element %d",
                              opname[o], t->name, i);
            }
        }
        for (i = L * t->size; i < (int)sizeof out; i++)
            CHECK_EQ_INT(out[i], 0xA5, "%s on %s wrote past %d elements",
                         opname[o], t->name, L);
    }
}

static void check_integers(void)
{
#define S(T) ((int)sizeof(T))
    const itype types[] = {
        {"MPI_SIGNED_CHAR", MPI_SIGNED_CHAR, 1, 1, 1},
        {"MPI_UNSIGNED_CHAR", MPI_UNSIGNED_CHAR, 1, 0, 1},
        {"MPI_SHORT", MPI_SHORT, S(short), 1, 1},
        {"MPI_UNSIGNED_SHORT", MPI_UNSIGNED_SHORT, S(short), 0, 1},
        {"MPI_INT", MPI_INT, S(int), 1, 1},
        {"MPI_UNSIGNED", MPI_UNSIGNED, S(int), 0, 1},
        {"MPI_LONG", MPI_LONG, S(long), 1, 1},
        {"MPI_UNSIGNED_LONG", MPI_UNSIGNED_LONG, S(long), 0, 1},
        {"MPI_LONG_LONG_INT", MPI_LONG_LONG_INT, S(long long), 1, 1},
        {"MPI_LONG_LONG", MPI_LONG_LONG, S(long long), 1, 1},
        {"MPI_UNSIGNED_LONG_LONG", MPI_UNSIGNED_LONG_LONG, S(long long), 0,
         1},
        {"MPI_INT8_T", MPI_INT8_T, 1, 1, 1},
        {"MPI_INT16_T", MPI_INT16_T, 2, 1, 1},
        {"MPI_INT32_T", MPI_INT32_T, 4, 1, 1},
        {"MPI_INT64_T", MPI_INT64_T, 8, 1, 1},
        {"MPI_UINT8_T", MPI_UINT8_T, 1, 0, 1},
        {"MPI_UINT16_T", MPI_UINT16_T, 2, 0, 1},
        {"MPI_UINT32_T", MPI_UINT32_T, 4, 0, 1},
        {"MPI_UINT64_T", MPI_UINT64_T, 8, 0, 1},
        /* multi-language types: no logical ops */
        {"MPI_AINT", MPI_AINT, S(MPI_Aint), 1, 0},
        {"MPI_OFFSET", MPI_OFFSET, S(MPI_Offset), 1, 0},
        {"MPI_COUNT", MPI_COUNT, S(MPI_Count), 1, 0},
    };
#undef S
    static const int all[] = {SUM, PROD, MIN,  MAX, BAND,
                              BOR, BXOR, LAND, LOR, LXOR};
    static const int bitwise[] = {BAND, BOR, BXOR};
    static const int logical[] = {LAND, LOR, LXOR};
    const itype byte = {"MPI_BYTE", MPI_BYTE, 1, 0, 0};
    const itype cbool = {"MPI_C_BOOL", MPI_C_BOOL, 1, 0, 1};
    size_t k;

    for (k = 0; k < sizeof types / sizeof types[0]; k++)
        check_int_type(&types[k], all, types[k].logical ? 10 : 7);
    check_int_type(&byte, bitwise, 3);

    /* MPI_C_BOOL: values are 0/1 only */
    {
        _Bool in[L], out[L];
        int o, i, q, e;
        CHECK_EQ_INT(sizeof(_Bool), 1, "sizeof(_Bool) (test assumption)");
        for (k = 0; k < 3; k++) {
            o = logical[k];
            for (i = 0; i < L; i++)
                in[i] = igen(&cbool, o, rank, i) != 0;
            CHECK_MPI(MPI_Allreduce(in, out, L, MPI_C_BOOL, ophandle(o),
                                    MPI_COMM_WORLD));
            for (i = 0; i < L; i++) {
                e = igen(&cbool, o, 0, i) != 0;
                for (q = 1; q < size; q++)
                    e = (int)iapply(&cbool, o, (unsigned long long)e,
                                    igen(&cbool, o, q, i) != 0);
                CHECK_EQ_INT(out[i], e, "%s on MPI_C_BOOL, element %d",
                             opname[o], i);
            }
        }
    }
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);

    check_integers();
    return zr_finish();
}
