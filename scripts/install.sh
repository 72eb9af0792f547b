#!/usr/bin/env bash
# Install zerorank's MPI toolchain into a prefix:
#
#   <prefix>/bin/zrun               the launcher
#   <prefix>/bin/zrcc               the MPI C compiler wrapper (like mpicc)
#   <prefix>/include/mpi.h          zerorank's MPI header (MPICH ABI)
#   <prefix>/lib/libmpi.so.12       the MPI library, with the aliases
#   <prefix>/lib/libmpi.so          -> libmpi.so.12   (for -lmpi at link time)
#   <prefix>/lib/libmpich.so.12     -> libmpi.so.12   (for binaries built by MPICH's mpicc)
#   <prefix>/lib/libmpich.so        -> libmpi.so.12
#
# usage: scripts/install.sh [--prefix DIR] [--no-build]
#   --prefix DIR   where to install (default: /usr/local as root, else $HOME/.local)
#   --no-build     do not run cargo; install what is already in the target directory
#                  ($CARGO_TARGET_DIR or <repository>/target, profile release)
#   -h, --help     show this help
#
# Without --no-build it first runs
#   cargo build --release -p zerorank-mpi -p zerorank-transport --lib --bins
# An installed zrcc finds <prefix>/include/mpi.h and <prefix>/lib/libmpi.so.12 relative to
# its own location, so the prefix can be moved as a whole. Re-running the script replaces
# the files in place (each is written to a temporary name first, then renamed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

if [[ $(id -u) -eq 0 ]]; then
    PREFIX=/usr/local
else
    [[ -n ${HOME:-} ]] || die "HOME is not set: give the prefix with --prefix DIR"
    PREFIX=$HOME/.local
fi
BUILD=1

while (($# > 0)); do
    case $1 in
    --prefix)
        if (($# < 2)) || [[ -z $2 ]]; then
            die "--prefix needs a directory (see --help)"
        fi
        PREFIX=$2
        shift 2
        ;;
    --prefix=*)
        PREFIX=${1#--prefix=}
        [[ -n $PREFIX ]] || die "--prefix needs a directory (see --help)"
        shift
        ;;
    --no-build)
        BUILD=0
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown argument '$1'"
        ;;
    esac
done

target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
REL=$target_dir/release

if ((BUILD)); then
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found: install the Rust toolchain (https://rustup.rs), or use --no-build with binaries built elsewhere"
    echo "install.sh: building (cargo build --release -p zerorank-mpi -p zerorank-transport --lib --bins)"
    (cd "$ROOT" && cargo build --release -p zerorank-mpi -p zerorank-transport --lib --bins) ||
        die "cargo build failed"
fi

HEADER=$ROOT/mpi-shim/capi/include/mpi.h
for f in "$REL/zrun" "$REL/zrcc" "$REL/libmpi.so" "$HEADER"; do
    if [[ ! -f $f ]]; then
        if ((BUILD)); then
            die "$f is missing after the build"
        fi
        die "$f is missing: build first (cargo build --release -p zerorank-mpi -p zerorank-transport --lib --bins) or run without --no-build"
    fi
done

# Make the prefix absolute (zrcc puts absolute -I/-L/rpath paths into commands).
mkdir -p "$PREFIX" 2>/dev/null || die "cannot create the prefix '$PREFIX' (permissions? choose another with --prefix)"
PREFIX=$(cd "$PREFIX" && pwd)
for d in bin include lib; do
    mkdir -p "$PREFIX/$d" 2>/dev/null || die "cannot create $PREFIX/$d"
    [[ -w $PREFIX/$d ]] || die "$PREFIX/$d is not writable (run as root, or choose another prefix with --prefix)"
done

# put <src> <dest> <mode>: copy to a temporary name beside dest, then rename over it, so a
# running program that has the old file open or mapped is not disturbed.
put() {
    local src=$1 dest=$2 mode=$3 tmp
    tmp=$(dirname "$dest")/.$(basename "$dest").tmp.$$
    cp -f "$src" "$tmp" || die "cannot copy $src to $tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest" || { rm -f "$tmp"; die "cannot install $dest"; }
    echo "  $dest"
}

# alias <name>: <prefix>/lib/<name> -> libmpi.so.12
alias_lib() {
    local link=$PREFIX/lib/$1 tmp
    tmp=$PREFIX/lib/.$1.tmp.$$
    ln -sfn libmpi.so.12 "$tmp" || die "cannot create the link $tmp"
    mv -Tf "$tmp" "$link" || { rm -f "$tmp"; die "cannot install $link"; }
    echo "  $link -> libmpi.so.12"
}

echo "install.sh: installing into $PREFIX"
put "$REL/zrun" "$PREFIX/bin/zrun" 755
put "$REL/zrcc" "$PREFIX/bin/zrcc" 755
put "$HEADER" "$PREFIX/include/mpi.h" 644
put "$REL/libmpi.so" "$PREFIX/lib/libmpi.so.12" 755
alias_lib libmpi.so
alias_lib libmpich.so.12
alias_lib libmpich.so

if command -v readelf >/dev/null 2>&1; then
    soname=$(readelf -d "$PREFIX/lib/libmpi.so.12" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    if [[ $soname != libmpi.so.12 ]]; then
        echo "install.sh: warning: the library's soname is '${soname:-none}', expected libmpi.so.12" >&2
    fi
fi

echo "install.sh: done. Use it with:"
case ":${PATH:-}:" in
*":$PREFIX/bin:"*) ;;
*) echo "  export PATH=$PREFIX/bin:\$PATH" ;;
esac
echo "  zrcc -O2 -o my_prog my_prog.c && zrun -n 4 ./my_prog"
echo "  LD_LIBRARY_PATH=$PREFIX/lib zrun -n 4 ./my_mpich_built_prog   # binaries built by MPICH's mpicc"
