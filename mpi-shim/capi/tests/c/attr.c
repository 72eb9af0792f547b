/* attr.c - attribute caching: Comm_create_keyval / set / get / delete /
 * free_keyval and the MPI-1 names (Keyval_create, Attr_put, Attr_get,
 * Attr_delete, Keyval_free); copy callbacks on Comm_dup (a user one,
 * MPI_COMM_NULL_COPY_FN, MPI_COMM_DUP_FN); delete callbacks on setting again,
 * on delete, on Comm_free, for a keyval freed while in use; a failing delete
 * callback fails the call and keeps the attribute, a failing copy callback
 * fails Comm_dup; predefined keys cannot be set; datatype attributes through
 * Type_dup and Type_free; a comm keyval on a datatype is an error; and the
 * attributes of MPI_COMM_SELF deleted first thing in MPI_Finalize, the last
 * set first, with MPI still usable. */
#define TEST_NAME "attr"
#include "check.h"

/* What the callbacks saw, per keyval (extra_state points at one). */
struct seen {
    int copies, deletes;
    int fail_copy, fail_delete;
    MPI_Comm last_comm;
    void *last_value;
};

static int values[8];

/* Copy: the duplicate gets the next element of `values`. */
static int copy_next(MPI_Comm old, int key, void *extra, void *in, void *out,
                     int *flag)
{
    struct seen *s = extra;
    (void)key;
    s->copies++;
    s->last_comm = old;
    if (s->fail_copy) {
        *flag = 0;
        return MPI_ERR_OTHER;
    }
    *(void **)out = (int *)in + 1;
    *flag = 1;
    return MPI_SUCCESS;
}

static int delete_count(MPI_Comm comm, int key, void *value, void *extra)
{
    struct seen *s = extra;
    (void)key;
    s->deletes++;
    s->last_comm = comm;
    s->last_value = value;
    return s->fail_delete ? MPI_ERR_OTHER : MPI_SUCCESS;
}

static int type_copy(MPI_Datatype old, int key, void *extra, void *in,
                     void *out, int *flag)
{
    (void)old;
    (void)key;
    ((struct seen *)extra)->copies++;
    *(void **)out = in;
    *flag = 1;
    return MPI_SUCCESS;
}

static int type_delete(MPI_Datatype t, int key, void *value, void *extra)
{
    (void)t;
    (void)key;
    ((struct seen *)extra)->deletes++;
    ((struct seen *)extra)->last_value = value;
    return MPI_SUCCESS;
}

static void *get(MPI_Comm c, int key, int want_flag, const char *what)
{
    void *v = NULL;
    int flag = -1;
    CHECK_MPI(MPI_Comm_get_attr(c, key, &v, &flag));
    CHECK_EQ_INT(flag, want_flag, "%s: flag", what);
    return v;
}

static void check_comm_attrs(void)
{
    struct seen su = {0}, sn = {0}, sd = {0};
    int ku, kn, kd, saved;
    MPI_Comm a, b;
    void *v;

    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &a));
    CHECK_MPI(MPI_Comm_create_keyval(copy_next, delete_count, &ku, &su));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_count, &kn,
                                     &sn));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_DUP_FN, MPI_COMM_NULL_DELETE_FN,
                                     &kd, &sd));
    CHECK(ku != kn && kn != kd && ku != kd, "keyvals are not distinct");

    get(a, ku, 0, "unset attribute");
    CHECK_MPI(MPI_Comm_set_attr(a, ku, &values[0]));
    CHECK_MPI(MPI_Comm_set_attr(a, kn, &values[5]));
    CHECK_MPI(MPI_Comm_set_attr(a, kd, &values[6]));
    v = get(a, ku, 1, "set attribute");
    CHECK(v == &values[0], "Comm_get_attr returned another value");
    get(MPI_COMM_WORLD, ku, 0, "attribute of another communicator");

    /* setting again deletes the old value first */
    CHECK_MPI(MPI_Comm_set_attr(a, ku, &values[1]));
    CHECK_EQ_INT(su.deletes, 1, "set again: delete callbacks");
    CHECK(su.last_value == &values[0], "set again: the old value was deleted");
    CHECK(su.last_comm == a, "set again: the delete callback's communicator");
    CHECK(get(a, ku, 1, "set again") == &values[1], "set again: new value");

    /* dup: the user callback, MPI_COMM_NULL_COPY_FN, MPI_COMM_DUP_FN */
    CHECK_MPI(MPI_Comm_dup(a, &b));
    CHECK_EQ_INT(su.copies, 1, "Comm_dup: copy callbacks");
    CHECK(su.last_comm == a, "Comm_dup: the copy callback's communicator");
    CHECK(get(b, ku, 1, "copied attribute") == &values[2],
          "Comm_dup: the copy callback's value");
    get(b, kn, 0, "MPI_COMM_NULL_COPY_FN attribute on the duplicate");
    CHECK(get(b, kd, 1, "MPI_COMM_DUP_FN attribute") == &values[6],
          "MPI_COMM_DUP_FN: the same value");

    /* delete */
    CHECK_MPI(MPI_Comm_delete_attr(b, ku));
    CHECK_EQ_INT(su.deletes, 2, "Comm_delete_attr: delete callbacks");
    CHECK(su.last_value == &values[2], "Comm_delete_attr: the value deleted");
    get(b, ku, 0, "deleted attribute");
    CHECK(get(a, ku, 1, "the original's attribute") == &values[1],
          "deleting on the duplicate changed the original");

    /* a failing delete callback fails the call and keeps the attribute */
    CHECK_MPI(MPI_Comm_set_errhandler(a, MPI_ERRORS_RETURN));
    su.fail_delete = 1;
    CHECK_ERR_CLASS(MPI_Comm_delete_attr(a, ku), MPI_ERR_OTHER);
    su.fail_delete = 0;
    CHECK(get(a, ku, 1, "after a failed delete") == &values[1],
          "a failed delete removed the attribute");

    /* a failing copy callback fails Comm_dup */
    su.fail_copy = 1;
    {
        MPI_Comm c = MPI_COMM_WORLD;
        int rc = MPI_Comm_dup(a, &c);
        CHECK(rc != MPI_SUCCESS, "Comm_dup with a failing copy callback succeeded");
        CHECK(c == MPI_COMM_NULL,
              "Comm_dup with a failing copy callback gave a communicator");
    }
    su.fail_copy = 0;

    /* predefined keys cannot be set or deleted */
    /* Open MPI 4.1 returns MPI_ERR_OTHER */
    DEVIATION("ompi-attr-keyval-class")
        CHECK_ERR_CLASS(MPI_Comm_set_attr(a, MPI_TAG_UB, &values[0]),
                        MPI_ERR_KEYVAL);
    CHECK_MPI(MPI_Comm_set_errhandler(a, MPI_ERRORS_ARE_FATAL));

    /* freeing a keyval in use: the handle becomes invalid, the attribute
     * stays until its communicator goes */
    saved = kn;
    CHECK_MPI(MPI_Comm_free_keyval(&kn));
    CHECK_EQ_INT(kn, MPI_KEYVAL_INVALID, "Comm_free_keyval: the handle");
    (void)saved;

    /* Comm_free runs the delete callbacks */
    su.deletes = 0;
    CHECK_MPI(MPI_Comm_free(&b));
    CHECK_EQ_INT(su.deletes, 0, "Comm_free(b): b has no ku attribute left");
    CHECK_MPI(MPI_Comm_free(&a));
    CHECK_EQ_INT(su.deletes, 1, "Comm_free(a): delete callbacks of ku");
    CHECK(su.last_value == &values[1], "Comm_free(a): the value deleted");
    CHECK_EQ_INT(sn.deletes, 1,
                 "Comm_free(a): delete callback of the freed keyval");
    CHECK(sn.last_value == &values[5], "Comm_free(a): the freed keyval's value");

    CHECK_MPI(MPI_Comm_free_keyval(&ku));
    CHECK_MPI(MPI_Comm_free_keyval(&kd));
    CHECK_EQ_INT(sd.copies + sd.deletes, 0,
                 "the DUP_FN keyval's extra state was touched");
}

/* The MPI-1 names are deprecated (Open MPI's header says so) but still in
 * MPI-3.1. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void check_mpi1_names(void)
{
    struct seen s = {0};
    int k;
    void *v = NULL;
    int flag = -1;
    MPI_Comm a, b;

    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &a));
    CHECK_MPI(MPI_Keyval_create(copy_next, delete_count, &k, &s));
    CHECK_MPI(MPI_Attr_put(a, k, &values[3]));
    CHECK_MPI(MPI_Attr_get(a, k, &v, &flag));
    CHECK_EQ_INT(flag, 1, "Attr_get: flag");
    CHECK(v == &values[3], "Attr_get: value");
    CHECK_MPI(MPI_Comm_dup(a, &b));
    CHECK(get(b, k, 1, "Keyval_create copy") == &values[4],
          "MPI-1 copy callback on Comm_dup");
    CHECK_MPI(MPI_Attr_delete(a, k));
    CHECK_EQ_INT(s.deletes, 1, "Attr_delete: delete callbacks");
    CHECK_MPI(MPI_Attr_get(a, k, &v, &flag));
    CHECK_EQ_INT(flag, 0, "Attr_get after Attr_delete");
    CHECK_MPI(MPI_Keyval_free(&k));
    CHECK_EQ_INT(k, MPI_KEYVAL_INVALID, "Keyval_free: the handle");
    CHECK_MPI(MPI_Comm_free(&b));
    CHECK_EQ_INT(s.deletes, 2, "Comm_free after Keyval_free: delete callback");
    CHECK_MPI(MPI_Comm_free(&a));
}
#pragma GCC diagnostic pop

static void check_type_attrs(void)
{
    struct seen s = {0};
    int k, kc, flag = -1;
    MPI_Datatype t, u;
    void *v = NULL;

    CHECK_MPI(MPI_Type_contiguous(3, MPI_INT, &t));
    CHECK_MPI(MPI_Type_create_keyval(type_copy, type_delete, &k, &s));
    CHECK_MPI(MPI_Type_set_attr(t, k, &values[7]));
    CHECK_MPI(MPI_Type_get_attr(t, k, &v, &flag));
    CHECK_EQ_INT(flag, 1, "Type_get_attr: flag");
    CHECK(v == &values[7], "Type_get_attr: value");
    CHECK_MPI(MPI_Type_dup(t, &u));
    CHECK_EQ_INT(s.copies, 1, "Type_dup: copy callbacks");
    v = NULL;
    CHECK_MPI(MPI_Type_get_attr(u, k, &v, &flag));
    CHECK_EQ_INT(flag, 1, "Type_get_attr on the duplicate: flag");
    CHECK(v == &values[7], "Type_get_attr on the duplicate: value");
    /* (the duplicate first: MPICH frees a type that a duplicate was made of
     * only with the duplicate) */
    CHECK_MPI(MPI_Type_free(&u));
    CHECK_EQ_INT(s.deletes, 1, "Type_free: delete callbacks");
    CHECK_MPI(MPI_Type_delete_attr(t, k));
    CHECK_EQ_INT(s.deletes, 2, "Type_delete_attr: delete callbacks");
    CHECK_MPI(MPI_Type_get_attr(t, k, &v, &flag));
    CHECK_EQ_INT(flag, 0, "Type_get_attr after Type_delete_attr");
    CHECK_MPI(MPI_Type_free(&t));
    CHECK_EQ_INT(s.deletes, 2, "Type_free without attributes");

    /* a communicator keyval is not a datatype keyval */
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN,
                                     MPI_COMM_NULL_DELETE_FN, &kc, NULL));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
    /* Open MPI 4.1 returns MPI_ERR_OTHER */
    DEVIATION("ompi-attr-keyval-class")
        CHECK_ERR_CLASS(MPI_Type_set_attr(MPI_INT, kc, &values[0]),
                        MPI_ERR_KEYVAL);
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_ARE_FATAL));
    CHECK_MPI(MPI_Comm_free_keyval(&kc));
    CHECK_MPI(MPI_Type_free_keyval(&k));
}

/* Callbacks that free keyvals while the library runs them. */
static int freeing_key = MPI_KEYVAL_INVALID, other_key = MPI_KEYVAL_INVALID;
static MPI_Comm other_comm = MPI_COMM_NULL;

static int delete_frees_own(MPI_Comm c, int key, void *v, void *extra)
{
    (void)c;
    (void)v;
    (void)extra;
    if (freeing_key == key)
        MPI_Comm_free_keyval(&freeing_key);
    return MPI_SUCCESS;
}

static int copy_drops_other(MPI_Comm old, int key, void *extra, void *in,
                            void *out, int *flag)
{
    (void)key;
    (void)extra;
    if (other_key != MPI_KEYVAL_INVALID) {
        MPI_Comm_delete_attr(old, other_key);
        MPI_Comm_free_keyval(&other_key);
    }
    other_comm = old;
    *(void **)out = in;
    *flag = 1;
    return MPI_SUCCESS;
}

static void check_reentrant_callbacks(void)
{
    int k, a, flag = -1;
    MPI_Comm c, d;
    void *v;

    /* setting again runs the old value's delete callback, which frees the
     * keyval: the new value is still set, and is deleted with c */
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_frees_own,
                                     &k, NULL));
    freeing_key = k;
    CHECK_MPI(MPI_Comm_set_attr(c, k, &values[0]));
    CHECK_MPI(MPI_Comm_set_attr(c, k, &values[1]));
    CHECK_MPI(MPI_Comm_get_attr(c, k, &v, &flag));
    CHECK_EQ_INT(flag, 1, "set again after the keyval was freed: flag");
    CHECK(v == &values[1], "set again after the keyval was freed: value");
    CHECK_MPI(MPI_Comm_free(&c));

    /* a copy callback that deletes the next attribute and frees its keyval:
     * the duplicate does not get it */
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c));
    CHECK_MPI(MPI_Comm_create_keyval(copy_drops_other, MPI_COMM_NULL_DELETE_FN,
                                     &a, NULL));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_DUP_FN, MPI_COMM_NULL_DELETE_FN,
                                     &other_key, NULL));
    k = other_key;
    CHECK_MPI(MPI_Comm_set_attr(c, a, &values[2]));
    CHECK_MPI(MPI_Comm_set_attr(c, other_key, &values[3]));
    CHECK_MPI(MPI_Comm_dup(c, &d));
    CHECK(other_comm == c, "the copy callback ran");
    CHECK_MPI(MPI_Comm_get_attr(d, a, &v, &flag));
    CHECK_EQ_INT(flag, 1, "the copying attribute is on the duplicate");
    CHECK_MPI(MPI_Comm_free(&d));
    CHECK_MPI(MPI_Comm_free(&c));
    CHECK_MPI(MPI_Comm_free_keyval(&a));
    (void)k;
}

/* Attributes of MPI_COMM_SELF: deleted first thing in MPI_Finalize. */
static int order[4], norder, finalized_inside = -1, rank_inside = -1;

static int self_delete(MPI_Comm comm, int key, void *value, void *extra)
{
    (void)comm;
    (void)key;
    (void)extra;
    if (norder < 4)
        order[norder++] = *(int *)value;
    MPI_Finalized(&finalized_inside);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_inside);
    return MPI_SUCCESS;
}

int main(int argc, char **argv)
{
    static int first = 1, second = 2;
    int k1, k2, rank;

    CHECK_MPI(MPI_Init(&argc, &argv));
    check_comm_attrs();
    check_mpi1_names();
    check_type_attrs();
    check_reentrant_callbacks();

    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, self_delete, &k1,
                                     NULL));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, self_delete, &k2,
                                     NULL));
    CHECK_MPI(MPI_Comm_set_attr(MPI_COMM_SELF, k1, &first));
    CHECK_MPI(MPI_Comm_set_attr(MPI_COMM_SELF, k2, &second));

    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    rank = zr_rank(MPI_COMM_WORLD);
    CHECK_EQ_INT(norder, 0, "MPI_COMM_SELF attributes deleted before Finalize");
    CHECK_MPI(MPI_Finalize());
    CHECK_EQ_INT(norder, 2, "MPI_Finalize: MPI_COMM_SELF delete callbacks");
    CHECK_EQ_INT(order[0], 2, "MPI_Finalize: the last set is deleted first");
    CHECK_EQ_INT(order[1], 1, "MPI_Finalize: the first set is deleted last");
    CHECK_EQ_INT(finalized_inside, 0, "MPI_Finalized inside the callback");
    CHECK_EQ_INT(rank_inside, rank, "MPI_Comm_rank inside the callback");
    if (rank == 0) {
        printf("OK %s\n", TEST_NAME);
        fflush(stdout);
    }
    return 0;
}
