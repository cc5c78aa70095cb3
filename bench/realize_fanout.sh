#!/usr/bin/env bash
# Benchmark (not a test): server CPU per change as the fleet grows.
# One `vpnaas serve` on 127.0.0.1 (SQLite), G gateways with M transport nodes
# each, one `vpnaas agent --backend sim` process running all G*M nodes over the
# real node API (every node long-polls its configuration). One connection on
# gateway 1 only; bench/realize_fanout.py then PUTs it R times, each until
# `in_sync` on gateway 1's nodes, and reads the server's CPU time
# (utime + stime from /proc/<pid>/stat) around the PUTs, minus its idle rate
# (heartbeats, long-polls ending) measured just before. Nodes heartbeat every
# 60 s and long-poll for 120 s, so that idle rate stays small next to a change.
#
#   bash bench/realize_fanout.sh [G] [M] [R]      (defaults 1000 2 20)
#
# Environment: VPNAAS_BIN (default target/ci/vpnaas); FIXTURE (see below).
# Stops what it started by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
G="${1:-1000}"; M="${2:-2}"; R="${3:-20}"
VPNAAS_BIN="${VPNAAS_BIN:-$ROOT/target/ci/vpnaas}"
case "$VPNAAS_BIN" in /*) ;; *) VPNAAS_BIN="$ROOT/$VPNAAS_BIN" ;; esac
[ -x "$VPNAAS_BIN" ] || { echo "no vpnaas binary at $VPNAAS_BIN" >&2; exit 1; }

BASE="$(mktemp -d /tmp/vpnaas-fanout.XXXXXX)"
PIDS=()
cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do [ -e "/proc/$p" ] || break; sleep 0.1; done
        [ -e "/proc/$p" ] && kill -KILL "$p" 2>/dev/null
    done
    [ "${SIM_KEEP:-0}" = 1 ] && echo "kept $BASE" || rm -rf "$BASE"
}
trap cleanup EXIT

DB="$BASE/vpnaas.db"
serve() {
    : > "$BASE/server.out"
    VPNAAS_ADMIN_PASSWORD="$PW" VPNAAS_LOG=warn "$VPNAAS_BIN" --db "$DB" serve --listen 127.0.0.1:0 \
        >"$BASE/server.out" 2>>"$BASE/server.log" </dev/null &
    SERVER=$!
    PIDS+=("$SERVER")
    URL=""
    for _ in $(seq 300); do
        URL=$(sed -n 's/^vpnaas listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$BASE/server.out" | head -1)
        [ -n "$URL" ] && break; sleep 0.1
    done
    [ -n "$URL" ] || { echo "server did not start" >&2; exit 1; }
}
# FIXTURE=<dir>: registering 1,000s of gateways and nodes with the CLI takes
# minutes, so the first run keeps the registered database there and later
# runs (another binary, same fleet) start from a copy of it.
FIXTURE="${FIXTURE:-}"
if [ -n "$FIXTURE" ] && [ -f "$FIXTURE/fleet" ]; then
    cp "$FIXTURE"/vpnaas.db* "$FIXTURE"/nodes.jsonl "$BASE"/
    read -r PW GW1 SN1 < "$FIXTURE/fleet"
    echo "fleet of $G gateways x $M nodes from $FIXTURE"
    serve
else
    PW="sim-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    serve
    json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
    t0=$(date +%s%N)
    GW1=""; SN1=""
    for g in $(seq "$G"); do
        gw=$("$VPNAAS_BIN" --db "$DB" gateway create "gw-$g" --project admin --external-v4 192.0.2.1 | json id)
        if [ "$g" = 1 ]; then
            GW1="$gw"
            SN1=$("$VPNAAS_BIN" --db "$DB" subnet create sim-lan --gateway "$gw" --cidr 10.0.0.0/24 | json id)
        fi
        for n in $(seq "$M"); do "$VPNAAS_BIN" --db "$DB" node add "gw-$g-n$n" --gateway "$gw"; done
    done > "$BASE/nodes.jsonl"
    echo "registered $G gateways x $M nodes in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    if [ -n "$FIXTURE" ]; then
        kill -TERM "$SERVER"; wait "$SERVER" || true
        mkdir -p "$FIXTURE"
        cp "$DB"* "$BASE/nodes.jsonl" "$FIXTURE"/
        echo "$PW $GW1 $SN1" > "$FIXTURE/fleet"
        serve
    fi
fi

VPNAAS_LOG=warn "$VPNAAS_BIN" agent --backend sim --server "$URL" --nodes-file "$BASE/nodes.jsonl" \
    --sim-delay-ms 0 --heartbeat 60 --wait 120 >"$BASE/sim.out" 2>"$BASE/sim.log" </dev/null &
PIDS+=($!)

python3 "$ROOT/bench/realize_fanout.py" "$URL" "$PW" "$GW1" "$SN1" "$M" "$R" "$SERVER" "$((G * M))"
