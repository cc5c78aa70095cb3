"""Secret handling, checked from outside: after a private server (logging at
`debug`) has been driven through Keystone, Neutron, NSX and the node API with
distinctive passwords, pre-shared keys and tokens, none of them appears in its
log, in its database files (db, -wal, -shm) in clear, nor in any NSX answer,
and the files are private (0600).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

import requests

from conftest import Server, _bin_path


def test_no_secret_in_logs_or_database_files():
    workdir = Path(tempfile.mkdtemp(prefix="vpnaas-secrets-"))
    old_log = os.environ.get("VPNAAS_LOG")
    os.environ["VPNAAS_LOG"] = "debug"
    srv = Server(_bin_path(), workdir)
    try:
        srv.start()
    finally:
        if old_log is None:
            os.environ.pop("VPNAAS_LOG", None)
        else:
            os.environ["VPNAAS_LOG"] = old_log
    try:
        user_pw = "pw-" + secrets.token_hex(12)
        psk_neutron = "psk-neutron-" + secrets.token_hex(12)
        psk_nsx = "psk-nsx-" + secrets.token_hex(12)
        srv.admin("project", "create", "sec")
        srv.admin("user", "create", "sec", "--password", user_pw, "--project", "sec")
        srv.admin("gateway", "create", "sec-gw", "--project", "sec", "--external-v4", "172.24.4.90")
        subnet = srv.admin("subnet", "create", "sec-sn", "--gateway", "sec-gw", "--cidr", "10.90.0.0/24")
        node = srv.admin("node", "add", "sec-node", "--gateway", "sec-gw")
        url = srv.url
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "sec", "password": user_pw, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": "sec", "domain": {"id": "default"}}}}}
        r = requests.post(url + "/v3/auth/tokens", json=auth, timeout=30)
        assert r.status_code == 201, r.text
        token = r.headers["X-Subject-Token"]
        # a wrong password too: it must not be logged either
        bad = dict(auth)
        wrong_pw = "wrong-" + secrets.token_hex(12)
        bad["auth"]["identity"]["password"]["user"]["password"] = wrong_pw
        assert requests.post(url + "/v3/auth/tokens", json=bad, timeout=30).status_code == 401
        h = {"X-Auth-Token": token}

        def post(path, body):
            r = requests.post(url + path, json=body, headers=h, timeout=30)
            assert r.status_code == 201, r.text
            return next(iter(r.json().values()))

        ike = post("/v2.0/vpn/ikepolicies", {"ikepolicy": {"name": "sec-ike"}})
        ipsec = post("/v2.0/vpn/ipsecpolicies", {"ipsecpolicy": {"name": "sec-ipsec"}})
        svc = post("/v2.0/vpn/vpnservices", {"vpnservice": {"name": "sec-svc", "router_id": _router_id(url, h)}})
        local = post("/v2.0/vpn/endpoint-groups", {"endpoint_group": {
            "name": "sec-l", "type": "subnet", "endpoints": [subnet["id"]]}})
        peer = post("/v2.0/vpn/endpoint-groups", {"endpoint_group": {
            "name": "sec-p", "type": "cidr", "endpoints": ["10.91.0.0/24"]}})
        post("/v2.0/vpn/ipsec-site-connections", {"ipsec_site_connection": {
            "name": "sec-conn", "vpnservice_id": svc["id"], "ikepolicy_id": ike["id"],
            "ipsecpolicy_id": ipsec["id"], "peer_address": "172.24.4.91", "peer_id": "172.24.4.91",
            "psk": psk_neutron, "local_ep_group_id": local["id"], "peer_ep_group_id": peer["id"]}})
        # NSX: basic auth with the admin password, a session with a PSK of its own
        basic = ("admin", srv.admin_password)
        nsx = "/api/v1/vpn/ipsec"
        r = requests.get(url + nsx + "/sessions", auth=basic, timeout=30)
        assert r.status_code == 200, r.text
        for s in r.json()["results"]:
            assert psk_neutron not in r.text and "psk" not in s
        r = requests.post(url + nsx + "/peer-endpoints", auth=basic, timeout=30, json={
            "display_name": "sec-pep", "peer_address": "172.24.4.92", "peer_id": "172.24.4.92",
            "psk": psk_nsx, "ike_profile_id": ike["id"], "ipsec_tunnel_profile_id": ipsec["id"]})
        assert r.status_code in (200, 201), r.text
        assert psk_nsx not in r.text
        # the node fetches its configuration (it carries the PSK, over its own channel)
        r = requests.get(f"{url}/internal/v1/nodes/{node['id']}/config",
                         headers={"Authorization": f"Bearer {node['token']}"}, timeout=30)
        assert r.status_code == 200 and psk_neutron in r.text
        basic_header = base64.b64encode(f"admin:{srv.admin_password}".encode()).decode()
    finally:
        srv.stop()
    try:
        needles = {
            "user password": user_pw,
            "wrong password": wrong_pw,
            "admin password": srv.admin_password,
            "basic auth header": basic_header,
            "Neutron PSK": psk_neutron,
            "NSX PSK": psk_nsx,
            "token": token,
            "node token": node["token"],
        }
        log = srv.log_path.read_text(errors="replace")
        # The test harness itself logs the admin commands it ran (with their
        # arguments): judge only what the server wrote.
        server_lines = "\n".join(ln for ln in log.splitlines() if ln.startswith(("[stderr]", "[stdout]")))
        assert "DEBUG" in server_lines, "the server did not log at debug level"
        for what, needle in needles.items():
            assert needle not in server_lines, f"{what} appears in the server log"
        stored = srv.stored_bytes()
        assert stored, "nothing stored?"
        for name, data in stored:
            for what in ("user password", "wrong password", "Neutron PSK", "NSX PSK", "token", "node token"):
                assert needles[what].encode() not in data, f"{what} in clear in {name}"
        for p in workdir.iterdir():
            if p.name.startswith("vpnaas.db") or p.name.startswith("vpnaas.key"):
                mode = stat.S_IMODE(p.stat().st_mode)
                assert mode & 0o077 == 0, f"{p.name} is mode {mode:o}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _router_id(url, headers):
    r = requests.get(url + "/v2.0/routers?name=sec-gw", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["routers"][0]["id"]
