/* coll_gather.c - data-movement collectives: Gather, Gatherv, Scatter,
 * Scatterv (every root; the largest count with roots 0 and size-1 only),
 * Allgather, Allgatherv, Alltoall, Alltoallv; with
 * MPI_IN_PLACE wherever MPI-3.1 allows it (root of Gather/Gatherv/Scatter/
 * Scatterv, everybody for Allgather/Allgatherv/Alltoall/Alltoallv); per-rank
 * counts 0, 1, 7, 1000 and 262147 (> 1 MiB); v-variants with uneven counts
 * (incl. zero), reversed displacements and gaps that must stay untouched. */
#define TEST_NAME "coll_gather"
#include "check.h"

static int rank, size;
static const int counts[] = {0, 1, 7, 1000, 262147};
#define NCOUNTS ((int)(sizeof counts / sizeof counts[0]))
#define GAP 3
#define SENT (-77)

/* element i of the block that rank `src` contributes for rank `dst` */
static int v(int src, int dst, int i) { return src * 7919 + dst * 104729 + i; }

static int *sbuf, *rbuf;

/* Every root is used for counts up to 1000; the > 1 MiB count is run with
 * roots 0 and size-1 only (keeps oversubscribed runs fast). */
static int skip_big(int root, int n)
{
    return n > 1000 && root != 0 && root != size - 1;
}
static size_t cap; /* ints in sbuf / rbuf */

static void fill(int *b, size_t n, int x)
{
    size_t i;
    for (i = 0; i < n; i++)
        b[i] = x;
}

/* v-variant layout: rank r's block has vcount(r, n) elements and lives at
 * vdispl(r, n): blocks in reverse rank order with GAP unused elements
 * between them. */
static int vcount(int r, int n) { return ((r * 5 + 2) % 4) * n / 2; }
static int vdispl(int r, int n)
{
    int d = 0, q;
    for (q = size - 1; q > r; q--)
        d += vcount(q, n) + GAP;
    return d;
}
static int vtotal(int n) { return vdispl(0, n) + vcount(0, n) + GAP; }

static void check_gather_scatter(void)
{
    int root, c, n, i, r, inplace;

    for (root = 0; root < size; root++)
        for (c = 0; c < NCOUNTS; c++)
            for (inplace = 0; inplace < 2; inplace++) {
                int ip = inplace && rank == root;
                n = counts[c];
                if (skip_big(root, n))
                    continue;
                /* Gather */
                for (i = 0; i < n; i++)
                    sbuf[i] = v(rank, root, i);
                fill(rbuf, (size_t)n * size + 1, SENT);
                if (ip)
                    for (i = 0; i < n; i++)
                        rbuf[root * n + i] = v(root, root, i);
                CHECK_MPI(MPI_Gather(ip ? MPI_IN_PLACE : sbuf, n, MPI_INT,
                                     rbuf, n, MPI_INT, root, MPI_COMM_WORLD));
                if (rank == root) {
                    for (r = 0; r < size; r++)
                        for (i = 0; i < n; i++)
                            if (rbuf[r * n + i] != v(r, root, i))
                                CHECK_EQ_INT(rbuf[r * n + i], v(r, root, i),
                                             "Gather%s root %d count %d from "
                                             "%d elem %d",
                                             ip ? "(IN_PLACE)" : "", root, n, r,
                                             i);
                    CHECK_EQ_INT(rbuf[n * size], SENT,
                                 "Gather wrote past the end");
                }

                /* Scatter: block r of the root's buffer goes to rank r */
                if (rank == root)
                    for (r = 0; r < size; r++)
                        for (i = 0; i < n; i++)
                            sbuf[r * n + i] = v(root, r, i);
                fill(rbuf, (size_t)n + 1, SENT);
                CHECK_MPI(MPI_Scatter(sbuf, n, MPI_INT,
                                      ip ? MPI_IN_PLACE : rbuf, n, MPI_INT,
                                      root, MPI_COMM_WORLD));
                if (!ip) {
                    for (i = 0; i < n; i++)
                        if (rbuf[i] != v(root, rank, i))
                            CHECK_EQ_INT(rbuf[i], v(root, rank, i),
                                         "Scatter root %d count %d elem %d",
                                         root, n, i);
                    CHECK_EQ_INT(rbuf[n], SENT, "Scatter wrote past the end");
                }
            }
}

static void check_gatherv_scatterv(void)
{
    int root, c, n, i, r, inplace, tot;
    int *cnt = malloc(sizeof(int) * (size_t)size);
    int *dsp = malloc(sizeof(int) * (size_t)size);

    for (root = 0; root < size; root++)
        for (c = 0; c < NCOUNTS; c++)
            for (inplace = 0; inplace < 2; inplace++) {
                int ip = inplace && rank == root, me;
                n = counts[c];
                if (skip_big(root, n))
                    continue;
                for (r = 0; r < size; r++) {
                    cnt[r] = vcount(r, n);
                    dsp[r] = vdispl(r, n);
                }
                tot = vtotal(n);
                me = cnt[rank];

                /* Gatherv */
                for (i = 0; i < me; i++)
                    sbuf[i] = v(rank, root, i);
                fill(rbuf, (size_t)tot, SENT);
                if (ip)
                    for (i = 0; i < me; i++)
                        rbuf[dsp[root] + i] = v(root, root, i);
                CHECK_MPI(MPI_Gatherv(ip ? MPI_IN_PLACE : sbuf, me, MPI_INT,
                                      rbuf, cnt, dsp, MPI_INT, root,
                                      MPI_COMM_WORLD));
                if (rank == root) {
                    for (r = 0; r < size; r++) {
                        for (i = 0; i < cnt[r]; i++)
                            if (rbuf[dsp[r] + i] != v(r, root, i))
                                CHECK_EQ_INT(rbuf[dsp[r] + i], v(r, root, i),
                                             "Gatherv%s root %d n %d from %d "
                                             "elem %d",
                                             ip ? "(IN_PLACE)" : "", root, n,
                                             r, i);
                        for (i = 0; i < GAP; i++)
                            CHECK_EQ_INT(rbuf[dsp[r] + cnt[r] + i], SENT,
                                         "Gatherv wrote into the gap after "
                                         "block %d",
                                         r);
                    }
                }

                /* Scatterv, same layout on the send side */
                if (rank == root) {
                    fill(sbuf, (size_t)tot, SENT);
                    for (r = 0; r < size; r++)
                        for (i = 0; i < cnt[r]; i++)
                            sbuf[dsp[r] + i] = v(root, r, i);
                }
                fill(rbuf, (size_t)me + 1, SENT);
                CHECK_MPI(MPI_Scatterv(sbuf, cnt, dsp, MPI_INT,
                                       ip ? MPI_IN_PLACE : rbuf, me, MPI_INT,
                                       root, MPI_COMM_WORLD));
                if (!ip) {
                    for (i = 0; i < me; i++)
                        if (rbuf[i] != v(root, rank, i))
                            CHECK_EQ_INT(rbuf[i], v(root, rank, i),
                                         "Scatterv root %d n %d elem %d", root,
                                         n, i);
                    CHECK_EQ_INT(rbuf[me], SENT, "Scatterv wrote past the end");
                }
            }
    free(cnt);
    free(dsp);
}

static void check_allgather(void)
{
    int c, n, i, r, inplace, tot;
    int *cnt = malloc(sizeof(int) * (size_t)size);
    int *dsp = malloc(sizeof(int) * (size_t)size);

    for (c = 0; c < NCOUNTS; c++)
        for (inplace = 0; inplace < 2; inplace++) {
            n = counts[c];
            for (i = 0; i < n; i++)
                sbuf[i] = v(rank, 0, i);
            fill(rbuf, (size_t)n * size + 1, SENT);
            if (inplace)
                for (i = 0; i < n; i++)
                    rbuf[rank * n + i] = v(rank, 0, i);
            CHECK_MPI(MPI_Allgather(inplace ? MPI_IN_PLACE : sbuf, n, MPI_INT,
                                    rbuf, n, MPI_INT, MPI_COMM_WORLD));
            for (r = 0; r < size; r++)
                for (i = 0; i < n; i++)
                    if (rbuf[r * n + i] != v(r, 0, i))
                        CHECK_EQ_INT(rbuf[r * n + i], v(r, 0, i),
                                     "Allgather%s count %d from %d elem %d",
                                     inplace ? "(IN_PLACE)" : "", n, r, i);
            CHECK_EQ_INT(rbuf[n * size], SENT, "Allgather wrote past the end");

            for (r = 0; r < size; r++) {
                cnt[r] = vcount(r, n);
                dsp[r] = vdispl(r, n);
            }
            tot = vtotal(n);
            for (i = 0; i < cnt[rank]; i++)
                sbuf[i] = v(rank, 1, i);
            fill(rbuf, (size_t)tot, SENT);
            if (inplace)
                for (i = 0; i < cnt[rank]; i++)
                    rbuf[dsp[rank] + i] = v(rank, 1, i);
            CHECK_MPI(MPI_Allgatherv(inplace ? MPI_IN_PLACE : sbuf, cnt[rank],
                                     MPI_INT, rbuf, cnt, dsp, MPI_INT,
                                     MPI_COMM_WORLD));
            for (r = 0; r < size; r++) {
                for (i = 0; i < cnt[r]; i++)
                    if (rbuf[dsp[r] + i] != v(r, 1, i))
                        CHECK_EQ_INT(rbuf[dsp[r] + i], v(r, 1, i),
                                     "Allgatherv%s n %d from %d elem %d",
                                     inplace ? "(IN_PLACE)" : "", n, r, i);
                for (i = 0; i < GAP; i++)
                    CHECK_EQ_INT(rbuf[dsp[r] + cnt[r] + i], SENT,
                                 "Allgatherv wrote into the gap after %d", r);
            }
        }
    free(cnt);
    free(dsp);
}

/* Alltoallv: the block from a to b has acount(a, b, n) elements (symmetric,
 * as MPI_IN_PLACE requires); blocks are stored in reverse rank order with
 * gaps. */
static int acount(int a, int b, int n) { return ((a + b) % 3) * n / 2; }

static void check_alltoall(void)
{
    int c, n, i, r, inplace, d;
    int *sc = malloc(sizeof(int) * (size_t)size);
    int *sd = malloc(sizeof(int) * (size_t)size);
    int *rc = malloc(sizeof(int) * (size_t)size);
    int *rd = malloc(sizeof(int) * (size_t)size);

    for (c = 0; c < NCOUNTS; c++) {
        n = counts[c];
        if ((size_t)n * (size_t)size * 2 + (size_t)size * GAP > cap)
            n = (int)((cap - (size_t)size * GAP) / (2 * (size_t)size));
        for (inplace = 0; inplace < 2; inplace++) {
            int *src = inplace ? rbuf : sbuf;
            for (r = 0; r < size; r++)
                for (i = 0; i < n; i++)
                    src[r * n + i] = v(rank, r, i);
            if (!inplace)
                fill(rbuf, (size_t)n * size + 1, SENT);
            else
                rbuf[n * size] = SENT;
            CHECK_MPI(MPI_Alltoall(inplace ? MPI_IN_PLACE : sbuf, n, MPI_INT,
                                   rbuf, n, MPI_INT, MPI_COMM_WORLD));
            for (r = 0; r < size; r++)
                for (i = 0; i < n; i++)
                    if (rbuf[r * n + i] != v(r, rank, i))
                        CHECK_EQ_INT(rbuf[r * n + i], v(r, rank, i),
                                     "Alltoall%s count %d from %d elem %d",
                                     inplace ? "(IN_PLACE)" : "", n, r, i);
            CHECK_EQ_INT(rbuf[n * size], SENT, "Alltoall wrote past the end");

            /* Alltoallv */
            for (d = 0, r = size - 1; r >= 0; r--) {
                sc[r] = rc[r] = acount(rank, r, n);
                sd[r] = rd[r] = d;
                d += sc[r] + GAP;
            }
            fill(sbuf, (size_t)d, SENT);
            fill(rbuf, (size_t)d, SENT);
            for (r = 0; r < size; r++)
                for (i = 0; i < sc[r]; i++)
                    src[sd[r] + i] = v(rank, r, i);
            CHECK_MPI(MPI_Alltoallv(inplace ? MPI_IN_PLACE : sbuf, sc, sd,
                                    MPI_INT, rbuf, rc, rd, MPI_INT,
                                    MPI_COMM_WORLD));
            for (r = 0; r < size; r++) {
                for (i = 0; i < rc[r]; i++)
                    if (rbuf[rd[r] + i] != v(r, rank, i))
                        CHECK_EQ_INT(rbuf[rd[r] + i], v(r, rank, i),
                                     "Alltoallv%s n %d from %d elem %d",
                                     inplace ? "(IN_PLACE)" : "", n, r, i);
                for (i = 0; i < GAP; i++)
                    CHECK_EQ_INT(rbuf[rd[r] + rc[r] + i], SENT,
                                 "Alltoallv wrote into the gap after %d", r);
            }
        }
    }
    free(sc);
    free(sd);
    free(rc);
    free(rd);
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    cap = (size_t)262147 * 2 * (size_t)size + (size_t)(GAP + 1) * size + 16;
    sbuf = malloc(sizeof(int) * cap);
    rbuf = malloc(sizeof(int) * cap);

    check_gather_scatter();
    check_gatherv_scatterv();
    check_allgather();
    check_alltoall();
    free(sbuf);
    free(rbuf);
    return zr_finish();
}
