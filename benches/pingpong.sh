#!/usr/bin/env bash
# Ping-pong latency / streaming bandwidth: zerorank vs Open MPI (sm) vs MPICH, 2 ranks.
# Usage: benches/pingpong.sh [rounds]   (run from anywhere; default 3 rounds)
# Env: TCP=1 also runs both over TCP on loopback: Open MPI with --mca btl tcp,self, and
#      zerorank with its two ranks declared on different nodes (manual mode), so they
#      use its io_uring TCP path instead of shared memory.
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
# zerorank over TCP on loopback: rank 0 on "node" 0 and CPU 0, rank 1 on "node" 1 and CPU 1.
zr_tcp() {
    local secret port
    secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    port=$((47800 + RANDOM % 100))
    ZR_COORD=127.0.0.1:$port ZR_RANK=1 ZR_SIZE=2 ZR_NODE_ID=1 ZR_SECRET=$secret \
        taskset -c 1 ./target/release/zr-pingpong zerorank-tcp > /dev/null &
    local other=$!
    ZR_COORD=127.0.0.1:$port ZR_RANK=0 ZR_SIZE=2 ZR_NODE_ID=0 ZR_SECRET=$secret \
        taskset -c 0 ./target/release/zr-pingpong zerorank-tcp
    local rc=$?
    wait "$other" || rc=$?
    return $rc
}
export -f zr_tcp
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
        run zerorank-tcp "$r" bash -c zr_tcp
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
