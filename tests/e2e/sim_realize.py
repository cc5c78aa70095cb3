"""Measures PUT -> `in_sync` on all nodes (see sim_realize.sh). Standard library only."""

import json
import statistics
import sys
import time
import base64
import urllib.request

URL, PW, GW, SN, N, R = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])


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


def in_sync():
    _, st = call("GET", f"/api/v1/vpn/ipsec/sessions/{conn}/state", headers=BASIC)
    details = st.get("details", [])
    return st.get("state") == "in_sync" and sum(d.get("state") == "in_sync" for d in details) == N, st


def wait_sync(limit=120.0):
    t = time.monotonic()
    while True:
        ok, st = in_sync()
        if ok:
            return time.monotonic() - t
        if time.monotonic() - t > limit:
            states = {}
            for d in st.get("details", []):
                states[d.get("state")] = states.get(d.get("state"), 0) + 1
            raise SystemExit(f"not in_sync on all {N} nodes after {limit}s: {st.get('state')} {states}")
        time.sleep(0.01)


print(f"create -> in_sync on {N} nodes: {wait_sync() * 1000:.0f} ms (includes the nodes' first poll)")
times = []
for i in range(R):
    t = time.monotonic()
    call("PUT", f"/v2.0/vpn/ipsec-site-connections/{conn}",
         {"ipsec_site_connection": {"dpd": {"interval": 10 + i % 2 * 10, "timeout": 120}}}, TOK)
    put = time.monotonic() - t
    times.append(put + wait_sync())
times.sort()
p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
print(f"PUT -> in_sync on all {N} nodes, {R} PUTs: p50 {statistics.median(times) * 1000:.0f} ms, "
      f"p99 {p(0.99):.0f} ms, min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
