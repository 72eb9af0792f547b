/* graph.c - graph and distributed graph topologies: Graph_create (a ring;
 * a one-node graph leaving the other ranks MPI_COMM_NULL), Topo_test,
 * Graphdims_get, Graph_get, Graph_neighbors_count, Graph_neighbors,
 * Graph_map; Dist_graph_create_adjacent with weights and MPI_UNWEIGHTED;
 * Dist_graph_create with every edge named by rank 0 (the others name none,
 * with MPI_WEIGHTS_EMPTY); Dist_graph_neighbors_count and Dist_graph_neighbors;
 * Cart_map; MPI_ERR_TOPOLOGY for a graph query on a communicator without;
 * and the other objects mpi.h declares extern resolve (a program naming them
 * links and loads). */
#define TEST_NAME "graph"
#include "check.h"

static int rank, size, left, right;

static void check_graph(void)
{
    int *index = malloc(sizeof(int) * size), *edges = malloc(sizeof(int) * 2 * size);
    int *gi = malloc(sizeof(int) * size), *ge = malloc(sizeof(int) * 2 * size);
    int i, t = -1, nn = -1, ne = -1, nb[2], k = -1, newrank = -1, zero = 0;
    MPI_Comm g, one;

    for (i = 0; i < size; i++) {
        index[i] = 2 * (i + 1);
        edges[2 * i] = (i + size - 1) % size;
        edges[2 * i + 1] = (i + 1) % size;
    }
    CHECK_MPI(MPI_Graph_create(MPI_COMM_WORLD, size, index, edges, 0, &g));
    CHECK_MPI(MPI_Topo_test(g, &t));
    CHECK_EQ_INT(t, MPI_GRAPH, "Topo_test of a graph");
    CHECK_MPI(MPI_Graphdims_get(g, &nn, &ne));
    CHECK_EQ_INT(nn, size, "Graphdims_get: nodes");
    CHECK_EQ_INT(ne, 2 * size, "Graphdims_get: edges");
    CHECK_MPI(MPI_Graph_get(g, size, 2 * size, gi, ge));
    for (i = 0; i < size; i++)
        CHECK_EQ_INT(gi[i], index[i], "Graph_get: index[%d]", i);
    for (i = 0; i < 2 * size; i++)
        CHECK_EQ_INT(ge[i], edges[i], "Graph_get: edges[%d]", i);
    CHECK_MPI(MPI_Graph_neighbors_count(g, rank, &k));
    CHECK_EQ_INT(k, 2, "Graph_neighbors_count");
    CHECK_MPI(MPI_Graph_neighbors(g, rank, 2, nb));
    CHECK_EQ_INT(nb[0], left, "Graph_neighbors[0]");
    CHECK_EQ_INT(nb[1], right, "Graph_neighbors[1]");
    CHECK_MPI(MPI_Graph_map(MPI_COMM_WORLD, size, index, edges, &newrank));
    CHECK_EQ_INT(newrank, rank, "Graph_map");
    CHECK_MPI(MPI_Comm_free(&g));

    /* a graph of one node: the other ranks are left out */
    CHECK_MPI(MPI_Graph_create(MPI_COMM_WORLD, 1, &zero, edges, 0, &one));
    CHECK((rank == 0) == (one != MPI_COMM_NULL),
          "Graph_create of one node: rank %d got %s", rank,
          one == MPI_COMM_NULL ? "MPI_COMM_NULL" : "a communicator");
    if (one != MPI_COMM_NULL)
        CHECK_MPI(MPI_Comm_free(&one));
    free(index);
    free(edges);
    free(gi);
    free(ge);
}

static void check_adjacent(void)
{
    int sw = rank + 1, dw = rank + 2, in = -1, out = -1, w = -1, t = -1;
    int s[1], d[1], gsw[1], gdw[1];
    MPI_Comm dg;

    CHECK_MPI(MPI_Dist_graph_create_adjacent(MPI_COMM_WORLD, 1, &left, &sw, 1,
                                             &right, &dw, MPI_INFO_NULL, 0,
                                             &dg));
    CHECK_MPI(MPI_Topo_test(dg, &t));
    CHECK_EQ_INT(t, MPI_DIST_GRAPH, "Topo_test of a distributed graph");
    CHECK_MPI(MPI_Dist_graph_neighbors_count(dg, &in, &out, &w));
    CHECK_EQ_INT(in, 1, "adjacent: indegree");
    CHECK_EQ_INT(out, 1, "adjacent: outdegree");
    CHECK_EQ_INT(w, 1, "adjacent: weighted");
    CHECK_MPI(MPI_Dist_graph_neighbors(dg, 1, s, gsw, 1, d, gdw));
    CHECK_EQ_INT(s[0], left, "adjacent: source");
    CHECK_EQ_INT(gsw[0], rank + 1, "adjacent: source weight");
    CHECK_EQ_INT(d[0], right, "adjacent: destination");
    CHECK_EQ_INT(gdw[0], rank + 2, "adjacent: destination weight");
    CHECK_MPI(MPI_Comm_free(&dg));

    CHECK_MPI(MPI_Dist_graph_create_adjacent(
        MPI_COMM_WORLD, 1, &left, MPI_UNWEIGHTED, 1, &right, MPI_UNWEIGHTED,
        MPI_INFO_NULL, 0, &dg));
    CHECK_MPI(MPI_Dist_graph_neighbors_count(dg, &in, &out, &w));
    CHECK_EQ_INT(w, 0, "unweighted: weighted");
    CHECK_MPI(MPI_Comm_free(&dg));
}

static void check_general(void)
{
    int *src = malloc(sizeof(int) * size), *deg = malloc(sizeof(int) * size),
        *dst = malloc(sizeof(int) * size), *wt = malloc(sizeof(int) * size);
    int i, in = -1, out = -1, w = -1, s[1], d[1], sw[1], dw[1];
    MPI_Comm dg;

    for (i = 0; i < size; i++) {
        src[i] = i;
        deg[i] = 1;
        dst[i] = (i + 1) % size;
        wt[i] = 10 * i;
    }
    if (rank == 0)
        CHECK_MPI(MPI_Dist_graph_create(MPI_COMM_WORLD, size, src, deg, dst, wt,
                                        MPI_INFO_NULL, 0, &dg));
    else
        CHECK_MPI(MPI_Dist_graph_create(MPI_COMM_WORLD, 0, src, deg, dst,
                                        MPI_WEIGHTS_EMPTY, MPI_INFO_NULL, 0,
                                        &dg));
    CHECK_MPI(MPI_Dist_graph_neighbors_count(dg, &in, &out, &w));
    CHECK_EQ_INT(in, 1, "general: indegree");
    CHECK_EQ_INT(out, 1, "general: outdegree");
    CHECK_EQ_INT(w, 1, "general: weighted");
    CHECK_MPI(MPI_Dist_graph_neighbors(dg, 1, s, sw, 1, d, dw));
    CHECK_EQ_INT(s[0], left, "general: source");
    CHECK_EQ_INT(sw[0], 10 * left, "general: source weight");
    CHECK_EQ_INT(d[0], right, "general: destination");
    CHECK_EQ_INT(dw[0], 10 * rank, "general: destination weight");
    CHECK_MPI(MPI_Comm_free(&dg));
    free(src);
    free(deg);
    free(dst);
    free(wt);
}

static void check_cart_map_and_errors(void)
{
    int dims[1], periods[1] = {0}, newrank = -1, nn, ne;

    dims[0] = size;
    CHECK_MPI(MPI_Cart_map(MPI_COMM_WORLD, 1, dims, periods, &newrank));
    CHECK_EQ_INT(newrank, rank, "Cart_map over every rank");
    dims[0] = 1;
    CHECK_MPI(MPI_Cart_map(MPI_COMM_WORLD, 1, dims, periods, &newrank));
    /* Open MPI 4.1 gives every rank its own rank */
    DEVIATION("ompi-cart-map")
        CHECK_EQ_INT(newrank, rank == 0 ? 0 : MPI_UNDEFINED,
                     "Cart_map of one place");

    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Graphdims_get(MPI_COMM_WORLD, &nn, &ne),
                    MPI_ERR_TOPOLOGY);
#ifdef ZERORANK_MPI
    {
        /* a grid too large for an int is refused, not wrapped around */
        int big[4] = {65536, 65536, 65536, 65536}, per[4] = {0, 0, 0, 0};
        MPI_Comm dg;
        int left = (rank + size - 1) % size, right = (rank + 1) % size;
        int bad = size;
        CHECK_ERR_CLASS(MPI_Cart_map(MPI_COMM_WORLD, 4, big, per, &newrank),
                        MPI_ERR_DIMS);
        /* one rank's wrong arguments: it gets the error, the others are not
         * left waiting (erroneous in MPI; MPICH and Open MPI may hang) */
        if (rank == 0) {
            CHECK_ERR_CLASS(MPI_Dist_graph_create_adjacent(
                                MPI_COMM_WORLD, 1, &bad, MPI_UNWEIGHTED, 1,
                                &right, MPI_UNWEIGHTED, MPI_INFO_NULL, 0, &dg),
                            MPI_ERR_RANK);
        } else {
            CHECK_MPI(MPI_Dist_graph_create_adjacent(
                MPI_COMM_WORLD, 1, &left, MPI_UNWEIGHTED, 1, &right,
                MPI_UNWEIGHTED, MPI_INFO_NULL, 0, &dg));
            CHECK_MPI(MPI_Comm_free(&dg));
        }
    }
#endif
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
}

static void check_extern_objects(void)
{
    volatile const void *p;
    p = MPI_F_STATUS_IGNORE;
    p = MPI_F_STATUSES_IGNORE;
#if defined(ZERORANK_MPI) || defined(MPICH)
    p = MPI_F08_STATUS_IGNORE;
    p = MPI_F08_STATUSES_IGNORE;
    p = MPI_T_PVAR_ALL_HANDLES;
#endif
    (void)p;
    CHECK(MPI_UNWEIGHTED != MPI_WEIGHTS_EMPTY,
          "MPI_UNWEIGHTED and MPI_WEIGHTS_EMPTY are one pointer");
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    check_extern_objects();
    rank = zr_rank(MPI_COMM_WORLD);
    size = zr_size(MPI_COMM_WORLD);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;
    check_graph();
    check_adjacent();
    check_general();
    check_cart_map_and_errors();
    return zr_finish();
}
