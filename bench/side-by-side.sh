#!/usr/bin/env bash
# The side-by-side benchmark in one run: the real neutron-server 29 + neutron-vpnaas 29
# against vpnaas on the same machine, same client, same workload (the shared peer
# recipe, ../shared/peers/bench/side-by-side.sh), then the rows the recipe does not
# have: vpnaas on PostgreSQL at the same N, and vpnaas at HUGE_N connections
# (memory and reads at 100,000). Prints one markdown table (bench/table.py) with
# a column per target and the ratios against neutron.
#
#   cargo build --release -p vpnaas
#   bash bench/side-by-side.sh [RUN_LABEL]
#
# Env: everything side-by-side.sh takes (N=1000, BIG_N=10000, LIST_ITERS, GET_REQUESTS,
#      WRK_SECS, NEUTRON_PORT, VPNAAS_PORT), plus
#      PEER_BENCH   the shared recipe's folder (default ../shared/peers/bench next to the repo)
#      HUGE_N=100000 (0 skips)  SKIP_PG=1 (no PostgreSQL column)  SKIP_PEER=1 (vpnaas columns only)
#      OUT_DIR (default: a new temp folder, printed at the end)
# Loopback only; PostgreSQL is the tests' own cluster (scripts/pg.sh: installed from
# Debian's packages if missing, its own data directory), on a database of the run's own
# that is dropped at the end. Every server started here is stopped by its PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUN_LABEL=${1:-run1}
PEER_BENCH=${PEER_BENCH:-$ROOT/../shared/peers/bench}
N=${N:-1000}
BIG_N=${BIG_N:-10000}
HUGE_N=${HUGE_N:-100000}
LIST_ITERS=${LIST_ITERS:-10}
GET_REQUESTS=${GET_REQUESTS:-200}
WRK_SECS=${WRK_SECS:-8}
PORT=${VPNAAS_EXTRA_PORT:-19799}
export VPNAAS_BIN=${VPNAAS_BIN:-$ROOT/target/release/vpnaas}
export OUT_DIR=${OUT_DIR:-$(mktemp -d -t vpnaas-bench.XXXX)}
DATE=$(date +%F)
PREFIX=$OUT_DIR/$DATE-$RUN_LABEL
[[ -x $VPNAAS_BIN ]] || { echo "no vpnaas binary at $VPNAAS_BIN: cargo build --release -p vpnaas"; exit 1; }
[[ -f $PEER_BENCH/bench.py ]] || { echo "no peer recipe at $PEER_BENCH (set PEER_BENCH)"; exit 1; }
(( HUGE_N <= 200000 && N >= 20 )) || { echo "HUGE_N must be <= 200000"; exit 1; }
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d)
log() { echo "[bench $(date +%T)] $*" >&2; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PIDS=()
PG_DB=
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "vpnaas serve"; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
  done
  if [[ -n $PG_DB ]]; then
    psql_admin -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------ neutron vs vpnaas (the recipe)
if [[ ${SKIP_PEER:-0} != 1 ]]; then
  log "the shared side-by-side recipe (neutron peer and vpnaas on SQLite, N=$N, BIG_N=$BIG_N)"
  N=$N BIG_N=$BIG_N LIST_ITERS=$LIST_ITERS GET_REQUESTS=$GET_REQUESTS WRK_SECS=$WRK_SECS \
    bash "$PEER_BENCH/side-by-side.sh" "$RUN_LABEL" >&2
fi

# ------------------------------------------------------------------ vpnaas alone on one more database
PW=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
export BENCH_PASSWORD=$PW
start_vpnaas() { # start_vpnaas NAME DB_ARGS... -> sets VPID R S
  local name=$1; shift
  VPNAAS_ADMIN_PASSWORD=$PW VPNAAS_LOG=warn "$VPNAAS_BIN" serve --listen "127.0.0.1:$PORT" "$@" \
    >"$WORK/$name.log" 2>&1 &
  VPID=$!
  PIDS+=("$VPID")
  for _ in $(seq 1 150); do port_busy "$PORT" && break; sleep 0.1; done
  port_busy "$PORT" || { log "vpnaas did not listen on $PORT"; cat "$WORK/$name.log"; exit 1; }
  R=$("$VPNAAS_BIN" gateway create bench-gw --project admin --external-v4 172.24.4.10 "$@" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  S=$("$VPNAAS_BIN" subnet create bench-sub --gateway bench-gw --cidr 10.1.0.0/24 "$@" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  log "vpnaas $name pid $VPID on 127.0.0.1:$PORT"
}
stop_last() {
  local pid=${PIDS[-1]}
  kill -TERM "$pid"; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
vbench() { # vbench JSON_OUT PHASES [DB_PID]
  local extra=()
  [[ -n ${3:-} ]] && extra=(--db-pid "$3")
  python3 "$PEER_BENCH/bench.py" --url "http://127.0.0.1:$PORT" --label vpnaas \
    --list-iters "$LIST_ITERS" --get-requests "$GET_REQUESTS" --deadline 1800 \
    --keystone "http://127.0.0.1:$PORT/v3" --username admin --project admin \
    --router-id "$R" --subnet-id "$S" --server-pid "$VPID" "${extra[@]}" \
    --state "$WORK/state.json" --json-out "$1" --phases "$2" >&2
  rm -f "$WORK/state.json"
}
C1=$((N / 5)) C4=$((N * 3 / 10)) C16=$((N - N / 5 - N * 3 / 10))
READS="list_full,list_fields,list_limit,list_limit_marker,get:1,get:16"
WRK="wrk:get:1:$WRK_SECS,wrk:get:16:$WRK_SECS,wrk:list_fields:1:$WRK_SECS,wrk:list_limit:16:$WRK_SECS"

if [[ ${SKIP_PG:-0} != 1 ]]; then
  ADMIN_URL=$(bash scripts/pg.sh start)
  psql_admin() { psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -q "$@"; }
  PG_DB=vpnaas_bench_$$
  psql_admin -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL=${ADMIN_URL%/postgres}/$PG_DB
  PG_PID=$(head -1 "${VPNAAS_PG_DIR:-$ROOT/target/pg}/data/postmaster.pid")
  start_vpnaas vpnaas-pg --db "$PG_URL" --key-file "$WORK/pg.key"
  log "vpnaas on PostgreSQL, N=$N"
  vbench "$PREFIX-vpnaas-pg-n$N.json" \
    "setup,rss:idle,create:1:$C1,create:4:$C4,create:16:$C16,rows,rss:after_creates,$READS,$WRK,rss:after_reads,delete:1:$((N / 2)),rss:after_deletes" \
    "$PG_PID"
  stop_last
fi

if (( HUGE_N > 0 )); then
  start_vpnaas vpnaas-huge --db "$WORK/huge.db"
  log "vpnaas on SQLite, N=$HUGE_N"
  # bench.py takes at most 20,000 creates per phase.
  CREATES=
  for ((left = HUGE_N; left > 0; left -= 20000)); do CREATES+="create:16:$((left < 20000 ? left : 20000)),"; done
  vbench "$PREFIX-vpnaas-n$HUGE_N.json" \
    "setup,rss:idle,${CREATES}rows,rss:after_creates,$READS,$WRK,rss:after_reads,wrk:list_full:64:$WRK_SECS,rss:after_storm"
  stop_last
fi

COLS=()
[[ -f $PREFIX-vpnaas-n$N.json ]] && COLS+=("vpnaas N=$N=$PREFIX-vpnaas-n$N.json")
[[ -f $PREFIX-vpnaas-pg-n$N.json ]] && COLS+=("vpnaas PostgreSQL N=$N=$PREFIX-vpnaas-pg-n$N.json")
[[ -f $PREFIX-vpnaas-n$BIG_N.json ]] && COLS+=("vpnaas N=$BIG_N=$PREFIX-vpnaas-n$BIG_N.json")
[[ -f $PREFIX-vpnaas-n$HUGE_N.json ]] && COLS+=("vpnaas N=$HUGE_N=$PREFIX-vpnaas-n$HUGE_N.json")
NEU=$PREFIX-neutron-n$N.json
[[ -f $NEU ]] || NEU=-
python3 bench/table.py "$NEU" "${COLS[@]}" | tee "$PREFIX-all-table.md"
log "results in $OUT_DIR"
