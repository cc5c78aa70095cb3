"""The end-to-end scenario run by tests/e2e/strongswan.sh (which builds the two
strongSwan sites, the server and the agents, and passes them in E2E_* variables).
The server speaks HTTPS only; every call here verifies it against the test CA
(E2E_CACERT).

Through the Neutron API (openstacksdk) it creates mirrored connections A<->B and
checks, each within a deadline:
  1. realization state in_sync on both nodes (NSX state endpoint), both ACTIVE
  2. ping across the protected addresses, and the SA packet counters rise (in
     charon and in the status the agent reports)
  3. a wrong PSK on one side -> both connections DOWN, and within 2 s of the
     change Neutron's status_description and NSX's fail_reason name the
     authentication failure (measured and printed: from the PSK update, and
     from the agent's log line of charon's event); fixed -> ACTIVE, ping again
  4. charon A stops -> within a heartbeat A's connection is ERROR with a
     NODE_FAILURE description, and a Neutron update is accepted; charon A
     starts again -> its agent re-applies everything -> ACTIVE, ping again
  5. delete -> the SAs are gone from list-sas, the state endpoint says 404/600
Prints one "ok - ..." line per check; raises (exit 1) on the first failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import time

import openstack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats_check import check_statistics  # noqa: E402
import metrics_check  # noqa: E402
import scenario  # noqa: E402
from scenario import Failed, nsx_call, ok  # noqa: E402

E = os.environ
URL = E["E2E_URL"]
PASSWORD = E["E2E_ADMIN_PASSWORD"]
BASE = E["E2E_BASE"]
CACERT = E["E2E_CACERT"]
TLS = ssl.create_default_context(cafile=CACERT)
SITES = {
    "a": {"ns": E["E2E_NS_A"], "gw": E["E2E_GW_A"], "subnet": E["E2E_SUBNET_A"], "node": E["E2E_NODE_A"],
          "addr": "198.18.0.1", "host": "198.19.1.1", "lan": "198.19.1.0/24"},
    "b": {"ns": E["E2E_NS_B"], "gw": E["E2E_GW_B"], "subnet": E["E2E_SUBNET_B"], "node": E["E2E_NODE_B"],
          "addr": "198.18.0.2", "host": "198.19.2.1", "lan": "198.19.2.0/24"},
}
PSK = "e2e-psk-" + base64.b32encode(os.urandom(10)).decode().lower()


def wait(desc: str, fn, timeout: float = 60.0, interval: float = 0.5):
    """Polls fn() (see scenario.wait), also through openstacksdk's errors."""
    return scenario.wait(desc, fn, timeout, interval, scenario.TRANSIENT + (openstack.exceptions.SDKException,))


def nsx(path: str) -> tuple[int, dict]:
    return nsx_call(URL, PASSWORD, "GET", path, tls=TLS)


def swanctl(site: str, *args: str) -> str:
    return scenario.swanctl(BASE, site, *args)


def sas(site: str) -> str:
    return swanctl(site, "--list-sas")


def sa_packets_in(site: str, conn_id: str) -> int:
    """Inbound packets of the installed CHILD_SAs of conn_id."""
    return scenario.sa_packets(BASE, site, conn_id)[0]


def ping(src: str, dst_site: str, count: int = 3) -> bool:
    s, d = SITES[src], SITES[dst_site]
    r = subprocess.run(
        ["ip", "netns", "exec", s["ns"], "ping", "-c", str(count), "-i", "0.2", "-W", "2", "-I", s["host"], d["host"]],
        capture_output=True, text=True,
    )
    return r.returncode == 0


def main() -> None:
    if not URL.startswith("https://"):
        raise Failed(f"the e2e runs over HTTPS, but the server is at {URL}")
    cloud = openstack.connect(
        load_yaml_config=False, load_envvars=False, auth_type="password",
        auth_url=URL + "/v3", username="admin", password=PASSWORD, project_name="admin",
        user_domain_name="Default", project_domain_name="Default",
        identity_api_version="3", region_name="RegionOne", interface="public",
        cacert=CACERT,
    )
    net = cloud.network
    ike = net.create_vpn_ike_policy(
        name="e2e-ike", auth_algorithm="sha256", encryption_algorithm="aes-128",
        pfs="group14", ike_version="v2", lifetime={"units": "seconds", "value": 3600},
    )
    ipsec = net.create_vpn_ipsec_policy(
        name="e2e-ipsec", auth_algorithm="sha256", encryption_algorithm="aes-128",
        pfs="group14", transform_protocol="esp", encapsulation_mode="tunnel",
    )
    conns = {}
    for me, peer in (("a", "b"), ("b", "a")):
        s, p = SITES[me], SITES[peer]
        svc = net.create_vpn_service(name=f"e2e-svc-{me}", router_id=s["gw"])
        local = net.create_vpn_endpoint_group(name=f"e2e-local-{me}", type="subnet", endpoints=[s["subnet"]])
        remote = net.create_vpn_endpoint_group(name=f"e2e-peer-{me}", type="cidr", endpoints=[p["lan"]])
        conns[me] = net.create_vpn_ipsec_site_connection(
            name=f"e2e-{me}-to-{peer}", vpnservice_id=svc.id, ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id,
            peer_address=p["addr"], peer_id=p["addr"], psk=PSK,
            local_ep_group_id=local.id, peer_ep_group_id=remote.id,
            initiator="bi-directional", dpd={"action": "hold", "interval": 30, "timeout": 120},
        )
    ok(f"created mirrored connections a={conns['a'].id} b={conns['b'].id}")

    def state(site: str) -> dict:
        return nsx(f"/api/v1/vpn/ipsec/sessions/{conns[site].id}/state")[1]

    def in_sync() -> bool | str:
        st = {s: state(s) for s in conns}
        return all(v.get("state") == "in_sync" for v in st.values()) or json.dumps(st)

    def statuses(want: str):
        def check():
            got = {s: net.get_vpn_ipsec_site_connection(c.id).status for s, c in conns.items()}
            return all(v == want for v in got.values()) or json.dumps(got)
        return check

    def up_and_pinging(label: str) -> None:
        wait(f"{label}: state in_sync on both nodes", in_sync)
        wait(f"{label}: both connections ACTIVE", statuses("ACTIVE"))
        before = sa_packets_in("a", conns["a"].id)
        wait(f"{label}: ping 198.19.1.1 -> 198.19.2.1 through the tunnel", lambda: ping("a", "b"), timeout=20)
        wait(f"{label}: ping 198.19.2.1 -> 198.19.1.1 through the tunnel", lambda: ping("b", "a"), timeout=20)
        after = sa_packets_in("a", conns["a"].id)
        if after < before + 6:
            raise Failed(f"{label}: SA inbound packets on A went {before} -> {after}, expected +6 or more")
        ok(f"{label}: charon A's SA counted the pings (in packets {before} -> {after})")

    # 1-2. Up, traffic flows, counters rise (in charon, and in what the agent reports).
    up_and_pinging("create")
    cid = conns["a"].id
    reported = wait(
        "agent A reports the SA's traffic counters (NSX session status)",
        lambda: (lambda st: st if st.get("aggregate_traffic_counters", {}).get("packets_in", 0) >= 6 else json.dumps(st))(
            nsx(f"/api/v1/vpn/ipsec/sessions/{cid}/status")[1]),
        timeout=20,
    )
    print(f"    status: {reported.get('session_status')} counters {reported.get('aggregate_traffic_counters')}")
    # NSX statistics and summary, read as nsxlib's raw client does: counters
    # rise with real traffic, a reset starts them from zero, the summary counts it.
    stats = check_statistics(URL, ("admin", PASSWORD), cid, lambda: ping("a", "b", count=2), tls=TLS)
    ok(f"NSX statistics rise with traffic, reset, and the summary counts the session: "
       f"{stats.get('aggregate_traffic_counters')}")
    metrics_move_with_traffic(cloud, cid)

    # 3. Wrong PSK on one side -> DOWN on both, with the reason; fixed -> ACTIVE again.
    net.update_vpn_ipsec_site_connection(conns["a"], psk=PSK + "-wrong")
    wrong_psk_reason_is_fast(net, conns, time.time())
    wait("wrong PSK on A: state in_sync (the change is applied)", in_sync)
    wait("wrong PSK on A: both connections DOWN", statuses("DOWN"), timeout=60)
    st = nsx(f"/api/v1/vpn/ipsec/sessions/{cid}/status")[1]
    print(f"    status says: {st.get('session_status')} ike_status={st.get('ike_status')}")
    if ping("a", "b", count=1):
        raise Failed("ping still works with mismatched PSKs")
    ok("wrong PSK on A: no traffic passes")
    net.update_vpn_ipsec_site_connection(conns["a"], psk=PSK)
    up_and_pinging("PSK fixed")
    rekeys_are_events(conns)

    # 4. charon A stops: ERROR with the reason within a heartbeat, still
    # updatable; it starts again: the agent reconnects and re-applies everything.
    charon_down_is_an_error(net, conns)
    up_and_pinging("after charon A restart")

    # 5. Delete: SAs gone from list-sas, state endpoint 404 / error_code 600.
    for c in conns.values():
        net.delete_vpn_ipsec_site_connection(c)
    for site, c in conns.items():
        wait(f"delete: no SA of {c.id} in charon {site.upper()}'s list-sas",
             lambda site=site, c=c: c.id not in sas(site) or sas(site))
        wait(f"delete: connection unloaded from charon {site.upper()}",
             lambda site=site, c=c: c.id not in swanctl(site, "--list-conns") or "still loaded")
        code, body = nsx(f"/api/v1/vpn/ipsec/sessions/{c.id}/state")
        if code != 404 or body.get("error_code") != 600:
            raise Failed(f"state of deleted {c.id}: {code} {body}")
        ok(f"delete: state endpoint of {c.id} answers 404 with error_code 600")


def metrics_move_with_traffic(cloud, cid: str) -> None:
    """/metrics (admin token on the API listener): the tunnel is up and its
    bytes-in counter rises with real pings through it."""
    os.environ["REQUESTS_CA_BUNDLE"] = CACERT  # metrics_check uses requests
    token = cloud.auth_token
    wait("metrics: vpnaas_tunnel_up is 1", lambda: metrics_check.tunnel_up(URL, token, cid) or "down", timeout=20)
    before = metrics_check.tunnel_bytes_in(URL, token, cid) or 0.0

    def rose():
        ping("a", "b", count=2)
        now = metrics_check.tunnel_bytes_in(URL, token, cid) or 0.0
        return now > before or f"bytes_in {before} -> {now}"
    got = wait("metrics: vpnaas_tunnel_bytes_in_total rises with traffic", rose, timeout=20, interval=1.0)
    print(f"    metrics: bytes_in {before:.0f} -> rose ({got})")


def conn_view(net, conn_id: str) -> dict:
    """The raw Neutron view (openstacksdk drops attributes it does not know)."""
    r = net.get(f"/vpn/ipsec-site-connections/{conn_id}")
    r.raise_for_status()
    return r.json()["ipsec_site_connection"]


def agent_event_time(site: str, needles: tuple[str, ...], after: float) -> float | None:
    """Wall time of the first `charon log` line the agent logged after `after`
    that contains one of `needles` (the agent logs each event as it arrives)."""
    try:
        with open(f"{BASE}/agent-{site}.log", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        if "charon log" not in line or not any(n in line for n in needles):
            continue
        m = re.match(r"\x1b?\[?[0-9;]*m?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
        if not m:
            m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
        if not m:
            continue
        ts = m.group(1)
        whole, _, frac = ts.partition(".")
        t = time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) - time.timezone
        t += float("0." + frac) if frac else 0.0
        if t >= after:
            return t
    return None


def wrong_psk_reason_is_fast(net, conns: dict, changed_at: float) -> None:
    """Issue 12: a wrong PSK shows the authentication failure through the API
    within 2 s of charon's event. Polls both connections every 50 ms."""
    needles = ("AUTHENTICATION_FAILED", "MAC mismatched", "AUTH_FAILED", "peer authentication failed")
    seen: dict[str, tuple[float, str]] = {}
    deadline = changed_at + 30
    while len(seen) < 2 and time.time() < deadline:
        for site, c in conns.items():
            if site in seen:
                continue
            d = conn_view(net, c.id).get("status_description") or ""
            if d.startswith("AUTHENTICATION_FAILED"):
                seen[site] = (time.time(), d)
        time.sleep(0.05)
    if len(seen) < 2:
        raise Failed(f"wrong PSK: status_description named the failure only on {sorted(seen)} within 30 s")
    for site in sorted(seen):
        t, d = seen[site]
        ev = agent_event_time(site, needles, changed_at - 1)
        since_change = t - changed_at
        since_event = (t - ev) if ev is not None else None
        ev_txt = f"{since_event:.3f}s after agent {site.upper()} logged charon's event" if ev is not None else "no event line in the agent log"
        print(f"    MEASURE wrong-PSK reason on {site.upper()}: {since_change:.3f}s after the PSK update, {ev_txt}: {d!r}",
              flush=True)
        limit_from = since_event if since_event is not None else since_change
        if limit_from > 2.0:
            raise Failed(f"wrong PSK on {site.upper()}: reason visible {limit_from:.3f}s after charon's event (> 2 s)")
        ok(f"wrong PSK: {site.upper()}'s status_description names the authentication failure")
    code, st = nsx(f"/api/v1/vpn/ipsec/sessions/{conns['a'].id}/status")
    reason = (st.get("ike_status") or {}).get("fail_reason") or ""
    if code != 200 or not reason.startswith("AUTHENTICATION_FAILED"):
        # The tunnel may be mid-retry (CONNECTING, no reason yet): wait briefly.
        wait("wrong PSK: NSX fail_reason names the authentication failure",
             lambda: (lambda r: r if r.startswith("AUTHENTICATION_FAILED") else json.dumps(st))(
                 (nsx(f"/api/v1/vpn/ipsec/sessions/{conns['a'].id}/status")[1].get("ike_status") or {})
                 .get("fail_reason") or ""),
             timeout=5, interval=0.05)
    else:
        ok(f"wrong PSK: NSX fail_reason names the authentication failure: {reason!r}")


def rekeys_are_events(conns: dict) -> None:
    """charon's ike-rekey / child-rekey events reach agent A (parsed with the
    tunnel's name), and the tunnel stays up through them."""
    cid = conns["a"].id

    def rekey(what: str):
        # charon refuses a rekey while another exchange of the SA is under way
        # (e.g. the peer's DPD or a rekey just started): try again.
        def go():
            try:
                swanctl("a", "--rekey", what, cid)
                return True
            except subprocess.CalledProcessError as e:
                return f"swanctl --rekey {what}: exit {e.returncode}"
        return go

    def seen(kind: str):
        def check():
            try:
                with open(f"{BASE}/agent-a.log", errors="replace") as f:
                    text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
            except OSError as e:
                return str(e)
            return any(kind in line and cid in line for line in text.splitlines()) or f"no {kind} event yet"
        return check

    # One at a time: a CHILD rekey can't start while the IKE SA is rekeying.
    wait("rekey: swanctl --rekey --child", rekey("--child"), timeout=10, interval=0.5)
    wait("rekey: agent A saw charon's child-rekey event", seen("ChildRekey"), timeout=10, interval=0.2)
    wait("rekey: swanctl --rekey --ike", rekey("--ike"), timeout=10, interval=0.5)
    wait("rekey: agent A saw charon's ike-rekey event", seen("IkeRekey"), timeout=10, interval=0.2)
    wait("rekey: ping still passes", lambda: ping("a", "b", count=1), timeout=10)


def charon_down_is_an_error(net, conns: dict) -> None:
    """Issue 12 item 2: charon A dead and its socket gone -> A's connection
    leaves ACTIVE for ERROR with a NODE_FAILURE description within one
    heartbeat (the agent runs with --heartbeat 2), and Neutron still accepts
    an update (ERROR is not a pending state). Then charon starts again."""
    stop_charon("a")
    stopped = time.monotonic()
    cid = conns["a"].id

    def error_with_reason():
        v = conn_view(net, cid)
        d = v.get("status_description") or ""
        return (v["status"] == "ERROR" and d.startswith("NODE_FAILURE")) or json.dumps(
            {"status": v["status"], "status_description": d})

    wait("charon A stopped: A's connection ERROR with a NODE_FAILURE description", error_with_reason,
         timeout=3.0, interval=0.1)
    print(f"    MEASURE charon-down reported {time.monotonic() - stopped:.3f}s after charon A stopped: "
          f"{conn_view(net, cid).get('status_description')!r}", flush=True)
    code, st = nsx(f"/api/v1/vpn/ipsec/sessions/{cid}/state")
    if code != 200 or st.get("state") != "failed":
        raise Failed(f"charon A stopped: NSX state is {code} {st}, expected failed")
    ok("charon A stopped: NSX state failed: " + json.dumps(st.get("details", [{}])[0].get("failure_message")))
    r = net.put(f"/vpn/ipsec-site-connections/{cid}",
                json={"ipsec_site_connection": {"description": "updated while charon is down"}}, raise_exc=False)
    if r.status_code != 200:
        raise Failed(f"charon A stopped: a Neutron update was refused: {r.status_code} {r.text}")
    ok("charon A stopped: a Neutron update is accepted (not VPNStateInvalidToUpdate)")
    start_charon("a")


def restart_charon(site: str) -> None:
    stop_charon(site)
    start_charon(site)


def stop_charon(site: str) -> None:
    d = f"{BASE}/{site}"
    pids = []
    with open(E["E2E_PIDFILE"]) as f:
        for line in f:
            pid, comm = line.split()
            if comm == "charon":
                pids.append(int(pid))
    victim = None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"STRONGSWAN_CONF={d}/strongswan.conf".encode() in f.read():
                    victim = pid
        except OSError:
            continue
    if victim is None:
        raise Failed(f"no running charon for site {site}")
    os.kill(victim, 15)
    for _ in range(100):
        if not os.path.exists(f"/proc/{victim}"):
            break
        time.sleep(0.1)
    else:
        raise Failed(f"charon {victim} did not stop")
    if os.path.exists(f"{d}/charon.vici"):
        os.unlink(f"{d}/charon.vici")
    ok(f"charon {site.upper()} stopped (pid {victim})")


def start_charon(site: str) -> None:
    d = f"{BASE}/{site}"
    ns = SITES[site]["ns"]
    with open(f"{d}/charon.stdout", "ab") as out:
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, "sh", "-c",
             f"mount --bind {d}/run /run && exec env STRONGSWAN_CONF={d}/strongswan.conf /usr/lib/ipsec/charon"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    with open(E["E2E_PIDFILE"], "a") as f:
        f.write(f"{p.pid} charon\n")
    wait(f"charon {site.upper()} restarted (pid {p.pid})", lambda: os.path.exists(f"{d}/charon.vici"), timeout=10)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"not ok - {e}", flush=True)
        sys.exit(1)
