#!/usr/bin/env bash
# Ping-pong latency / streaming bandwidth: zerorank vs Open MPI (sm) vs MPICH, 2 ranks.
# Usage: benches/pingpong.sh [rounds]   (run from anywhere; default 3 rounds)
# Env: TCP=1 also runs Open MPI over TCP (--mca btl tcp,self).
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
OUT=${OUT:-target/pingpong}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TO=${TIMEOUT:-300}

cargo build --release -p zerorank-benches -p zerorank-transport || exit 1
mpicc.openmpi -O2 -w -o "$OUT/pingpong-openmpi" benches/c/pingpong.c || exit 1
mpicc.mpich   -O2 -w -o "$OUT/pingpong-mpich"   benches/c/pingpong.c || exit 1

: > "$OUT/all.txt"
run() { # name round cmd...
    local name=$1 r=$2; shift 2
    echo "== round $r: $name" >&2
    timeout "$TO" "$@" > "$OUT/$name.$r.out" 2> "$OUT/$name.$r.err"
    local rc=$?
    [ $rc -ne 0 ] && { echo "!! $name round $r exit $rc; stderr:" >&2; tail -20 "$OUT/$name.$r.err" >&2; }
    grep -E '^(latency|bw) ' "$OUT/$name.$r.out" | tee -a "$OUT/all.txt"
}
for r in $(seq 1 "$ROUNDS"); do
    run zerorank "$r" ./target/release/zrun -n 2 ./target/release/zr-pingpong zerorank
    run openmpi  "$r" mpirun.openmpi -np 2 --bind-to core "$OUT/pingpong-openmpi" openmpi
    run mpich    "$r" mpiexec.mpich -n 2 "$OUT/pingpong-mpich" mpich
    if [ "${TCP:-0}" = 1 ]; then
        run openmpi-tcp "$r" mpirun.openmpi -np 2 --bind-to core --mca btl tcp,self \
            "$OUT/pingpong-openmpi" openmpi-tcp
    fi
done

# Median over rounds per (kind, impl, size, field).
python3 - "$OUT/all.txt" <<'PY'
import sys, statistics, collections
d = collections.defaultdict(list)
impls = []
for line in open(sys.argv[1]):
    p = line.split()
    kind, impl, size = p[0], p[1], int(p[2])
    if impl not in impls: impls.append(impl)
    for kv in p[3:]:
        k, v = kv.split("=")
        d[(kind, size, k, impl)].append(float(v))
med = lambda k: ("%.3f" % statistics.median(d[k]) if k[0]=="latency" else "%.0f" % statistics.median(d[k])) if k in d else "FAIL"
print("\nOne-way latency, us (median of rounds): p50 / p99")
print("%-9s" % "size" + "".join("%24s" % i for i in impls))
for s in sorted({k[1] for k in d if k[0]=="latency"}):
    print("%-9d" % s + "".join("%24s" % (med(("latency",s,"p50",i)) + " / " + med(("latency",s,"p99",i))) for i in impls))
print("\nStreaming bandwidth, MB/s (median of rounds)")
print("%-9s" % "size" + "".join("%24s" % i for i in impls))
for s in sorted({k[1] for k in d if k[0]=="bw"}):
    print("%-9d" % s + "".join("%24s" % med(("bw",s,"MBps",i)) for i in impls))
print("\nrounds per impl:", {i: len(d.get(("latency",0,"p50",i),[])) for i in impls})
PY
