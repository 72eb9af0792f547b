/* errcodes.c - user error classes and codes: Add_error_class,
 * Add_error_code (of a user and of a predefined class), Add_error_string,
 * Error_class and Error_string of them (an empty string until one is set),
 * the MPI_LASTUSEDCODE attribute following them, a user code through
 * Comm_call_errhandler to a user handler, and (zerorank's header only)
 * MPI_ERR_ARG for a string on a predefined class. */
#define TEST_NAME "errcodes"
#include "check.h"

static int handled = -1;

static void handler(MPI_Comm *comm, int *code, ...)
{
    (void)comm;
    handled = *code;
}

static int last_used(void)
{
    int *v = NULL, flag = -1;
    CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_LASTUSEDCODE, &v, &flag));
    CHECK_EQ_INT(flag, 1, "MPI_LASTUSEDCODE: flag");
    return *v;
}

static void check_string(int code, const char *want, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = -1;
    CHECK_MPI(MPI_Error_string(code, s, &len));
    CHECK_EQ_INT(len, (int)strlen(want), "%s: length", what);
    CHECK_EQ_STR(s, want, "%s", what);
}

int main(int argc, char **argv)
{
    int before, cls, code, ocode, c = -1;
    MPI_Errhandler h;
    MPI_Comm d;

    CHECK_MPI(MPI_Init(&argc, &argv));
    before = last_used();
    CHECK(before >= MPI_ERR_LASTCODE,
          "MPI_LASTUSEDCODE %d is below MPI_ERR_LASTCODE", before);

    CHECK_MPI(MPI_Add_error_class(&cls));
    /* Open MPI 4.1 answers MPI_ERR_UNKNOWN for user classes and codes */
    CHECK_MPI(MPI_Error_class(cls, &c));
    DEVIATION("ompi-user-error-class")
        CHECK_EQ_INT(c, cls, "Error_class of a user class");
    CHECK(last_used() >= cls, "MPI_LASTUSEDCODE below the new class");
    check_string(cls, "", "Error_string before Add_error_string");

    CHECK_MPI(MPI_Add_error_code(cls, &code));
    CHECK(code != cls, "Add_error_code returned the class");
    CHECK_MPI(MPI_Error_class(code, &c));
    DEVIATION("ompi-user-error-class")
        CHECK_EQ_INT(c, cls, "Error_class of a user code");
    /* MPICH 4.0 counts classes only (0x40000001 after a code 0x40000101) */
    DEVIATION("mpich-lastusedcode")
        CHECK(last_used() >= code, "MPI_LASTUSEDCODE below the new code");

    CHECK_MPI(MPI_Add_error_code(MPI_ERR_OTHER, &ocode));
    CHECK(ocode != code && ocode != cls, "Add_error_code: a value used again");
    CHECK_MPI(MPI_Error_class(ocode, &c));
    DEVIATION("ompi-user-error-class")
        CHECK_EQ_INT(c, MPI_ERR_OTHER, "Error_class of a code of MPI_ERR_OTHER");

    CHECK_MPI(MPI_Add_error_string(cls, "zerorank test class"));
    CHECK_MPI(MPI_Add_error_string(code, "zerorank test code"));
    check_string(cls, "zerorank test class", "Error_string of the class");
    check_string(code, "zerorank test code", "Error_string of the code");
    CHECK_MPI(MPI_Add_error_string(code, "changed"));
    check_string(code, "changed", "Error_string after a second Add_error_string");

    /* a user code to a user handler */
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &d));
    CHECK_MPI(MPI_Comm_create_errhandler(handler, &h));
    CHECK_MPI(MPI_Comm_set_errhandler(d, h));
    CHECK_MPI(MPI_Comm_call_errhandler(d, code));
    CHECK_EQ_INT(handled, code, "the user code reached the handler");
    CHECK_MPI(MPI_Errhandler_free(&h));
    CHECK_MPI(MPI_Comm_free(&d));

#ifdef ZERORANK_MPI
    /* a string for a predefined class is erroneous (MPI-3.1 8.5); zerorank
     * says so, MPICH and Open MPI take it */
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    CHECK_ERR_CLASS(MPI_Add_error_string(MPI_ERR_OTHER, "mine"), MPI_ERR_ARG);
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
#endif
    return zr_finish();
}
