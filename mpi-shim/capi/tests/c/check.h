/*
 * check.h - tiny self-checking helpers for the zerorank MPI C ABI acceptance
 * suite.  Standard MPI-3.1 C and C99 only; nothing implementation specific.
 *
 * Each test program does
 *     #define TEST_NAME "p2p"
 *     #include "check.h"
 * and finishes with `return zr_finish();`.
 *
 * Conventions
 *   - On success rank 0 prints exactly one line "OK <TEST_NAME>" to stdout and
 *     every rank exits 0.
 *   - On any failure the failing rank prints
 *         FAIL <TEST_NAME>: [rank R] file.c:LINE: <what>: expected X, got Y
 *     to stderr and calls MPI_Abort(MPI_COMM_WORLD, 1) (or exit(1) when MPI is
 *     not initialised / already finalised).
 *   - Checks of behaviour where a reference implementation is known to
 *     deviate from MPI-3.1 are wrapped in DEVIATION("id") { ... }.  They are
 *     strict by default; if "id" (or "all") is listed in the environment
 *     variable ZR_XFAIL (separated by spaces or commas), a failure inside the
 *     block prints "XFAIL <TEST_NAME>: <id>: ..." to stderr and the program
 *     carries on.  SKIP_IF_XFAIL("id") { ... } is the same for code that
 *     crashes or hangs.  See README.md for the known ids.
 */
#ifndef ZR_CHECK_H
#define ZR_CHECK_H

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_NAME
#error "define TEST_NAME before including check.h"
#endif

static inline int zr_rank_or_minus1(void)
{
    int init = 0, fin = 0, r = -1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

/* id of the DEVIATION block being executed, or NULL */
static const char *zr_dev_;

/* the id that zr_xfail_allowed() matched last */
static char zr_xfail_id_[64];

/* Is one of the deviation ids in `ids` (space separated) listed in
 * $ZR_XFAIL? */
static inline int zr_xfail_allowed(const char *ids)
{
    const char *env = getenv("ZR_XFAIL");
    while (env && *ids) {
        const char *l = env;
        size_t n;
        while (*ids == ' ')
            ids++;
        n = strcspn(ids, " ");
        while (n > 0 && *l) {
            size_t k;
            while (*l == ' ' || *l == ',' || *l == '\t')
                l++;
            k = strcspn(l, " ,\t");
            if (k > 0 && ((k == n && strncmp(l, ids, n) == 0) ||
                          (k == 3 && strncmp(l, "all", 3) == 0))) {
                snprintf(zr_xfail_id_, sizeof zr_xfail_id_, "%.*s", (int)n,
                         ids);
                return 1;
            }
            l += k;
        }
        ids += n;
    }
    return 0;
}

#define DEVIATION(id) for (zr_dev_ = (id); zr_dev_; zr_dev_ = NULL)

/* For known deviations that crash or hang (so cannot be checked and
 * tolerated): SKIP_IF_XFAIL("id") { ...statement... } runs the statement
 * unless "id" is listed in $ZR_XFAIL, in which case it prints an XFAIL line
 * and skips it.  Every rank must take the same decision (collectives). */
static inline int zr_xfail_skip(const char *id, const char *file, int line)
{
    if (!zr_xfail_allowed(id))
        return 0;
    fprintf(stderr, "XFAIL %s: %s: [rank %d] %s:%d: skipped\n", TEST_NAME,
            zr_xfail_id_, zr_rank_or_minus1(), file, line);
    return 1;
}
#define SKIP_IF_XFAIL(id) if (zr_xfail_skip((id), __FILE__, __LINE__)) {} else

/* Reports a failed check.  Does not return, except inside a DEVIATION block
 * whose id is listed in $ZR_XFAIL. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline void zr_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int init = 0, fin = 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (zr_dev_ && zr_xfail_allowed(zr_dev_)) {
        fprintf(stderr, "XFAIL %s: %s: [rank %d] %s:%d: %s\n", TEST_NAME,
                zr_xfail_id_, zr_rank_or_minus1(), file, line, msg);
        fflush(stderr);
        return;
    }
    fprintf(stderr, "FAIL %s: [rank %d] %s:%d: %s%s%s%s\n", TEST_NAME,
            zr_rank_or_minus1(), file, line, msg,
            zr_dev_ ? " [known deviation; ZR_XFAIL=" : "",
            zr_dev_ ? zr_dev_ : "", zr_dev_ ? " tolerates it]" : "");
    fflush(stderr);
    fflush(stdout);
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* Generic condition with a printf-style description. */
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond))                                                          \
            zr_fail(__FILE__, __LINE__, __VA_ARGS__);                         \
    } while (0)

/* Integer equality (signed).  `what` is a printf format + args prefix. */
#define CHECK_EQ_INT(got, exp, ...)                                           \
    do {                                                                      \
        long long zr_g_ = (long long)(got), zr_e_ = (long long)(exp);         \
        if (zr_g_ != zr_e_) {                                                 \
            char zr_w_[512];                                                  \
            snprintf(zr_w_, sizeof zr_w_, __VA_ARGS__);                       \
            zr_fail(__FILE__, __LINE__, "%s: expected %lld, got %lld", zr_w_, \
                    zr_e_, zr_g_);                                            \
        }                                                                     \
    } while (0)

/* Integer equality (unsigned, printed in hex too). */
#define CHECK_EQ_UINT(got, exp, ...)                                          \
    do {                                                                      \
        unsigned long long zr_g_ = (unsigned long long)(got),                 \
                           zr_e_ = (unsigned long long)(exp);                 \
        if (zr_g_ != zr_e_) {                                                 \
            char zr_w_[512];                                                  \
            snprintf(zr_w_, sizeof zr_w_, __VA_ARGS__);                       \
            zr_fail(__FILE__, __LINE__,                                       \
                    "%s: expected %llu (0x%llx), got %llu (0x%llx)", zr_w_,   \
                    zr_e_, zr_e_, zr_g_, zr_g_);                              \
        }                                                                     \
    } while (0)

/* Exact floating equality (inputs are chosen so results are exact). */
#define CHECK_EQ_DBL(got, exp, ...)                                           \
    do {                                                                      \
        long double zr_g_ = (long double)(got), zr_e_ = (long double)(exp);   \
        if (!(zr_g_ == zr_e_)) {                                              \
            char zr_w_[512];                                                  \
            snprintf(zr_w_, sizeof zr_w_, __VA_ARGS__);                       \
            zr_fail(__FILE__, __LINE__, "%s: expected %.21Lg, got %.21Lg",    \
                    zr_w_, zr_e_, zr_g_);                                     \
        }                                                                     \
    } while (0)

#define CHECK_EQ_STR(got, exp, ...)                                           \
    do {                                                                      \
        const char *zr_g_ = (got), *zr_e_ = (exp);                            \
        if (strcmp(zr_g_, zr_e_) != 0) {                                      \
            char zr_w_[512];                                                  \
            snprintf(zr_w_, sizeof zr_w_, __VA_ARGS__);                       \
            zr_fail(__FILE__, __LINE__, "%s: expected \"%s\", got \"%s\"",    \
                    zr_w_, zr_e_, zr_g_);                                     \
        }                                                                     \
    } while (0)

/* An MPI call that must succeed. */
#define CHECK_MPI(call)                                                       \
    do {                                                                      \
        int zr_rc_ = (call);                                                  \
        if (zr_rc_ != MPI_SUCCESS) {                                          \
            char zr_s_[MPI_MAX_ERROR_STRING];                                 \
            int zr_l_ = 0;                                                    \
            zr_s_[0] = '\0';                                                  \
            MPI_Error_string(zr_rc_, zr_s_, &zr_l_);                          \
            zr_fail(__FILE__, __LINE__,                                       \
                    "%s: expected MPI_SUCCESS, got %d (%s)", #call, zr_rc_,   \
                    zr_s_);                                                   \
        }                                                                     \
    } while (0)

/* An MPI call (made on a communicator with MPI_ERRORS_RETURN) that must
 * fail with an error code whose class is `cls`. */
#define CHECK_ERR_CLASS(call, cls)                                            \
    do {                                                                      \
        int zr_rc_ = (call), zr_c_ = -1;                                      \
        char zr_s_[MPI_MAX_ERROR_STRING];                                     \
        int zr_l_ = 0;                                                        \
        zr_s_[0] = '\0';                                                      \
        if (zr_rc_ == MPI_SUCCESS)                                            \
            zr_fail(__FILE__, __LINE__,                                       \
                    "%s: expected error class %s, got MPI_SUCCESS", #call,    \
                    #cls);                                                    \
        else if (MPI_Error_class(zr_rc_, &zr_c_), zr_c_ != (cls)) {           \
            MPI_Error_string(zr_rc_, zr_s_, &zr_l_);                          \
            zr_fail(__FILE__, __LINE__,                                       \
                    "%s: expected error class %s (%d), got class %d "         \
                    "(code %d: %s)",                                          \
                    #call, #cls, (int)(cls), zr_c_, zr_rc_, zr_s_);           \
        }                                                                     \
    } while (0)

/* The status of a receive that matched a message from MPI_PROC_NULL (or an
 * "empty" status, when source == MPI_ANY_SOURCE). */
#define CHECK_NULL_STATUS(st, src, what)                                      \
    do {                                                                      \
        int zr_n_ = -12345;                                                   \
        CHECK_EQ_INT((st).MPI_SOURCE, (src), "%s: status.MPI_SOURCE", what);  \
        CHECK_EQ_INT((st).MPI_TAG, MPI_ANY_TAG, "%s: status.MPI_TAG", what);  \
        CHECK_MPI(MPI_Get_count(&(st), MPI_INT, &zr_n_));                     \
        CHECK_EQ_INT(zr_n_, 0, "%s: MPI_Get_count", what);                   \
    } while (0)

static inline int zr_rank(MPI_Comm c)
{
    int r;
    CHECK_MPI(MPI_Comm_rank(c, &r));
    return r;
}

static inline int zr_size(MPI_Comm c)
{
    int s;
    CHECK_MPI(MPI_Comm_size(c, &s));
    return s;
}

/* Final barrier (so that no rank reports OK while another is still checking),
 * the single OK line, Finalize. */
static inline int zr_finish(void)
{
    int r;
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    r = zr_rank(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Finalize());
    if (r == 0) {
        printf("OK %s\n", TEST_NAME);
        fflush(stdout);
    }
    return 0;
}

#endif /* ZR_CHECK_H */
