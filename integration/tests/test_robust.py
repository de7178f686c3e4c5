#!/usr/bin/python3
"""Robustness of pgshard under hostile or unlucky clients: each test replays the byte
sequence or the load of one finding and asserts what PostgreSQL (or a production proxy)
does: no crash, no hang, no memory blow-up, no injected SQL, no wrong answer.

  pool_connect_load_in_cross_shard_transactions   pgbench -C, BEGIN; shard A; shard B; END
  terminate_pipelined_after_two_shard_queries     Q(shard 0) Q(shard 1) X in one write
  huge_statements_do_not_stall_others_or_blow_memory
  half_open_logins_time_out                        [proxy] login_timeout
  gather_values_survive_sjis_and_backslash_quote   E'..' literals vs SJIS, backslash_quote
  collation_lookup_ignores_user_operators          public.= (name, name) + search_path
  copy_in_interrupted_by_query_like_postgres       Q during a COPY split across shards
  copy_in_with_sync_and_flush_like_postgres        Sync and Flush during a COPY
  error_skips_query_until_sync_like_postgres       P/B/E failing, Q, Sync
  shard_hint_insert_of_other_shards_key_refused    /* pgshard: shard=1 */ INSERT
  abandoned_queries_are_cancelled_on_the_shards    close the socket mid pg_sleep
  login_works_while_shard0_is_down                 stop shard 0's primary
  extended_commit_after_proxy_error_rolls_back     COMMIT over Bind/Execute after a refusal
  extended_fan_out_on_fresh_servers                P/B/D/E/S on several shards, new servers

Each test starts a pgshard of its own (the cluster's pgshard.ini with [proxy] settings
changed and this suite's tables rb_* added) on ports ROBUST_PORT_BASE.. (default
PGSHARD_PORT+20..+29), creates its tables directly on the shards and drops them at the end;
a crash, a non-zero exit or a sanitizer report of that pgshard fails the test. The
shard-down test stops and restarts shard 0's primary (as the postgres OS user).

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN (defaults to
build-asan/pgshard). Run:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_robust.py [TEST ...]
Output: "ok NAME" / "FAIL NAME: why" per test, then exactly "N passed, N failed".
ROBUST_KEEP_LOGS=1 keeps the log of a pgshard that crashed (its path is in the message).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402
from robustlib import (Closed, Failure, Proxy, Watcher, check, cstr, data_row, eq, kinds,  # noqa: E402
                       login, msg, parse_fields)
from test_protocol import Raw  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("ROBUST_TEST_TIMEOUT", "75"))
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn



# ---------------------------------------------------------------------------------------
# tables


ITEMS_DDL = "create table rb_items (id bigint primary key, v text)"


class Tables:
    """Creates this suite's tables directly on every shard (as app) and drops them at exit;
    rows given as {id: v} go to the shard that owns their key."""

    def __init__(self, ddl=ITEMS_DDL, rows=None, table="rb_items"):
        self.table = table
        rl.as_app_on_shards("drop table if exists %s" % table)
        rl.as_app_on_shards(ddl)
        for k, v in (rows or {}).items():
            c = rl.pg(rl.SHARD_PORTS[rl.shard_of("users", k)])
            with c.cursor() as cur:
                cur.execute("insert into %s values (%%s, %%s)" % table, (k, v))
            c.close()
        rl.wait_replicas()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        rl.as_app_on_shards("drop table if exists %s" % self.table)
        return False


def one_row_per_shard():
    return {rl.key_on(s): "row of shard %d" % s for s in range(len(rl.SHARD_PORTS))}


# ---------------------------------------------------------------------------------------
# 1. pool_release: a server above the pool size handed to a client that is logging in


def pgbench_cross_shard(proxy, clients, secs):
    k0, k1 = rl.key_on(0), rl.key_on(1)
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write("BEGIN;\nSELECT v FROM rb_items WHERE id = %d;\nSELECT v FROM rb_items WHERE id = %d;\nEND;\n"
                 % (k0, k1))
    script.close()
    env = dict(os.environ, PGHOST=rl.HOST, PGPORT=str(proxy.port), PGCONNECT_TIMEOUT="5")
    cmd = ["pgbench", "-n", "-C", "-c", str(clients), "-j", "2", "-T", str(secs), "-f", script.name]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=secs + 12)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise Failure("pgbench -C -c %d (pool_size %s) did not finish %d s after its -T %d: "
                      "deadlock (%s)%s" % (clients, proxy.name, 12, secs, out.strip()[-200:],
                                           "; " + proxy.crashed() if proxy.crashed() else ""))
    finally:
        os.unlink(script.name)
    why = proxy.crashed()
    if why:
        raise Failure("pgbench -C -c %d: %s" % (clients, why))
    m = re.search(r"tps = ([0-9.]+)", out)
    tps = float(m.group(1)) if m else 0.0
    failed = re.search(r"number of failed transactions: (\d+)", out)
    check(p.returncode == 0 and tps > 0 and failed and failed.group(1) == "0",
          "pgbench -C -c %d: exit %d, tps %.1f: %s" % (clients, p.returncode, tps,
                                                       " | ".join(out.strip().splitlines()[-4:])))
    return tps


@test
def pool_connect_load_in_cross_shard_transactions():
    with Tables(rows=one_row_per_shard()):
        with Proxy("pool2", {"pool_size": 2}) as p:
            pgbench_cross_shard(p, 4, 6)
            p.healthy("after pgbench -C -c 4 with pool_size 2")
        with Proxy("pool10", {"pool_size": 10}) as p:
            pgbench_cross_shard(p, 32, 6)
            p.healthy("after pgbench -C -c 32 with pool_size 10")


# ---------------------------------------------------------------------------------------
# 2. Terminate pipelined behind queries on two shards, inside a transaction


@test
def terminate_pipelined_after_two_shard_queries():
    # The transaction holds servers of shards 0 and 1; then Q(shard 0) Q(shard 1) X arrive
    # in one write: X must not free the client while shard 0's reply is being relayed.
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with Tables(rows={k0: "x", k1: "y"}):
        with Proxy("terminate") as p:
            for round_ in range(3):
                r = login(p.port)
                for sql in ("begin", "select v from rb_items where id = %d" % k0,
                            "select v from rb_items where id = %d" % k1):
                    rows, tags, err, status = r.simple(sql)
                    eq((err, status), (None, "T"), sql)
                r.send(Raw.query("select v from rb_items where id = %d" % k0)
                       + Raw.query("select v from rb_items where id = %d" % k1) + Raw.TERMINATE)
                try:
                    r.read_until_eof()  # whatever it answers before closing
                except Failure as e:
                    raise Failure("round %d: %s" % (round_, e))
                r.close()
                time.sleep(0.3)
                p.healthy("round %d, after Q(shard 0) Q(shard 1) X in one write" % round_)


# ---------------------------------------------------------------------------------------
# 3. statements so large that parsing or routing them takes the worker (or the memory)


RSS_LIMIT_KB = int(os.environ.get("ROBUST_RSS_LIMIT_MB", "512")) * 1024


@test
def huge_statements_do_not_stall_others_or_blow_memory():
    # Each statement is under max_message_size (64MB); it may get an error (54000, 54001,
    # 54011, ...) or its answer, but parsing or routing it must neither hold the worker that
    # serves other clients nor take pgshard's memory.
    k0 = rl.key_on(0)
    with Tables(rows=one_row_per_shard()):
        with Proxy("huge") as p:
            base_kb = p.status("VmRSS")
            w = Watcher(p.port, [("select 1", [["1"]])], max_wait=2.0, name="select-1 client")
            results, problems = [], []
            try:
                for what, sql in (
                        ("select 1,1,... of 4 MB", "select " + ",".join(["1"] * (2 * 1024 * 1024))),
                        ("where id = K and id = K ... of 1.1 MB",
                         "select v from rb_items where id = %d" % k0
                         + " and id = %d" % k0 * 100000)):
                    r = login(p.port, timeout=20)
                    t0 = time.time()
                    try:
                        r.send(Raw.query(sql))
                        msgs = r.until_ready()
                        errs = [parse_fields(b) for k, b in msgs if k == "E"]
                        results.append("%s: %s in %.1fs" % (what, errs[0].get("C") if errs else "answered",
                                                            time.time() - t0))
                    except Closed:
                        results.append("%s: closed in %.1fs" % (what, time.time() - t0))
                    except Failure as e:
                        problems.append("%s: %s" % (what, e))
                    finally:
                        r.close()
                    hwm = p.status("VmHWM")
                    if hwm > RSS_LIMIT_KB + base_kb:
                        problems.append("%s: pgshard's peak RSS %d MB (limit %d MB above its %d MB"
                                        " at start)" % (what, hwm // 1024, RSS_LIMIT_KB // 1024,
                                                        base_kb // 1024))
                    if p.crashed():
                        problems.append(p.crashed())
                    if w.errors or problems:
                        break
            finally:
                errors = w.finish()
            problems += errors[:2]
            check(not problems, "%s (outcomes: %s; slowest select 1: %.1fs)"
                  % ("; ".join(problems), "; ".join(results) or "-", w.slowest))
            check(w.checked > 0, "the select-1 client made no progress")
            p.healthy()


# ---------------------------------------------------------------------------------------
# 4. login timeout


@test
def half_open_logins_time_out():
    with Proxy("login_timeout", {"max_clients": 4, "login_timeout": 2}) as p:
        socks = []
        startup = struct.pack("!ii", 40, 196608)
        try:
            for _ in range(4):
                s = socket.create_connection((rl.HOST, p.port), timeout=5)
                s.settimeout(0.2)
                socks.append(s)
            # one byte of a startup packet every 0.5 s, as a slow-loris client does
            closed_at = [None] * len(socks)
            t0 = time.time()
            i = 0
            while time.time() - t0 < 7 and None in closed_at:
                for n, s in enumerate(socks):
                    if closed_at[n] is not None:
                        continue
                    try:
                        s.send(startup[i % len(startup):i % len(startup) + 1])
                        if s.recv(1) == b"":
                            closed_at[n] = time.time() - t0
                    except socket.timeout:
                        pass
                    except OSError:
                        closed_at[n] = time.time() - t0
                i += 1
                time.sleep(0.5)
            check(None not in closed_at, "half-open logins still open after 7 s with login_timeout"
                  " = 2 (closed after: %r)" % closed_at)
            r = login(p.port, timeout=5)
            rows, tags, err, status = r.simple("select 'real login'")
            eq(rows, [["real login"]], "a real login after the half-open ones timed out")
            r.close()
        finally:
            for s in socks:
                s.close()


# ---------------------------------------------------------------------------------------
# 5. the gather's held values as SQL literals


TEXTS = ["it's", "back\\slash", "\\'", "a''b", "ソ", "ソ'", "表\\", "能", "日本語", "plain",
         "ends with \\", "ソ'); insert into rb_pwned values (1); --", "ソ",
         "||rb_inject()||E", "x", "end'"]


@test
def gather_values_survive_sjis_and_backslash_quote():
    rows = {k: TEXTS[(k - 1) % len(TEXTS)] for k in range(1, 1 + 2 * len(TEXTS))}
    rows = dict((k, v) for k, v in rows.items())
    ddl = "create table rb_texts (id bigint primary key, v text)"
    try:
        rl.as_app_on_shards("drop table if exists rb_pwned; create table rb_pwned (x int);"
                            "create or replace function rb_inject() returns text language sql"
                            " as 'insert into rb_pwned values (1) returning ''pwned'''")
        with Tables(ddl, rows, table="rb_texts"):
            stored = set()
            per_shard = rl.on_shards("select v from rb_texts")
            for shard_rows in per_shard:
                stored |= {v for (v,) in shard_rows}
            check(len([s for s in per_shard if s]) >= 2, "values on fewer than two shards")
            with Proxy("gather_literals") as p:
                problems = []
                for settings in (["set client_encoding = 'SJIS'"],
                                 ["set client_encoding = 'SJIS'", "set backslash_quote = on"],
                                 ["set backslash_quote = on"]):
                    c = rl.pg(p.port)
                    try:
                        with c.cursor() as cur:
                            for s in settings:
                                if "client_encoding" in s:
                                    # psycopg2 decodes by the encoding it set itself
                                    c.set_client_encoding("SJIS")
                                else:
                                    cur.execute(s)
                            for sql in ("select distinct v from rb_texts",
                                        "select v, count(*) from rb_texts group by v"):
                                try:
                                    cur.execute(sql)
                                    got = [r[0] for r in cur.fetchall()]
                                except Exception as e:  # noqa: BLE001
                                    problems.append("%s; %s: %s" % ("; ".join(settings), sql,
                                                                    str(e).strip().splitlines()[0]))
                                    continue
                                if sorted(got) != sorted(stored) or len(got) != len(set(got)):
                                    problems.append("%s; %s: values %r, stored %r" % (
                                        "; ".join(settings), sql, sorted(set(got) ^ stored)[:4],
                                        "(symmetric difference shown)"))
                    finally:
                        c.close()
                    if p.crashed():
                        break
                pwned = [r[0][0] for r in rl.on_shards("select count(*) from rb_pwned")]
                check(sum(pwned) == 0, "an injected statement ran: rb_pwned rows per shard %r" % pwned)
                check(not problems, " || ".join(problems[:4]))
    finally:
        rl.as_app_on_shards("drop table if exists rb_pwned; drop function if exists rb_inject()")


# ---------------------------------------------------------------------------------------
# 6. the collation lookup under a user's search_path


SORT_VALUES = ["c", "B", "a", "b", "C", "A", "ä", "Z", "_x", "10", "9"]


@test
def collation_lookup_ignores_user_operators():
    rows = {k: SORT_VALUES[k - 1] for k in range(1, len(SORT_VALUES) + 1)}
    ddl = "create table rb_sort (id bigint primary key, v text)"
    c = rl.pg(rl.SHARD_PORTS[0])
    with c.cursor() as cur:
        cur.execute("select v from unnest(%s::text[]) v order by v", (SORT_VALUES,))
        want = [r[0] for r in cur.fetchall()]
    c.close()
    # The evil "=" finds the database rb_ccoll (collation "C") instead of the current one: a
    # lookup that uses it caches "C", and text sorts bytewise ('B' < 'a') for everyone.
    evil = ("create function public.rb_evil_eq(name, name) returns boolean language sql immutable"
            " as 'select $1 operator(pg_catalog.=) ''rb_ccoll''::name';"
            " create operator public.= (leftarg = name, rightarg = name,"
            " function = public.rb_evil_eq)")
    cleanup = "drop operator if exists public.= (name, name); drop function if exists public.rb_evil_eq(name, name)"
    for port in rl.SHARD_PORTS:
        d = rl.pg(port)
        with d.cursor() as cur:
            cur.execute("drop database if exists rb_ccoll")
            cur.execute("create database rb_ccoll template template0 lc_collate 'C' lc_ctype 'C'")
        d.close()
    try:
        rl.as_app_on_shards(cleanup)
        with Tables(ddl, rows, table="rb_sort"):
            rl.as_app_on_shards(evil)
            with Proxy("collation") as p:  # fresh: no collation cached yet
                e = rl.pg(p.port)
                with e.cursor() as cur:
                    cur.execute("set search_path = public, pg_catalog")
                    cur.execute("select v from rb_sort order by v")  # the first lookup
                    cur.fetchall()
                e.close()
                g = rl.pg(p.port)
                with g.cursor() as cur:
                    cur.execute("select v from rb_sort order by v")
                    got = [r[0] for r in cur.fetchall()]
                    cur.execute("select v from rb_sort order by v desc")
                    got_desc = [r[0] for r in cur.fetchall()]
                g.close()
                eq(got, want, "another client's multi-shard ORDER BY on text after a session with"
                   " public.= (name, name) in its search_path did the collation lookup")
                eq(got_desc, want[::-1], "ORDER BY DESC")
    finally:
        rl.as_app_on_shards(cleanup)
        for port in rl.SHARD_PORTS:
            d = rl.pg(port)
            with d.cursor() as cur:
                cur.execute("drop database if exists rb_ccoll")
            d.close()


# ---------------------------------------------------------------------------------------
# 7. protocol sequences PostgreSQL answers and the proxy must too


def conversation(r, steps):
    """steps: list of (bytes to send, number of ReadyForQuery to read). Returns a list of
    (kind, SQLSTATE or command tag or status or None) of everything read; EOF ends it."""
    out = []
    try:
        for data, n_ready in steps:
            r.send(data)
            for _ in range(n_ready):
                while True:
                    k, b = r.read()
                    if k == "E":
                        out.append((k, parse_fields(b).get("C")))
                    elif k == "C":
                        out.append((k, b[:-1].decode()))
                    elif k == "Z":
                        out.append((k, b.decode()))
                        break
                    else:
                        out.append((k, None))
    except (Closed, BrokenPipeError, ConnectionResetError):
        out.append(("EOF", None))
    return out


def like_postgres(proxy, build_steps, what, setup_direct="create temp table rb_items (id bigint, v text)"):
    """Runs the same conversation on shard 0 directly (table rb_items as a temp table) and
    through the proxy; both must give the same messages, SQLSTATEs and tags."""
    d = login(rl.SHARD_PORTS[0], timeout=8)
    rows, tags, err, status = d.simple(setup_direct)
    check(err is None, "direct setup: %r" % err)
    want = conversation(d, build_steps())
    d.close()
    r = login(proxy.port, timeout=8)
    try:
        got = conversation(r, build_steps())
    except Failure as e:
        raise Failure("%s: %s (PostgreSQL answers %r)%s" % (what, e, want,
                                                           "; " + proxy.crashed() if proxy.crashed() else ""))
    finally:
        r.close()
    eq(collapse(got), collapse(want), what + " (PostgreSQL 15's answer is the wanted one)")


def collapse(conv):
    """Repeated identical errors count as one (PostgreSQL's ERROR then FATAL of one 08P01)."""
    out = []
    for m in conv:
        if not (out and m[0] == "E" and out[-1] == m):
            out.append(m)
    return out


def copy_data(*lines):
    return b"".join(msg(b"d", line.encode()) for line in lines)


@test
def copy_in_interrupted_by_query_like_postgres():
    keys = [rl.key_on(s) for s in range(len(rl.SHARD_PORTS))]
    with Tables():
        with Proxy("copy_query") as p:
            def steps():
                return [(Raw.query("copy rb_items (id, v) from stdin"), 0),
                        (copy_data(*["%d\tv%d\n" % (k, k) for k in keys]) + Raw.query("select 1"), 1),
                        (Raw.query("select 42"), 1)]
            # the CopyInResponse is read by the first until_ready together with the error
            like_postgres(p, steps, "Query during COPY FROM STDIN split across shards")
            p.healthy()


@test
def copy_in_with_sync_and_flush_like_postgres():
    keys = [rl.key_on(s) for s in range(len(rl.SHARD_PORTS))]
    with Tables():
        with Proxy("copy_sync") as p:
            def steps():
                return [(Raw.query("copy rb_items (id, v) from stdin"), 0),
                        (copy_data("%d\ta\n" % keys[0]) + Raw.SYNC + copy_data("%d\tb\n" % keys[1])
                         + Raw.FLUSH + copy_data("%d\tc\n" % keys[2]) + msg(b"c"), 1),
                        (Raw.query("select 42"), 1)]
            like_postgres(p, steps, "Sync and Flush during COPY FROM STDIN split across shards")
            p.healthy()


@test
def error_skips_query_until_sync_like_postgres():
    with Tables(rows=one_row_per_shard()):
        with Proxy("skip_to_sync") as p:
            def steps():
                return [(Raw.parse("", "select 1/0") + Raw.bind("", "") + Raw.execute()
                         + Raw.query("select count(*) from rb_items") + Raw.SYNC, 1),
                        (Raw.query("select 42"), 1)]
            like_postgres(p, steps, "P/B/E of a failing statement, a multi-shard Query, Sync")
            p.healthy()


@test
def flush_and_sync_with_a_body_like_postgres():
    # PostgreSQL answers a Flush with a body with 08P01 and then skips to the next Sync (the
    # Query in between gets no answer); a Sync with a body gets 08P01 and still ends the batch
    with Tables(rows=one_row_per_shard()):
        with Proxy("flush_body") as p:
            def steps():
                return [(msg(b"H", b"xy") + Raw.query("select 1") + Raw.SYNC, 1),
                        (msg(b"S", b"xy") + Raw.query("select 2"), 2),
                        (Raw.query("select 42"), 1)]
            like_postgres(p, steps, "Flush and Sync with a body")
            p.healthy()


@test
def flush_with_a_body_does_not_reach_the_next_client():
    # pool_size 1: B waits for A's server. A's COMMIT and a Flush with a body arrive in one
    # write; passed on, the Flush would make the server skip to a Sync, and B's Query, sent
    # on that server as soon as the COMMIT frees it, would get no answer.
    k0 = rl.key_on(0)
    with Tables(rows={k0: "x"}):
        with Proxy("flush_body_pool1", {"pool_size": 1}) as p:
            a = login(p.port, timeout=8)
            b = login(p.port, timeout=8)
            try:
                for sql in ("begin", "select v from rb_items where id = %d" % k0):
                    rows, tags, err, status = a.simple(sql)
                    eq((err, status), (None, "T"), "A: " + sql)
                b.send(Raw.query("select v from rb_items where id = %d" % k0))
                time.sleep(0.3)  # B now waits for the pool's one server
                got_a = conversation(a, [(Raw.query("commit") + msg(b"H", b"xy"), 1),
                                         (Raw.SYNC, 1)])
                eq(got_a, [("C", "COMMIT"), ("Z", "I"), ("E", "08P01"), ("Z", "I")],
                   "A: COMMIT, then the Flush's error and the Sync's ReadyForQuery")
                got_b = b.until_ready()
                kinds = [k for k, _ in got_b]
                eq(kinds, ["T", "D", "C", "Z"], "B's answer on the server A's COMMIT freed")
            finally:
                a.close()
                b.close()
            p.healthy()


# ---------------------------------------------------------------------------------------
# 8. a shard hint that contradicts the key; abandoned queries; a shard that is down


@test
def shard_hint_insert_of_other_shards_key_refused():
    k0 = rl.key_on(0)
    with Tables():
        with Proxy("hint") as p:
            c = rl.pg(p.port)
            err = None
            try:
                with c.cursor() as cur:
                    cur.execute("/* pgshard: shard=1 */ INSERT INTO rb_items (id, v) VALUES (%d, 'hinted')" % k0)
            except Exception as e:  # noqa: BLE001
                err = str(e).strip().splitlines()[0]
            c.close()
            placed = [r[0][0] for r in rl.on_shards("select count(*) from rb_items")]
            check(placed[1] == 0, "a row of key %d (shard 0's) was written on shard 1 because of a"
                  " /* pgshard: shard=1 */ hint (rows per shard %r, error %r)" % (k0, placed, err))
            check(err is not None or placed[0] == 1, "rows per shard %r" % placed)


@test
def abandoned_queries_are_cancelled_on_the_shards():
    k0 = rl.key_on(0)
    marker = "rb_abandon_%d" % os.getpid()
    with Tables(rows=one_row_per_shard()):
        with Proxy("abandon") as p:
            r1 = login(p.port)
            r1.send(Raw.query("select pg_sleep(60), '%s_one' from rb_items where id = %d" % (marker, k0)))
            r2 = login(p.port)
            r2.send(Raw.query("select pg_sleep(60), '%s_all' from rb_items" % marker))
            count = ("select count(*) from pg_stat_activity where state = 'active' and query like"
                     " '%%%s%%' and pid <> pg_backend_pid()" % marker)
            deadline = time.time() + 10
            while time.time() < deadline:
                running = [r[0][0] for r in rl.on_shards(count)]
                if running[0] >= 2 and all(n >= 1 for n in running):
                    break
                time.sleep(0.1)
            check(running[0] >= 2 and all(n >= 1 for n in running),
                  "the sleeps never all ran (per shard %r)" % running)
            r1.close()
            r2.close()
            deadline = time.time() + 5
            while time.time() < deadline:
                running = [r[0][0] for r in rl.on_shards(count)]
                if sum(running) == 0:
                    break
                time.sleep(0.2)
            if sum(running):
                rl.on_shards("select pg_cancel_backend(pid) from pg_stat_activity where query like"
                             " '%%%s%%' and pid <> pg_backend_pid()" % marker)
            check(sum(running) == 0, "5 s after their clients closed the socket, their statements"
                  " still run on the shards (per shard %r)" % running)


@test
def login_works_while_shard0_is_down():
    k0, k1 = rl.key_on(0), rl.key_on(1)
    data0 = os.path.join(rl.DATA, "shard0-primary")
    check(os.path.isdir(data0), "no data directory %s" % data0)
    with Tables(rows={k0: "zero", k1: "one"}):
        with Proxy("shard0_down", {"server_connect_timeout": 2000}) as p:
            rl.pg_ctl("-D", data0, "-m", "fast", "-w", "-t", "30", "stop")
            try:
                try:
                    r = login(p.port, timeout=10)
                except (Failure, Closed) as e:
                    raise Failure("login with shard 0 down (a client that only uses shard 1): %s" % e)
                try:
                    rows, tags, err, status = r.simple("select v from rb_items where id = %d" % k1)
                    eq((rows, err), ([["one"]], None), "query on shard 1 while shard 0 is down")
                    rows, tags, err, status = r.simple("select v from rb_items where id = %d" % k0)
                    check(rows == [["zero"]] or (err or {}).get("C") in ("08006", "08001"),
                          "query on shard 0 while it is down: rows %r error %r" % (rows, err))
                finally:
                    r.close()
            finally:
                rl.shard_up(0)


# ---------------------------------------------------------------------------------------
# transaction control over Bind/Execute after an error that was pgshard's own


@test
def extended_commit_after_proxy_error_rolls_back():
    """BEGIN; INSERT on one shard; a statement pgshard refuses (0A000, the shard never saw
    it); COMMIT over Parse/Bind/Execute: PostgreSQL answers ROLLBACK and keeps nothing, so
    must pgshard, although the shard itself does not know the transaction failed."""
    k0 = rl.key_on(0)
    with Tables():
        with Proxy("tx_extended") as p:
            r = login(p.port)
            try:
                for sql in ("BEGIN", "INSERT INTO rb_items (id, v) VALUES (%d, 'kept?')" % k0):
                    rows, tags, err, status = r.simple(sql)
                    eq(err, None, sql)
                rows, tags, err, status = r.simple(
                    "SELECT v, row_number() OVER () FROM rb_items")
                check(err is not None and err.get("C") == "0A000",
                      "a window function over several shards is refused: %r" % (err,))
                eq(status, "E", "status after pgshard's own error in the transaction")
                r.send(r.parse("", "COMMIT") + r.bind("", "") + r.execute("") + r.SYNC)
                got = r.until_ready()
                tags = [body.rstrip(b"\0").decode() for kind, body in got if kind == "C"]
                eq(tags, ["ROLLBACK"], "tag of COMMIT of a failed transaction")
                eq(got[-1][1], b"I", "status after it")
                rows, tags, err, status = r.simple("SELECT v FROM rb_items WHERE id = %d" % k0)
                eq((rows, err), ([], None), "the insert of the failed transaction is gone")
                # a savepoint answered by pgshard (no shard yet) keeps the transaction open
                r.simple("BEGIN")
                r.send(r.parse("", "SAVEPOINT a") + r.bind("", "") + r.execute("") + r.SYNC)
                got = r.until_ready()
                eq(got[-1][1], b"T", "status after SAVEPOINT over Bind/Execute")
                rows, tags, err, status = r.simple("ROLLBACK")
                eq((err, status), (None, "I"), "ROLLBACK")
            finally:
                r.close()
            p.healthy()


@test
def extended_fan_out_on_fresh_servers():
    """A statement on several shards over Parse/Bind/Describe/Execute/Sync on a pgshard that
    has just started: each shard's server connection is new and first gets the client's
    settings; the Execute must go on once they are applied (it waited for ever)."""
    with Tables(rows=one_row_per_shard()):
        with Proxy("fresh_extended") as p:
            r = login(p.port, timeout=10)
            try:
                for i in range(3):
                    r.send(r.parse("", "SELECT count(*) FROM rb_items") + r.bind("", "")
                           + r.describe(b"P", "") + r.execute("") + r.SYNC)
                    got = r.until_ready()
                    rows = [data_row(body) for kind, body in got if kind == "D"]
                    eq(rows, [[str(len(rl.SHARD_PORTS))]], "count over every shard, round %d" % i)
            finally:
                r.close()
            p.healthy()


@test
def unnamed_statement_parsed_again_unless_held_with_the_same_settings():
    """A server that holds the very unnamed statement a client parses, made under the
    client's settings, is not sent the Parse again (pgbench's clients all send one text).
    With one server taken in turns: DateStyle reads a date literal at Parse, so clients of
    two settings must each get their own date, and a Parse the server refuses must be
    refused for every client that sends it, never answered with a statement that is not
    there (26000)."""
    key = rl.key_on(0)
    with Tables(rows={key: "v"}), Proxy("unnamed_reuse", {"pool_size": 1}) as p:
        clients = [(login(p.port, extra={"DateStyle": style}), want)
                   for style, want in (("ISO, DMY", "2024-02-01"), ("ISO, MDY", "2024-01-02"),
                                       ("ISO, DMY", "2024-02-01"), ("ISO, DMY", "2024-02-01"))]
        sql = "SELECT '01/02/2024'::date::text FROM rb_items WHERE id = $1"
        bad = "SELECT no_such_column FROM rb_items WHERE id = $1"
        try:
            for i in range(3):
                for n, (r, want) in enumerate(clients):
                    r.send(Raw.parse("", sql) + Raw.bind("", "", [str(key)]) + Raw.execute()
                           + Raw.SYNC)
                    got = r.until_ready()
                    rows = [data_row(body) for kind, body in got if kind == "D"]
                    eq(rows, [[want]], "client %d's date, round %d" % (n, i))
                # the DMY clients one after the other: no settings to sync in between
                for n in (2, 3, 0):
                    r = clients[n][0]
                    r.send(Raw.parse("", bad) + Raw.bind("", "", [str(key)]) + Raw.execute()
                           + Raw.SYNC)
                    got = r.until_ready()
                    codes = [parse_fields(body).get("C") for kind, body in got if kind == "E"]
                    eq(codes, ["42703"], "client %d's refused Parse, round %d" % (n, i))
                    eq(got[-1], ("Z", b"I"), "client %d idle after it, round %d" % (n, i))
            # a SET LOCAL run earlier in the batch is in effect when the Parse is: parsed again
            r = clients[2][0]
            r.send(Raw.parse("", sql) + Raw.bind("", "", [str(key)]) + Raw.execute() + Raw.SYNC)
            rows = [data_row(body) for kind, body in r.until_ready() if kind == "D"]
            eq(rows, [["2024-02-01"]], "the date before the SET LOCAL")
            r = clients[3][0]
            r.send(Raw.parse("", sql) + Raw.parse("set_local", "SET LOCAL DateStyle = 'ISO, MDY'")
                   + Raw.bind("", "set_local") + Raw.execute() + Raw.bind("", "", [str(key)])
                   + Raw.execute() + Raw.SYNC)
            rows = [data_row(body) for kind, body in r.until_ready() if kind == "D"]
            eq(rows, [["2024-01-02"]], "the date after a SET LOCAL in the same batch")
            # a SET by a named statement changes the settings and leaves the unnamed statement
            r = clients[0][0]
            for sql_i, want in ((sql, "2024-02-01"), ("SET DateStyle = 'ISO, MDY'", None),
                                (sql, "2024-01-02")):
                if want is None:
                    r.send(Raw.parse("set_mdy", sql_i) + Raw.bind("", "set_mdy") + Raw.execute()
                           + Raw.SYNC)
                    got = [(k, b) for k, b in r.until_ready() if k != "S"]  # ParameterStatus
                    eq(kinds(got), "12CZ", "the SET by a named statement")
                    continue
                r.send(Raw.parse("", sql_i) + Raw.bind("", "", [str(key)]) + Raw.execute()
                       + Raw.SYNC)
                rows = [data_row(body) for kind, body in r.until_ready() if kind == "D"]
                eq(rows, [[want]], "the date before and after the SET")
        finally:
            for r, _ in clients:
                r.close()
        p.healthy()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT)
