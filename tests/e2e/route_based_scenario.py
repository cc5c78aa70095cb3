"""The scenario run by tests/e2e/route_based.sh (which builds the two sites,
the server and the agents, and passes them in E2E_* variables).

Through raw NSX Manager calls (as vmware-nsxlib makes them) it creates mirrored
RouteBasedIPSecVPNSessions A<->B with a tunnel port (VTI address) and
`peer_cidrs` (ours: the peer networks routed into the tunnel), and checks,
each within a deadline:
  1. a bad `peer_cidrs` gets NSX's error envelope (400)
  2. realization state in_sync on both nodes; the agents put the VTI address
     and the route on charon's TUN device (ipsec0) in each site's namespace
  3. ping 198.19.1.1 <-> 198.19.2.1 goes through the tunnel: the TUN device's
     and the CHILD_SA's packet counters rise
  4. ping to 198.19.3.1 (not in peer_cidrs) works in the clear and does NOT
     enter the tunnel (counters unchanged), though the selectors are 0.0.0.0/0
  5. while nothing changes, the agents make no `ip` call at all; agent A
     restarts over a drifted ipsec0 and fixes exactly the drift (adoption)
     then a proposal mismatch (A's peer endpoint on an IKE profile B refuses)
     shows NO_PROPOSAL_CHOSEN in NSX's fail_reason on both sides (B's lines
     are unnamed: attributed by IKE_SA), and clears when undone
  6. a second route-based session on node A is refused by its agent (userspace
     ESP carries one), with a failure saying so, and the first keeps working
  7. delete -> the agents remove the addresses and routes, and the SAs go
  8. the same tunnel through Neutron with our route mode (`route_mode: route`,
     `tunnel_addresses`, `peer_cidrs` routed): ACTIVE, VTI address and route on
     ipsec0, pings counted by its SA, NSX shows it route-based; delete cleans up
Prints one "ok - ..." line per check; raises (exit 1) on the first failure.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402
from scenario import Failed, nsx_call, ok, wait  # noqa: E402

E = os.environ
URL = E["E2E_URL"]
PASSWORD = E["E2E_ADMIN_PASSWORD"]
BASE = E["E2E_BASE"]
VPN = "/api/v1/vpn/ipsec"
SITES = {
    "a": {"ns": E["E2E_NS_A"], "gw": E["E2E_GW_A"], "addr": "198.18.0.1", "host": "198.19.1.1",
          "lan": "198.19.1.0/24", "vti": "169.254.10.1"},
    "b": {"ns": E["E2E_NS_B"], "gw": E["E2E_GW_B"], "addr": "198.18.0.2", "host": "198.19.2.1",
          "lan": "198.19.2.0/24", "vti": "169.254.10.2"},
}
PSK = "e2e-psk-" + base64.b32encode(os.urandom(10)).decode().lower()


def nsx(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    return nsx_call(URL, PASSWORD, method, path, body)


def neutron(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A raw Neutron call as the admin (Keystone token, cached)."""
    global TOKEN
    if TOKEN is None:
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": PASSWORD, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        req = urllib.request.Request(URL + "/v3/auth/tokens", data=json.dumps(auth).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            TOKEN = r.headers["X-Subject-Token"]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + "/v2.0" + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "X-Auth-Token": TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


TOKEN: str | None = None


def neutron_create(path: str, key: str, body: dict) -> dict:
    code, obj = neutron("POST", path, {key: body})
    if code != 201:
        raise Failed(f"POST {path}: {code} {obj}")
    return obj[key]


def create(segment: str, body: dict) -> dict:
    code, obj = nsx("POST", f"{VPN}/{segment}", body)
    if code != 201:
        raise Failed(f"POST {segment}: {code} {obj}")
    return obj


def ipj(site: str, *args: str):
    out = subprocess.run(["ip", "-n", SITES[site]["ns"], "-json", *args],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return json.loads(out or "[]")


def tun(site: str) -> dict:
    """charon's TUN device in `site`: addresses, main-table routes, packet counters."""
    link = ipj(site, "-s", "addr", "show", "dev", "ipsec0")[0]
    routes = ipj(site, "route", "show", "table", "main", "dev", "ipsec0")
    return {
        "addrs": sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                        if a.get("scope") == "global"),
        "routes": sorted(r["dst"] for r in routes if r.get("protocol") != "kernel"),
        "tx": link["stats64"]["tx"]["packets"],
        "rx": link["stats64"]["rx"]["packets"],
    }


def swanctl(site: str, *args: str) -> str:
    return scenario.swanctl(BASE, site, *args)


def sa_packets(site: str, conn_id: str) -> tuple[int, int]:
    return scenario.sa_packets(BASE, site, conn_id)


def ping(site: str, dst: str, src: str | None = None, count: int = 3) -> bool:
    cmd = ["ip", "netns", "exec", SITES[site]["ns"], "ping", "-c", str(count), "-i", "0.2", "-W", "2"]
    if src:
        cmd += ["-I", src]
    return subprocess.run(cmd + [dst], capture_output=True, text=True).returncode == 0


def wait_clean(site: str, whose: str) -> None:
    """Waits for agent `site` to take every address and route off ipsec0."""
    wait(f"delete: agent {site.upper()} removed {whose} address and route from ipsec0",
         lambda: (lambda t: (not t["addrs"] and not t["routes"]) or json.dumps(t))(tun(site)))


def netif_calls(site: str) -> int:
    """`ip` calls agent `site` logged (every call is logged at debug)."""
    with open(f"{BASE}/agent-{site}.log", errors="replace") as f:
        return sum(1 for line in f if "agent::netif" in line and " ip" in line)


def restart_agent(site: str, drift: bool = False) -> None:
    """Stops agent `site` (SIGTERM: charon keeps its tunnels), optionally
    damages ipsec0 while it is away, and starts it again."""
    with open(f"{BASE}/agent-{site}.pid") as f:
        pid = int(f.read().strip())
    os.kill(pid, 15)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise Failed(f"agent {site} did not stop")
    if drift:
        ns = SITES[site]["ns"]
        peer_lan = SITES["b" if site == "a" else "a"]["lan"]
        subprocess.run(["ip", "-n", ns, "route", "del", peer_lan, "dev", "ipsec0"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", "169.254.99.1/30", "dev", "ipsec0"], check=True)
        ok(f"agent {site.upper()} stopped; ipsec0 drifted: route deleted, stray 169.254.99.1/30 added")
    subprocess.run(["bash", f"{BASE}/agent-{site}.sh"], check=True)


def main() -> None:
    ike = create("ike-profiles", {"display_name": "rb-ike", "ike_version": "IKE_V2",
                                  "encryption_algorithms": ["AES_128"], "digest_algorithms": ["SHA2_256"],
                                  "dh_groups": ["GROUP14"]})
    tunp = create("tunnel-profiles", {"display_name": "rb-tun", "encryption_algorithms": ["AES_GCM_128"],
                                      "enable_perfect_forward_secrecy": True, "dh_groups": ["GROUP14"]})
    dpd = create("dpd-profiles", {"display_name": "rb-dpd", "dpd_probe_interval": 30})
    eps, sessions = {}, {}
    for me, peer in (("a", "b"), ("b", "a")):
        s, p = SITES[me], SITES[peer]
        svc = create("services", {"display_name": f"rb-svc-{me}", "logical_router_id": s["gw"], "enabled": True})
        lep = create("local-endpoints", {"display_name": f"rb-lep-{me}", "local_address": s["addr"],
                                         "local_id": s["addr"], "ipsec_vpn_service_id": {"target_id": svc["id"]}})
        pep = create("peer-endpoints", {
            "display_name": f"rb-pep-{me}", "peer_address": p["addr"], "peer_id": p["addr"], "psk": PSK,
            "authentication_mode": "PSK", "ike_profile_id": ike["id"], "ipsec_tunnel_profile_id": tunp["id"],
            "dpd_profile_id": dpd["id"],
            "connection_initiation_mode": "INITIATOR" if me == "a" else "RESPOND_ONLY"})
        eps[me] = (svc, lep, pep)
        body = {"display_name": f"rb-{me}-to-{peer}", "resource_type": "RouteBasedIPSecVPNSession",
                "local_endpoint_id": lep["id"], "peer_endpoint_id": pep["id"], "enabled": True,
                "tunnel_ports": [{"ip_subnets": [{"ip_addresses": [s["vti"]], "prefix_length": 30}]}],
                "peer_cidrs": [p["lan"]]}
        if me == "a":
            # 1. A default route would carry the tunnel's own packets into it.
            code, err = nsx("POST", f"{VPN}/sessions", {**body, "peer_cidrs": ["0.0.0.0/0"]})
            if code != 400 or "error_code" not in err or "peer_cidrs" not in err.get("error_message", ""):
                raise Failed(f"peer_cidrs 0.0.0.0/0: expected NSX's 400 envelope, got {code} {err}")
            ok(f"peer_cidrs 0.0.0.0/0 refused: {code} error_code {err['error_code']}: {err['error_message']}")
        sessions[me] = create("sessions", body)
        if sessions[me].get("peer_cidrs") != [p["lan"]] or "tunnel_ports" not in sessions[me]:
            raise Failed(f"session {me} shows {sessions[me]}")
    ok(f"created route-based sessions a={sessions['a']['id']} b={sessions['b']['id']}")

    def state(sid: str) -> dict:
        return nsx("GET", f"{VPN}/sessions/{sid}/state")[1]

    def in_sync() -> bool | str:
        st = {k: state(v["id"]) for k, v in sessions.items()}
        return all(v.get("state") == "in_sync" for v in st.values()) or json.dumps(st)

    # 2. Realized: state in_sync, VTI address and route on each TUN device.
    wait("state in_sync on both nodes", in_sync)
    for me, peer in (("a", "b"), ("b", "a")):
        want = {"addrs": [SITES[me]["vti"] + "/30"], "routes": [SITES[peer]["lan"]]}
        wait(f"agent {me.upper()} put {want['addrs'][0]} and {want['routes'][0]} on ipsec0",
             lambda me=me, want=want: (lambda t: {k: t[k] for k in want} == want or json.dumps(t))(tun(me)))

    # 3. Through the tunnel: the TUN device and the CHILD_SA count the pings.
    ida = sessions["a"]["id"]
    wait("ping 198.19.1.1 -> 198.19.2.1", lambda: ping("a", "198.19.2.1", src="198.19.1.1", count=1), timeout=30)
    t0, s0 = tun("a"), sa_packets("a", ida)
    if not ping("a", "198.19.2.1", src="198.19.1.1", count=5):
        raise Failed("ping A -> B through the tunnel failed once established")
    if not ping("b", "198.19.1.1", src="198.19.2.1", count=5):
        raise Failed("ping B -> A through the tunnel failed")
    t1, s1 = tun("a"), sa_packets("a", ida)
    if t1["tx"] < t0["tx"] + 10 or s1[0] < s0[0] + 10 or s1[1] < s0[1] + 10:
        raise Failed(f"counters did not rise with 10 pings each way: ipsec0 {t0} -> {t1}, SA {s0} -> {s1}")
    ok(f"the pings went through the tunnel: ipsec0 tx {t0['tx']} -> {t1['tx']}, SA in/out {s0} -> {s1}")

    # 4. Not routed into the tunnel: 198.19.3.1 answers in the clear.
    if not ping("a", "198.19.3.1", count=5):
        raise Failed("ping A -> 198.19.3.1 (in the clear) failed")
    t2, s2 = tun("a"), sa_packets("a", ida)
    # The kernel's own IPv6 chatter (router solicitations) may cross ipsec0
    # (libipsec drops it: no IPv6 policy), so only the SA must be exact.
    if t2["tx"] >= t1["tx"] + 5 or s2 != s1:
        routes = subprocess.run(["ip", "-n", SITES["a"]["ns"], "route", "show", "table", "all"],
                                capture_output=True, text=True).stdout
        raise Failed(f"traffic to 198.19.3.1 entered the tunnel: ipsec0 {t1} -> {t2}, SA {s1} -> {s2}; "
                     f"routes on A:\n{routes}")
    ok(f"ping to 198.19.3.1 (not in peer_cidrs) bypassed the 0.0.0.0/0 tunnel (ipsec0 tx {t2['tx']}, SA {s2})")

    # 5. Exactness: heartbeats and status polls, but no `ip` call.
    calls = {s: netif_calls(s) for s in SITES}
    time.sleep(3)
    after = {s: netif_calls(s) for s in SITES}
    if after != calls:
        raise Failed(f"agents ran ip while nothing changed: {calls} -> {after}")
    ok(f"no ip call in 3 s without a change (calls so far: {after})")

    # 5b. Adoption: agent A restarts and finds ipsec0 drifted (its route
    # deleted, a stray address added): it fixes exactly that, and the
    # tunnel is never torn down.
    restart_agent("a", drift=True)
    want = {"addrs": [SITES["a"]["vti"] + "/30"], "routes": [SITES["b"]["lan"]]}
    wait("agent A restarted and fixed the drift on ipsec0 (stray address gone, route back)",
         lambda: (lambda t: {k: t[k] for k in want} == want or json.dumps(t))(tun("a")))
    if not ping("a", "198.19.2.1", src="198.19.1.1", count=2):
        raise Failed("ping A -> B failed after agent A adopted ipsec0")
    ok("the tunnel carries traffic again after the adoption")

    # 5c. A proposal mismatch is named: A's peer endpoint moves to an IKE
    # profile B does not accept; A's session says NO_PROPOSAL_CHOSEN with
    # charon's words, and recovers when the profile is put back.
    no_proposal(ike, eps["a"][2], ida, sessions["b"]["id"])

    # 6. A second route-based session on node A: refused (userspace ESP carries one).
    svc, lep, _ = eps["a"]
    pep2 = create("peer-endpoints", {
        "display_name": "rb-pep-a2", "peer_address": "198.18.0.6", "peer_id": "198.18.0.6", "psk": PSK,
        "authentication_mode": "PSK", "ike_profile_id": ike["id"], "ipsec_tunnel_profile_id": tunp["id"],
        "dpd_profile_id": dpd["id"], "connection_initiation_mode": "RESPOND_ONLY"})
    second = create("sessions", {
        "display_name": "rb-a-second", "resource_type": "RouteBasedIPSecVPNSession",
        "local_endpoint_id": lep["id"], "peer_endpoint_id": pep2["id"], "enabled": True,
        "tunnel_ports": [{"ip_subnets": [{"ip_addresses": ["169.254.20.1"], "prefix_length": 30}]}],
        "peer_cidrs": ["198.19.9.0/24"]})
    st = wait("the second route-based session on A fails, saying why",
              lambda: (lambda s: s if s.get("state") == "failed" and "only one route-based tunnel"
                       in json.dumps(s) else json.dumps(s))(state(second["id"])))
    print(f"    state: {json.dumps(st)[:300]}")
    if "169.254.20.1/30" in tun("a")["addrs"] or second["id"] in swanctl("a", "--list-conns"):
        raise Failed("the refused session reached ipsec0 or charon")
    if not ping("a", "198.19.2.1", src="198.19.1.1", count=2):
        raise Failed("the first session stopped working when a second was refused")
    ok("the refused session is neither on ipsec0 nor in charon; the first still pings")
    code, _ = nsx("DELETE", f"{VPN}/sessions/{second['id']}")
    if code != 200:
        raise Failed(f"DELETE second session: {code}")

    # 7. Delete: addresses and routes off ipsec0, SAs gone.
    for me in ("a", "b"):
        code, body = nsx("DELETE", f"{VPN}/sessions/{sessions[me]['id']}")
        if code != 200:
            raise Failed(f"DELETE session {me}: {code} {body}")
    for me in ("a", "b"):
        wait_clean(me, "the session's")
        sid = sessions[me]["id"]
        wait(f"delete: no SA of the session in charon {me.upper()}",
             lambda me=me, sid=sid: sid not in swanctl(me, "--list-sas") or "still there")
    if ping("a", "198.19.2.1", src="198.19.1.1", count=1):
        raise Failed("198.19.2.1 still reachable after the sessions were deleted")
    ok("after delete, 198.19.2.1 is unreachable from 198.19.1.1")

    neutron_route_mode()


def no_proposal(ike: dict, pep: dict, sid: str, responder: str) -> None:
    other = create("ike-profiles", {"display_name": "rb-ike-other", "ike_version": "IKE_V2",
                                    "encryption_algorithms": ["AES_256"], "digest_algorithms": ["SHA2_512"],
                                    "dh_groups": ["GROUP15"]})

    def set_profile(profile_id: str) -> None:
        code, cur = nsx("GET", f"{VPN}/peer-endpoints/{pep['id']}")
        if code != 200:
            raise Failed(f"GET peer endpoint: {code} {cur}")
        code, body = nsx("PUT", f"{VPN}/peer-endpoints/{pep['id']}", {**cur, "ike_profile_id": profile_id, "psk": PSK})
        if code != 200:
            raise Failed(f"PUT peer endpoint ike_profile_id: {code} {body}")

    def fail_reason(session: str = sid) -> str:
        st = nsx("GET", f"{VPN}/sessions/{session}/status")[1]
        return (st.get("ike_status") or {}).get("fail_reason") or ""

    set_profile(other["id"])
    got = wait("no proposal: A's fail_reason names NO_PROPOSAL_CHOSEN",
               lambda: (lambda r: {"reason": r} if r.startswith("NO_PROPOSAL_CHOSEN: ")
                        else (r or "no reason yet"))(fail_reason()),
               timeout=30)
    print(f"    fail_reason: {got['reason']!r}")
    # The responder's lines come before its IKE_SA has a config (unnamed):
    # the agent attributes them by the IKE_SA the peer's address started.
    got = wait("no proposal: B (the responder) names NO_PROPOSAL_CHOSEN too",
               lambda: (lambda r: {"reason": r} if r.startswith("NO_PROPOSAL_CHOSEN: ")
                        else (r or "no reason yet"))(fail_reason(responder)),
               timeout=30)
    print(f"    fail_reason on B: {got['reason']!r}")
    set_profile(ike["id"])
    wait("no proposal: back on the shared profile, the tunnel pings again",
         lambda: ping("a", "198.19.2.1", src="198.19.1.1", count=1), timeout=30)
    wait("no proposal: the fail_reason is gone once the tunnel is up", lambda: fail_reason() == "" or fail_reason())
    code, body = nsx("DELETE", f"{VPN}/ike-profiles/{other['id']}")
    if code != 200:
        raise Failed(f"DELETE ike profile: {code} {body}")


def neutron_route_mode() -> None:
    """8. The same tunnel made through Neutron with our route mode:
    `route_mode: route`, `tunnel_addresses`, `peer_cidrs` as routes."""
    ike = neutron_create("/vpn/ikepolicies", "ikepolicy", {
        "name": "rm-ike", "auth_algorithm": "sha256", "encryption_algorithm": "aes-128", "pfs": "group14",
        "ike_version": "v2"})
    ipsec = neutron_create("/vpn/ipsecpolicies", "ipsecpolicy", {
        "name": "rm-ipsec", "auth_algorithm": "sha256", "encryption_algorithm": "aes-128", "pfs": "group14"})
    conns = {}
    for me, peer in (("a", "b"), ("b", "a")):
        s, p = SITES[me], SITES[peer]
        svc = neutron_create("/vpn/vpnservices", "vpnservice", {"name": f"rm-svc-{me}", "router_id": s["gw"]})
        conns[me] = neutron_create("/vpn/ipsec-site-connections", "ipsec_site_connection", {
            "name": f"rm-{me}-to-{peer}", "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"],
            "ipsecpolicy_id": ipsec["id"], "peer_address": p["addr"], "peer_id": p["addr"], "psk": PSK,
            "initiator": "bi-directional" if me == "a" else "response-only",
            "route_mode": "route", "tunnel_addresses": [s["vti"] + "/30"], "peer_cidrs": [p["lan"]]})
    ok(f"Neutron route-mode connections a={conns['a']['id']} b={conns['b']['id']}")

    def statuses() -> bool | str:
        got = {me: neutron("GET", f"/vpn/ipsec-site-connections/{c['id']}")[1]["ipsec_site_connection"]
               for me, c in conns.items()}
        return all(v["status"] == "ACTIVE" for v in got.values()) or json.dumps(
            {me: (v["status"], v.get("status_description")) for me, v in got.items()})
    wait("both Neutron route-mode connections ACTIVE", statuses, timeout=40)
    for me, peer in (("a", "b"), ("b", "a")):
        want = {"addrs": [SITES[me]["vti"] + "/30"], "routes": [SITES[peer]["lan"]]}
        wait(f"agent {me.upper()} put the Neutron connection's {want['addrs'][0]} and route on ipsec0",
             lambda me=me, want=want: (lambda t: {k: t[k] for k in want} == want or json.dumps(t))(tun(me)))
    ida = conns["a"]["id"]
    wait("ping 198.19.1.1 -> 198.19.2.1 over the Neutron route-mode tunnel",
         lambda: ping("a", "198.19.2.1", src="198.19.1.1", count=1), timeout=30)
    s0 = sa_packets("a", ida)
    if not ping("a", "198.19.2.1", src="198.19.1.1", count=5):
        raise Failed("ping A -> B over the Neutron route-mode tunnel failed once established")
    s1 = sa_packets("a", ida)
    if s1[0] < s0[0] + 5 or s1[1] < s0[1] + 5:
        raise Failed(f"the Neutron route-mode tunnel's SA did not count 5 pings: {s0} -> {s1}")
    ok(f"pings went through the Neutron route-mode tunnel (SA in/out {s0} -> {s1})")
    code, sess = nsx("GET", f"{VPN}/sessions/{ida}")
    if code != 200 or sess.get("resource_type") != "RouteBasedIPSecVPNSession":
        raise Failed(f"NSX view of the Neutron route-mode connection: {code} {sess}")
    ok("NSX shows the Neutron route-mode connection as a RouteBasedIPSecVPNSession")
    for me in ("a", "b"):
        code, body = neutron("DELETE", f"/vpn/ipsec-site-connections/{conns[me]['id']}")
        if code != 204:
            raise Failed(f"DELETE Neutron connection {me}: {code} {body}")
    for me in ("a", "b"):
        wait_clean(me, "the Neutron connection's")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"not ok - {e}", flush=True)
        raise SystemExit(1)
