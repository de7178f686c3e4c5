#!/usr/bin/python3
"""UPDATE of the shard key, against real shards: a row whose new key belongs to another shard
is moved there (deleted on its old shard, inserted on its new one) inside the distributed
transaction, for any number of rows, with RETURNING, over the simple and the extended protocol;
it is all or nothing (a failure on the new shard leaves every row where it was, a pgshard
killed in the middle of the commit leaves each row exactly once after recovery), and every
column value arrives unchanged. What cannot move rows is still refused with 0A000.

Each test runs its own pgshard (robustlib.Proxy) on the cluster's config with the tables
mvt_users (tenant_id key, map users) and mvt_items (tenant_id key, map users; identity,
generated and many-typed columns), made directly on every shard; rows are checked on the
shards themselves.

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_move.py [TEST ...]
"""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402
from robustlib import Failure, Proxy, check, eq, login  # noqa: E402
from test_protocol import Closed, parse_fields  # noqa: E402
from test_twophase import RECOVERY, Env, prepared, wait_resolved  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("MOVE_TEST_TIMEOUT", "120"))
TESTS = []

TABLES = rl.TABLE_SECTIONS + """
[table.mvt_users]
key = tenant_id
map = users

[table.mvt_items]
key = tenant_id
map = users
"""

USERS = ("create table mvt_users (tenant_id bigint not null, id bigint not null, "
         "name text, primary key (tenant_id, id))")
ITEMS = ("create table mvt_items (id bigint generated always as identity, tenant_id bigint "
         "not null, amount numeric, doubled numeric generated always as (amount * 2) stored, "
         "gone int, tags text[], meta jsonb, at timestamptz, f float8, raw bytea, "
         "span int4range, primary key (tenant_id, id))")


def test(fn):
    TESTS.append(fn)
    return fn


class Tables:
    """mvt_users and mvt_items on every shard; users given as (tenant, id, name) go where
    the map puts them. Dropped at exit."""

    def __init__(self, users=()):
        _before[0] = prepared()
        rl.as_app_on_shards("drop table if exists mvt_users, mvt_items")
        rl.as_app_on_shards(USERS)
        rl.as_app_on_shards(ITEMS)
        rl.as_app_on_shards("alter table mvt_items drop column gone")
        for t, i, name in users:
            run_on(rl.shard_of_key(t), "insert into mvt_users values (%d, %d, '%s')"
                   % (t, i, name))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        rl.as_app_on_shards("drop table if exists mvt_users, mvt_items")
        return False


def run_on(shard, sql):
    c = rl.su(shard)
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def where_users():
    """{(tenant, id): (shard, name)} over every shard; a row twice fails."""
    out = {}
    for shard, rows in enumerate(rl.on_shards("select tenant_id, id, name from mvt_users")):
        for t, i, name in rows:
            if (t, i) in out:
                raise Failure("row %r is on shards %d and %d" % ((t, i), out[(t, i)][0], shard))
            out[(t, i)] = (shard, name)
    return out


def placed_right(rows):
    for (t, i), (shard, _) in rows.items():
        eq(shard, rl.shard_of_key(t), "shard of row (%d, %d)" % (t, i))


def tenants_on(shard, n, start=1):
    """n tenant keys of map users that live on shard."""
    out, k = [], start
    while len(out) < n:
        if rl.shard_of_key(k) == shard:
            out.append(k)
        k += 1
    return out


_before = [[]]


def no_prepared(what):
    """No prepared transaction of this test is left (another suite's, still waiting for its
    recovery when the test began, is not this test's)."""
    left = [[g for g in shard if g not in old] for shard, old in zip(prepared(), _before[0])]
    eq(left, [[]] * len(rl.SHARD_PORTS), "prepared transactions %s" % what)


@test
def a_row_moves_to_the_shard_of_its_new_key():
    a, b = tenants_on(0, 1)[0], tenants_on(1, 1)[0]
    with Tables([(a, 1, "ann"), (a, 2, "bob")]), Proxy("mv_one", extra_ini=TABLES) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        cur.execute("update mvt_users set tenant_id = %s, name = name || '!' "
                    "where tenant_id = %s and id = 1 returning id, tenant_id, name", (b, a))
        eq(cur.fetchall(), [(1, b, "ann!")], "RETURNING of the moved row")
        eq(cur.statusmessage, "UPDATE 1", "tag")
        rows = where_users()
        eq(rows, {(b, 1): (1, "ann!"), (a, 2): (0, "bob")}, "rows on the shards")
        cur.execute("select name from mvt_users where tenant_id = %s", (b,))
        eq(cur.fetchall(), [("ann!",)], "the moved row read back through pgshard")
        no_prepared("after the move")
        c.close()
        p.healthy()


@test
def a_computed_key_moves_many_rows_across_every_shard():
    users = [(t, i, "u%d_%d" % (t, i)) for t in range(1, 31) for i in range(1, 11)]
    with Tables(users), Proxy("mv_many", extra_ini=TABLES) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        cur.execute("update mvt_users set tenant_id = tenant_id + 100")
        eq(cur.rowcount, 300, "rows updated")
        rows = where_users()
        eq(sorted(rows), sorted((t + 100, i) for t, i, _ in users), "every row once, new key")
        placed_right(rows)
        moved = sum(1 for t, _, _ in users if rl.shard_of_key(t) != rl.shard_of_key(t + 100))
        check(moved > 50, "only %d of the rows changed shard: the test moves too little" % moved)
        cur.execute("update mvt_users set tenant_id = tenant_id - 100 where id <= 5 "
                    "returning tenant_id, id")
        eq(sorted(cur.fetchall()), sorted((t, i) for t, i, _ in users if i <= 5),
           "RETURNING of rows that moved and rows that stayed")
        rows = where_users()
        eq(len(rows), 300, "rows after the second UPDATE")
        placed_right(rows)
        no_prepared("after the moves")
        c.close()
        p.healthy()


@test
def a_move_in_a_transaction_is_seen_there_and_undone_by_rollback():
    a, b = tenants_on(0, 1)[0], tenants_on(2, 1)[0]
    with Tables([(a, 1, "ann")]), Proxy("mv_tx", extra_ini=TABLES) as p:
        c = rl.pg(p.port)
        c.autocommit = False
        cur = c.cursor()
        cur.execute("update mvt_users set tenant_id = %s where tenant_id = %s", (b, a))
        cur.execute("select id from mvt_users where tenant_id = %s", (b,))
        eq(cur.fetchall(), [(1,)], "the moved row inside the transaction")
        cur.execute("select id from mvt_users where tenant_id = %s", (a,))
        eq(cur.fetchall(), [], "the old row inside the transaction")
        c.rollback()
        eq(where_users(), {(a, 1): (0, "ann")}, "after ROLLBACK")
        cur.execute("update mvt_users set tenant_id = %s where tenant_id = %s", (b, a))
        c.commit()
        eq(where_users(), {(b, 1): (2, "ann")}, "after COMMIT")
        no_prepared("after COMMIT")
        c.close()
        p.healthy()


@test
def a_failure_on_the_new_shard_moves_nothing():
    a, b = tenants_on(0, 1)[0], tenants_on(1, 1)[0]
    start = [(a, 1, "ann"), (a, 2, "bob"), (b, 2, "taken")]
    with Tables(start), Proxy("mv_fail", extra_ini=TABLES) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        try:
            cur.execute("update mvt_users set tenant_id = %s where tenant_id = %s", (b, a))
            raise Failure("the UPDATE that collides on the new shard went through")
        except rl.psycopg2.Error as e:
            eq(e.pgcode, "23505", "error of the colliding move")
        want = {(t, i): (rl.shard_of_key(t), n) for t, i, n in start}
        eq(where_users(), want, "rows after the failed move")
        no_prepared("after the failed move")
        c.autocommit = False
        try:
            cur.execute("update mvt_users set tenant_id = %s where tenant_id = %s", (b, a))
            raise Failure("the colliding UPDATE went through in a transaction")
        except rl.psycopg2.Error as e:
            eq(e.pgcode, "23505", "error in a transaction")
        try:
            cur.execute("select 1")
            raise Failure("the failed transaction went on")
        except rl.psycopg2.Error as e:
            eq(e.pgcode, "25P02", "a statement after the failed move")
        c.rollback()
        eq(where_users(), want, "rows after the failed transaction")
        c.close()
        p.healthy()


@test
def every_column_arrives_unchanged():
    a, b = tenants_on(0, 1)[0], tenants_on(1, 1)[0]
    cols = "id, amount, doubled, tags, meta, at, f, raw, span"
    with Tables(), Proxy("mv_types", extra_ini=TABLES) as p:
        run_on(0, "insert into mvt_items (tenant_id, amount, tags, meta, at, f, raw, span) "
                  "values (%d, 10.50, '{a,\"b c\",NULL}', '{\"k\": [1, 2.5, null]}', "
                  "'2026-01-01 10:00:00.123456+02', 0.1, '\\x00ff0a', '[3,7)'), "
                  "(%d, NULL, NULL, NULL, NULL, 'NaN', '', 'empty')" % (a, a))
        before = run_on(0, "select %s::text from (select %s from mvt_items order by id) x"
                        % ("row(" + cols + ")", cols))
        c = rl.pg(p.port)
        cur = c.cursor()
        cur.execute("update mvt_items set tenant_id = %s where tenant_id = %s returning id",
                    (b, a))
        eq(sorted(cur.fetchall()), [(1,), (2,)], "RETURNING ids")
        after = run_on(1, "select %s::text from (select %s from mvt_items order by id) x"
                       % ("row(" + cols + ")", cols))
        eq(after, before, "the rows on their new shard, key aside")
        eq(run_on(1, "select distinct tenant_id from mvt_items"), [(b,)], "their new key")
        eq(run_on(0, "select count(*) from mvt_items"), [(0,)], "rows left on the old shard")
        c.close()
        p.healthy()


@test
def over_the_extended_protocol_with_parameters_and_binary_results():
    a, b = tenants_on(0, 1)[0], tenants_on(2, 1)[0]
    with Tables([(a, 1, "ann"), (a, 2, "bob")]), Proxy("mv_ext", extra_ini=TABLES) as p:
        r = login(p.port)
        sql = "update mvt_users set tenant_id = $1 where tenant_id = $2 and id = $3"
        r.send(r.parse("", sql + " returning id, name") + r.bind("", "", [str(b), str(a), "1"],
                                                                  [1, 0])
               + r.describe(b"P", "") + r.execute() + r.SYNC)
        got = r.until_ready()
        eq([k for k, _ in got], ["1", "2", "T", "D", "C", "Z"], "messages of the move")
        desc = got[2][1]
        eq(struct.unpack("!h", desc[:2])[0], 2, "columns the client is told of")
        row = got[3][1]
        eq(struct.unpack("!h", row[:2])[0], 2, "columns of the row")
        eq(row[2:], struct.pack("!i", 8) + struct.pack("!q", 1) + struct.pack("!i", 3) + b"ann",
           "the row: id in binary, name in text")
        eq(got[4][1], b"UPDATE 1\0", "tag")
        eq(got[5][1], b"I", "status")
        r.send(r.parse("", sql) + r.bind("", "", [str(b), str(a), "2"]) + r.describe(b"P", "")
               + r.execute() + r.SYNC)
        eq([k for k, _ in r.until_ready()], ["1", "2", "n", "C", "Z"],
           "a move without RETURNING: NoData")
        eq(where_users(), {(b, 1): (2, "ann"), (b, 2): (2, "bob")}, "rows after the moves")
        r.send(r.parse("", sql) + r.bind("", "", [str(a), str(b), "1"]) + r.execute()
               + r.parse("", "select count(*) from mvt_users where tenant_id = $1")
               + r.bind("", "", [str(a)]) + r.execute() + r.SYNC)
        got = r.until_ready()
        eq([k for k, _ in got], ["1", "2", "C", "1", "2", "D", "C", "Z"],
           "a move and a read in one batch")
        r.close()
        no_prepared("after the extended moves")
        p.healthy()


@test
def what_cannot_move_rows_is_refused():
    a, b = tenants_on(0, 1)[0], tenants_on(1, 1)[0]
    with Tables([(a, 1, "ann")]), Proxy("mv_refused", {"two_phase_commit": "off"},
                                        extra_ini=TABLES) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        for sql in ["update mvt_users set tenant_id = %d where tenant_id = %d" % (b, a),
                    "with x as (update mvt_users set tenant_id = tenant_id + 1 returning 1) "
                    "select count(*) from x",
                    "merge into mvt_users u using (select 1 as id) s on u.id = s.id "
                    "when matched then update set tenant_id = 9"]:
            try:
                cur.execute(sql)
                raise Failure("went through: %s" % sql)
            except rl.psycopg2.Error as e:
                eq(e.pgcode, "0A000", sql)
        eq(where_users(), {(a, 1): (0, "ann")}, "rows after the refusals")
        c.autocommit = False
        cur.execute("update mvt_users set tenant_id = %s where tenant_id = %s", (b, a))
        c.commit()
        eq(list(where_users().values()), [(1, "ann")],
           "with two_phase_commit off, a move in BEGIN/COMMIT")
        c.close()
        p.healthy()


@test
def pgshard_killed_while_a_move_commits_leaves_each_row_once():
    a, b = tenants_on(0, 1)[0], tenants_on(1, 1)[0]
    for step in ("prepared", "decided"):
        with Tables([(a, 1, "ann")]):
            with Env(PGSHARD_DEBUG_COMMIT_CRASH=step):
                p = Proxy("mv_dies_" + step, extra_ini=TABLES).start()
            try:
                r = login(p.port, timeout=10)
                try:
                    r.simple("update mvt_users set tenant_id = %d where tenant_id = %d" % (b, a))
                except (Closed, Failure, OSError):
                    pass
                finally:
                    r.close()
                deadline = time.time() + 10
                while p.alive() and time.time() < deadline:
                    time.sleep(0.05)
                check(not p.alive(), "pgshard did not die after step %s" % step)
            finally:
                p.stop()
            with Proxy("mv_recovers_" + step, RECOVERY, extra_ini=TABLES) as q:
                wait_resolved("the move's prepared transaction (%s)" % step)
                rows = where_users()
                want = {(a, 1): (0, "ann")} if step == "prepared" else {(b, 1): (1, "ann")}
                eq(rows, want, "the row after pgshard died once %s" % step)
                q.healthy()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=3)
