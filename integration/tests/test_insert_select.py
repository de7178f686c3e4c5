#!/usr/bin/python3
"""INSERT INTO sharded SELECT ..., against real shards: where the rows of the SELECT are not known
to belong to the shards they are read on, pgshard runs the SELECT (on one shard, several, or the
default shard), and inserts each row on the shard its key maps to, in the statement's
transaction: every row lands where a direct INSERT would put it (checked on each shard), with
PostgreSQL's assignment casts, ON CONFLICT and count; any error leaves nothing inserted; over the
simple and the extended protocol. What it cannot run that way is refused with 0A000.

Uses the cluster's pgshard (PGPORT) and the tables integration/cluster.sh configures (is_users,
is_orders and is_src on map users, is_names on the text map names, is_events on the range map
events, is_ref a reference table; is_plain is not in the config), made directly on every shard;
a pgshard of its own (robustlib.Proxy) where a setting must change.

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_insert_select.py [TEST ...]
"""

import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402
from robustlib import Failure, Proxy, check, eq, login  # noqa: E402
from test_protocol import parse_fields  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("INSEL_TEST_TIMEOUT", "180"))
TESTS = []

SCHEMA = [
    "drop table if exists is_users, is_orders, is_src, is_names, is_events, is_ref, is_plain",
    "create table is_users (id bigint primary key, name text, n numeric, d date, hits int "
    "default 0)",
    "create table is_orders (user_id bigint not null, id bigint, note text)",
    "create table is_src (id bigint, name text, n numeric, c char(4))",
    "create table is_names (name text primary key, v int)",
    "create table is_events (id bigint, name text)",
    "create table is_ref (id bigint, name text)",
    "create table is_plain (id bigint, name text)",
]


def test(fn):
    TESTS.append(fn)
    return fn


def setup():
    for sql in SCHEMA:
        rl.as_app_on_shards(sql)


def run_on(shard, sql):
    c = rl.su(shard)
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def where(table, key, cols):
    """{key: (shard, row)} of table over every shard; a key on two shards fails."""
    out = {}
    for shard, rows in enumerate(rl.on_shards("select %s, %s from %s" % (key, cols, table))):
        for r in rows:
            if r[0] in out:
                raise Failure("%s key %r is on shards %d and %d" % (table, r[0], out[r[0]][0], shard))
            out[r[0]] = (shard, tuple(r[1:]))
    return out


def placed_right(rows, table):
    """Each row on the shard a direct INSERT through pgshard would put it (pgshard --route)."""
    for key, (shard, _) in rows.items():
        eq(shard, rl.shard_of_key(key), "shard of %s row %r" % (table, key))


def keys_on(shard, n, start=1):
    out, k = [], start
    while len(out) < n:
        if rl.shard_of_key(k) == shard:
            out.append(k)
        k += 1
    return out


def fails(cur, sql, code, args=None):
    try:
        cur.execute(sql, args)
    except rl.psycopg2.Error as e:
        eq(e.pgcode, code, "error of %s (%s)" % (sql, e.pgerror))
        return e
    raise Failure("went through: %s" % sql)


def default_shard():
    """The cluster config's default_shard."""
    with open(os.path.join(os.environ["PGSHARD_DIR"], "pgshard.ini")) as f:
        for line in f:
            m = re.match(r"\s*default_shard\s*=\s*(\d+)", line)
            if m:
                return int(m.group(1))
    return 0


def no_prepared():
    eq([r for r in rl.on_shards("select gid from pg_prepared_xacts where gid like 'pgshard:%%'")
        if r], [], "prepared transactions left")


@test
def rows_of_one_shard_go_to_the_shards_of_their_new_keys():
    setup()
    src = keys_on(0, 30)
    for k in src:
        run_on(0, "insert into is_src values (%d, 'u%d', %d.5)" % (k, k, k))
    c = rl.pg()
    cur = c.cursor()
    cur.execute("insert into is_users (id, name) select id + 1000, name from is_src "
                "where id = any(%s)", (src,))
    eq(cur.statusmessage, "INSERT 0 30", "tag")
    rows = where("is_users", "id", "name")
    eq(sorted(rows), sorted(k + 1000 for k in src), "keys inserted")
    placed_right(rows, "is_users")
    check(len({s for s, _ in rows.values()}) == 3, "the rows of one shard went to one shard only")
    eq({k: r[1][0] for k, r in rows.items()}, {k + 1000: "u%d" % k for k in src}, "names")
    cur.execute("select count(*) from is_users")
    eq(cur.fetchone()[0], 30, "read back through pgshard")
    no_prepared()
    c.close()


@test
def rows_of_every_shard_and_of_other_tables_land_where_a_direct_insert_puts_them():
    setup()
    c = rl.pg()
    cur = c.cursor()
    cur.execute("insert into is_src (id, name) select g, 's' || g from generate_series(1, 60) g")
    cur.execute("insert into is_ref values (1, 'r1'), (2, 'r2'), (3, 'r3')")
    run_on(0, "insert into is_plain select g, 'p' || g from generate_series(1, 5) g")
    cur.execute("insert into is_events (id, name) select g, 'e' || g from generate_series(995, 1004) g")
    cur.execute("insert into is_users (id, name) select id * 3, name from is_src")
    eq(cur.rowcount, 60, "rows from every shard")
    cur.execute("insert into is_users (id, name) select id + 500, name from is_ref")
    eq(cur.rowcount, 3, "rows from a reference table")
    cur.execute("insert into is_users (id, name) select id + 600, name from is_plain")
    eq(cur.rowcount, 5, "rows from a table not in the config (the default shard)")
    cur.execute("insert into is_users (id, name) select id + 700, name from is_events")
    eq(cur.rowcount, 10, "rows from a table of another map")
    rows = where("is_users", "id", "name")
    want = {k * 3: "s%d" % k for k in range(1, 61)}
    want.update({k + 500: "r%d" % k for k in (1, 2, 3)})
    want.update({k + 600: "p%d" % k for k in range(1, 6)})
    want.update({k + 700: "e%d" % k for k in range(995, 1005)})
    eq({k: r[1][0] for k, r in rows.items()}, want, "every row once")
    placed_right(rows, "is_users")
    # the pushdown is unchanged: a co-located key stays where it is read
    cur.execute("insert into is_orders (user_id, id) select id, id from is_users where id < 10")
    eq(cur.rowcount, 3, "co-located INSERT ... SELECT")
    for shard, rows in enumerate(rl.on_shards("select user_id from is_orders")):
        for (k,) in rows:
            eq(shard, rl.shard_of_key(k), "is_orders row %d" % k)
    no_prepared()
    c.close()


@test
def values_are_cast_as_postgresql_casts_them():
    """The same statements on one PostgreSQL (a shard's own tables) give the same rows."""
    setup()
    stmts = [
        "insert into %(u)s (id, name, n, d) select 5.7, 'five', 1, '2026-01-02'",
        "insert into %(u)s (id, name, n, d) select n, 'from ' || id, id, null from %(s)s",
        "insert into %(u)s (name, id) select c, (id + 0.4)::numeric from %(s)s where id = 2",
        "insert into %(n)s (name, v) select c, id from %(s)s",
        "insert into %(n)s (name, v) select 'lit', 7",
    ]
    seed = ("insert into %(s)s (id, name, n, c) values (1, 'a', 10.5, 'ab'), (2, 'b', -3.2, 'x'),"
            " (3, 'c', 99.49, 'cd  ')")
    c = rl.pg()
    cur = c.cursor()
    cur.execute(seed % {"s": "is_src"})
    for s in stmts:
        cur.execute(s % {"u": "is_users", "s": "is_src", "n": "is_names"})
    one = rl.su(0)
    ocur = one.cursor()
    ocur.execute("create temp table o_users (like is_users including all)")
    ocur.execute("create temp table o_src (like is_src including all)")
    ocur.execute("create temp table o_names (like is_names including all)")
    ocur.execute(seed % {"s": "o_src"})
    for s in stmts:
        ocur.execute(s % {"u": "o_users", "s": "o_src", "n": "o_names"})
    for mine, theirs, key in (("is_users", "o_users", "id"), ("is_names", "o_names", "name")):
        cur.execute("select * from %s order by %s" % (mine, key))
        got = cur.fetchall()
        ocur.execute("select * from %s order by %s" % (theirs, key))
        eq(got, ocur.fetchall(), "%s as one PostgreSQL has it" % mine)
    one.close()
    placed_right(where("is_users", "id", "name"), "is_users")
    for shard, rows in enumerate(rl.on_shards("select name from is_names")):
        for (name,) in rows:
            got = rl.subprocess.run([rl.pgshard_bin(), "-c", os.path.join(rl.PGSHARD_DIR,
                                     "pgshard.ini"), "--route",
                                     "select * from is_names where name = '%s'" % name],
                                    capture_output=True, text=True, timeout=30).stdout
            check("shard %d" % shard in got, "text key %r on shard %d: %s" % (name, shard, got))
    c.close()


@test
def on_conflict_counts_as_postgresql_counts():
    setup()
    c = rl.pg()
    cur = c.cursor()
    cur.execute("insert into is_users (id, name) values (2, 'old'), (4, 'old')")
    cur.execute("insert into is_src (id, name) select g, 'n' || g from generate_series(1, 5) g")
    cur.execute("insert into is_users (id, name) select id, name from is_src "
                "on conflict do nothing")
    eq(cur.statusmessage, "INSERT 0 3", "DO NOTHING counts only the rows inserted")
    cur.execute("insert into is_users (id, name) select id, name from is_src on conflict (id) "
                "do update set hits = is_users.hits + 1, name = excluded.name "
                "where is_users.id <> 5")
    eq(cur.statusmessage, "INSERT 0 4", "DO UPDATE counts the rows updated")
    rows = where("is_users", "id", "name, hits")
    eq({k: r[1] for k, r in rows.items()},
       {1: ("n1", 1), 2: ("n2", 1), 3: ("n3", 1), 4: ("n4", 1), 5: ("n5", 0)}, "rows")
    placed_right(rows, "is_users")
    # two rows of one key in one statement: PostgreSQL's own error
    fails(cur, "insert into is_users (id, name) select 1, 'x' from generate_series(1, 2) "
               "on conflict (id) do update set name = excluded.name", "21000")
    c.close()


@test
def an_error_anywhere_leaves_nothing_inserted():
    setup()
    a, b = keys_on(0, 1)[0], keys_on(2, 1)[0]
    c = rl.pg()
    cur = c.cursor()
    cur.execute("insert into is_users (id, name) values (%s, 'taken')", (b,))
    cur.execute("insert into is_src (id, name) select g, 'n' from generate_series(1, 40) g")
    sql = ("insert into is_users (id, name) select case when id = 1 then %d else id + 100 end, "
           "name from is_src" % b)
    e = fails(cur, sql, "23505")
    check("is_users_pkey" in e.pgerror, "the shard's error as it sent it: %s" % e.pgerror)
    eq(sorted(where("is_users", "id", "name")), [b], "rows after the failed statement")
    no_prepared()
    fails(cur, "insert into is_users (id, name, n) select id + 100, name, 'abc' from is_src",
          "22P02")
    eq(sorted(where("is_users", "id", "name")), [b], "rows after a bad value")
    # a NULL key is refused as a direct INSERT of one is
    e = fails(cur, "insert into is_users (id, name) select nullif(id, 3) + 100, name from is_src",
              "0A000")
    fails(cur, "insert into is_users (id, name) values (null, 'x')", "0A000")
    eq(sorted(where("is_users", "id", "name")), [b], "rows after a NULL key")
    # the session goes on as usual
    cur.execute("insert into is_users (id, name) select %d, 'ok'" % a)
    eq(cur.rowcount, 1, "the next statement")
    c.autocommit = False
    cur.execute("insert into is_users (id, name) select id + 200, name from is_src")
    cur.execute("select count(*) from is_users")
    eq(cur.fetchone()[0], 42, "the rows inside the transaction")
    c.rollback()
    eq(sorted(where("is_users", "id", "name")), sorted([a, b]), "after ROLLBACK")
    fails(cur, sql, "23505")
    fails(cur, "select 1", "25P02")
    c.rollback()
    cur.execute("insert into is_users (id, name) select id + 300, name from is_src")
    c.commit()
    eq(len(where("is_users", "id", "name")), 42, "after COMMIT")
    no_prepared()
    c.close()


@test
def over_the_extended_protocol_with_parameters():
    setup()
    c = rl.pg()
    cur = c.cursor()
    cur.execute("insert into is_src (id, name, n) select g, 'n' || g, g from generate_series(1, 9) g")
    c.close()
    r = login(rl.MAIN_PORT)
    sql = ("insert into is_users (id, name, d) select id + $1::int8, $2 || name, $3 from is_src "
           "where id <= $4")
    r.send(r.parse("", sql) + r.bind("", "", ["100", "x-", "2026-03-04", "6"])
           + r.describe(b"P", "") + r.execute() + r.SYNC)
    got = r.until_ready()
    eq([k for k, _ in got], ["1", "2", "n", "C", "Z"], "messages")
    eq(got[3][1], b"INSERT 0 6\0", "tag")
    # typed parameters; a statement kept and bound twice
    r.send(r.parse("s1", "insert into is_users (id, name) select $1, name from is_src "
                   "where id = $2", [20, 20])
           + r.bind("", "s1", ["300", "7"]) + r.execute()
           + r.bind("", "s1", ["301", "8"]) + r.execute() + r.SYNC)
    eq([k for k, _ in r.until_ready()], ["1", "2", "C", "2", "C", "Z"], "two executions")
    r.send(r.parse("", "insert into is_users (id, name) select $1, name from is_src")
           + r.bind("", "", ["5"]) + r.execute() + r.SYNC)
    got = r.until_ready()
    eq([k for k, _ in got], ["1", "2", "E", "Z"], "a key that repeats")
    eq(parse_fields(got[2][1]).get("C"), "23505", "its error")
    r.close()
    rows = where("is_users", "id", "name, d")
    want = {k + 100: ("x-n%d" % k, "2026-03-04") for k in range(1, 7)}
    want.update({300: ("n7", None), 301: ("n8", None)})
    eq({k: (v[1][0], v[1][1] and v[1][1].isoformat()) for k, v in rows.items()}, want, "rows")
    placed_right(rows, "is_users")


@test
def the_rows_held_in_the_proxy_are_capped():
    setup()
    c = rl.pg()
    cur = c.cursor()
    e = fails(cur, "insert into is_users (id, name) select g, repeat('x', 4000) "
                   "from generate_series(1, 80000) g", "54000")
    check("MB" in e.pgerror, "the message names the limit: %s" % e.pgerror)
    eq(where("is_users", "id", "name"), {}, "rows after the cap")
    cur.execute("select 1")
    c.close()


@test
def rows_read_on_shards_go_into_tables_that_are_not_sharded():
    """Into a table not in the config: every row on the default shard only; into a
    reference table: every row on every shard, counted once in the tag."""
    setup()
    c = rl.pg()
    cur = c.cursor()
    users = [(k, "u%d" % k) for k in range(1, 31)]
    cur.execute("insert into is_users (id, name) values " +
                ",".join(cur.mogrify("(%s,%s)", u).decode() for u in users))
    default = default_shard()
    cur.execute("insert into is_plain (id, name) select id, name from is_users where id > 10")
    eq(cur.statusmessage, "INSERT 0 20", "tag into a table not in the config")
    on = [sorted(r) for r in rl.on_shards("select id, name from is_plain")]
    eq(on[default], sorted(u for u in users if u[0] > 10), "rows on the default shard")
    eq([len(r) for i, r in enumerate(on) if i != default], [0] * (len(on) - 1),
       "rows on the other shards")
    cur.execute("insert into is_ref (id, name) select id, upper(name) from is_users "
                "where id <= 12")
    eq(cur.statusmessage, "INSERT 0 12", "tag into a reference table")
    want = sorted((k, n.upper()) for k, n in users if k <= 12)
    eq([sorted(r) for r in rl.on_shards("select id, name from is_ref")],
       [want] * len(rl.SHARD_PORTS), "every copy of the reference table")
    # one shard's rows into the reference table, in a transaction that rolls back
    c.autocommit = False
    cur.execute("insert into is_ref (id, name) select id, name from is_users where id = 20")
    c.rollback()
    eq([len(r) for r in rl.on_shards("select id from is_ref")], [12] * len(rl.SHARD_PORTS),
       "rolled back everywhere")
    no_prepared()
    c.close()


@test
def what_cannot_go_row_by_row_is_refused():
    setup()
    c = rl.pg()
    cur = c.cursor()
    for sql in ["insert into is_users (id, name) select count(*), 'x' from is_src",
                "insert into is_users (id, name) select id + 1, name from is_src order by id "
                "limit 3",
                "insert into is_users (id, name) select id + 1, name from is_src returning id",
                "insert into is_users select id + 1, name from is_src",
                "explain insert into is_users (id, name) select id + 1, name from is_src"]:
        fails(cur, sql, "0A000")
    fails(cur, "insert into is_users (id, name) select 1", "42601")
    fails(cur, "insert into is_users (id) select 1, 'x'", "42601")
    c.close()
    with Proxy("is_no2pc", {"two_phase_commit": "off"}, extra_ini="") as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        e = fails(cur, "insert into is_users (id, name) select id + 1, name from is_src",
                  "0A000")
        check("BEGIN" in e.pgerror, "says what works: %s" % e.pgerror)
        c.autocommit = False
        cur.execute("insert into is_users (id, name) select g, 'x' from generate_series(1, 9) g")
        c.commit()
        eq(len(where("is_users", "id", "name")), 9, "in BEGIN/COMMIT it runs")
        c.close()
        p.healthy()
    eq(len(where("is_users", "id", "name")), 9, "rows after the refusals")


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=3)
