/* env.c - environment management: Init, Initialized, Finalized (before and
 * after), Get_version / Get_library_version (also before Init and after
 * Finalize), Wtime / Wtick, Get_processor_name, predefined attributes on
 * MPI_COMM_WORLD, Error_class / Error_string, error handlers (default
 * MPI_ERRORS_ARE_FATAL, get / set / free, MPI_ERRORS_RETURN returns the code,
 * inheritance by Comm_dup), Alloc_mem / Free_mem, Query_thread /
 * Is_thread_main after plain Init.  (User error classes and user error
 * handlers are outside zerorank's scope.) */
#define TEST_NAME "env"
#include "check.h"

static int valid_thread_level(int l)
{
    return l == MPI_THREAD_SINGLE || l == MPI_THREAD_FUNNELED ||
           l == MPI_THREAD_SERIALIZED || l == MPI_THREAD_MULTIPLE;
}

static void check_version(const char *when)
{
    int v = -1, sv = -1, len = -1;
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];

    CHECK_MPI(MPI_Get_version(&v, &sv));
    CHECK(v >= 3, "%s: MPI_Get_version: expected version >= 3, got %d.%d",
          when, v, sv);
    CHECK(sv >= 0 && sv <= 9,
          "%s: MPI_Get_version: expected subversion 0..9, got %d", when, sv);
    CHECK(MPI_VERSION >= 3, "MPI_VERSION macro: expected >= 3, got %d",
          MPI_VERSION);

    memset(lib, 0x5a, sizeof lib);
    CHECK_MPI(MPI_Get_library_version(lib, &len));
    CHECK(len > 0 && len < MPI_MAX_LIBRARY_VERSION_STRING,
          "%s: MPI_Get_library_version: expected 0 < resultlen < %d, got %d",
          when, MPI_MAX_LIBRARY_VERSION_STRING, len);
    CHECK(memchr(lib, '\0', sizeof lib) != NULL,
          "%s: MPI_Get_library_version: string not NUL-terminated", when);
    DEVIATION("ompi-libversion-len") /* Open MPI 4.1: resultlen = strlen+1 */
        CHECK_EQ_INT(strlen(lib), len,
                     "%s: strlen(library version) vs resultlen", when);
}

static void check_init_flags(int exp_init, int exp_fin, const char *when)
{
    int flag = -1;
    CHECK_MPI(MPI_Initialized(&flag));
    CHECK_EQ_INT(flag, exp_init, "%s: MPI_Initialized", when);
    flag = -1;
    CHECK_MPI(MPI_Finalized(&flag));
    CHECK_EQ_INT(flag, exp_fin, "%s: MPI_Finalized", when);
}

static void check_wtime(void)
{
    double tick = MPI_Wtick(), prev, t0, t;
    long i;

    CHECK(tick > 0.0 && tick <= 1.0, "MPI_Wtick: expected in (0, 1], got %g",
          tick);
    prev = t0 = MPI_Wtime();
    for (i = 0; i < 100000; i++) {
        t = MPI_Wtime();
        CHECK(t >= prev, "MPI_Wtime not monotonic: %.9f after %.9f", t, prev);
        prev = t;
    }
    /* Time must actually advance: spin until it has moved by a few ticks
     * (bounded by run.sh's timeout if it never does). */
    do {
        t = MPI_Wtime();
        CHECK(t >= prev, "MPI_Wtime not monotonic: %.9f after %.9f", t, prev);
        prev = t;
    } while (t - t0 < 5 * tick && t - t0 < 0.01);
    CHECK(t > t0, "MPI_Wtime does not advance (stuck at %.9f)", t0);
}

static void check_processor_name(void)
{
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = -1;
    memset(name, 0x5a, sizeof name);
    CHECK_MPI(MPI_Get_processor_name(name, &len));
    CHECK(len > 0 && len < MPI_MAX_PROCESSOR_NAME,
          "MPI_Get_processor_name: expected 0 < resultlen < %d, got %d",
          MPI_MAX_PROCESSOR_NAME, len);
    CHECK(memchr(name, '\0', sizeof name) != NULL,
          "MPI_Get_processor_name: not NUL-terminated");
    CHECK_EQ_INT(strlen(name), len, "strlen(processor name) vs resultlen");
}

static void check_attributes(int rank, int size)
{
    int *val = NULL, flag = 0, mn, mx;

    CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &val, &flag));
    CHECK_EQ_INT(flag, 1, "MPI_TAG_UB attribute present");
    CHECK(*val >= 32767, "MPI_TAG_UB: expected >= 32767, got %d", *val);
    CHECK_MPI(MPI_Allreduce(val, &mn, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Allreduce(val, &mx, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    CHECK_EQ_INT(mn, mx, "MPI_TAG_UB differs between ranks (min vs max)");

    flag = 0;
    CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_HOST, &val, &flag));
    CHECK_EQ_INT(flag, 1, "MPI_HOST attribute present");
    CHECK(*val == MPI_PROC_NULL || (*val >= 0 && *val < size),
          "MPI_HOST: expected MPI_PROC_NULL or a rank, got %d", *val);

    flag = 0;
    CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_IO, &val, &flag));
    CHECK_EQ_INT(flag, 1, "MPI_IO attribute present");
    CHECK(*val == MPI_PROC_NULL || *val == MPI_ANY_SOURCE ||
              (*val >= 0 && *val < size),
          "MPI_IO: expected MPI_PROC_NULL, MPI_ANY_SOURCE or a rank, got %d",
          *val);

    flag = 0;
    CHECK_MPI(
        MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_WTIME_IS_GLOBAL, &val, &flag));
    if (flag)
        CHECK(*val == 0 || *val == 1,
              "MPI_WTIME_IS_GLOBAL: expected 0 or 1, got %d", *val);
    (void)rank;
}

/* Error classes: each is a valid code mapping to itself, within
 * [0, MPI_ERR_LASTCODE], pairwise distinct, with a non-empty string. */
static void check_error_classes(void)
{
    static const struct {
        int cls;
        const char *name;
    } c[] = {
#define E(x) {x, #x}
        E(MPI_SUCCESS),        E(MPI_ERR_BUFFER),    E(MPI_ERR_COUNT),
        E(MPI_ERR_TYPE),       E(MPI_ERR_TAG),       E(MPI_ERR_COMM),
        E(MPI_ERR_RANK),       E(MPI_ERR_REQUEST),   E(MPI_ERR_ROOT),
        E(MPI_ERR_GROUP),      E(MPI_ERR_OP),        E(MPI_ERR_TOPOLOGY),
        E(MPI_ERR_DIMS),       E(MPI_ERR_ARG),       E(MPI_ERR_UNKNOWN),
        E(MPI_ERR_TRUNCATE),   E(MPI_ERR_OTHER),     E(MPI_ERR_INTERN),
        E(MPI_ERR_IN_STATUS),  E(MPI_ERR_PENDING),   E(MPI_ERR_KEYVAL),
        E(MPI_ERR_NO_MEM),     E(MPI_ERR_BASE),      E(MPI_ERR_INFO_KEY),
        E(MPI_ERR_INFO_VALUE), E(MPI_ERR_INFO_NOKEY), E(MPI_ERR_SPAWN),
        E(MPI_ERR_PORT),       E(MPI_ERR_SERVICE),   E(MPI_ERR_NAME),
        E(MPI_ERR_WIN),        E(MPI_ERR_SIZE),      E(MPI_ERR_DISP),
        E(MPI_ERR_INFO),       E(MPI_ERR_LOCKTYPE),  E(MPI_ERR_ASSERT),
        E(MPI_ERR_RMA_CONFLICT), E(MPI_ERR_RMA_SYNC), E(MPI_ERR_RMA_RANGE),
        E(MPI_ERR_RMA_ATTACH), E(MPI_ERR_RMA_SHARED), E(MPI_ERR_RMA_FLAVOR),
        E(MPI_ERR_FILE),       E(MPI_ERR_NOT_SAME),  E(MPI_ERR_AMODE),
        E(MPI_ERR_UNSUPPORTED_DATAREP), E(MPI_ERR_UNSUPPORTED_OPERATION),
        E(MPI_ERR_NO_SUCH_FILE), E(MPI_ERR_FILE_EXISTS), E(MPI_ERR_BAD_FILE),
        E(MPI_ERR_ACCESS),     E(MPI_ERR_NO_SPACE),  E(MPI_ERR_QUOTA),
        E(MPI_ERR_READ_ONLY),  E(MPI_ERR_FILE_IN_USE), E(MPI_ERR_DUP_DATAREP),
        E(MPI_ERR_CONVERSION), E(MPI_ERR_IO),
#undef E
    };
    /* The MPI-1 classes, whose strings must also be pairwise distinct. */
    enum { NCORE = 20 };
    static char str[sizeof c / sizeof c[0]][MPI_MAX_ERROR_STRING];
    const int n = (int)(sizeof c / sizeof c[0]);
    int i, j;

    CHECK_EQ_INT(MPI_SUCCESS, 0, "MPI_SUCCESS value");
    for (i = 0; i < n; i++) {
        int cls = -1, len = -1;
        CHECK(c[i].cls >= 0 && c[i].cls <= MPI_ERR_LASTCODE,
              "%s = %d: expected within [0, MPI_ERR_LASTCODE=%d]", c[i].name,
              c[i].cls, MPI_ERR_LASTCODE);
        if (i > 0)
            CHECK(c[i].cls > 0, "%s: expected > MPI_SUCCESS, got %d",
                  c[i].name, c[i].cls);
        CHECK_MPI(MPI_Error_class(c[i].cls, &cls));
        CHECK_EQ_INT(cls, c[i].cls, "MPI_Error_class(%s)", c[i].name);
        memset(str[i], 0x5a, MPI_MAX_ERROR_STRING);
        CHECK_MPI(MPI_Error_string(c[i].cls, str[i], &len));
        CHECK(len > 0 && len < MPI_MAX_ERROR_STRING,
              "MPI_Error_string(%s): expected 0 < resultlen < %d, got %d",
              c[i].name, MPI_MAX_ERROR_STRING, len);
        CHECK(memchr(str[i], '\0', MPI_MAX_ERROR_STRING) != NULL,
              "MPI_Error_string(%s): not NUL-terminated", c[i].name);
        CHECK_EQ_INT(strlen(str[i]), len, "MPI_Error_string(%s) length",
                     c[i].name);
        for (j = 0; j < i; j++) {
            CHECK(c[i].cls != c[j].cls, "%s and %s have the same value %d",
                  c[i].name, c[j].name, c[i].cls);
            if (i < NCORE && j < NCORE)
                CHECK(strcmp(str[i], str[j]) != 0,
                      "MPI_Error_string(%s) == MPI_Error_string(%s) = \"%s\"",
                      c[i].name, c[j].name, str[i]);
        }
    }
}

/* --- error handlers -------------------------------------------------- */
static void check_errhandlers(int size)
{
    MPI_Errhandler eh = MPI_ERRHANDLER_NULL;
    MPI_Comm dup, dup2;
    int buf = 0, rc, cls = -1;

    /* Default on MPI_COMM_WORLD is MPI_ERRORS_ARE_FATAL. */
    CHECK_MPI(MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh));
    CHECK(eh == MPI_ERRORS_ARE_FATAL,
          "MPI_Comm_get_errhandler(MPI_COMM_WORLD): expected "
          "MPI_ERRORS_ARE_FATAL");
    CHECK_MPI(MPI_Errhandler_free(&eh));
    CHECK(eh == MPI_ERRHANDLER_NULL,
          "MPI_Errhandler_free: handle not set to MPI_ERRHANDLER_NULL");

    /* MPI_COMM_SELF too. */
    CHECK_MPI(MPI_Comm_get_errhandler(MPI_COMM_SELF, &eh));
    CHECK(eh == MPI_ERRORS_ARE_FATAL,
          "MPI_Comm_get_errhandler(MPI_COMM_SELF): expected "
          "MPI_ERRORS_ARE_FATAL");
    CHECK_MPI(MPI_Errhandler_free(&eh));

    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
    /* A dup of a communicator with the default handler has it too. */
    CHECK_MPI(MPI_Comm_get_errhandler(dup, &eh));
    CHECK(eh == MPI_ERRORS_ARE_FATAL,
          "Comm_dup(MPI_COMM_WORLD): expected MPI_ERRORS_ARE_FATAL");
    CHECK_MPI(MPI_Errhandler_free(&eh));
    CHECK_MPI(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Comm_get_errhandler(dup, &eh));
    CHECK(eh == MPI_ERRORS_RETURN, "get after set: expected MPI_ERRORS_RETURN");
    CHECK_MPI(MPI_Errhandler_free(&eh));
    /* The world's handler is unchanged. */
    CHECK_MPI(MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh));
    CHECK(eh == MPI_ERRORS_ARE_FATAL,
          "MPI_COMM_WORLD handler changed by setting one on a dup");
    CHECK_MPI(MPI_Errhandler_free(&eh));

    /* With MPI_ERRORS_RETURN an erroneous call returns its error code. */
    rc = MPI_Send(&buf, 1, MPI_INT, size /* invalid rank */, 0, dup);
    CHECK(rc != MPI_SUCCESS, "MPI_Send to rank %d: expected an error", size);
    MPI_Error_class(rc, &cls);
    CHECK_EQ_INT(cls, MPI_ERR_RANK, "class returned with MPI_ERRORS_RETURN");

    /* MPI_Comm_dup copies the error handler. */
    CHECK_MPI(MPI_Comm_dup(dup, &dup2));
    CHECK_MPI(MPI_Comm_get_errhandler(dup2, &eh));
    CHECK(eh == MPI_ERRORS_RETURN,
          "Comm_dup did not inherit MPI_ERRORS_RETURN");
    CHECK_MPI(MPI_Errhandler_free(&eh));
    cls = -1;
    rc = MPI_Send(&buf, -1, MPI_INT, 0, 0, dup2);
    CHECK(rc != MPI_SUCCESS, "MPI_Send count -1 on dup of dup: expected error");
    MPI_Error_class(rc, &cls);
    CHECK_EQ_INT(cls, MPI_ERR_COUNT, "inherited MPI_ERRORS_RETURN: class");
    /* ... and setting one on the dup leaves the parent alone. */
    CHECK_MPI(MPI_Comm_set_errhandler(dup2, MPI_ERRORS_ARE_FATAL));
    CHECK_MPI(MPI_Comm_get_errhandler(dup, &eh));
    CHECK(eh == MPI_ERRORS_RETURN, "parent's handler changed by its dup's");
    CHECK_MPI(MPI_Errhandler_free(&eh));

    CHECK_MPI(MPI_Comm_free(&dup2));
    CHECK_MPI(MPI_Comm_free(&dup));
    CHECK(dup == MPI_COMM_NULL, "MPI_Comm_free: handle not MPI_COMM_NULL");
}

static void check_alloc_mem(int rank)
{
    const MPI_Aint n = (1 << 20) + 13;
    unsigned char *p = NULL;
    MPI_Aint i;
    CHECK_MPI(MPI_Alloc_mem(n, MPI_INFO_NULL, &p));
    CHECK(p != NULL, "MPI_Alloc_mem returned NULL");
    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 + rank);
    for (i = 0; i < n; i++)
        CHECK_EQ_INT(p[i], (unsigned char)(i * 7 + rank),
                     "Alloc_mem byte %ld", (long)i);
    CHECK_MPI(MPI_Free_mem(p));
}

int main(int argc, char **argv)
{
    int rank, size, prov = -1, flag = -1;

    /* Allowed before MPI_Init. */
    check_init_flags(0, 0, "before MPI_Init");
    check_version("before MPI_Init");

    CHECK_MPI(MPI_Init(&argc, &argv));
    check_init_flags(1, 0, "after MPI_Init");
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    CHECK(size >= 1 && rank >= 0 && rank < size, "rank %d size %d", rank,
          size);

    check_version("after MPI_Init");
    CHECK_MPI(MPI_Query_thread(&prov));
    CHECK(valid_thread_level(prov), "MPI_Query_thread: invalid level %d",
          prov);
    CHECK_MPI(MPI_Is_thread_main(&flag));
    CHECK_EQ_INT(flag, 1, "MPI_Is_thread_main on the main thread");
    check_wtime();
    check_processor_name();
    check_attributes(rank, size);
    check_error_classes();
    check_errhandlers(size);
    check_alloc_mem(rank);

    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    CHECK_MPI(MPI_Finalize());

    /* Allowed after MPI_Finalize. */
    check_init_flags(1, 1, "after MPI_Finalize");
    check_version("after MPI_Finalize");
    if (rank == 0) {
        printf("OK %s\n", TEST_NAME);
        fflush(stdout);
    }
    return 0;
}
