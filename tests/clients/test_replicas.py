"""Several API replicas on one PostgreSQL database.

Three `vpnaas serve` processes on different ports share one database (the
test run's PostgreSQL, VPNAAS_TEST_PG). Simulated nodes of three gateways are
spread over them (each agent names all three replicas, its own first, and
moves on when one fails). Writes go through all three at once; one replica is
SIGKILLed in the middle. Then:
- every write a replica acknowledged (2xx) is there, read through any survivor;
- a write through one replica wakes nodes long-polling another at once
  (PostgreSQL LISTEN/NOTIFY): every connection's realization state reaches
  `in_sync` on every node, through the survivors;
- request ids are one log: a write's `x-nsx-requestid` from one replica is
  answered by another.

Skipped (reported as such) on a SQLite-only run: one SQLite file has one
server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import PG, Server, _bin_path

pytestmark = pytest.mark.skipif(not PG, reason="needs PostgreSQL (VPNAAS_TEST_PG): replicas share one database")

TIMEOUT = 30
NSX = "/api/v1/vpn/ipsec"


def token(url: str, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = requests.post(url + "/v3/auth/tokens", json=body, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def post(url: str, tok: str, path: str, body: dict) -> requests.Response:
    return requests.post(url + path, json=body, headers={"X-Auth-Token": tok}, timeout=TIMEOUT)


def created(r: requests.Response) -> dict:
    assert r.status_code == 201, r.text
    return next(iter(r.json().values()))


def test_three_replicas_one_killed_nothing_acknowledged_lost_all_nodes_in_sync():
    root = Path(tempfile.mkdtemp(prefix="vpnaas-replicas-"))
    servers: list[Server] = []
    agents: list[subprocess.Popen] = []
    ok = False
    try:
        (root / "a").mkdir()
        first = Server(_bin_path(), root / "a")
        first.start()
        servers.append(first)
        for name in ("b", "c"):
            d = root / name
            d.mkdir()
            shutil.copy(first.key_file, d / "vpnaas.key")  # one key for every replica
            s = Server(_bin_path(), d, pg_name=first.pg_name)
            s.admin_password = first.admin_password
            s.start()
            servers.append(s)
        urls = [s.url for s in servers]
        assert len(set(urls)) == 3

        # Three gateways with a subnet and two nodes each, made once.
        nodes_by_replica: list[list[dict]] = [[], [], []]
        for g in range(3):
            first.admin("gateway", "create", f"rgw{g}", "--project", "admin", "--external-v4", f"172.24.9.{g + 1}")
            first.admin("subnet", "create", f"rsub{g}", "--gateway", f"rgw{g}", "--cidr", f"10.9{g}.0.0/24")
            for k in range(2):
                n = first.admin("node", "add", f"rn{g}-{k}", "--gateway", f"rgw{g}")
                nodes_by_replica[(g + k) % 3].append({"id": n["id"], "token": n["token"]})
        all_nodes = [n for ns in nodes_by_replica for n in ns]
        for i, ns in enumerate(nodes_by_replica):
            f = root / f"nodes-{i}.jsonl"
            f.write_text("".join(json.dumps(n) + "\n" for n in ns))
            order = ",".join(urls[i:] + urls[:i])  # its own replica first
            log = open(root / f"agent-{i}.log", "w")
            agents.append(subprocess.Popen(
                [str(_bin_path()), "agent", "--backend", "sim", "--server", order, "--nodes-file", str(f),
                 "--heartbeat", "1", "--wait", "5"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))

        toks = [token(u, first.admin_password) for u in urls]  # one token per replica
        # (a token issued by one replica is valid on every other: check one)
        r = requests.get(urls[2] + "/v2.0/vpn/ikepolicies", headers={"X-Auth-Token": toks[0]}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        ike = created(post(urls[0], toks[0], "/v2.0/vpn/ikepolicies", {"ikepolicy": {"name": "r-ike"}}))
        ipsec = created(post(urls[1], toks[1], "/v2.0/vpn/ipsecpolicies", {"ipsecpolicy": {"name": "r-ipsec"}}))
        routers = {r["name"]: r["id"] for r in requests.get(
            urls[0] + "/v2.0/routers", headers={"X-Auth-Token": toks[0]}, timeout=TIMEOUT).json()["routers"]}
        subnets = {s["name"]: s["id"] for s in requests.get(
            urls[0] + "/v2.0/subnets", headers={"X-Auth-Token": toks[0]}, timeout=TIMEOUT).json()["subnets"]}
        site = []
        for g in range(3):
            i = g % 3
            svc = created(post(urls[i], toks[i], "/v2.0/vpn/vpnservices",
                               {"vpnservice": {"name": f"r-svc{g}", "router_id": routers[f"rgw{g}"]}}))
            local = created(post(urls[i], toks[i], "/v2.0/vpn/endpoint-groups", {"endpoint_group": {
                "name": f"r-l{g}", "type": "subnet", "endpoints": [subnets[f"rsub{g}"]]}}))
            site.append((svc["id"], local["id"]))

        # Writers on every replica at once; replica 1 is killed mid-run.
        acked: list[tuple[str, str]] = []  # (connection id, x-nsx-requestid or "")
        lock = threading.Lock()
        stop = threading.Event()

        def writer(i: int):
            n = 0
            while not stop.is_set() and n < 12:
                g = (i + n) % 3
                try:
                    peer = post(urls[i], toks[i], "/v2.0/vpn/endpoint-groups", {"endpoint_group": {
                        "name": f"r-p{i}-{n}", "type": "cidr", "endpoints": [f"10.{200 + i}.{n}.0/24"]}})
                    if peer.status_code != 201:
                        n += 1
                        continue
                    r = post(urls[i], toks[i], "/v2.0/vpn/ipsec-site-connections", {"ipsec_site_connection": {
                        "name": f"r-c{i}-{n}", "vpnservice_id": site[g][0], "ikepolicy_id": ike["id"],
                        "ipsecpolicy_id": ipsec["id"], "peer_address": f"198.51.100.{10 * i + n + 1}",
                        "peer_id": f"peer-{i}-{n}", "psk": f"key-{i}-{n}", "local_ep_group_id": site[g][1],
                        "peer_ep_group_id": next(iter(peer.json().values()))["id"]}})
                except requests.RequestException:
                    if i == 1:
                        return  # its replica is gone
                    raise
                if r.status_code == 201:
                    with lock:
                        acked.append((created(r)["id"], r.headers.get("x-openstack-request-id", "")))
                elif i != 1:
                    raise AssertionError(f"replica {i}: {r.status_code} {r.text}")
                n += 1

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = servers[1]
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        survivors = [0, 2]
        assert len(acked) >= 12, f"only {len(acked)} writes acknowledged"

        # Nothing acknowledged is lost, whichever survivor reads.
        for cid, _ in acked:
            for i in survivors:
                r = requests.get(f"{urls[i]}/v2.0/vpn/ipsec-site-connections/{cid}",
                                 headers={"X-Auth-Token": toks[i]}, timeout=TIMEOUT)
                assert r.status_code == 200, f"acknowledged {cid} missing on replica {i}: {r.text}"

        # Every node reaches in_sync for every connection, through the survivors
        # (the nodes of the killed replica moved to the next one).
        basic = ("admin", first.admin_password)
        deadline = time.monotonic() + 60
        pending = {cid for cid, _ in acked}
        last = {}
        while pending and time.monotonic() < deadline:
            for cid in sorted(pending):
                r = requests.get(f"{urls[2]}{NSX}/sessions/{cid}/state", auth=basic, timeout=TIMEOUT)
                assert r.status_code == 200, r.text
                st = r.json()
                last[cid] = st
                if st["state"] == "in_sync" and all(d["state"] == "in_sync" for d in st["details"]):
                    pending.discard(cid)
            time.sleep(0.5)
        assert not pending, f"{len(pending)} connections not in sync, e.g. {last[next(iter(pending))]}"
        # Each gateway's two nodes both answered.
        some = last[acked[0][0]]
        assert len(some["details"]) == 2, some

        # A write through replica 0 reaches the nodes long-polling replica 2 at
        # once (NOTIFY; without it they would wait for their 10 s re-check).
        for cid, _ in acked[:3]:
            t0 = time.monotonic()
            r = requests.put(f"{urls[0]}/v2.0/vpn/ipsec-site-connections/{cid}",
                             json={"ipsec_site_connection": {"mtu": 1400}},
                             headers={"X-Auth-Token": toks[0]}, timeout=TIMEOUT)
            assert r.status_code == 200, r.text
            while True:
                st = requests.get(f"{urls[2]}{NSX}/sessions/{cid}/state", auth=basic, timeout=TIMEOUT).json()
                if st["state"] == "in_sync" and all(d["state"] == "in_sync" for d in st["details"]):
                    break
                assert time.monotonic() - t0 < 2, f"not realized 2 s after a write on another replica: {st}"
                time.sleep(0.05)
            print(f"write on replica 0 -> in_sync on every node: {time.monotonic() - t0:.3f} s")

        # One request log: a write through replica 0, asked about on replica 2.
        r = requests.post(f"{urls[0]}{NSX}/dpd-profiles", auth=basic, timeout=TIMEOUT,
                          json={"display_name": "r-dpd", "dpd_probe_interval": 30})
        assert r.status_code in (200, 201), r.text
        rid = r.headers.get("x-nsx-requestid")
        assert rid
        cid = acked[-1][0]
        r = requests.get(f"{urls[2]}{NSX}/sessions/{cid}/state", params={"request_id": rid},
                         auth=basic, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        ok = True
    finally:
        for a in agents:
            a.terminate()
        for a in agents:
            try:
                a.wait(timeout=10)
            except subprocess.TimeoutExpired:
                a.kill()
        for s in servers:
            s.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"\nreplica test data kept in {root}")
