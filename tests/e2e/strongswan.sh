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

E2E_NAME=e2e
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
needs_root_and_python openstack

# ------------------------------------------------------------ packages
install_packages strongswan-charon strongswan-swanctl libcharon-extra-plugins \
    libstrongswan-standard-plugins iproute2 iputils-ping openssl

# ------------------------------------------------------------ cleanup
BASE="$(mktemp -d /tmp/vpnaas-e2e.XXXXXX)"
NSA="vpnaas-e2e-a-$$"
NSB="vpnaas-e2e-b-$$"
PIDFILE="$BASE/pids"   # "pid comm" per line; the scenario appends restarted charons
touch "$PIDFILE"
NS_MADE=()

cleanup() { end_two_sites $?; }
trap cleanup EXIT

# ------------------------------------------------------------ namespaces
two_sites "$NSA" "$NSB"

# ------------------------------------------------------------ charons
write_charon_conf "$BASE/a"; write_charon_conf "$BASE/b"
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
ADMIN_PASSWORD=$(random_password e2e)
VPNAAS_ADMIN_PASSWORD="$ADMIN_PASSWORD" start_server https \
    --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem"

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
