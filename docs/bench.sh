#!/usr/bin/env bash
# Benchmarks emmer's serve_dir against tftp-hpa (in.tftpd), atftpd and
# rs-tftpd on loopback, one server at a time, and prints a Markdown table.
#
#   docs/bench.sh                 # full run (about 10 minutes)
#   QUICK=1 docs/bench.sh         # small sizes, 100 clients: a smoke test
#   SERVERS="emmer atftpd" docs/bench.sh
#
# Run it from the repository root. What it needs (see docs/bench.md):
#   in.tftpd   apt-get install -y tftpd-hpa            (IN_TFTPD=/usr/sbin/in.tftpd)
#   atftpd     apt-get download atftpd && dpkg -x atftpd_*.deb $PEERS/atftpd
#   rs-tftpd   cargo install tftpd --root $PEERS/rs-tftpd
# A missing peer is skipped. Every command is bounded by `timeout`.
set -euo pipefail

PEERS=${PEERS:-/work/scratch/bench}
IN_TFTPD=${IN_TFTPD:-/usr/sbin/in.tftpd}
ATFTPD=${ATFTPD:-$PEERS/atftpd/usr/sbin/atftpd}
RS_TFTPD=${RS_TFTPD:-$PEERS/rs-tftpd/bin/tftpd}
DIR=${DIR:-/tmp/emmer-bench/files}
OUT=${OUT:-/tmp/emmer-bench/results.txt}
# emmer-nofsync: serve_dir --no-fsync, for the uploads only (like for like
# with servers that never sync). emmer-single: single-port mode
# (EMMER_PORTS=single), for the 1428/16 read and the storm.
SERVERS=${SERVERS:-"emmer emmer-single emmer-nofsync tftp-hpa atftpd rs-tftpd"}
SEED=${SEED:-1}
PORT_BASE=${PORT_BASE:-39100}

if [[ -n "${QUICK:-}" ]]; then
    BIG=${BIG:-32MiB} LOCKSTEP=${LOCKSTEP:-4MiB} UPLOAD=${UPLOAD:-8MiB}
    CLIENTS=${CLIENTS:-100} REPEAT=${REPEAT:-1}
else
    BIG=${BIG:-256MiB} LOCKSTEP=${LOCKSTEP:-32MiB} UPLOAD=${UPLOAD:-64MiB}
    CLIENTS=${CLIENTS:-1000} REPEAT=${REPEAT:-3}
fi
SMALL=64KiB

BENCH=target/release/examples/bench
SERVE_DIR=target/release/examples/serve_dir

# One socket per storm client: raise the soft open-files limit to the hard one.
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < CLIENTS + 64 )); then
    echo "bench.sh: ulimit -n is $(ulimit -n), too low for $CLIENTS clients" >&2
    exit 1
fi

timeout 1800 cargo build --release --example bench --example serve_dir

mkdir -p "$DIR" "$(dirname "$OUT")"
: >"$OUT"
$BENCH gen --dir "$DIR" --file big.bin --size "$BIG" --seed "$SEED"
$BENCH gen --dir "$DIR" --file lockstep.bin --size "$LOCKSTEP" --seed "$SEED"
$BENCH gen --dir "$DIR" --file small.bin --size "$SMALL" --seed "$SEED"

# The servers, one bench run (shared with docs/bench-loss.sh).
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
trap stop_server EXIT

port=$PORT_BASE
for name in $SERVERS; do
    port=$((port + 1))
    if ! start_server "$name" "$port"; then
        echo "bench.sh: skipping $name" >&2
        continue
    fi
    addr=127.0.0.1:$port
    echo "== $name on $addr (pid $PID)" >&2
    reads=$REPEAT
    [[ $name == emmer-nofsync ]] && reads=0
    for _ in $(seq "$reads"); do
        run "$name" read-1428-16 120 read --server "$addr" --file big.bin \
            --blksize 1428 --windowsize 16 --expect-size "$BIG"
        [[ $name == emmer-single ]] && continue
        run "$name" read-512-1 120 read --server "$addr" --file lockstep.bin \
            --expect-size "$LOCKSTEP"
        run "$name" read-65464-16 60 read --server "$addr" --file big.bin \
            --blksize 65464 --windowsize 16 --expect-size "$BIG"
    done
    for ws in 16 1; do
        [[ $name == emmer-single ]] && continue
        up=up-$name-$ws.bin
        rm -f "$DIR/$up"
        run "$name" "write-65464-$ws" 120 write --server "$addr" --file "$up" --size "$UPLOAD" \
            --blksize 65464 --windowsize "$ws" --verify-path "$DIR/$up"
        rm -f "$DIR/$up"
    done
    if [[ $name != emmer-nofsync ]]; then
        run "$name" storm-1428 60 storm --server "$addr" --file small.bin --clients "$CLIENTS" \
            --blksize 1428 --expect-size "$SMALL"
    fi
    stop_server
done

echo
echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -sr), BIG=$BIG LOCKSTEP=$LOCKSTEP" \
    "UPLOAD=$UPLOAD CLIENTS=$CLIENTS REPEAT=$REPEAT, load average $(cut -d" " -f1-3 /proc/loadavg) -->"
python3 - "$OUT" "$SERVERS" <<'EOF'
import statistics, sys

path, servers = sys.argv[1], sys.argv[2].split()
runs = {}
for line in open(path):
    # error="..." is last and may hold spaces.
    head, _, err = line.strip().partition(" error=")
    f = dict(kv.split("=", 1) for kv in head.split() if "=" in kv)
    if err:
        f["error"] = err
    runs.setdefault((f["scenario"], f["server"]), []).append(f)
peers = [s for s in servers if not s.startswith("emmer")]

def pick(scenario, server, key):
    """The run with the median `key` (failed runs count as 0)."""
    rs = runs.get((scenario, server), [])
    if not rs:
        return None
    rs = sorted(rs, key=lambda f: float(f.get(key, 0)) if "error" not in f else 0.0)
    return rs[(len(rs) - 1) // 2]

def num(f, key):
    return float(f[key]) if f and key in f and "error" not in f else None

def cell_bulk(f):
    if f is None:
        return "–"
    if "error" in f:
        return "failed: " + f["error"].strip('"')[:60]
    s = f"{float(f['mbps']):.1f}"
    if f["windowsize"] != f["asked_windowsize"] or f["blksize"] != f["asked_blksize"]:
        s += f" (got {f['blksize']}/{f['windowsize']})"
    if int(f.get("resent", 0)):
        s += f", {f['resent']} resent"
    if int(f.get("udp_drops", 0)):
        s += f", {f['udp_drops']} dropped"
    return s

bulk = [
    ("read-512-1", "read, blksize 512, windowsize 1 (MB/s)"),
    ("read-1428-16", "read, blksize 1428, windowsize 16 (MB/s)"),
    ("read-65464-16", "read, blksize 65464, windowsize 16 (MB/s)"),
    ("write-65464-16", "write, blksize 65464, windowsize 16 (MB/s)"),
    ("write-65464-1", "write, blksize 65464, windowsize 1 (MB/s)"),
]
print("| scenario | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for sc, title in bulk:
    cells = [cell_bulk(pick(sc, s, "mbps")) for s in servers]
    print(f"| {title} | " + " | ".join(cells) + " |")

def cell_storm(f):
    if f is None:
        return "–"
    if "error" in f:
        return "failed: " + f["error"].strip('"')[:60]
    s = (f"{f['tps']}/s, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
         f"{f['failures']} failed")
    if int(f.get("resent", 0)):
        s += f", {f['resent']} resent"
    if int(f.get("udp_drops", 0)):
        s += f", {f['udp_drops']} dropped"
    return s

storm = {s: pick("storm-1428", s, "tps") for s in servers}
n = next((f["clients"] for f in storm.values() if f and "clients" in f), "?")
print(f"| storm, {n} clients × 64 KiB, blksize 1428 | "
      + " | ".join(cell_storm(storm[s]) for s in servers) + " |")

def cpu(f):
    v = num(f, "cpu_s_per_gib")
    return "–" if v is None else f"{v:.1f}"

def rss(f):
    v = num(f, "rss_kib")
    return "–" if v is None else f"{v / 1024:.1f}"

print()
print("| server cost | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for sc, _ in bulk[:3]:
    print(f"| CPU s per GiB, {sc} | "
          + " | ".join(cpu(pick(sc, s, "mbps")) for s in servers) + " |")
print("| peak RSS (MiB), storm | " + " | ".join(rss(storm[s]) for s in servers) + " |")
print("| CPU s, storm | " + " | ".join(
    "–" if num(storm[s], "cpu_s") is None else f"{num(storm[s], 'cpu_s'):.2f}"
    for s in servers) + " |")

# Targets: emmer against the peers, from this run.
def best(sc, key, among):
    vals = [num(pick(sc, s, key), key) for s in among]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None

def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"

def check(ok):
    return "met" if ok else "**missed**"

print()
print("| target | emmer | reference | ratio | |")
print("|---|---|---|---|---|")
e = lambda sc, key="mbps", srv="emmer": num(pick(sc, srv, key), key)
cpu_of = lambda sc, srv: num(pick(sc, srv, "mbps"), "cpu_s_per_gib")
only = lambda names: [p for p in peers if p in names]
rows = []
hpa_write = best("write-65464-16", "mbps", only(["tftp-hpa"]))
hpa_write = max([v for v in (hpa_write, best("write-65464-1", "mbps", only(["tftp-hpa"]))) if v] or [0]) or None
rows.append(("write 65464/16, serve_dir --no-fsync ≥ 1.2× tftp-hpa", e("write-65464-16", srv="emmer-nofsync"), hpa_write, 1.2))
rows.append(("write 65464/16 with fsync (reported)", e("write-65464-16"), hpa_write, 0.0))
v, b = e("read-512-1"), best("read-512-1", "mbps", peers)
rows.append(("read 512/1 ≥ best peer", v, b, 1.0))
v, b = e("read-65464-16"), best("read-65464-16", "mbps", only(["atftpd"]))
rows.append(("read 65464/16 ≥ 1.5× atftpd", v, b, 1.5))
v, b = e("read-1428-16"), best("read-1428-16", "mbps", only(["rs-tftpd"]))
rows.append(("read 1428/16 ≥ 2.5× rs-tftpd", v, b, 2.5))
for name, v, b, k in rows:
    ok = v is not None and b is not None and v >= k * b
    print(f"| {name} | {'–' if v is None else f'{v:.1f} MB/s'} | "
          f"{'–' if b is None else f'{b:.1f} MB/s'} | {ratio(v, b)} | {check(ok)} |")
for sc, k, title in [("read-512-1", 1.0, "CPU s/GiB at 512/1 below every peer"),
                     ("read-1428-16", 0.3, "CPU s/GiB at 1428/16 ≤ 0.3× the lowest peer")]:
    ec = cpu_of(sc, "emmer")
    pc = [c for c in (cpu_of(sc, s) for s in peers) if c is not None]
    low = min(pc) if pc else None
    ok = ec is not None and low is not None and (ec < low if k == 1.0 else ec <= k * low)
    print(f"| {title} | {'–' if ec is None else f'{ec:.1f}'} | "
          f"{'–' if low is None else f'{low:.1f} (lowest peer)'} | {ratio(ec, low)} | {check(ok)} |")
es = storm.get("emmer")
et = num(es, "tps")
bt = best("storm-1428", "tps", only(["rs-tftpd"]))
fails = es.get("failures") if es else None
ok = et is not None and bt and et >= 2.5 * bt and fails == "0"
print(f"| storm: 0 failures, ≥ 2.5× rs-tftpd | "
      f"{'–' if et is None else f'{et:.0f}/s, {fails} failed'} | "
      f"{'–' if bt is None else f'{bt:.0f}/s'} | {ratio(et, bt)} | {check(ok)} |")
# Single-port mode against the default mode, same run.
ss = storm.get("emmer-single")
st = num(ss, "tps")
sf = ss.get("failures") if ss else None
ok = st is not None and et and st >= 0.9 * et and sf == "0"
print(f"| single-port storm ≥ 0.9× default mode, 0 failed | "
      f"{'–' if st is None else f'{st:.0f}/s, {sf} failed'} | "
      f"{'–' if et is None else f'{et:.0f}/s (default)'} | {ratio(st, et)} | {check(ok)} |")
sv, dv = e("read-1428-16", srv="emmer-single"), e("read-1428-16")
ok = sv is not None and dv and sv >= 0.9 * dv
print(f"| single-port read 1428/16 ≥ 0.9× default mode | "
      f"{'–' if sv is None else f'{sv:.1f} MB/s'} | "
      f"{'–' if dv is None else f'{dv:.1f} MB/s (default)'} | {ratio(sv, dv)} | {check(ok)} |")
EOF
