#!/usr/bin/python3
"""Scatter-gather through the protocol: what the differential test (test_gather.py) does not
see from a driver. Sorted merges over the extended protocol with binary results and hidden
sort-key columns, a Describe without Execute, fetch sizes, the merge_memory cap (54000), and
backpressure: a client that does not read makes pgshard stop reading the shards rather than
buffer their rows.

Needs the cluster of integration/cluster.sh (rt_users sharded by id) and PGSHARD_CONFIG (from its
env.sh); the merge_memory test edits that file and reloads pgshard with SIGHUP, then restores it.

Run:   /usr/bin/python3 integration/tests/test_scatter.py [TEST_NAME ...]
Output: "ok NAME" / "FAIL NAME: why" per test, then exactly "N passed, N failed".
"""

import os
import signal
import struct
import subprocess
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402  (the raw-protocol client and the tiny runner)
from test_protocol import check, eq, test  # noqa: E402

tp.TESTS.clear()
R = tp.Raw
N_USERS = 3000


def proxy():
    c = psycopg2.connect("", connect_timeout=10)
    c.autocommit = True
    return c


def q(conn, sql, args=None):
    cur = conn.cursor()
    cur.execute(sql, args)
    return cur.fetchall() if cur.description is not None else None


def users():
    """rt_users with ids 1..N_USERS, name 'u<id>', n = id % 7."""
    c = proxy()
    q(c, "DROP TABLE IF EXISTS rt_users")
    q(c, "CREATE TABLE rt_users (id bigint PRIMARY KEY, name text, n int DEFAULT 0)")
    q(c, "INSERT INTO rt_users (id, name, n) VALUES " +
      ", ".join("(%d, 'u%d', %d)" % (i, i, i % 7) for i in range(1, N_USERS + 1)))
    c.close()
    return [(i, "u%d" % i, i % 7) for i in range(1, N_USERS + 1)]


def row_description(body):
    """[(name, type oid, format)] of a RowDescription body."""
    (n,) = struct.unpack("!h", body[:2])
    out, p = [], 2
    for _ in range(n):
        e = body.index(b"\0", p)
        name = body[p:e].decode()
        _, _, typ, _, _, fmt = struct.unpack("!ihihih", body[e + 1:e + 19])
        out.append((name, typ, fmt))
        p = e + 19
    return out


def raw_fields(body):
    """The fields of a DataRow as bytes (None for NULL)."""
    (n,) = struct.unpack("!h", body[:2])
    out, p = [], 2
    for _ in range(n):
        (ln,) = struct.unpack("!i", body[p:p + 4])
        p += 4
        out.append(None if ln < 0 else body[p:p + ln])
        p += max(ln, 0)
    return out


def error_code(body):
    for part in body.split(b"\0"):
        if part[:1] == b"C":
            return part[1:].decode()
    return None


@test
def sorted_merge_in_binary_cuts_hidden_columns():
    rows = users()
    want = sorted(rows, key=lambda r: (-r[2], r[0]))[5:15]
    r = tp.connected()
    sql = "SELECT name, id FROM rt_users ORDER BY n DESC, id LIMIT 10 OFFSET 5"
    r.send(R.parse("", sql) + R.bind("", "", result_formats=(1,)) + R.describe(b"P", "") +
           R.execute() + R.SYNC)
    got = r.until_ready()
    eq(tp.kinds(got), "12T" + "D" * 10 + "CZ", "messages")
    desc = row_description(got[2][1])
    eq(desc, [("name", 25, 1), ("id", 20, 1)], "RowDescription (the hidden n is cut)")
    data = [raw_fields(b) for k, b in got if k == "D"]
    eq([(f[0].decode(), struct.unpack("!q", f[1])[0]) for f in data],
       [(w[1], w[0]) for w in want], "binary rows in order")
    eq(got[-2][1].rstrip(b"\0"), b"SELECT 10", "tag")
    # the same with per-column formats: text name, binary id
    r.send(R.parse("", sql) + R.bind("", "", result_formats=(0, 1)) + R.execute() + R.SYNC)
    got = r.until_ready()
    data = [raw_fields(b) for k, b in got if k == "D"]
    eq([(f[0].decode(), struct.unpack("!q", f[1])[0]) for f in data],
       [(w[1], w[0]) for w in want], "mixed formats in order")
    r.close()
    c = proxy()
    eq(q(c, sql), [(w[1], w[0]) for w in want], "the same over the simple protocol")
    c.close()


@test
def describe_without_execute_and_fetch_size():
    users()
    r = tp.connected()
    sql = "SELECT n, count(*) AS k FROM rt_users GROUP BY n ORDER BY n"
    r.send(R.parse("", sql) + R.bind("", "") + R.describe(b"P", "") + R.SYNC)
    got = r.until_ready()
    eq(tp.kinds(got), "12TZ", "Describe without Execute")
    eq([(n, t) for n, t, _ in row_description(got[2][1])], [("n", 23), ("k", 20)],
       "its RowDescription")
    want = [[str(n), str(sum(1 for i in range(1, N_USERS + 1) if i % 7 == n))]
            for n in range(7)]
    # a fetch size (Execute with a row limit) on several shards: the rows in parts (more in
    # test_cursors.py); the Sync ends the portal
    r.send(R.parse("", sql) + R.bind("", "") + R.execute("", 2) + R.SYNC)
    got = r.until_ready()
    eq(tp.kinds(got), "12DDsZ", "Execute with a row limit")
    eq([tp.data_row(b) for k, b in got if k == "D"], want[:2], "its rows")
    r.send(R.parse("", sql) + R.bind("", "") + R.execute() + R.SYNC)
    got = r.until_ready()
    rows = [tp.data_row(b) for k, b in got if k == "D"]
    eq(rows, want, "the session goes on")
    r.close()


@test
def grouping_by_a_user_defined_type():
    c = proxy()
    q(c, "DROP TABLE IF EXISTS rt_users")
    q(c, "/* pgshard: all */ DROP TYPE IF EXISTS rt_mood")
    # a type on one shard only first, so that rt_mood's OID differs between shards
    q(c, "/* pgshard: shard=0 */ DROP TYPE IF EXISTS rt_pad")
    q(c, "/* pgshard: shard=0 */ CREATE TYPE rt_pad AS ENUM ('x')")
    q(c, "/* pgshard: all */ CREATE TYPE rt_mood AS ENUM ('sad', 'ok', 'happy')")
    q(c, "CREATE TABLE rt_users (id bigint PRIMARY KEY, name text, n int, mood rt_mood)")
    moods = ["happy", "sad", "ok", None]
    q(c, "INSERT INTO rt_users (id, name, n, mood) VALUES " +
      ", ".join("(%d, 'u%d', %d, %s)" % (i, i, i % 7, "NULL" if moods[i % 4] is None
                                         else "'%s'" % moods[i % 4]) for i in range(1, 201)))
    # the final query casts the held moods back to rt_mood: enum order, not text order
    rows = q(c, "SELECT mood, count(*), min(id) FROM rt_users GROUP BY mood ORDER BY mood")
    eq(rows, [("sad", 50, 1), ("ok", 50, 2), ("happy", 50, 4), (None, 50, 3)],
       "groups of an enum, in the enum's order")
    for _ in range(5):  # whichever shard's RowDescription comes first
        eq(q(c, "SELECT DISTINCT mood FROM rt_users WHERE mood > 'sad' ORDER BY 1 DESC"),
           [("happy",), ("ok",)], "DISTINCT over an enum")
    q(c, "DROP TABLE rt_users")
    q(c, "/* pgshard: all */ DROP TYPE rt_mood")
    q(c, "/* pgshard: shard=0 */ DROP TYPE rt_pad")
    c.close()


@test
def float_partials_need_exact_float_output():
    c = proxy()
    q(c, "DROP TABLE IF EXISTS rt_users")
    q(c, "CREATE TABLE rt_users (id bigint PRIMARY KEY, name text, n int, w float8)")
    q(c, "INSERT INTO rt_users (id, name, n, w) VALUES " +
      ", ".join("(%d, 'u%d', %d, %r)" % (i, i, i % 3, 1 / i) for i in range(1, 301)))
    sql = "SELECT n, sum(w), count(*) FROM rt_users GROUP BY n ORDER BY n"
    want = q(c, sql)  # extra_float_digits 1: partial floats read back exactly
    eq(len(want), 3, "groups")
    q(c, "SET extra_float_digits = 0")
    try:
        q(c, sql)
        raise tp.Failure("float partial sums were combined from rounded text")
    except psycopg2.Error as e:
        eq(e.pgcode, "0A000", "SQLSTATE with extra_float_digits 0")
        check("extra_float_digits" in str(e), "the message names the setting: %s" % e)
    # no float among the partial results: fine at any setting
    eq(q(c, "SELECT n, count(*) FROM rt_users GROUP BY n ORDER BY n"),
       [(0, 100), (1, 100), (2, 100)], "integer partials with extra_float_digits 0")
    q(c, "RESET extra_float_digits")
    eq(q(c, sql), want, "after RESET")
    c.close()


@test
def user_defined_aggregate_is_not_concatenated():
    users()
    c = proxy()
    q(c, "/* pgshard: all */ DROP AGGREGATE IF EXISTS rt_sum(int)")
    q(c, "/* pgshard: all */ CREATE AGGREGATE rt_sum(int) (sfunc = int4pl, stype = int)")
    q(c, "/* pgshard: all */ CREATE OR REPLACE FUNCTION rt_twice(int) RETURNS int "
         "LANGUAGE sql AS 'SELECT $1 * 2'")
    # one row per shard would be a wrong answer: the shards refuse it instead
    try:
        rows = q(c, "SELECT rt_sum(n) FROM rt_users")
        raise tp.Failure("a user-defined aggregate across shards answered %r" % rows)
    except psycopg2.Error as e:
        eq(e.pgcode, "0A000", "SQLSTATE of a user-defined aggregate across shards")
        check("user-defined" in str(e), "the message says why: %s" % e)
    # a user-defined scalar function is fine
    rows = q(c, "SELECT id, rt_twice(n) FROM rt_users WHERE id <= 3 ORDER BY id")
    eq(rows, [(1, 2), (2, 4), (3, 6)], "a user-defined function across shards")
    q(c, "/* pgshard: all */ DROP AGGREGATE rt_sum(int)")
    q(c, "/* pgshard: all */ DROP FUNCTION rt_twice(int)")
    c.close()


def pgshard_pid():
    conf = os.environ["PGSHARD_CONFIG"]
    out = subprocess.run(["pgrep", "-f", "pgshard.*" + conf], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    check(len(pids) == 1, "one pgshard process runs with %s: %r" % (conf, pids))
    return pids[0]


def reload_with(conf, text):
    with open(conf, "w") as f:
        f.write(text)
    os.kill(pgshard_pid(), signal.SIGHUP)


@test
def merge_memory_cap_is_54000():
    users()
    conf = os.environ["PGSHARD_CONFIG"]
    with open(conf) as f:
        orig = f.read()
    check("merge_memory" not in orig, "the cluster's config leaves merge_memory at its default")
    capped = orig.replace("[proxy]\n", "[proxy]\nmerge_memory = 16kB\n", 1)
    check(capped != orig, "the config has a [proxy] section")
    sql = "SELECT id, count(*) FROM rt_users GROUP BY id ORDER BY id LIMIT 3"
    try:
        reload_with(conf, capped)
        code = None
        for _ in range(50):
            c = proxy()
            try:
                q(c, sql)
            except psycopg2.Error as e:
                code = e.pgcode
                msg = str(e)
            c.close()
            if code is not None:
                break
            time.sleep(0.1)
        eq(code, "54000", "SQLSTATE over merge_memory")
        check("merge_memory" in msg, "the message names the setting: %s" % msg)
        # the same statement over few groups fits
        c = proxy()
        eq(q(c, "SELECT n, count(*) FROM rt_users GROUP BY n ORDER BY n LIMIT 2"),
           [(0, N_USERS // 7), (1, (N_USERS + 6) // 7)], "few groups under the cap")
        c.close()
    finally:
        reload_with(conf, orig)
    for _ in range(50):
        c = proxy()
        try:
            rows = q(c, sql)
            break
        except psycopg2.Error:
            time.sleep(0.1)
        finally:
            c.close()
    eq(rows, [(1, 1), (2, 1), (3, 1)], "after the cap is lifted")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def shard(port):
    c = psycopg2.connect(host="127.0.0.1", port=port, user=os.environ.get("PGUSER", "app"),
                         password=os.environ.get("PGPASSWORD"), dbname="app", connect_timeout=10)
    c.autocommit = True
    return c


@test
def slow_client_is_not_buffered():
    users()
    pid = pgshard_pid()
    # about 120 MB of rows (3000 of 40 kB, 40 MB per shard: more than the sockets hold),
    # merged in order from every shard
    sql = "SELECT id, repeat('x', 40000) FROM rt_users ORDER BY id"
    r = tp.connected()
    before = rss_kb(pid)
    r.send(R.query(sql))
    time.sleep(2)  # not reading: pgshard must pause the shards, not buffer their rows
    grown = rss_kb(pid) - before
    writing = 0
    for port in os.environ["SHARD_PORTS"].split():
        c = shard(int(port))
        writing += q(c, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        "AND query LIKE 'SELECT id, repeat(%%'")[0][0]
        c.close()
    check(writing > 0, "the shards finished sending while the client read nothing")
    check(grown < 16 * 1024, "pgshard grew by %d kB while its client did not read" % grown)
    got = r.until_ready()
    ids = [int(tp.data_row(b)[0]) for k, b in got if k == "D"]
    eq(ids, list(range(1, N_USERS + 1)), "every row, in order")
    r.close()


if __name__ == "__main__":
    sys.exit(tp.run(set(sys.argv[1:])))
