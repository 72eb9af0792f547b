#!/usr/bin/env bash
# Collective latency (barrier, bcast, allreduce, reduce, allgather; 4 B .. 1 MiB) at 2 and
# 4 ranks: zerorank vs Open MPI vs MPICH, one C source (benches/c/coll_bench.c) compiled
# with zrcc, mpicc.openmpi and mpicc.mpich, each run under its own launcher (zrun,
# mpirun.openmpi --oversubscribe, mpiexec.mpich), alternating the implementations within
# every round, each round starting with the next one. Also the start-up time of `<launcher> -np 2 ./hello` (wall time, median).
#
# usage: benches/coll.sh [ROUNDS]        (default 3 rounds; run from anywhere)
# env:
#   IMPLS="zerorank openmpi mpich"   implementations to run (default: all three; the
#                                    missing ones are skipped with a warning)
#   NPS="2 4"                        rank counts
#   STARTUP_RUNS=11                  runs of hello per implementation for start-up timing
#   ZR_NO_BUILD=1                    do not run cargo build (use target/release as it is)
#   COLL_BENCH_SCALE, COLL_BENCH_BUDGET   passed to coll_bench (see its header)
#   OUT=target/coll-bench            where binaries, raw outputs and the report go
#   TIMEOUT=600                      seconds allowed per benchmark run
# Output: raw lines in $OUT/all.txt, the markdown report on stdout and in $OUT/report.md.
# The report also groups the rounds by the machine's state, from the cache-line round trip
# coll_bench measures beside each point (see its header): ratios within one state compare
# like with like on a machine whose cross-core latency swings.
# Medians are over rounds of each run's per-size median (rank 0); "avg-max" is the
# median over rounds of the max over ranks of the per-rank average. Ratios are
# zerorank / other (< 1 means zerorank is faster).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
ROUNDS=${1:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [ROUNDS]  (ROUNDS >= 1)" >&2; exit 2; }
OUT=${OUT:-target/coll-bench}
IMPLS=${IMPLS:-"zerorank openmpi mpich"}
NPS=${NPS:-"2 4"}
STARTUP_RUNS=${STARTUP_RUNS:-11}
TO=${TIMEOUT:-600}
mkdir -p "$OUT"
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
unset ZR_XFAIL

warn() { echo "coll.sh: warning: $*" >&2; }

# compiler and launcher of each implementation
cc_of() {
    case $1 in
    zerorank) echo "$ROOT/target/release/zrcc" ;;
    openmpi) echo mpicc.openmpi ;;
    mpich) echo mpicc.mpich ;;
    esac
}
# launcher_of <impl> <np>: sets the array L to the launcher command line
launcher_of() {
    case $1 in
    zerorank) L=("$ROOT/target/release/zrun" -n "$2") ;;
    openmpi) L=(mpirun.openmpi --oversubscribe -np "$2") ;;
    mpich) L=(mpiexec.mpich -n "$2") ;;
    esac
}

if [[ " $IMPLS " == *" zerorank "* && ${ZR_NO_BUILD:-0} != 1 ]]; then
    cargo build --release -p zerorank-mpi -p zerorank-transport --lib --bins || exit 1
fi

impls=()
for impl in $IMPLS; do
    case $impl in
    zerorank | openmpi | mpich) ;;
    *) echo "coll.sh: unknown implementation '$impl' (zerorank, openmpi, mpich)" >&2; exit 2 ;;
    esac
    cc=$(cc_of "$impl")
    if ! command -v "$cc" >/dev/null 2>&1; then
        warn "$impl: $cc not found, skipped"
        continue
    fi
    if ! "$cc" -O2 -o "$OUT/coll_bench-$impl" benches/c/coll_bench.c >"$OUT/build-$impl.log" 2>&1 ||
        ! "$cc" -O2 -o "$OUT/hello-$impl" mpi-shim/capi/tests/c/hello.c \
            -Impi-shim/capi/tests/c >>"$OUT/build-$impl.log" 2>&1; then
        warn "$impl: building with $cc failed, skipped:"
        sed 's/^/    /' "$OUT/build-$impl.log" | tail -20 >&2
        continue
    fi
    impls+=("$impl")
done
((${#impls[@]} > 0)) || { echo "coll.sh: nothing to run" >&2; exit 1; }
echo "# implementations: ${impls[*]}  nps: $NPS  rounds: $ROUNDS  out: $OUT" >&2

: >"$OUT/all.txt"
: >"$OUT/startup.txt"
fails=0
for r in $(seq 1 "$ROUNDS"); do
    # Each round starts with the next implementation: none always runs right after the
    # same one (MPICH busy-polling 4 ranks on 2 cores for minutes was followed, more often
    # than chance, by rounds in the machine's slow state).
    order=()
    for ((k = 0; k < ${#impls[@]}; k++)); do
        order+=("${impls[(k + r - 1) % ${#impls[@]}]}")
    done
    for np in $NPS; do
        for impl in "${order[@]}"; do
            echo "== round $r: $impl np=$np" >&2
            log=$OUT/$impl.np$np.r$r
            launcher_of "$impl" "$np"
            timeout -k 10 "$TO" "${L[@]}" "$OUT/coll_bench-$impl" "$impl" \
                >"$log.out" 2>"$log.err" </dev/null
            rc=$?
            if ((rc != 0)); then
                echo "!! $impl np=$np round $r: exit $rc; stderr:" >&2
                tail -20 "$log.err" >&2
                fails=$((fails + 1))
            fi
            grep '^coll ' "$log.out" >>"$OUT/all.txt"
        done
    done
done

# Start-up: wall time of `<launcher> -np 2 ./hello`, the implementations alternating.
for _ in $(seq 1 "$STARTUP_RUNS"); do
    for impl in "${impls[@]}"; do
        launcher_of "$impl" 2
        t0=$EPOCHREALTIME
        if timeout -k 10 60 "${L[@]}" "$OUT/hello-$impl" >/dev/null 2>"$OUT/startup-$impl.err" </dev/null; then
            t1=$EPOCHREALTIME
            echo "startup $impl $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" \
                >>"$OUT/startup.txt"
        else
            echo "!! start-up run of $impl failed:" >&2
            tail -5 "$OUT/startup-$impl.err" >&2
        fi
    done
done

python3 - "$OUT/all.txt" "$OUT/startup.txt" "${impls[@]}" <<'PY' | tee "$OUT/report.md"
import collections, statistics, sys
allf, startf, impls = sys.argv[1], sys.argv[2], sys.argv[3:]
d = collections.defaultdict(list)  # (op, np, bytes, field, impl) -> values over rounds
for line in open(allf):
    p = line.split()
    if len(p) < 6 or p[0] != "coll":
        continue
    impl, op, np, size = p[1], p[2], int(p[3]), int(p[4])
    for kv in p[5:]:
        k, v = kv.split("=")
        d[(op, np, size, k, impl)].append(float(v))
ops = ["barrier", "bcast", "allreduce", "reduce", "allgather"]
nps = sorted({k[1] for k in d})
others = [i for i in impls if i != "zerorank"]

def med(k):
    return statistics.median(d[k]) if k in d else None

def fmt(v):
    if v is None:
        return "-"
    return "%.2f" % v if v < 100 else "%.0f" % v

def size_name(b):
    if b >= 1 << 20: return "%d MiB" % (b >> 20)
    if b >= 1 << 10: return "%d KiB" % (b >> 10)
    return "%d B" % b

def table(field, title):
    print("\n### %s, microseconds\n" % title)
    for np in nps:
        print("\n%d ranks:\n" % np)
        hdr = ["op", "size"] + impls
        if "zerorank" in impls:
            hdr += ["zr/%s" % o for o in others]
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for op in ops:
            sizes = sorted({k[2] for k in d if k[0] == op and k[1] == np})
            for s in sizes:
                vals = {i: med((op, np, s, field, i)) for i in impls}
                row = [op, size_name(s) if op != "barrier" else "-"]
                row += [fmt(vals[i]) for i in impls]
                if "zerorank" in impls:
                    for o in others:
                        z, b = vals["zerorank"], vals[o]
                        row.append("%.2f" % (z / b) if z is not None and b else "-")
                print("| " + " | ".join(row) + " |")

# Rounds by machine state: a line is "fast" when both probes of the cache-line round trip
# between ranks 0 and 1 (rtt0, rtt1: before and after its timed loop) are below FAST_NS,
# "slow" when both are at or above it, and left out when they disagree or are missing.
FAST_NS = 250
state = collections.defaultdict(list)  # (op, np, size, impl, "fast"|"slow") -> p50max
for line in open(allf):
    p = line.split()
    if len(p) < 6 or p[0] != "coll":
        continue
    kv = dict(x.split("=") for x in p[5:])
    try:
        r0, r1, v = float(kv["rtt0"]), float(kv["rtt1"]), float(kv["p50max"])
    except (KeyError, ValueError):
        continue
    if r0 < 0 or r1 < 0:
        continue
    if r0 < FAST_NS and r1 < FAST_NS:
        st_name = "fast"
    elif r0 >= FAST_NS and r1 >= FAST_NS:
        st_name = "slow"
    else:
        continue
    state[(p[2], int(p[3]), int(p[4]), p[1], st_name)].append(v)

def state_table():
    if not state:
        return
    print("\n### Slowest rank's median by machine state (cache-line round trip between "
          "ranks 0 and 1 below or above %d ns), median over the rounds in that state "
          "(rounds in brackets), microseconds\n" % FAST_NS)
    for np in sorted({k[1] for k in state}):
        print("\n%d ranks:\n" % np)
        hdr = ["op", "size"]
        for stn in ("fast", "slow"):
            hdr += ["%s %s" % (stn, i) for i in impls]
            if "zerorank" in impls:
                hdr += ["%s zr/%s" % (stn, o) for o in others]
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for op in ops:
            sizes = sorted({k[2] for k in state if k[0] == op and k[1] == np})
            for s in sizes:
                row = [op, size_name(s) if op != "barrier" else "-"]
                for stn in ("fast", "slow"):
                    vals = {}
                    for i in impls:
                        v = state.get((op, np, s, i, stn), [])
                        vals[i] = statistics.median(v) if v else None
                        row.append("%s (%d)" % (fmt(vals[i]), len(v)) if v else "-")
                    if "zerorank" in impls:
                        for o in others:
                            z, b = vals["zerorank"], vals[o]
                            row.append("%.2f" % (z / b) if z is not None and b else "-")
                print("| " + " | ".join(row) + " |")

print("## Collective latency (median over rounds)")
rounds = {i: len(d.get(("barrier", nps[0], 0, "p50", i), [])) for i in impls} if nps else {}
print("\nrounds per implementation: %s" % rounds)
table("p50max", "Median per-iteration time, slowest rank (max over ranks of each rank's median)")
state_table()
table("p50", "Median per-iteration time on rank 0")
table("avgmax", "Max over ranks of the average time")

st = collections.defaultdict(list)
for line in open(startf):
    p = line.split()
    if len(p) == 3 and p[0] == "startup":
        st[p[1]].append(float(p[2]))
print("\n## Start-up: `<launcher> -np 2 ./hello`, wall time (median of runs)\n")
print("| implementation | launcher | median s | min s | runs |")
print("|---|---|---|---|---|")
launcher = {"zerorank": "zrun", "openmpi": "mpirun.openmpi --oversubscribe", "mpich": "mpiexec.mpich"}
for i in impls:
    v = st.get(i, [])
    if v:
        print("| %s | %s | %.3f | %.3f | %d |" % (i, launcher[i], statistics.median(v), min(v), len(v)))
    else:
        print("| %s | %s | - | - | 0 |" % (i, launcher[i]))
PY
if ((fails > 0)); then
    echo "coll.sh: $fails benchmark run(s) failed (see above)" >&2
    exit 1
fi
