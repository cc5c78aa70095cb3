#!/usr/bin/env bash
# End-to-end: vpnaas realizes Neutron VPNaaS connections on two real strongSwan
# gateways through `vpnaas agent`, and traffic really flows through the tunnel.
#
#   site A (netns)                                       site B (netns)
#   lo 198.19.1.1/32   vethA 198.18.0.1 ==ESP-in-UDP== vethB 198.18.0.2   lo 198.19.2.1/32
#   charon A (own /run, VICI socket in $BASE/a)          charon B (same, $BASE/b)
#        ^ VICI (unix socket)                                 ^
#   vpnaas agent A ──HTTPS 127.0.0.1──► vpnaas serve ◄──mTLS── vpnaas agent B (on the host)
#
# Everything runs over HTTPS with a throwaway CA made here with openssl: the
# server presents a certificate for 127.0.0.1/localhost and verifies client
# certificates against the same CA (--tls-client-ca). Agent A authenticates with
# its bearer token over TLS (--ca-file), agent B with its client certificate
# only (registered with `node add --cert-file`, no token); the scenario's
# openstacksdk and NSX calls verify the server against the CA.
#
# The agents run on the host, not in the namespaces: a process inside a netns
# can't reach the host's 127.0.0.1, and an agent only needs charon's VICI socket
# (a file) and HTTPS to the server. The scenario itself (Neutron API via
# openstacksdk, state/status checks, ping, SA counters, PSK change, charon
# restart, delete) is tests/e2e/strongswan_scenario.py.
#
# Needs root. Installs strongSwan and ping from Debian packages if missing.
# Touches only what it creates: two namespaces, their veth pair, $BASE, and the
# processes it starts, which its EXIT trap stops by PID.
#
# Environment:
#   VPNAAS_BIN   vpnaas binary (default: target/ci/vpnaas)
#   E2E_PYTHON   Python with openstacksdk (default: .venv-test/bin/python)
#   E2E_KEEP=1   keep $BASE (logs, configs) after the run
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
VPNAAS_BIN="${VPNAAS_BIN:-$ROOT/target/ci/vpnaas}"
case "$VPNAAS_BIN" in /*) ;; *) VPNAAS_BIN="$ROOT/$VPNAAS_BIN" ;; esac
PYTHON="${E2E_PYTHON:-$ROOT/.venv-test/bin/python}"
START_NS=$(date +%s%N)

log() { printf 'e2e: %s\n' "$*"; }
die() { printf 'e2e: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, charon)"
[ -x "$VPNAAS_BIN" ] || die "no vpnaas binary at $VPNAAS_BIN (build it, or set VPNAAS_BIN)"
"$PYTHON" -c 'import openstack' 2>/dev/null \
    || die "$PYTHON has no openstacksdk (run scripts/test.sh to create .venv-test, or set E2E_PYTHON)"

# ------------------------------------------------------------ packages
PKGS="strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins iproute2 iputils-ping openssl"
# shellcheck disable=SC2086
if ! dpkg -s $PKGS >/dev/null 2>&1; then
    log "installing $PKGS"
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS >/dev/null
fi

# ------------------------------------------------------------ cleanup
BASE="$(mktemp -d /tmp/vpnaas-e2e.XXXXXX)"
NSA="vpnaas-e2e-a-$$"
NSB="vpnaas-e2e-b-$$"
PIDFILE="$BASE/pids"   # "pid comm" per line; the scenario appends restarted charons
touch "$PIDFILE"
NS_MADE=()

remember() { # pid comm
    echo "$1 $2" >> "$PIDFILE"
}

stop_pids() {
    # Newest first (agents, then the server), charons last: agents never see charon vanish.
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
    if [ "$rc" != 0 ]; then
        for f in "$BASE"/server.log "$BASE"/agent-a.log "$BASE"/agent-b.log "$BASE"/a/charon.log "$BASE"/b/charon.log; do
            [ -f "$f" ] || continue
            printf '\n----- %s (last 40 lines)\n' "$f"
            tail -n 40 "$f"
        done
    fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        log "kept $BASE"
    else
        rm -rf "$BASE"
    fi
    local ms took
    ms=$(( ($(date +%s%N) - START_NS) / 1000000 ))
    took="$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    if [ "$rc" = 0 ]; then
        log "1 passed, 0 failed (${took}s)"
    else
        log "0 passed, 1 failed (${took}s)"
    fi
    exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------ namespaces
ip netns add "$NSA"; NS_MADE+=("$NSA")
ip netns add "$NSB"; NS_MADE+=("$NSB")
# veth created directly inside the namespaces: nothing appears on the host.
ip link add vethA netns "$NSA" type veth peer name vethB netns "$NSB"
ip -n "$NSA" addr add 198.18.0.1/30 dev vethA
ip -n "$NSB" addr add 198.18.0.2/30 dev vethB
# Protected hosts on lo (this kernel has no dummy interfaces).
ip -n "$NSA" addr add 198.19.1.1/32 dev lo
ip -n "$NSB" addr add 198.19.2.1/32 dev lo
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set vethA up
ip -n "$NSB" link set vethB up

# ------------------------------------------------------------ charons
# Userspace ESP (kernel-libipsec): this machine's kernel has no ESP transform.
write_conf() { # dir
    local d=$1
    mkdir -p "$d/run" "$d/swanctl"
    cat > "$d/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl aes sha1 sha2 hmac gcm gmp pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog { main { path = $d/charon.log
                   time_format = %T
                   append = yes
                   flush_line = yes
                   default = 1
                   ike = 2
                   cfg = 2 } }
}
swanctl { load = random nonce openssl aes sha1 sha2 hmac pem pkcs1 x509 pubkey }
EOF
}

# charon hard-codes /var/run/charon.pid: each gets a private /run, bind-mounted
# inside the mount namespace `ip netns exec` creates (it doesn't leak to the host).
# `ip` execs sh which execs charon, so $! is charon's PID.
start_charon() { # ns dir
    local ns=$1 d=$2
    rm -f "$d/charon.vici"
    ip netns exec "$ns" sh -c "mount --bind $d/run /run && exec env STRONGSWAN_CONF=$d/strongswan.conf /usr/lib/ipsec/charon" \
        >>"$d/charon.stdout" 2>&1 </dev/null &
    remember $! charon
    for _ in $(seq 100); do [ -S "$d/charon.vici" ] && return 0; sleep 0.05; done
    die "charon in $ns did not open $d/charon.vici"
}

write_conf "$BASE/a"; write_conf "$BASE/b"
start_charon "$NSA" "$BASE/a"
start_charon "$NSB" "$BASE/b"
log "charons up in $NSA and $NSB"

# ------------------------------------------------------------ PKI
# A CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and node B's
# client certificate; EC P-256 keys, valid for two days, kept in $BASE only.
PKI="$BASE/pki"
mkdir -m 700 "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=vpnaas e2e CA" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # name extensions
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
    printf '%s\n' "$2" > "$PKI/$1.ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 2 -extfile "$PKI/$1.ext" -out "$PKI/$1.pem" 2>/dev/null
}
issue server "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature"
issue node-b "extendedKeyUsage=clientAuth
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature"
log "test CA, server and node-b certificates in $PKI"

# ------------------------------------------------------------ server
DB="$BASE/vpnaas.db"
ADMIN_PASSWORD="e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
VPNAAS_ADMIN_PASSWORD="$ADMIN_PASSWORD" VPNAAS_LOG="${VPNAAS_LOG:-info}" \
    "$VPNAAS_BIN" --db "$DB" serve --listen 127.0.0.1:0 \
        --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem" \
        >"$BASE/server.out" 2>"$BASE/server.log" </dev/null &
remember $! vpnaas
URL=""
for _ in $(seq 300); do
    URL=$(sed -n 's/^vpnaas listening on \(https:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$BASE/server.out" 2>/dev/null | head -1)
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || die "server did not start (or not on https)"
log "server at $URL"

admin() { "$VPNAAS_BIN" --db "$DB" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

GWA=$(admin gateway create site-a --project admin --external-v4 198.18.0.1 | json id)
GWB=$(admin gateway create site-b --project admin --external-v4 198.18.0.2 | json id)
SNA=$(admin subnet create lan-a --gateway "$GWA" --cidr 198.19.1.0/24 | json id)
SNB=$(admin subnet create lan-b --gateway "$GWB" --cidr 198.19.2.0/24 | json id)
admin node add node-a --gateway "$GWA" > "$BASE/node-a.json"
admin node add node-b --gateway "$GWB" --cert-file "$PKI/node-b.pem" > "$BASE/node-b.json"
json token < "$BASE/node-a.json" > "$BASE/node-a.token"
chmod 600 "$BASE/node-a.token"
[ "$(json auth < "$BASE/node-b.json")" = certificate ] || die "node-b was not registered by certificate"
NODEA=$(json id < "$BASE/node-a.json")
NODEB=$(json id < "$BASE/node-b.json")

# ------------------------------------------------------------ agents
start_agent() { # site node-id credential-args...
    local site=$1 node=$2
    shift 2
    VPNAAS_LOG="${VPNAAS_AGENT_LOG:-info,agent=debug}" "$VPNAAS_BIN" agent \
        --server "$URL" --ca-file "$PKI/ca.pem" --node-id "$node" "$@" \
        --vici "$BASE/$site/charon.vici" --esp userspace \
        --heartbeat 2 --status-interval 1 --retry-max 4 \
        >"$BASE/agent-$site.out" 2>"$BASE/agent-$site.log" </dev/null &
    remember $! vpnaas
}
start_agent a "$NODEA" --token-file "$BASE/node-a.token"
# No token at all for B (and none in the environment): only its certificate.
VPNAAS_NODE_TOKEN= start_agent b "$NODEB" --client-cert "$PKI/node-b.pem" --client-key "$PKI/node-b.key"
log "agents started over HTTPS (node $NODEA by token, node $NODEB by client certificate)"

# ------------------------------------------------------------ scenario
export E2E_URL="$URL" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD" E2E_BASE="$BASE" E2E_PIDFILE="$PIDFILE"
export E2E_NS_A="$NSA" E2E_NS_B="$NSB" E2E_GW_A="$GWA" E2E_GW_B="$GWB" E2E_SUBNET_A="$SNA" E2E_SUBNET_B="$SNB"
export E2E_NODE_A="$NODEA" E2E_NODE_B="$NODEB" E2E_CACERT="$PKI/ca.pem"
"$PYTHON" "$ROOT/tests/e2e/strongswan_scenario.py"
