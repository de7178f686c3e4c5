#!/usr/bin/python3
"""Distributed deadlock detection, against real shards: two transactions that wait for each
other across shards (A holds a row on shard 0 and waits for one on shard 1, B the reverse)
end with 40P01 for one of them within a few seconds, as one PostgreSQL would end a local
deadlock; a wait that is no cycle, and a deadlock inside one shard (PostgreSQL's own), are
left alone; deadlock_interval = 0 turns detection off.

Each test runs its own pgshard (robustlib.Proxy) on the cluster's config with the table
dl_acc (id bigint key, bal int) sharded on map users, made directly on every shard, and
talks to it over raw protocol connections, one thread per waiting statement.

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_deadlock.py [TEST ...]
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402
from robustlib import Failure, Proxy, check, eq, login  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("DEADLOCK_TEST_TIMEOUT", "120"))
TESTS = []

TABLES = rl.TABLE_SECTIONS + """
[table.dl_acc]
key = id
map = users
"""

# "within a few seconds": two rounds of 1 s, the janitor's snapshot (1 s), slack for ASan
DETECT_WITHIN = 8.0


def test(fn):
    TESTS.append(fn)
    return fn


class Accounts:
    """dl_acc on every shard, one account of balance 100 per key given; dropped at exit."""

    def __init__(self, keys):
        self.keys = keys
        rl.as_app_on_shards("drop table if exists dl_acc")
        rl.as_app_on_shards("create table dl_acc (id bigint primary key, bal int not null)")
        for k in keys:
            run_on(rl.shard_of("users", k), "insert into dl_acc values (%d, 100)" % k)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        rl.as_app_on_shards("drop table if exists dl_acc")
        return False


def run_on(shard, sql):
    c = rl.pg(rl.SHARD_PORTS[shard])
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def balances(keys):
    out = {}
    for k in keys:
        rows = run_on(rl.shard_of("users", k), "select bal from dl_acc where id = %d" % k)
        out[k] = rows[0][0] if rows else None
    return out


def ok(r, sql):
    rows, tags, err, status = r.simple(sql)
    eq(err, None, sql)
    return rows, tags, status


def add(k, d):
    return "update dl_acc set bal = bal + %d where id = %d" % (d, k)


class Waiting:
    """A statement run in a thread of its own: it may wait for a lock."""

    def __init__(self, r, sql):
        self.r, self.sql = r, sql
        self.result = self.error = None
        self.started = time.time()
        self.ended = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            self.result = self.r.simple(self.sql)
        except BaseException as e:  # noqa: BLE001
            self.error = e
        self.ended = time.time()

    def done(self):
        return not self.t.is_alive()

    def wait(self, secs):
        self.t.join(secs)
        if self.error is not None:
            raise Failure("%s: %s" % (self.sql, self.error))
        return self.done()

    def err(self):
        return self.result[2] if self.result else None


def first_done(ws, secs):
    """Wait until one of ws is done, or secs pass. The one done, or None."""
    deadline = time.time() + secs
    while time.time() < deadline:
        for w in ws:
            if w.done():
                return w
        time.sleep(0.05)
    return None


def shard_waits():
    """Backends waiting for a lock, per shard."""
    return [n for [(n,)] in rl.on_shards(
        "select count(*) from pg_stat_activity where wait_event_type = 'Lock'")]


def wait_for_waits(n, secs=5.0):
    deadline = time.time() + secs
    while time.time() < deadline:
        if sum(shard_waits()) >= n:
            return
        time.sleep(0.05)
    raise Failure("expected %d lock waits on the shards, see %r" % (n, shard_waits()))


def cycle(p, k0, k1, timeout=30):
    """A and B each update their own row (k0 on shard 0, k1 on shard 1), then the other's:
    A waits for B on shard 1, B for A on shard 0. Returns (a, b, wa, wb)."""
    a = login(p.port, timeout=timeout)
    b = login(p.port, timeout=timeout)
    for r, k, d in ((a, k0, -10), (b, k1, -20)):
        ok(r, "begin")
        ok(r, add(k, d))
    wa = Waiting(a, add(k1, 10))
    wait_for_waits(1)
    wb = Waiting(b, add(k0, 20))
    return a, b, wa, wb


@test
def a_cycle_across_shards_ends_with_40P01_for_one_and_the_other_commits():
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with Accounts([k0, k1]):
        with Proxy("dl_cycle", {"deadlock_interval": "1000"}, extra_ini=TABLES) as p:
            a, b, wa, wb = cycle(p, k0, k1)
            try:
                t0 = time.time()
                victim = first_done([wa, wb], DETECT_WITHIN)
                check(victim is not None,
                      "no 40P01 within %.0f s; log: %s" % (DETECT_WITHIN, p.log_tail(8)))
                took = time.time() - t0
                other = wb if victim is wa else wa
                victim.wait(1)
                err = victim.err()
                check(err is not None, "the first to end got no error: %r" % (victim.result,))
                eq((err.get("C"), err.get("M"), victim.result[3]),
                   ("40P01", "deadlock detected", "E"), "the victim's error and status")
                check("pgshard" in (err.get("D") or "") and "shards 0 and 1" in err.get("D"),
                      "DETAIL names pgshard and the shards: %r" % err.get("D"))
                check(not other.done(), "the other ended too: %r" % (other.result,))
                vr, orr = (a, b) if victim is wa else (b, a)
                rows, tags, err, status = vr.simple("select 1")
                eq((err.get("C") if err else None, status), ("25P02", "E"),
                   "the victim's transaction is failed")
                ok(vr, "rollback")
                check(other.wait(10), "the other's statement still waits after the ROLLBACK")
                eq((other.err(), other.result[3]), (None, "T"), "the other's statement")
                rows, tags, status = ok(orr, "commit")
                eq((tags, status), (["COMMIT"], "I"), "the other's COMMIT")
                # A: k0 -10, k1 +10; B: k1 -20, k0 +20; only the survivor's stays
                want = {k0: 90, k1: 110} if victim is wb else {k0: 120, k1: 80}
                eq(balances([k0, k1]), want, "balances (the victim's changes are gone)")
                eq(sum(shard_waits()), 0, "lock waits left")
                check("deadlock detected across shards" in p.log_text(),
                      "pgshard's log says what it cancelled")
                print("  (40P01 after %.1f s)" % took, flush=True)
            finally:
                a.close()
                b.close()
            p.healthy()


@test
def a_cycle_through_a_statement_on_several_shards_ends_too():
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with Accounts([k0, k1]):
        with Proxy("dl_fanout", {"deadlock_interval": "500"}, extra_ini=TABLES) as p:
            a = login(p.port, timeout=30)
            b = login(p.port, timeout=30)
            try:
                ok(a, "begin")
                ok(a, add(k0, -10))
                ok(b, "begin")
                ok(b, add(k1, -20))
                wa = Waiting(a, add(k1, 10))
                wait_for_waits(1)
                # B's one statement runs on both shards: it waits for A on shard 0
                wb = Waiting(b, "update dl_acc set bal = bal + 1 where id in (%d, %d)" % (k0, k1))
                victim = first_done([wa, wb], DETECT_WITHIN)
                check(victim is not None, "no 40P01 within %.0f s" % DETECT_WITHIN)
                victim.wait(1)
                eq(victim.err().get("C") if victim.err() else victim.result, "40P01",
                   "the victim's error")
                vr, orr = (a, b) if victim is wa else (b, a)
                other = wb if victim is wa else wa
                ok(vr, "rollback")
                check(other.wait(10), "the other's statement still waits after the ROLLBACK")
                eq(other.err(), None, "the other's statement")
                ok(orr, "commit")
            finally:
                a.close()
                b.close()
            p.healthy()


@test
def a_wait_that_is_no_cycle_is_never_cancelled():
    k0, k1, k2 = rl.key_on(0), rl.key_on(1), rl.key_on(2)
    with Accounts([k0, k1, k2]):
        with Proxy("dl_nocycle", {"deadlock_interval": "500"}, extra_ini=TABLES) as p:
            a = login(p.port, timeout=30)
            b = login(p.port, timeout=30)
            try:
                ok(a, "begin")  # A is distributed too: shards 0 and 2
                ok(a, add(k0, -1))
                ok(a, add(k2, 1))
                ok(b, "begin")
                ok(b, add(k1, -5))
                wb = Waiting(b, add(k0, 5))  # B waits for A on shard 0; A waits for nobody
                wait_for_waits(1)
                check(not wb.wait(4.0), "B's wait ended during 8 intervals: %r" % (wb.result,))
                rows, tags, status = ok(a, "commit")
                eq(tags, ["COMMIT"], "A's COMMIT")
                check(wb.wait(10), "B still waits after A's COMMIT")
                eq(wb.err(), None, "B's statement, never cancelled")
                ok(b, "commit")
                eq(balances([k0, k1, k2]), {k0: 104, k1: 95, k2: 101}, "balances")
                check("deadlock detected" not in p.log_text(), "pgshard cancelled something")
            finally:
                a.close()
                b.close()
            p.healthy()


@test
def a_deadlock_inside_one_shard_is_postgresqls():
    ka, kb = rl.key_on(0, 0), rl.key_on(0, 1)
    k1a, k1b = rl.key_on(1, 0), rl.key_on(1, 1)
    with Accounts([ka, kb, k1a, k1b]):
        with Proxy("dl_local", {"deadlock_interval": "300"}, extra_ini=TABLES) as p:
            a = login(p.port, timeout=30)
            b = login(p.port, timeout=30)
            try:
                # both distributed (a row each on shard 1), deadlocked on shard 0 only
                for r, own, mine in ((a, k1a, ka), (b, k1b, kb)):
                    ok(r, "begin")
                    ok(r, add(own, 1))
                    ok(r, add(mine, -1))
                wa = Waiting(a, add(kb, 1))
                wait_for_waits(1)
                wb = Waiting(b, add(ka, 1))
                victim = first_done([wa, wb], 10)
                check(victim is not None, "PostgreSQL did not end the deadlock within 10 s")
                victim.wait(1)
                err = victim.err()
                eq((err.get("C"), err.get("M")) if err else victim.result,
                   ("40P01", "deadlock detected"), "the victim's error")
                check("pgshard" not in (err.get("D") or ""),
                      "the shard's own 40P01, not pgshard's: %r" % err.get("D"))
                vr, orr = (a, b) if victim is wa else (b, a)
                other = wb if victim is wa else wa
                ok(vr, "rollback")
                check(other.wait(10), "the other still waits")
                eq(other.err(), None, "the other's statement")
                ok(orr, "commit")
                check("deadlock detected across shards" not in p.log_text(),
                      "pgshard cancelled something itself")
            finally:
                a.close()
                b.close()
            p.healthy()


@test
def deadlock_interval_0_leaves_detection_off():
    k0, k1 = rl.key_on(0), rl.key_on(1)
    with Accounts([k0, k1]):
        with Proxy("dl_off", {"deadlock_interval": "0"}, extra_ini=TABLES) as p:
            a = login(p.port, timeout=30)
            b = login(p.port, timeout=30)
            try:
                # the test ends the cycle itself: each statement times out after 6 s
                for r in (a, b):
                    ok(r, "set statement_timeout = 6000")
                for r, k, d in ((a, k0, -10), (b, k1, -20)):
                    ok(r, "begin")
                    ok(r, add(k, d))
                wa = Waiting(a, add(k1, 10))
                wait_for_waits(1)
                wb = Waiting(b, add(k0, 20))
                wait_for_waits(2)
                check(first_done([wa, wb], 4.0) is None,
                      "the cycle was broken with detection off: %r %r" % (wa.result, wb.result))
                check(wa.wait(10) and wb.wait(10), "statement_timeout did not end the waits")
                for w in (wa, wb):
                    err = w.err()
                    eq(err.get("C") if err else w.result, "57014",
                       "a statement_timeout stays 57014")
                ok(a, "rollback")
                ok(b, "rollback")
                eq(balances([k0, k1]), {k0: 100, k1: 100}, "balances")
                check("deadlock detected" not in p.log_text(), "pgshard cancelled something")
            finally:
                a.close()
                b.close()
            p.healthy()


def run(selected):
    return rl.run_tests(TESTS, selected, TEST_TIMEOUT)


if __name__ == "__main__":
    missing = [v for v in ("PGSHARD_DIR", "SHARD_PORTS", "PGSHARD_SOCKDIR", "PGSHARD_DATA")
               if not os.environ.get(v)]
    if missing:
        print("FAIL setup: %s not set (source the cluster's env.sh)" % ", ".join(missing))
        print("0 passed, 1 failed")
        sys.exit(1)
    sys.exit(run(set(sys.argv[1:])))
