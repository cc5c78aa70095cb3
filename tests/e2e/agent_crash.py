"""The scenario of tests/e2e/agent_crash.sh (which starts charon in a network
namespace, the server, and registers the node; it passes them in CRASH_*).

Through the Neutron API it creates CRASH_CONNS response-only connections on the
node's gateway, then for CRASH_ROUNDS rounds: changes the desired state while
the agent is down (deletes and creates), starts `vpnaas agent`, and SIGKILLs it
as soon as it has logged a random number of tunnel changes, i.e. in the middle
of applying. Then it starts the agent for good and checks that charon converges
to exactly the desired state:

  * `swanctl --list-conns`: the set of connection names is the set of enabled
    connection ids, each once (no duplicates, no leftovers), each with its current
    peer address and its CHILD_SA(s);
  * VICI `get-shared`: one key per desired connection, nothing else;
  * the NSX realization state of every connection is `in_sync`.

Then it deletes a third of the connections and changes the peer address of
five (Neutron refuses updates while a connection is PENDING_*, so only now),
SIGKILLs the agent while it applies that, restarts it, and checks again. Prints one "ok - ..." line per
check and writes "<passed> <failed>" to CRASH_RESULT.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import requests

E = os.environ
URL = E["CRASH_URL"]
BASE = E["CRASH_BASE"]
CONNS = int(E.get("CRASH_CONNS", "30"))
ROUNDS = int(E.get("CRASH_ROUNDS", "4"))
TIMEOUT = 10
T0 = time.monotonic()
PASSED = 0


class Failed(Exception):
    pass


def ok(msg: str) -> None:
    global PASSED
    PASSED += 1
    print(f"ok - {msg} [{time.monotonic() - T0:.1f}s]", flush=True)


# ------------------------------------------------------------------ API


def login() -> requests.Session:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": E["CRASH_ADMIN_PASSWORD"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = requests.post(URL + "/v3/auth/tokens", json=body, timeout=TIMEOUT)
    if r.status_code != 201:
        raise Failed(f"login: {r.status_code} {r.text}")
    s = requests.Session()
    s.headers.update({"X-Auth-Token": r.headers["X-Subject-Token"], "Accept": "application/json"})
    return s


API = login()


def call(method: str, path: str, body=None, want: int = 200) -> dict:
    r = API.request(method, URL + path, json=body, timeout=TIMEOUT)
    if r.status_code != want:
        raise Failed(f"{method} {path}: want {want}, got {r.status_code} {r.text[:300]}")
    return r.json() if r.content else {}


class World:
    def __init__(self):
        self.ike = call("POST", "/v2.0/vpn/ikepolicies", {"ikepolicy": {
            "name": "crash-ike", "ike_version": "v2", "auth_algorithm": "sha256"}}, 201)["ikepolicy"]["id"]
        self.ipsec = call("POST", "/v2.0/vpn/ipsecpolicies", {"ipsecpolicy": {
            "name": "crash-ipsec", "auth_algorithm": "sha256"}}, 201)["ipsecpolicy"]["id"]
        self.svc = call("POST", "/v2.0/vpn/vpnservices", {"vpnservice": {
            "name": "crash-svc", "router_id": E["CRASH_GW"]}}, 201)["vpnservice"]["id"]
        self.local = call("POST", "/v2.0/vpn/endpoint-groups", {"endpoint_group": {
            "name": "crash-local", "type": "subnet", "endpoints": [E["CRASH_SUBNET"]]}}, 201)["endpoint_group"]["id"]
        self.n = 0
        self.peer_groups: dict = {}  # connection id -> its peer endpoint group

    def create(self) -> str:
        self.n += 1
        i = self.n
        eg = call("POST", "/v2.0/vpn/endpoint-groups", {"endpoint_group": {
            "name": f"crash-peer-{i}", "type": "cidr",
            "endpoints": [f"10.{60 + i // 250}.{i % 250}.0/24"]}}, 201)["endpoint_group"]["id"]
        c = call("POST", "/v2.0/vpn/ipsec-site-connections", {"ipsec_site_connection": {
            "name": f"crash-conn-{i}", "vpnservice_id": self.svc, "ikepolicy_id": self.ike,
            "ipsecpolicy_id": self.ipsec, "local_ep_group_id": self.local, "peer_ep_group_id": eg,
            "peer_address": f"198.51.{100 + i // 250}.{i % 250 + 1}", "peer_id": f"peer-{i}.example",
            "psk": f"psk-{i}-{random.randrange(1 << 30)}", "initiator": "response-only"}}, 201)
        cid = c["ipsec_site_connection"]["id"]
        self.peer_groups[cid] = eg
        return cid

    def delete(self, cid: str) -> None:
        call("DELETE", f"/v2.0/vpn/ipsec-site-connections/{cid}", want=204)
        call("DELETE", f"/v2.0/vpn/endpoint-groups/{self.peer_groups.pop(cid)}", want=204)

    def move(self, cid: str) -> None:
        """A new peer address (the connection must be re-loaded)."""
        addr = f"203.0.113.{random.randrange(1, 255)}"
        call("PUT", f"/v2.0/vpn/ipsec-site-connections/{cid}", {"ipsec_site_connection": {"peer_address": addr}})

    def desired(self) -> dict:
        """Enabled connection id -> peer address."""
        got = call("GET", "/v2.0/vpn/ipsec-site-connections")["ipsec_site_connections"]
        return {c["id"]: c["peer_address"] for c in got if c["admin_state_up"]}


# ------------------------------------------------------------------ charon


def list_conns() -> tuple[list, dict]:
    """(connection names in order, name -> {"remote": [...], "children": [...]})."""
    out = subprocess.run(
        ["swanctl", "--list-conns", "--uri", f"unix://{E['CRASH_VICI']}"],
        env={**os.environ, "STRONGSWAN_CONF": E["CRASH_CONF"]},
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout
    names, conns, cur = [], {}, None
    for line in out.splitlines():
        m = re.match(r"^(\S+): ", line)
        if m:
            cur = m.group(1)
            names.append(cur)
            conns[cur] = {"remote": [], "children": []}
            continue
        if cur is None:
            continue
        m = re.match(r"^  remote: +(.*)$", line)
        if m:
            conns[cur]["remote"] = [a.strip() for a in m.group(1).split(",")]
            continue
        m = re.match(r"^  (\S+): (TUNNEL|TRANSPORT)", line)
        if m:
            conns[cur]["children"].append(m.group(1))
    return names, conns


def vici(command: str) -> dict:
    """One VICI request without arguments; the decoded response message."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(E["CRASH_VICI"])
    try:
        name = command.encode()
        payload = bytes([0, len(name)]) + name  # CMD_REQUEST, name, empty message
        s.sendall(struct.pack(">I", len(payload)) + payload)

        def recv(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise Failed(f"VICI {command}: connection closed")
                buf += chunk
            return buf

        (length,) = struct.unpack(">I", recv(4))
        data = recv(length)
    finally:
        s.close()
    if data[0] != 1:  # CMD_RESPONSE
        raise Failed(f"VICI {command}: packet type {data[0]}")
    return decode(data[1:])


def decode(b: bytes) -> dict:
    root: dict = {}
    stack, i, lst = [root], 0, None
    while i < len(b):
        t = b[i]
        i += 1
        if t in (1, 3, 4):  # SECTION_START, KEY_VALUE, LIST_START carry a name
            n = b[i]
            key = b[i + 1:i + 1 + n].decode()
            i += 1 + n
        if t == 1:
            stack[-1][key] = {}
            stack.append(stack[-1][key])
        elif t == 2:
            stack.pop()
        elif t == 3:
            (n,) = struct.unpack(">H", b[i:i + 2])
            stack[-1][key] = b[i + 2:i + 2 + n].decode()
            i += 2 + n
        elif t == 4:
            lst = stack[-1][key] = []
        elif t == 5:
            (n,) = struct.unpack(">H", b[i:i + 2])
            lst.append(b[i + 2:i + 2 + n].decode())
            i += 2 + n
        elif t == 6:
            lst = None
        else:
            raise Failed(f"VICI: unknown element type {t}")
    return root


def shared_keys() -> list:
    return vici("get-shared").get("keys", [])


def compare(want: dict) -> str | None:
    """None when charon carries exactly `want`; otherwise what differs."""
    names, conns = list_conns()
    problems = []
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        problems.append(f"duplicate connections {dups}")
    have = set(names)
    if have - set(want):
        problems.append(f"leftover connections {sorted(have - set(want))}")
    if set(want) - have:
        problems.append(f"missing connections {sorted(set(want) - have)}")
    for cid, addr in want.items():
        c = conns.get(cid)
        if c is None:
            continue
        if c["remote"] != [addr]:
            problems.append(f"{cid}: remote {c['remote']} != desired {addr}")
        if not c["children"] or any(not ch.startswith(cid) for ch in c["children"]):
            problems.append(f"{cid}: children {c['children']}")
    keys = shared_keys()
    kdups = sorted({k for k in keys if keys.count(k) > 1})
    if kdups:
        problems.append(f"duplicate shared keys {kdups}")
    if set(keys) != set(want):
        problems.append(f"shared keys: extra {sorted(set(keys) - set(want))}, missing {sorted(set(want) - set(keys))}")
    return "; ".join(problems) or None


# ------------------------------------------------------------------ agent


# what the agent logs for each VICI change it makes to a tunnel
APPLY_LINE = re.compile(rb"loading tunnel|reloading changed tunnel|removing tunnel|unloading a connection")


class Agent:
    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log = ""

    def start(self) -> None:
        self.starts += 1
        self.log = f"{BASE}/agent-{self.starts}.log"
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [E["CRASH_BIN"], "agent", "--server", URL, "--node-id", E["CRASH_NODE"],
             "--token-file", f"{BASE}/node.token", "--vici", E["CRASH_VICI"], "--esp", "userspace",
             "--heartbeat", "1", "--status-interval", "1"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env={**os.environ, "VPNAAS_LOG": E.get("VPNAAS_AGENT_LOG", "info,agent=debug")},
        )
        log.close()
        with open(E["CRASH_PIDFILE"], "a") as f:
            f.write(f"{self.proc.pid} vpnaas\n")

    def kill(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.returncode != -signal.SIGKILL:
            raise Failed(f"agent exited with {self.proc.returncode} before the SIGKILL (see agent.log)")
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def applied(self) -> int:
        """VICI changes the running agent has logged so far."""
        try:
            with open(self.log, "rb") as f:
                return len(APPLY_LINE.findall(f.read()))
        except OSError:
            return 0


def converge(world: World, label: str, timeout: float = 30.0) -> None:
    want = world.desired()
    start, last = time.monotonic(), None
    while time.monotonic() - start < timeout:
        last = compare(want)
        if last is None:
            break
        time.sleep(0.2)
    else:
        raise Failed(f"{label}: charon never matched the desired state: {last}")
    ok(f"{label}: charon carries exactly the {len(want)} desired connections and keys "
       f"(after {time.monotonic() - start:.1f}s)")
    while True:
        states = {cid: call("GET", f"/api/v1/vpn/ipsec/sessions/{cid}/state").get("state") for cid in want}
        bad = {k: v for k, v in states.items() if v != "in_sync"}
        if not bad:
            break
        if time.monotonic() - start > timeout:
            raise Failed(f"{label}: realization state not in_sync: {bad}")
        time.sleep(0.2)
    ok(f"{label}: realization state in_sync for all {len(want)}")


def kill_during_apply(agent: Agent, world: World, label: str, after: int) -> None:
    """Starts the agent and SIGKILLs it as soon as it has logged `after` tunnel changes."""
    want = world.desired()
    t = time.monotonic()
    agent.start()
    seen = 0
    while time.monotonic() - t < 10:
        seen = agent.applied()
        if seen >= after or agent.proc.poll() is not None:
            break
        time.sleep(0.0005)
    agent.kill()
    ms = (time.monotonic() - t) * 1000
    seen = agent.applied()
    names, conns = list_conns()
    current = sum(1 for cid, addr in want.items() if conns.get(cid, {}).get("remote") == [addr])
    extra = len(set(names) - set(want))
    print(f"    {label}: SIGKILL {ms:.0f} ms after start, {seen} tunnel changes logged; charon had "
          f"{current}/{len(want)} desired connections current, {extra} not desired", flush=True)


def main() -> None:
    rng = random.Random(int(E.get("CRASH_SEED") or time.time_ns()))
    world = World()
    ids = [world.create() for _ in range(CONNS)]
    ok(f"created {len(ids)} connections through the Neutron API")
    agent = Agent()
    try:
        for rnd in range(1, ROUNDS + 1):
            if rnd > 1:
                live = list(world.desired())
                for cid in rng.sample(live, 2):
                    world.delete(cid)
                for _ in range(3):
                    world.create()
            # killed after a random number of VICI changes: mid-apply
            kill_during_apply(agent, world, f"round {rnd}", rng.randrange(1, len(world.desired())))
        agent.start()
        converge(world, f"after {ROUNDS} SIGKILL rounds")

        victims = rng.sample(list(world.desired()), max(1, len(world.desired()) // 3))
        agent.kill()
        for cid in victims:
            world.delete(cid)
        # (Neutron refuses updates while PENDING_*: only now, realized, can they move)
        moved = rng.sample(list(world.desired()), 5)
        for cid in moved:
            world.move(cid)
        kill_during_apply(agent, world, f"delete {len(victims)}, move {len(moved)}",
                          rng.randrange(1, len(victims) + len(moved)))
        agent.start()
        converge(world, f"after deleting {len(victims)}, moving {len(moved)} and a SIGKILL")
        gone = [c for c in victims if c in list_conns()[0]]
        if gone:
            raise Failed(f"deleted connections still loaded: {gone}")
        ok("deleted connections are unloaded, with their keys")
    finally:
        agent.stop()


if __name__ == "__main__":
    failed = 0
    try:
        main()
    except (Failed, requests.RequestException, subprocess.SubprocessError, OSError) as e:
        print(f"not ok - {e}", flush=True)
        failed = 1
    with open(E["CRASH_RESULT"], "w") as f:
        f.write(f"{PASSED} {failed}\n")
    sys.exit(failed)
