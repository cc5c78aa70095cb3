#!/usr/bin/env python3
"""NSX basic-auth throughput: C concurrent clients, each on its own keep-alive
connection, send `GET /api/v1/vpn/ipsec/ike-profiles` with HTTP basic auth (as
vmware-nsxlib does on every request) for D seconds against a private server
(fresh database in a temporary directory). Prints calls/s, p50/p99 latency and
the server's RSS before and after.

    python3 scripts/bench-nsx-basic-auth.py [--bin target/ci/vpnaas] [--clients 8] [--seconds 10]

Only the Python standard library is used, so it runs without the test venv.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

PASSWORD = "bench-" + os.urandom(6).hex()
PATH = "/api/v1/vpn/ipsec/ike-profiles"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary: str, workdir: str) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen(
        [binary, "--db", os.path.join(workdir, "bench.db"), "serve", "--listen", "127.0.0.1:0",
         "--admin-password", PASSWORD],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "VPNAAS_LOG": "warn"},
    )
    line = proc.stdout.readline().decode()
    m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    port = int(m.group(1))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/v3")
            c.getresponse().read()
            return proc, m.group(0), port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server not answering")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/ci/vpnaas")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="vpnaas-bench-auth-")
    proc, url, port = start(args.bin, workdir)
    auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    try:
        # one warm-up call (creates the system-owned default profiles)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", PATH, headers={"Authorization": auth})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"warm-up call: HTTP {r.status}")
        rss_before = rss_kib(proc.pid)
        stop_at = time.monotonic() + args.seconds

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine: list[float] = []
            codes: dict[int, int] = {}
            while time.monotonic() < stop_at:
                t0 = time.monotonic()
                try:
                    conn.request("GET", PATH, headers={"Authorization": auth})
                    resp = conn.getresponse()
                    resp.read()
                    code = resp.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    code = 0
                mine.append(time.monotonic() - t0)
                codes[code] = codes.get(code, 0) + 1
            with lock:
                lat.extend(mine)
                for k, v in codes.items():
                    statuses[k] = statuses.get(k, 0) + v

        t_start = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t_start
        rss_after = rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    lat.sort()
    ok = statuses.get(200, 0)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0

    print(
        f"clients={args.clients} seconds={elapsed:.1f} calls={len(lat)} ok={ok} "
        f"calls/s={ok / elapsed:.1f} p50={pct(0.5):.1f}ms p99={pct(0.99):.1f}ms "
        f"statuses={dict(sorted(statuses.items()))} "
        f"rss_before={rss_before // 1024}MiB rss_after={rss_after // 1024}MiB"
    )


if __name__ == "__main__":
    main()
