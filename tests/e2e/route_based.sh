#!/usr/bin/env bash
# End-to-end: route-based NSX sessions (RouteBasedIPSecVPNSession with
# tunnel_ports and our peer_cidrs) realized by `vpnaas agent` on two real
# strongSwan gateways; traffic to the routed peer networks goes through the
# tunnel interface, traffic to anything else does not, and deleting the
# sessions takes the interface addresses and routes away.
#
#   site A (netns)                                            site B (netns)
#   lo 198.19.1.1/32  vethA 198.18.0.1 ==ESP-in-UDP== vethB 198.18.0.2  lo 198.19.2.1/32
#   ipsec0 169.254.10.1/30, 198.19.2.0/24 -> ipsec0      ipsec0 169.254.10.2/30, 198.19.1.0/24 -> ipsec0
#                                                        lo 198.19.3.1/32 (NOT routed into the tunnel)
#
# This kernel has no XFRM interfaces and no kernel ESP, so the charons use
# userspace ESP (kernel-libipsec) and the agents (--esp userspace) put the
# sessions' VTI addresses and routes on charon's TUN device, ipsec0, in the
# charon's namespace (--netns). charon must not install its own routes for
# the 0.0.0.0/0 selectors ahead of the main table (see the charon config
# below: its table's rule goes after main). With kernel ESP
# (the default, real gateways) the agent makes one XFRM interface per
# session instead (vpn<if_id>); that path is covered by unit tests.
#
# Plain HTTP on 127.0.0.1 (TLS is covered by strongswan.sh). The scenario is
# tests/e2e/route_based_scenario.py (raw NSX calls, as nsxlib makes them).
#
# Needs root. Touches only what it creates: two namespaces, their veth pair,
# $BASE, and the processes it starts, which its EXIT trap stops by PID.
#
# Environment:
#   VPNAAS_BIN   vpnaas binary (default: target/ci/vpnaas)
#   E2E_PYTHON   Python (default: .venv-test/bin/python; only the stdlib is used)
#   E2E_KEEP=1   keep $BASE (logs, configs) after the run
set -euo pipefail

E2E_NAME=e2e-route
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
needs_root_and_python json

install_packages strongswan-charon strongswan-swanctl libcharon-extra-plugins \
    libstrongswan-standard-plugins iproute2 iputils-ping

BASE="$(mktemp -d /tmp/vpnaas-e2e-route.XXXXXX)"
NSA="vpnaas-rb-a-$$"
NSB="vpnaas-rb-b-$$"
PIDFILE="$BASE/pids"
touch "$PIDFILE"
NS_MADE=()

cleanup() { end_two_sites $?; }
trap cleanup EXIT

# ------------------------------------------------------------ namespaces
two_sites "$NSA" "$NSB"
ip -n "$NSB" addr add 198.19.3.1/32 dev lo
# 198.19.3.0/24 is reachable in the clear, never through the tunnel.
ip -n "$NSA" route add 198.19.3.0/24 via 198.18.0.2 dev vethA

# ------------------------------------------------------------ charons
for s in a b; do
    write_charon_conf "$BASE/$s"
    # Route-based: routing decides what enters the tunnel. kernel-libipsec
    # (5.9.8) installs a route for every outbound policy into charon's table
    # 220 whatever install_routes says (that knob is kernel-netlink's): for
    # the 0.0.0.0/0 selectors, `default dev ipsec0 table 220`, looked up
    # before main (rule 220) it would capture everything. So its rule goes
    # after main's (32766): the main table, where the agent routes the peer
    # networks into ipsec0, decides first.
    sed -i 's/^charon {$/charon {\n  install_routes = no\n  routing_table_prio = 40000/' "$BASE/$s/strongswan.conf"
done
start_charon "$NSA" "$BASE/a"
start_charon "$NSB" "$BASE/b"
log "charons up in $NSA and $NSB (userspace ESP, charon's route table after main)"

# ------------------------------------------------------------ server, nodes
ADMIN_PASSWORD=$(random_password e2e)
VPNAAS_ADMIN_PASSWORD="$ADMIN_PASSWORD" start_server http

admin() { "$VPNAAS_BIN" --db "$DB" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

GWA=$(admin gateway create site-a --project admin --external-v4 198.18.0.1 | json id)
GWB=$(admin gateway create site-b --project admin --external-v4 198.18.0.2 | json id)
admin node add node-a --gateway "$GWA" > "$BASE/node-a.json"
admin node add node-b --gateway "$GWB" > "$BASE/node-b.json"
for s in a b; do
    json token < "$BASE/node-$s.json" > "$BASE/node-$s.token"
    chmod 600 "$BASE/node-$s.token"
done

# ------------------------------------------------------------ agents
# Each agent's command is a script of its own, so the scenario can restart
# it (adoption); it records its PID in $BASE/agent-<site>.pid and $PIDFILE.
start_agent() { # site netns
    local site=$1 ns=$2
    cat > "$BASE/agent-$site.sh" <<EOF
VPNAAS_LOG="\${VPNAAS_AGENT_LOG:-info,agent=debug}" "$VPNAAS_BIN" agent \\
    --server "$URL" --node-id "$(json id < "$BASE/node-$site.json")" \\
    --token-file "$BASE/node-$site.token" \\
    --vici "$BASE/$site/charon.vici" --esp userspace --netns "$ns" \\
    --heartbeat 1 --status-interval 1 --retry-max 2 \\
    >>"$BASE/agent-$site.out" 2>>"$BASE/agent-$site.log" </dev/null &
echo "\$! vpnaas" >> "$PIDFILE"
echo "\$!" > "$BASE/agent-$site.pid"
EOF
    bash "$BASE/agent-$site.sh"
}
start_agent a "$NSA"
start_agent b "$NSB"
log "agents started (userspace ESP, interfaces in $NSA / $NSB)"

# ------------------------------------------------------------ scenario
export E2E_URL="$URL" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD" E2E_BASE="$BASE"
export E2E_NS_A="$NSA" E2E_NS_B="$NSB" E2E_GW_A="$GWA" E2E_GW_B="$GWB"
"$PYTHON" "$ROOT/tests/e2e/route_based_scenario.py"
