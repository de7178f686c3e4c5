"""Shared helpers of the robustness suite (test_robust.py) and the session fuzzer
(integration/fuzz_sessions.py): raw protocol connections to any port, extra pgshard
instances with their own config, direct connections to the shards, and a well-behaved
client that checks its answers while something else abuses the proxy.

The raw protocol client (framing, SCRAM/md5 login) is test_protocol.py's; this module only
points it at other ports. Everything reads the environment of a cluster.sh cluster
(`. DIR/env.sh`): PGSHARD_DIR, SHARD_PORTS, PGSHARD_SOCKDIR, PGSHARD_DATA, PGHOST/PGPORT/...
and PGSHARD_BIN (the pgshard binary; integration/integration.sh exports it).
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import psycopg2  # noqa: E402

import test_protocol as tp  # noqa: E402
from test_protocol import Closed, Failure, check, cstr, data_row, eq, kinds, msg, parse_fields  # noqa: E402,F401

HOST = "127.0.0.1"
PGSHARD_DIR = os.environ.get("PGSHARD_DIR", "")
SHARD_PORTS = [int(p) for p in os.environ.get("SHARD_PORTS", "").split()]
SOCKDIR = os.environ.get("PGSHARD_SOCKDIR", "")
DATA = os.environ.get("PGSHARD_DATA", "")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
MAIN_PORT = int(os.environ.get("PGSHARD_PORT") or os.environ.get("PGPORT") or 6432)
# Extra pgshard instances listen on PORT_BASE, PORT_BASE+1, ... (6454.. for the main test
# run's 6434; test_proxy.sh uses 6440-6449).
PORT_BASE = int(os.environ.get("ROBUST_PORT_BASE", MAIN_PORT + 20))


def pgshard_bin():
    b = os.environ.get("PGSHARD_BIN")
    if b:
        return b
    for cand in ("build-asan/pgshard", "build/pgshard"):
        p = os.path.join(ROOT, cand)
        if os.access(p, os.X_OK):
            return p
    raise Failure("no pgshard binary: set PGSHARD_BIN")


# ---------------------------------------------------------------------------------------
# raw connections to any port


class RawAt(tp.Raw):
    """test_protocol.Raw, connected to HOST:port instead of PGHOST:PGPORT."""

    def __init__(self, port, timeout=tp.IO_TIMEOUT):  # noqa: super().__init__ connects to PGPORT
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.params = {}
        self.pid = self.key = None


def login(port, timeout=tp.IO_TIMEOUT, extra=None):
    r = RawAt(port, timeout)
    try:
        status = r.startup(extra=extra)
    except BaseException:
        r.close()
        raise
    eq(status, b"I", "ReadyForQuery status after startup on port %d" % port)
    return r


def pg(port=None, **kw):
    """psycopg2 connection (autocommit) to a port on HOST as the app user."""
    kw.setdefault("connect_timeout", 10)
    c = psycopg2.connect(host=HOST, port=port or MAIN_PORT, user=os.environ.get("PGUSER", "app"),
                         password=os.environ.get("PGPASSWORD", "app-secret"),
                         dbname=os.environ.get("PGDATABASE", "app"), **kw)
    c.autocommit = True
    return c


def su(shard, dbname="app"):
    """Superuser connection to a shard's primary over its unix socket (trusted)."""
    c = psycopg2.connect(host=SOCKDIR, port=SHARD_PORTS[shard], user="postgres", dbname=dbname,
                         connect_timeout=10)
    c.autocommit = True
    return c


def on_shards(sql, args=None):
    """Runs sql as superuser on every shard's primary; returns the rows per shard."""
    out = []
    for i in range(len(SHARD_PORTS)):
        c = su(i)
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                out.append(cur.fetchall() if cur.description else None)
        finally:
            c.close()
    return out


def as_app_on_shards(sql):
    """Runs sql as the app user on every shard's primary (objects owned by app)."""
    for port in SHARD_PORTS:
        c = pg(port)
        try:
            with c.cursor() as cur:
                cur.execute(sql)
        finally:
            c.close()


def wait_replicas(secs=10):
    """Waits until every replica has replayed its primary's current WAL position."""
    deadline = time.time() + secs
    for i in range(len(SHARD_PORTS)):
        c = su(i)
        try:
            with c.cursor() as cur:
                while True:
                    cur.execute("select coalesce(bool_and(replay_lsn >= pg_current_wal_lsn()), true)"
                                " from pg_stat_replication")
                    if cur.fetchone()[0] or time.time() > deadline:
                        break
                    time.sleep(0.05)
        finally:
            c.close()


_routes = {}


def shard_of(table_ini_key, key):
    """The shard pgshard routes `key` of a table of map users to (pgshard --route)."""
    if key not in _routes:
        keys = list(range(1, 41))
        sqls = ["select * from rt_users where id = %d" % k for k in keys]
        out = subprocess.run([pgshard_bin(), "-c", os.path.join(PGSHARD_DIR, "pgshard.ini"),
                              "--route"] + sqls, capture_output=True, text=True, timeout=30).stdout
        shards = re.findall(r"^route:\s+shards, shard (\d+)$", out, re.M)
        check(len(shards) == len(keys), "pgshard --route: unexpected output %r" % out[:300])
        for k, s in zip(keys, shards):
            _routes[k] = int(s)
    return _routes[key]


def shard_of_key(key):
    """The shard of any bigint key of map users (one pgshard --route call per new key)."""
    if key not in _routes:
        out = subprocess.run([pgshard_bin(), "-c", os.path.join(PGSHARD_DIR, "pgshard.ini"),
                              "--route", "select * from rt_users where id = %d" % key],
                             capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"^route:\s+shards, shard (\d+)$", out, re.M)
        check(m is not None, "pgshard --route: unexpected output %r" % out[:300])
        _routes[key] = int(m.group(1))
    return _routes[key]


def key_on(shard, nth=0):
    """The nth key (1..40) that map users places on shard."""
    keys = [k for k in range(1, 41) if shard_of("users", k) == shard]
    return keys[nth]


def pg_ctl(*args):
    cmd = [os.path.join(PGBIN, "pg_ctl")] + list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, cwd="/", check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=90)


def shard_down(shard, mode="fast"):
    """Stops shard's primary (mode immediate: as if it crashed)."""
    pg_ctl("-D", os.path.join(DATA, "shard%d-primary" % shard), "-m", mode, "-w", "-t", "30",
           "stop")


def shard_up(shard):
    """Starts shard's primary again and waits until its replicas stream from it."""
    pg_ctl("-D", os.path.join(DATA, "shard%d-primary" % shard), "-l",
           os.path.join(DATA, "log", "shard%d-primary.log" % shard), "-w", "-t", "60", "start")
    deadline = time.time() + 30
    while time.time() < deadline:
        n = on_shards("select count(*) from pg_stat_replication where state = 'streaming'")
        if n[shard][0][0] >= int(os.environ.get("PGSHARD_REPLICAS", "1")):
            break
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------
# extra pgshard instances

# Tables of this suite, sharded on the cluster's map "users" (hash of a bigint over all
# shards), as the extra instances know them.
TABLE_SECTIONS = """
[table.rb_items]
key = id
map = users

[table.rb_texts]
key = id
map = users

[table.rb_sort]
key = id
map = users
"""


class Proxy:
    """A pgshard of its own: the cluster's pgshard.ini with [proxy] settings changed and this
    suite's tables added, listening on its own port. Use as a context manager: on exit it is
    stopped, and a crash, a non-zero exit or a sanitizer report fails the test."""

    _next = 0
    running = set()  # started and not yet stopped: the watchdog kills these

    def __init__(self, name, settings=None, port=None, extra_ini=TABLE_SECTIONS):
        if port is None:
            port = PORT_BASE + Proxy._next % 10
            Proxy._next += 1
        self.name, self.port = name, port
        self.work = tempfile.mkdtemp(prefix="pgshard-robust-")
        self.ini = os.path.join(self.work, name + ".ini")
        self.log = os.path.join(self.work, name + ".log")
        with open(os.path.join(PGSHARD_DIR, "pgshard.ini")) as f:
            lines = f.read().splitlines()
        settings = dict(settings or {})
        settings["listen"] = "%s:%d" % (HOST, port)
        settings.setdefault("shutdown_timeout", "3")  # stop() waits 8 s for SIGTERM
        out, section = [], None
        for line in lines:
            m = re.match(r"^\[(.*)\]\s*$", line)
            if m:
                if section == "proxy":
                    out += ["%s = %s" % kv for kv in settings.items()]
                    settings = {}
                section = m.group(1)
            elif section == "proxy":
                km = re.match(r"^\s*([a-z_]+)\s*=", line)
                if km and km.group(1) in settings:
                    continue  # replaced below
            out.append(line)
        with open(self.ini, "w") as f:
            f.write("\n".join(out) + "\n" + extra_ini)
        shutil.copy(os.path.join(PGSHARD_DIR, "users.txt"), os.path.join(self.work, "users.txt"))
        self.proc = None

    def start(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=86")
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([pgshard_bin(), "-c", self.ini], cwd=self.work, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        Proxy.running.add(self)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure("pgshard (%s) exited with status %s at start: %s"
                              % (self.name, self.proc.returncode, self.log_tail(8)))
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise Failure("pgshard (%s) not listening on %d after 15 s" % (self.name, self.port))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def signal_and_wait(self, sig, secs):
        """Sends sig and waits secs for it to end; kills it after them. True when it ended
        by itself."""
        self.proc.send_signal(sig)
        try:
            self.proc.wait(secs)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid

    def status(self, field="VmHWM"):
        """A /proc/PID/status field in kB (VmHWM: peak resident set size)."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=20):
        return " | ".join(self.log_text().strip().splitlines()[-n:])

    def sanitizer_report(self):
        text = self.log_text()
        m = re.search(r"(ERROR: AddressSanitizer.*|ERROR: LeakSanitizer.*|.*runtime error:.*)", text)
        if not m:
            return None
        # the kind of error and the first frames inside pgshard
        rest = text[m.start():].splitlines()
        frames = [line.strip() for line in rest if re.match(r"\s*#\d+ ", line)][:6]
        return m.group(1).strip() + " :: " + " ; ".join(frames)

    def crashed(self):
        """None when it still runs; else a description of how it ended."""
        if self.alive():
            return None
        rep = self.sanitizer_report()
        return "pgshard exited (status %s)%s" % (self.proc.returncode, ": " + rep if rep else
                                                 ", log: " + self.log_tail(5))

    def healthy(self, what="after the test"):
        """Fails unless the process runs and a fresh client gets an answer."""
        why = self.crashed()
        if why:
            raise Failure("%s: %s" % (what, why))
        try:
            r = login(self.port, timeout=5)
            rows, tags, err, status = r.simple("select 'fresh client'")
            r.close()
        except (Failure, Closed, OSError) as e:
            raise Failure("%s: a fresh client gets no answer (%s)%s"
                          % (what, e, "; " + (self.crashed() or "") if self.crashed() else ""))
        eq(rows, [["fresh client"]], "%s: a fresh client's query" % what)

    def stop(self):
        """Stops it; returns a problem description (crash, exit status, sanitizer) or None."""
        problem = None
        Proxy.running.discard(self)
        if self.proc is not None:
            if self.proc.poll() is not None:
                problem = self.crashed()
            elif not self.signal_and_wait(signal.SIGTERM, 8):
                problem = "pgshard ignored SIGTERM for 8 s"
                rc = self.proc.returncode
                rep = self.sanitizer_report()
                if rep:
                    problem = "sanitizer report at exit: " + rep
                elif rc != 0 and problem is None:
                    problem = "pgshard exit status %s: %s" % (rc, self.log_tail(5))
            self.logf.close()
        if problem and os.environ.get("ROBUST_KEEP_LOGS"):
            problem += " (log kept in %s)" % self.log
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return problem

    def __exit__(self, etype, exc, tb):
        problem = self.stop()
        if problem is None:
            return False
        if exc is None:
            raise Failure(problem)
        raise Failure("%s | and %s" % (exc, problem)) from exc


# ---------------------------------------------------------------------------------------
# a well-behaved client


def shard_activity():
    """The app's backends on each shard that are not idle, briefly."""
    out = []
    for shard in range(len(SHARD_PORTS)):
        try:
            c = su(shard)
            with c.cursor() as cur:
                cur.execute("select pid, state, wait_event_type, wait_event, left(query, 60),"
                            " extract(epoch from now() - xact_start)::int"
                            " from pg_stat_activity where usename = 'app' and state <> 'idle'")
                out.append("shard %d: %r" % (shard, cur.fetchall()))
            c.close()
        except Exception as e:  # noqa: BLE001
            out.append("shard %d: %s" % (shard, e))
    return "; ".join(out)


class Watcher:
    """A client on `port` that runs checked queries in a loop and records every wrong
    answer, error or reply slower than `max_wait` seconds. queries: list of (sql, rows)
    where rows is the list of rows (lists of str) the query must return; BEGIN/COMMIT
    around them when `transaction`."""

    def __init__(self, port, queries, max_wait=2.0, transaction=False, name="watcher", pause=0.0):
        self.port, self.queries, self.max_wait, self.pause = port, queries, max_wait, pause
        self.transaction, self.name = transaction, name
        self.stop_ev = threading.Event()
        self.errors, self.checked, self.slowest = [], 0, 0.0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.ready = threading.Event()
        self.thread.start()
        self.ready.wait(15)

    def _timed(self, r, sql):
        t0 = time.time()
        try:
            got = r.simple(sql)
        except Failure as e:
            # a debugging hook: PGSHARD_ON_HANG runs (shell) while the connection that got
            # no reply is still open, e.g. a gdb script that dumps the worker's pools
            if os.environ.get("PGSHARD_ON_HANG"):
                subprocess.run(os.environ["PGSHARD_ON_HANG"], shell=True, timeout=300)
            # what the shards were doing while no reply came: waiting on a lock that a
            # session of the load holds is PostgreSQL's doing, not the proxy's
            raise Failure("%s on %r; shards meanwhile: %s" % (e, sql[:60], shard_activity()))
        dt = time.time() - t0
        self.slowest = max(self.slowest, dt)
        if dt > self.max_wait:
            self.errors.append("%s: %r took %.1fs" % (self.name, sql[:60], dt))
        return got

    def _loop(self):
        try:
            r = login(self.port, timeout=self.max_wait + 3)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s: login: %s" % (self.name, e))
            self.ready.set()
            return
        self.ready.set()
        try:
            while not self.stop_ev.is_set():
                if self.transaction:
                    rows, tags, err, status = self._timed(r, "begin")
                    if err or status != "T":
                        self.errors.append("%s: begin: %r %r" % (self.name, err, status))
                for sql, want in self.queries:
                    rows, tags, err, status = self._timed(r, sql)
                    if err is not None or rows != want:
                        self.errors.append("%s: %r: rows %.200r error %r, want %.200r"
                                           % (self.name, sql[:60], rows, err, want))
                    self.checked += 1
                    if self.pause:
                        time.sleep(self.pause)
                if self.transaction:
                    rows, tags, err, status = self._timed(r, "commit")
                    if err or status != "I" or tags != ["COMMIT"]:
                        self.errors.append("%s: commit: %r %r %r" % (self.name, tags, err, status))
                if self.errors:
                    break
        except Failure as e:
            self.errors.append("%s: %s" % (self.name, e))
        except Closed:
            self.errors.append("%s: connection closed by the proxy" % self.name)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s: %s: %s" % (self.name, type(e).__name__, e))
        finally:
            r.close()

    def finish(self):
        self.stop_ev.set()
        self.thread.join(self.max_wait + 10)
        if self.thread.is_alive():
            self.errors.append("%s: hung" % self.name)
        return self.errors


# ---------------------------------------------------------------------------------------
# running a suite


def kill_running_proxies():
    """A hung test's own pgshards would outlive the suite and keep their ports, so the
    watchdog kills them (SIGQUIT first, for a core or a sanitizer's stack, then SIGKILL) and
    names their logs, which it keeps, with each thread's stack when gdb is there."""
    for proxy in list(Proxy.running):
        if proxy.alive() and shutil.which("gdb"):
            subprocess.run(["gdb", "-p", str(proxy.pid()), "-batch", "-ex", "thread apply all bt"],
                           stdout=proxy.logf, stderr=subprocess.STDOUT, timeout=60, check=False)
        if proxy.alive():
            proxy.signal_and_wait(signal.SIGQUIT, 3)
        print("  pgshard (%s) killed by the watchdog; its log: %s" % (proxy.name, proxy.log), flush=True)


def run_tests(tests, selected, timeout, after_each=None):
    """Runs each test function (all, or those named in `selected`), each under a watchdog of
    `timeout` seconds, then after_each() if given; prints "ok NAME (secs)" or "FAIL NAME:
    why", then "N passed, N failed". Returns the exit status."""
    passed = failed = 0
    for fn in tests:
        name = fn.__name__
        if selected and name not in selected:
            continue

        def on_hang(name=name, passed=passed, failed=failed):
            print("FAIL %s: timed out after %.0fs (watchdog)" % (name, timeout), flush=True)
            kill_running_proxies()
            print("%d passed, %d failed" % (passed, failed + 1), flush=True)
            os._exit(1)

        dog = threading.Timer(timeout, on_hang)
        dog.daemon = True
        dog.start()
        t0 = time.time()
        try:
            fn()
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, str(e).strip().replace("\n", " | ")), flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            tb = traceback.extract_tb(e.__traceback__)
            where = "line %d" % tb[-1].lineno if tb else ""
            print("FAIL %s: %s: %s (%s)" % (name, type(e).__name__,
                                            str(e).strip().replace("\n", " | "), where), flush=True)
        else:
            passed += 1
            print("ok %s (%.1fs)" % (name, time.time() - t0), flush=True)
        finally:
            dog.cancel()
            if after_each is not None:
                after_each()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


def main(tests, timeout, after_each=None, min_shards=1):
    """A suite's command line: the tests named as arguments (default all), against the
    cluster whose env.sh was sourced. Exits with the suite's status."""
    missing = [v for v in ("PGSHARD_DIR", "SHARD_PORTS", "PGSHARD_SOCKDIR", "PGSHARD_DATA")
               if not os.environ.get(v)]
    if missing:
        print("FAIL setup: %s not set (source the cluster's env.sh)" % ", ".join(missing))
        print("0 passed, 1 failed")
        sys.exit(1)
    if len(SHARD_PORTS) < min_shards:
        print("FAIL setup: %d shards at least are needed" % min_shards)
        print("0 passed, 1 failed")
        sys.exit(1)
    sys.exit(run_tests(tests, set(sys.argv[1:]), timeout, after_each))
