# Shared by docs/bench.sh and docs/bench-loss.sh (sourced, not run): the
# servers under test, started one at a time, and one bench run.
#
# The caller sets BENCH, SERVE_DIR, DIR, OUT, SMALL, SEED, IN_TFTPD, ATFTPD
# and RS_TFTPD. HOST is the address the server listens on (default
# 127.0.0.1); with NETNS set the server runs inside that network namespace
# (`ip netns exec`, which execs the server: $PID is the server's own pid).
# The bench client always runs here, in the caller's namespace.

PID=
start_server() { # name port
    local name=$1 port=$2 host=${HOST:-127.0.0.1}
    local in_ns=()
    [[ -n ${NETNS:-} ]] && in_ns=(ip netns exec "$NETNS")
    case $name in
    emmer | emmer-nofsync | emmer-single)
        local flags=() ports=ephemeral
        [[ $name == emmer-nofsync ]] && flags=(--no-fsync)
        [[ $name == emmer-single ]] && ports=single
        # Logs at warn: the peers do not log each transfer either.
        RUST_LOG=warn EMMER_MAX_UPLOAD=1073741824 EMMER_PORTS=$ports \
            "${in_ns[@]}" "$SERVE_DIR" "$DIR" --host "$host" --port "$port" "${flags[@]}" \
            2>>"$OUT.emmer.log" &
        ;;
    tftp-hpa)
        [[ -x $IN_TFTPD ]] || return 1
        "${in_ns[@]}" "$IN_TFTPD" --foreground --secure --create --permissive --user root \
            --address "$host:$port" "$DIR" &
        ;;
    atftpd)
        [[ -x $ATFTPD ]] || return 1
        # --maxthread: the default of 100 would refuse most of a storm.
        "${in_ns[@]}" "$ATFTPD" --daemon --no-fork --user root --group root --port "$port" \
            --bind-address "$host" --logfile /dev/null --maxthread 2000 "$DIR" &
        ;;
    rs-tftpd)
        [[ -x $RS_TFTPD ]] || return 1
        "${in_ns[@]}" "$RS_TFTPD" -i "$host" -p "$port" -d "$DIR" --overwrite -q -q \
            >/dev/null 2>&1 &
        ;;
    *)
        echo "bench: unknown server $name" >&2
        return 1
        ;;
    esac
    PID=$!
    # Ready when a small read goes through.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if timeout 5 "$BENCH" read --server "$host:$port" --file small.bin \
            --expect-size "$SMALL" --seed "$SEED" --time-limit 2 --retries 1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.3
    done
    echo "bench: $name did not answer on $host:$port" >&2
    stop_server
    return 1
}

stop_server() {
    [[ -n $PID ]] || return 0
    kill "$PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.2
    done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
}

# run NAME SCENARIO TIMEOUT BENCH-ARGS...: appends "scenario=... RESULT-fields"
# to $OUT (and prints it).
run() {
    local name=$1 scenario=$2 limit=$3
    shift 3
    local line
    line=$(timeout $((limit + 30)) "$BENCH" "$@" --label "$name" --pid "$PID" \
        --seed "$SEED" --time-limit "$limit" | grep '^RESULT' || true)
    [[ -n $line ]] || line="RESULT op=? error=\"bench was killed after $((limit + 30)) s\""
    line=${line#RESULT }
    echo "scenario=$scenario server=$name ${line/server=$name /}" | tee -a "$OUT"
}
