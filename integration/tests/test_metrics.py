#!/usr/bin/python3
"""Hot keys, per-table counts and the Prometheus endpoint (metrics_listen), against real shards
while pgbench runs a script that hits one pgbench_accounts key far more than the others:
the endpoint's figures move between two scrapes, SHOW HOT KEYS's top row is the planted key with
the largest share of its shard, SHOW TABLES and SHOW LOAD show its shard the busiest, and once
pgbench is done the endpoint and SHOW STATS (TABLES, LOAD, HOT KEYS) give the same counts. The exposition text is parsed: every
sample is name{labels} value and every metric has its TYPE. Each distinct key of a multi-row
INSERT and a /* pgshard: key=v */ comment's key count as hot keys, and a text key sent in LATIN1
(not UTF-8) shows as a bytea's hex in the console and in a valid label. Unknown paths are 404;
a reload that changes metrics_listen moves the endpoint.

Each test runs its own pgshard (robustlib.Proxy, via test_admin's Console) with
`metrics_listen` on METRICS_PORT (default ROBUST_PORT_BASE + 10).

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_metrics.py [TEST ...]
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402

import robustlib as rl  # noqa: E402
import test_admin as ta  # noqa: E402
from robustlib import check, eq  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("METRICS_TEST_TIMEOUT", "180"))
METRICS_PORT = int(os.environ.get("METRICS_PORT", rl.PORT_BASE + 10))
TESTS = []

HOT_KEY = 4242

# three statements on the planted key for one on a random one
SCRIPT = """\\set aid random(1, 100000)
SELECT abalance FROM pgbench_accounts WHERE aid = %d;
SELECT abalance FROM pgbench_accounts WHERE aid = %d;
SELECT abalance FROM pgbench_accounts WHERE aid = %d;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
""" % (HOT_KEY, HOT_KEY, HOT_KEY)


def test(fn):
    TESTS.append(fn)
    return fn


def listening(port):
    try:
        socket.create_connection((rl.HOST, port), timeout=2).close()
        return True
    except OSError:
        return False


def scrape(path="/metrics", port=METRICS_PORT):
    with urllib.request.urlopen("http://%s:%d%s" % (rl.HOST, port, path), timeout=10) as r:
        eq(r.status, 200, "status of GET %s" % path)
        check(r.headers.get("Content-Type", "").startswith("text/plain"),
              "content type: %s" % r.headers.get("Content-Type"))
        return r.read().decode("utf-8")


LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_exposition(text):
    """{name: type} and [(name, {labels}, value)]; fails on any line that does not parse, and
    on a sample of a metric without a TYPE line before it."""
    types, samples = {}, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            check(len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram", "summary",
                                                    "untyped"), "TYPE line: %r" % line)
            check(parts[2] not in types, "TYPE of %s twice" % parts[2])
            types[parts[2]] = parts[3]
            continue
        check(not line.startswith("#"), "comment line: %r" % line)
        m = SAMPLE.match(line)
        check(m is not None, "sample line does not parse: %r" % line)
        name, labels = m.group(1), {}
        if m.group(3):
            body = m.group(3)
            pos = 0
            while pos < len(body):
                lm = LABEL.match(body, pos)
                check(lm is not None, "labels do not parse at %d: %r" % (pos, line))
                labels[lm.group(1)] = unescape(lm.group(2))
                pos = lm.end()
                if pos < len(body):
                    check(body[pos] == ",", "labels separated by commas: %r" % line)
                    pos += 1
        value = float(m.group(4))  # raises on a value that is not a number
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        check(family in types, "sample of %s without a TYPE line before it" % name)
        samples.append((name, labels, value))
    return types, samples


def per_node(samples, name):
    return {(int(lb["shard"]), lb["role"], lb["node"]): v for n, lb, v in samples if n == name}


def total(samples, name):
    return sum(v for n, _, v in samples if n == name)


def run_bench(proxy, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(SCRIPT)
        script = f.name
    proc = subprocess.Popen(["pgbench", "-n", "-T", str(seconds), "-c", "4", "-j", "2",
                             "-f", script], env=proxy.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, script


def bench_wait(proc, script):
    out, _ = proc.communicate(timeout=120)
    os.unlink(script)
    check(proc.returncode == 0, "pgbench failed: %s" % out[-400:])
    m = re.search(r"number of failed transactions: (\d+)", out)
    check(m is None or m.group(1) == "0", "pgbench had failed transactions: %s" % out[-300:])


@test
def test_hot_key_and_endpoint_agree_with_the_console():
    # pgbench's tables first, through a pgshard of their own: the one under test then runs for
    # seconds only, well inside the minute after which SHOW HOT KEYS halves its counts
    with ta.Console("metrics_init") as p:
        ta.ensure_pgbench_tables(p)
    settings = {"workers": "2", "metrics_listen": "%s:%d" % (rl.HOST, METRICS_PORT)}
    with ta.Console("metrics_hot", settings=settings) as p:
        a = p.admin()
        proc, script = run_bench(p, 4)
        try:
            first = ta.wait_for("statements in the endpoint", lambda: (
                lambda s: s if total(s, "pgshard_statements_total") > 0 else None)(
                parse_exposition(scrape())[1]))
            time.sleep(1)
            second = parse_exposition(scrape())[1]
        finally:
            bench_wait(proc, script)
        # the figures moved between two scrapes, on no node backwards
        before, after = (per_node(first, "pgshard_statements_total"),
                         per_node(second, "pgshard_statements_total"))
        check(sum(after.values()) > sum(before.values()),
              "statements moved between scrapes: %s -> %s" % (before, after))
        for k, v in before.items():
            check(after.get(k, 0) >= v, "counter %s went down" % (k,))

        # the planted key is the top hot key, with the largest share
        hot = ta.show(a, "HOT KEYS")
        check(len(hot) > 1, "several hot keys: %s" % hot[:3])
        top = hot[0]
        eq((top["table"], top["key"]), ("pgbench_accounts", str(HOT_KEY)), "top hot key")
        check(all(top["count"] >= r["count"] for r in hot), "top by count: %s" % hot[:3])
        share = float(top["share"])
        check(share > 50.0, "the planted key's share of its shard: %s" % share)
        check(all(r["share"] is None or float(r["share"]) < share for r in hot[1:]),
              "its share is the largest: %s" % hot[:3])
        check(top["count"] - top["error"] > 100, "a count beyond its error: %s" % top)

        # per-table rows: pgbench_accounts on every shard, planted key's shard the busiest
        tables = [r for r in ta.show(a, "TABLES") if r["table"] == "pgbench_accounts"]
        check(len(tables) >= 3, "pgbench_accounts on each shard: %s" % tables)
        busiest = max(tables, key=lambda r: r["statements"])
        eq(busiest["shard"], top["shard"], "the hot key's shard has the most statements")
        load = ta.show(a, "LOAD")
        eq(sorted(r["shard"] for r in load), [0, 1, 2], "SHOW LOAD: a row per shard")
        heavy = max(load, key=lambda r: r["statements"])
        eq(heavy["shard"], top["shard"], "SHOW LOAD: the hot key's shard is the busiest")
        check(float(heavy["share"]) > 50.0, "its share of all shards: %s" % heavy)

        # quiescent: the console and the endpoint give the same counts
        stats = {(r["shard"], r["role"], r["node"]): r["statements"] for r in ta.show(a, "STATS")}
        types, samples = parse_exposition(scrape())
        eq(per_node(samples, "pgshard_statements_total"),
           {k: float(v) for k, v in stats.items()}, "statements: endpoint vs SHOW STATS")
        shows = {(r["table"], r["shard"]): r["statements"] for r in ta.show(a, "TABLES")}
        scraped = {(lb["table"], int(lb["shard"])): v for n, lb, v in samples
                   if n == "pgshard_table_statements_total"}
        eq(scraped, {k: float(v) for k, v in shows.items()}, "per-table: endpoint vs SHOW TABLES")
        loads = {r["shard"]: float(r["statements"]) for r in ta.show(a, "LOAD")
                 if r["statements"] > 0}
        eq({int(lb["shard"]): v for n, lb, v in samples
            if n == "pgshard_shard_statements_total"}, loads, "per shard: endpoint vs SHOW LOAD")
        hot_scraped = {(lb["table"], lb["key"]): v for n, lb, v in samples
                       if n == "pgshard_hot_key_statements"}
        eq(hot_scraped.get(("pgbench_accounts", str(HOT_KEY))), float(top["count"]),
           "the hot key's count: endpoint vs SHOW HOT KEYS")

        # the families the issue names, with their types
        for name, kind in (("pgshard_statements_total", "counter"),
                           ("pgshard_transactions_total", "counter"),
                           ("pgshard_errors_total", "counter"),
                           ("pgshard_bytes_received_total", "counter"),
                           ("pgshard_bytes_sent_total", "counter"),
                           ("pgshard_statement_duration_seconds", "histogram"),
                           ("pgshard_pool_server_connections", "gauge"),
                           ("pgshard_client_connections", "gauge"),
                           ("pgshard_node_up", "gauge"),
                           ("pgshard_hot_key_statements", "gauge")):
            eq(types.get(name), kind, "TYPE of %s" % name)
        # the histogram: buckets cumulative, +Inf equals _count per node
        counts = per_node(samples, "pgshard_statement_duration_seconds_count")
        for key, n in counts.items():
            buckets = [(float(lb["le"]), v) for name, lb, v in samples
                       if name == "pgshard_statement_duration_seconds_bucket"
                       and (int(lb["shard"]), lb["role"], lb["node"]) == key]
            check(buckets == sorted(buckets), "buckets in order of le for %s" % (key,))
            vals = [v for _, v in buckets]
            check(vals == sorted(vals), "buckets cumulative for %s: %s" % (key, vals))
            eq(buckets[-1], (float("inf"), n), "+Inf bucket is _count for %s" % (key,))
        eq(counts, per_node(samples, "pgshard_statements_total"),
           "every statement has a latency")
        # every configured node's health is known by now
        ups = per_node(samples, "pgshard_node_up")
        eq(sorted(ups), ta.nodes_of_config(p), "pgshard_node_up for every node")
        check(all(v == 1 for v in ups.values()), "every node up: %s" % ups)
        a.close()


KEYS_TABLES = """
[table.mt_keys]
key = id
map = users

[table.mt_names]
key = name
map = names
"""


@test
def test_insert_rows_and_comment_keys_are_counted_a_refused_latin1_key_not():
    settings = {"metrics_listen": "%s:%d" % (rl.HOST, METRICS_PORT)}
    p = ta.Console("metrics_keys", settings=settings)
    with open(p.ini, "a") as f:
        f.write(KEYS_TABLES)
    with p:
        c = rl.pg(p.port)
        cur = c.cursor()
        try:
            cur.execute("drop table if exists mt_keys, mt_names")
            cur.execute("create table mt_keys (id bigint, n int)")
            cur.execute("create table mt_names (name text, n int)")
            cur.execute("insert into mt_keys values (101, 1), (202, 2), (101, 3)")
            cur.execute("/* pgshard: key=303 */ select count(*) from mt_keys")
            # a text key in LATIN1: 'café' reaches pgshard as the bytes c a f 0xe9, which the
            # database stores as UTF-8: refused (test_routing), and not counted
            c.set_client_encoding("LATIN1")
            try:
                cur.execute("select * from mt_names where name = 'caf\u00e9'")
                check(False, "a LATIN1 non-ASCII key was routed")
            except psycopg2.errors.FeatureNotSupported:
                pass
            c.set_client_encoding("UTF8")
            cur.execute("select * from mt_names where name = 'caf\u00e9'")
            a = p.admin()
            hot = {r["key"]: r["count"] for r in ta.show(a, "HOT KEYS")
                   if r["table"] == "mt_keys"}
            eq(hot, {"101": 1, "202": 1, "303": 1},
               "each distinct key of the INSERT once, and the comment's key")
            names = [r["key"] for r in ta.show(a, "HOT KEYS") if r["table"] == "mt_names"]
            eq(names, ["caf\u00e9"], "the UTF-8 key once, the refused LATIN1 one not")
            a.close()
            _, samples = parse_exposition(scrape())  # decodes as UTF-8: fails on other bytes
            labels = [lb["key"] for n, lb, v in samples
                      if n == "pgshard_hot_key_statements" and lb.get("table") == "mt_names"]
            eq(labels, ["caf\u00e9"], "the UTF-8 key's label")
        finally:
            c.set_client_encoding("UTF8")
            cur.execute("drop table if exists mt_keys, mt_names")
            c.close()


@test
def test_unknown_paths_are_404_and_a_reload_moves_the_endpoint():
    settings = {"metrics_listen": "%s:%d" % (rl.HOST, METRICS_PORT)}
    with ta.Console("metrics_404", settings=settings) as p:
        for path in ("/", "/metricsx", "/metrics/extra"):
            try:
                urllib.request.urlopen("http://%s:%d%s" % (rl.HOST, METRICS_PORT, path),
                                       timeout=10)
                check(False, "GET %s answered 200" % path)
            except urllib.error.HTTPError as e:
                eq(e.code, 404, "status of GET %s" % path)
        types, _ = parse_exposition(scrape())
        check("pgshard_statements_total" in types, "GET /metrics still answers")
        # a reload moves the endpoint (to METRICS_PORT + 1), and back
        with open(p.ini) as f:
            text = f.read()
        a = p.admin()
        for new, old in ((METRICS_PORT + 1, METRICS_PORT), (METRICS_PORT, METRICS_PORT + 1)):
            with open(p.ini, "w") as f:
                f.write(text.replace("metrics_listen = %s:%d" % (rl.HOST, METRICS_PORT),
                                     "metrics_listen = %s:%d" % (rl.HOST, new)))
            a.cursor().execute("RELOAD")
            ta.wait_for("the endpoint on port %d" % new, lambda: listening(new))
            types, _ = parse_exposition(scrape(port=new))
            check("pgshard_statements_total" in types, "GET /metrics on port %d" % new)
            check(not listening(old), "port %d still listens after the move" % old)
        a.close()
        p.healthy()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=3)
