"""Server CPU per change at one fleet size (see realize_fanout.sh). Standard library only."""

import base64
import json
import os
import statistics
import sys
import time
import urllib.request

URL, PW, GW, SN = sys.argv[1:5]
M, R, PID, ALL = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
TICK = os.sysconf("SC_CLK_TCK")


def cpu():
    """The server's utime + stime, in seconds."""
    with open(f"/proc/{PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(URL + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=60) as r:
        data = r.read()
        return r, (json.loads(data) if data else None)


auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "password": PW, "domain": {"name": "Default"}}}},
    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
r, _ = call("POST", "/v3/auth/tokens", auth)
TOK = {"X-Auth-Token": r.headers["X-Subject-Token"]}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"admin:{PW}".encode()).decode()}

ike = call("POST", "/v2.0/vpn/ikepolicies", {"ikepolicy": {"name": "sim-ike"}}, TOK)[1]["ikepolicy"]["id"]
ips = call("POST", "/v2.0/vpn/ipsecpolicies", {"ipsecpolicy": {"name": "sim-ipsec"}}, TOK)[1]["ipsecpolicy"]["id"]
svc = call("POST", "/v2.0/vpn/vpnservices", {"vpnservice": {"name": "sim", "router_id": GW}}, TOK)[1]["vpnservice"]["id"]
loc = call("POST", "/v2.0/vpn/endpoint-groups", {"endpoint_group": {"name": "l", "type": "subnet", "endpoints": [SN]}}, TOK)[1]["endpoint_group"]["id"]
peer = call("POST", "/v2.0/vpn/endpoint-groups", {"endpoint_group": {"name": "p", "type": "cidr", "endpoints": ["10.9.0.0/24"]}}, TOK)[1]["endpoint_group"]["id"]
conn = call("POST", "/v2.0/vpn/ipsec-site-connections", {"ipsec_site_connection": {
    "name": "sim", "vpnservice_id": svc, "ikepolicy_id": ike, "ipsecpolicy_id": ips,
    "peer_address": "198.51.100.1", "peer_id": "198.51.100.1", "psk": "sim-secret",
    "local_ep_group_id": loc, "peer_ep_group_id": peer}}, TOK)[1]["ipsec_site_connection"]["id"]


def wait_sync(limit=120.0):
    t = time.monotonic()
    while True:
        _, st = call("GET", f"/api/v1/vpn/ipsec/sessions/{conn}/state", headers=BASIC)
        details = st.get("details", [])
        if st.get("state") == "in_sync" and sum(d.get("state") == "in_sync" for d in details) == M:
            return time.monotonic() - t
        if time.monotonic() - t > limit:
            raise SystemExit(f"not in_sync on the gateway's {M} nodes after {limit}s: {st}")
        time.sleep(0.01)


wait_sync()
# Every node has its first snapshot and waits in a long-poll: let the
# start-up settle, then measure the idle rate (heartbeats, status polls).
time.sleep(10)
IDLE = 10.0
c0, t0 = cpu(), time.monotonic()
time.sleep(IDLE)
idle_rate = (cpu() - c0) / (time.monotonic() - t0)

lat = []
c0, t0 = cpu(), time.monotonic()
for i in range(R):
    t = time.monotonic()
    call("PUT", f"/v2.0/vpn/ipsec-site-connections/{conn}",
         {"ipsec_site_connection": {"dpd": {"interval": 10 + i % 2 * 10, "timeout": 120}}}, TOK)
    lat.append(time.monotonic() - t + wait_sync())
busy, span = cpu() - c0, time.monotonic() - t0
per_change = (busy - idle_rate * span) / R
print(f"{ALL} nodes waiting: server CPU idle {idle_rate * 1000:.1f} ms/s; {R} PUTs in {span:.2f} s used "
      f"{busy * 1000:.0f} ms CPU; per change (minus idle) {per_change * 1000:.1f} ms; "
      f"PUT -> in_sync on the gateway's {M} nodes p50 {statistics.median(lat) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms")
