#!/usr/bin/python3
"""pgshard's life cycle and log, against real shards: SIGTERM (graceful: no new connections,
open transactions finish, clients between transactions get 57P01, exit within
shutdown_timeout) loses no committed transaction of writers running through it; SIGINT exits
at once; the console's PAUSE waits for the transactions in progress, holds new statements
(they complete after RESUME, none fails, pgbench included) and refuses PAUSE twice and
RESUME when not paused with 55000, and gives up after pause_timeout with 57014 naming a client
left idle in transaction (the pause is called off, what it held runs); a bad config on SIGHUP
keeps the running one; the log has a line per connection, login, error and disconnect (the
first two with log_connections, the last with log_disconnections, both switched on by a
reload), and slow statements over log_min_duration_statement (text, duration, shards; no
parameter values, also none quoted in a shard's error).

Each test runs its own pgshard (robustlib.Proxy). Needs the env of a running cluster.sh
cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_lifecycle.py [TEST ...]
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import random
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402

import robustlib as rl  # noqa: E402
from robustlib import Proxy, check, eq  # noqa: E402
from test_admin import Bench, Console, ensure_pgbench_tables, show, wait_for  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("LIFECYCLE_TEST_TIMEOUT", "180"))
TESTS = []

LC_TABLE = """
[table.lc_rows]
key = id
map = users
"""


def test(fn):
    TESTS.append(fn)
    return fn


def exited(p, within):
    """Waits up to `within` seconds for p to exit by itself; fails unless it exits with status
    0 and without a sanitizer report. Returns the seconds it took."""
    t0 = time.time()
    try:
        p.proc.wait(within)
    except subprocess.TimeoutExpired:
        raise rl.Failure("pgshard still runs %.0f s after the signal: %s" % (within, p.log_tail(5)))
    took = time.time() - t0
    rep = p.sanitizer_report()
    check(rep is None, "sanitizer report: %s" % rep)
    eq(p.proc.returncode, 0, "exit status (log: %s)" % p.log_tail(5))
    p.logf.close()
    p.proc = None  # stop() has nothing left to do
    return took


def refused(port):
    try:
        socket.create_connection((rl.HOST, port), timeout=2).close()
        return False
    except OSError:
        return True


def new_ids():
    """A base for this run's ids: lc_rows keeps the rows of every run."""
    return random.randrange(1, 1 << 40) * 1000


def make_table(p):
    c = rl.pg(p.port)
    c.cursor().execute("create table if not exists lc_rows (id bigint primary key, run text,"
                       " writer int)")
    c.close()


def rows_of_run(run):
    """Ids of lc_rows with this run tag, read on the shards' primaries directly."""
    ids = set()
    for rows in rl.on_shards("select id from lc_rows where run = %s", (run,)):
        ids.update(r[0] for r in rows)
    return ids


class Writers:
    """Threads that each commit transactions of two rows (often on two shards: two-phase
    commit) in a loop until the proxy stops them; `committed` holds the ids of every
    transaction whose COMMIT was answered."""

    def __init__(self, port, n=4):
        self.run = uuid.uuid4().hex[:12]
        self.base = new_ids() * 1000
        self.committed, self.errors, self.done = set(), [], 0
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(port, w), daemon=True)
                        for w in range(n)]
        for t in self.threads:
            t.start()

    def _loop(self, port, w):
        try:
            c = rl.pg(port)
            c.autocommit = False
        except Exception as e:  # noqa: BLE001
            self.errors.append("connect: %s" % e)
            return
        i = 0
        try:
            while True:
                a = self.base + w * 10000000 + 2 * i
                b = a + 1
                cur = c.cursor()
                cur.execute("insert into lc_rows values (%s, %s, %s), (%s, %s, %s)",
                            (a, self.run, w, b, self.run, w))
                c.commit()
                with self.lock:
                    self.committed.update((a, b))
                    self.done += 1
                self.started.set()
                i += 1
        except psycopg2.Error as e:
            self.errors.append(str(e).strip())
        finally:
            c.close()

    def join(self):
        for t in self.threads:
            t.join(30)
            check(not t.is_alive(), "a writer hangs")


@test
def test_sigterm_during_writes_loses_no_committed_transaction():
    with Proxy("lc_term", settings={"shutdown_timeout": "5", "workers": "2"},
               extra_ini=rl.TABLE_SECTIONS + LC_TABLE) as p:
        make_table(p)
        w = Writers(p.port, n=4)
        check(w.started.wait(30), "the writers commit nothing: %s" % w.errors)
        wait_for("200 transactions", lambda: w.done >= 200, timeout=60)
        p.proc.send_signal(signal.SIGTERM)
        exited(p, 5 * 2 + 5)
        w.join()
        on_disk = rows_of_run(w.run)
        lost = w.committed - on_disk
        check(not lost, "%d committed rows lost, e.g. %s" % (len(lost), sorted(lost)[:5]))
        # at most each writer's last transaction, never answered, may be there beyond them
        check(len(on_disk - w.committed) <= 2 * len(w.threads),
              "rows nobody committed: %d" % len(on_disk - w.committed))
        eq(len(w.errors), len(w.threads), "every writer stopped by the shutdown")
        for e in w.errors:
            # libpq shows the FATAL when it reads it before it finds the connection closed
            check("terminating connection due to administrator command" in e or
                  "server closed the connection" in e, "a writer's error: %s" % e)
        n57 = len(re.findall(r"FATAL 57P01: terminating connection due to administrator command",
                             p.log_text()))
        check(n57 >= len(w.threads), "writers told 57P01 between transactions: %d" % n57)
        # every two-phase commit under way finished: none is left prepared for recovery
        prepared = rl.on_shards("select count(*) from pg_prepared_xacts where gid like 'pgshard:%'")
        eq([r[0][0] for r in prepared], [0] * len(prepared), "prepared transactions left")


@test
def test_sigterm_lets_an_open_transaction_finish_and_refuses_new_connections():
    with Proxy("lc_open", settings={"shutdown_timeout": "30"},
               extra_ini=rl.TABLE_SECTIONS + LC_TABLE) as p:
        make_table(p)
        run = uuid.uuid4().hex[:12]
        tx = rl.pg(p.port)
        tx.autocommit = False
        k = new_ids()
        tx.cursor().execute("insert into lc_rows values (%s, %s, 0), (%s, %s, 0)",
                            (k + 1, run, k + 2, run))
        idle = rl.pg(p.port)
        idle.cursor().execute("select 1")
        p.proc.send_signal(signal.SIGTERM)
        wait_for("the listener closed", lambda: refused(p.port))
        # the idle session is closed with 57P01; the one in a transaction goes on
        try:
            idle.cursor().execute("select 1")
            raise rl.Failure("a session idle outside a transaction still runs statements")
        except psycopg2.OperationalError as e:
            check("administrator command" in str(e) or "closed" in str(e), "idle: %s" % e)
        cur = tx.cursor()
        cur.execute("insert into lc_rows values (%s, %s, 0)", (k + 3, run))
        cur.execute("select count(*) from lc_rows where run = %s", (run,))
        eq(cur.fetchone()[0], 3, "the open transaction sees its rows")
        tx.commit()
        eq(rows_of_run(run), {k + 1, k + 2, k + 3}, "the transaction committed during the shutdown")
        took = exited(p, 30)
        check(took < 25, "pgshard waited for nothing after its last client left (%.1f s)" % took)
        tx.close()
        idle.close()


@test
def test_shutdown_timeout_closes_a_transaction_left_open():
    with Proxy("lc_timeout", settings={"shutdown_timeout": "1"},
               extra_ini=rl.TABLE_SECTIONS + LC_TABLE) as p:
        make_table(p)
        run = uuid.uuid4().hex[:12]
        tx = rl.pg(p.port)
        tx.autocommit = False
        tx.cursor().execute("insert into lc_rows values (%s, %s, 0)", (new_ids(), run))
        p.proc.send_signal(signal.SIGTERM)
        exited(p, 15)
        check("shutdown_timeout reached" in p.log_text(), "the log says why: %s" % p.log_tail(5))
        try:
            tx.commit()
            raise rl.Failure("a transaction left open commits after the timeout")
        except psycopg2.Error:
            pass
        eq(rows_of_run(run), set(), "the transaction left open rolled back")
        tx.close()


@test
def test_sigint_exits_at_once():
    with Proxy("lc_int", settings={"shutdown_timeout": "600"},
               extra_ini=rl.TABLE_SECTIONS + LC_TABLE) as p:
        make_table(p)
        run = uuid.uuid4().hex[:12]
        tx = rl.pg(p.port)
        tx.autocommit = False
        tx.cursor().execute("insert into lc_rows values (%s, %s, 0)", (new_ids(), run))
        p.proc.send_signal(signal.SIGINT)
        # shutdown_timeout is 10 minutes: only an exit that waits for nothing is this fast
        took = exited(p, 60)
        check(took < 30, "SIGINT took %.1f s" % took)
        try:
            tx.commit()
            raise rl.Failure("a transaction commits after SIGINT")
        except psycopg2.Error:
            pass
        eq(rows_of_run(run), set(), "the open transaction rolled back")
        tx.close()


@test
def test_a_second_pgshard_on_the_same_port_refuses_to_start():
    # SO_REUSEPORT would let it share the port silently, taking half the connections
    with Proxy("lc_twice") as p:
        second = subprocess.run([rl.pgshard_bin(), "-c", p.ini], capture_output=True, text=True,
                                timeout=30)
        check(second.returncode != 0, "the second pgshard exited %d" % second.returncode)
        check("address is in use" in second.stderr + second.stdout,
              "its log says why: %r" % (second.stderr + second.stdout)[-300:])
        # the first one still serves every connection
        for _ in range(8):
            c = rl.pg(p.port)
            c.cursor().execute("select 1")
            c.close()


def admin_try(conn, sql):
    """Runs a console command; returns (statusmessage, None) or (None, SQLSTATE)."""
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.statusmessage, None
    except psycopg2.Error as e:
        return None, e.pgcode


class InThread:
    def __init__(self, fn):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001
            self.error = e

    def join(self, secs=30):
        self.thread.join(secs)
        check(not self.thread.is_alive(), "still waiting after %d s" % secs)
        if self.error is not None:
            raise self.error
        return self.result


@test
def test_pause_waits_for_open_transaction_and_holds_new_statements():
    with Console("lc_pause", settings={"workers": "2"}) as p:
        ensure_pgbench_tables(p)
        a, b = p.admin(), p.admin()
        eq(show(b, "STATE")[0]["state"], "running", "state before")
        eq(admin_try(b, "RESUME"), (None, "55000"), "RESUME when not paused")
        tx = rl.pg(p.port)
        tx.autocommit = False
        tx.cursor().execute("select count(*) from pgbench_branches")
        pause = InThread(lambda: admin_try(a, "PAUSE"))
        st = wait_for("PAUSE waiting", lambda: [r for r in show(b, "STATE")
                                                if r["state"] == "pausing" and r["busy"] > 0])
        eq(st[0]["busy"], 1, "PAUSE waits for the one open transaction")
        check(pause.thread.is_alive(), "PAUSE answered with a transaction open")
        eq(admin_try(b, "PAUSE"), (None, "55000"), "PAUSE twice")
        # the transaction goes on and ends while PAUSE waits
        cur = tx.cursor()
        cur.execute("select 1")
        tx.commit()
        eq(pause.join(), ("PAUSE", None), "PAUSE answered once the transaction ended")
        eq(show(b, "STATE")[0]["state"], "paused", "state paused")

        # statements sent now are held, not failed; the transaction-ended client too
        late = rl.pg(p.port)  # logins go on while paused
        q = InThread(lambda: run_one(late, "select 'after resume'"))
        q2 = InThread(lambda: run_one(tx, "select 'old session'"))
        wait_for("two held clients", lambda: show(b, "STATE")[0]["held"] >= 2)
        check(q.thread.is_alive() and q2.thread.is_alive(), "held statements answered")
        eq(admin_try(b, "RESUME"), ("RESUME", None), "RESUME")
        eq(q.join(), [("after resume",)], "held statement runs after RESUME")
        eq(q2.join(), [("old session",)], "held statement of an old session")
        eq(show(b, "STATE")[0], {"state": "running", "busy": 0, "held": 0}, "state after")
        for c in (late, tx, a, b):
            c.close()
        p.healthy()


@test
def test_resume_cancels_a_waiting_pause_and_sigterm_ends_a_pause():
    with Console("lc_cancel") as p:
        a, b = p.admin(), p.admin()
        tx = rl.pg(p.port)
        tx.autocommit = False
        tx.cursor().execute("select 1")
        pause = InThread(lambda: admin_try(a, "PAUSE"))
        wait_for("PAUSE waiting", lambda: [r for r in show(b, "STATE")
                                           if r["state"] == "pausing" and r["busy"] > 0])
        eq(admin_try(b, "RESUME"), ("RESUME", None), "RESUME while PAUSE waits")
        eq(pause.join(), (None, "57014"), "the waiting PAUSE is canceled")
        eq(show(a, "STATE")[0]["state"], "running", "running again")
        tx.commit()
        # paused, a held client, then SIGTERM: the held client is closed, pgshard exits
        eq(admin_try(a, "PAUSE"), ("PAUSE", None), "PAUSE with nothing open")
        idle = rl.pg(p.port)
        q = InThread(lambda: run_one(idle, "select 'held'"))
        wait_for("the held client", lambda: show(b, "STATE")[0]["held"] >= 1)
        p.proc.send_signal(signal.SIGTERM)
        try:
            q.join()
            raise rl.Failure("a held statement ran during the shutdown")
        except psycopg2.OperationalError:
            pass
        exited(p, 15)
        for c in (a, b, tx, idle):
            c.close()


@test
def test_pause_gives_up_after_pause_timeout_naming_the_idle_transaction():
    with Console("lc_pause_timeout", settings={"workers": "2", "pause_timeout": "1"}) as p:
        a, b = p.admin(), p.admin()
        tx = rl.pg(p.port)
        tx.autocommit = False
        tx.cursor().execute("select 1")  # and then idle in transaction
        ids = [r["id"] for r in show(b, "CLIENTS") if r["tx"] == "in transaction"]
        eq(len(ids), 1, "the client idle in transaction")

        def pause():
            try:
                a.cursor().execute("PAUSE")
                return "answered PAUSE"
            except psycopg2.Error as e:
                return e.pgcode, str(e)

        waiting = InThread(pause)
        wait_for("PAUSE waiting", lambda: [r for r in show(b, "STATE")
                                           if r["state"] == "pausing" and r["busy"] > 0])
        late = rl.pg(p.port)
        q = InThread(lambda: run_one(late, "select 'held, then released'"))
        code, msg = waiting.join()
        eq(code, "57014", "PAUSE gave up: %s" % msg)
        check("pause_timeout" in msg and "C-%d (app, idle in transaction)" % ids[0] in msg,
              "the error names the client it waited for: %s" % msg)
        eq(q.join(), [("held, then released",)], "a statement held meanwhile runs")
        eq(show(b, "STATE")[0], {"state": "running", "busy": 0, "held": 0}, "running again")
        cur = tx.cursor()
        cur.execute("select 2")
        eq(cur.fetchall(), [(2,)], "the open transaction goes on")
        tx.commit()
        eq(admin_try(a, "PAUSE"), ("PAUSE", None), "a PAUSE with nothing open still works")
        eq(admin_try(a, "RESUME"), ("RESUME", None), "RESUME")
        check("PAUSE gave up after pause_timeout" in p.log_text(), "the log says so")
        for c in (late, tx, a, b):
            c.close()
        p.healthy()


def run_one(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall()


@test
def test_pause_resume_around_pgbench_fails_nothing():
    with Console("lc_bench", settings={"workers": "2", "pool_size": "8"}) as p:
        ensure_pgbench_tables(p)
        a = p.admin()
        bench = subprocess.Popen(["pgbench", "-n", "-c", "4", "-j", "2", "-T", "8"],
                                 env=p.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        try:
            wait_for("pgbench at work", lambda: [r for r in show(a, "CLIENTS")
                                                 if r["database"] == "app"
                                                 and r["state"] == "active"])
            eq(admin_try(a, "PAUSE"), ("PAUSE", None), "PAUSE during pgbench")
            st = show(a, "STATE")[0]
            eq((st["state"], st["busy"]), ("paused", 0), "no transaction runs while paused")
            wait_for("pgbench's clients held", lambda: show(a, "STATE")[0]["held"] >= 1)
            txs = [r for r in show(a, "TRANSACTIONS")]
            eq(txs, [], "no transaction open while paused")
            eq(admin_try(a, "RESUME"), ("RESUME", None), "RESUME")
        finally:
            out, _ = bench.communicate(timeout=120)
        check(bench.returncode == 0, "pgbench failed: %s" % out[-400:])
        m = re.search(r"number of failed transactions: (\d+)", out)
        check(m is None or m.group(1) == "0", "pgbench had failed transactions: %s" % out[-300:])
        m = re.search(r"number of transactions actually processed: (\d+)", out)
        check(m is not None and int(m.group(1)) > 0, "pgbench ran: %s" % out[-300:])
        a.close()
        p.healthy()


@test
def test_bad_config_on_sighup_keeps_the_old_one():
    with Console("lc_hup") as p:
        a = p.admin()
        with open(p.ini) as f:
            good = f.read()

        def login_timeout():
            return [r["value"] for r in show(a, "CONFIG") if r["key"] == "login_timeout"]

        eq(login_timeout(), ["60"], "login_timeout before")
        with open(p.ini, "w") as f:
            f.write(good.replace("[proxy]\n", "[proxy]\nlogin_timeout = 42\nworkerz = 3\n", 1))
        p.proc.send_signal(signal.SIGHUP)
        wait_for("the reload's failure logged", lambda: "reload failed" in p.log_text())
        line = [ln for ln in p.log_text().splitlines() if "reload failed" in ln][0]
        check("workerz" in line and "keeping the running config" in line, "why: %s" % line)
        eq(login_timeout(), ["60"], "the running config is kept")
        p.healthy("after a bad reload")
        with open(p.ini, "w") as f:
            f.write(good.replace("[proxy]\n", "[proxy]\nlogin_timeout = 42\n", 1))
        p.proc.send_signal(signal.SIGHUP)
        wait_for("the good config applied", lambda: login_timeout() == ["42"])
        a.close()


@test
def test_log_lines_and_slow_statements():
    with Proxy("lc_log", settings={"log_min_duration_statement": "100"},
               extra_ini=rl.TABLE_SECTIONS + LC_TABLE) as p:
        c = rl.pg(p.port)
        cur = c.cursor()
        cur.execute("select pg_sleep(0.2) /* slow-marker */")
        cur.execute("select 'fast-marker'")
        try:
            cur.execute("select * from lc_missing_table")
        except psycopg2.Error as e:
            eq(e.pgcode, "42P01", "missing table")
        c.close()
        # the extended protocol: the statement's text is logged, never its parameter values
        r = rl.login(p.port)
        r.send(r.parse("", "select pg_sleep($1::float8), $2::text /* ext-marker */")
               + r.bind("", "", ["0.2", "secret-param-value"]) + r.execute() + r.SYNC)
        got = r.until_ready()
        check(not [m for m in got if m[0] == "E"], "extended statement failed: %r" % got)
        # a parameter the shard refuses: the error is logged, the value it quotes is not
        r.send(r.parse("", "select $1::int /* bad-param-marker */")
               + r.bind("", "", ["secret-bad-int"]) + r.execute() + r.SYNC)
        got = r.until_ready()
        eq(rl.parse_fields([m for m in got if m[0] == "E"][0][1]).get("C"), "22P02",
           "the bad parameter's error")
        r.close()
        stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
        wait_for("disconnects logged",
                 lambda: len(re.findall(r"disconnected: user=app", p.log_text())) >= 2)
        text = p.log_text()
        slow = re.findall(stamp + r"LOG C-\d+ S-\d+: duration: (\d+)\.\d{3} ms shards: (\S+) "
                          r"statement: (.*)$", text, re.M)
        stmts = [s[2] for s in slow]
        check(any("slow-marker" in s for s in stmts), "slow statement logged: %s" % stmts)
        check(not any("fast-marker" in s for s in stmts), "fast statement logged: %s" % stmts)
        ext = [s for s in slow if "ext-marker" in s[2]]
        check(len(ext) == 1, "extended slow statement logged once: %s" % stmts)
        eq(ext[0][2], "select pg_sleep($1::float8), $2::text /* ext-marker */", "its text")
        for ms, shards, s in slow:
            check(int(ms) >= 100, "logged under the threshold: %s ms %s" % (ms, s))
            check(re.match(r"^\d+(,\d+)*$", shards), "shards of %s: %s" % (s, shards))
        check("secret-param-value" not in text, "a parameter value is in the log")
        check("secret-bad-int" not in text, "a refused parameter value is in the log")
        check(re.search(r"LOG C-\d+ S-\d+: shard \d+: ERROR 22P02: invalid input syntax for "
                        r"type integer: \"\.\.\.\"$", text, re.M),
              "the refused parameter's error is logged without its value")
        check("app-secret" not in text, "a password is in the log")
        for what in (r"LOG C-\d+: connection accepted from 127\.0\.0\.1 port \d+$",
                     r"LOG C-\d+( S-\d+)?: login ok: user=app database=app$",
                     r"LOG C-\d+ S-\d+: shard \d+: ERROR 42P01: relation \"lc_missing_table\" "
                     r"does not exist$",
                     r"LOG C-\d+: disconnected: user=app database=app after \d+ s$"):
            check(re.search(stamp + what, text, re.M), "no log line like %r" % what)


@test
def test_log_connections_and_disconnections_switch_off_and_back_on_reload():
    with Console("lc_logswitch", settings={"log_connections": "off",
                                          "log_disconnections": "off"}) as p:
        def session(marker):
            c = rl.pg(p.port)
            c.cursor().execute("select '%s'" % marker)
            c.close()

        def lines():
            text = p.log_text()
            return (len(re.findall(r"connection accepted from", text)),
                    len(re.findall(r"login ok: user=app", text)),
                    len(re.findall(r"disconnected: user=app", text)))

        session("quiet")
        a = p.admin()
        show(a, "VERSION")  # the app's session closed before the console's came in
        eq(lines(), (0, 0, 0), "no accept, login or disconnect line while off")
        with open(p.ini) as f:
            text = f.read()
        with open(p.ini, "w") as f:
            f.write(text.replace("log_connections = off", "log_connections = on")
                    .replace("log_disconnections = off", "log_disconnections = on"))
        a.cursor().execute("RELOAD")
        wait_for("the reload", lambda: [r for r in show(a, "CONFIG")
                                        if r["key"] == "log_disconnections"
                                        and r["value"] == "on"])
        before = lines()
        session("loud")
        wait_for("the disconnect logged", lambda: lines()[2] == before[2] + 1)
        after = lines()
        eq((after[0] - before[0], after[1] - before[1]), (1, 1),
           "one accept and one login line once on")
        a.close()
        p.healthy()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=2)
