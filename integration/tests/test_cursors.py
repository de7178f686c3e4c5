#!/usr/bin/python3
"""Cursors over several shards, against real shards: a SQL cursor whose query reads rows of
every shard is fetched in parts (psycopg2's named cursors, as SQLAlchemy's yield_per and
stream_results use them; psql's FETCH_COUNT; FETCH/MOVE by hand), sorted, concatenated and
aggregated, with LIMIT/OFFSET, WITH HOLD, other statements between the fetches, and each part
is what the same SELECT without a cursor answers at that place. Fetches a cursor over several
shards cannot take (backward, absolute) are refused with 0A000.

Each test runs its own pgshard (robustlib.Proxy) on the cluster's config with the table
cur_items (k key, map users), made through pgshard; rows are checked against the plain SELECT
through the same pgshard (whose merges test_gather.py checks against one PostgreSQL) and
against the shards themselves.

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_cursors.py [TEST ...]
"""

import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402

import robustlib as rl  # noqa: E402
from robustlib import Proxy, check, eq  # noqa: E402
from test_protocol import Raw, parse_fields  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("CURSOR_TEST_TIMEOUT", "120"))
TESTS = []

TABLES = rl.TABLE_SECTIONS + """
[table.cur_items]
key = k
map = users
"""

N_KEYS, PER_KEY = 30, 7  # 210 rows over every shard


def test(fn):
    TESTS.append(fn)
    return fn


class Setup:
    """A pgshard of its own with cur_items filled through it; the table is dropped at exit."""

    def __init__(self, name):
        self.proxy = Proxy(name, extra_ini=TABLES)

    def __enter__(self):
        self.proxy.__enter__()
        c = self.conn()
        cur = c.cursor()
        cur.execute("drop table if exists cur_items")
        cur.execute("create table cur_items (k bigint not null, id int not null, name text, "
                    "amount numeric, primary key (k, id))")
        rows = [(k, i, "n%03d" % ((k * 37 + i * 11) % 101), k * 10 + i)
                for k in range(1, N_KEYS + 1) for i in range(1, PER_KEY + 1)]
        values = ",".join(cur.mogrify("(%s,%s,%s,%s)", r).decode() for r in rows)
        cur.execute("insert into cur_items (k, id, name, amount) values " + values)
        eq(cur.statusmessage, "INSERT 0 %d" % len(rows), "rows inserted")
        counts = [r[0][0] for r in rl.on_shards("select count(*) from cur_items")]
        check(sum(1 for n in counts if n > 0) >= 2, "rows on several shards: %s" % counts)
        c.close()
        return self

    def conn(self, autocommit=True):
        c = rl.pg(self.proxy.port)
        c.autocommit = autocommit
        return c

    def __exit__(self, *a):
        try:
            c = self.conn()
            c.cursor().execute("drop table if exists cur_items")
            c.close()
        finally:
            self.proxy.__exit__(*a)
        return False


ALL_CURSORS = "/* pgshard: all */ select count(*) from pg_cursors"


def cursors_on_links(conn):
    """The SQL cursors open on the server connections this session's statement gets, summed
    over every shard (pg_cursors shows a connection's own)."""
    cur = conn.cursor()
    cur.execute(ALL_CURSORS)
    n = cur.fetchone()[0]
    cur.close()
    return n


def plain(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    rows = cur.fetchall()
    cur.close()
    return rows


def fetch_in_parts(conn, sql, sizes):
    """DECLARE c for sql, then FETCH n for each n of sizes (None: ALL) while rows come;
    returns every part."""
    cur = conn.cursor()
    cur.execute("declare c cursor for " + sql)
    parts = []
    for n in sizes:
        cur.execute("fetch %s from c" % ("all" if n is None else n))
        parts.append(cur.fetchall())
        eq(cur.statusmessage, "FETCH %d" % len(parts[-1]), "FETCH tag")
    cur.execute("close c")
    return parts


SORTED = "select k, id, name from cur_items order by name, k desc, id"


@test
def a_named_cursor_reads_every_shard_in_order_in_parts():
    with Setup("cur_named") as s:
        c = s.conn(autocommit=False)
        want = plain(c, SORTED)
        eq(len(want), N_KEYS * PER_KEY, "rows")
        for itersize in (1, 7, 64, 1000):
            cur = c.cursor(name="yield_per_%d" % itersize)  # DECLARE, then FETCH FORWARD n
            cur.itersize = itersize
            cur.execute(SORTED)
            got = list(cur)
            cur.close()
            eq(got, want, "named cursor, itersize %d" % itersize)
        cur = c.cursor(name="many")
        cur.execute(SORTED)
        got = []
        for n in (5, 1, 33, 0, 17, 500, 3):
            part = cur.fetchmany(n) if n else []
            got += part
        eq(got, want, "fetchmany in parts of several sizes")
        cur.close()
        c.commit()
        c.close()
        s.proxy.healthy()


@test
def other_statements_run_between_the_fetches():
    with Setup("cur_between") as s:
        c = s.conn(autocommit=False)
        want = plain(c, SORTED)
        cur = c.cursor(name="stream")
        cur.itersize = 10
        cur.execute(SORTED)
        other = c.cursor()
        got = []
        while True:
            part = cur.fetchmany(9)
            if not part:
                break
            got += part
            k = part[0][0]
            other.execute("update cur_items set amount = amount + 1 where k = %s", (k,))
            other.execute("select count(*), sum(amount) from cur_items")
            eq(other.fetchone()[0], N_KEYS * PER_KEY, "count between fetches")
            other.execute("select name from cur_items where k = %s and id = 1", (k,))
            check(other.fetchone() is not None, "a one-shard read between fetches")
        eq(got, want, "the cursor's rows, other statements in between")
        cur.close()
        c.rollback()
        c.close()
        s.proxy.healthy()


@test
def limit_offset_and_move_keep_their_place():
    with Setup("cur_limit") as s:
        c = s.conn(autocommit=False)
        sql = SORTED + " limit 23 offset 6"
        want = plain(c, sql)
        eq(len(want), 23, "rows of the plain SELECT")
        parts = fetch_in_parts(c, sql, [1, 4, 0 or 2, 9, None, 3])
        eq([r for p in parts for r in p], want, "parts")
        eq([len(p) for p in parts], [1, 4, 2, 9, 7, 0], "part sizes")
        cur = c.cursor()
        cur.execute("declare m cursor for " + sql)
        cur.execute("move 5 from m")
        eq(cur.statusmessage, "MOVE 5", "MOVE tag")
        cur.execute("fetch 3 from m")
        eq(cur.fetchall(), want[5:8], "FETCH after MOVE")
        cur.execute("move all in m")
        eq(cur.statusmessage, "MOVE 15", "MOVE ALL tag")
        cur.execute("fetch next from m")
        eq(cur.fetchall(), [], "past the end")
        eq([d.name for d in cur.description], ["k", "id", "name"], "columns past the end")
        c.rollback()
        c.close()
        s.proxy.healthy()


@test
def an_unordered_cursor_gives_every_row_once():
    with Setup("cur_concat") as s:
        c = s.conn(autocommit=False)
        sql = "select k, id, amount from cur_items where id <> 3"
        want = sorted(plain(c, sql))
        parts = fetch_in_parts(c, sql, [4] * 60 + [None])
        got = [r for p in parts for r in p]
        eq(sorted(got), want, "every row once")
        eq(len(set(got)), len(got), "no row twice")
        check(all(len(p) == 4 for p in parts[:len(want) // 4]), "full parts while rows last")
        # an order by a column not in the select list: the shards' hidden sort column is cut
        sql = "select id, name from cur_items order by amount desc"
        want = plain(c, sql)
        parts = fetch_in_parts(c, sql, [7] * 40)
        eq([r for p in parts for r in p], want, "ordered by a column not selected")
        c.rollback()
        c.close()
        s.proxy.healthy()


@test
def aggregates_are_fetched_in_parts():
    with Setup("cur_agg") as s:
        c = s.conn(autocommit=False)
        for sql in ("select k % 7 as g, count(*), sum(amount), min(name) from cur_items "
                    "group by 1 order by 1",
                    "select count(*) from cur_items",
                    "select distinct name from cur_items order by name desc limit 12"):
            want = plain(c, sql)
            parts = fetch_in_parts(c, sql, [2, 1, 3, None])
            eq([r for p in parts for r in p], want, sql)
        c.rollback()
        c.close()
        s.proxy.healthy()


@test
def a_cursor_with_hold_outlives_its_transaction():
    with Setup("cur_hold") as s:
        c = s.conn()
        want = plain(c, SORTED)
        cur = c.cursor()
        cur.execute("begin")
        cur.execute("declare h cursor with hold for " + SORTED)
        cur.execute("fetch 10 from h")
        got = cur.fetchall()
        cur.execute("commit")
        for _ in range(30):
            cur.execute("fetch 8 from h")
            got += cur.fetchall()
            cur.execute("select count(*) from cur_items where k = 4")  # autocommit, between
        eq(got, want, "rows of a WITH HOLD cursor, fetched after its transaction")
        cur.execute("close h")
        cur.execute("select count(*) from cur_items")
        eq(cur.fetchone()[0], N_KEYS * PER_KEY, "the session goes on")
        # psycopg2's own WITH HOLD cursor
        h = c.cursor(name="held", withhold=True)
        h.itersize = 13
        h.execute(SORTED)
        eq(list(h), want, "psycopg2 named cursor withhold=True")
        h.close()
        c.close()
        s.proxy.healthy()


@test
def a_client_gone_with_a_cursor_with_hold_leaves_it_to_nobody():
    """The server connections holding a WITH HOLD cursor of a client that went away are not
    given to other clients: the cursor is gone with them."""
    with Setup("cur_gone") as s:
        for round_ in range(3):
            c = s.conn()
            cur = c.cursor()
            cur.execute("declare h cursor with hold for " + SORTED)
            cur.execute("fetch 3 from h")
            eq(len(cur.fetchall()), 3, "rows of round %d" % round_)
            c.close()  # without CLOSE
        c = s.conn()
        eq(cursors_on_links(c), 0, "cursors on the server connections the next client gets")
        c.close()
        s.proxy.healthy()


@test
def fetches_a_cursor_over_several_shards_cannot_take_are_refused():
    with Setup("cur_refuse") as s:
        c = s.conn(autocommit=False)
        cur = c.cursor()
        cur.execute("declare c scroll cursor for " + SORTED)
        cur.execute("fetch 2 from c")
        for sql in ("fetch prior from c", "fetch absolute 1 from c", "fetch backward 1 from c",
                    "fetch relative 0 from c", "move last in c", "fetch -1 from c"):
            try:
                cur.execute(sql)
                raise rl.Failure("%s was not refused" % sql)
            except psycopg2.Error as e:
                eq(e.pgcode, "0A000", sql)
                check("forward only" in str(e), "the refusal says what works: %s" % e)
            c.rollback()
            cur.execute("declare c cursor for " + SORTED)
        # a cursor over one shard takes any direction, as PostgreSQL does
        cur.execute("declare one scroll cursor for select id from cur_items where k = 5 "
                    "order by id")
        cur.execute("fetch last from one")
        eq(cur.fetchall(), [(PER_KEY,)], "FETCH LAST on one shard")
        cur.execute("fetch prior from one")
        eq(cur.fetchall(), [(PER_KEY - 1,)], "FETCH PRIOR on one shard")
        c.rollback()
        c.close()
        s.proxy.healthy()


@test
def close_all_closes_the_cursors_on_every_shard():
    with Setup("cur_close") as s:
        c = s.conn(autocommit=False)
        cur = c.cursor()
        for _ in range(2):
            cur.execute("declare a cursor for " + SORTED)
            cur.execute("declare b cursor for select id from cur_items where k = 2")
            cur.execute("fetch 1 from a")
            cur.execute("close all")
            eq(cur.statusmessage, "CLOSE CURSOR ALL", "tag")
        cur.execute("declare a cursor for " + SORTED)
        cur.execute("close a")
        eq(cur.statusmessage, "CLOSE CURSOR", "tag")
        cur.execute("declare a cursor for " + SORTED)  # closed on every shard: no 42P03
        cur.execute("declare b cursor for select id from cur_items where k = 2")
        eq(cursors_on_links(c), len(rl.SHARD_PORTS) + 1, "a on every shard, b on one")
        cur.execute("close all")
        eq(cursors_on_links(c), 0, "after CLOSE ALL")
        c.rollback()
        c.close()
        s.proxy.healthy()


@test
def psql_fetch_count_reads_in_parts():
    with Setup("cur_psql") as s:
        env = dict(os.environ, PGHOST=rl.HOST, PGPORT=str(s.proxy.port))
        sql = SORTED + " limit 50"
        outs = []
        for extra in ([], ["-v", "FETCH_COUNT=6"]):
            r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"] + extra +
                               ["-c", sql], env=env, capture_output=True, text=True,
                               timeout=60)
            eq(r.returncode, 0, "psql %s: %s" % (extra, r.stderr))
            outs.append(r.stdout)
        eq(outs[1], outs[0], "FETCH_COUNT=6 against all at once")
        eq(len(outs[0].splitlines()), 50, "lines")
        s.proxy.healthy()


def raw_values(body):
    """A DataRow's values as bytes (None for NULL), whatever their format."""
    (n,) = struct.unpack("!h", body[:2])
    pos, out = 2, []
    for _ in range(n):
        (ln,) = struct.unpack("!i", body[pos:pos + 4])
        pos += 4
        out.append(None if ln < 0 else body[pos:pos + ln])
        pos += max(ln, 0)
    return tuple(out)


def portal_in_parts(r, sql, values, size, formats=(), sync_each=False, between=None):
    """Parse/Bind/Describe portal P of sql, then Execute(P, size) until it completes (Flush
    after each, as pg-cursor does, or Sync after each, as JDBC's fetch size does). Returns
    (the rows as byte tuples, the number of Executes, the last tag)."""
    end = Raw.SYNC if sync_each else Raw.FLUSH
    r.send(Raw.parse("", sql) + Raw.bind("P", "", values, formats) + Raw.describe(b"P", "P"))
    rows, executes, tag = [], 0, None
    while tag is None:
        r.send(Raw.execute("P", size) + end)
        executes += 1
        while True:
            kind, body = r.read()
            if kind == "E":
                raise rl.Failure("error: %r" % parse_fields(body))
            if kind == "D":
                rows.append(raw_values(body))
            elif kind == "C":
                tag = body[:-1].decode()
            if kind == "Z" or (not sync_each and kind in "sC"):
                break
        if between is not None and tag is None:
            between(r)
    return rows, executes, tag


def plain_raw(r, sql, values, formats=()):
    r.send(Raw.parse("", sql) + Raw.bind("", "", values, formats) + Raw.execute() + Raw.SYNC)
    rows = []
    for kind, body in r.until_ready():
        if kind == "E":
            raise rl.Failure("error: %r" % parse_fields(body))
        if kind == "D":
            rows.append(raw_values(body))
    return rows


@test
def portals_are_read_in_parts_outside_a_transaction():
    """pg-cursor: Execute with a row limit and Flush, no Sync until it is done."""
    with Setup("cur_portal") as s:
        r = rl.login(s.proxy.port)
        sql = "select k, id, name from cur_items where id > $1 order by name, k desc, id"
        want = plain_raw(r, sql, ["1"])
        for size in (1, 5, 6, 500):
            rows, executes, tag = portal_in_parts(r, sql, ["1"], size)
            eq(rows, want, "rows in parts of %d" % size)
            eq(executes, len(want) // size + 1, "Executes for parts of %d" % size)
            eq(tag, "SELECT %d" % (len(want) % size), "the last Execute's tag")
            r.send(Raw.close_(b"P", "P") + Raw.SYNC)
            got = [k for k, _ in r.until_ready()]
            eq(got, ["3", "Z"], "Close and Sync")
        rows, tags, err, status = r.simple(ALL_CURSORS)
        eq((rows, err), ([["0"]], None), "cursors left after the Sync (this pgshard's one "
           "client gets the same server connections back)")
        # concatenated and aggregated, in binary
        for sql in ("select k, amount from cur_items where id = $1",
                    "select k % 4, count(*), sum(amount) from cur_items where id > $1 "
                    "group by 1 order by 1"):
            want = sorted(plain_raw(r, sql, ["2"], (1,)))
            rows, _, _ = portal_in_parts(r, sql, ["2"], 3, (1,))
            r.send(Raw.SYNC)
            r.until_ready()
            eq(sorted(rows), want, "binary rows in parts: " + sql)
        r.close()
        s.proxy.healthy()


@test
def portals_are_read_in_parts_in_a_transaction():
    """JDBC's fetch size: in a transaction, Execute with a row limit and a Sync after each,
    other statements in between."""
    with Setup("cur_portal_tx") as s:
        r = rl.login(s.proxy.port)
        sql = "select k, id, amount from cur_items order by amount desc"
        want = plain_raw(r, sql, [])

        def between(r):
            rows, tags, err, status = r.simple("select count(*) from cur_items where k = 3")
            eq((rows, err, status), ([[str(PER_KEY)]], None, "T"), "a query between Executes")

        eq(r.simple("begin")[3], "T", "BEGIN")
        rows, executes, tag = portal_in_parts(r, sql, [], 7, sync_each=True, between=between)
        eq(rows, want, "rows")
        eq(tag, "SELECT 0", "an exact multiple of the size ends with an empty Execute")
        eq(executes, len(want) // 7 + 1, "Executes")
        eq(r.simple("commit")[1:], (["COMMIT"], None, "I"), "COMMIT")
        # the portal went with its transaction
        r.send(Raw.execute("P", 5) + Raw.SYNC)
        got = r.until_ready()
        check(got[0][0] == "E" and parse_fields(got[0][1]).get("C") == "34000",
              "Execute of a portal of an ended transaction: %r" % got[:1])
        r.close()
        s.proxy.healthy()


def execute_part(r, portal, size):
    """Execute(portal, size) + Sync: its rows, and whether it was suspended."""
    r.send(Raw.execute(portal, size) + Raw.SYNC)
    rows, suspended = [], False
    for kind, body in r.until_ready():
        if kind == "E":
            raise rl.Failure("error: %r" % parse_fields(body))
        if kind == "D":
            rows.append(raw_values(body))
        suspended |= kind == "s"
    return rows, suspended


@test
def portals_read_in_parts_interleave():
    """JDBC's nested result sets: two named portals over several shards read in parts in
    turns, each where it stopped."""
    with Setup("cur_nested") as s:
        r = rl.login(s.proxy.port)
        q1 = "select k, id from cur_items order by k, id"
        q2 = "select name, k from cur_items where id = $1 order by name, k"
        want1, want2 = plain_raw(r, q1, []), plain_raw(r, q2, ["4"])
        eq(r.simple("begin")[3], "T", "BEGIN")
        r.send(Raw.parse("", q1) + Raw.bind("C_1", "") + Raw.parse("", q2) +
               Raw.bind("C_2", "", ["4"]) + Raw.SYNC)
        eq([k for k, _ in r.until_ready()], ["1", "2", "1", "2", "Z"], "Parse/Bind of both")
        got1, got2, more1, more2 = [], [], True, True
        while more1 or more2:
            if more1:
                rows, more1 = execute_part(r, "C_1", 17)
                got1 += rows
            if more2:
                rows, more2 = execute_part(r, "C_2", 4)
                got2 += rows
            if more1 and more2:
                eq(r.simple("select count(*) from cur_items where k = 1")[0], [[str(PER_KEY)]],
                   "a query between")
        eq(got1, want1, "rows of C_1")
        eq(got2, want2, "rows of C_2")
        eq(r.simple("commit")[1:], (["COMMIT"], None, "I"), "COMMIT")
        r.close()
        s.proxy.healthy()


@test
def a_cursor_over_several_shards_over_the_extended_protocol():
    """psycopg 3's server-side cursors: DECLARE with parameters, FETCH and CLOSE, all
    Parse/Bind/Execute."""
    with Setup("cur_ext") as s:
        r = rl.login(s.proxy.port)
        sql = "select k, id, name from cur_items where k > $1 order by name, k desc, id"
        want = plain_raw(r, sql, ["3"])
        eq(r.simple("begin")[3], "T", "BEGIN")
        eq(plain_raw(r, "declare c cursor for " + sql, ["3"]), [], "DECLARE")
        got = []
        for _ in range(len(want) // 10 + 2):
            got += plain_raw(r, "fetch 10 from c", [])
        eq(got, want, "FETCH 10 over the extended protocol")
        r.send(Raw.parse("", "fetch prior from c") + Raw.bind("", "") + Raw.execute() +
               Raw.SYNC)
        err = [parse_fields(b) for k, b in r.until_ready() if k == "E"]
        eq([e.get("C") for e in err], ["0A000"], "FETCH PRIOR refused")
        eq(r.simple("rollback")[1:], (["ROLLBACK"], None, "I"), "ROLLBACK")
        r.close()
        s.proxy.healthy()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=3)
