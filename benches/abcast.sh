#!/usr/bin/env bash
# Ring atomic broadcast at 3 members, zerorank (replication/src/bin/zr-abcast.rs) against
# corosync 3 (benches/c/cpg_bench.c, a client of its CPG service, agreed order), set up
# the same way: one network namespace per member, joined by veth (scripts/netns.sh), in
# one run, alternating the two in every round.
#
# usage: benches/abcast.sh [ROUNDS]      (default 3; needs root, installs corosync and
#                                         libcpg-dev with apt-get when missing)
# env:   SIZES="64 1024 8192 65536 1048576"   payload bytes for the throughput runs
#        SECONDS_PER_RUN=2                    measured seconds per run (after 1 s warm-up)
#        KEEP_MIB=8                           what raw_tcp.c's receivers keep, per stream
#        ZR_NO_BUILD=1                        use target/release as it is
#        OUT=target/abcast-bench              raw outputs and report.md
#
# Measures, per implementation:
#   - throughput: every member multicasts SIZE-byte messages as fast as flow control /
#     back-pressure allows; msg/s is the deliveries one member counts per second (each
#     member delivers every message), MB/s the same in bytes; median over rounds of the
#     members' mean;
#   - send-to-delivery latency of a member's own messages, p50 and p99, at full load, at
#     a light load (300 msg/s per member, 1 KiB), and with zerorank paced at the rate
#     corosync reached at full load at 64 B in the same round (equal throughput);
#   - the time from `kill -9` of one member (zerorank: the member process; corosync: the
#     node's corosync) under full load at 64 B to the new view at a survivor;
#   - false suspicions: view changes during the measured part of the load runs (each
#     should have none);
#   - the raw TCP bandwidth of the same three namespaces (iperf3, every member streaming
#     64 KiB writes to both others at once): what one member receives per second,
#     measured right before each zerorank run at 64 KiB and above, which it is compared
#     with; and the same streams received by benches/c/raw_tcp.c into a region of
#     KEEP_MIB (default 8, zerorank's window) per stream, read through before it starts
#     over, as a receiver that keeps what it receives (zerorank's payloads) writes to
#     memory not touched for a while, where iperf3 reuses one 64 KiB buffer.
# Output: the markdown report on stdout and in $OUT/report.md.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }
SIZES=${SIZES:-"64 1024 8192 65536 1048576"}
RUN_S=${SECONDS_PER_RUN:-2}
OUT=${OUT:-target/abcast-bench}
PREFIX=zrabench
die() { echo "abcast.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, corosync)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if ! command -v corosync >/dev/null || [[ ! -e /usr/include/corosync/cpg.h ]] ||
    ! command -v iperf3 >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y corosync libcpg-dev iperf3 >"$OUT/apt.log" 2>&1 ||
        die "could not install corosync libcpg-dev iperf3 (see $OUT/apt.log)"
fi
if [[ -z ${ZR_NO_BUILD:-} ]]; then
    cargo build --release --quiet -p zerorank-replication --bins || die "cargo build failed"
fi
ZR=$PWD/target/release/zr-abcast
[[ -x $ZR ]] || die "$ZR not built"
cc -O2 -Wall -o "$OUT/cpg_bench" benches/c/cpg_bench.c -lcpg || die "could not build cpg_bench"
cc -O2 -Wall -o "$OUT/raw_tcp" benches/c/raw_tcp.c || die "could not build raw_tcp"
NETNS=$PWD/scripts/netns.sh

cleanup() {
    local pids p i
    pids=$(pgrep -f "^corosync -f -c $OUT/")
    # A clean stop first, so that corosync removes its libqb files from /dev/shm.
    [[ -n $pids ]] && kill -TERM $pids 2>/dev/null
    for i in $(seq 30); do
        pgrep -f "^corosync -f -c $OUT/" >/dev/null || break
        sleep 0.1
    done
    pkill -KILL -f "^corosync -f -c $OUT/" 2>/dev/null
    # What a killed corosync (the failover run) left: qb-<server pid>-<client pid>-... and
    # its blackbox.
    for p in $pids $(cat "$OUT"/corosync*/pid 2>/dev/null); do
        rm -rf /dev/shm/qb-corosync-"$p"-* /dev/shm/qb-"$p"-*
    done
    bash "$NETNS" down "$PREFIX" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
mapfile -t ADDR < <(bash "$NETNS" up "$PREFIX" 3) || die "netns.sh up failed"
[[ ${#ADDR[@]} -eq 3 ]] || die "netns.sh up printed ${ADDR[*]}"
export ZR_GROUP_SECRET
ZR_GROUP_SECRET=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')

start_corosync() {
    local n
    for n in 1 2 3; do
        local d=$OUT/corosync$n
        mkdir -p "$d/state"
        cat >"$d/corosync.conf" <<EOF
totem {
    version: 2
    cluster_name: zrbench
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 1000
}
nodelist {
    node {
        ring0_addr: ${ADDR[0]}
        nodeid: 1
    }
    node {
        ring0_addr: ${ADDR[1]}
        nodeid: 2
    }
    node {
        ring0_addr: ${ADDR[2]}
        nodeid: 3
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: yes
    to_logfile: no
    to_syslog: no
    timestamp: on
}
system {
    state_dir: $d/state
}
EOF
        # Its own mount namespace: corosync's pid file is /run/corosync.pid.
        setsid bash "$NETNS" exec "$PREFIX" $((n - 1)) -- unshare -m bash -c \
            "mount -t tmpfs tmpfs /run && exec corosync -f -c $d/corosync.conf" \
            >"$d/log.txt" 2>&1 &
    done
    local i
    for i in $(seq 100); do
        if grep -q "Members\[3\]" "$OUT/corosync1/log.txt" 2>/dev/null &&
            grep -q "ready to provide service" "$OUT/corosync1/log.txt"; then
            for n in 1 2 3; do
                pgrep -f "^corosync -f -c $OUT/corosync$n/" >"$OUT/corosync$n/pid"
            done
            return 0
        fi
        sleep 0.2
    done
    die "corosync did not form a 3-node membership in 20 s (see $OUT/corosync1/log.txt)"
}

now_ms() { date +%s%3N; }

# cs_cpu: CPU time (clock ticks) the corosync daemons have used so far.
cs_cpu() {
    local p t=0
    for p in $(cat "$OUT"/corosync*/pid 2>/dev/null); do
        [[ -r /proc/$p/stat ]] || continue
        # utime and stime: fields 14 and 15 (after the parenthesised name).
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}

# quiesce TAG: wait (at most 10 s) until the corosync daemons use under 5% of a core
# over 200 ms, so that no run starts while they still work off the last one's backlog;
# records how long it took and what they used during the wait in $OUT/TAG.quiesce.
quiesce() {
    local tag=$1 hz a b i start
    hz=$(getconf CLK_TCK)
    start=$(now_ms)
    for i in $(seq 50); do
        a=$(cs_cpu)
        sleep 0.2
        b=$(cs_cpu)
        (((b - a) * 1000 / hz < 10)) && break
    done
    echo "waited_ms=$(($(now_ms) - start)) last_200ms_cpu_ms=$(((b - a) * 1000 / hz))" >"$OUT/$tag.quiesce"
}

# run_zr SIZE RATE TAG [KILL_AT_MS [RUN_S]]: three zr-abcast members; outputs in
# $OUT/TAG.zr<n>, and the corosync daemons' CPU time during the run in $OUT/TAG.zr.cs_cpu
run_zr() {
    local size=$1 rate=$2 tag=$3 kill_at=${4:-} RUN_S=${5:-$RUN_S}
    quiesce "$tag.zr"
    local cpu0 hz
    cpu0=$(cs_cpu)
    hz=$(getconf CLK_TCK)
    local t0 n peers=()
    t0=$(($(now_ms) + 500))
    for n in 1 2 3; do peers+=(--peer "$n=${ADDR[n - 1]}:7300"); done
    local pids=()
    for n in 1 2 3; do
        timeout 40 bash "$NETNS" exec "$PREFIX" $((n - 1)) -- "$ZR" --id $n \
            --listen "${ADDR[n - 1]}:7300" "${peers[@]}" --found 1,2,3 --rate "$rate" \
            --size "$size" --measure-from $((t0 + 1000)) --stop-at $((t0 + 1000 + RUN_S * 1000)) \
            --until $((t0 + 1500 + RUN_S * 1000)) >"$OUT/$tag.zr$n" 2>&1 &
        pids+=($!)
    done
    if [[ -n $kill_at ]]; then
        while (($(now_ms) < t0 + kill_at)); do sleep 0.01; done
        local victim
        victim=$(pgrep -f "^$ZR --id 3 " | head -1)
        echo "kill t=$(now_ms)" >"$OUT/$tag.zr.kill"
        kill -9 "$victim"
    fi
    wait "${pids[@]}"
    echo "cs_cpu_ms=$((($(cs_cpu) - cpu0) * 1000 / hz))" >"$OUT/$tag.zr.cs_cpu"
}

# run_cs SIZE RATE TAG [KILL_AT_MS [RUN_S]]: three cpg_bench clients, one per corosync node
run_cs() {
    local size=$1 rate=$2 tag=$3 kill_at=${4:-} RUN_S=${5:-$RUN_S}
    quiesce "$tag.cs"
    local t0 n pids=()
    t0=$(($(now_ms) + 500))
    for n in 1 2 3; do
        timeout 40 bash "$NETNS" exec "$PREFIX" $((n - 1)) -- "$OUT/cpg_bench" $n "$size" "$rate" \
            $((t0 + 1000)) $((t0 + 1000 + RUN_S * 1000)) $((t0 + 1500 + RUN_S * 1000)) \
            >"$OUT/$tag.cs$n" 2>&1 &
        pids+=($!)
    done
    if [[ -n $kill_at ]]; then
        while (($(now_ms) < t0 + kill_at)); do sleep 0.01; done
        echo "kill t=$(now_ms)" >"$OUT/$tag.cs.kill"
        pkill -KILL -f "^corosync -f -c $OUT/corosync3/"
    fi
    wait "${pids[@]}"
}

# raw_keep TAG: benches/c/raw_tcp.c from every member to both others at once, RUN_S
# seconds, each receiver keeping the last KEEP_MIB it received.
raw_keep() {
    local tag=$1 i p pids=()
    quiesce "$tag.keep"
    for i in 0 1 2; do
        for p in 5301 5302; do
            timeout 30 bash "$NETNS" exec "$PREFIX" $i -- "$OUT/raw_tcp" recv $p "$RUN_S" \
                "${KEEP_MIB:-8}" >"$OUT/$tag.keep$i$p" 2>&1 &
            pids+=($!)
        done
    done
    sleep 0.3
    for i in 0 1 2; do
        timeout 30 bash "$NETNS" exec "$PREFIX" $i -- "$OUT/raw_tcp" send "${ADDR[(i + 1) % 3]}" 5301 "$RUN_S" &
        pids+=($!)
        timeout 30 bash "$NETNS" exec "$PREFIX" $i -- "$OUT/raw_tcp" send "${ADDR[(i + 2) % 3]}" 5302 "$RUN_S" &
        pids+=($!)
    done
    wait "${pids[@]}"
}

# raw_tcp TAG: iperf3 from every member to both others at once, RUN_S seconds.
raw_tcp() {
    local tag=$1 i p pids=()
    quiesce "$tag.raw"
    for i in 0 1 2; do
        for p in 5201 5202; do
            bash "$NETNS" exec "$PREFIX" $i -- iperf3 -s -p $p -D -1 >/dev/null 2>&1
        done
    done
    sleep 0.5
    for i in 0 1 2; do
        timeout 30 bash "$NETNS" exec "$PREFIX" $i -- iperf3 -c "${ADDR[(i + 1) % 3]}" -p 5201 \
            -t "$RUN_S" -l 64K -J >"$OUT/$tag.raw${i}a" 2>&1 &
        pids+=($!)
        timeout 30 bash "$NETNS" exec "$PREFIX" $i -- iperf3 -c "${ADDR[(i + 2) % 3]}" -p 5202 \
            -t "$RUN_S" -l 64K -J >"$OUT/$tag.raw${i}b" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
}

start_corosync
for r in $(seq "$ROUNDS"); do
    for s in $SIZES; do
        echo "round $r size $s" >&2
        # The bandwidth sizes are compared with raw TCP measured right before them: the
        # machine's state drifts over a round (iperf3 alone moves 10-20% in minutes).
        if ((s >= 65536)); then
            raw_keep "raw.$s.$r"
            raw_tcp "raw.$s.$r"
        fi
        run_zr "$s" 0 "tp.$s.$r"
        run_cs "$s" 0 "tp.$s.$r"
    done
    # zerorank paced at what corosync's member 1 delivered per second at 64 B, full load
    # (a third of it per member): latency at equal throughput.
    cs_rate=$(awk '/^bench /{for(i=2;i<=NF;i++){split($i,kv,"=");v[kv[1]]=kv[2]} if(v["window_ms"]>0) printf "%d", v["delivered"]*1000/v["window_ms"]/3}' "$OUT/tp.64.$r.cs1" 2>/dev/null)
    if [[ -n $cs_rate && $cs_rate -gt 0 ]]; then
        echo "$cs_rate" >"$OUT/eq.$r.rate"
        run_zr 64 "$cs_rate" "eq.$r"
    fi
    run_zr 1024 300 "light.$r"
    run_cs 1024 300 "light.$r"
done
# Failover last: it kills corosync on node 3. 8 s runs, the kill 2 s in (corosync needs
# seconds to install its new view).
run_zr 64 0 fail 2000 8
run_cs 64 0 fail 2000 8

(python3 - "$OUT" "$ROUNDS" "$SIZES" "${KEEP_MIB:-8}" <<'PY'
import re, statistics, sys, glob, os, subprocess, datetime
out, rounds, sizes, keep_mib = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
def bench(path):
    for line in open(path, errors="replace"):
        if line.startswith("bench "):
            return {k: int(v) for k, v in (x.split("=") for x in line.split()[1:])}
    return None
def views(path):
    return [int(m.group(1)) for m in re.finditer(r"view t=(\d+)", open(path, errors="replace").read())]
def run(tag, impl):
    rs = [bench(p) for p in sorted(glob.glob(f"{out}/{tag}.{impl}[123]"))]
    rs = [r for r in rs if r]
    if len(rs) < 3:
        return None
    w = rs[0]["window_ms"] / 1000
    return {
        "msgs": statistics.mean(r["delivered"] for r in rs) / w,
        "mb": statistics.mean(r["bytes"] for r in rs) / w / 1e6,
        "p50": statistics.median(r["p50_us"] for r in rs),
        "p99": statistics.median(r["p99_us"] for r in rs),
        "views": max(r["views"] for r in rs),
    }
def med(tag_fmt, impl, key):
    xs = [run(tag_fmt.format(r=r), impl) for r in range(1, rounds + 1)]
    xs = [x[key] for x in xs if x]
    return statistics.median(xs) if xs else None
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cs_ver = subprocess.run(["corosync", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
lines = ["## Ring broadcast: zerorank against corosync, 3 members in 3 network namespaces", "",
         f"zerorank {rev}, {cs_ver.strip()}, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {rounds} round(s), "
         "the two alternating within each round. Throughput: msg/s and MB/s one member delivers "
         "(median over rounds of the members' mean); latency: a member's own messages, send to delivery, "
         "median of the members' p50 / p99, µs.", "",
         "| size | zerorank msg/s | corosync msg/s | ratio | zerorank MB/s | corosync MB/s | zerorank p50 / p99 | corosync p50 / p99 | view changes under load (zr / cs) |",
         "|---|---|---|---|---|---|---|---|---|"]
def f(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
for s in sizes:
    z = {k: med("tp.%s.{r}" % s, "zr", k) for k in ("msgs", "mb", "p50", "p99", "views")}
    c = {k: med("tp.%s.{r}" % s, "cs", k) for k in ("msgs", "mb", "p50", "p99", "views")}
    ratio = z["msgs"] / c["msgs"] if z["msgs"] and c["msgs"] else None
    lines.append(f"| {s} | {f(z['msgs'])} | {f(c['msgs'])} | {f(ratio, 1)}x | {f(z['mb'], 1)} | {f(c['mb'], 1)} | "
                 f"{f(z['p50'])} / {f(z['p99'])} | {f(c['p50'])} / {f(c['p99'])} | "
                 f"{f(z['views'])} / {f(c['views'])} |")
zl = {k: med("light.{r}", "zr", k) for k in ("p50", "p99")}
cl = {k: med("light.{r}", "cs", k) for k in ("p50", "p99")}
lines += ["", f"Light load (300 msg/s per member, 1 KiB), send to delivery, µs: zerorank p50 {f(zl['p50'])}, "
          f"p99 {f(zl['p99'])}; corosync p50 {f(cl['p50'])}, p99 {f(cl['p99'])}.", ""]
eq = []
for r in range(1, rounds + 1):
    z, c = run(f"eq.{r}", "zr"), run(f"tp.64.{r}", "cs")
    try:
        rate = int(open(f"{out}/eq.{r}.rate").read())
    except (OSError, ValueError):
        continue
    if z and c:
        eq.append(f"round {r}: {3 * rate:,} msg/s, zerorank delivering {z['msgs']:,.0f}, p50 / p99 "
                  f"{z['p50']:,.0f} / {z['p99']:,.0f} against corosync's {c['p50']:,.0f} / {c['p99']:,.0f}")
if eq:
    lines += ["Equal throughput (64 B; zerorank paced at the msg/s corosync reached at full load in the same "
              "round, a third from each member), send to delivery, µs: " + "; ".join(eq) + ".", ""]
import json
def raw_mb(tag):
    """What a member received per second in iperf3 run TAG (None if incomplete)."""
    try:
        return sum(json.load(open(f"{out}/{tag}.raw{i}{ab}"))["end"]["sum_received"]["bits_per_second"] / 8e6
                   for i in range(3) for ab in "ab") / 3
    except (OSError, ValueError, KeyError):
        return None
def keep_mb(tag):
    """What a member received per second in raw_tcp run TAG, keeping what it got (None if incomplete)."""
    try:
        return sum(float(open(f"{out}/{tag}.keep{i}{p}").read().split()[0])
                   for i in range(3) for p in (5301, 5302)) / 3
    except (OSError, ValueError, IndexError):
        return None
# Per size and round: what a member received from the others against the iperf3 run
# right before it.
shares = {}
for s in sizes:
    if int(s) < 65536:
        continue
    cells, xs, ks = [], [], []
    for r in range(1, rounds + 1):
        raw_r, keep_r, z = raw_mb(f"raw.{s}.{r}"), keep_mb(f"raw.{s}.{r}"), run(f"tp.{s}.{r}", "zr")
        if raw_r and z:
            share = 100 * z["mb"] * 2 / 3 / raw_r
            xs.append(share)
            cell = f"{share:.0f}% (iperf3 {raw_r:.0f} MB/s"
            if keep_r:
                ks.append(100 * z["mb"] * 2 / 3 / keep_r)
                cell += f"; {ks[-1]:.0f}% of keeping {keep_r:.0f} MB/s"
            cells.append(cell + ")")
    if xs:
        shares[s] = (statistics.median(xs), statistics.median(ks) if ks else None, cells)
if shares:
    lines.append("Raw TCP over the same namespaces, measured right before each zerorank run at these sizes "
                 "(every member streaming 64 KiB writes to both others): iperf3, whose receiver reuses one "
                 f"64 KiB buffer, and benches/c/raw_tcp.c with receivers that keep the last {keep_mib} MiB "
                 "they received (as zerorank keeps its window). zerorank's MB/s from the other members as a "
                 "share of each, round by round:")
    for s, (m, k, cells) in shares.items():
        kk = f", of keeping {k:.0f}%" if k is not None else ""
        lines.append(f"- {int(s) // 1024} KiB: median {m:.0f}% of iperf3{kk}; " + "; ".join(cells))
# The corosync daemons stay up through zerorank's runs: what they used meanwhile.
def kv(path):
    try:
        return {k: int(v) for k, v in (x.split("=") for x in open(path).read().split())}
    except (OSError, ValueError):
        return None
cpu = [c["cs_cpu_ms"] for c in (kv(p) for p in glob.glob(f"{out}/*.zr.cs_cpu")) if c]
waits = [q["waited_ms"] for q in (kv(p) for p in glob.glob(f"{out}/*.quiesce")) if q]
if cpu:
    lines.append("")
    lines.append(f"Every run starts once the corosync daemons use under 5% of a core (waits: median "
                 f"{statistics.median(waits):.0f} ms, longest {max(waits)} ms); during zerorank's {len(cpu)} runs "
                 f"they used a median {statistics.median(cpu):.0f} ms of CPU per run (most {max(cpu)} ms).")
lines.append("")
lines.append("New view after `kill -9` under full load at 64 B, seen at member 1:")
for impl, name in (("zr", "zerorank, kill -9 of member 3's process"), ("cs", "corosync (token 1000 ms), kill -9 of node 3's corosync")):
    try:
        k = int(open(f"{out}/fail.{impl}.kill").read().split("t=")[1])
        later = [t for t in views(f"{out}/fail.{impl}1") if t >= k]
        lines.append(f"- {name}: " + (f"{later[0] - k} ms" if later else "no new view before the run ended"))
    except (OSError, IndexError, ValueError) as e:
        lines.append(f"- {name}: not measured ({e})")
print("\n".join(lines))
PY
) | tee "$OUT/report.md"
