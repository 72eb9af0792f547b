#!/usr/bin/env bash
# Run the whole zerorank test suite, installing what it needs first. This is exactly what
# CI runs (.ci/run), and what the README tells developers to run.
#
# Steps, in order:
#   1. scripts/install-deps.sh      Debian packages (MPI, Slurm, iproute2...) when root
#   2. scripts/slurm-up.sh          a one-node Slurm cluster, if the script exists and we are
#                                   root; exports ZR_SLURM=1 when it came up, else ZR_SLURM=0
#   3. cargo fmt --check            } fail fast:
#   4. cargo clippy -D warnings     } the run stops at the first of these that fails
#   5. cargo build (debug, all targets) and cargo build --release (libs, bins, examples)
#   6. tests: cargo nextest run (or cargo test when nextest is absent)   } all of these run
#   7. loom model check of the shared-memory ring (--cfg loom)           } even if one fails;
#   8. doc tests (cargo test --doc; nextest does not run doctests), and  } exit 1 at the end
#      cargo doc with RUSTDOCFLAGS=-D warnings                           }
#
# Every step is bounded by `timeout`, and the whole run by a budget (ZR_CI_BUDGET seconds,
# default 5100 = 85 min), so it never hangs CI.
#
# Environment (all optional):
#   ZR_SKIP_INSTALL=1   do not run install-deps.sh
#   ZR_SKIP_LOOM=1      do not run the loom step
#   ZR_CI_BUDGET=N      total time budget in seconds
#   CARGO_TARGET_DIR    honoured; the integration tests find release binaries through
#                       ZR_TARGET_DIR (exported here: the absolute target directory; zrun is
#                       "$ZR_TARGET_DIR/release/zrun", examples "$ZR_TARGET_DIR/release/examples/")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

START=$SECONDS
BUDGET=${ZR_CI_BUDGET:-5100}
FAILED=()   # names of steps that failed (non-fatal ones; fatal ones exit at once)
SKIPPED=()  # names of steps that were skipped, with the reason

export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-auto}
if [[ ${CI:-} == "true" ]]; then
    # No incremental compilation in CI: a fresh clone gains nothing from it.
    export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
fi
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
export ZR_TARGET_DIR=${ZR_TARGET_DIR:-$target_dir}

is_root() { [[ $(id -u) -eq 0 ]]; }

banner() {
    echo
    echo "========================================================================"
    echo "== $*"
    echo "== (t+$((SECONDS - START))s)"
    echo "========================================================================"
}

warn_loud() {
    {
        echo
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        local line
        for line in "$@"; do echo "!!  $line"; done
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo
    } >&2
}

# Logs of every step, for the final test count and for reading after a CI run.
LOG_DIR=$ZR_TARGET_DIR/test-all-logs
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log

slug() { tr -c 'A-Za-z0-9\n' '-' <<<"$1" | tr -s '-' | sed 's/-$//'; }

# run_step <name> <timeout-seconds> <command...>
# Runs the command under `timeout` (capped by what is left of the budget), shows its output
# and saves it to $LOG_DIR/<name>.log, prints the elapsed seconds, and returns the
# command's status (124 on timeout).
run_step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - (SECONDS - START) - 60))
    if ((left < 60)); then
        warn_loud "$name: not run, the time budget (${BUDGET}s) is used up"
        return 124
    fi
    ((limit <= left)) || limit=$left
    banner "$name  [timeout ${limit}s]"
    echo "+ $*"
    local t0=$SECONDS rc=0 log
    log="$LOG_DIR/$(slug "$name").log"
    # tee runs in a process substitution rather than a pipeline, so that a stray process
    # that escaped the timeout and still holds the output open cannot block the run.
    local out tee_pid i
    exec {out}> >(tee "$log")
    tee_pid=$!
    timeout -k 30 "$limit" "$@" </dev/null >&"$out" 2>&1 || rc=$?
    exec {out}>&-
    for ((i = 0; i < 50; i++)); do
        kill -0 "$tee_pid" 2>/dev/null || break
        sleep 0.1
    done
    local dt=$((SECONDS - t0))
    if ((rc == 0)); then
        echo "-- $name: OK in ${dt}s"
    elif ((rc == 124 || rc == 137)); then
        warn_loud "$name: TIMED OUT after ${dt}s (limit ${limit}s)"
    else
        echo "-- $name: FAILED (exit $rc) in ${dt}s"
    fi
    return "$rc"
}

# Add up the test counts that nextest and cargo test printed in the step logs.
N_PASSED=0
N_FAILED=0
N_SKIPPED=0
count_tests() {
    local f line n what
    shopt -s nullglob
    for f in "$LOG_DIR"/*.log; do
        # nextest: "Summary [ 1.2s] 25 tests run: 23 passed, 1 failed, 1 timed out, 0 skipped"
        line=$(sed 's/\x1b\[[0-9;]*m//g' "$f" | grep -E '^ *Summary \[.*tests? run:' | tail -n 1 || true)
        if [[ -n $line ]]; then
            while read -r n what; do
                case $what in
                passed) N_PASSED=$((N_PASSED + n)) ;;
                failed | "timed out") N_FAILED=$((N_FAILED + n)) ;;
                skipped) N_SKIPPED=$((N_SKIPPED + n)) ;;
                esac
            done < <(grep -oE '[0-9]+ (passed|failed|timed out|skipped)' <<<"$line")
            continue
        fi
        # cargo test: "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; ..."
        while read -r line; do
            while read -r n what; do
                case $what in
                passed) N_PASSED=$((N_PASSED + n)) ;;
                failed) N_FAILED=$((N_FAILED + n)) ;;
                ignored) N_SKIPPED=$((N_SKIPPED + n)) ;;
                esac
            done < <(grep -oE '[0-9]+ (passed|failed|ignored)' <<<"$line")
        done < <(sed 's/\x1b\[[0-9;]*m//g' "$f" | grep -E '^test result:' || true)
    done
    shopt -u nullglob
}

# A step whose failure stops the run at once (fmt, clippy, builds).
fatal_step() {
    local name=$1
    if ! run_step "$@"; then
        summary
        echo "test-all: FAILED at '$name'; later steps were not run."
        exit 1
    fi
}

# A step whose failure is recorded; the run goes on.
soft_step() {
    local name=$1
    run_step "$@" || FAILED+=("$name")
}

summary() {
    count_tests
    banner "Summary"
    echo "total time: $((SECONDS - START))s"
    echo "ZR_SLURM=${ZR_SLURM:-0}  ZR_TARGET_DIR=$ZR_TARGET_DIR  logs: $LOG_DIR"
    local s
    for s in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do echo "skipped step: $s"; done
    for s in "${FAILED[@]+"${FAILED[@]}"}"; do echo "FAILED step:  $s"; done
}

# ---------------------------------------------------------------------------------------
# 1. Dependencies
if [[ ${ZR_SKIP_INSTALL:-0} == 1 ]]; then
    SKIPPED+=("install-deps (ZR_SKIP_INSTALL=1)")
else
    # A real install failure (as root) is recorded but does not stop the run: the tests that
    # need the missing tools skip or fail on their own, and the run still ends non-zero.
    soft_step "install-deps" 1800 ./scripts/install-deps.sh
fi

# 2. Slurm (scripts/slurm-up.sh is optional and owned by another part of the project)
export ZR_SLURM=0
if [[ ! -e scripts/slurm-up.sh ]]; then
    warn_loud "scripts/slurm-up.sh not found: Slurm tests will be skipped (ZR_SLURM=0)"
    SKIPPED+=("slurm-up (no scripts/slurm-up.sh)")
elif ! is_root; then
    warn_loud "not root: cannot start Slurm; Slurm tests will be skipped (ZR_SLURM=0)"
    SKIPPED+=("slurm-up (not root)")
elif run_step "slurm-up" 300 bash scripts/slurm-up.sh; then
    export ZR_SLURM=1
else
    warn_loud "scripts/slurm-up.sh failed: Slurm tests will be skipped (ZR_SLURM=0)"
    SKIPPED+=("slurm-up (failed)")
fi

# 3-5. Lint and build: fail fast
fatal_step "cargo fmt" 300 cargo fmt --all -- --check
fatal_step "cargo clippy" 2400 cargo clippy --workspace --all-targets -- -D warnings
fatal_step "cargo build (debug)" 2400 cargo build --workspace --all-targets
fatal_step "cargo build (release)" 2400 cargo build --release --workspace --lib --bins --examples

if command -v shellcheck >/dev/null 2>&1; then
    # Advisory only: CI machines do not have shellcheck unless someone installed it.
    mapfile -t shell_scripts < <(ls .ci/run scripts/*.sh benches/coll.sh mpi-shim/capi/tests/c/run.sh 2>/dev/null)
    run_step "shellcheck (advisory)" 120 shellcheck "${shell_scripts[@]}" ||
        warn_loud "shellcheck found problems (advisory, not counted as a failure)"
fi

# 6. Tests
if cargo nextest --version >/dev/null 2>&1; then
    soft_step "tests (nextest)" 2400 cargo nextest run --workspace --no-fail-fast --no-tests=warn
else
    warn_loud "cargo-nextest not found: using 'cargo test' (no per-test timeout, no serial group)"
    soft_step "tests (cargo test)" 2400 cargo test --workspace --no-fail-fast
fi

# 7. Loom model check of the shm ring, in its own target dir (different cfg = different build)
if [[ ${ZR_SKIP_LOOM:-0} == 1 ]]; then
    SKIPPED+=("loom (ZR_SKIP_LOOM=1)")
elif grep -rqE 'cfg\(.*\bloom\b' transport/src 2>/dev/null; then
    # LOOM_MAX_PREEMPTIONS bounds the search (loom's own default is unbounded); a test that
    # sets its own bound with loom::model::Builder is not affected.
    if soft_step "loom (shm::ring, shm::collslot)" 1500 env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$ROOT/target/loom" \
        LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
        cargo test -p zerorank-transport --release --lib shm::; then
        if ! grep -qE '^test result: ok\. [1-9][0-9]* passed' "$LOG_DIR/loom-shm-ring-shm-collslot.log"; then
            warn_loud "loom: cfg(loom) is in transport/src but no shm::ring test ran under loom"
        fi
    fi
else
    warn_loud "loom: transport/src has no cfg(loom) code yet; loom step skipped"
    SKIPPED+=("loom (no cfg(loom) in transport/src)")
fi

# 8. Doc tests, and the API docs build without warnings (broken or private links)
soft_step "doc tests" 900 cargo test --workspace --doc
soft_step "cargo doc -D warnings" 900 env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Leftovers: tests must clean up after themselves (advisory).
leftover_ns=$(ip netns list 2>/dev/null | awk '{print $1}' | tr '\n' ' ' || true)
if [[ -n ${leftover_ns// /} ]]; then
    warn_loud "network namespaces left behind after the tests: $leftover_ns"
fi

summary
status=0
if ((${#FAILED[@]} > 0)); then
    echo "test-all: FAILED (${#FAILED[@]} step(s): ${FAILED[*]})"
    status=1
else
    echo "test-all: all steps passed"
fi
# The last line: the total over nextest, loom and doc tests.
echo "tests: $N_PASSED passed, $N_FAILED failed, $N_SKIPPED skipped"
exit "$status"
