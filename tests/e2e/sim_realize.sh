#!/usr/bin/env bash
# Benchmark (not a test): realization latency with simulated nodes.
# One `vpnaas serve` on 127.0.0.1, one gateway with N transport nodes, and one
# `vpnaas agent --backend sim` process running all N nodes over the real node API.
# tests/e2e/sim_realize.py then PUTs a connection change through the Neutron API R
# times and measures PUT response -> realization state `in_sync` on all N nodes.
#
#   bash tests/e2e/sim_realize.sh [N] [R] [SIM_DELAY_MS]      (defaults 1000 20 0)
#
# Environment: VPNAAS_BIN (default target/ci/vpnaas). Stops what it started by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
N="${1:-1000}"; R="${2:-20}"; DELAY="${3:-0}"
VPNAAS_BIN="${VPNAAS_BIN:-$ROOT/target/ci/vpnaas}"
case "$VPNAAS_BIN" in /*) ;; *) VPNAAS_BIN="$ROOT/$VPNAAS_BIN" ;; esac
[ -x "$VPNAAS_BIN" ] || { echo "no vpnaas binary at $VPNAAS_BIN" >&2; exit 1; }

BASE="$(mktemp -d /tmp/vpnaas-sim.XXXXXX)"
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
PW="sim-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
VPNAAS_ADMIN_PASSWORD="$PW" VPNAAS_LOG=warn "$VPNAAS_BIN" --db "$DB" serve --listen 127.0.0.1:0 \
    >"$BASE/server.out" 2>"$BASE/server.log" </dev/null &
PIDS+=($!)
URL=""
for _ in $(seq 300); do
    URL=$(sed -n 's/^vpnaas listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$BASE/server.out" | head -1)
    [ -n "$URL" ] && break; sleep 0.1
done
[ -n "$URL" ] || { echo "server did not start" >&2; exit 1; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
GW=$("$VPNAAS_BIN" --db "$DB" gateway create sim-gw --project admin --external-v4 192.0.2.1 | json id)
SN=$("$VPNAAS_BIN" --db "$DB" subnet create sim-lan --gateway "$GW" --cidr 10.0.0.0/24 | json id)
t0=$(date +%s%N)
for i in $(seq "$N"); do "$VPNAAS_BIN" --db "$DB" node add "sim-$i" --gateway "$GW"; done > "$BASE/nodes.jsonl"
echo "registered $N nodes in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

VPNAAS_LOG=warn "$VPNAAS_BIN" agent --backend sim --server "$URL" --nodes-file "$BASE/nodes.jsonl" \
    --sim-delay-ms "$DELAY" --heartbeat 5 >"$BASE/sim.out" 2>"$BASE/sim.log" </dev/null &
PIDS+=($!)

python3 "$ROOT/tests/e2e/sim_realize.py" "$URL" "$PW" "$GW" "$SN" "$N" "$R"
echo "sim agent: $(grep -c . "$BASE/sim.log" || true) log lines; peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/"${PIDS[1]}"/status)"
