#!/usr/bin/env bash
# The boot storm on a dynamic route with and without shared bodies (issue 10
# part 4): examples/storm_shared serves one handler that burns 5 ms of CPU
# on two routes, `unshared/NAME` and `shared/NAME` (share_for 2 s), and
# `bench storm` runs the same storm against each, in one run.
#
#   docs/storm_shared.sh                  # 1000 clients × 64 KiB, blksize 1428
#   SIZE=4KiB docs/storm_shared.sh        # a config-sized body
#
# Run it from the repository root. Storm clients retransmit their request
# up to RETRIES times, 1 s apart (default 30, as patient as PXE firmware),
# so that the unshared storm, which takes seconds of CPU, completes rather
# than counting give-ups.
set -euo pipefail

SIZE=${SIZE:-64KiB}
CLIENTS=${CLIENTS:-1000}
WORK_MS=${WORK_MS:-5}
RETRIES=${RETRIES:-30}
PORT=${PORT:-39200}
TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$TARGET/release/examples/bench
SERVER=$TARGET/release/examples/storm_shared
LOG=${LOG:-/tmp/emmer-bench/storm_shared.log}

ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < CLIENTS + 64 )); then
    echo "storm_shared.sh: ulimit -n is $(ulimit -n), too low for $CLIENTS clients" >&2
    exit 1
fi
timeout 1800 cargo build --release --example bench --example storm_shared
mkdir -p "$(dirname "$LOG")"

RUST_LOG=warn "$SERVER" --port "$PORT" --size "$SIZE" --work-ms "$WORK_MS" \
    >"$LOG.out" 2>"$LOG" &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q listening "$LOG.out" && break
    sleep 0.1
done
cat "$LOG"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for route in unshared shared; do
    timeout 300 "$BENCH" storm --server "127.0.0.1:$PORT" --file "$route/menu" \
        --clients "$CLIENTS" --blksize 1428 --expect-size "$SIZE" \
        --retries "$RETRIES" --label "$route" --pid "$PID"
    echo "load average after $route: $(cut -d' ' -f1-3 /proc/loadavg)"
done
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT
tail -n 1 "$LOG"
