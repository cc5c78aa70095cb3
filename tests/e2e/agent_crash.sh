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

cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
VPNAAS_BIN="${VPNAAS_BIN:-$ROOT/target/ci/vpnaas}"
case "$VPNAAS_BIN" in /*) ;; *) VPNAAS_BIN="$ROOT/$VPNAAS_BIN" ;; esac
PYTHON="${E2E_PYTHON:-$ROOT/.venv-test/bin/python}"
START_NS=$(date +%s%N)

log() { printf 'agent-crash: %s\n' "$*"; }
die() { printf 'agent-crash: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespace, charon)"
[ -x "$VPNAAS_BIN" ] || die "no vpnaas binary at $VPNAAS_BIN (build it, or set VPNAAS_BIN)"
"$PYTHON" -c 'import requests' 2>/dev/null \
    || die "$PYTHON has no requests (run scripts/test.sh to create .venv-test, or set E2E_PYTHON)"

PKGS="strongswan-charon strongswan-swanctl libstrongswan-standard-plugins iproute2"
# shellcheck disable=SC2086
if ! dpkg -s $PKGS >/dev/null 2>&1; then
    log "installing $PKGS"
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS >/dev/null
fi

BASE="$(mktemp -d /tmp/vpnaas-agent-crash.XXXXXX)"
NS="vpnaas-crash-$$"
PIDFILE="$BASE/pids"   # "pid comm" per line; the scenario appends every agent it starts
touch "$PIDFILE"
NS_MADE=()
RESULT="$BASE/result"  # the scenario writes "<passed> <failed>"

remember() { echo "$1 $2" >> "$PIDFILE"; }

stop_pids() {
    # agents and the server first, charon last
    local pass pid comm
    for pass in others charon; do
        while read -r pid comm; do
            [ -n "$pid" ] || continue
            if [ "$pass" = charon ] && [ "$comm" != charon ]; then continue; fi
            if [ "$pass" = others ] && [ "$comm" = charon ]; then continue; fi
            # Only signal a process we started (a PID may have been reused).
            [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || continue
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || break
                sleep 0.1
            done
            if [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done < <(tac "$PIDFILE")
    done
}

cleanup() {
    local rc=$?
    set +e
    stop_pids
    for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null; done
    local passed=0 failed=1
    if [ -s "$RESULT" ]; then read -r passed failed < "$RESULT"; fi
    if [ "$rc" != 0 ]; then
        [ "$failed" -gt 0 ] || failed=1
        for f in "$BASE"/server.log "$BASE"/agent-*.log "$BASE"/gw/charon.log; do
            [ -f "$f" ] || continue
            printf '\n----- %s (last 40 lines)\n' "$f"
            tail -n 40 "$f"
        done
    fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then log "kept $BASE"; else rm -rf "$BASE"; fi
    local ms
    ms=$(( ($(date +%s%N) - START_NS) / 1000000 ))
    log "$passed passed, $failed failed ($((ms / 1000)).$(printf '%03d' $((ms % 1000)))s)"
    exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------ namespace + charon
ip netns add "$NS"; NS_MADE+=("$NS")
ip -n "$NS" addr add 198.18.7.1/32 dev lo
ip -n "$NS" link set lo up

D="$BASE/gw"
mkdir -p "$D/run"
cat > "$D/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl aes sha1 sha2 hmac gcm gmp pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
  plugins { vici { socket = unix://$D/charon.vici } }
  filelog { main { path = $D/charon.log
                   time_format = %T
                   append = yes
                   flush_line = yes
                   default = 1
                   cfg = 2 } }
}
swanctl { load = random nonce openssl aes sha1 sha2 hmac pem pkcs1 x509 pubkey }
EOF
# charon hard-codes /var/run/charon.pid: a private /run inside the netns' mount namespace.
ip netns exec "$NS" sh -c "mount --bind $D/run /run && exec env STRONGSWAN_CONF=$D/strongswan.conf /usr/lib/ipsec/charon" \
    >>"$D/charon.stdout" 2>&1 </dev/null &
remember $! charon
for _ in $(seq 100); do [ -S "$D/charon.vici" ] && break; sleep 0.05; done
[ -S "$D/charon.vici" ] || die "charon did not open $D/charon.vici"
log "charon up in $NS"

# ------------------------------------------------------------ server
DB="$BASE/vpnaas.db"
ADMIN_PASSWORD="crash-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
VPNAAS_ADMIN_PASSWORD="$ADMIN_PASSWORD" VPNAAS_NODE_TIMEOUT=30 VPNAAS_LOG="${VPNAAS_LOG:-info}" \
    "$VPNAAS_BIN" --db "$DB" serve --listen 127.0.0.1:0 >"$BASE/server.out" 2>"$BASE/server.log" </dev/null &
remember $! vpnaas
URL=""
for _ in $(seq 300); do
    URL=$(sed -n 's/^vpnaas listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$BASE/server.out" 2>/dev/null | head -1)
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || die "server did not start"
log "server at $URL"

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
