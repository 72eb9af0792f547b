/* comm.c - communicators and groups: Comm_rank/size (world and self),
 * Comm_get_name of the predefined communicators, Comm_set_name,
 * Comm_dup, Comm_split (parity with reversed key, equal keys, MPI_UNDEFINED),
 * Comm_split_type(MPI_COMM_TYPE_SHARED and MPI_UNDEFINED), Comm_free,
 * Comm_compare (IDENT, CONGRUENT, SIMILAR, UNEQUAL), Comm_group, Comm_create,
 * Group_size/rank/incl/excl/range_incl/translate_ranks/
 * compare/union/intersection/difference/free, MPI_GROUP_EMPTY; messages on a
 * dup'ed communicator never match messages on its parent. */
#define TEST_NAME "comm"
#include "check.h"

static int rank, size;

static void check_basic(void)
{
    char name[MPI_MAX_OBJECT_NAME];
    int len = -1, r = -1, s = -1, res = -1;

    CHECK_MPI(MPI_Comm_size(MPI_COMM_SELF, &s));
    CHECK_EQ_INT(s, 1, "MPI_Comm_size(MPI_COMM_SELF)");
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_SELF, &r));
    CHECK_EQ_INT(r, 0, "MPI_Comm_rank(MPI_COMM_SELF)");

    CHECK_MPI(MPI_Comm_get_name(MPI_COMM_WORLD, name, &len));
    CHECK_EQ_STR(name, "MPI_COMM_WORLD", "MPI_Comm_get_name(MPI_COMM_WORLD)");
    CHECK_EQ_INT(len, 14, "MPI_Comm_get_name(MPI_COMM_WORLD) resultlen");
    CHECK_MPI(MPI_Comm_get_name(MPI_COMM_SELF, name, &len));
    CHECK_EQ_STR(name, "MPI_COMM_SELF", "MPI_Comm_get_name(MPI_COMM_SELF)");
    CHECK_EQ_INT(len, 13, "MPI_Comm_get_name(MPI_COMM_SELF) resultlen");

    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, MPI_COMM_WORLD, &res));
    CHECK_EQ_INT(res, MPI_IDENT, "Comm_compare(world, world)");
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_SELF, MPI_COMM_SELF, &res));
    CHECK_EQ_INT(res, MPI_IDENT, "Comm_compare(self, self)");
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, MPI_COMM_SELF, &res));
    CHECK_EQ_INT(res, size == 1 ? MPI_CONGRUENT : MPI_UNEQUAL,
                 "Comm_compare(world, self) with %d ranks", size);
}

static void check_dup(void)
{
    MPI_Comm dup;
    char name[MPI_MAX_OBJECT_NAME];
    int len = -1, res = -1;

    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
    CHECK(dup != MPI_COMM_WORLD && dup != MPI_COMM_NULL,
          "MPI_Comm_dup returned world or null");
    CHECK_EQ_INT(zr_size(dup), size, "size of dup");
    CHECK_EQ_INT(zr_rank(dup), rank, "rank in dup");
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, dup, &res));
    CHECK_EQ_INT(res, MPI_CONGRUENT, "Comm_compare(world, dup)");
    CHECK_MPI(MPI_Comm_compare(dup, dup, &res));
    CHECK_EQ_INT(res, MPI_IDENT, "Comm_compare(dup, dup)");

    /* A new communicator's name is empty until set (names are not copied). */
    CHECK_MPI(MPI_Comm_get_name(dup, name, &len));
    CHECK_EQ_STR(name, "", "MPI_Comm_get_name of an unnamed dup");
    CHECK_EQ_INT(len, 0, "MPI_Comm_get_name of an unnamed dup: resultlen");
    CHECK_MPI(MPI_Comm_set_name(dup, "zr dup"));
    CHECK_MPI(MPI_Comm_get_name(dup, name, &len));
    CHECK_EQ_STR(name, "zr dup", "MPI_Comm_get_name after set");
    CHECK_EQ_INT(len, 6, "MPI_Comm_get_name after set: resultlen");

    CHECK_MPI(MPI_Comm_free(&dup));
    CHECK(dup == MPI_COMM_NULL, "MPI_Comm_free did not set MPI_COMM_NULL");
}

/* Messages sent on a dup never match receives on the parent and vice versa
 * (same source, same tag, receives with wildcards). */
static void check_dup_isolation(void)
{
    MPI_Comm dup;
    MPI_Request rq[2];
    MPI_Status st;
    int right = (rank + 1) % size, left = (rank + size - 1) % size;
    int a = 1000 + rank, b = 2000 + rank, got = -1, flag = -1;

    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
    /* Dup first, then world, same tag. */
    CHECK_MPI(MPI_Isend(&a, 1, MPI_INT, right, 7, dup, &rq[0]));
    CHECK_MPI(MPI_Isend(&b, 1, MPI_INT, right, 7, MPI_COMM_WORLD, &rq[1]));
    CHECK_MPI(MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG,
                       MPI_COMM_WORLD, &st));
    CHECK_EQ_INT(got, 2000 + left, "world receive got the dup message?");
    CHECK_EQ_INT(st.MPI_SOURCE, left, "world receive: source");
    CHECK_EQ_INT(st.MPI_TAG, 7, "world receive: tag");
    /* Nothing else is pending on world. */
    CHECK_MPI(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag,
                         &st));
    CHECK_EQ_INT(flag, 0, "Iprobe on world sees the dup's message");
    CHECK_MPI(MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, dup,
                       &st));
    CHECK_EQ_INT(got, 1000 + left, "dup receive");
    CHECK_EQ_INT(st.MPI_SOURCE, left, "dup receive: source");
    CHECK_MPI(MPI_Waitall(2, rq, MPI_STATUSES_IGNORE));
    CHECK_MPI(MPI_Comm_free(&dup));
}

/* World rank of the i-th member of comm (via groups). */
static int world_rank_of(MPI_Comm comm, int i)
{
    MPI_Group g, wg;
    int w = -1;
    CHECK_MPI(MPI_Comm_group(comm, &g));
    CHECK_MPI(MPI_Comm_group(MPI_COMM_WORLD, &wg));
    CHECK_MPI(MPI_Group_translate_ranks(g, 1, &i, wg, &w));
    CHECK_MPI(MPI_Group_free(&g));
    CHECK_MPI(MPI_Group_free(&wg));
    return w;
}

/* Communicators made and freed in a loop, each used for one collective: a rank's call
 * word for the new one is one it used for the last, and a peer that looks at it before
 * that rank's first call there must not take it for gone (this failed within a few
 * iterations at 3-4 ranks on one node before the word was cleared on reuse). */
static void check_split_loop(void)
{
    int it, i, sum, exp = 0;
    for (i = rank % 2; i < size; i += 2)
        exp += i;
    for (it = 0; it < 50; it++) {
        MPI_Comm c;
        sum = -1;
        CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &c));
        CHECK_MPI(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, c));
        CHECK_EQ_INT(sum, exp, "Allreduce on split %d of a loop", it);
        CHECK_MPI(MPI_Comm_free(&c));
    }
}

static void check_split(void)
{
    MPI_Comm c;
    int color = rank % 2, n, i, res = -1, sum = 0, exp_sum = 0, largest;

    /* Parity split, key reverses the order. */
    CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, color, size - rank, &c));
    n = (size - color + 1) / 2;
    largest = ((size - 1) % 2 == color) ? size - 1 : size - 2;
    CHECK_EQ_INT(zr_size(c), n, "parity split: size of color %d", color);
    CHECK_EQ_INT(zr_rank(c), (largest - rank) / 2, "parity split: my rank");
    for (i = 0; i < n; i++)
        CHECK_EQ_INT(world_rank_of(c, i), largest - 2 * i,
                     "parity split: world rank of member %d", i);
    /* Communicate inside it: sum of world ranks of the members. */
    CHECK_MPI(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, c));
    for (i = color; i < size; i += 2)
        exp_sum += i;
    CHECK_EQ_INT(sum, exp_sum, "Allreduce over parity split");
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, c, &res));
    CHECK_EQ_INT(res, size == 1 ? MPI_CONGRUENT : MPI_UNEQUAL,
                 "Comm_compare(world, parity split)");
    CHECK_MPI(MPI_Comm_free(&c));

    /* One color, reversed key: same group, different order. */
    CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, 5, -rank, &c));
    CHECK_EQ_INT(zr_rank(c), size - 1 - rank, "reversed split: my rank");
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, c, &res));
    CHECK_EQ_INT(res, size == 1 ? MPI_CONGRUENT : MPI_SIMILAR,
                 "Comm_compare(world, reversed split)");
    CHECK_MPI(MPI_Comm_free(&c));

    /* One color, equal keys: ties keep the parent's order. */
    CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, 0, 0, &c));
    CHECK_EQ_INT(zr_rank(c), rank, "equal-key split: my rank");
    CHECK_MPI(MPI_Comm_compare(MPI_COMM_WORLD, c, &res));
    CHECK_EQ_INT(res, MPI_CONGRUENT, "Comm_compare(world, equal-key split)");
    CHECK_MPI(MPI_Comm_free(&c));

    /* MPI_UNDEFINED gives MPI_COMM_NULL; rank % 3 == 2 opts out. */
    CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD,
                             rank % 3 == 2 ? MPI_UNDEFINED : rank % 3, rank,
                             &c));
    if (rank % 3 == 2) {
        CHECK(c == MPI_COMM_NULL, "MPI_UNDEFINED color: expected "
                                  "MPI_COMM_NULL");
    } else {
        CHECK(c != MPI_COMM_NULL, "color %d: got MPI_COMM_NULL", rank % 3);
        CHECK_EQ_INT(zr_size(c), (size - rank % 3 + 2) / 3,
                     "mod-3 split: size of color %d", rank % 3);
        CHECK_EQ_INT(zr_rank(c), rank / 3, "mod-3 split: my rank");
        CHECK_MPI(MPI_Comm_free(&c));
    }
}

static void check_split_type(void)
{
    MPI_Comm c;
    int n, r, leader, i, *leaders, cnt;

    CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank,
                                  MPI_INFO_NULL, &c));
    CHECK(c != MPI_COMM_NULL, "split_type(SHARED) gave MPI_COMM_NULL");
    n = zr_size(c);
    r = zr_rank(c);
    CHECK(n >= 1 && n <= size, "split_type(SHARED): size %d of %d", n, size);
    /* The test harness knows how many ranks share a node (e.g. 2 emulated
     * nodes x 2 ranks in network namespaces). */
    if (getenv("ZR_EXPECT_SHARED_SIZE"))
        CHECK_EQ_INT(n, atoi(getenv("ZR_EXPECT_SHARED_SIZE")),
                     "split_type(SHARED): size ($ZR_EXPECT_SHARED_SIZE)");
    /* key = world rank: members keep world order, so my rank is the number
     * of members with a smaller world rank. */
    leader = world_rank_of(c, 0);
    CHECK(leader <= rank, "split_type: first member %d > me %d", leader,
          rank);
    for (i = 1; i < n; i++)
        CHECK(world_rank_of(c, i) > world_rank_of(c, i - 1),
              "split_type(SHARED): members not in key order");
    CHECK_EQ_INT(world_rank_of(c, r), rank, "split_type: my own entry");
    /* Consistency: the number of world ranks naming my leader is my size. */
    leaders = malloc(sizeof(int) * (size_t)size);
    CHECK_MPI(MPI_Allgather(&leader, 1, MPI_INT, leaders, 1, MPI_INT,
                            MPI_COMM_WORLD));
    for (cnt = 0, i = 0; i < size; i++)
        cnt += leaders[i] == leader;
    CHECK_EQ_INT(cnt, n, "ranks sharing my node leader vs my shared size");
    free(leaders);
    CHECK_MPI(MPI_Comm_free(&c));

    CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD,
                                  rank % 2 ? MPI_UNDEFINED
                                           : MPI_COMM_TYPE_SHARED,
                                  0, MPI_INFO_NULL, &c));
    if (rank % 2) {
        CHECK(c == MPI_COMM_NULL, "split_type(MPI_UNDEFINED): expected NULL");
    } else {
        CHECK(c != MPI_COMM_NULL, "split_type(SHARED) for even rank: NULL");
        CHECK_MPI(MPI_Comm_free(&c));
    }
}

static void check_groups(void)
{
    MPI_Group wg, g, g2, u, x, d;
    int *ranks, *out, i, n, res = -1, v = -1, r3[3], o3[3];

    CHECK_MPI(MPI_Comm_group(MPI_COMM_WORLD, &wg));
    CHECK_MPI(MPI_Group_size(wg, &n));
    CHECK_EQ_INT(n, size, "Group_size(world group)");
    CHECK_MPI(MPI_Group_rank(wg, &v));
    CHECK_EQ_INT(v, rank, "Group_rank(world group)");
    CHECK_MPI(MPI_Group_size(MPI_GROUP_EMPTY, &n));
    CHECK_EQ_INT(n, 0, "Group_size(MPI_GROUP_EMPTY)");
    CHECK_MPI(MPI_Group_rank(MPI_GROUP_EMPTY, &v));
    CHECK_EQ_INT(v, MPI_UNDEFINED, "Group_rank(MPI_GROUP_EMPTY)");

    /* Even world ranks in decreasing order. */
    n = (size + 1) / 2;
    ranks = malloc(sizeof(int) * (size_t)size);
    out = malloc(sizeof(int) * (size_t)size);
    for (i = 0; i < n; i++)
        ranks[i] = 2 * (n - 1 - i);
    CHECK_MPI(MPI_Group_incl(wg, n, ranks, &g));
    CHECK_MPI(MPI_Group_size(g, &v));
    CHECK_EQ_INT(v, n, "Group_incl(evens reversed): size");
    CHECK_MPI(MPI_Group_rank(g, &v));
    CHECK_EQ_INT(v, rank % 2 ? MPI_UNDEFINED : n - 1 - rank / 2,
                 "Group_incl(evens reversed): my rank");
    /* translate world -> g for every world rank, plus MPI_PROC_NULL */
    for (i = 0; i < size; i++)
        ranks[i] = i;
    CHECK_MPI(MPI_Group_translate_ranks(wg, size, ranks, g, out));
    for (i = 0; i < size; i++)
        CHECK_EQ_INT(out[i], i % 2 ? MPI_UNDEFINED : n - 1 - i / 2,
                     "translate world rank %d into evens-reversed", i);
    v = MPI_PROC_NULL;
    CHECK_MPI(MPI_Group_translate_ranks(wg, 1, &v, g, &res));
    CHECK_EQ_INT(res, MPI_PROC_NULL, "translate MPI_PROC_NULL");

    /* Range incl of the same set: (n-1)*2 down to 0 step -2. */
    {
        int range[1][3];
        range[0][0] = 2 * (n - 1);
        range[0][1] = 0;
        range[0][2] = -2;
        CHECK_MPI(MPI_Group_range_incl(wg, 1, range, &g2));
        CHECK_MPI(MPI_Group_compare(g, g2, &res));
        CHECK_EQ_INT(res, MPI_IDENT, "Group_compare(incl, range_incl)");
        CHECK_MPI(MPI_Group_free(&g2));
    }

    /* Excl the odd ranks: same members, increasing order. */
    for (i = 0, v = 0; i < size; i++)
        if (i % 2)
            ranks[v++] = i;
    CHECK_MPI(MPI_Group_excl(wg, v, ranks, &g2));
    CHECK_MPI(MPI_Group_compare(g, g2, &res));
    CHECK_EQ_INT(res, n == 1 ? MPI_IDENT : MPI_SIMILAR,
                 "Group_compare(evens reversed, evens)");
    CHECK_MPI(MPI_Group_compare(wg, g2, &res));
    CHECK_EQ_INT(res, size == 1 ? MPI_IDENT : MPI_UNEQUAL,
                 "Group_compare(world, evens)");

    /* union(evens, world) = evens first then the odds (in world order);
     * intersection(world, evens reversed) = evens in world order;
     * difference(world, evens) = odds in world order. */
    CHECK_MPI(MPI_Group_union(g2, wg, &u));
    CHECK_MPI(MPI_Group_size(u, &v));
    CHECK_EQ_INT(v, size, "Group_union size");
    for (i = 0; i < size; i++)
        ranks[i] = i;
    CHECK_MPI(MPI_Group_translate_ranks(u, size, ranks, wg, out));
    for (i = 0; i < size; i++)
        CHECK_EQ_INT(out[i], i < n ? 2 * i : 2 * (i - n) + 1,
                     "union(evens, world) member %d", i);
    CHECK_MPI(MPI_Group_intersection(wg, g, &x));
    CHECK_MPI(MPI_Group_compare(x, g2, &res));
    CHECK_EQ_INT(res, MPI_IDENT, "intersection(world, evens reversed)");
    CHECK_MPI(MPI_Group_difference(wg, g, &d));
    CHECK_MPI(MPI_Group_size(d, &v));
    CHECK_EQ_INT(v, size / 2, "difference(world, evens) size");
    for (i = 0; i < size / 2; i++)
        ranks[i] = i;
    if (size / 2 > 0) {
        CHECK_MPI(MPI_Group_translate_ranks(d, size / 2, ranks, wg, out));
        for (i = 0; i < size / 2; i++)
            CHECK_EQ_INT(out[i], 2 * i + 1, "difference member %d", i);
    }
    /* translate several ranks at once, incl. MPI_PROC_NULL in the middle
     * (into g: evens reversed) and into the empty group. */
    r3[0] = 0;
    r3[1] = MPI_PROC_NULL;
    r3[2] = size - 1;
    CHECK_MPI(MPI_Group_translate_ranks(wg, 3, r3, g, o3));
    CHECK_EQ_INT(o3[0], n - 1, "translate 0 into evens reversed");
    CHECK_EQ_INT(o3[1], MPI_PROC_NULL, "translate PROC_NULL (middle)");
    CHECK_EQ_INT(o3[2], (size - 1) % 2 ? MPI_UNDEFINED : 0,
                 "translate %d into evens reversed", size - 1);
    CHECK_MPI(MPI_Group_translate_ranks(wg, 3, r3, MPI_GROUP_EMPTY, o3));
    CHECK_EQ_INT(o3[0], MPI_UNDEFINED, "translate 0 into GROUP_EMPTY");
    CHECK_EQ_INT(o3[2], MPI_UNDEFINED, "translate %d into GROUP_EMPTY",
                 size - 1);
    /* MPI-3.1 6.3.1: MPI_PROC_NULL always translates to MPI_PROC_NULL.
     * MPICH 4.0.2 and Open MPI 4.1.4 answer MPI_UNDEFINED when the target
     * is the empty group. */
    DEVIATION("translate-procnull-empty")
        CHECK_EQ_INT(o3[1], MPI_PROC_NULL, "translate PROC_NULL into EMPTY");

    CHECK_MPI(MPI_Group_free(&u));
    CHECK_MPI(MPI_Group_free(&x));
    CHECK_MPI(MPI_Group_free(&d));
    CHECK_MPI(MPI_Group_free(&g2));
    CHECK(g2 == MPI_GROUP_NULL, "Group_free did not set MPI_GROUP_NULL");

    /* Comm_create from the evens-reversed group. */
    {
        MPI_Comm c;
        int sum = -1, exp = 0;
        CHECK_MPI(MPI_Comm_create(MPI_COMM_WORLD, g, &c));
        if (rank % 2) {
            CHECK(c == MPI_COMM_NULL, "Comm_create: non-member got a comm");
        } else {
            CHECK(c != MPI_COMM_NULL, "Comm_create: member got NULL");
            CHECK_EQ_INT(zr_size(c), n, "Comm_create: size");
            CHECK_EQ_INT(zr_rank(c), n - 1 - rank / 2, "Comm_create: rank");
            CHECK_MPI(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, c));
            for (i = 0; i < size; i += 2)
                exp += i;
            CHECK_EQ_INT(sum, exp, "Allreduce on Comm_create comm");
            /* rank 0 of c is the largest even world rank */
            v = rank;
            CHECK_MPI(MPI_Bcast(&v, 1, MPI_INT, 0, c));
            CHECK_EQ_INT(v, 2 * (n - 1), "Bcast from rank 0 of c");
            CHECK_MPI(MPI_Comm_free(&c));
        }
    }

    CHECK_MPI(MPI_Group_free(&g));
    CHECK_MPI(MPI_Group_free(&wg));
    CHECK(wg == MPI_GROUP_NULL, "Group_free did not set MPI_GROUP_NULL");
    free(ranks);
    free(out);
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);

    check_basic();
    check_dup();
    check_dup_isolation();
    check_split();
    check_split_loop();
    check_split_type();
    check_groups();
    return zr_finish();
}
