#!/usr/bin/env bash
# Crash safety of `vpnaas agent`: SIGKILL it while it applies a gateway's
# connections to a real charon, restart it, and check that charon carries exactly
# the desired state (same connections and keys, current content, no duplicates,
# no leftovers).
#
#   netns (lo 198.18.7.1/32, private /run)      host
#   charon ── VICI socket $BASE/gw/charon.vici ◄── vpnaas agent ──HTTP──► vpnaas serve (127.0.0.1)
#
# No tunnel needs to come up: the connections are response-only and only have to
# be loaded. The scenario (Neutron API calls, kill rounds, comparisons with
# `swanctl --list-conns` and VICI `get-shared`) is tests/e2e/agent_crash.py.
#
# Needs root. Installs strongSwan from Debian packages if missing. Touches only
# what it creates: one namespace, $BASE, and the processes it starts, which its
# EXIT trap stops by PID.
#
# Environment:
#   VPNAAS_BIN    vpnaas binary (default: target/ci/vpnaas)
#   E2E_PYTHON    Python with requests (default: .venv-test/bin/python)
#   CRASH_CONNS   connections (default 30); CRASH_ROUNDS kill rounds (default 4)
#   E2E_KEEP=1    keep $BASE (logs) after the run
set -euo pipefail

E2E_NAME=agent-crash
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
needs_root_and_python requests
install_packages strongswan-charon strongswan-swanctl libstrongswan-standard-plugins iproute2

BASE="$(mktemp -d /tmp/vpnaas-agent-crash.XXXXXX)"
NS="vpnaas-crash-$$"
PIDFILE="$BASE/pids"   # "pid comm" per line; the scenario appends every agent it starts
touch "$PIDFILE"
NS_MADE=()
RESULT="$BASE/result"  # the scenario writes "<passed> <failed>"

cleanup() {
    local rc=$?
    set +e
    stop_pids
    for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null; done
    local passed=0 failed=1
    if [ -s "$RESULT" ]; then read -r passed failed < "$RESULT"; fi
    if [ "$rc" != 0 ]; then
        [ "$failed" -gt 0 ] || failed=1
        show_logs "$BASE"/server.log "$BASE"/agent-*.log "$BASE"/gw/charon.log
    fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then log "kept $BASE"; else rm -rf "$BASE"; fi
    log "$passed passed, $failed failed ($(elapsed)s)"
    exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------ namespace + charon
ip netns add "$NS"; NS_MADE+=("$NS")
ip -n "$NS" addr add 198.18.7.1/32 dev lo
ip -n "$NS" link set lo up

D="$BASE/gw"
write_charon_conf "$D"
start_charon "$NS" "$D"
log "charon up in $NS"

# ------------------------------------------------------------ server
ADMIN_PASSWORD=$(random_password crash)
VPNAAS_ADMIN_PASSWORD="$ADMIN_PASSWORD" VPNAAS_NODE_TIMEOUT=30 start_server http

admin() { "$VPNAAS_BIN" --db "$DB" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
GW=$(admin gateway create crash-gw --project admin --external-v4 198.18.7.1 | json id)
SN=$(admin subnet create crash-lan --gateway "$GW" --cidr 198.19.7.0/24 | json id)
admin node add crash-node --gateway "$GW" > "$BASE/node.json"
json token < "$BASE/node.json" > "$BASE/node.token"
chmod 600 "$BASE/node.token"
NODE=$(json id < "$BASE/node.json")

# ------------------------------------------------------------ scenario
export CRASH_URL="$URL" CRASH_ADMIN_PASSWORD="$ADMIN_PASSWORD" CRASH_BASE="$BASE" CRASH_PIDFILE="$PIDFILE"
export CRASH_BIN="$VPNAAS_BIN" CRASH_NODE="$NODE" CRASH_GW="$GW" CRASH_SUBNET="$SN" CRASH_RESULT="$RESULT"
export CRASH_VICI="$D/charon.vici" CRASH_CONF="$D/strongswan.conf"
"$PYTHON" "$ROOT/tests/e2e/agent_crash.py"
