#!/usr/bin/env python3
"""One markdown table from bench.py result files: a row per figure, a column per target.

  python3 bench/table.py NEUTRON.json|- "LABEL=RESULT.json" ...

The first column is the neutron peer (`-`: none); each further column is one vpnaas
run, labelled. Columns measured at the neutron peer's N get a ratio column after them:
how many times better vpnaas is (rates: vpnaas/neutron; times, CPU and memory:
neutron/vpnaas). Stdlib only.
"""
import json
import sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
neutron = None if sys.argv[1] == "-" else json.load(open(sys.argv[1]))
columns = []
for arg in sys.argv[2:]:
    label, _, path = arg.rpartition("=")
    columns.append((label, json.load(open(path))))

# (figure, result key, main field, second field or None, kind: rate | time | mem | info)
FIGURES = [
    ("creates/s, 1 client", "create_c1", "per_s", None, "rate"),
    ("create latency 1 client, p50 / p99 ms", "create_c1", "p50_ms", "p99_ms", "time"),
    ("creates/s, 4 clients", "create_c4", "per_s", None, "rate"),
    ("creates/s, 16 clients", "create_c16", "per_s", None, "rate"),
    ("create latency 16 clients, p50 / p99 ms", "create_c16", "p50_ms", "p99_ms", "time"),
    ("server CPU per create (16 clients), ms", "create_c16", "server_cpu_ms_per_req", None, "time"),
    ("DB process CPU per create (16 clients), ms", "create_c16", "db_cpu_ms_per_req", None, "info"),
    ("list all rows, full, p50 / p99 ms", "list_full", "p50_ms", "p99_ms", "time"),
    ("  rows returned", "list_full", "rows", None, "info"),
    ("list all rows, fields=id&fields=name, p50 / p99 ms", "list_fields_id_name", "p50_ms", "p99_ms", "time"),
    ("list limit=100 (first page), p50 / p99 ms", "list_limit100", "p50_ms", "p99_ms", "time"),
    ("list limit=100&marker=(middle), p50 / p99 ms", "list_limit100_marker", "p50_ms", "p99_ms", "time"),
    ("server CPU per full list, ms", "list_full", "server_cpu_ms_per_req", None, "time"),
    ("GET one, 1 client, p50 / p99 ms", "get_c1", "p50_ms", "p99_ms", "time"),
    ("GET one, 16 clients, req/s (Python client)", "get_c16", "per_s", None, "rate"),
    ("server CPU per GET one (16 clients), ms", "get_c16", "server_cpu_ms_per_req", None, "time"),
    ("deletes/s, 1 client", "delete_c1", "per_s", None, "rate"),
    ("wrk GET one, 1 conn, req/s", "wrk_get_c1", "per_s", None, "rate"),
    ("wrk GET one, 1 conn, p50 / p99 ms", "wrk_get_c1", "p50_ms", "p99_ms", "time"),
    ("wrk GET one, 16 conns, req/s", "wrk_get_c16", "per_s", None, "rate"),
    ("wrk GET one, 16 conns, p50 / p99 ms", "wrk_get_c16", "p50_ms", "p99_ms", "time"),
    ("wrk list fields=id,name, 1 conn, req/s", "wrk_list_fields_c1", "per_s", None, "rate"),
    ("wrk list fields=id,name, 1 conn, p50 ms", "wrk_list_fields_c1", "p50_ms", None, "time"),
    ("wrk list limit=100, 16 conns, req/s", "wrk_list_limit_c16", "per_s", None, "rate"),
    ("wrk list limit=100, 16 conns, p50 / p99 ms", "wrk_list_limit_c16", "p50_ms", "p99_ms", "time"),
    ("server RSS idle, MB", "rss_idle", "server_rss_mb", None, "mem"),
    ("server RSS after creates, MB", "rss_after_creates", "server_rss_mb", None, "mem"),
    ("server RSS after lists/gets, MB (peak VmHWM)", "rss_after_reads", "server_rss_mb", "server_hwm_mb", "mem"),
    ("wrk list full (10,000 rows a page), 64 conns, req/s", "wrk_list_full_c64", "per_s", None, "rate"),
    ("server RSS after that storm of lists, MB (peak VmHWM)", "rss_after_storm", "server_rss_mb", "server_hwm_mb", "mem"),
    ("DB process RSS after reads, MB", "rss_after_reads", "db_rss_mb", None, "info"),
]


def get(result, key, field):
    v = (result or {}).get(key)
    return v.get(field) if isinstance(v, dict) else None


def fmt(x):
    if x is None:
        return "—"
    if x >= 100:
        return "{:,.0f}".format(x)
    if x >= 10:
        return "%.1f" % x
    if x >= 1:
        return "%.2f" % x
    return "%.3f" % x


def cell(result, key, a, b):
    x = get(result, key, a)
    text = fmt(x) if b is None else "%s / %s" % (fmt(x), fmt(get(result, key, b)))
    return text, x


def rows_in(result):
    return get(result, "list_full", "rows_in_db") or get(result, "rows", "rows") or get(result, "list_full", "rows")


n_peer = rows_in(neutron) if neutron else None
with_ratio = [neutron is not None and rows_in(r) == n_peer for _, r in columns]
head = ["figure"] + (["neutron 29 (N=%s)" % fmt(n_peer)] if neutron else [])
for (label, _), ratio in zip(columns, with_ratio):
    head += [label] + (["ratio"] if ratio else [])
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for label, key, a, b, kind in FIGURES:
    line = [label]
    base = None
    if neutron:
        text, base = cell(neutron, key, a, b)
        line.append(text)
    seen = base is not None
    for (_, result), ratio in zip(columns, with_ratio):
        text, x = cell(result, key, a, b)
        seen = seen or x is not None
        line.append(text)
        if ratio:
            r = "—"
            if base and x and kind in ("rate", "time", "mem"):
                r = "×" + fmt(x / base if kind == "rate" else base / x)
            line.append(r)
    if seen:
        print("| " + " | ".join(line) + " |")
