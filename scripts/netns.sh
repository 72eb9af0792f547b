#!/usr/bin/env bash
# Emulate a multi-node cluster on one machine with Linux network namespaces.
#
#   scripts/netns.sh up <prefix> <nodes>      create namespaces <prefix>0 .. <prefix>{nodes-1}
#                                             plus <prefix>br holding a bridge that joins them;
#                                             prints the node addresses, one per line
#   scripts/netns.sh down <prefix>            delete them (idempotent; no error if absent)
#   scripts/netns.sh exec <prefix> <i> -- cmd...   run cmd inside node i's namespace
#   scripts/netns.sh addr <prefix> <i>        print node i's address (no root needed)
#   scripts/netns.sh cut <prefix> <i>         partition node i from the others (its bridge
#                                             port goes down: frames are lost, no reset)
#   scripts/netns.sh heal <prefix> <i>        join it again
#   scripts/netns.sh check                    exit 0 if namespaces can be created here
#
# Layout for `up p 3` (k = cksum(prefix) mod 250, so parallel test groups with different
# prefixes get different subnets):
#
#   netns p0: lo, eth0 10.77.k.1/24 ──veth── v0 ┐
#   netns p1: lo, eth0 10.77.k.2/24 ──veth── v1 ├─ br0   (all in netns pbr)
#   netns p2: lo, eth0 10.77.k.3/24 ──veth── v2 ┘
#
# Both ends of every veth are created directly inside the namespaces, and the bridge lives
# in its own namespace, so the host's network is never touched. There is no route out of
# the namespaces: only these addresses and loopback are reachable from inside.
#
# The prefix must start with a letter, contain only [A-Za-z0-9_-], end with a letter,
# '_' or '-' (so "<prefix><i>" is unambiguous), and be at most 32 characters.
# Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2 for up/down/exec/check.
set -euo pipefail

STATE_DIR=${ZR_NETNS_STATE_DIR:-/run/zerorank-netns}
MAX_NODES=64

die() {
    printf 'netns.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_prefix() {
    local p=$1
    [[ ${#p} -le 32 && $p =~ ^[A-Za-z]([A-Za-z0-9_-]*[A-Za-z_-])?$ ]] ||
        die "invalid prefix '$p' (letters, digits, '_' or '-'; must start with a letter and not end with a digit; max 32 chars)"
}

# Third octet of the subnet for a prefix: cksum(prefix) mod 250.
subnet_octet() {
    local sum
    sum=$(printf '%s' "$1" | cksum)
    echo $((${sum%% *} % 250))
}

node_addr() { # <prefix> <i>
    echo "10.77.$(subnet_octet "$1").$(($2 + 1))"
}

ns_exists() {
    [[ -e "/run/netns/$1" ]] || ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF -- "$1"
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces need CAP_SYS_ADMIN)"
    command -v ip >/dev/null 2>&1 || die "'ip' not found (install iproute2)"
}

# Serialise up/down of the same prefix (different prefixes run in parallel).
take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/$1.lock"
    flock -w 60 9 || die "timed out waiting for the lock on prefix '$1'"
}

do_down() { # <prefix>; caller holds the lock
    local p=$1 name
    local -a names=()
    if [[ -f "$STATE_DIR/$p.nodes" ]]; then
        mapfile -t names <"$STATE_DIR/$p.nodes"
    fi
    # Also anything matching the naming scheme (e.g. left over without a state file).
    # Unambiguous because a prefix never ends with a digit.
    while read -r name _; do
        if [[ $name =~ ^${p}([0-9]+|br)$ ]]; then
            names+=("$name")
        fi
    done < <(ip netns list 2>/dev/null || true)
    for name in "${names[@]}"; do
        if ns_exists "$name"; then
            # Kill anything still running inside (a hung test), then delete.
            local pids
            pids=$(ip netns pids "$name" 2>/dev/null || true)
            if [[ -n $pids ]]; then
                # shellcheck disable=SC2086 # word splitting of the pid list is intended
                kill -9 $pids 2>/dev/null || true
            fi
            if ! ip netns delete "$name" 2>/dev/null; then
                sleep 0.2
                ip netns delete "$name" 2>/dev/null || true
            fi
        fi
    done
    rm -f "$STATE_DIR/$p.nodes"
    for name in "${names[@]}"; do
        ! ns_exists "$name" || die "could not delete namespace $name"
    done
}

cmd_up() {
    (($# == 2)) || usage
    local p=$1 n=$2 i br k
    check_prefix "$p"
    if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > MAX_NODES)); then
        die "node count must be 1..$MAX_NODES, got '$n'"
    fi
    need_root
    take_lock "$p"
    do_down "$p" # start from a clean slate if a previous run left something behind
    br="${p}br"
    k=$(subnet_octet "$p")
    {
        echo "$br"
        for ((i = 0; i < n; i++)); do echo "$p$i"; done
    } >"$STATE_DIR/$p.nodes"
    trap 'do_down "$p"' ERR

    ip netns add "$br"
    ip -n "$br" link set lo up
    ip -n "$br" link add br0 type bridge stp_state 0 forward_delay 0
    ip -n "$br" link set br0 up
    for ((i = 0; i < n; i++)); do
        ip netns add "$p$i"
        ip -n "$p$i" link set lo up
        ip -n "$p$i" link add eth0 type veth peer name "v$i" netns "$br"
        ip -n "$br" link set "v$i" master br0
        ip -n "$br" link set "v$i" up
        ip -n "$p$i" addr add "10.77.$k.$((i + 1))/24" dev eth0
        ip -n "$p$i" link set eth0 up
    done
    trap - ERR
    for ((i = 0; i < n; i++)); do
        echo "10.77.$k.$((i + 1))"
    done
}

cmd_down() {
    (($# == 1)) || usage
    check_prefix "$1"
    need_root
    take_lock "$1"
    do_down "$1"
}

cmd_exec() {
    if (($# < 4)) || [[ $3 != "--" ]]; then
        usage
    fi
    local p=$1 i=$2
    shift 3
    check_prefix "$p"
    [[ $i =~ ^[0-9]+$ ]] || die "node index must be a number, got '$i'"
    need_root
    ns_exists "$p$i" || die "namespace $p$i does not exist (run: $0 up $p <nodes>)"
    exec ip netns exec "$p$i" "$@"
}

cmd_addr() {
    (($# == 2)) || usage
    check_prefix "$1"
    [[ $2 =~ ^[0-9]+$ ]] || die "node index must be a number, got '$2'"
    node_addr "$1" "$2"
}

cmd_link() { # <up|down> <prefix> <i>
    (($# == 3)) || usage
    local state=$1 p=$2 i=$3
    check_prefix "$p"
    [[ $i =~ ^[0-9]+$ ]] || die "node index must be a number, got '$i'"
    need_root
    ns_exists "$p$i" || die "namespace $p$i does not exist (run: $0 up $p <nodes>)"
    ip -n "${p}br" link set "v$i" "$state"
}

cmd_check() {
    [[ $(id -u) -eq 0 ]] || { echo "netns: not root" >&2; return 1; }
    command -v ip >/dev/null 2>&1 || { echo "netns: iproute2 not installed" >&2; return 1; }
    local name="zrcheck$$x"
    if ip netns add "$name" 2>/dev/null; then
        ip netns delete "$name" 2>/dev/null || true
        return 0
    fi
    echo "netns: cannot create network namespaces here" >&2
    return 1
}

(($# >= 1)) || usage
sub=$1
shift
case $sub in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
exec) cmd_exec "$@" ;;
addr) cmd_addr "$@" ;;
cut) cmd_link down "$@" ;;
heal) cmd_link up "$@" ;;
check) cmd_check ;;
-h | --help | help) usage ;;
*) usage ;;
esac
