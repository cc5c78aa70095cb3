"""Crash safety: SIGKILL the server under concurrent writes, restart it on the
same database and key file, and check that what it acknowledged is what it has.

The test starts its own server (not the session one). Writer threads drive both
APIs at once on objects each thread owns, so every object's history is one
serial sequence of requests:

  * Neutron (Keystone token of `demo`): ikepolicy / ipsecpolicy / endpoint-group
    create, rename (PUT), delete;
  * NSX (Keystone `X-Auth-Token` of the admin): ike-profile and session create,
    rename (PUT with `_revision`), delete.

A request is *acknowledged* when its 2xx response was received in full; a
request that died with the server is *attempted*: it may or may not have been
applied. At a random moment the server gets SIGKILL; it is restarted on the same
files and, before any new write, the test checks:

  1. every acknowledged create is there, with its acknowledged content (or, if a
     later rename/delete was only attempted, with that attempt's content / gone);
  2. every acknowledged delete is gone (show → 404, absent from lists);
  3. nothing is present that was never attempted (lists ⊆ baseline ∪ attempted),
     and an attempted-only create is there in full or not at all;
  4. no half-written object: every present object shows with all its attributes,
     an NSX session is also a complete Neutron ipsec-site-connection;
  5. generations are monotonic: NSX `_revision` never goes back (and moves iff
     the content did); the global generation (a transport node's config snapshot)
     grew by at least the number of writes acknowledged since the last check;
  6. realization is still right: the node's snapshot has exactly the present
     sessions (same names), and after the node reports that generation, `GET
     .../sessions/<id>/state?request_id=<acknowledged request id>` is `in_sync`
     (not 404/500) for every present session.

Short variant: VPNAAS_CRASH_ROUNDS (default 5) kill rounds, well under a
minute. Long soak: `scripts/soak.sh` (VPNAAS_SOAK_ROUNDS, default 80).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from conftest import Server, _bin_path, assert_keys

ROUNDS = int(os.environ.get("VPNAAS_SOAK_ROUNDS") or os.environ.get("VPNAAS_CRASH_ROUNDS") or 5)
NEUTRON_WRITERS = 2
NSX_WRITERS = 2
TIMEOUT = 10.0
MAX_LIVE = 40  # objects per writer: beyond it, a writer only renames and deletes
VPN = "/api/v1/vpn/ipsec"
NEUTRON = {
    "ikepolicy": "/v2.0/vpn/ikepolicies",
    "ipsecpolicy": "/v2.0/vpn/ipsecpolicies",
    "endpoint_group": "/v2.0/vpn/endpoint-groups",
}
NEUTRON_LIST_KEY = {"ikepolicy": "ikepolicies", "ipsecpolicy": "ipsecpolicies", "endpoint_group": "endpoint_groups"}
NSX = {"ike-profile": VPN + "/ike-profiles", "session": VPN + "/sessions"}
# attributes compared with what was sent (the rest is checked for presence)
NEUTRON_FIELDS = {
    "ikepolicy": ("name", "lifetime"),
    "ipsecpolicy": ("name", "lifetime"),
    "endpoint_group": ("name", "type", "endpoints"),
}
NSX_FIELDS = {
    "ike-profile": ("display_name", "sa_life_time", "ike_version", "encryption_algorithms"),
    "session": ("display_name", "local_endpoint_id", "peer_endpoint_id", "policy_rules_dst"),
}


# --------------------------------------------------------------------------
# bookkeeping
# --------------------------------------------------------------------------


@dataclass
class Obj:
    api: str  # "neutron" | "nsx"
    kind: str
    name: str  # name of the create request (unique per object)
    sent: dict  # content of the create request (compared fields)
    id: str | None = None
    acked: dict | None = None  # content last acknowledged (None: create not acknowledged)
    pending: dict | None = None  # content of an attempted, unacknowledged create/rename
    delete: str = "no"  # "no" | "attempted" | "acked"
    revision: int | None = None  # NSX _revision last acknowledged
    body: dict | None = None  # NSX: last acknowledged full body (for the next PUT)
    request_ids: list = field(default_factory=list)  # acknowledged x-nsx-requestid (sessions)
    gone_checked: bool = False  # its deletion was confirmed with a show (404) once


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.objs: list[Obj] = []
        self.acked_writes = 0  # since the last verification
        self.unexpected: list[str] = []  # non-2xx answers to valid requests while the server was up
        self.inflight = {"applied": 0, "not applied": 0}  # writes cut by the kill, as found after restart

    def add(self, o: Obj) -> None:
        with self.lock:
            self.objs.append(o)

    def ack(self) -> None:
        with self.lock:
            self.acked_writes += 1

    def wrong(self, what: str) -> None:
        with self.lock:
            self.unexpected.append(what)


def compare_view(api: str, kind: str, obj: dict) -> dict:
    """The compared fields of a server-side object."""
    if api == "neutron":
        out = {k: obj.get(k) for k in NEUTRON_FIELDS[kind]}
        if "lifetime" in out and isinstance(out["lifetime"], dict):
            out["lifetime"] = out["lifetime"].get("value")
        if "endpoints" in out and isinstance(out["endpoints"], list):
            out["endpoints"] = sorted(out["endpoints"])
        return out
    out = {}
    for k in NSX_FIELDS[kind]:
        if k == "policy_rules_dst":
            out[k] = sorted(d["subnet"] for r in obj.get("policy_rules", []) for d in r.get("destinations", []))
        else:
            out[k] = obj.get(k)
    return out


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------


class ServerGone(Exception):
    pass


class Writer(threading.Thread):
    """Owns its objects; stops at the first transport error (the server died)."""

    def __init__(self, idx: int, api: str, url: str, token: str, ledger: Ledger, fixed: dict,
                 stop: threading.Event, owned: list[Obj], seed: int):
        super().__init__(daemon=True, name=f"writer-{api}-{idx}")
        self.idx, self.api, self.url, self.ledger, self.fixed, self.stop = idx, api, url, ledger, fixed, stop
        self.owned = owned  # this thread's live objects (persist across rounds)
        self.rng = random.Random(seed)
        self.http = requests.Session()
        self.http.headers.update({"X-Auth-Token": token, "Accept": "application/json"})
        self.writes = 0

    def _req(self, method: str, path: str, body=None) -> requests.Response:
        try:
            return self.http.request(method, self.url + path, json=body, timeout=TIMEOUT)
        except requests.RequestException as e:
            raise ServerGone(repr(e))

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                live = [o for o in self.owned if o.delete == "no" and o.acked is not None]
                r = self.rng.random()
                if len(live) < 3 or (r < 0.45 and len(live) < MAX_LIVE):
                    self.create()
                elif r < 0.75:
                    self.rename(self.rng.choice(live))
                else:
                    self.remove(self.rng.choice(live))
                self.writes += 1
        except ServerGone:
            pass

    # -- content ---------------------------------------------------------------
    def _new_content(self, kind: str, name: str) -> tuple[dict, dict]:
        """(request body, compared content) of a create."""
        rng = self.rng
        if kind in ("ikepolicy", "ipsecpolicy"):
            life = rng.randrange(3600, 86400)
            return {kind: {"name": name, "lifetime": {"units": "seconds", "value": life}}}, \
                {"name": name, "lifetime": life}
        if kind == "endpoint_group":
            eps = sorted({f"10.{rng.randrange(64, 250)}.{rng.randrange(256)}.0/24" for _ in range(2)})
            return {kind: {"name": name, "type": "cidr", "endpoints": eps}}, \
                {"name": name, "type": "cidr", "endpoints": eps}
        if kind == "ike-profile":
            life = rng.randrange(21600, 864000)
            enc = [rng.choice(["AES_128", "AES_256"])]
            body = {"display_name": name, "sa_life_time": life, "ike_version": "IKE_V2",
                    "encryption_algorithms": enc, "digest_algorithms": ["SHA2_256"], "dh_groups": ["GROUP14"]}
            return body, {"display_name": name, "sa_life_time": life, "ike_version": "IKE_V2",
                          "encryption_algorithms": enc}
        # session: a unique destination subnet per session
        n = len(self.owned)  # unique for 5,120 creates per writer
        dst = f"10.{120 + 20 * self.idx + (n // 256) % 20}.{n % 256}.0/24"
        body = {"display_name": name, "resource_type": "PolicyBasedIPSecVPNSession",
                "local_endpoint_id": self.fixed["lep"], "peer_endpoint_id": self.fixed["peps"][self.idx],
                "enabled": True, "description": None,
                "policy_rules": [{"sources": [{"subnet": "10.100.0.0/24"}], "destinations": [{"subnet": dst}]}]}
        return body, {"display_name": name, "local_endpoint_id": self.fixed["lep"],
                      "peer_endpoint_id": self.fixed["peps"][self.idx], "policy_rules_dst": [dst]}

    def _path(self, kind: str) -> str:
        return NEUTRON[kind] if self.api == "neutron" else NSX[kind]

    def _kinds(self) -> tuple:
        return tuple(NEUTRON) if self.api == "neutron" else tuple(NSX)

    def _ok(self, r: requests.Response, want: int, what: str) -> bool:
        if r.status_code == want:
            return True
        self.ledger.wrong(f"{what}: HTTP {r.status_code} {r.text[:300]}")
        return False

    # -- operations -----------------------------------------------------------
    def create(self) -> None:
        kind = self.rng.choice(self._kinds())
        name = f"crash-{self.api[:2]}{self.idx}-{uuid.uuid4().hex[:10]}"
        body, content = self._new_content(kind, name)
        o = Obj(self.api, kind, name, content)
        o.pending = content
        self.owned.append(o)
        self.ledger.add(o)
        r = self._req("POST", self._path(kind), body)
        if not self._ok(r, 201, f"POST {kind} {name}"):
            o.pending = None
            o.delete = "acked"  # refused: must not exist (checked by name like any attempt)
            return
        got = r.json()
        obj = got[kind] if self.api == "neutron" else got
        o.id, o.acked, o.pending = obj["id"], content, None
        if self.api == "nsx":
            o.revision, o.body = obj.get("_revision"), obj
            if kind == "session":
                o.request_ids.append(r.headers.get("x-nsx-requestid"))
        self.ledger.ack()

    def rename(self, o: Obj) -> None:
        new = dict(o.acked)
        new_name = o.name + "-r" + uuid.uuid4().hex[:4]
        if self.api == "neutron":
            new["name"] = new_name
            o.pending = new
            r = self._req("PUT", f"{self._path(o.kind)}/{o.id}", {o.kind: {"name": new_name}})
            if self._ok(r, 200, f"PUT {o.kind} {o.id}"):
                o.acked, o.pending = new, None
                self.ledger.ack()
            else:
                o.pending = None
            return
        new["display_name"] = new_name
        body = dict(o.body)
        body["display_name"] = new_name
        o.pending = new
        r = self._req("PUT", f"{self._path(o.kind)}/{o.id}", body)
        if self._ok(r, 200, f"PUT {o.kind} {o.id}"):
            got = r.json()
            o.acked, o.pending, o.body = new, None, got
            rev = got.get("_revision")
            if o.revision is not None and rev is not None and rev <= o.revision:
                self.ledger.wrong(f"PUT {o.kind} {o.id}: _revision {rev} after {o.revision}")
            o.revision = rev
            if o.kind == "session":
                o.request_ids.append(r.headers.get("x-nsx-requestid"))
            self.ledger.ack()
        else:
            o.pending = None

    def remove(self, o: Obj) -> None:
        o.delete = "attempted"
        r = self._req("DELETE", f"{self._path(o.kind)}/{o.id}")
        want = 204 if self.api == "neutron" else 200
        if self._ok(r, want, f"DELETE {o.kind} {o.id}"):
            o.delete = "acked"
            self.ledger.ack()
        else:
            o.delete = "no"


# --------------------------------------------------------------------------
# server restarts
# --------------------------------------------------------------------------


class Cluster:
    """One database directory; a fresh `vpnaas serve` process per round."""

    def __init__(self, workdir: Path, admin_password: str):
        self.workdir = workdir
        self.admin_password = admin_password
        self.srv: Server | None = None
        self.pg_name: str | None = None  # the same PostgreSQL database every round

    def start(self) -> Server:
        srv = Server(_bin_path(), self.workdir, pg_name=self.pg_name)
        self.pg_name = srv.pg_name
        srv.admin_password = self.admin_password  # same DB: the first start's password
        srv.start()
        self.srv = srv
        return srv

    def kill(self) -> None:
        srv = self.srv
        if srv is None or srv.proc is None:
            return
        try:
            os.kill(srv.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        srv.proc.wait(timeout=10)
        srv.stop()  # joins the log readers, closes the log
        self.srv = None

    def stop(self) -> None:
        if self.srv is not None:
            self.srv.stop()
            self.srv = None


def token(url: str, user: str, password: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    r = requests.post(url + "/v3/auth/tokens", json=body, timeout=TIMEOUT)
    assert r.status_code == 201, f"token for {user}: {r.status_code} {r.text}"
    return r.headers["X-Subject-Token"]


def nsx_list(s: requests.Session, url: str, path: str) -> list[dict]:
    out, cursor = [], None
    for _ in range(1000):
        r = s.get(url + path, params={"cursor": cursor} if cursor else None, timeout=TIMEOUT)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
        body = r.json()
        out.extend(body["results"])
        cursor = body.get("cursor")
        if not cursor:
            return out
    raise AssertionError(f"GET {path}: cursor never ended")


# --------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------


class Verifier:
    def __init__(self, url: str, tokens: dict, node: dict, baseline: dict, ledger: Ledger):
        self.url, self.node, self.baseline, self.ledger = url, node, baseline, ledger
        self.demo = requests.Session()
        self.demo.headers.update({"X-Auth-Token": tokens["demo"], "Accept": "application/json"})
        self.admin = requests.Session()
        self.admin.headers.update({"X-Auth-Token": tokens["admin"], "Accept": "application/json"})
        self.errors: list[str] = []

    def fail(self, msg: str) -> None:
        self.errors.append(msg)

    def listings(self) -> dict:
        """(api, kind) -> {id: object} of everything the server lists."""
        out = {}
        for kind, path in NEUTRON.items():
            r = self.demo.get(self.url + path, timeout=TIMEOUT)
            assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
            out[("neutron", kind)] = {o["id"]: o for o in r.json()[NEUTRON_LIST_KEY[kind]]}
        for kind, path in NSX.items():
            out[("nsx", kind)] = {o["id"]: o for o in nsx_list(self.admin, self.url, path)}
        return out

    def show(self, o: Obj) -> tuple[int, dict | None]:
        if o.api == "neutron":
            r = self.demo.get(f"{self.url}{NEUTRON[o.kind]}/{o.id}", timeout=TIMEOUT)
            body = r.json()[o.kind] if r.status_code == 200 else None
        else:
            r = self.admin.get(f"{self.url}{NSX[o.kind]}/{o.id}", timeout=TIMEOUT)
            body = r.json() if r.status_code == 200 else None
        if r.status_code not in (200, 404):
            self.fail(f"show {o.kind} {o.id}: HTTP {r.status_code} {r.text[:300]}")
        return r.status_code, body

    def complete(self, o: Obj, body: dict) -> None:
        """No half-written object: every attribute there, and the other API's view agrees."""
        try:
            if o.api == "neutron":
                assert_keys(o.kind, body)
                return
            for k in ("id", "display_name", "resource_type", "_revision", "_create_time"):
                assert k in body, f"NSX {o.kind} {o.id} lacks {k}: {body}"
            if o.kind == "session":
                r = self.admin.get(f"{self.url}/v2.0/vpn/ipsec-site-connections/{o.id}", timeout=TIMEOUT)
                assert r.status_code == 200, f"session {o.id} as a Neutron connection: {r.status_code} {r.text[:300]}"
                c = r.json()["ipsec_site_connection"]
                assert_keys("ipsec_site_connection", c)
                assert c["name"] == body["display_name"], f"session {o.id}: Neutron name {c['name']!r} != {body['display_name']!r}"
            else:
                r = self.admin.get(f"{self.url}/v2.0/vpn/ikepolicies/{o.id}", timeout=TIMEOUT)
                assert r.status_code == 200, f"ike-profile {o.id} as a Neutron ikepolicy: {r.status_code}"
                assert r.json()["ikepolicy"]["name"] == body["display_name"]
        except AssertionError as e:
            self.fail(f"half-written: {e}")

    def verify(self, round_no: int, last_generation: int | None) -> int:
        listed = self.listings()
        ledger = self.ledger
        with ledger.lock:
            objs = list(ledger.objs)
            acked_writes, ledger.acked_writes = ledger.acked_writes, 0
        accounted: set = set()
        for o in objs:
            where = f"round {round_no}: {o.api} {o.kind} {o.name}"
            lst = listed[(o.api, o.kind)]
            if o.id is None:
                # create attempted, never acknowledged: all there or not at all
                found = [x for x in lst.values() if compare_view(o.api, o.kind, x).get(
                    "name" if o.api == "neutron" else "display_name") == o.name]
                if o.delete == "acked":  # refused or already resolved absent
                    if found:
                        self.fail(f"{where}: present though its create was refused/absent before: {found}")
                    continue
                if len(found) > 1:
                    self.fail(f"{where}: {len(found)} objects from one create: {found}")
                    continue
                if not found:
                    o.delete = "acked"  # resolved: never applied; must never appear later
                    o.pending = None
                    ledger.inflight["not applied"] += 1
                    continue
                ledger.inflight["applied"] += 1
                x = found[0]
                o.id = x["id"]
                got = compare_view(o.api, o.kind, x)
                if got != o.pending:
                    self.fail(f"{where}: unacknowledged create present with other content {got} != {o.pending}")
                o.acked, o.pending = o.pending, None
                status, body = self.show(o)
                if body is not None:
                    self.complete(o, body)
                    if o.api == "nsx":
                        o.body, o.revision = body, body.get("_revision")
                accounted.add(o.id)
                continue
            accounted.add(o.id)
            in_list = o.id in lst
            if o.delete == "acked" and o.gone_checked:
                if in_list:  # (a show per old deletion every round would make the soak quadratic)
                    self.fail(f"{where}: deleted object {o.id} is listed again")
                continue
            status, body = self.show(o)
            if (status == 200) != in_list:
                self.fail(f"{where}: show {status} but {'' if in_list else 'not '}listed")
            if o.delete == "acked":
                if status != 404 or in_list:
                    self.fail(f"{where}: acknowledged delete, but still there (show {status})")
                o.gone_checked = True
                continue
            if status == 404:
                if o.delete == "attempted":
                    o.delete = "acked"  # the attempt was applied
                    ledger.inflight["applied"] += 1
                    continue
                self.fail(f"{where}: acknowledged object {o.id} is gone (show 404)")
                continue
            if body is None:
                continue
            self.complete(o, body)
            got = compare_view(o.api, o.kind, body)
            if got == o.acked:
                changed = False
                if o.pending is not None:
                    ledger.inflight["not applied"] += 1
            elif o.pending is not None and got == o.pending:
                o.acked, changed = o.pending, True
                ledger.inflight["applied"] += 1
            else:
                self.fail(f"{where}: content {got} is neither acknowledged {o.acked} nor attempted {o.pending}")
                continue
            o.pending = None
            if o.delete == "attempted":
                o.delete = "no"  # the attempt was not applied
                ledger.inflight["not applied"] += 1
            if o.api == "nsx":
                rev = body.get("_revision")
                if o.revision is not None:
                    if rev is None or rev < o.revision:
                        self.fail(f"{where}: _revision went back: {rev} < acknowledged {o.revision}")
                    elif changed and rev <= o.revision:
                        self.fail(f"{where}: content changed but _revision stayed {rev}")
                    elif not changed and rev != o.revision:
                        self.fail(f"{where}: _revision {rev} != acknowledged {o.revision} for unchanged content")
                o.revision, o.body = rev, body
        # nothing present that was never attempted
        for (api, kind), lst in listed.items():
            extra = set(lst) - accounted - self.baseline[(api, kind)]
            # the other API's view of the same canonical objects
            extra -= {o.id for o in objs if o.id}
            if extra:
                self.fail(f"round {round_no}: {api} {kind} lists never-attempted objects: "
                          f"{[lst[i] for i in sorted(extra)]}")
        return self.realization(round_no, objs, last_generation, acked_writes)

    def realization(self, round_no: int, objs: list[Obj], last_generation: int | None, acked: int) -> int:
        node_hdr = {"Authorization": f"Bearer {self.node['token']}"}
        base = f"{self.url}/internal/v1/nodes/{self.node['id']}"
        r = requests.get(base + "/config", headers=node_hdr, timeout=TIMEOUT)
        assert r.status_code == 200, f"node config: {r.status_code} {r.text[:300]}"
        cfg = r.json()
        gen = cfg["generation"]
        if last_generation is not None and gen < last_generation + acked:
            self.fail(f"round {round_no}: generation {gen} < {last_generation} + {acked} acknowledged writes")
        present = {o.id: o for o in objs if o.kind == "session" and o.id and o.delete != "acked"}
        tunnels = {t["id"]: t for t in cfg["tunnels"] if t["enabled"]}
        if set(tunnels) != set(present):
            self.fail(f"round {round_no}: node snapshot tunnels {sorted(tunnels)} != sessions {sorted(present)}")
        for i, t in tunnels.items():
            o = present.get(i)
            if o is not None and o.acked and t["name"] != o.acked["display_name"]:
                self.fail(f"round {round_no}: tunnel {i} named {t['name']!r}, session {o.acked['display_name']!r}")
        r = requests.post(base + "/report", headers=node_hdr, timeout=TIMEOUT,
                          json={"realized_generation": gen, "failures": [], "tunnels": [], "agent": "crash-test"})
        assert r.status_code == 204, f"node report: {r.status_code} {r.text[:300]}"
        for o in present.values():
            for rid in o.request_ids[-3:]:
                r = self.admin.get(f"{self.url}{VPN}/sessions/{o.id}/state", params={"request_id": rid},
                                   timeout=TIMEOUT)
                if r.status_code != 200:
                    self.fail(f"round {round_no}: state of session {o.id} for acknowledged request {rid}: "
                              f"HTTP {r.status_code} {r.text[:300]}")
                elif r.json().get("state") != "in_sync":
                    self.fail(f"round {round_no}: session {o.id} request {rid}: {r.json()} (want in_sync)")
        return gen


# --------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------


def test_sigkill_under_concurrent_writes_loses_nothing_acknowledged():
    binary = _bin_path()
    if not binary.exists():
        pytest.fail(f"server binary {binary} not found (set VPNAAS_BIN)", pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="vpnaas-crash-"))
    admin_pw = "adm-" + uuid.uuid4().hex[:16]
    cluster = Cluster(workdir, admin_pw)
    rng = random.Random(int(os.environ.get("VPNAAS_CRASH_SEED") or time.time_ns()))
    seed = rng.randrange(1 << 30)
    ok = False
    try:
        srv = cluster.start()
        srv.admin("project", "create", "demo")
        srv.admin("user", "create", "demo", "--password", "secret", "--project", "demo", "--role", "member")
        gw = srv.admin("gateway", "create", "crash-gw", "--project", "admin", "--external-v4", "172.24.9.1")["id"]
        node = srv.admin("node", "add", "crash-node", "--gateway", gw)
        url = srv.url
        admin_tok = token(url, "admin", admin_pw, "admin")
        h = {"X-Auth-Token": admin_tok, "Accept": "application/json"}

        def setup_post(seg, body):
            r = requests.post(f"{url}{VPN}/{seg}", json=body, headers=h, timeout=TIMEOUT)
            assert r.status_code == 201, f"setup {seg}: {r.status_code} {r.text}"
            return r.json()["id"]

        svc = setup_post("services", {"display_name": "crash-svc", "logical_router_id": gw})
        lep = setup_post("local-endpoints", {"display_name": "crash-lep", "local_address": "172.24.9.1",
                                             "ipsec_vpn_service_id": {"target_id": svc}})
        peps = [setup_post("peer-endpoints", {"display_name": f"crash-pep{i}", "peer_address": f"203.0.113.{10 + i}",
                                              "peer_id": f"peer{i}.example", "psk": f"psk-{i}"})
                for i in range(NSX_WRITERS)]
        fixed = {"lep": lep, "peps": peps}
        ledger = Ledger()
        tokens = {"demo": token(url, "demo", "secret", "demo"), "admin": admin_tok}
        baseline = Verifier(url, tokens, node, {}, ledger).listings()
        baseline = {k: set(v) for k, v in baseline.items()}
        owned = {("neutron", i): [] for i in range(NEUTRON_WRITERS)}
        owned.update({("nsx", i): [] for i in range(NSX_WRITERS)})
        generation = Verifier(url, tokens, node, baseline, ledger).verify(0, None)

        total_writes, started = 0, time.monotonic()
        for rnd in range(1, ROUNDS + 1):
            stop = threading.Event()
            writers = [Writer(i, api, url, tokens["demo" if api == "neutron" else "admin"], ledger, fixed, stop,
                              owned[(api, i)], seed + rnd * 100 + i + (50 if api == "nsx" else 0))
                       for (api, i) in owned]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.3, 1.5))
            cluster.kill()  # SIGKILL while the writers are mid-request
            stop.set()
            for w in writers:
                w.join(timeout=TIMEOUT + 5)
                assert not w.is_alive(), f"{w.name} did not stop after the kill"
            total_writes += sum(w.writes for w in writers)
            assert not ledger.unexpected, f"round {rnd}: refused writes while up: {ledger.unexpected[:5]}"

            srv = cluster.start()  # same DB and key file, new port
            url = srv.url
            tokens = {"demo": token(url, "demo", "secret", "demo"), "admin": token(url, "admin", admin_pw, "admin")}
            v = Verifier(url, tokens, node, baseline, ledger)
            generation = v.verify(rnd, generation)
            assert not v.errors, f"round {rnd} (seed {seed}):\n  " + "\n  ".join(v.errors[:20])

        live = sum(1 for o in ledger.objs if o.delete != "acked" and o.id)
        print(f"\ncrash: {ROUNDS} SIGKILL rounds, {total_writes} writes attempted, {live} objects live, "
              f"generation {generation}, writes cut by the kill: {ledger.inflight}, "
              f"{time.monotonic() - started:.1f}s (seed {seed})")
        assert total_writes >= ROUNDS * 4, f"too few writes to mean anything: {total_writes}"
        ok = True
    finally:
        cluster.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\ncrash test data kept in {workdir}")

