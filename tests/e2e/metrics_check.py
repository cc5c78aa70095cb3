#!/usr/bin/env python3
"""Read a tunnel's counters from a real server's `GET /metrics`, for the
strongSwan end-to-end test: after traffic crossed a tunnel, its
`vpnaas_tunnel_bytes_in_total` (summed over the nodes that report it) must
have risen.

Parsed with the Prometheus project's own text parser
(prometheus_client.parser), as a Prometheus server would read it.

As a library:
    from metrics_check import tunnel_bytes_in
    before = tunnel_bytes_in(url, token, connection_id)
    ... ping across the tunnel ...
    assert tunnel_bytes_in(url, token, connection_id) > before

From a shell (prints the value; exit 1 when the connection has no series):
    metrics_check.py URL CONNECTION_ID [--token TOKEN] [--metric NAME]
"""

from __future__ import annotations

import argparse
import sys

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, token: str | None = None, timeout: float = 30.0) -> list:
    """The metric families of `url` + /metrics (`token`: an admin's Keystone
    token; none on a --metrics-listen address)."""
    headers = {"X-Auth-Token": token} if token else {}
    r = requests.get(url.rstrip("/") + "/metrics", headers=headers, timeout=timeout)
    r.raise_for_status()
    return list(text_string_to_metric_families(r.text))


def tunnel_counter(url: str, token: str | None, connection_id: str,
                   name: str = "vpnaas_tunnel_bytes_in_total") -> float | None:
    """`name` of one connection summed over the nodes reporting it; None when
    no node reports it."""
    total = None
    for fam in scrape(url, token):
        for s in fam.samples:
            if s.name == name and s.labels.get("connection") == connection_id:
                total = (total or 0.0) + s.value
    return total


def tunnel_bytes_in(url: str, token: str | None, connection_id: str) -> float | None:
    """Bytes received over the connection's CHILD SAs, as its nodes last reported."""
    return tunnel_counter(url, token, connection_id, "vpnaas_tunnel_bytes_in_total")


def tunnel_up(url: str, token: str | None, connection_id: str) -> bool:
    """Whether any node reports the connection up (IKE established, a CHILD SA installed)."""
    up = tunnel_counter(url, token, connection_id, "vpnaas_tunnel_up")
    return bool(up)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="the server's URL (or a --metrics-listen URL, without --token)")
    ap.add_argument("connection_id")
    ap.add_argument("--token", default=None, help="an admin's Keystone token")
    ap.add_argument("--metric", default="vpnaas_tunnel_bytes_in_total")
    a = ap.parse_args()
    v = tunnel_counter(a.url, a.token, a.connection_id, a.metric)
    if v is None:
        print(f"no {a.metric} series for connection {a.connection_id}", file=sys.stderr)
        return 1
    print(int(v) if float(v).is_integer() else v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
