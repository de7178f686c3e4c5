#!/usr/bin/python3
"""Two-phase-commit recovery (proxy/recovery.c): a pgshard finishes the prepared transactions
a crashed pgshard left behind, as its decision records say, and never undoes a commit that a
live pgshard may still make. The situations are made directly on the shards with psycopg2 as
the app user, as the commit path leaves them (router/twophase.h): a prepared transaction
named pgshard:<instance>:<decider>:<n> on one shard, and on the decider shard a decision
record, or none, or one in a transaction still open.

  decision_table_made_at_start_up_on_every_primary
  committed_decision_commits_at_start_up            (a) record committed=true -> COMMIT PREPARED
  no_decision_rolls_back_and_leaves_a_tombstone      (b) no record -> tombstone, ROLLBACK PREPARED
  open_decider_transaction_is_waited_for             (c) record not committed yet -> stays
                                                         prepared for rounds, then committed
  young_prepared_transaction_is_left_alone           (d) younger than recovery_grace
  cleanup_deletes_only_old_records_nothing_holds     records older than 600 s and prepared
                                                     nowhere go; the rest stay

In another database (DB2, default rec_app2, made on every shard owned by app and dropped at
the end), through a pgshard whose conninfos leave the database to the client (so that a client
logged in to DB2 works in DB2 on the shards), killed with SIGKILL mid-commit
(PGSHARD_DEBUG_COMMIT_CRASH) and recovered by another such pgshard:

  pgshard_killed_after_prepare_in_another_database_is_rolled_back_there
                                                     no table, no record in DB2 on the decider
                                                     -> table and tombstone there, ROLLBACK
                                                     PREPARED in DB2
  pgshard_killed_after_the_decision_in_another_database_is_committed_there
                                                     DB2's record -> COMMIT PREPARED in DB2
  a_database_recovery_cannot_log_in_to_stays_in_doubt
                                                     DB2 refuses connections: logged, left
                                                     prepared; finished once it accepts them
  cleanup_in_a_clients_database_deletes_only_old_records_nothing_holds
                                                     DB2's records are cleaned up as the
                                                     conninfo database's are
  prepared_outside_the_fixed_database_stays_in_doubt with dbname= in the conninfos, a gid in
                                                     DB2 is no one's of this config: left alone

max_prepared_transactions: integration/cluster.sh sets it to 100 on every primary (replicas
copy it with the base backup), so the transactions above can be prepared at all; the first
test checks that pgshard logged no max_prepared_transactions error. The ERROR pgshard logs for
a primary with 0 is not exercised here (it needs a server restarted with that setting).

Each test starts a pgshard of its own (robustlib.Proxy: the cluster's pgshard.ini with
recovery_interval = 500 and recovery_grace set per test) on ports REC_PORT_BASE..
(default PGSHARD_PORT+30..+39), makes rec_items on shards 0 and 1 and drops it at the end,
and removes what it prepared or recorded (gids of a random instance of its own). The
pgshard's log must show what it did. Needs the env of a running cluster.sh cluster
(`. DIR/env.sh`) and PGSHARD_BIN (defaults to build-asan/pgshard). Run:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_recovery.py [TEST ...]
Output: "ok NAME" / "FAIL NAME: why" per test, then exactly "N passed, N failed".
"""

import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402

import robustlib as rl  # noqa: E402
from robustlib import Failure, Proxy, check, eq  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("REC_TEST_TIMEOUT", "90"))
PORT_BASE = int(os.environ.get("REC_PORT_BASE", rl.MAIN_PORT + 30))
INSTANCE = "%016x" % random.getrandbits(64)
PREFIX = "pgshard:%s:" % INSTANCE
FAST = {"recovery_interval": 500, "recovery_grace": 0}
TESTS = []
_ports = [0]


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------------------------------
# the shards, directly


def app(shard):
    """An autocommit connection to a shard's primary as the app user."""
    return rl.pg(rl.SHARD_PORTS[shard])


def q(shard, sql, args=None):
    c = app(shard)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


_n = [0]


def gid(decider):
    _n[0] += 1
    return "%s%d:%x" % (PREFIX, decider, _n[0])


def prepare(shard, g, row_id):
    """What a writer of the commit path leaves after PREPARE TRANSACTION: a row inserted."""
    c = app(shard)
    try:
        with c.cursor() as cur:
            cur.execute("begin")
            cur.execute("insert into rec_items values (%s, %s)", (row_id, g))
            cur.execute("prepare transaction %s", (g,))
    finally:
        c.close()


def record(shard, g, committed):
    q(shard, "insert into pgshard.decisions (gid, committed) values (%s, %s)", (g, committed))


def decision(shard, g):
    return q(shard, "select committed from pgshard.decisions where gid = %s", (g,))


def prepared(shard):
    return [r[0] for r in q(shard, "select gid from pg_prepared_xacts where gid like %s"
                                   " and database = current_database() order by gid",
                            (PREFIX + "%",))]


def rows(shard):
    return [r[0] for r in q(shard, "select id from rec_items order by id")]


def wait_for(what, cond, secs=10.0, proxy=None):
    deadline = time.time() + secs
    while True:
        got = cond()
        if got:
            return got
        if time.time() > deadline:
            raise Failure("%s: not within %.0f s%s" % (what, secs, "; pgshard log: " +
                                                       proxy.log_tail(8) if proxy else ""))
        time.sleep(0.1)


def decision_table_everywhere():
    return all(q(s, "select to_regclass('pgshard.decisions') is not null")[0][0]
               for s in range(len(rl.SHARD_PORTS)))


def leftovers():
    """Whatever a test of this run left: its prepared transactions, records and tables."""
    for s in range(len(rl.SHARD_PORTS)):
        try:
            for g in prepared(s):
                try:
                    q(s, "rollback prepared %s", (g,))
                except psycopg2.Error:
                    pass  # finished meanwhile
            if q(s, "select to_regclass('pgshard.decisions') is not null")[0][0]:
                q(s, "delete from pgshard.decisions where gid like %s", (PREFIX + "%",))
            q(s, "drop table if exists rec_items")
        except psycopg2.Error as e:
            print("  (cleanup on shard %d: %s)" % (s, str(e).strip()), flush=True)


class Items:
    """rec_items on shards 0 and 1, dropped at the end."""

    def __enter__(self):
        for s in (0, 1):
            q(s, "drop table if exists rec_items")
            q(s, "create table rec_items (id int primary key, v text)")
        return self

    def __exit__(self, *a):
        leftovers()
        return False


class RecoveryProxy(Proxy):
    """A pgshard of its own that shows its recovery log lines when it stops."""

    def stop(self):
        if self.proc is not None:
            for line in self.log_text().splitlines():
                if "recovery:" in line:
                    print("  [%s] %s" % (self.name, line.split(" ", 2)[-1]), flush=True)
        return super().stop()


def proxy(name, settings):
    port = PORT_BASE + _ports[0] % 10
    _ports[0] += 1
    return RecoveryProxy(name, settings, port=port, extra_ini="")


def logged(p, text):
    return text in p.log_text()


# ---------------------------------------------------------------------------------------
# tests


@test
def decision_table_made_at_start_up_on_every_primary():
    with proxy("rec_setup", FAST) as p:
        wait_for("pgshard.decisions on every primary", decision_table_everywhere, proxy=p)
        cols = q(1, "select attname, format_type(atttypid, atttypmod) from pg_attribute"
                    " where attrelid = 'pgshard.decisions'::regclass and attnum > 0"
                    " order by attnum")
        eq(cols, [("gid", "text"), ("committed", "boolean"),
                  ("decided_at", "timestamp with time zone")], "columns of pgshard.decisions")
        time.sleep(1)  # a round or two
        check(not logged(p, "max_prepared_transactions"),
              "cluster.sh sets max_prepared_transactions = 100, yet: %s" % p.log_tail(5))
        check("recovery: cannot" not in p.log_text(), "recovery trouble: %s" % p.log_tail(5))
        p.healthy()


@test
def committed_decision_commits_at_start_up():
    """(a) The commit path's decider committed (its record says so) and the pgshard died before
    COMMIT PREPARED on shard 1: a pgshard started afterwards commits it."""
    with Items():
        if not decision_table_everywhere():
            with proxy("rec_table", FAST) as p:
                wait_for("pgshard.decisions on every primary", decision_table_everywhere, proxy=p)
        g = gid(0)
        record(0, g, True)
        prepare(1, g, 1)
        eq(prepared(1), [g], "prepared on shard 1 before pgshard starts")
        eq(rows(1), [], "the prepared row is not visible yet")
        with proxy("rec_commit", FAST) as p:
            wait_for("the prepared transaction finished", lambda: prepared(1) == [], proxy=p)
            eq(rows(1), [1], "the row of the committed transaction on shard 1")
            eq(decision(0, g), [(True,)], "the decision record is unchanged")
            wait_for("the log says so", lambda: logged(
                p, "recovery: committed %s on shard 1 (decided on shard 0)" % g), proxy=p)
            p.healthy()


@test
def no_decision_rolls_back_and_leaves_a_tombstone():
    """(b) No record on the decider: its transaction never committed (the pgshard died before
    COMMIT there); recovery writes a tombstone and rolls the prepared transaction back."""
    with Items():
        with proxy("rec_rollback", FAST) as p:
            wait_for("pgshard.decisions on every primary", decision_table_everywhere, proxy=p)
            g = gid(0)
            prepare(1, g, 2)
            wait_for("the prepared transaction finished", lambda: prepared(1) == [], proxy=p)
            eq(rows(1), [], "the row of the rolled back transaction is gone")
            eq(decision(0, g), [(False,)], "a tombstone on the decider")
            wait_for("the log says so", lambda: logged(
                p, "recovery: rolled back %s on shard 1" % g), proxy=p)
            # the tombstone keeps a late commit from happening: the record cannot go in
            try:
                record(0, g, True)
                raise Failure("a decision record went in over the tombstone")
            except psycopg2.IntegrityError:
                pass
            p.healthy()


@test
def open_decider_transaction_is_waited_for():
    """(c) A live pgshard between its PREPARE on shard 1 and its COMMIT on the decider: the
    record is written but not committed. Recovery must not roll back (the tombstone waits for
    the record's transaction and gives up at the lock_timeout, round after round); once the
    decider commits, recovery commits the prepared transaction."""
    with Items():
        with proxy("rec_open", FAST) as p:
            wait_for("pgshard.decisions on every primary", decision_table_everywhere, proxy=p)
            g = gid(0)
            d = app(0)
            d.autocommit = False
            try:
                with d.cursor() as cur:
                    cur.execute("insert into rec_items values (30, 'decider')")
                    cur.execute("insert into pgshard.decisions (gid, committed)"
                                " values (%s, true)", (g,))
                prepare(1, g, 3)
                wait_for("the log says it waits", lambda: logged(
                    p, "%s stays prepared on shard 1: its decider shard 0 still has the"
                       " transaction open" % g), proxy=p)
                time.sleep(5)  # two more rounds at least (each waits 2 s for the lock)
                eq(prepared(1), [g], "still prepared while the decider's transaction is open")
                eq(rows(1), [], "its row is not visible yet")
                eq(decision(0, g), [], "no tombstone went in")
                check(("rolled back " + g) not in p.log_text(), "rolled back: " + p.log_tail(5))
                d.commit()
            finally:
                d.close()
            wait_for("the prepared transaction finished", lambda: prepared(1) == [], secs=15,
                     proxy=p)
            eq(rows(1), [3], "the row on shard 1, committed")
            eq(rows(0), [30], "the decider's own row, committed")
            eq(decision(0, g), [(True,)], "the decision record")
            wait_for("the log says so", lambda: logged(
                p, "recovery: committed %s on shard 1 (decided on shard 0)" % g), proxy=p)
            p.healthy()


@test
def young_prepared_transaction_is_left_alone():
    """(d) A prepared transaction younger than recovery_grace may belong to a live pgshard that
    has not written its record yet: it is left alone (no tombstone); a pgshard without grace
    then rolls it back."""
    with Items():
        g = gid(0)
        with proxy("rec_grace", {"recovery_interval": 500, "recovery_grace": 60000}) as p:
            wait_for("pgshard.decisions on every primary", decision_table_everywhere, proxy=p)
            prepare(1, g, 4)
            time.sleep(3)  # six rounds
            eq(prepared(1), [g], "still prepared within recovery_grace")
            eq(decision(0, g), [], "no tombstone for a transaction within the grace")
            check(g not in p.log_text(), "the log mentions it: " + p.log_tail(5))
            p.healthy()
        with proxy("rec_no_grace", FAST) as p:
            wait_for("rolled back without grace", lambda: prepared(1) == [], proxy=p)
            eq(decision(0, g), [(False,)], "a tombstone")
            p.healthy()


@test
def cleanup_deletes_only_old_records_nothing_holds():
    """Records older than 600 s that no shard lists as prepared are deleted; a record whose gid
    is still prepared somewhere, or a recent one, stays."""
    with Items():
        with proxy("rec_table", FAST) as p:
            wait_for("pgshard.decisions on every primary", decision_table_everywhere, proxy=p)
        old_done, old_held, recent = gid(0), gid(0), gid(0)
        for g in (old_done, old_held):
            q(0, "insert into pgshard.decisions values (%s, true, now() - interval '700 s')",
              (g,))
        record(0, recent, True)
        prepare(1, old_held, 5)  # young: the grace below keeps it prepared, so listed
        with proxy("rec_clean", {"recovery_interval": 500, "recovery_grace": 60000}) as p:
            wait_for("the old record nothing holds is deleted",
                     lambda: decision(0, old_done) == [], proxy=p)
            time.sleep(1.5)  # more rounds
            eq(decision(0, old_held), [(True,)], "the old record of a gid still prepared")
            eq(decision(0, recent), [(True,)], "the recent record")
            eq(prepared(1), [old_held], "still prepared (within the grace)")
            p.healthy()


# ---------------------------------------------------------------------------------------
# another database: prepared transactions of clients logged in to it


DB2 = os.environ.get("REC_DB2", "rec_app2")
REC_ACC = """
[table.rec_acc]
key = id
map = users
"""
RECOVERY = {"recovery_interval": 300, "recovery_grace": 0}


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


class ClientDbProxy(RecoveryProxy):
    """A pgshard whose conninfos leave the database to the client (no dbname=): a client
    logged in to DB2 works in DB2 on every shard, and its two-phase commits prepare there and
    record their decisions in DB2's pgshard.decisions on the decider. With dbname= in the
    conninfo every client would work in that one database, whatever it logged in to."""

    def __init__(self, name, settings=None):
        port = PORT_BASE + _ports[0] % 10
        _ports[0] += 1
        super().__init__(name, settings, port=port, extra_ini=REC_ACC)
        with open(self.ini) as f:
            text = f.read()
        with open(self.ini, "w") as f:
            f.write(re.sub(r"^((?:primary|replica)\s*=.*?)\s+dbname=\S+", r"\1", text,
                           flags=re.M))


def su_db2(shard):
    return rl.su(shard, DB2)


def q2(shard, sql, args=None):
    """sql as the app user in DB2 on a shard's primary."""
    c = psycopg2.connect(host=rl.HOST, port=rl.SHARD_PORTS[shard], dbname=DB2,
                         user=os.environ.get("PGUSER", "app"),
                         password=os.environ.get("PGPASSWORD", "app-secret"), connect_timeout=10)
    c.autocommit = True
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def prepared_in_db2():
    """pgshard's prepared transactions in DB2, per shard."""
    return [[g for (g,) in rows] for rows in rl.on_shards(
        "select gid from pg_prepared_xacts where database = %s and gid like 'pgshard:%%'"
        " order by gid", (DB2,))]


def recovery_sessions_in_db2():
    return sum(rows[0][0] for rows in rl.on_shards(
        "select count(*) from pg_stat_activity where datname = %s"
        " and application_name = 'pgshard recovery'", (DB2,)))


def drop_db2():
    for s in range(len(rl.SHARD_PORTS)):
        c = rl.su(s, "postgres")
        try:
            with c.cursor() as cur:
                cur.execute("select 1 from pg_database where datname = %s", (DB2,))
                if not cur.fetchall():
                    continue
                cur.execute("alter database %s allow_connections true" % DB2)
                cur.execute("grant connect on database %s to app" % DB2)
                # a prepared transaction keeps its database from being dropped
                cur.execute("select gid from pg_prepared_xacts where database = %s", (DB2,))
                gids = [g for (g,) in cur.fetchall()]
            if gids:
                d = su_db2(s)
                try:
                    with d.cursor() as dc:
                        for g in gids:
                            try:
                                dc.execute("rollback prepared %s", (g,))
                            except psycopg2.Error:
                                pass  # finished meanwhile
                finally:
                    d.close()
            with c.cursor() as cur:
                cur.execute("select pg_terminate_backend(pid) from pg_stat_activity"
                            " where datname = %s and pid <> pg_backend_pid()", (DB2,))
                cur.execute("drop database if exists %s (force)" % DB2)
        finally:
            c.close()


class SecondDatabase:
    """DB2 on every shard (owned by app, made as superuser: CREATE DATABASE cannot run in a
    transaction), with rec_acc (id bigint key, bal int) holding 100 for each key given on the
    shard the map places it; dropped at the end with whatever is left prepared in it."""

    def __init__(self, keys):
        self.keys = keys

    def __enter__(self):
        drop_db2()
        for s in range(len(rl.SHARD_PORTS)):
            c = rl.su(s, "postgres")
            try:
                with c.cursor() as cur:
                    cur.execute("create database %s owner app" % DB2)
            finally:
                c.close()
            q2(s, "create table rec_acc (id bigint primary key, bal int not null)")
        for k in self.keys:
            q2(rl.shard_of("users", k), "insert into rec_acc values (%s, 100)", (k,))
        return self

    def __exit__(self, *a):
        drop_db2()
        return False


def balances2(keys):
    out = {}
    for k in keys:
        got = q2(rl.shard_of("users", k), "select bal from rec_acc where id = %s", (k,))
        out[k] = got[0][0] if got else None
    return out


def decisions2(shard):
    """DB2's decision records on a shard; None when DB2 has no decision table there."""
    if not q2(shard, "select to_regclass('pgshard.decisions') is not null")[0][0]:
        return None
    return [c for (c,) in q2(shard, "select committed from pgshard.decisions"
                                    " order by decided_at")]


def transfer_in_db2_through_dying_proxy(step, k0, k1):
    """BEGIN; move 10 from k0 to k1; COMMIT through a pgshard logged in to DB2 that kills
    itself (SIGKILL) after `step` of its two-phase commit; returns what the client saw."""
    with Env(PGSHARD_DEBUG_COMMIT_CRASH=step):
        p = ClientDbProxy("rec_db2_dies_" + step).start()
    try:
        r = rl.RawAt(p.port, timeout=10)
        try:
            eq(r.startup(database=DB2), b"I", "login to %s through pgshard" % DB2)
            for sql in ("begin", "update rec_acc set bal = bal - 10 where id = %d" % k0,
                        "update rec_acc set bal = bal + 10 where id = %d" % k1):
                rows, tags, err, status = r.simple(sql)
                eq((err, status), (None, "T"), sql)
            rows, tags, err, status = r.simple("commit")
            seen = "answered %r %r" % (err, tags)
        except (rl.Closed, Failure, OSError) as e:
            seen = "connection ended (%s)" % e
        finally:
            r.close()
        deadline = time.time() + 10
        while p.alive() and time.time() < deadline:
            time.sleep(0.05)
        check(not p.alive(), "pgshard did not die after step %s (client: %s)" % (step, seen))
    finally:
        p.stop()
    check("connection ended" in seen, "the client's COMMIT: %s" % seen)
    return seen


def wait_db2_resolved(p, secs=20):
    wait_for("nothing prepared in %s" % DB2,
             lambda: prepared_in_db2() == [[]] * len(rl.SHARD_PORTS), secs=secs, proxy=p)


@test
def pgshard_killed_after_prepare_in_another_database_is_rolled_back_there():
    """A pgshard logged in to DB2 dies after PREPARE (its decider transaction, which made
    DB2's decision table, rolls back with its connection): another pgshard finds the prepared
    transaction in DB2, asks the decider in DB2 (making the table there for the tombstone) and
    rolls it back in DB2."""
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with SecondDatabase([k0, k1]):
        transfer_in_db2_through_dying_proxy("prepared", k0, k1)
        held = prepared_in_db2()[1]
        check(held != [], "shard 1 holds the transaction prepared in %s" % DB2)
        eq(decisions2(0), None, "no decision table in %s on shard 0 (its making rolled back)"
           % DB2)
        with ClientDbProxy("rec_db2_rollback", RECOVERY) as p:
            wait_db2_resolved(p)
            eq(balances2([k0, k1]), {k0: 100, k1: 100}, "nothing of the transfer stays")
            eq(decisions2(0), [False], "the tombstone in %s's decision table on shard 0" % DB2)
            check(("in database %s" % DB2) in p.log_text() and "rolled back" in p.log_text(),
                  "the log says so: " + p.log_tail(5))
            wait_for("recovery's connections to %s closed" % DB2,
                     lambda: recovery_sessions_in_db2() == 0, proxy=p)
            p.healthy()
        if q(0, "select to_regclass('pgshard.decisions') is not null")[0][0]:
            eq(q(0, "select count(*) from pgshard.decisions where gid = %s", (held[0],)),
               [(0,)], "nothing was written for it in the conninfo's database")


@test
def pgshard_killed_after_the_decision_in_another_database_is_committed_there():
    """A pgshard logged in to DB2 dies once its decider committed (the record is in DB2's
    pgshard.decisions on shard 0): another pgshard commits the prepared part in DB2."""
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with SecondDatabase([k0, k1]):
        transfer_in_db2_through_dying_proxy("decided", k0, k1)
        eq(balances2([k0, k1])[k0], 90, "the decider committed before pgshard died")
        check(prepared_in_db2()[1] != [], "shard 1 holds the transaction prepared in %s" % DB2)
        with ClientDbProxy("rec_db2_commit", RECOVERY) as p:
            wait_db2_resolved(p)
            eq(balances2([k0, k1]), {k0: 90, k1: 110}, "the whole transfer")
            eq(decisions2(0), [True], "the decision record in %s on shard 0" % DB2)
            wait_for("the log says so", lambda: logged(
                p, "(decided on shard 0) in database %s" % DB2), proxy=p)
            wait_for("recovery's connections to %s closed" % DB2,
                     lambda: recovery_sessions_in_db2() == 0, proxy=p)
            p.healthy()


@test
def a_database_recovery_cannot_log_in_to_stays_in_doubt():
    """When the conninfo's user may not connect to the database a transaction was prepared in,
    recovery says so in the log and leaves it prepared (nothing guessed, no decision written);
    once it may connect again, the transaction is finished."""
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with SecondDatabase([k0, k1]):
        transfer_in_db2_through_dying_proxy("decided", k0, k1)
        held = prepared_in_db2()[1]
        check(held != [], "shard 1 holds the transaction prepared in %s" % DB2)
        for s in (0, 1):
            c = rl.su(s, "postgres")
            try:
                with c.cursor() as cur:
                    cur.execute("alter database %s allow_connections false" % DB2)
            finally:
                c.close()
        with ClientDbProxy("rec_db2_no_login", RECOVERY) as p:
            wait_for("the log says it cannot log in", lambda: logged(
                p, "cannot log in to database %s of shard 0 as app" % DB2), proxy=p)
            check(any(held[0] in line and "stays prepared" in line
                      for line in p.log_text().splitlines()
                      if "cannot log in to database %s" % DB2 in line),
                  "the gid is named as in doubt: " + p.log_tail(5))
            time.sleep(1.5)  # several rounds
            eq(prepared_in_db2()[1], held, "still prepared")
            check("committed " + held[0] not in p.log_text(), "committed: " + p.log_tail(5))
            for s in (0, 1):
                c = rl.su(s, "postgres")
                try:
                    with c.cursor() as cur:
                        cur.execute("alter database %s allow_connections true" % DB2)
                finally:
                    c.close()
            wait_db2_resolved(p)
            eq(balances2([k0, k1]), {k0: 90, k1: 110}, "the whole transfer, once it may log in")
            p.healthy()


@test
def cleanup_in_a_clients_database_deletes_only_old_records_nothing_holds():
    """A conninfo without dbname: the decision records of DB2 (written by its clients'
    commits) are cleaned up too, one database per round in turn, by the same rule as in the
    conninfo's database."""
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with SecondDatabase([k0, k1]):
        old_done, old_held, recent = gid(0), gid(0), gid(0)
        q2(0, "create schema pgshard; create table pgshard.decisions (gid text primary key,"
              " committed bool not null, decided_at timestamptz not null"
              " default clock_timestamp())")
        for g in (old_done, old_held):
            q2(0, "insert into pgshard.decisions values (%s, true, now() - interval '700 s')",
               (g,))
        q2(0, "insert into pgshard.decisions (gid, committed) values (%s, true)", (recent,))
        c = psycopg2.connect(host=rl.HOST, port=rl.SHARD_PORTS[1], dbname=DB2, user="app",
                             password=os.environ.get("PGPASSWORD", "app-secret"))
        try:
            with c.cursor() as cur:
                cur.execute("insert into rec_acc values (-5, 1)")
                cur.execute("prepare transaction %s", (old_held,))
            c.commit()
        finally:
            c.close()
        with ClientDbProxy("rec_db2_clean", {"recovery_interval": 300,
                                             "recovery_grace": 60000}) as p:
            wait_for("the old record nothing holds is deleted in %s" % DB2, lambda: q2(
                0, "select count(*) from pgshard.decisions where gid = %s", (old_done,))
                == [(0,)], secs=15, proxy=p)
            time.sleep(2)  # more rounds, each database cleaned again
            eq(q2(0, "select gid from pgshard.decisions order by gid"),
               sorted([(old_held,), (recent,)]), "the record still prepared and the recent one")
            eq(prepared_in_db2()[1], [old_held], "still prepared (within the grace)")
            wait_for("recovery's connections to %s closed" % DB2,
                     lambda: recovery_sessions_in_db2() == 0, proxy=p)
            p.healthy()


@test
def prepared_outside_the_fixed_database_stays_in_doubt():
    """With dbname= in the conninfos (the cluster's config) no pgshard of this config prepares
    anywhere else: a pgshard transaction prepared in DB2 was made under another config, and
    where its decision is cannot be known. Recovery lists it, says so, and leaves it prepared:
    no tombstone in the conninfo's database, no ROLLBACK."""
    with SecondDatabase([]):
        g = gid(0)
        c = psycopg2.connect(host=rl.HOST, port=rl.SHARD_PORTS[1], dbname=DB2, user="app",
                             password=os.environ.get("PGPASSWORD", "app-secret"))
        try:
            with c.cursor() as cur:
                cur.execute("insert into rec_acc values (-6, 1)")
                cur.execute("prepare transaction %s", (g,))
            c.commit()
        finally:
            c.close()
        with proxy("rec_db2_unknown", FAST) as p:
            wait_for("the log says it stays prepared", lambda: logged(
                p, "%s stays prepared on shard 1: shard 1's conninfo fixes dbname=" % g),
                proxy=p)
            time.sleep(1)  # more rounds
            eq(prepared_in_db2()[1], [g], "still prepared")
            eq(decision(0, g), [], "no tombstone in the conninfo's database")
            check(("rolled back " + g) not in p.log_text(), "rolled back: " + p.log_tail(5))
            p.healthy()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, after_each=leftovers, min_shards=2)
