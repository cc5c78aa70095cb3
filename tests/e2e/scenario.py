"""What the two-site e2e scenarios (strongswan_scenario.py, route_based_scenario.py)
share: the TAP-like `ok` lines, polling with a deadline, raw NSX Manager calls
as vmware-nsxlib's client makes them, and reading a site's charon with swanctl.

Each scenario prints one "ok - ..." line per check and raises `Failed` (exit 1)
on the first failure; the shell drivers (strongswan.sh, route_based.sh) build
the sites and pass them in E2E_* variables.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request

T0 = time.monotonic()

# What a poll keeps polling through (a server or charon still starting).
TRANSIENT: tuple[type[BaseException], ...] = (urllib.error.URLError, OSError, subprocess.SubprocessError)


class Failed(Exception):
    pass


def ok(msg: str) -> None:
    print(f"ok - {msg} [{time.monotonic() - T0:.1f}s]", flush=True)


def wait(desc: str, fn, timeout: float = 30.0, interval: float = 0.3, transient=TRANSIENT):
    """Polls fn() until it returns True or a truthy non-string (returned);
    a string is the reason it is not there yet. Fails with the last one."""
    start = time.monotonic()
    last = None
    while True:
        try:
            last = fn()
        except transient as e:
            last = f"{type(e).__name__}: {e}"
        if last is True or (last and not isinstance(last, str)):
            ok(f"{desc} (after {time.monotonic() - start:.1f}s)")
            return last
        if time.monotonic() - start > timeout:
            raise Failed(f"{desc}: not reached within {timeout:.0f}s; last: {last!r}")
        time.sleep(interval)


def nsx_call(url: str, password: str, method: str, path: str, body: dict | None = None,
             tls: ssl.SSLContext | None = None) -> tuple[int, dict]:
    """One NSX Manager call as the admin (basic auth): (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    cred = base64.b64encode(f"admin:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {cred}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10, context=tls) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


def swanctl(base: str, site: str, *args: str) -> str:
    """swanctl against site's charon (its VICI socket and strongswan.conf under base)."""
    d = f"{base}/{site}"
    return subprocess.run(
        ["swanctl", *args, "--uri", f"unix://{d}/charon.vici"],
        env={**os.environ, "STRONGSWAN_CONF": f"{d}/strongswan.conf"},
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout


def sa_packets(base: str, site: str, conn_id: str) -> tuple[int, int]:
    """(in, out) packets of conn_id's installed CHILD_SAs, from `swanctl --list-sas`."""
    pin = pout = 0
    inside = False
    for line in swanctl(base, site, "--list-sas").splitlines():
        if not line.startswith(" "):
            inside = line.startswith(conn_id + ":")
        elif inside:
            m = re.match(r"\s+(in|out)\s+\S+.*?(\d+) packets", line)
            if m:
                if m.group(1) == "in":
                    pin += int(m.group(2))
                else:
                    pout += int(m.group(2))
    return pin, pout
