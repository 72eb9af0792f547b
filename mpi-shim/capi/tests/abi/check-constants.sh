#!/usr/bin/env bash
# check-constants.sh [HEADER_DIR]
#
# Checks that zerorank's mpi.h (in HEADER_DIR, by default ../../include next to
# this script) keeps the MPICH ABI, by comparing it with MPICH's own header:
#
#   1. constants: a C program prints the value and the C type of every
#      constant, handle, error class and attribute key, the sizes of the basic
#      types and the layout of MPI_Status; it is built once with our header
#      (gcc) and once with MPICH's (mpicc.mpich) and the two outputs must be
#      identical;
#   2. coverage: every MPI_ macro MPICH defines is in our header or on the
#      list of deliberate omissions below, and every macro of ours is checked;
#   3. functions: our prototypes (read back with gcc -aux-info) are redeclared
#      after MPICH's header, so any conflicting signature is a compile error;
#      every MPI_/PMPI_ function of MPICH is declared or deliberately omitted
#      (zerorank's own MPIX_Ring_* extension is left out of the comparison);
#   4. exact types: C++ probe functions taking each function, typedef and
#      exported object are compiled against both headers and their mangled
#      names compared (this catches long vs long long, a missing const, a
#      different struct tag ...);
#   5. hygiene: a small MPI program compiles warning-free against our header
#      as C89/C99/C11 and C++, and unchanged against MPICH's.
#
# Exit status: 0 all identical, 1 a difference (each one is printed),
# 2 a usage or setup problem, 77 skipped (MPICH's compiler wrapper is missing).
#
# Environment: MPICC (default mpicc.mpich), CC (gcc), CXX (g++).

set -u -o pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hdr_dir=${1:-$script_dir/../../include}
if ! hdr_dir=$(cd "$hdr_dir" 2>/dev/null && pwd); then
    echo "check-constants: no such directory: ${1:-$script_dir/../../include}" >&2
    exit 2
fi
if [ ! -f "$hdr_dir/mpi.h" ]; then
    echo "check-constants: $hdr_dir/mpi.h does not exist" >&2
    exit 2
fi

MPICC=${MPICC:-mpicc.mpich}
CC=${CC:-gcc}
CXX=${CXX:-g++}
if ! command -v "$MPICC" >/dev/null 2>&1; then
    echo "check-constants: SKIPPED: '$MPICC' (MPICH's compiler wrapper) is not installed;"
    echo "check-constants: install it with: apt-get install libmpich-dev"
    exit 77
fi
for tool in "$CC" "$CXX" nm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "check-constants: '$tool' is needed but not installed" >&2
        exit 2
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/zr-abi-check.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
ok() { echo "ok:   $*"; }

# Builds with our header use only -I$hdr_dir; builds with MPICH's use its
# wrapper, which adds MPICH's include directory (and library when linking).
ours_cc() { "$CC" -I"$hdr_dir" "$@"; }
mpich_cc() { "$MPICC" "$@"; }

# ---------------------------------------------------------------------------
# What is compared
# ---------------------------------------------------------------------------

# Every integer or pointer constant of the header, including enumerators.
CONSTANTS="
MPI_COMM_WORLD MPI_COMM_SELF MPI_GROUP_EMPTY MPI_COMM_NULL MPI_GROUP_NULL MPI_DATATYPE_NULL
MPI_ERRHANDLER_NULL MPI_OP_NULL MPI_INFO_NULL MPI_WIN_NULL MPI_REQUEST_NULL MPI_MESSAGE_NULL
MPI_FILE_NULL MPI_MESSAGE_NO_PROC MPI_INFO_ENV

MPI_CHAR MPI_SIGNED_CHAR MPI_UNSIGNED_CHAR MPI_WCHAR MPI_SHORT MPI_UNSIGNED_SHORT MPI_INT
MPI_UNSIGNED MPI_LONG MPI_UNSIGNED_LONG MPI_LONG_LONG_INT MPI_LONG_LONG MPI_UNSIGNED_LONG_LONG
MPI_FLOAT MPI_DOUBLE MPI_LONG_DOUBLE MPI_BYTE MPI_PACKED MPI_LB MPI_UB MPI_INT8_T MPI_INT16_T
MPI_INT32_T MPI_INT64_T MPI_UINT8_T MPI_UINT16_T MPI_UINT32_T MPI_UINT64_T MPI_C_BOOL
MPI_C_FLOAT_COMPLEX MPI_C_COMPLEX MPI_C_DOUBLE_COMPLEX MPI_C_LONG_DOUBLE_COMPLEX MPI_AINT
MPI_OFFSET MPI_COUNT MPI_CXX_BOOL MPI_CXX_FLOAT_COMPLEX MPI_CXX_DOUBLE_COMPLEX
MPI_CXX_LONG_DOUBLE_COMPLEX MPI_FLOAT_INT MPI_DOUBLE_INT MPI_LONG_INT MPI_SHORT_INT
MPI_LONG_DOUBLE_INT MPI_2INT MPI_CHARACTER MPI_LOGICAL MPI_INTEGER MPI_REAL MPI_DOUBLE_PRECISION
MPI_COMPLEX MPI_DOUBLE_COMPLEX MPI_2INTEGER MPI_2REAL MPI_2DOUBLE_PRECISION MPI_INTEGER1
MPI_INTEGER2 MPI_INTEGER4 MPI_INTEGER8 MPI_INTEGER16 MPI_REAL4 MPI_REAL8 MPI_REAL16 MPI_COMPLEX8
MPI_COMPLEX16 MPI_COMPLEX32 MPI_TYPECLASS_REAL MPI_TYPECLASS_INTEGER MPI_TYPECLASS_COMPLEX

MPI_MAX MPI_MIN MPI_SUM MPI_PROD MPI_LAND MPI_BAND MPI_LOR MPI_BOR MPI_LXOR MPI_BXOR MPI_MINLOC
MPI_MAXLOC MPI_REPLACE MPI_NO_OP

MPI_ERRORS_ARE_FATAL MPI_ERRORS_RETURN MPI_ERRORS_ABORT

MPI_SUCCESS MPI_ERR_BUFFER MPI_ERR_COUNT MPI_ERR_TYPE MPI_ERR_TAG MPI_ERR_COMM MPI_ERR_RANK
MPI_ERR_ROOT MPI_ERR_GROUP MPI_ERR_OP MPI_ERR_TOPOLOGY MPI_ERR_DIMS MPI_ERR_ARG MPI_ERR_UNKNOWN
MPI_ERR_TRUNCATE MPI_ERR_OTHER MPI_ERR_INTERN MPI_ERR_IN_STATUS MPI_ERR_PENDING MPI_ERR_REQUEST
MPI_ERR_ACCESS MPI_ERR_AMODE MPI_ERR_BAD_FILE MPI_ERR_CONVERSION MPI_ERR_DUP_DATAREP
MPI_ERR_FILE_EXISTS MPI_ERR_FILE_IN_USE MPI_ERR_FILE MPI_ERR_INFO MPI_ERR_INFO_KEY
MPI_ERR_INFO_VALUE MPI_ERR_INFO_NOKEY MPI_ERR_IO MPI_ERR_NAME MPI_ERR_NO_MEM MPI_ERR_NOT_SAME
MPI_ERR_NO_SPACE MPI_ERR_NO_SUCH_FILE MPI_ERR_PORT MPI_ERR_QUOTA MPI_ERR_READ_ONLY
MPI_ERR_SERVICE MPI_ERR_SPAWN MPI_ERR_UNSUPPORTED_DATAREP MPI_ERR_UNSUPPORTED_OPERATION
MPI_ERR_WIN MPI_ERR_BASE MPI_ERR_LOCKTYPE MPI_ERR_KEYVAL MPI_ERR_RMA_CONFLICT MPI_ERR_RMA_SYNC
MPI_ERR_SIZE MPI_ERR_DISP MPI_ERR_ASSERT MPI_ERR_RMA_RANGE MPI_ERR_RMA_ATTACH MPI_ERR_RMA_SHARED
MPI_ERR_RMA_FLAVOR MPI_T_ERR_MEMORY MPI_T_ERR_NOT_INITIALIZED MPI_T_ERR_CANNOT_INIT
MPI_T_ERR_INVALID_INDEX MPI_T_ERR_INVALID_ITEM MPI_T_ERR_INVALID_HANDLE MPI_T_ERR_OUT_OF_HANDLES
MPI_T_ERR_OUT_OF_SESSIONS MPI_T_ERR_INVALID_SESSION MPI_T_ERR_CVAR_SET_NOT_NOW
MPI_T_ERR_CVAR_SET_NEVER MPI_T_ERR_PVAR_NO_STARTSTOP MPI_T_ERR_PVAR_NO_WRITE
MPI_T_ERR_PVAR_NO_ATOMIC MPI_T_ERR_INVALID_NAME MPI_T_ERR_INVALID MPI_ERR_SESSION
MPI_ERR_PROC_ABORTED MPI_ERR_VALUE_TOO_LARGE MPI_T_ERR_NOT_SUPPORTED MPI_ERR_LASTCODE

MPI_PROC_NULL MPI_ANY_SOURCE MPI_ROOT MPI_ANY_TAG MPI_UNDEFINED MPI_BOTTOM MPI_IN_PLACE
MPI_STATUS_IGNORE MPI_STATUSES_IGNORE MPI_ERRCODES_IGNORE MPI_ARGV_NULL MPI_ARGVS_NULL

MPI_MAX_PROCESSOR_NAME MPI_MAX_ERROR_STRING MPI_MAX_LIBRARY_VERSION_STRING MPI_MAX_OBJECT_NAME
MPI_MAX_PORT_NAME MPI_MAX_INFO_KEY MPI_MAX_INFO_VAL MPI_MAX_DATAREP_STRING MPI_MAX_STRINGTAG_LEN
MPI_MAX_PSET_NAME_LEN

MPI_THREAD_SINGLE MPI_THREAD_FUNNELED MPI_THREAD_SERIALIZED MPI_THREAD_MULTIPLE
MPI_BSEND_OVERHEAD

MPI_IDENT MPI_CONGRUENT MPI_SIMILAR MPI_UNEQUAL MPI_COMM_TYPE_SHARED MPI_COMM_TYPE_HW_GUIDED
MPI_COMM_TYPE_HW_UNGUIDED MPI_GRAPH MPI_CART MPI_DIST_GRAPH

MPI_KEYVAL_INVALID MPI_TAG_UB MPI_HOST MPI_IO MPI_WTIME_IS_GLOBAL MPI_UNIVERSE_SIZE
MPI_LASTUSEDCODE MPI_APPNUM MPI_WIN_BASE MPI_WIN_SIZE MPI_WIN_DISP_UNIT MPI_WIN_CREATE_FLAVOR
MPI_WIN_MODEL

MPI_ORDER_C MPI_ORDER_FORTRAN MPI_DISTRIBUTE_BLOCK MPI_DISTRIBUTE_CYCLIC MPI_DISTRIBUTE_NONE
MPI_DISTRIBUTE_DFLT_DARG MPI_COMBINER_NAMED MPI_COMBINER_DUP MPI_COMBINER_CONTIGUOUS
MPI_COMBINER_VECTOR MPI_COMBINER_HVECTOR_INTEGER MPI_COMBINER_HVECTOR MPI_COMBINER_INDEXED
MPI_COMBINER_HINDEXED_INTEGER MPI_COMBINER_HINDEXED MPI_COMBINER_INDEXED_BLOCK
MPI_COMBINER_STRUCT_INTEGER MPI_COMBINER_STRUCT MPI_COMBINER_SUBARRAY MPI_COMBINER_DARRAY
MPI_COMBINER_F90_REAL MPI_COMBINER_F90_COMPLEX MPI_COMBINER_F90_INTEGER MPI_COMBINER_RESIZED
MPI_COMBINER_HINDEXED_BLOCK

MPI_LOCK_EXCLUSIVE MPI_LOCK_SHARED MPI_MODE_NOCHECK MPI_MODE_NOSTORE MPI_MODE_NOPUT
MPI_MODE_NOPRECEDE MPI_MODE_NOSUCCEED MPI_WIN_FLAVOR_CREATE MPI_WIN_FLAVOR_ALLOCATE
MPI_WIN_FLAVOR_DYNAMIC MPI_WIN_FLAVOR_SHARED MPI_WIN_SEPARATE MPI_WIN_UNIFIED

MPI_MODE_CREATE MPI_MODE_RDONLY MPI_MODE_WRONLY MPI_MODE_RDWR MPI_MODE_DELETE_ON_CLOSE
MPI_MODE_UNIQUE_OPEN MPI_MODE_EXCL MPI_MODE_APPEND MPI_MODE_SEQUENTIAL MPI_SEEK_SET MPI_SEEK_CUR
MPI_SEEK_END MPI_DISPLACEMENT_CURRENT

MPI_T_ENUM_NULL MPI_T_CVAR_HANDLE_NULL MPI_T_PVAR_HANDLE_NULL MPI_T_PVAR_SESSION_NULL
MPI_T_VERBOSITY_INVALID MPI_T_VERBOSITY_USER_BASIC MPI_T_VERBOSITY_USER_DETAIL
MPI_T_VERBOSITY_USER_ALL MPI_T_VERBOSITY_TUNER_BASIC MPI_T_VERBOSITY_TUNER_DETAIL
MPI_T_VERBOSITY_TUNER_ALL MPI_T_VERBOSITY_MPIDEV_BASIC MPI_T_VERBOSITY_MPIDEV_DETAIL
MPI_T_VERBOSITY_MPIDEV_ALL MPI_T_BIND_INVALID MPI_T_BIND_NO_OBJECT MPI_T_BIND_MPI_COMM
MPI_T_BIND_MPI_DATATYPE MPI_T_BIND_MPI_ERRHANDLER MPI_T_BIND_MPI_FILE MPI_T_BIND_MPI_GROUP
MPI_T_BIND_MPI_OP MPI_T_BIND_MPI_REQUEST MPI_T_BIND_MPI_WIN MPI_T_BIND_MPI_MESSAGE
MPI_T_BIND_MPI_INFO MPI_T_SCOPE_INVALID MPI_T_SCOPE_CONSTANT MPI_T_SCOPE_READONLY
MPI_T_SCOPE_LOCAL MPI_T_SCOPE_GROUP MPI_T_SCOPE_GROUP_EQ MPI_T_SCOPE_ALL MPI_T_SCOPE_ALL_EQ
MPI_T_PVAR_CLASS_INVALID MPI_T_PVAR_CLASS_STATE MPI_T_PVAR_CLASS_LEVEL MPI_T_PVAR_CLASS_SIZE
MPI_T_PVAR_CLASS_PERCENTAGE MPI_T_PVAR_CLASS_HIGHWATERMARK MPI_T_PVAR_CLASS_LOWWATERMARK
MPI_T_PVAR_CLASS_COUNTER MPI_T_PVAR_CLASS_AGGREGATE MPI_T_PVAR_CLASS_TIMER
MPI_T_PVAR_CLASS_GENERIC

MPI_F_STATUS_SIZE MPI_F_SOURCE MPI_F_TAG MPI_F_ERROR
"

# Constants that are functions or function pointers: compared by what they
# are (null, or the library function MPIR_Dup_fn), not by address.
FUNCTION_CONSTANTS="
MPI_DUP_FN MPI_NULL_COPY_FN MPI_NULL_DELETE_FN MPI_COMM_DUP_FN MPI_COMM_NULL_COPY_FN
MPI_COMM_NULL_DELETE_FN MPI_TYPE_DUP_FN MPI_TYPE_NULL_COPY_FN MPI_TYPE_NULL_DELETE_FN
MPI_WIN_DUP_FN MPI_WIN_NULL_COPY_FN MPI_WIN_NULL_DELETE_FN MPI_CONVERSION_FN_NULL
"

# Handle kinds whose MPI_<Kind>_c2f / _f2c conversions are macros, with a
# sample handle for each.
CONVERSIONS="
Comm:MPI_COMM_WORLD Type:MPI_DOUBLE Group:MPI_GROUP_EMPTY Info:MPI_INFO_ENV
Request:MPI_REQUEST_NULL Op:MPI_SUM Errhandler:MPI_ERRORS_RETURN Win:MPI_WIN_NULL
Message:MPI_MESSAGE_NO_PROC
"

# Typedefs whose exact C type must be MPICH's.
TYPES="
MPI_Aint MPI_Offset MPI_Count MPI_Fint MPI_Comm MPI_Group MPI_Datatype MPI_Op MPI_Request
MPI_Message MPI_Errhandler MPI_Info MPI_Win MPI_File MPI_Status MPI_F08_status MPI_T_enum
MPI_T_cvar_handle MPI_T_pvar_handle MPI_T_pvar_session MPI_User_function
MPI_Comm_copy_attr_function MPI_Comm_delete_attr_function MPI_Type_copy_attr_function
MPI_Type_delete_attr_function MPI_Win_copy_attr_function MPI_Win_delete_attr_function
MPI_Copy_function MPI_Delete_function MPI_Comm_errhandler_function MPI_Win_errhandler_function
MPI_File_errhandler_function MPI_Comm_errhandler_fn MPI_Win_errhandler_fn MPI_File_errhandler_fn
MPI_Grequest_query_function MPI_Grequest_free_function MPI_Grequest_cancel_function
MPI_Datarep_conversion_function MPI_Datarep_extent_function
"

# Objects the library exports (their addresses differ; their types must not).
OBJECTS="
MPI_UNWEIGHTED MPI_WEIGHTS_EMPTY MPI_T_PVAR_ALL_HANDLES MPI_F_STATUS_IGNORE
MPI_F_STATUSES_IGNORE MPI_F08_STATUS_IGNORE MPI_F08_STATUSES_IGNORE
"

# Deliberately different from MPICH: we implement MPI 3.1, MPICH 4.0 says 4.0.
INFO_ONLY="MPI_VERSION MPI_SUBVERSION"

# What MPICH's header has and ours deliberately leaves out (see mpi.h).
#   macros: printf formats for MPI_Aint (MPICH-specific), the large-count
#   conversion (MPI 4.0), MPICH/ROMIO include guards, sessions (MPI 4.0)
OMITTED_MACROS="
MPI_AINT_FMT_DEC_SPEC MPI_AINT_FMT_HEX_SPEC MPI_CONVERSION_FN_NULL_C MPI_FILE_DEFINED
MPI_INCLUDED MPI_PROTO_H_INCLUDED MPI_SESSION_NULL
MPI_Session_c2f MPI_Session_f2c PMPI_Session_c2f PMPI_Session_f2c
"
#   types of MPI 4.0 features (sessions, large counts, MPI_T events) and the
#   MPI 1 MPI_Handler_function (removed in MPI 3.0)
OMITTED_TYPES="
MPI_Session MPI_Session_errhandler_function MPI_Session_errhandler_fn MPI_User_function_c
MPI_Datarep_conversion_function_c MPI_T_cb_safety MPI_T_source_order MPI_T_event_instance
MPI_T_event_registration MPI_T_event_cb_function MPI_T_event_free_cb_function
MPI_T_event_dropped_cb_function MPI_Handler_function
"
#   functions (extended regular expressions on the name without MPI_/PMPI_):
#   MPI 4.0 additions, and the MPI 1 functions removed in MPI 3.0
OMITTED_FUNCTIONS='
_c$
^Session_
^T_event_
^T_source_
^T_category_get_(num_)?events$
^(Allgather|Allgatherv|Allreduce|Alltoall|Alltoallv|Alltoallw|Barrier|Bcast|Exscan)_init$
^(Gather|Gatherv|Reduce|Reduce_scatter|Reduce_scatter_block|Scan|Scatter|Scatterv)_init$
^Neighbor_(allgather|allgatherv|alltoall|alltoallv|alltoallw)_init$
^(Psend_init|Precv_init|Pready|Pready_range|Pready_list|Parrived)$
^(Isendrecv|Isendrecv_replace|Comm_idup_with_info|Comm_create_from_group)$
^(Intercomm_create_from_groups|Group_from_session_pset|Info_get_string|Info_create_env)$
^(Address|Errhandler_create|Errhandler_get|Errhandler_set|Type_extent|Type_hindexed)$
^(Type_hvector|Type_lb|Type_struct|Type_ub)$
'

words() { tr -s ' \n' '\n\n' | sed '/^$/d'; }

# ---------------------------------------------------------------------------
# 1. Constants, sizes and layouts
# ---------------------------------------------------------------------------

{
    cat <<'EOF'
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>

/* Defined here so that both builds link; with MPICH it shadows the library's. */
int MPIR_Dup_fn(MPI_Comm oldcomm, int keyval, void *extra_state, void *attribute_val_in,
                void *attribute_val_out, int *flag)
{
    (void)oldcomm; (void)keyval; (void)extra_state;
    (void)attribute_val_in; (void)attribute_val_out; (void)flag;
    return 0;
}

typedef int (*copy_fn_ptr)(int, int, void *, void *, void *, int *);
typedef int (*delete_fn_ptr)(int, int, void *, void *);

#define TYPE_OF(x) _Generic((x),                                           \
    int: "int", unsigned int: "unsigned int", long: "long",                 \
    unsigned long: "unsigned long", long long: "long long",                 \
    unsigned long long: "unsigned long long", void *: "void *",             \
    char **: "char **", char ***: "char ***", int *: "int *",               \
    MPI_Status *: "MPI_Status *", MPI_File: "MPI_File",                     \
    MPI_T_enum: "MPI_T_enum", MPI_T_cvar_handle: "MPI_T_cvar_handle",       \
    MPI_T_pvar_handle: "MPI_T_pvar_handle",                                 \
    MPI_T_pvar_session: "MPI_T_pvar_session",                               \
    copy_fn_ptr: "attribute copy function *",                               \
    delete_fn_ptr: "attribute delete function *",                           \
    MPI_Datarep_conversion_function *: "MPI_Datarep_conversion_function *", \
    default: "(other type)")

#define SHOW(x) printf("%-34s %-18s %ld %#lx\n", #x, TYPE_OF(x), (long)(x), \
                       (unsigned long)(long)(x))
#define SHOW_FN(x) printf("%-34s %-18s %s\n", #x, TYPE_OF(x),                 \
    (x) == 0 ? "null"                                                          \
    : (void (*)(void))(x) == (void (*)(void))MPIR_Dup_fn ? "MPIR_Dup_fn"      \
    : "another function")
#define SIZE(t) printf("sizeof(%s) %zu alignof %zu type %s\n", #t, sizeof(t), \
                       _Alignof(t), TYPE_OF((t)0))
#define FIELD(t, f) printf("offsetof(%s, %s) %zu size %zu\n", #t, #f,        \
                           offsetof(t, f), sizeof(((t *)0)->f))

int main(void)
{
EOF
    for name in $CONSTANTS; do echo "    SHOW($name);"; done
    for name in $FUNCTION_CONSTANTS; do echo "    SHOW_FN($name);"; done
    for pair in $CONVERSIONS; do
        kind=${pair%%:*} sample=${pair#*:}
        for p in MPI PMPI; do
            echo "    SHOW(${p}_${kind}_c2f($sample));"
            echo "    SHOW(${p}_${kind}_f2c(${p}_${kind}_c2f($sample)));"
        done
    done
    for t in MPI_Aint MPI_Offset MPI_Count MPI_Fint MPI_Comm MPI_Group MPI_Datatype MPI_Op \
             MPI_Request MPI_Message MPI_Errhandler MPI_Info MPI_Win MPI_File MPI_T_enum \
             MPI_T_cvar_handle MPI_T_pvar_handle MPI_T_pvar_session; do
        echo "    SIZE($t);"
    done
    echo '    printf("sizeof(MPI_Status) %zu alignof %zu\n", sizeof(MPI_Status), _Alignof(MPI_Status));'
    echo '    printf("sizeof(MPI_F08_status) %zu alignof %zu\n", sizeof(MPI_F08_status), _Alignof(MPI_F08_status));'
    for f in count_lo count_hi_and_cancelled MPI_SOURCE MPI_TAG MPI_ERROR; do
        echo "    FIELD(MPI_Status, $f);"
        echo "    FIELD(MPI_F08_status, $f);"
    done
    echo '    return 0;'
    echo '}'
} >"$work/values.c"

if ! ours_cc -std=c11 -o "$work/values-ours" "$work/values.c" 2>"$work/values-ours.log"; then
    fail "the constants program does not build with our header:"
    sed 's/^/    /' "$work/values-ours.log" | head -40
elif ! mpich_cc -std=c11 -o "$work/values-mpich" "$work/values.c" 2>"$work/values-mpich.log"; then
    fail "the constants program does not build with MPICH's header:"
    sed 's/^/    /' "$work/values-mpich.log" | head -40
else
    "$work/values-ours" >"$work/values-ours.txt"
    "$work/values-mpich" >"$work/values-mpich.txt"
    n=$(wc -l <"$work/values-ours.txt")
    if diff -u --label "zerorank mpi.h" --label "MPICH mpi.h" \
        "$work/values-mpich.txt" "$work/values-ours.txt" >"$work/values.diff"; then
        ok "$n values, types, sizes and offsets are identical"
    else
        fail "values differ ('-' MPICH, '+' ours):"
        sed -n '3,$p' "$work/values.diff" | grep '^[-+]' | sed 's/^/    /'
    fi
fi

# MPI_VERSION / MPI_SUBVERSION differ on purpose; show them.
{
    echo '#include <mpi.h>'
    echo '#include <stdio.h>'
    echo 'int main(void) { printf("MPI %d.%d\n", MPI_VERSION, MPI_SUBVERSION); return 0; }'
} >"$work/version.c"
if ours_cc -o "$work/version-ours" "$work/version.c" 2>/dev/null &&
    mpich_cc -o "$work/version-mpich" "$work/version.c" 2>/dev/null; then
    echo "info: MPI_VERSION.MPI_SUBVERSION is $("$work/version-ours" | cut -d' ' -f2) here," \
        "$("$work/version-mpich" | cut -d' ' -f2) in MPICH (different on purpose)"
fi

# ---------------------------------------------------------------------------
# 2. Coverage of the macros
# ---------------------------------------------------------------------------

echo '#include <mpi.h>' >"$work/include.c"
ours_cc -std=c11 -dM -E "$work/include.c" >"$work/ours.macros" || exit 2
mpich_cc -std=c11 -dM -E "$work/include.c" >"$work/mpich.macros" || exit 2

# object-like MPI_/PMPI_ macros, and function-like ones
object_macros() { sed -nE 's/^#define (P?MPI_[A-Za-z0-9_]+)( .*)?$/\1/p' "$1" | sort -u; }
function_macros() { sed -nE 's/^#define (P?MPI_[A-Za-z0-9_]+)\(.*/\1/p' "$1" | sort -u; }

echo $CONSTANTS $FUNCTION_CONSTANTS $INFO_ONLY | words | sort -u >"$work/checked.list"
echo $OMITTED_MACROS | words | sort -u >"$work/omitted-macros.list"

object_macros "$work/ours.macros" >"$work/ours-obj.list"
object_macros "$work/mpich.macros" >"$work/mpich-obj.list"
function_macros "$work/ours.macros" >"$work/ours-fn.list"
function_macros "$work/mpich.macros" >"$work/mpich-fn.list"

unchecked=$(comm -23 "$work/ours-obj.list" "$work/checked.list")
[ -z "$unchecked" ] || fail "macros of our header that this script does not check (add them to CONSTANTS):" $unchecked
missing=$(sort -u "$work/checked.list" "$work/omitted-macros.list" | comm -23 "$work/mpich-obj.list" -)
[ -z "$missing" ] || fail "macros MPICH defines that our header lacks:" $missing
fn_diff=$(comm -3 "$work/ours-fn.list" <(comm -23 "$work/mpich-fn.list" "$work/omitted-macros.list"))
[ -z "$fn_diff" ] || fail "function-like macros differ (left: ours only, right: MPICH only):" $fn_diff
if grep -qE '^#define MPICH(_VERSION|_NAME|_NUMVERSION)? ' "$work/ours.macros"; then
    fail "our header defines MPICH or MPICH_VERSION (it must not claim to be MPICH)"
fi
grep -qE '^#define ZERORANK_MPI 1$' "$work/ours.macros" || fail "ZERORANK_MPI is not defined to 1"
if [ -z "$unchecked$missing$fn_diff" ]; then
    ok "macro coverage: $(wc -l <"$work/ours-obj.list") object-like and $(wc -l <"$work/ours-fn.list") function-like macros; MPICH's are all present or deliberately omitted"
fi

# typedefs and exported objects of each header, read from the preprocessed text
statements() { "$@" -std=c11 -E -P "$work/include.c" | tr '\n' ' ' | sed 's/{[^{}]*}//g' | tr ';' '\n' | sed 's/^ *//'; }
typedef_names() {
    grep -E '^typedef' |
        sed -E 's/.*\( *\*? *([A-Za-z_][A-Za-z0-9_]*) *\) *\(.*/\1/; t; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*) *$/\1/' |
        grep -E '^MPI_' | sort -u
}
object_names() {
    grep -E '^extern' | grep -v '(' | sed -E 's/\[[^]]*\] *$//; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*) *$/\1/' |
        grep -E '^MPI_' | sort -u
}
statements ours_cc >"$work/ours.stmts"
statements mpich_cc >"$work/mpich.stmts"
typedef_names <"$work/ours.stmts" >"$work/ours-types.list"
typedef_names <"$work/mpich.stmts" >"$work/mpich-types.list"
object_names <"$work/ours.stmts" >"$work/ours-objects.list"
object_names <"$work/mpich.stmts" >"$work/mpich-objects.list"

d=$(comm -3 "$work/ours-types.list" <(echo $TYPES | words | sort -u))
[ -z "$d" ] || fail "typedefs of our header and the TYPES list of this script differ:" $d
d2=$(comm -23 "$work/mpich-types.list" <(echo $TYPES $OMITTED_TYPES | words | sort -u))
[ -z "$d2" ] || fail "typedefs MPICH has that our header lacks:" $d2
d3=$(comm -3 "$work/ours-objects.list" <(echo $OBJECTS | words | sort -u))
[ -z "$d3" ] || fail "exported objects of our header and the OBJECTS list differ:" $d3
d4=$(comm -3 "$work/ours-objects.list" "$work/mpich-objects.list")
[ -z "$d4" ] || fail "exported objects differ from MPICH's:" $d4
[ -n "$d$d2$d3$d4" ] || ok "$(wc -l <"$work/ours-types.list") typedefs and $(wc -l <"$work/ours-objects.list") exported objects; MPICH's are all present or deliberately omitted"

# ---------------------------------------------------------------------------
# 3. Function declarations
# ---------------------------------------------------------------------------

ours_cc -std=c11 -aux-info "$work/ours.aux" -c "$work/include.c" -o "$work/include-ours.o" || exit 2
mpich_cc -std=c11 -aux-info "$work/mpich.aux" -c "$work/include.c" -o "$work/include-mpich.o" || exit 2

# our prototypes: the declarations that come from our mpi.h
grep -F "/* $hdr_dir/mpi.h:" "$work/ours.aux" | sed 's|^/\*[^*]*\*/ *||' >"$work/ours.protos"
fn_names() { sed -nE 's/^extern [^(]*[ *]([A-Za-z_][A-Za-z0-9_]*) \(.*/\1/p' | sort -u; }
# zerorank's own extension (MPIX_Ring_* and its PMPIX_ names) is not MPICH's: it is
# left out of the comparisons with MPICH's header below, and only counted.
fn_names <"$work/ours.protos" | grep -Ev '^P?MPIX_Ring_' >"$work/ours-funcs.list"
n_ext=$(fn_names <"$work/ours.protos" | grep -cE '^P?MPIX_Ring_')
sed 's|^/\*[^*]*\*/ *||' "$work/mpich.aux" | fn_names | grep -E '^(P?MPI_|MPIR_Dup_fn$)' >"$work/mpich-funcs.all"
omit_re=$(echo "$OMITTED_FUNCTIONS" | sed '/^$/d' | paste -sd '|')
sed -E 's/^P?MPI_//' "$work/mpich-funcs.all" | paste -d' ' "$work/mpich-funcs.all" - |
    awk -v re="$omit_re" '$1 == "MPIR_Dup_fn" || $2 !~ re { print $1 }' | sort -u >"$work/mpich-funcs.list"

n_mpi=$(grep -c '^MPI_' "$work/ours-funcs.list")
n_pmpi=$(grep -c '^PMPI_' "$work/ours-funcs.list")
d=$(comm -3 "$work/ours-funcs.list" "$work/mpich-funcs.list")
if [ -n "$d" ]; then
    fail "function sets differ (left column: only ours, right column: only MPICH's, omissions excluded):"
    comm -3 "$work/ours-funcs.list" "$work/mpich-funcs.list" | sed 's/^/    /'
fi
unpaired=$(comm -3 <(sed -n 's/^MPI_//p' "$work/ours-funcs.list") <(sed -n 's/^PMPI_//p' "$work/ours-funcs.list"))
[ -z "$unpaired" ] || fail "functions without both an MPI_ and a PMPI_ declaration:" $unpaired
[ -n "$d$unpaired" ] || ok "$n_mpi MPI_ and $n_pmpi PMPI_ functions (+ MPIR_Dup_fn), the same set as MPICH minus the deliberate omissions; $n_ext of zerorank's own (MPIX_Ring_*, PMPIX_Ring_*) besides"

# Redeclare each of our prototypes after MPICH's header: a conflict is an error.
{
    echo '#include <mpi.h>'
    echo "/* the types of zerorank's own MPIX_Ring_ callbacks, which MPICH's header lacks */"
    grep -E '^typedef [^;]* MPIX_Ring_[a-z_]+_fn\(' "$hdr_dir/mpi.h"
    echo '/* zerorank prototypes, as read back by gcc -aux-info */'
    cat "$work/ours.protos"
} >"$work/redeclare.c"
if mpich_cc -std=c11 -Wall -c "$work/redeclare.c" -o "$work/redeclare.o" 2>"$work/redeclare.log"; then
    ok "$(wc -l <"$work/ours.protos") prototypes redeclared after MPICH's header without conflict"
else
    fail "prototypes conflict with MPICH's:"
    grep -E 'error|note: previous' "$work/redeclare.log" | sed 's/^/    /' | head -60
fi

# ---------------------------------------------------------------------------
# 4. Exact types, through C++ name mangling
# ---------------------------------------------------------------------------

{
    echo '#include <mpi.h>'
    while read -r f; do echo "void zr_fn_$f(decltype(&$f)) {}"; done <"$work/ours-funcs.list"
    for t in $TYPES; do echo "void zr_type_$t($t *) {}"; done
    for v in $OBJECTS; do echo "void zr_object_$v(decltype(&$v)) {}"; done
} >"$work/probe.cc"
if ! "$CXX" -std=c++11 -I"$hdr_dir" -c "$work/probe.cc" -o "$work/probe-ours.o" 2>"$work/probe-ours.log"; then
    fail "the C++ type probe does not build with our header:"
    sed 's/^/    /' "$work/probe-ours.log" | head -40
elif ! mpich_cc -x c++ -std=c++11 -DMPICH_SKIP_MPICXX -c "$work/probe.cc" -o "$work/probe-mpich.o" 2>"$work/probe-mpich.log"; then
    fail "the C++ type probe does not build with MPICH's header:"
    sed 's/^/    /' "$work/probe-mpich.log" | head -40
else
    symbols() { nm -P --defined-only "$1" | awk '$1 ~ /zr_/ { print $1 }' | sort; }
    symbols "$work/probe-ours.o" >"$work/probe-ours.txt"
    symbols "$work/probe-mpich.o" >"$work/probe-mpich.txt"
    if diff "$work/probe-mpich.txt" "$work/probe-ours.txt" >/dev/null; then
        ok "$(wc -l <"$work/probe-ours.txt") functions, typedefs and objects have exactly MPICH's C++ types"
    else
        fail "exact types differ ('-' MPICH, '+' ours):"
        diff "$work/probe-mpich.txt" "$work/probe-ours.txt" | grep '^[<>]' |
            sed 's/^</-/; s/^>/+/' | { if command -v c++filt >/dev/null; then c++filt; else cat; fi; } |
            sed 's/^/    /'
    fi
fi

# ---------------------------------------------------------------------------
# 5. Header hygiene: a small program, warning-free in C and C++
# ---------------------------------------------------------------------------

cat >"$work/hello.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>

static int exchange(int rank, int size)
{
    int value = rank, received = -1;
    MPI_Status status;
    if (size < 2) {
        return MPI_SUCCESS;
    }
    if (rank == 0) {
        MPI_Send(&value, 1, MPI_INT, 1, 7, MPI_COMM_WORLD);
        MPI_Recv(&received, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
    } else if (rank == 1) {
        MPI_Recv(&received, 1, MPI_INT, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(&value, 1, MPI_INT, 0, 8, MPI_COMM_WORLD);
    }
    return received;
}

int main(int argc, char **argv)
{
    int rank, size, len, provided, count;
    double local, sum, t0;
    char name[MPI_MAX_PROCESSOR_NAME];
    MPI_Status status;
    MPI_Request request;

    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(name, &len);
    printf("hello from rank %d of %d on %s\n", rank, size, name);

    t0 = MPI_Wtime();
    exchange(rank, size);
    MPI_Irecv(&local, 1, MPI_DOUBLE, MPI_PROC_NULL, 0, MPI_COMM_WORLD, &request);
    MPI_Wait(&request, &status);
    MPI_Get_count(&status, MPI_DOUBLE, &count);

    local = (double)rank;
    MPI_Allreduce(&local, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &local, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("sum %g max %g in %g s (tick %g)\n", sum, local, MPI_Wtime() - t0, MPI_Wtick());
    }
    MPI_Finalize();
    return 0;
}
EOF
hygiene_ok=1
warn="-Wall -Wextra -Werror -pedantic"
for std in c89 c99 c11 c17; do
    if ! ours_cc -std=$std $warn -Wstrict-prototypes -c "$work/hello.c" -o "$work/hello.o" 2>"$work/hello.log"; then
        fail "the sample program does not compile cleanly as $std with our header:"
        sed 's/^/    /' "$work/hello.log" | head -20
        hygiene_ok=0
    fi
done
for std in c++98 c++11 c++17; do
    if ! "$CXX" -x c++ -std=$std $warn -I"$hdr_dir" -c "$work/hello.c" -o "$work/hello.o" 2>"$work/hello.log"; then
        fail "the sample program does not compile cleanly as $std with our header:"
        sed 's/^/    /' "$work/hello.log" | head -20
        hygiene_ok=0
    fi
done
if ! mpich_cc -std=c11 -Wall -Wextra -Werror -o "$work/hello-mpich" "$work/hello.c" 2>"$work/hello.log"; then
    fail "the sample program does not build with MPICH's header:"
    sed 's/^/    /' "$work/hello.log" | head -20
    hygiene_ok=0
fi
[ $hygiene_ok = 0 ] || ok "sample program compiles with -Wall -Wextra -Werror -pedantic as C89/C99/C11/C17 and C++98/11/17, and with MPICH"

# ---------------------------------------------------------------------------

if [ $failures -ne 0 ]; then
    echo "check-constants: $failures check(s) FAILED for $hdr_dir/mpi.h"
    exit 1
fi
echo "check-constants: $hdr_dir/mpi.h matches MPICH's ABI"
exit 0
