#!/usr/bin/env bash
# Install what the zerorank test suite needs. Idempotent: on a machine that already has
# everything it touches neither apt nor the network.
#
# As root: installs the missing Debian packages (one `apt-get update`, only when something
# is missing). Without root: prints a loud list of what is missing (the tests that depend on
# it skip themselves) and exits 0.
#
# Exit status: non-zero only when running as root and the installation really failed.
set -euo pipefail

# Debian packages the tests use.
#   openmpi-bin libopenmpi-dev : mpicc.openmpi / mpirun.openmpi (ABI comparison tests)
#   mpich libmpich-dev         : mpicc.mpich / mpiexec.mpich (Hydra PMI-1 bootstrap tests)
#   slurm-wlm munge            : a one-node Slurm cluster for the srun tests (scripts/slurm-up.sh)
#   iproute2 iputils-ping      : `ip netns` and ping for emulated multi-node tests (scripts/netns.sh)
#   procps psmisc util-linux   : pgrep/pkill, fuser/killall, unshare/nsenter/flock
DEB_PACKAGES=(
    openmpi-bin libopenmpi-dev
    mpich libmpich-dev
    slurm-wlm munge
    iproute2 iputils-ping procps psmisc util-linux
)

log() { printf '[install-deps] %s\n' "$*" >&2; }

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == "installed" ]]
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${DEB_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
else
    log "dpkg-query not found: not a Debian system; cannot check or install Debian packages."
    log "Tests that need MPI, Slurm or network namespaces will skip themselves if their tools are absent."
    exit 0
fi

if ((${#missing[@]} == 0)); then
    log "all Debian packages present: ${DEB_PACKAGES[*]}"
elif [[ $(id -u) -ne 0 ]]; then
    {
        echo
        echo "######################################################################"
        echo "#  WARNING: not root, cannot install Debian packages the tests need."
        echo "#  Missing: ${missing[*]}"
        echo "#  Tests that depend on them will be SKIPPED."
        echo "#  To install them:"
        echo "#    sudo apt-get update && sudo apt-get install -y ${missing[*]}"
        echo "######################################################################"
        echo
    } >&2
else
    log "missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    installed_ok=0
    for attempt in 1 2; do
        # A failed update is not fatal by itself (one unreachable source makes it fail while
        # the lists we need may be fine); the install below is what counts.
        log "apt-get update (attempt $attempt)"
        timeout 600 apt-get update || log "warning: apt-get update failed (attempt $attempt)"
        log "apt-get install ${missing[*]} (attempt $attempt)"
        if timeout 1200 apt-get install -y --no-install-recommends "${apt_opts[@]}" "${missing[@]}" </dev/null; then
            installed_ok=1
            break
        fi
        log "warning: apt-get install failed (attempt $attempt)"
        ((attempt == 2)) || sleep 10
    done
    if ((installed_ok == 0)); then
        log "ERROR: could not install: ${missing[*]}"
        exit 1
    fi
    still=()
    for pkg in "${missing[@]}"; do
        is_installed "$pkg" || still+=("$pkg")
    done
    if ((${#still[@]} > 0)); then
        log "ERROR: still missing after install: ${still[*]}"
        exit 1
    fi
    log "installed: ${missing[*]}"
fi

# Cargo tools: none needed beyond cargo-nextest, which CI already has. test-all.sh falls
# back to `cargo test` when nextest is absent, so it is not installed here (building it
# from source takes minutes).
if ! cargo nextest --version >/dev/null 2>&1; then
    log "note: cargo-nextest not found; test-all.sh will use 'cargo test' instead"
fi
exit 0
