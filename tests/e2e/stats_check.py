"""NSX statistics and summary checks against a real tunnel, for the e2e
scenario to import (tests/e2e/strongswan_scenario.py stays its owner's):

    from stats_check import check_statistics
    check_statistics(URL, ("admin", PASSWORD), conn_id, lambda: ping(...), tls=TLS)

`check_statistics` reads `GET /api/v1/vpn/ipsec/sessions/{id}/statistics` the
way vmware-nsxlib's raw client does, checks the documented shape (one policy
with its selector pairs `UP`, counters present, unmeasured error counters 0),
makes traffic with `make_traffic` and waits until the counters rise, resets
them (`POST ...?action=reset`: 200, no body) and checks the next read starts
from (near) zero and rises again with traffic, then checks the session is
counted in `GET /api/v1/vpn/ipsec/sessions/summary`. The agent reports
every few seconds, so each rise is waited for (up to `timeout` seconds).
Raises `AssertionError` naming what failed; returns the last statistics.
Only the standard library, like the scenario.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Callable

UNMEASURED = (
    "dropped_packets_in", "dropped_packets_out", "integrity_failures", "encryption_failures",
    "decryption_failures", "replay_errors", "sa_mismatch_errors_in", "sa_mismatch_errors_out",
    "nomatching_policy_errors", "seq_number_overflow_error", "packets_sent_other_error",
    "packets_received_other_error",
)


def _call(url: str, auth: tuple[str, str], method: str, path: str,
          tls: ssl.SSLContext | None) -> tuple[int, bytes]:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(
        url + path, method=method,
        headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15, context=tls) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _get(url, auth, path, tls) -> dict:
    status, body = _call(url, auth, "GET", path, tls)
    assert status == 200, f"GET {path}: {status} {body[:300]!r}"
    return json.loads(body)


def _packets_in(st: dict) -> int:
    return st["aggregate_traffic_counters"]["packets_in"]


def _wait_rise(url, auth, path, tls, above: int, make_traffic, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        make_traffic()
        last = _get(url, auth, path, tls)
        if _packets_in(last) > above:
            return last
        time.sleep(1.0)
    raise AssertionError(f"statistics did not rise above {above} packets in {timeout}s: {last}")


def check_statistics(url: str, auth: tuple[str, str], session_id: str,
                     make_traffic: Callable[[], object], tls: ssl.SSLContext | None = None,
                     timeout: float = 30.0) -> dict:
    path = f"/api/v1/vpn/ipsec/sessions/{session_id}/statistics"
    st = _wait_rise(url, auth, path, tls, 0, make_traffic, timeout)
    assert st["ipsec_vpn_session_id"] == session_id, st
    assert st["ike_status"]["ike_session_state"] == "UP", st
    assert st["policy_statistics"], st
    for pol in st["policy_statistics"]:
        assert pol["tunnel_statistics"], pol
        for t in pol["tunnel_statistics"]:
            assert t["tunnel_status"] == "UP" and t["tunnel_down_reason"] == "", t
            assert t["local_subnet"] and t["peer_subnet"], t
            for k in UNMEASURED:
                assert t[k] == 0, (k, t)
    agg = st["aggregate_traffic_counters"]
    assert agg["bytes_in"] > 0 and agg["packets_out"] > 0, agg
    before = _packets_in(st)

    status, body = _call(url, auth, "POST", path + "?action=reset", tls)
    assert status == 200 and body == b"", f"reset: {status} {body[:300]!r}"
    after = _packets_in(_get(url, auth, path, tls))
    # Counted from the reset: what the tunnel carried since (a report or two
    # of keepalive traffic at most), far below the total before.
    assert after < before, f"after a reset {after} packets in, before {before}"
    st = _wait_rise(url, auth, path, tls, after, make_traffic, timeout)

    summary = _get(url, auth, "/api/v1/vpn/ipsec/sessions/summary", tls)
    mine = [p for p in summary["traffic_summary_per_session"]
            if p["ipsec_vpn_session"]["target_id"] == session_id]
    assert len(mine) == 1, summary
    ss = summary["session_summary"]
    assert ss["established_sessions"] >= 1, ss
    assert ss["total_sessions"] == ss["established_sessions"] + ss["failed_sessions"] + ss["degraded_sessions"]
    return st
