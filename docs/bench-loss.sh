#!/usr/bin/env bash
# Benchmarks emmer's serve_dir against tftp-hpa (in.tftpd), atftpd and
# rs-tftpd through a lossy link in the kernel, one server at a time, and
# prints a Markdown table: completed transfers and median times.
#
#   docs/bench-loss.sh                  # about half an hour, as root
#   REPEAT=1 SERVERS="emmer atftpd" docs/bench-loss.sh
#   TABLE_ONLY=1 docs/bench-loss.sh     # the tables again, from $OUT
#
# Run it from the repository root, as root (network namespaces). It needs
# ip (iproute2) and nft (nftables); the peers as for docs/bench.sh (see
# docs/bench.md); a missing peer is skipped.
#
# The network is the one tests/it/netns.rs builds (see its docs for why):
#
#   root namespace           $NS-link                     $NS
#   bench ── $VETH ═══ veth ═══ vroot ─(forward)─ vsrv ═══ veth ═══ eth0 ── server
#
# The link namespace's forward chain drops LOSS% of the UDP datagrams in each
# direction and sends DUP% of the rest twice; the server's interface has
# gso_max_segs 1, so emmer's GSO windows are judged datagram by datagram.
# Every server runs with its defaults (emmer: 1 s first retransmission,
# doubling, 5 retries); the bench client retransmits after 1 s, up to RETRIES
# times (10: it waits 11 s for a server that has gone silent, so a server
# backing off after a few losses in a row is not abandoned), and gives up on
# a transfer after LIMIT seconds.
#
# Scenarios, per server:
#   read  SIZE at blksize 1428, windowsize 8, READ_LOSS% loss, REPEAT times
#   write SIZE at blksize 1428, windowsize 8, READ_LOSS% loss, REPEAT times
#         (checked byte for byte in the server's directory)
#   storm of CLIENTS clients reading 64 KiB at blksize 1428, STORM_LOSS% loss
set -euo pipefail

PEERS=${PEERS:-/work/scratch/bench}
IN_TFTPD=${IN_TFTPD:-/usr/sbin/in.tftpd}
ATFTPD=${ATFTPD:-$PEERS/atftpd/usr/sbin/atftpd}
RS_TFTPD=${RS_TFTPD:-$PEERS/rs-tftpd/bin/tftpd}
DIR=${DIR:-/tmp/emmer-bench-loss/files}
OUT=${OUT:-/tmp/emmer-bench-loss/results.txt}
SERVERS=${SERVERS:-"emmer tftp-hpa atftpd rs-tftpd"}
SEED=${SEED:-1}
PORT_BASE=${PORT_BASE:-39200}
SIZE=${SIZE:-3MiB}
REPEAT=${REPEAT:-3}
READ_LOSS=${READ_LOSS:-10}
STORM_LOSS=${STORM_LOSS:-5}
DUP=${DUP:-2}
CLIENTS=${CLIENTS:-200}
# Seconds a SIZE transfer may take before the bench client gives up, and
# retransmissions of one packet before it does.
LIMIT=${LIMIT:-120}
RETRIES=${RETRIES:-10}
SMALL=64KiB

TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$TARGET/release/examples/bench
SERVE_DIR=$TARGET/release/examples/serve_dir

# The Markdown tables, from $OUT.
print_table() {
    echo
    echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -sr), SIZE=$SIZE REPEAT=$REPEAT" \
        "READ_LOSS=$READ_LOSS STORM_LOSS=$STORM_LOSS DUP=$DUP CLIENTS=$CLIENTS LIMIT=$LIMIT" \
        "RETRIES=$RETRIES," \
        "load average $(cut -d" " -f1-3 /proc/loadavg) -->"
python3 - "$OUT" "$SERVERS" "$SIZE" "$READ_LOSS" "$STORM_LOSS" "$DUP" "$CLIENTS" <<'EOF'
import statistics, sys

path, servers, size, read_loss, storm_loss, dup, clients = sys.argv[1:]
servers = servers.split()
runs, links = {}, {}
for line in open(path):
    head, _, err = line.strip().partition(" error=")
    f = dict(kv.split("=", 1) for kv in head.split() if "=" in kv)
    if err:
        f["error"] = err.strip('"')
    if line.startswith("link "):
        links[(f["scenario"], f["server"])] = f
    elif "scenario" in f:
        runs.setdefault((f["scenario"], f["server"]), []).append(f)
peers = [s for s in servers if not s.startswith("emmer")]

def done(sc, srv):
    return [f for f in runs.get((sc, srv), []) if "error" not in f]

def median_secs(sc, srv):
    """The median time over all runs, a failed run counting as slower than
    any completed one: infinite when half or more failed, None without runs."""
    rs = runs.get((sc, srv), [])
    if not rs:
        return None
    t = sorted(float(f["secs"]) if "error" not in f else float("inf") for f in rs)
    n = len(t)
    return t[n // 2] if n % 2 else (t[n // 2 - 1] + t[n // 2]) / 2

def secs(v):
    return "–" if v is None else ("failed" if v == float("inf") else f"{v:.2f} s")

def why(errors):
    """Failure reasons, counted."""
    counts = {}
    for e in errors:
        counts[e[:70]] = counts.get(e[:70], 0) + 1
    return "; ".join(f"{n}× {e}" for e, n in counts.items())

def cell_bulk(sc, srv):
    rs = runs.get((sc, srv), [])
    if not rs:
        return "–"
    ok = done(sc, srv)
    s = f"{len(ok)}/{len(rs)}, median {secs(median_secs(sc, srv))}"
    if ok:
        got = {(f["blksize"], f["windowsize"]) for f in ok}
        if got != {("1428", "8")}:
            s += " (got " + ", ".join(f"{b}/{w}" for b, w in sorted(got)) + ")"
        resent = statistics.median(int(f.get("resent", 0)) for f in ok)
        s += f", {resent:.0f} resent by the client"
    failed = [f["error"] for f in rs if "error" in f]
    if failed:
        s += f"; failed: {why(failed)}"
    return s

def cell_storm(srv):
    rs = runs.get(("storm", srv), [])
    if not rs:
        return "–"
    f = rs[0]
    if "error" in f:
        return "failed: " + f["error"][:70]
    return (f"{f['ok']}/{f['clients']}, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
            f"max {f['max_ms']} ms, {f['resent']} resent")

def cell_link(sc, srv):
    f = links.get((sc, srv))
    if not f:
        return "–"
    return (f"→ {f['to_server']} ({f['to_server_dropped']} lost, {f['to_server_duplicated']} dup), "
            f"← {f['to_client']} ({f['to_client_dropped']} lost, {f['to_client_duplicated']} dup)")

print("| scenario | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
read_title = f"read {size}, blksize 1428, windowsize 8, {read_loss}% loss"
write_title = f"write {size}, blksize 1428, windowsize 8, {read_loss}% loss"
print(f"| {read_title}: completed, median time | "
      + " | ".join(cell_bulk("read", s) for s in servers) + " |")
print(f"| {write_title}: completed, median time | "
      + " | ".join(cell_bulk("write", s) for s in servers) + " |")
print(f"| storm, {clients} clients × 64 KiB, blksize 1428, {storm_loss}% loss: completed, latency | "
      + " | ".join(cell_storm(s) for s in servers) + " |")
print()
print("Median times count a failed run as slower than any completed one. "
      "Datagrams through the link "
      f"(→ to the server, ← to the client; lost at the loss rate, {dup}% duplicated):")
print()
print("| scenario | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for sc in ("read", "write", "storm"):
    print(f"| {sc} | " + " | ".join(cell_link(sc, s) for s in servers) + " |")

def check(ok):
    return "met" if ok else "**missed**"

print()
print("| target | emmer | best peer | ratio | |")
print("|---|---|---|---|---|")
# Every transfer the client does not abandon completes: a run the bench
# client gave up at its time limit is abandoned; any other failure (silence
# through all its retries, an ERROR, a closed port, wrong bytes) is not.
def tally(srv):
    rs = [f for sc in ("read", "write") for f in runs.get((sc, srv), [])]
    storm = (runs.get(("storm", srv)) or [{}])[0]
    completed = sum("error" not in f for f in rs) + int(storm.get("ok", 0))
    abandoned = sum("error" in f and " within " in f["error"] for f in rs)
    total = len(rs) + int(storm.get("clients", 0))
    return completed, abandoned, total - completed - abandoned, total

def tally_text(srv):
    c, a, f, t = tally(srv)
    return f"{c}/{t} completed, {a} abandoned, {f} failed"

e_c, e_a, e_f, e_t = tally("emmer")
print(f"| every transfer the client does not abandon (time limit) completes | "
      f"{tally_text('emmer')} | "
      + "; ".join(f"{p}: {tally_text(p)}" for p in peers if tally(p)[3]) +
      f" | – | {check(e_t > 0 and e_f == 0)} |")
for sc, title in (("read", "read median ≤ 0.5× best peer"),
                  ("write", "write median ≤ 0.5× best peer")):
    inf = float("inf")
    e = median_secs(sc, "emmer")
    best = min(((median_secs(sc, p), p) for p in peers
                if median_secs(sc, p) not in (None, inf)), default=(None, None))
    finite = e is not None and e != inf and best[0]
    ratio = f"{e / best[0]:.2f}×" if finite else "–"
    met = bool(finite) and e <= 0.5 * best[0]
    print(f"| {title} | {secs(e)} | "
          f"{'no peer completed half its runs' if best[0] is None else f'{best[0]:.2f} s ({best[1]})'}"
          f" | {ratio} | {check(met)} |")
def p50(srv):
    f = (runs.get(("storm", srv)) or [{}])[0]
    return float(f["p50_ms"]) if "p50_ms" in f and "error" not in f else None
e = p50("emmer")
best = min(((p50(p), p) for p in peers if p50(p) is not None), default=(None, None))
ratio = f"{e / best[0]:.2f}×" if e is not None and best[0] else "–"
met = e is not None and best[0] is not None and e <= 0.5 * best[0]
print(f"| storm median latency ≤ 0.5× best peer | {'–' if e is None else f'{e:.0f} ms'} | "
      f"{'–' if best[0] is None else f'{best[0]:.0f} ms ({best[1]})'} | {ratio} | {check(met)} |")
EOF
}

if [[ -n ${TABLE_ONLY:-} ]]; then
    print_table
    exit 0
fi

if [[ $(id -u) != 0 ]]; then
    echo "bench-loss.sh: network namespaces need root" >&2
    exit 1
fi
for tool in ip nft; do
    command -v "$tool" >/dev/null || {
        echo "bench-loss.sh: $tool is missing (apt-get install iproute2 nftables)" >&2
        exit 1
    }
done
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < CLIENTS + 64)); then
    echo "bench-loss.sh: ulimit -n is $(ulimit -n), too low for $CLIENTS clients" >&2
    exit 1
fi

# The network: unique names, a /29 of the test range that nothing else uses.
NS=emmer-bench-loss-$$
LINK=$NS-link
VETH=ebl$$
CLIENT=10.213.254.1 LINK_ROOT=10.213.254.2 LINK_SERVER=10.213.254.5 HOST=10.213.254.6
if [[ -n $(ip -o addr show to 10.213.254.0/29) ]]; then
    echo "bench-loss.sh: 10.213.254.0/29 is in use (another run?)" >&2
    exit 1
fi

net_down() {
    ip link del "$VETH" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$LINK" 2>/dev/null || true
}

net_up() {
    ip netns add "$NS"
    ip netns add "$LINK"
    ip link add "$VETH" type veth peer name vroot netns "$LINK"
    ip addr add "$CLIENT/30" dev "$VETH"
    ip link set "$VETH" up
    ip route add "$HOST/32" via "$LINK_ROOT" dev "$VETH"
    ip -n "$LINK" link add vsrv type veth peer name eth0 netns "$NS"
    ip -n "$LINK" addr add "$LINK_ROOT/30" dev vroot
    ip -n "$LINK" addr add "$LINK_SERVER/30" dev vsrv
    for dev in lo vroot vsrv; do ip -n "$LINK" link set "$dev" up; done
    ip netns exec "$LINK" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    ip -n "$NS" addr add "$HOST/30" dev eth0
    ip -n "$NS" link set eth0 gso_max_segs 1
    for dev in lo eth0; do ip -n "$NS" link set "$dev" up; done
    ip -n "$NS" route add default via "$LINK_SERVER"
}

# net_loss LOSS DUP: (re)loads the link's rules, which also zeroes the counters.
net_loss() {
    local loss=$1 dup=$2
    ip netns exec "$LINK" nft delete table ip emmer_loss 2>/dev/null || true
    ip netns exec "$LINK" nft -f - <<RULES
table ip emmer_loss {
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname "vroot" meta l4proto udp counter comment "to_server"
        iifname "vsrv" meta l4proto udp counter comment "to_client"
        iifname "vroot" meta l4proto udp numgen random mod 100 < $loss counter drop comment "to_server_dropped"
        iifname "vsrv" meta l4proto udp numgen random mod 100 < $loss counter drop comment "to_client_dropped"
        iifname "vroot" meta l4proto udp numgen random mod 100 < $dup counter dup to $HOST device "vsrv" comment "to_server_duplicated"
        iifname "vsrv" meta l4proto udp numgen random mod 100 < $dup counter dup to $CLIENT device "vroot" comment "to_client_duplicated"
    }
}
RULES
}

# net_counters NAME SCENARIO: appends the link's counters to $OUT.
net_counters() {
    local fields=""
    local c
    for c in to_server to_server_dropped to_server_duplicated to_client to_client_dropped to_client_duplicated; do
        local n
        n=$(ip netns exec "$LINK" nft list table ip emmer_loss |
            sed -n "s/.*counter packets \([0-9]*\) .*comment \"$c\".*/\1/p")
        fields+=" $c=${n:-0}"
    done
    echo "link scenario=$2 server=$1$fields" | tee -a "$OUT"
}

# NETNS, HOST: start_server runs the server in the namespace, on its address.
NETNS=$NS
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
cleanup() {
    stop_server
    net_down
}
trap cleanup EXIT

timeout 1800 cargo build --release --example bench --example serve_dir

mkdir -p "$DIR" "$(dirname "$OUT")"
: >"$OUT"
$BENCH gen --dir "$DIR" --file loss.bin --size "$SIZE" --seed "$SEED"
$BENCH gen --dir "$DIR" --file small.bin --size "$SMALL" --seed "$SEED"

net_up
port=$PORT_BASE
for name in $SERVERS; do
    port=$((port + 1))
    net_loss 0 0
    if ! start_server "$name" "$port"; then
        echo "bench-loss.sh: skipping $name" >&2
        continue
    fi
    addr=$HOST:$port
    echo "== $name on $addr (pid $PID)" >&2
    net_loss "$READ_LOSS" "$DUP"
    for _ in $(seq "$REPEAT"); do
        run "$name" read "$LIMIT" read --server "$addr" --file loss.bin \
            --blksize 1428 --windowsize 8 --expect-size "$SIZE" --retries "$RETRIES"
    done
    net_counters "$name" read
    net_loss "$READ_LOSS" "$DUP"
    for i in $(seq "$REPEAT"); do
        up=up-$name-$i.bin
        rm -f "$DIR/$up"
        run "$name" write "$LIMIT" write --server "$addr" --file "$up" --size "$SIZE" \
            --blksize 1428 --windowsize 8 --verify-path "$DIR/$up" --retries "$RETRIES"
        rm -f "$DIR/$up"
    done
    net_counters "$name" write
    net_loss "$STORM_LOSS" "$DUP"
    run "$name" storm 120 storm --server "$addr" --file small.bin --clients "$CLIENTS" \
        --blksize 1428 --expect-size "$SMALL" --retries "$RETRIES"
    net_counters "$name" storm
    stop_server
done

print_table
