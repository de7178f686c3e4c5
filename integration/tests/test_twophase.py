#!/usr/bin/python3
"""Two-phase commit across shards, against real shards: a transaction that wrote on two or
more shards commits everywhere or nowhere, whatever fails and wherever pgshard dies.

Each test runs its own pgshard (robustlib.Proxy) on the cluster's config with the table
tp_acc (id bigint key, bal int) sharded on map users, made directly on every shard, and
checks the outcome on the shards themselves: the rows, pg_prepared_xacts, and the decision
records in pgshard.decisions. The admin console's SHOW TRANSACTIONS lists a commit under way
(its decider's backend stopped with SIGSTOP) and a transaction recovery leaves in doubt (its
decider shard down), and the metrics endpoint counts the latter.

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_twophase.py [TEST ...]
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402
from robustlib import Closed, Failure, Proxy, check, eq, login, parse_fields  # noqa: E402
from test_protocol import Raw  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("TWOPHASE_TEST_TIMEOUT", "150"))
TESTS = []

TABLES = rl.TABLE_SECTIONS + """
[table.tp_acc]
key = id
map = users

[table.tp_new]
key = id
map = users
"""


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------------------------------
# the shards as they are


class Accounts:
    """tp_acc on every shard, one account of balance 100 per key given; dropped at exit,
    with any prepared transaction a test left behind."""

    def __init__(self, keys):
        self.keys = keys
        drop_leftovers()
        rl.as_app_on_shards("drop table if exists tp_acc")
        rl.as_app_on_shards("create table tp_acc (id bigint primary key, bal int not null)")
        for k in keys:
            run_on(rl.shard_of("users", k), "insert into tp_acc values (%d, 100)" % k)
        rl.as_app_on_shards("delete from pgshard.decisions")

    def __enter__(self):
        return self

    def __exit__(self, *a):
        drop_leftovers()
        rl.as_app_on_shards("drop table if exists tp_acc")
        return False


def run_on(shard, sql):
    c = rl.pg(rl.SHARD_PORTS[shard])
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def drop_leftovers():
    for i, rows in enumerate(rl.on_shards("select gid from pg_prepared_xacts")):
        for (gid,) in rows:
            run_on(i, "rollback prepared '%s'" % gid)


def balances(keys):
    out = {}
    for k in keys:
        rows = run_on(rl.shard_of("users", k), "select bal from tp_acc where id = %d" % k)
        out[k] = rows[0][0] if rows else None
    return out


def prepared():
    """Prepared transactions on each shard."""
    return [sorted(g for (g,) in rows)
            for rows in rl.on_shards("select gid from pg_prepared_xacts")]


def decision(shard, gid_like="pgshard:%"):
    rows = run_on(shard, "select gid, committed from pgshard.decisions where gid like '%s' "
                         "order by decided_at" % gid_like)
    return rows


def two_keys():
    """Keys on shards 0 and 1: shard 0 decides (the lowest writer)."""
    return rl.key_on(0), rl.key_on(1)


def transfer(r, src, dst, amount=10, ordered=False):
    """BEGIN; move amount from src to dst; COMMIT over raw connection r. Returns
    (the COMMIT's error fields or None, its tags, status). `ordered`: the rows are updated
    in key order, so that concurrent transfers never wait on each other in a circle."""
    steps = [(src, -amount), (dst, amount)]
    if ordered:
        steps.sort()
    for sql in ["begin"] + ["update tp_acc set bal = bal + %d where id = %d" % (d, k)
                            for k, d in steps]:
        rows, tags, err, status = r.simple(sql)
        eq((err, status), (None, "T"), sql)
    rows, tags, err, status = r.simple("commit")
    return err, tags, status


def fail_at_commit_on(shard):
    """A deferred constraint trigger on shard's tp_acc: a balance over 1000 fails its
    commit (at PREPARE TRANSACTION or COMMIT), with SQLSTATE 23514."""
    run_on(shard, """
        create or replace function tp_check() returns trigger language plpgsql as $$
        begin
          if new.bal > 1000 then
            raise exception 'balance % over 1000', new.bal using errcode = '23514';
          end if;
          return null;
        end $$""")
    run_on(shard, "create constraint trigger tp_bal after insert or update on tp_acc "
                  "deferrable initially deferred for each row execute function tp_check()")


# ---------------------------------------------------------------------------------------
# commits


@test
def commit_on_two_shards_is_decided_on_the_first_writer():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_commit", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                err, tags, status = transfer(r, k0, k1)
                eq((err, tags, status), (None, ["COMMIT"], "I"), "COMMIT of a transfer")
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 90, k1: 110}, "both sides of the transfer")
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            rows = decision(0)
            eq([c for g, c in rows], [True], "the decision record on shard 0 (the decider)")
            eq(decision(1), [], "no decision record on shard 1")
            p.healthy()


@test
def the_first_commit_in_a_database_makes_the_decision_table():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_no_table", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                r.simple("select 1")
                time.sleep(0.5)  # recovery has made the table at start-up: take it away
                run_on(0, "drop schema pgshard cascade")
                err, tags, status = transfer(r, k0, k1)
                eq((err, tags, status), (None, ["COMMIT"], "I"), "COMMIT without the table")
                err, tags, status = transfer(r, k0, k1)
                eq((err, tags, status), (None, ["COMMIT"], "I"), "COMMIT after it")
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 80, k1: 120}, "both transfers")
            eq([c for g, c in decision(0)], [True, True], "the decision records")
            p.healthy()


@test
def one_writer_commits_in_one_phase():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_onephase", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                for sql in ("begin", "select bal from tp_acc where id = %d" % k0,
                            "update tp_acc set bal = 7 where id = %d" % k1, "commit"):
                    rows, tags, err, status = r.simple(sql)
                    eq(err, None, sql)
                eq((tags, status), (["COMMIT"], "I"), "COMMIT")
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 100, k1: 7}, "balances")
            eq(decision(0) + decision(1), [], "no decision record for a one-writer commit")
            p.healthy()


@test
def two_phase_commit_off_commits_each_shard_on_its_own():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_off", {"two_phase_commit": "off"}, extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                err, tags, status = transfer(r, k0, k1)
                eq((err, tags, status), (None, ["COMMIT"], "I"), "COMMIT of a transfer")
                sql = "update tp_acc set bal = bal + 1 where id in (%d, %d)" % (k0, k1)
                rows, tags, err, status = r.simple(sql)
                eq((err, tags), (None, ["UPDATE 2"]), sql)
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 91, k1: 111}, "balances")
            eq(decision(0) + decision(1), [], "no decision record with two_phase_commit = off")
            p.healthy()


@test
def failed_prepare_rolls_back_every_shard():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        fail_at_commit_on(1)  # shard 1 prepares; its deferred trigger fails the PREPARE
        with Proxy("tp_prepare_fails", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                err, tags, status = transfer(r, k0, k1, amount=5000)
                check(err is not None, "COMMIT whose PREPARE fails on shard 1 succeeded")
                eq((err.get("C"), status), ("23514", "I"), "the shard's error, then idle")
                rows, tags, err, status = r.simple("select 1")
                eq((rows, err), ([["1"]], None), "the session goes on")
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 100, k1: 100}, "nothing of the transfer stays")
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            eq(decision(0), [], "no decision record (the decider rolled back)")
            p.healthy()


@test
def failed_decision_rolls_back_the_prepared_shards():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        fail_at_commit_on(0)  # shard 0 decides: its COMMIT fails after shard 1 prepared
        with Proxy("tp_decide_fails", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                err, tags, status = transfer(r, k1, k0, amount=5000)
                check(err is not None, "COMMIT whose decision fails succeeded")
                eq((err.get("C"), status), ("23514", "I"), "the decider's error, then idle")
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 100, k1: 100}, "nothing of the transfer stays")
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


@test
def commit_over_the_extended_protocol_is_two_phase():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_extended", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                for sql in ("begin", "update tp_acc set bal = bal - 1 where id = %d" % k0,
                            "update tp_acc set bal = bal + 1 where id = %d" % k1, "commit"):
                    r.send(Raw.parse("", sql) + Raw.bind("", "") + Raw.execute() + Raw.SYNC)
                    got = r.until_ready()
                    errs = [parse_fields(b) for k, b in got if k == "E"]
                    eq(errs, [], sql)
                tags = [b[:-1].decode() for k, b in got if k == "C"]
                eq((tags, got[-1][1]), (["COMMIT"], b"I"), "COMMIT over Parse/Bind/Execute")
            finally:
                r.close()
            eq(balances([k0, k1]), {k0: 99, k1: 101}, "both sides")
            eq([c for g, c in decision(0)], [True], "the decision record")
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


@test
def transfers_keep_the_total_under_concurrency():
    keys = [rl.key_on(s, n) for s in range(len(rl.SHARD_PORTS)) for n in range(2)]
    with Accounts(keys):
        with Proxy("tp_many", {"pool_size": 4}, extra_ini=TABLES) as p:
            errors = []

            def client(i):
                try:
                    r = login(p.port, timeout=20)
                    for n in range(30):
                        a, b = keys[(i + n) % len(keys)], keys[(i * 3 + n + 1) % len(keys)]
                        if rl.shard_of("users", a) == rl.shard_of("users", b):
                            continue
                        err, tags, status = transfer(r, a, b, amount=1, ordered=True)
                        if err is not None and err.get("C") not in ("40P01", "40001"):
                            errors.append("%s" % err.get("M"))
                        if err is not None and status != "I":
                            r.simple("rollback")
                    r.close()
                except (Failure, Closed, OSError) as e:
                    errors.append(str(e))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            check(not errors, "errors: %s" % "; ".join(errors[:3]))
            total = sum(balances(keys).values())
            eq(total, 100 * len(keys), "the sum of all balances")
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


# ---------------------------------------------------------------------------------------
# autocommit statements on several shards run in a transaction of pgshard's own


@test
def autocommit_update_on_two_shards_is_all_or_nothing():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_auto_update", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                sql = "update tp_acc set bal = bal + 1 where id in (%d, %d)" % (k0, k1)
                rows, tags, err, status = r.simple(sql)
                eq((err, tags, status), (None, ["UPDATE 2"], "I"), sql)
                eq(balances([k0, k1]), {k0: 101, k1: 101}, "after the update")
                eq([c for g, c in decision(0)], [True], "its decision record")
                fail_at_commit_on(1)
                sql = "update tp_acc set bal = bal + 5000 where id in (%d, %d)" % (k0, k1)
                rows, tags, err, status = r.simple(sql)
                check(err is not None, "an update that fails on shard 1 at commit succeeded")
                eq((err.get("C"), tags, status), ("23514", [], "I"),
                   "the shard's error, no tag, idle")
                eq(balances([k0, k1]), {k0: 101, k1: 101}, "after the failed update")
                rows, tags, err, status = r.simple("select bal from tp_acc where id = %d" % k0)
                eq((rows, err), ([["101"]], None), "the session goes on")
            finally:
                r.close()
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


@test
def autocommit_split_insert_and_copy_are_all_or_nothing():
    k0, k1 = two_keys()
    k0b, k1b = rl.key_on(0, 1), rl.key_on(1, 1)
    with Accounts([k0, k1]):
        fail_at_commit_on(1)
        with Proxy("tp_auto_insert", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                sql = "insert into tp_acc (id, bal) values (%d, 1), (%d, 5000)" % (k0b, k1b)
                rows, tags, err, status = r.simple(sql)
                eq((err or {}).get("C"), "23514", "split INSERT failing on shard 1 at commit")
                eq(balances([k0b, k1b]), {k0b: None, k1b: None}, "rows of the failed INSERT")
                r.send(Raw.query("copy tp_acc (id, bal) from stdin"))
                got = r.read()
                eq(got[0], "G", "CopyInResponse")
                r.send(rl.msg(b"d", b"%d\t1\n%d\t5000\n" % (k0b, k1b)) + rl.msg(b"c"))
                got = r.until_ready()
                errs = [parse_fields(b).get("C") for k, b in got if k == "E"]
                eq((errs, got[-1][1]), (["23514"], b"I"), "COPY failing on shard 1 at commit")
                eq(balances([k0b, k1b]), {k0b: None, k1b: None}, "rows of the failed COPY")
                sql = "insert into tp_acc (id, bal) values (%d, 1), (%d, 2)" % (k0b, k1b)
                rows, tags, err, status = r.simple(sql)
                eq((err, tags), (None, ["INSERT 0 2"]), sql)
                eq(balances([k0b, k1b]), {k0b: 1, k1b: 2}, "rows of the INSERT")
            finally:
                r.close()
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


@test
def autocommit_update_over_the_extended_protocol_is_all_or_nothing():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        fail_at_commit_on(1)
        with Proxy("tp_auto_extended", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                sql = "update tp_acc set bal = bal + $1 where id in (%d, %d)" % (k0, k1)
                for amount, want in ((1, []), (5000, ["23514"])):
                    r.send(Raw.parse("", sql, (23,)) + Raw.bind("", "", (str(amount),))
                           + Raw.execute() + Raw.SYNC)
                    got = r.until_ready()
                    errs = [parse_fields(b).get("C") for k, b in got if k == "E"]
                    eq((errs, got[-1][1]), (want, b"I"), "UPDATE by %d over Bind/Execute" % amount)
                eq(balances([k0, k1]), {k0: 101, k1: 101}, "balances")
            finally:
                r.close()
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


# ---------------------------------------------------------------------------------------
# DDL on every shard: two phases too, except what cannot run in a transaction block


def shards_having(name):
    """For each shard, whether a relation of that name exists there."""
    return [rows[0][0] is not None
            for rows in rl.on_shards("select to_regclass(%s)::text", (name,))]


def columns_of(table):
    """For each shard, the sorted column names of table."""
    return [sorted(c for (c,) in rows)
            for rows in rl.on_shards("select attname from pg_attribute where attrelid = "
                                     "%s::regclass and attnum > 0 and not attisdropped",
                                     (table,))]


@test
def create_table_on_every_shard_is_all_or_nothing():
    every = [True] * len(rl.SHARD_PORTS)
    nowhere = [False] * len(rl.SHARD_PORTS)
    last = len(rl.SHARD_PORTS) - 1
    create = "create table tp_new (id bigint primary key)"
    with Accounts([]):
        rl.as_app_on_shards("drop table if exists tp_new")
        try:
            with Proxy("tp_ddl_create", extra_ini=TABLES) as p:
                r = login(p.port, timeout=10)
                try:
                    run_on(last, create)  # the last shard already has it
                    rows, tags, err, status = r.simple(create)
                    eq(((err or {}).get("C"), tags, status), ("42P07", [], "I"),
                       "CREATE TABLE that fails on shard %d" % last)
                    eq(shards_having("tp_new"), nowhere[:last] + [True],
                       "tp_new after the failed CREATE TABLE")
                    # the same over the extended protocol
                    r.send(Raw.parse("", create) + Raw.bind("", "") + Raw.execute() + Raw.SYNC)
                    got = r.until_ready()
                    errs = [parse_fields(b).get("C") for k, b in got if k == "E"]
                    eq((errs, got[-1][1]), (["42P07"], b"I"), "CREATE TABLE over Bind/Execute")
                    eq(shards_having("tp_new"), nowhere[:last] + [True],
                       "tp_new after the failed CREATE TABLE over Bind/Execute")
                    run_on(last, "drop table tp_new")
                    rl.as_app_on_shards("delete from pgshard.decisions")
                    rows, tags, err, status = r.simple(create)
                    eq((err, tags, status), (None, ["CREATE TABLE"], "I"), create)
                    eq(shards_having("tp_new"), every, "tp_new after CREATE TABLE")
                    eq([c for g, c in decision(0)], [True], "its decision record")
                    rows, tags, err, status = r.simple("drop table tp_new")
                    eq((err, tags, status), (None, ["DROP TABLE"], "I"), "DROP TABLE")
                    eq(shards_having("tp_new"), nowhere, "tp_new after DROP TABLE")
                finally:
                    r.close()
                eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
                p.healthy()
        finally:
            rl.as_app_on_shards("drop table if exists tp_new")


@test
def hinted_statements_on_every_shard_are_all_or_nothing():
    """/* pgshard: all */ CREATE FUNCTION (DO, CREATE TYPE, ...) commits in two phases: one
    that fails on one shard changes none."""
    last = len(rl.SHARD_PORTS) - 1
    create = ("/* pgshard: all */ create function tp_f() returns int language sql "
              "as 'select 1'")
    having = "select count(*) from pg_proc where proname = 'tp_f'"
    with Accounts([]):
        rl.as_app_on_shards("drop function if exists tp_f()")
        try:
            with Proxy("tp_hinted", extra_ini=TABLES) as p:
                r = login(p.port, timeout=10)
                try:
                    run_on(last, create.split("*/")[1])  # the last shard already has it
                    rows, tags, err, status = r.simple(create)
                    eq(((err or {}).get("C"), status), ("42723", "I"),
                       "CREATE FUNCTION that fails on shard %d" % last)
                    eq([n for [(n,)] in rl.on_shards(having)], [0] * last + [1],
                       "tp_f after the failed CREATE FUNCTION")
                    run_on(last, "drop function tp_f()")
                    rows, tags, err, status = r.simple(create)
                    eq((err, tags, status), (None, ["CREATE FUNCTION"], "I"), create)
                    eq([n for [(n,)] in rl.on_shards(having)], [1] * (last + 1),
                       "tp_f after CREATE FUNCTION")
                    rows, tags, err, status = r.simple(
                        "/* pgshard: all */ do $$ begin perform tp_f(); end $$")
                    eq((err, tags, status), (None, ["DO"], "I"), "DO on every shard")
                finally:
                    r.close()
                eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
                p.healthy()
        finally:
            rl.as_app_on_shards("drop function if exists tp_f()")


@test
def ddl_that_cannot_run_in_a_transaction_block_runs_unwrapped():
    every = [True] * len(rl.SHARD_PORTS)
    nowhere = [False] * len(rl.SHARD_PORTS)
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Proxy("tp_ddl_concurrently", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                for sql, tag in (("create index concurrently tp_acc_bal on tp_acc (bal)",
                                  "CREATE INDEX"),
                                 ("vacuum tp_acc", "VACUUM"),
                                 ("reindex table concurrently tp_acc", "REINDEX")):
                    rows, tags, err, status = r.simple(sql)
                    eq((err, tags, status), (None, [tag], "I"), sql)
                eq(shards_having("tp_acc_bal"), every, "the index after CREATE INDEX CONCURRENTLY")
                sql = "/* pgshard: all */ drop index concurrently tp_acc_bal"
                rows, tags, err, status = r.simple(sql)
                eq((err, tags, status), (None, ["DROP INDEX"], "I"), sql)
                eq(shards_having("tp_acc_bal"), nowhere, "the index after DROP INDEX CONCURRENTLY")
                eq(decision(0), [], "decision records (nothing was wrapped)")
            finally:
                r.close()
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


@test
def alter_table_that_fails_on_one_shard_changes_no_shard():
    k0, k1 = two_keys()
    base = ["bal", "id", "note"]
    with Accounts([k0, k1]):
        with Proxy("tp_ddl_alter", extra_ini=TABLES) as p:
            r = login(p.port, timeout=10)
            try:
                sql = "alter table tp_acc add column note text"
                rows, tags, err, status = r.simple(sql)
                eq((err, tags, status), (None, ["ALTER TABLE"], "I"), sql)
                eq(columns_of("tp_acc"), [base] * len(rl.SHARD_PORTS), "columns after " + sql)
                run_on(1, "update tp_acc set bal = 5000 where id = %d" % k1)
                sql = "alter table tp_acc add column note2 text check (bal < 1000)"
                rows, tags, err, status = r.simple(sql)
                eq(((err or {}).get("C"), tags, status), ("23514", [], "I"),
                   "ALTER TABLE that fails on shard 1 (a row there violates the check)")
                eq(columns_of("tp_acc"), [base] * len(rl.SHARD_PORTS), "columns after " + sql)
                rows, tags, err, status = r.simple("select bal from tp_acc where id = %d" % k0)
                eq((rows, err), ([["100"]], None), "the session goes on")
            finally:
                r.close()
            eq(prepared(), [[]] * len(rl.SHARD_PORTS), "prepared transactions left")
            p.healthy()


# ---------------------------------------------------------------------------------------
# crashes: pgshard killed between the steps, a shard down after the decision


RECOVERY = {"recovery_interval": 300, "recovery_grace": 0}


def wait_resolved(what, secs=20):
    """Waits until no shard holds a prepared transaction (recovery ran)."""
    deadline = time.time() + secs
    while time.time() < deadline:
        if prepared() == [[]] * len(rl.SHARD_PORTS):
            return
        time.sleep(0.2)
    raise Failure("%s: still prepared after %d s: %r" % (what, secs, prepared()))


class Env:
    """Environment variables set for the pgshard processes started inside."""

    def __init__(self, **kv):
        self.kv = kv

    def __enter__(self):
        self.old = {k: os.environ.get(k) for k in self.kv}
        os.environ.update(self.kv)

    def __exit__(self, *a):
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def commit_through_dying_proxy(step, keys):
    """A transfer between keys[0] and keys[1] through a pgshard that kills itself after
    `step`; returns what the client saw of its COMMIT."""
    with Env(PGSHARD_DEBUG_COMMIT_CRASH=step):
        p = Proxy("tp_dies_" + step, extra_ini=TABLES).start()
    try:
        r = login(p.port, timeout=10)
        try:
            err, tags, status = transfer(r, keys[0], keys[1])
            seen = "answered %r %r" % (err, tags)
        except (Closed, Failure, OSError) as e:
            seen = "connection ended (%s)" % e
        finally:
            r.close()
        deadline = time.time() + 10
        while p.alive() and time.time() < deadline:
            time.sleep(0.05)
        check(not p.alive(), "pgshard did not die after step %s" % step)
    finally:
        p.stop()
    return seen


@test
def pgshard_killed_after_prepare_is_rolled_back_by_another():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        seen = commit_through_dying_proxy("prepared", (k0, k1))
        check("connection ended" in seen, "the client's COMMIT: %s" % seen)
        check(prepared()[1] != [], "shard 1 holds the prepared transaction after the crash")
        with Proxy("tp_recovers_prepared", RECOVERY, extra_ini=TABLES) as p:
            wait_resolved("a dead pgshard's prepared transaction")
            eq(balances([k0, k1]), {k0: 100, k1: 100}, "nothing of the transfer stays")
            eq([c for g, c in decision(0)], [False], "the tombstone recovery wrote")
            p.healthy()


@test
def pgshard_killed_after_the_decision_is_committed_by_another():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        seen = commit_through_dying_proxy("decided", (k0, k1))
        check("connection ended" in seen, "the client's COMMIT: %s" % seen)
        eq(balances([k0, k1])[k0], 90, "the decider committed before pgshard died")
        with Proxy("tp_recovers_decided", RECOVERY, extra_ini=TABLES) as p:
            wait_resolved("a dead pgshard's decided transaction")
            eq(balances([k0, k1]), {k0: 90, k1: 110}, "the whole transfer")
            eq([c for g, c in decision(0)], [True], "the decision record")
            p.healthy()


@test
def shard_down_after_the_decision_commits_when_it_is_back():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with Env(PGSHARD_DEBUG_COMMIT_PAUSE="decided"):
            p = Proxy("tp_shard_down", dict(RECOVERY, server_connect_timeout=1000),
                      extra_ini=TABLES).start()
        try:
            r = login(p.port, timeout=20)
            got = {}

            def commit():
                try:
                    for sql in ("begin", "update tp_acc set bal = bal - 10 where id = %d" % k0,
                                "update tp_acc set bal = bal + 10 where id = %d" % k1):
                        r.simple(sql)
                    r.send(Raw.query("commit"))
                    got["msgs"] = r.until_ready()
                except (Closed, Failure, OSError) as e:
                    got["error"] = str(e)

            t = threading.Thread(target=commit)
            t.start()
            time.sleep(1.0)  # the proxy pauses 2 s after the decision
            rl.shard_down(1, "immediate")
            try:
                t.join(20)
                msgs = got.get("msgs", [])
                kinds = [k for k, b in msgs]
                check("error" not in got, "the client's COMMIT: %s" % got.get("error"))
                eq([k for k in kinds if k != "N"], ["C", "Z"], "COMMIT answered (and a warning)")
                check("N" in kinds, "a warning that a shard applies the commit later")
                r.close()
            finally:
                rl.shard_up(1)
            wait_resolved("the commit on shard 1 once it is back")
            eq(balances([k0, k1]), {k0: 90, k1: 110}, "the whole transfer")
        finally:
            problem = p.stop()
        check(problem is None, "pgshard: %s" % problem)


# ---------------------------------------------------------------------------------------
# the admin console's SHOW TRANSACTIONS: a commit under way, a transaction left in doubt

ADMIN, ADMIN_PASSWORD = "ops", "ops-secret"


def console_proxy(name, settings):
    """A Proxy (not started) whose admin console user is ops."""
    p = Proxy(name, dict(settings, admin_users=ADMIN), extra_ini=TABLES)
    with open(os.path.join(p.work, "users.txt"), "a") as f:
        f.write('"%s" "%s"\n' % (ADMIN, ADMIN_PASSWORD))
    return p


def show(port, what):
    """SHOW <what> on the admin console, as a list of dicts by column name."""
    c = rl.psycopg2.connect(host=rl.HOST, port=port, user=ADMIN, password=ADMIN_PASSWORD,
                            dbname="pgshard", connect_timeout=10)
    c.autocommit = True
    try:
        cur = c.cursor()
        cur.execute("SHOW " + what)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        c.close()


def wait_show(what, port, pred, secs=20):
    deadline = time.time() + secs
    while True:
        rows = [r for r in show(port, what) if pred(r)]
        if rows:
            return rows
        if time.time() > deadline:
            raise Failure("no such row in SHOW %s after %d s: %r" % (what, secs,
                                                                     show(port, what)))
        time.sleep(0.2)


@test
def show_transactions_lists_a_commit_under_way():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        with console_proxy("tp_show_preparing", {}) as p:
            r = login(p.port, timeout=20)
            got = {}
            for sql in ("begin", "update tp_acc set bal = bal - 10 where id = %d" % k0,
                        "update tp_acc set bal = bal + 10 where id = %d" % k1):
                rows, tags, err, status = r.simple(sql)
                eq((err, status), (None, "T"), sql)
            row = show(p.port, "TRANSACTIONS")
            eq([(x["state"], x["shards"], x["wrote"], x["gid"], x["reason"]) for x in row],
               [("open", "0, 1", "0, 1", None, None)], "the open transaction")
            check(row[0]["age"] >= 0, "its age: %r" % row[0])
            # the decider's backend stopped: the commit cannot get past its first step
            pids = [x["backend_pid"] for x in show(p.port, "SERVERS")
                    if x["shard"] == 0 and x["client"] == row[0]["client"]]
            eq(len(pids), 1, "the decider's server connection")
            os.kill(pids[0], signal.SIGSTOP)
            try:
                def commit():
                    try:
                        r.send(Raw.query("commit"))
                        got["msgs"] = r.until_ready()
                    except (Closed, Failure, OSError) as e:
                        got["error"] = str(e)

                t = threading.Thread(target=commit)
                t.start()
                rows = wait_show("TRANSACTIONS", p.port, lambda x: x["state"] == "preparing")
                eq([(x["client"], x["shards"], x["wrote"]) for x in rows],
                   [(row[0]["client"], "0, 1", "0, 1")], "the commit in its first step")
                check(re.match(r"^pgshard:", rows[0]["gid"] or ""), "its gid: %r" % rows[0])
                eq([g for g in prepared()[1]], [rows[0]["gid"]], "the gid shard 1 prepared")
            finally:
                os.kill(pids[0], signal.SIGCONT)
            t.join(20)
            eq([k for k, b in got.get("msgs", [])], ["C", "Z"], "COMMIT answered: %r" % got)
            eq(balances([k0, k1]), {k0: 90, k1: 110}, "the transfer")
            eq(show(p.port, "TRANSACTIONS"), [], "no transaction once committed")
            r.close()
            p.healthy()


@test
def show_transactions_lists_an_in_doubt_transaction():
    k0, k1 = two_keys()
    with Accounts([k0, k1]):
        seen = commit_through_dying_proxy("prepared", (k0, k1))
        check("connection ended" in seen, "the client's COMMIT: %s" % seen)
        gids = prepared()[1]
        eq(len(gids), 1, "shard 1 holds the prepared transaction after the crash")
        # its decider (shard 0) down: recovery cannot know the outcome and leaves it in doubt
        rl.shard_down(0)
        down = [True]
        try:
            metrics = rl.PORT_BASE + 10
            with console_proxy("tp_show_in_doubt",
                               dict(RECOVERY, server_connect_timeout=1000,
                                    metrics_listen="%s:%d" % (rl.HOST, metrics))) as p:
                rows = wait_show("TRANSACTIONS", p.port, lambda x: x["state"] == "in doubt")
                eq([(x["client"], x["shards"], x["gid"], x["database"]) for x in rows],
                   [(None, "1", gids[0], "app")], "the in-doubt transaction")
                check(rows[0]["age"] >= 0, "its age: %r" % rows[0])
                check("decider shard 0" in rows[0]["reason"], "why: %r" % rows[0]["reason"])
                eq(show(p.port, "RECOVERY")[0]["in_doubt"], 1, "SHOW RECOVERY counts it")
                with urllib.request.urlopen("http://%s:%d/metrics" % (rl.HOST, metrics),
                                            timeout=10) as m:
                    text = m.read().decode("utf-8")
                check(re.search(r"^pgshard_recovery_in_doubt 1$", text, re.M),
                      "the endpoint counts it: %s" % [ln for ln in text.splitlines()
                                                      if "recovery" in ln])
                rl.shard_up(0)
                down[0] = False
                wait_resolved("the in-doubt transaction once its decider is back")
                eq(balances([k0, k1]), {k0: 100, k1: 100}, "nothing of the transfer stays")
                wait_show("RECOVERY", p.port, lambda x: x["in_doubt"] == 0)
                eq(show(p.port, "TRANSACTIONS"), [], "nothing in doubt any more")
                p.healthy()
        finally:
            if down[0]:
                rl.shard_up(0)


# ---------------------------------------------------------------------------------------
# TPC-B through pgshard on every shard while pgshard and a shard crash


def pgbench(port, *args, secs=None, kill_after=None, on_kill=None):
    """Runs pgbench against port; with kill_after, calls on_kill that many seconds in (while
    pgbench runs) and lets pgbench end as it can. Returns its output."""
    env = dict(os.environ, PGHOST=rl.HOST, PGPORT=str(port), PGCONNECT_TIMEOUT="5")
    proc = subprocess.Popen(["pgbench"] + list(args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if kill_after is not None:
        time.sleep(kill_after)
        on_kill()
    try:
        out, _ = proc.communicate(timeout=(secs or 30) + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise Failure("pgbench %s did not end: %s" % (" ".join(args), out[-300:]))
    return out


def tpcb_sums():
    sums = {}
    for what, sql in (("accounts", "select coalesce(sum(abalance), 0) from pgbench_accounts"),
                      ("tellers", "select coalesce(sum(tbalance), 0) from pgbench_tellers"),
                      ("branches", "select coalesce(sum(bbalance), 0) from pgbench_branches"),
                      ("history", "select coalesce(sum(delta), 0) from pgbench_history")):
        sums[what] = sum(int(rows[0][0]) for rows in rl.on_shards(sql))
    return sums


@test
def tpcb_stays_consistent_through_pgshard_and_shard_crashes():
    port = rl.PORT_BASE + 9
    settings = dict(RECOVERY, pool_size=8)
    p = Proxy("tp_tpcb", settings, port=port, extra_ini=TABLES).start()
    try:
        out = pgbench(port, "-i", "-s", "1", "-I", "dtgp")
        check("done" in out, "pgbench -i through pgshard: %s" % out[-300:])
        run = ["-n", "-c", "4", "-j", "2", "-T", "4"]
        outcomes = []

        def kill_proxy():
            os.kill(p.pid(), 9)

        # pgshard killed while TPC-B runs, then started again
        pgbench(port, *run, secs=4, kill_after=2, on_kill=kill_proxy)
        p.stop()
        outcomes.append("pgshard killed")
        p = Proxy("tp_tpcb", settings, port=port, extra_ini=TABLES).start()
        # a shard crashes (immediate stop) while TPC-B runs, and comes back
        pgbench(port, *run, secs=4, kill_after=2, on_kill=lambda: rl.shard_down(1, "immediate"))
        rl.shard_up(1)
        outcomes.append("shard 1 crashed")
        # pgshard killed right after a decision, then started again
        p.stop()
        with Env(PGSHARD_DEBUG_COMMIT_CRASH="decided"):
            p = Proxy("tp_tpcb", settings, port=port, extra_ini=TABLES).start()
        pgbench(port, *run, secs=4)
        p.stop()
        outcomes.append("pgshard killed after a decision")
        p = Proxy("tp_tpcb", settings, port=port, extra_ini=TABLES).start()
        out = pgbench(port, *run, secs=4)
        m = re.search(r"number of transactions actually processed: (\d+)", out)
        check(m is not None and int(m.group(1)) > 0, "TPC-B after the crashes: %s" % out[-300:])
        wait_resolved("after TPC-B with crashes (%s)" % ", ".join(outcomes), secs=30)
        sums = tpcb_sums()
        check(len(set(sums.values())) == 1,
              "sum(abalance), sum(tbalance), sum(bbalance), sum(delta) differ: %r" % sums)
        p.healthy()
    finally:
        p.stop()
        rl.as_app_on_shards("drop table if exists pgbench_accounts, pgbench_tellers, "
                            "pgbench_branches, pgbench_history")



if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=2)
