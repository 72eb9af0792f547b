/* alltoallw.c - MPI_Alltoallw and MPI_Ialltoallw: a different count and
 * type per peer (MPI_INT, a contiguous type, a strided vector) at byte
 * displacements, checked element by element with the gaps untouched; and
 * MPI_IN_PLACE with symmetric counts. */
#define TEST_NAME "alltoallw"
#include "check.h"

#define SLOT 64 /* ints per peer in the buffers */

static int rank, size;

static int val(int src, int dst, int k) { return src * 100003 + dst * 1009 + k; }

/* what rank i sends to rank j: i + j + 1 ints */
static int n_of(int i, int j) { return i + j + 1; }

static void run(int nonblocking)
{
    int *sbuf = malloc(sizeof(int) * SLOT * size),
        *rbuf = malloc(sizeof(int) * 2 * SLOT * size);
    int *sc = malloc(sizeof(int) * size), *sd = malloc(sizeof(int) * size),
        *rc = malloc(sizeof(int) * size), *rd = malloc(sizeof(int) * size);
    MPI_Datatype *st = malloc(sizeof(MPI_Datatype) * size),
                 *rt = malloc(sizeof(MPI_Datatype) * size), *vec =
                     malloc(sizeof(MPI_Datatype) * size),
                 *con = malloc(sizeof(MPI_Datatype) * size);
    int i, k;

    for (i = 0; i < size; i++) {
        int n = n_of(rank, i);
        for (k = 0; k < n; k++)
            sbuf[i * SLOT + k] = val(rank, i, k);
        sc[i] = n;
        sd[i] = i * SLOT * (int)sizeof(int);
        st[i] = MPI_INT;
        /* receive from i: MPI_INT, one contiguous type, or one strided
         * vector (every other int), by i mod 3 */
        CHECK_MPI(MPI_Type_contiguous(n, MPI_INT, &con[i]));
        CHECK_MPI(MPI_Type_commit(&con[i]));
        CHECK_MPI(MPI_Type_vector(n, 1, 2, MPI_INT, &vec[i]));
        CHECK_MPI(MPI_Type_commit(&vec[i]));
        rd[i] = i * 2 * SLOT * (int)sizeof(int);
        switch (i % 3) {
        case 0:
            rc[i] = n;
            rt[i] = MPI_INT;
            break;
        case 1:
            rc[i] = 1;
            rt[i] = con[i];
            break;
        default:
            rc[i] = 1;
            rt[i] = vec[i];
        }
    }
    for (i = 0; i < 2 * SLOT * size; i++)
        rbuf[i] = -1;
    if (nonblocking) {
        MPI_Request rq;
        CHECK_MPI(MPI_Ialltoallw(sbuf, sc, sd, st, rbuf, rc, rd, rt,
                                 MPI_COMM_WORLD, &rq));
        CHECK_MPI(MPI_Wait(&rq, MPI_STATUS_IGNORE));
    } else {
        CHECK_MPI(MPI_Alltoallw(sbuf, sc, sd, st, rbuf, rc, rd, rt,
                                MPI_COMM_WORLD));
    }
    for (i = 0; i < size; i++) {
        int n = n_of(i, rank), *b = rbuf + i * 2 * SLOT;
        for (k = 0; k < 2 * SLOT; k++) {
            int want;
            if (i % 3 == 2)
                want = (k % 2 == 0 && k / 2 < n) ? val(i, rank, k / 2) : -1;
            else
                want = k < n ? val(i, rank, k) : -1;
            CHECK_EQ_INT(b[k], want, "%s from %d: int %d",
                         nonblocking ? "Ialltoallw" : "Alltoallw", i, k);
        }
    }
    for (i = 0; i < size; i++) {
        CHECK_MPI(MPI_Type_free(&con[i]));
        CHECK_MPI(MPI_Type_free(&vec[i]));
    }
    free(sbuf);
    free(rbuf);
    free(sc);
    free(sd);
    free(rc);
    free(rd);
    free(st);
    free(rt);
    free(vec);
    free(con);
}

/* MPI_IN_PLACE: block i of the buffer goes to rank i and is replaced by
 * what rank i sends back (the counts are symmetric). */
static void run_in_place(void)
{
    int *buf = malloc(sizeof(int) * SLOT * size), *c = malloc(sizeof(int) * size),
        *d = malloc(sizeof(int) * size), i, k;
    MPI_Datatype *t = malloc(sizeof(MPI_Datatype) * size);

    for (i = 0; i < size; i++) {
        c[i] = n_of(rank, i);
        d[i] = i * SLOT * (int)sizeof(int);
        t[i] = MPI_INT;
        for (k = 0; k < SLOT; k++)
            buf[i * SLOT + k] = k < c[i] ? val(rank, i, k) : -1;
    }
    CHECK_MPI(MPI_Alltoallw(MPI_IN_PLACE, NULL, NULL, NULL, buf, c, d, t,
                            MPI_COMM_WORLD));
    for (i = 0; i < size; i++)
        for (k = 0; k < SLOT; k++)
            CHECK_EQ_INT(buf[i * SLOT + k], k < c[i] ? val(i, rank, k) : -1,
                         "in place from %d: int %d", i, k);
    free(buf);
    free(c);
    free(d);
    free(t);
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    run(0);
    run(1);
    run_in_place();
    return zr_finish();
}
