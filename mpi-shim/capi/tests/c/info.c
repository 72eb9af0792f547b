/* info.c - info objects: Info_create / set / get / get_valuelen /
 * get_nkeys / get_nthkey / delete / dup / free (keys in the order first set,
 * a key set again keeps its place, a value cut to valuelen), MPI_INFO_ENV
 * readable, the errors MPI_ERR_INFO_NOKEY (delete of a missing key) and
 * MPI_ERR_INFO_KEY (empty key), Comm_dup_with_info, Comm_set_info /
 * Comm_get_info, Comm_split_type with an info, and MPI_Pcontrol. */
#define TEST_NAME "info"
#include "check.h"

static void check_key(MPI_Info info, int n, const char *want)
{
    char key[MPI_MAX_INFO_KEY + 1];
    CHECK_MPI(MPI_Info_get_nthkey(info, n, key));
    CHECK_EQ_STR(key, want, "key %d", n);
}

static void check_value(MPI_Info info, const char *key, const char *want)
{
    char v[64];
    int flag = -1, len = -1;
    CHECK_MPI(MPI_Info_get_valuelen(info, key, &len, &flag));
    CHECK_EQ_INT(flag, 1, "get_valuelen(%s): flag", key);
    CHECK_EQ_INT(len, (int)strlen(want), "get_valuelen(%s)", key);
    CHECK_MPI(MPI_Info_get(info, key, (int)sizeof v - 1, v, &flag));
    CHECK_EQ_INT(flag, 1, "get(%s): flag", key);
    CHECK_EQ_STR(v, want, "get(%s)", key);
}

int main(int argc, char **argv)
{
    MPI_Info a, b, used;
    MPI_Comm c, d;
    char v[8];
    int n = -1, flag = -1, len = -1;

    CHECK_MPI(MPI_Init(&argc, &argv));
    CHECK_MPI(MPI_Pcontrol(1));
    CHECK_MPI(MPI_Info_create(&a));
    CHECK_MPI(MPI_Info_get_nkeys(a, &n));
    CHECK_EQ_INT(n, 0, "a new info's keys");
    CHECK_MPI(MPI_Info_set(a, "alpha", "one"));
    CHECK_MPI(MPI_Info_set(a, "beta", "a longer value"));
    CHECK_MPI(MPI_Info_set(a, "gamma", "3"));
    CHECK_MPI(MPI_Info_set(a, "alpha", "uno"));
    CHECK_MPI(MPI_Info_get_nkeys(a, &n));
    CHECK_EQ_INT(n, 3, "keys after four sets of three keys");
    check_key(a, 0, "alpha");
    check_key(a, 1, "beta");
    check_key(a, 2, "gamma");
    check_value(a, "alpha", "uno");
    check_value(a, "beta", "a longer value");

    /* a value cut to valuelen characters, NUL-terminated (MPICH 4.0 fails
     * with "Value is too long") */
    SKIP_IF_XFAIL("mpich-info-get-truncate")
    {
        memset(v, 'x', sizeof v);
        CHECK_MPI(MPI_Info_get(a, "beta", 3, v, &flag));
        CHECK_EQ_INT(flag, 1, "cut get: flag");
        CHECK_EQ_STR(v, "a l", "a value cut to 3 characters");
    }
    CHECK_MPI(MPI_Info_get(a, "missing", 3, v, &flag));
    CHECK_EQ_INT(flag, 0, "get of a missing key: flag");
    CHECK_MPI(MPI_Info_get_valuelen(a, "missing", &len, &flag));
    CHECK_EQ_INT(flag, 0, "get_valuelen of a missing key: flag");

    /* dup is a copy */
    CHECK_MPI(MPI_Info_dup(a, &b));
    CHECK_MPI(MPI_Info_delete(a, "beta"));
    CHECK_MPI(MPI_Info_get_nkeys(a, &n));
    CHECK_EQ_INT(n, 2, "keys after a delete");
    check_key(a, 1, "gamma");
    CHECK_MPI(MPI_Info_get_nkeys(b, &n));
    CHECK_EQ_INT(n, 3, "the duplicate's keys after a delete on the original");
    check_value(b, "beta", "a longer value");

    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Info_delete(a, "beta"), MPI_ERR_INFO_NOKEY);
    CHECK_ERR_CLASS(MPI_Info_set(a, "", "x"), MPI_ERR_INFO_KEY);
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));

    /* values are bytes, kept as given (not UTF-8 here), and may be cut
     * anywhere */
    {
        char got[16];
        CHECK_MPI(MPI_Info_set(a, "latin1", "caf\xe9"));
        CHECK_MPI(MPI_Info_get_valuelen(a, "latin1", &len, &flag));
        CHECK_EQ_INT(len, 4, "valuelen of a Latin-1 value");
        CHECK_MPI(MPI_Info_get(a, "latin1", 15, got, &flag));
        CHECK(memcmp(got, "caf\xe9", 5) == 0, "a Latin-1 value came back changed");
        CHECK_MPI(MPI_Info_set(a, "utf8", "\xc3\xa9t\xc3\xa9"));
        SKIP_IF_XFAIL("mpich-info-get-truncate")
        {
            CHECK_MPI(MPI_Info_get(a, "utf8", 1, got, &flag));
            CHECK(got[0] == '\xc3' && got[1] == 0,
                  "a value cut inside a UTF-8 character");
        }
    }

    /* MPI_INFO_ENV can be read */
    CHECK_MPI(MPI_Info_get_nkeys(MPI_INFO_ENV, &n));
    CHECK(n >= 0, "MPI_INFO_ENV: %d keys", n);

    /* communicators take infos */
    CHECK_MPI(MPI_Comm_dup_with_info(MPI_COMM_WORLD, a, &c));
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, c, &n));
    CHECK_EQ_INT(n, MPI_CONGRUENT, "Comm_dup_with_info: a congruent copy");
    CHECK_MPI(MPI_Comm_set_info(c, b));
    CHECK_MPI(MPI_Comm_get_info(c, &used));
    CHECK(used != MPI_INFO_NULL, "Comm_get_info gave MPI_INFO_NULL");
    CHECK_MPI(MPI_Info_free(&used));
    CHECK_MPI(MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, 0, a, &d));
    CHECK(d != MPI_COMM_NULL, "Comm_split_type with an info");
    CHECK_MPI(MPI_Comm_free(&d));
    CHECK_MPI(MPI_Comm_free(&c));

    CHECK_MPI(MPI_Info_free(&a));
    CHECK_MPI(MPI_Info_free(&b));
    CHECK(a == MPI_INFO_NULL && b == MPI_INFO_NULL,
          "Info_free did not set MPI_INFO_NULL");
    return zr_finish();
}
