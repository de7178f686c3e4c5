#!/usr/bin/env python3
"""Replica reads (issue 12) against the cluster's real streaming replicas, through pgshard
instances of the test's own with replica_reads on: with replay paused on every replica, sessions
that write then read see their writes and never a value going back; sessions that did not write
read from replicas (pg_is_in_recovery() through pgshard); a causal token carried to another
connection forces a fresh read; a replica over max_replica_lag_time gets no reads until replay
resumes; a stopped replica costs no read an error.

Needs a cluster.sh cluster with at least one replica per shard (env.sh in the environment)."""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psycopg2  # noqa: E402

import robustlib as rl  # noqa: E402
from robustlib import Proxy, check, eq  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("REPLICAS_TEST_TIMEOUT", "240"))
TESTS = []
N_KEYS = 40

RR_TABLE = """
[table.rr_items]
key = id
map = users
"""

# long limits: replay stays paused for a while and lag must not move reads away
PAUSED_SETTINGS = {"replica_reads": "on", "max_replica_lag": "1GB",
                   "max_replica_lag_time": "3600000", "replica_check_interval": "50"}


def test(fn):
    TESTS.append(fn)
    return fn


def replica_su(shard):
    c = psycopg2.connect(host=rl.SOCKDIR, port=rl.SHARD_PORTS[shard] + 1, user="postgres",
                         dbname="app", connect_timeout=10)
    c.autocommit = True
    return c


def set_replay(paused):
    for i in range(len(rl.SHARD_PORTS)):
        c = replica_su(i)
        try:
            with c.cursor() as cur:
                cur.execute("select pg_wal_replay_pause()" if paused
                            else "select pg_wal_replay_resume()")
        finally:
            c.close()


def replicas_caught_up(secs=30):
    """Every replica streams and has replayed its primary's current position (robustlib's
    wait_replicas also passes while a replica is not connected)."""
    want = int(os.environ.get("PGSHARD_REPLICAS", "1"))

    def ok():
        rows = rl.on_shards("select count(*), coalesce(bool_and(replay_lsn >= "
                            "pg_current_wal_lsn()), false) from pg_stat_replication "
                            "where state = 'streaming'")
        return all(r[0][0] >= want and r[0][1] for r in rows)

    wait_for("replicas streaming and caught up", ok, secs)


def fresh_table():
    set_replay(False)  # a run killed while replay was paused leaves it paused
    rl.as_app_on_shards("drop table if exists rr_items; "
                        "create table rr_items (id bigint primary key, v bigint not null)")
    for i in range(len(rl.SHARD_PORTS)):
        c = rl.pg(rl.SHARD_PORTS[i])
        try:
            with c.cursor() as cur:
                cur.execute("insert into rr_items select g, 0 from generate_series(1, %s) g",
                            (N_KEYS,))
        finally:
            c.close()
    replicas_caught_up()


def wait_for(what, fn, secs=20):
    deadline = time.time() + secs
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.05)
    raise rl.Failure("timed out waiting for: %s" % what)


def read(cur, key):
    cur.execute("select v, pg_is_in_recovery() from rr_items where id = %s", (key,))
    return cur.fetchone()


@test
def test_write_then_read_never_stale_with_replay_paused():
    fresh_table()
    with Proxy("rr_ryw", PAUSED_SETTINGS, extra_ini=RR_TABLE) as p:
        time.sleep(0.5)  # the checks have the replicas' positions
        set_replay(True)
        try:
            errors, stale, on_replica = [], [], [0]
            lock = threading.Lock()

            def session(t):
                try:
                    c = rl.pg(p.port)
                    cur = c.cursor()
                    seen = {}
                    for i in range(125):
                        key = 1 + (t * 5 + i % 5) % N_KEYS
                        cur.execute("update rr_items set v = v + 1 where id = %s returning v",
                                    (key,))
                        wrote = cur.fetchone()[0]
                        v, rec = read(cur, key)
                        if v < wrote or v < seen.get(key, 0):
                            with lock:
                                stale.append((t, key, wrote, v))
                        seen[key] = v
                        # a key this session does not write: its value never goes back
                        other = 1 + (t * 5 + 7) % N_KEYS
                        v2, rec2 = read(cur, other)
                        if v2 < seen.get(other, 0):
                            with lock:
                                stale.append((t, other, seen[other], v2))
                        seen[other] = v2
                        if rec2:
                            with lock:
                                on_replica[0] += 1
                    c.close()
                except Exception as e:  # noqa: BLE001
                    with lock:
                        errors.append(repr(e))

            threads = [threading.Thread(target=session, args=(t,)) for t in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            eq(errors, [], "session errors")
            eq(stale, [], "stale reads (thread, key, written or seen, read)")
            # sessions that did not write: they read replicas, which show the old state
            c = rl.pg(p.port)
            cur = c.cursor()
            replica_reads = 0
            for key in range(1, N_KEYS + 1):
                v, rec = read(cur, key)
                replica_reads += 1 if rec else 0
                if rec:
                    eq(v, 0, "a paused replica's value of key %d" % key)
            c.close()
            check(replica_reads == N_KEYS,
                  "reads of a session that did not write on replicas: %d of %d"
                  % (replica_reads, N_KEYS))
        finally:
            set_replay(False)
        # with replay running, reads of a new session go to replicas and see the writes
        replicas_caught_up()
        c = rl.pg(p.port)
        cur = c.cursor()
        recs = 0
        for _ in range(3):
            for key in range(1, N_KEYS + 1):
                v, rec = read(cur, key)
                recs += 1 if rec else 0
        c.close()
        check(recs >= 3 * N_KEYS * 9 // 10, "reads on replicas with replay running: %d of %d"
              % (recs, 3 * N_KEYS))


def concurrent_reads(port, sessions, reads):
    """sessions threads, each `reads` reads of keys on every shard: (on replicas, on
    primaries, errors)."""
    counts, errors, lock = [0, 0], [], threading.Lock()

    def session(t):
        try:
            c = rl.pg(port)
            cur = c.cursor()
            for i in range(reads):
                _, rec = read(cur, 1 + (t * 7 + i) % N_KEYS)
                with lock:
                    counts[0 if rec else 1] += 1
            c.close()
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=session, args=(t,)) for t in range(sessions)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return counts[0], counts[1], errors


@test
def test_reads_that_wait_for_a_replica_server_run_on_the_replica():
    """One server per node for 8 sessions: most reads wait for the replica's pool, and the
    server it hands over serves them (once, such a read went to the primary instead, and the
    session then stayed there)."""
    fresh_table()
    with Proxy("rr_wait", dict(PAUSED_SETTINGS, pool_size="1"), extra_ini=RR_TABLE) as p:
        time.sleep(0.5)
        on_replica, on_primary, errors = concurrent_reads(p.port, 8, 150)
        eq(errors, [], "session errors")
        eq(on_primary, 0, "reads on a primary (%d on replicas)" % on_replica)


@test
def test_with_primary_spreads_reads_over_primaries_and_replicas():
    fresh_table()
    with Proxy("rr_with_primary", dict(PAUSED_SETTINGS, replica_reads="with_primary"),
               extra_ini=RR_TABLE) as p:
        time.sleep(0.5)
        on_replica, on_primary, errors = concurrent_reads(p.port, 8, 150)
        eq(errors, [], "session errors")
        total = on_replica + on_primary
        check(on_replica >= total * 15 // 100 and on_primary >= total * 15 // 100,
              "reads on replicas %d, on primaries %d: both should have a fair share"
              % (on_replica, on_primary))


@test
def test_a_busy_session_reads_from_replicas_soon_after_its_write():
    """After a write, pgshard asks the primary's position on the same server connection, so
    the session's reads go back to replicas as soon as they have replayed it, even when the
    session reads without pause (each read on the primary would otherwise renew what the
    checks must bound first, and keep the session there)."""
    fresh_table()
    with Proxy("rr_busy", dict(PAUSED_SETTINGS, pool_size="2"), extra_ini=RR_TABLE) as p:
        time.sleep(0.5)
        c = rl.pg(p.port)
        cur = c.cursor()
        for key in range(1, N_KEYS + 1):
            cur.execute("update rr_items set v = 7 where id = %s", (key,))
        deadline, reads, late = time.time() + 3, 0, []
        while time.time() < deadline:
            key = 1 + reads % N_KEYS
            v, rec = read(cur, key)
            eq(v, 7, "key %d after the session's write" % key)
            reads += 1
            if time.time() > deadline - 1:
                late.append(rec)
        c.close()
        check(len(late) > 50 and sum(late) >= len(late) * 9 // 10,
              "reads on replicas in the last second: %d of %d" % (sum(late), len(late)))


def node_statements(port):
    """{role: statements} from the console's SHOW STATS (the app user is the admin)."""
    c = psycopg2.connect(host=rl.HOST, port=port, user=os.environ.get("PGUSER", "app"),
                         password=os.environ.get("PGPASSWORD", "app-secret"), dbname="pgshard",
                         connect_timeout=10)
    c.autocommit = True
    try:
        with c.cursor() as cur:
            cur.execute("SHOW STATS")
            cols = [d[0] for d in cur.description]
            out = {}
            for row in cur.fetchall():
                r = dict(zip(cols, row))
                out[r["role"]] = out.get(r["role"], 0) + int(r["statements"])
            return out
    finally:
        c.close()


@test
def test_extended_protocol_reads_go_to_replicas():
    """pgbench's extended and prepared protocols (Parse/Bind/Describe/Execute/Sync), 8 clients
    on one server per node: every read runs on a replica (SHOW STATS per role)."""
    fresh_table()
    with Proxy("rr_extended", dict(PAUSED_SETTINGS, pool_size="1", admin_users="app"),
               extra_ini=RR_TABLE) as p:
        time.sleep(0.5)
        script = os.path.join(p.work, "read.sql")
        with open(script, "w") as f:
            f.write("\\set k random(1, %d)\nSELECT v FROM rr_items WHERE id = :k;\n" % N_KEYS)
        for mode in ("extended", "prepared"):
            before = node_statements(p.port)
            env = dict(os.environ, PGPASSWORD=os.environ.get("PGPASSWORD", "app-secret"))
            r = subprocess.run([os.path.join(rl.PGBIN, "pgbench"), "-n", "-M", mode, "-c", "8",
                                "-j", "2", "-t", "150", "-f", script, "-h", rl.HOST,
                                "-p", str(p.port), "-U", os.environ.get("PGUSER", "app"),
                                os.environ.get("PGDATABASE", "app")],
                               env=env, capture_output=True, text=True, timeout=120)
            check(r.returncode == 0, "pgbench -M %s: %s" % (mode, r.stderr[-500:]))
            after = node_statements(p.port)
            on_replicas = after.get("replica", 0) - before.get("replica", 0)
            on_primaries = after.get("primary", 0) - before.get("primary", 0)
            check(on_replicas >= 8 * 150, "-M %s: %d statements on replicas, want >= %d"
                  % (mode, on_replicas, 8 * 150))
            eq(on_primaries, 0, "-M %s: statements on primaries" % mode)


@test
def test_causal_token_carries_writes_to_another_connection():
    fresh_table()
    with Proxy("rr_token", PAUSED_SETTINGS, extra_ini=RR_TABLE) as p:
        time.sleep(0.5)
        set_replay(True)
        try:
            a = rl.pg(p.port)
            cur = a.cursor()
            cur.execute("update rr_items set v = 42 where id = 3")
            cur.execute("show pgshard.causal_token")
            token = cur.fetchone()[0]
            check(token.startswith("pgshard1:") and "=" in token, "token %r" % token)
            a.close()
            b = rl.pg(p.port)
            cur = b.cursor()
            eq(read(cur, 3), (0, True), "a new connection without the token: the replica")
            cur.execute("set pgshard.causal_token = %s", (token,))
            eq(read(cur, 3), (42, False), "with the token, replay paused: the primary")
            b.close()
            c = rl.pg(p.port)
            cur = c.cursor()
            try:
                cur.execute("set pgshard.causal_token = 'not a token'")
                raise rl.Failure("a bad token was taken")
            except psycopg2.Error as e:
                check(e.pgcode in ("22023", "42601"), "bad token: %s %s" % (e.pgcode, e))
            c.close()
        finally:
            set_replay(False)
        replicas_caught_up()
        b = rl.pg(p.port)
        cur = b.cursor()
        cur.execute("set pgshard.causal_token = %s", (token,))
        wait_for("the token's read on a replica once replayed",
                 lambda: read(cur, 3) == (42, True))
        b.close()


@test
def test_lag_over_the_limit_moves_reads_to_the_primary_and_back():
    fresh_table()
    settings = dict(PAUSED_SETTINGS, max_replica_lag_time="500")
    with Proxy("rr_lag", settings, extra_ini=RR_TABLE) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        wait_for("reads on replicas", lambda: read(cur, 5)[1])
        set_replay(True)
        try:
            w = rl.pg(p.port)
            wc = w.cursor()
            for key in range(1, N_KEYS + 1):
                wc.execute("update rr_items set v = v + 1 where id = %s", (key,))
            w.close()
            wait_for("reads on the primary once lag is over 500 ms", lambda: not read(cur, 5)[1])
            eq(read(cur, 5)[0], 1, "the primary's value")
        finally:
            set_replay(False)
        wait_for("reads on replicas again", lambda: read(cur, 5) == (1, True))
        c.close()


@test
def test_a_stopped_replica_costs_no_read_an_error():
    fresh_table()
    with Proxy("rr_down", dict(PAUSED_SETTINGS, health_check_interval="200"),
               extra_ini=RR_TABLE) as p:
        time.sleep(0.5)
        data = os.path.join(rl.DATA, "shard0-replica0")
        rl.pg_ctl("-D", data, "-m", "immediate", "-w", "-t", "30", "stop")
        try:
            for round_ in range(5):
                c = rl.pg(p.port)
                cur = c.cursor()
                for key in range(1, N_KEYS + 1):
                    v, _ = read(cur, key)
                    eq(v, 0, "key %d" % key)
                c.close()
        finally:
            rl.pg_ctl("-D", data, "-l", os.path.join(rl.DATA, "log", "shard0-replica0.log"),
                      "-w", "-t", "60", "start")
            replicas_caught_up()
        c = rl.pg(p.port)
        cur = c.cursor()
        wait_for("shard 0's replica reads again",
                 lambda: all(read(cur, k)[1] for k in range(1, N_KEYS + 1)), secs=30)
        c.close()
    check(p.sanitizer_report() is None, "sanitizer report: %s" % p.sanitizer_report())


def sleepy_reads(port, keys, secs, strike, strike_after=0.4):
    """One session per key reads it with a pg_sleep(secs) on the way; strike() runs while
    they sleep. -> ({key: value read}, [errors])"""
    got, errors, lock = {}, [], threading.Lock()

    def session(key):
        try:
            c = rl.pg(port)
            cur = c.cursor()
            cur.execute("select v, pg_sleep(%s)::text from rr_items where id = %s", (secs, key))
            with lock:
                got[key] = cur.fetchone()[0]
            c.close()
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append("key %d: %r" % (key, e))

    threads = [threading.Thread(target=session, args=(k,)) for k in keys]
    for th in threads:
        th.start()
    time.sleep(strike_after)
    strike()
    for th in threads:
        th.join()
    return got, errors


def replica_sleepers(shard):
    c = replica_su(shard)
    try:
        with c.cursor() as cur:
            cur.execute("select pid from pg_stat_activity where query like '%%pg_sleep%%' "
                        "and pid <> pg_backend_pid()")
            return [r[0] for r in cur.fetchall()]
    finally:
        c.close()


def wait_replica_back(shard):
    def up():
        try:
            c = replica_su(shard)
        except psycopg2.Error:
            return False
        c.close()
        return True

    wait_for("shard %d's replica accepting connections" % shard, up, secs=60)
    replicas_caught_up(60)


@test
def test_a_replica_lost_during_a_read_costs_the_read_nothing():
    """Reads sleeping on replicas while shard 0's replica loses a backend (SIGKILL: the
    replica restarts every connection) and then stops (immediate shutdown): every read
    answers, from the primary, with no error."""
    fresh_table()
    keys = range(1, 13)
    with Proxy("rr_lost", dict(PAUSED_SETTINGS, health_check_interval="200"),
               extra_ini=RR_TABLE) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        wait_for("reads on replicas", lambda: all(read(cur, k)[1] for k in keys))
        cur.execute("select pg_is_in_recovery(), pg_sleep(0)::text from rr_items where id = 1")
        eq(cur.fetchone()[0], True, "a read with pg_sleep on a replica")
        c.close()

        killed = []

        def kill_a_backend():
            pids = replica_sleepers(0)
            check(pids, "no read sleeping on shard 0's replica")
            os.kill(pids[0], 9)
            killed.append(pids[0])

        got, errors = sleepy_reads(p.port, keys, 1.5, kill_a_backend)
        eq(errors, [], "reads while a replica backend was killed")
        eq(got, {k: 0 for k in keys}, "values read")
        wait_replica_back(0)

        data = os.path.join(rl.DATA, "shard0-replica0")
        c = rl.pg(p.port)
        cur = c.cursor()
        wait_for("shard 0's replica reads again", lambda: all(read(cur, k)[1] for k in keys),
                 secs=30)
        c.close()
        try:
            got, errors = sleepy_reads(
                p.port, keys, 1.5,
                lambda: rl.pg_ctl("-D", data, "-m", "immediate", "-w", "-t", "30", "stop"))
            eq(errors, [], "reads while a replica stopped")
            eq(got, {k: 0 for k in keys}, "values read")
        finally:
            rl.pg_ctl("-D", data, "-l", os.path.join(rl.DATA, "log", "shard0-replica0.log"),
                      "-w", "-t", "60", "start")
            wait_replica_back(0)
    check(p.sanitizer_report() is None, "sanitizer report: %s" % p.sanitizer_report())


if __name__ == "__main__":
    if int(os.environ.get("PGSHARD_REPLICAS", "0")) < 1:
        print("replicas: the cluster has no replicas")
        print("0 passed, 1 failed")
        sys.exit(1)
    rl.main(TESTS, TEST_TIMEOUT)
