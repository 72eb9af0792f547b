/* datatype.c - predefined datatypes and type introspection: Type_size,
 * Type_get_extent, Type_get_true_extent and Type_get_name (names exactly as
 * MPICH prints them) of every predefined C datatype and pair type;
 * Type_set_name / get_name on derived types; Type_dup; Get_address with MPI_Aint_add / MPI_Aint_diff;
 * size / extent / lb / true extent of contiguous, vector, hvector, indexed
 * (incl. a negative displacement), indexed_block, hindexed, struct and
 * resized types built here, against closed-form values; Type_commit /
 * Type_free (handles set to MPI_DATATYPE_NULL).  Communication with derived
 * types: datatype_comm.c. */
#define TEST_NAME "datatype"
#include "check.h"
#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

typedef struct {
    float v;
    int i;
} float_int;
typedef struct {
    double v;
    int i;
} double_int;
typedef struct {
    long v;
    int i;
} long_int;
typedef struct {
    short v;
    int i;
} short_int;
typedef struct {
    long double v;
    int i;
} long_double_int;

static void check_one(MPI_Datatype dt, const char *expname, int expsize,
                      MPI_Aint expext)
{
    char name[MPI_MAX_OBJECT_NAME];
    int len = -1, sz = -1;
    MPI_Aint lb = -1, ext = -1, tlb = -1, text = -1;

    memset(name, 0x5a, sizeof name);
    CHECK_MPI(MPI_Type_get_name(dt, name, &len));
    CHECK(memchr(name, '\0', sizeof name) != NULL,
          "Type_get_name(%s): not NUL-terminated", expname);
    CHECK_EQ_STR(name, expname, "MPI_Type_get_name");
    CHECK_EQ_INT(len, strlen(expname), "MPI_Type_get_name(%s) resultlen",
                 expname);
    CHECK_MPI(MPI_Type_size(dt, &sz));
    CHECK_EQ_INT(sz, expsize, "MPI_Type_size(%s)", expname);
    CHECK_MPI(MPI_Type_get_extent(dt, &lb, &ext));
    CHECK_EQ_INT(lb, 0, "lb of %s", expname);
    CHECK_EQ_INT(ext, expext, "extent of %s", expname);
    CHECK_MPI(MPI_Type_get_true_extent(dt, &tlb, &text));
    CHECK_EQ_INT(tlb, 0, "true lb of %s", expname);
    if (expsize == expext) /* no holes: true extent == extent */
        CHECK_EQ_INT(text, expext, "true extent of %s", expname);
}

static void check_predefined(void)
{
#define B(dt, T) check_one(dt, #dt, (int)sizeof(T), (MPI_Aint)sizeof(T))
#define P(dt, T, V)                                                           \
    check_one(dt, #dt, (int)(sizeof(V) + sizeof(int)), (MPI_Aint)sizeof(T))
    B(MPI_CHAR, char);
    B(MPI_SIGNED_CHAR, signed char);
    B(MPI_UNSIGNED_CHAR, unsigned char);
    B(MPI_BYTE, unsigned char);
    B(MPI_WCHAR, wchar_t);
    B(MPI_SHORT, short);
    B(MPI_UNSIGNED_SHORT, unsigned short);
    B(MPI_INT, int);
    B(MPI_UNSIGNED, unsigned);
    B(MPI_LONG, long);
    B(MPI_UNSIGNED_LONG, unsigned long);
    B(MPI_LONG_LONG_INT, long long);
    B(MPI_UNSIGNED_LONG_LONG, unsigned long long);
    B(MPI_FLOAT, float);
    B(MPI_DOUBLE, double);
    B(MPI_LONG_DOUBLE, long double);
    B(MPI_PACKED, unsigned char);
    B(MPI_INT8_T, int8_t);
    B(MPI_INT16_T, int16_t);
    B(MPI_INT32_T, int32_t);
    B(MPI_INT64_T, int64_t);
    B(MPI_UINT8_T, uint8_t);
    B(MPI_UINT16_T, uint16_t);
    B(MPI_UINT32_T, uint32_t);
    B(MPI_UINT64_T, uint64_t);
    B(MPI_C_BOOL, _Bool);
    B(MPI_C_COMPLEX, float _Complex);
    B(MPI_C_DOUBLE_COMPLEX, double _Complex);
    B(MPI_C_LONG_DOUBLE_COMPLEX, long double _Complex);
    B(MPI_AINT, MPI_Aint);
    B(MPI_OFFSET, MPI_Offset);
    B(MPI_COUNT, MPI_Count);
    P(MPI_FLOAT_INT, float_int, float);
    P(MPI_DOUBLE_INT, double_int, double);
    P(MPI_LONG_INT, long_int, long);
    P(MPI_2INT, int[2], int);
    P(MPI_SHORT_INT, short_int, short);
    P(MPI_LONG_DOUBLE_INT, long_double_int, long double);
#undef B
#undef P
    /* Synonyms: MPICH and Open MPI implement them as the same handle, which
     * then reports the first name; a separate handle reports its own. */
    check_one(MPI_LONG_LONG,
              MPI_LONG_LONG == MPI_LONG_LONG_INT ? "MPI_LONG_LONG_INT"
                                                 : "MPI_LONG_LONG",
              (int)sizeof(long long), (MPI_Aint)sizeof(long long));
    check_one(MPI_C_FLOAT_COMPLEX,
              MPI_C_FLOAT_COMPLEX == MPI_C_COMPLEX ? "MPI_C_COMPLEX"
                                                   : "MPI_C_FLOAT_COMPLEX",
              (int)sizeof(float _Complex), (MPI_Aint)sizeof(float _Complex));
    /* the holes in the pair types */
    {
        MPI_Aint tlb, text;
        CHECK_MPI(MPI_Type_get_true_extent(MPI_DOUBLE_INT, &tlb, &text));
        CHECK_EQ_INT(text, offsetof(double_int, i) + sizeof(int),
                     "true extent of MPI_DOUBLE_INT");
        CHECK_MPI(MPI_Type_get_true_extent(MPI_SHORT_INT, &tlb, &text));
        CHECK_EQ_INT(text, offsetof(short_int, i) + sizeof(int),
                     "true extent of MPI_SHORT_INT");
    }
}

static void check_type(MPI_Datatype t, const char *what, int size,
                       MPI_Aint lb, MPI_Aint ext, MPI_Aint tlb, MPI_Aint text)
{
    int s = -1;
    MPI_Aint l = -1, e = -1;
    CHECK_MPI(MPI_Type_size(t, &s));
    CHECK_EQ_INT(s, size, "%s: size", what);
    CHECK_MPI(MPI_Type_get_extent(t, &l, &e));
    CHECK_EQ_INT(l, lb, "%s: lb", what);
    CHECK_EQ_INT(e, ext, "%s: extent", what);
    CHECK_MPI(MPI_Type_get_true_extent(t, &l, &e));
    CHECK_EQ_INT(l, tlb, "%s: true lb", what);
    CHECK_EQ_INT(e, text, "%s: true extent", what);
}

static void check_derived_shapes(void)
{
    const MPI_Aint IS = sizeof(int), DS = sizeof(double);
    MPI_Datatype t, t2, t3;
    char name[MPI_MAX_OBJECT_NAME];
    int len = -1;

    /* contiguous(5, int) */
    CHECK_MPI(MPI_Type_contiguous(5, MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    check_type(t, "contiguous(5,INT)", 5 * (int)IS, 0, 5 * IS, 0, 5 * IS);
    CHECK_MPI(MPI_Type_get_name(t, name, &len));
    CHECK_EQ_STR(name, "", "name of an unnamed derived type");
    CHECK_EQ_INT(len, 0, "resultlen for an unnamed derived type");
    CHECK_MPI(MPI_Type_set_name(t, "zr five ints"));
    CHECK_MPI(MPI_Type_get_name(t, name, &len));
    CHECK_EQ_STR(name, "zr five ints", "Type_get_name after Type_set_name");
    CHECK_EQ_INT(len, 12, "Type_get_name after set: resultlen");
    CHECK_MPI(MPI_Type_dup(t, &t2));
    check_type(t2, "dup of contiguous", 5 * (int)IS, 0, 5 * IS, 0, 5 * IS);
    CHECK_MPI(MPI_Type_free(&t2));
    CHECK(t2 == MPI_DATATYPE_NULL, "Type_free did not set DATATYPE_NULL");

    /* vector(4, 2, 5, contiguous(5,int)) built on t, then t freed */
    CHECK_MPI(MPI_Type_vector(4, 2, 5, t, &t2));
    CHECK_MPI(MPI_Type_free(&t));
    CHECK_MPI(MPI_Type_commit(&t2));
    check_type(t2, "vector(4,2,5,contig5)", 4 * 2 * 5 * (int)IS, 0,
               (3 * 5 + 2) * 5 * IS, 0, (3 * 5 + 2) * 5 * IS);
    CHECK_MPI(MPI_Type_free(&t2));

    /* matrix column: vector(6, 1, 5, double); resized to one double */
    CHECK_MPI(MPI_Type_vector(6, 1, 5, MPI_DOUBLE, &t));
    check_type(t, "vector(6,1,5,DOUBLE)", 6 * (int)DS, 0, (5 * 5 + 1) * DS, 0,
               (5 * 5 + 1) * DS);
    CHECK_MPI(MPI_Type_create_resized(t, 0, DS, &t2));
    check_type(t2, "resized column", 6 * (int)DS, 0, DS, 0, (5 * 5 + 1) * DS);
    CHECK_MPI(MPI_Type_free(&t2));
    CHECK_MPI(MPI_Type_create_resized(t, -2 * DS, 10 * DS, &t2));
    check_type(t2, "resized(-2D, 10D)", 6 * (int)DS, -2 * DS, 10 * DS, 0,
               (5 * 5 + 1) * DS);
    CHECK_MPI(MPI_Type_free(&t2));
    CHECK_MPI(MPI_Type_free(&t));

    /* hvector with a byte stride */
    CHECK_MPI(MPI_Type_create_hvector(3, 2, 7 * IS, MPI_INT, &t));
    check_type(t, "hvector(3,2,7*4B,INT)", 6 * (int)IS, 0, (2 * 7 + 2) * IS, 0,
               (2 * 7 + 2) * IS);
    CHECK_MPI(MPI_Type_free(&t));
    /* negative stride: lb moves */
    CHECK_MPI(MPI_Type_vector(3, 1, -2, MPI_INT, &t));
    check_type(t, "vector(3,1,-2,INT)", 3 * (int)IS, -4 * IS, 5 * IS, -4 * IS,
               5 * IS);
    CHECK_MPI(MPI_Type_free(&t));

    /* indexed {1,2,3} at {5,0,9} */
    {
        int bl[3] = {1, 2, 3}, dp[3] = {5, 0, 9}, nb[2] = {1, 1};
        int ndp[2] = {-2, 3}, ib[3] = {7, 0, 3};
        MPI_Aint hd[3] = {5 * 4, 0, 9 * 4};
        CHECK_MPI(MPI_Type_indexed(3, bl, dp, MPI_INT, &t));
        check_type(t, "indexed{1,2,3}@{5,0,9}", 6 * (int)IS, 0, 12 * IS, 0,
                   12 * IS);
        CHECK_MPI(MPI_Type_free(&t));
        CHECK_MPI(MPI_Type_indexed(2, nb, ndp, MPI_INT, &t));
        check_type(t, "indexed{1,1}@{-2,3}", 2 * (int)IS, -2 * IS, 6 * IS,
                   -2 * IS, 6 * IS);
        CHECK_MPI(MPI_Type_free(&t));
        CHECK_MPI(MPI_Type_create_indexed_block(3, 2, ib, MPI_INT, &t));
        check_type(t, "indexed_block(2)@{7,0,3}", 6 * (int)IS, 0, 9 * IS, 0,
                   9 * IS);
        CHECK_MPI(MPI_Type_free(&t));
        CHECK_MPI(MPI_Type_create_hindexed(3, bl, hd, MPI_FLOAT, &t));
        check_type(t, "hindexed{1,2,3}@{20,0,36}B FLOAT", 6 * 4, 0, 48, 0, 48);
        CHECK_MPI(MPI_Type_free(&t));
    }

    /* struct {char; double; int[3]; short} */
    {
        struct S {
            char c;
            double d;
            int i[3];
            short s;
        } s[2];
        int bl[4] = {1, 1, 3, 1};
        MPI_Aint base, a[4];
        MPI_Datatype ty[4];
        ty[0] = MPI_CHAR;
        ty[1] = MPI_DOUBLE;
        ty[2] = MPI_INT;
        ty[3] = MPI_SHORT;
        CHECK_MPI(MPI_Get_address(&s[0], &base));
        CHECK_MPI(MPI_Get_address(&s[0].c, &a[0]));
        CHECK_MPI(MPI_Get_address(&s[0].d, &a[1]));
        CHECK_MPI(MPI_Get_address(&s[0].i[0], &a[2]));
        CHECK_MPI(MPI_Get_address(&s[0].s, &a[3]));
        CHECK_EQ_INT(MPI_Aint_diff(a[1], base), offsetof(struct S, d),
                     "MPI_Aint_diff(&s.d, &s)");
        CHECK_EQ_INT(MPI_Aint_diff(a[3], base), offsetof(struct S, s),
                     "MPI_Aint_diff(&s.s, &s)");
        CHECK(MPI_Aint_add(base, (MPI_Aint)offsetof(struct S, i)) == a[2],
              "MPI_Aint_add(&s, offsetof(i)) != &s.i");
        CHECK_MPI(MPI_Get_address(&s[1], &a[0]));
        CHECK_EQ_INT(MPI_Aint_diff(a[0], base), sizeof(struct S),
                     "Get_address(&s[1]) - Get_address(&s[0])");
        a[0] = offsetof(struct S, c);
        a[1] = offsetof(struct S, d);
        a[2] = offsetof(struct S, i);
        a[3] = offsetof(struct S, s);
        CHECK_MPI(MPI_Type_create_struct(4, bl, a, ty, &t));
        /* the extent is padded to the alignment of double (MPI-3.1 4.1.6;
         * every implementation does this on common ABIs) */
        check_type(t, "struct S", 1 + 8 + 12 + 2, 0, sizeof(struct S), 0,
                   offsetof(struct S, s) + sizeof(short));
        CHECK_MPI(MPI_Type_create_resized(t, 0, sizeof(struct S), &t3));
        check_type(t3, "resized struct S", 23, 0, sizeof(struct S), 0,
                   offsetof(struct S, s) + sizeof(short));
        CHECK_MPI(MPI_Type_free(&t));
        CHECK_MPI(MPI_Type_free(&t3));
        CHECK(t == MPI_DATATYPE_NULL && t3 == MPI_DATATYPE_NULL,
              "Type_free did not set MPI_DATATYPE_NULL");
    }
}

/* Type_match_size: a type of the class with that many bytes. */
static void check_match_size(void)
{
    static const int cases[][2] = {
        {MPI_TYPECLASS_INTEGER, 1}, {MPI_TYPECLASS_INTEGER, 4},
        {MPI_TYPECLASS_INTEGER, 8}, {MPI_TYPECLASS_REAL, 4},
        {MPI_TYPECLASS_REAL, 8},    {MPI_TYPECLASS_COMPLEX, 16}};
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        MPI_Datatype t = MPI_DATATYPE_NULL;
        int sz = -1;
        CHECK_MPI(MPI_Type_match_size(cases[i][0], cases[i][1], &t));
        CHECK_MPI(MPI_Type_size(t, &sz));
        CHECK_EQ_INT(sz, cases[i][1], "Type_match_size(class %d, %d): size",
                     cases[i][0], cases[i][1]);
    }
    {
        MPI_Datatype t;
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
        CHECK(MPI_Type_match_size(MPI_TYPECLASS_REAL, 3, &t) != MPI_SUCCESS,
              "Type_match_size of a 3-byte real succeeded");
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
        CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_ARE_FATAL));
    }
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    check_predefined();
    check_derived_shapes();
    check_match_size();
    return zr_finish();
}
