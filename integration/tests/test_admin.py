#!/usr/bin/python3
"""The admin console (database `pgshard`, as PgBouncer's `pgbouncer`), against real shards:
psql and psycopg2 against it while pgbench runs through the same pgshard. The counters of
SHOW STATS move between two looks, SHOW SHARDS lists every node of the config, SHOW POOLS,
CLIENTS and SERVERS show pgbench's connections, a user not in admin_users is refused with
42501, an unknown command is an error after which the session goes on, RELOAD applies a
changed config, and the extended protocol gets a clear 0A000.

Each test runs its own pgshard (robustlib.Proxy) on the cluster's config with
`admin_users = ops` and a user ops added to its users file; pgbench's tables are the
cluster's (made with pgbench -i -s 1 when they are missing).

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_admin.py [TEST ...]
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402

import robustlib as rl  # noqa: E402
import test_protocol as tp  # noqa: E402
from robustlib import Proxy, check, eq  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("ADMIN_TEST_TIMEOUT", "180"))
TESTS = []

ADMIN, ADMIN_PASSWORD = "ops", "ops-secret"


def test(fn):
    TESTS.append(fn)
    return fn


class Console(Proxy):
    """A pgshard of its own whose admin is ops (added to its users file)."""

    def __init__(self, name, settings=None):
        settings = dict(settings or {})
        settings.setdefault("admin_users", ADMIN)
        super().__init__(name, settings=settings, extra_ini="")
        with open(os.path.join(self.work, "users.txt"), "a") as f:
            f.write('"%s" "%s"\n' % (ADMIN, ADMIN_PASSWORD))

    def admin(self):
        c = psycopg2.connect(host=rl.HOST, port=self.port, user=ADMIN, password=ADMIN_PASSWORD,
                             dbname="pgshard", connect_timeout=10)
        c.autocommit = True  # psycopg2 sends nothing then: no BEGIN, which the console refuses
        return c

    def env(self, user="app", password="app-secret", dbname="app"):
        e = dict(os.environ)
        e.update(PGHOST=rl.HOST, PGPORT=str(self.port), PGUSER=user, PGPASSWORD=password,
                 PGDATABASE=dbname, PGCONNECT_TIMEOUT="10")
        return e


def show(conn, what):
    """SHOW <what> as a list of dicts by column name."""
    cur = conn.cursor()
    cur.execute("SHOW " + what)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def ensure_pgbench_tables(proxy):
    c = rl.pg(proxy.port)
    cur = c.cursor()
    cur.execute("select count(*) from pg_tables where tablename = 'pgbench_accounts'")
    have = cur.fetchone()[0] > 0
    c.close()
    if have:
        return
    out = subprocess.run(["pgbench", "-i", "-s", "1", "-q"], env=proxy.env(), capture_output=True,
                         text=True, timeout=240)
    check(out.returncode == 0, "pgbench -i: %s" % out.stderr[-400:])


class Bench:
    """pgbench -S through the proxy for `seconds`, in the background."""

    def __init__(self, proxy, clients=4, seconds=10):
        self.proc = subprocess.Popen(["pgbench", "-n", "-S", "-c", str(clients), "-j", "2",
                                      "-T", str(seconds)], env=proxy.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self):
        out, _ = self.proc.communicate(timeout=120)
        check(self.proc.returncode == 0, "pgbench failed: %s" % out[-400:])
        m = re.search(r"number of failed transactions: (\d+)", out)
        check(m is None or m.group(1) == "0", "pgbench had failed transactions: %s" % out[-300:])
        return out


def nodes_of_config(proxy):
    """(shard, role, 'host:port') of every node in the proxy's config file."""
    nodes, shard = [], None
    with open(proxy.ini) as f:
        for line in f:
            m = re.match(r"^\[shard\.(\d+)\]", line)
            if m:
                shard = int(m.group(1))
                continue
            if line.startswith("["):
                shard = None
            m = re.match(r"^(primary|replica)\s*=\s*(.*)$", line.strip())
            if m and shard is not None:
                host = re.search(r"host=(\S+)", m.group(2)).group(1)
                port = re.search(r"port=(\d+)", m.group(2)).group(1)
                nodes.append((shard, m.group(1), "%s:%s" % (host, port)))
    return sorted(nodes)


def wait_for(what, fn, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise rl.Failure("waited %.0f s for %s" % (timeout, what))
        time.sleep(0.2)


@test
def test_console_shows_pgbench_at_work():
    # two workers: SHOW CLIENTS, SERVERS, POOLS and STATS are put together from each one's part
    with Console("admin_bench", settings={"workers": "2", "pool_size": "8"}) as p:
        ensure_pgbench_tables(p)
        a = p.admin()
        before = {(r["shard"], r["role"], r["node"]): r for r in show(a, "STATS")}
        bench = Bench(p, clients=4, seconds=8)
        try:
            # pgbench's four clients show while it runs
            def busy():
                clients = [r for r in show(a, "CLIENTS") if r["database"] == "app"
                           and r["user"] == "app" and r["state"] != "login"]
                return clients if len(clients) >= 4 else None
            clients = wait_for("pgbench's clients in SHOW CLIENTS", busy)
            check(all(r["state"] in ("idle", "waiting", "active") for r in clients),
                  "client states: %s" % [r["state"] for r in clients])
            check(all(r["addr"] == "127.0.0.1" and r["port"] > 0 for r in clients),
                  "client addresses: %s" % clients[:2])
            check({r["worker"] for r in clients} <= {0, 1}, "workers: %s" % clients)
            me = [r for r in show(a, "CLIENTS") if r["database"] == "pgshard"]
            eq(len(me), 1, "the console's own client is listed")
            eq(me[0]["user"], ADMIN, "its user")

            servers = wait_for("pgbench's servers in SHOW SERVERS",
                               lambda: [r for r in show(a, "SERVERS") if r["database"] == "app"])
            check(all(r["state"] in ("connecting", "idle", "active") for r in servers),
                  "server states: %s" % [r["state"] for r in servers])
            shards = {r["shard"] for r in servers}
            check(len(shards) >= 2, "pgbench's servers on several shards: %s" % shards)
            check(all(r["backend_pid"] for r in servers if r["state"] != "connecting"),
                  "backend pids: %s" % servers[:2])

            pools = [r for r in show(a, "POOLS") if r["database"] == "app"]
            check(len(pools) >= 3, "a pool per shard: %s" % pools)
            for r in pools:
                check(r["sv_active"] + r["sv_idle"] + r["sv_connecting"] <= r["pool_size"],
                      "pool within its size: %s" % r)
            time.sleep(1)
            mid = {(r["shard"], r["role"], r["node"]): r for r in show(a, "STATS")}
        finally:
            bench.wait()
        after = {(r["shard"], r["role"], r["node"]): r for r in show(a, "STATS")}
        # at rest (pgbench gone, its servers idle), the pools count the servers listed
        pools = [r for r in show(a, "POOLS") if r["database"] == "app"]
        servers = [r for r in show(a, "SERVERS") if r["database"] == "app"]
        eq(sum(r["sv_active"] + r["sv_idle"] + r["sv_connecting"] for r in pools),
           len(servers), "pools count the servers SHOW SERVERS lists")
        check(all(r["cl_active"] == 0 and r["cl_waiting"] == 0 for r in pools),
              "no client left in the pools: %s" % pools)
        moved = 0
        for key, r in after.items():
            b = before.get(key, {"statements": 0, "transactions": 0, "bytes_in": 0,
                                 "bytes_out": 0})
            for col in ("statements", "transactions", "bytes_in", "bytes_out"):
                check(r[col] >= b[col], "%s of %s never goes down: %s -> %s"
                      % (col, key, b[col], r[col]))
            if r["statements"] > b["statements"] + 100:
                moved += 1
                check(r["transactions"] > b["transactions"], "transactions moved on %s" % (key,))
                check(r["bytes_in"] > b["bytes_in"] and r["bytes_out"] > b["bytes_out"],
                      "bytes moved on %s" % (key,))
                check(0 < r["avg_us"] <= r["p99_us"] * 4 and r["p99_us"] < 10000000,
                      "latency of %s: avg %s, p99 %s" % (key, r["avg_us"], r["p99_us"]))
        check(moved >= 3, "statements moved on every shard's primary: %s" % after)
        check(any(after[k]["statements"] > mid[k]["statements"] for k in mid),
              "the counters moved between two looks during the run")
        a.close()


@test
def test_show_shards_lists_every_node_of_the_config():
    with Console("admin_shards", settings={"health_check_interval": "100"}) as p:
        a = p.admin()
        want = nodes_of_config(p)
        rows = wait_for("every node checked",
                        lambda: (lambda rs: rs if all(r["state"] == "up" for r in rs) else None)(
                            show(a, "SHARDS")))
        eq(sorted((r["shard"], r["role"], r["node"]) for r in rows), want, "nodes")
        for r in rows:
            eq(r["in_recovery"], "yes" if r["role"] == "replica" else "no",
               "in_recovery of %s" % r["node"])
            check(r["checked_at"] is not None, "checked_at of %s" % r["node"])
            check(r["error"] is None, "no error on %s" % r["node"])
            check(re.match(r"^[0-9A-F]+/[0-9A-F]+$", r["wal_lsn"] or ""),
                  "wal_lsn of %s: %r" % (r["node"], r["wal_lsn"]))
        # a replica's lag is measured against its primary's positions the checks saw
        rows = wait_for("replica lag measured",
                        lambda: (lambda rs: rs if all(r["lag_bytes"] is not None
                                                      for r in rs if r["role"] == "replica")
                                 else None)(show(a, "SHARDS")))
        for r in rows:
            if r["role"] == "replica":
                check(int(r["lag_bytes"]) >= 0 and int(r["lag_ms"]) >= 0,
                      "lag of %s: %s bytes, %s ms" % (r["node"], r["lag_bytes"], r["lag_ms"]))
            else:
                check(r["lag_bytes"] is None, "a primary has no lag: %r" % r["lag_bytes"])
        a.close()


@test
def test_psql_against_the_console():
    with Console("admin_psql") as p:
        out = subprocess.run(["psql", "-X", "-A", "-F", "|", "-v", "ON_ERROR_STOP=1",
                              "-c", "SHOW VERSION", "-c", "show config;", "-c", "SHOW ROUTE "
                              "select * from pgbench_accounts where aid = 7"],
                             env=p.env(ADMIN, ADMIN_PASSWORD, "pgshard"), capture_output=True,
                             text=True, timeout=30)
        eq(out.returncode, 0, "psql exit status (%s)" % out.stderr)
        lines = out.stdout.splitlines()
        check("version" in lines and any(x.startswith("pgshard ") for x in lines),
              "SHOW VERSION: %s" % lines[:3])
        check("section|key|value" in lines, "SHOW CONFIG columns: %s" % lines)
        check("proxy|admin_users|%s" % ADMIN in lines, "admin_users shown: %s" % lines)
        check("proxy|listen|127.0.0.1:%d" % p.port in lines, "listen shown")
        check("item|value" in lines, "SHOW ROUTE columns")
        check(any(re.match(r"^route\|shards?, shard \d$", x) for x in lines),
              "SHOW ROUTE routes by aid: %s" % lines)


@test
def test_non_admin_is_refused_with_42501():
    with Console("admin_refused") as p:
        r = rl.RawAt(p.port)
        try:
            r.startup(user="app", database="pgshard")
            raise rl.Failure("app logged in to the console")
        except rl.Failure as e:
            check("'C': '42501'" in str(e) and "admin_users" in str(e), "refusal: %s" % e)
        r.close()
        out = subprocess.run(["psql", "-X", "-c", "SHOW STATS"],
                             env=p.env("app", "app-secret", "pgshard"), capture_output=True,
                             text=True, timeout=30)
        check(out.returncode != 0 and "permission denied for the admin console" in out.stderr,
              "psql as app: %s" % out.stderr)
        # a wrong password is refused as a wrong password, before the admin check
        out = subprocess.run(["psql", "-X", "-c", "SHOW STATS"],
                             env=p.env(ADMIN, "wrong", "pgshard"), capture_output=True,
                             text=True, timeout=30)
        check(out.returncode != 0 and "password authentication failed" in out.stderr,
              "wrong password: %s" % out.stderr)
        p.healthy()


@test
def test_unknown_command_is_an_error_and_the_session_goes_on():
    with Console("admin_unknown") as p:
        a = p.admin()
        cur = a.cursor()
        for sql, word in (("SELECT 1", "SELECT"), ("SHOW COLD KEYS", "COLD"), ("SUSPEND", "SUSPEND")):
            try:
                cur.execute(sql)
                raise rl.Failure("%s succeeded" % sql)
            except psycopg2.Error as e:
                eq(e.pgcode, "0A000", "SQLSTATE of %s" % sql)
                check(word in str(e), "the error of %s names it: %s" % (sql, e))
        eq(len(show(a, "VERSION")), 1, "the session goes on")
        try:
            cur.execute(";")  # EmptyQueryResponse, which psycopg2 reports as PostgreSQL's
            raise rl.Failure("an empty query had a result")
        except psycopg2.ProgrammingError as e:
            check("empty query" in str(e), "empty query: %s" % e)
        eq(show(a, "version;")[0]["version"].split()[0], "pgshard", "lower case, semicolon")
        rec = wait_for("a recovery round", lambda: [r for r in show(a, "RECOVERY")
                                                    if r["rounds"] >= 1])
        eq(rec[0]["shards_off"], 0, "recovery covers every shard")
        a.close()


@test
def test_reload_applies_a_changed_config():
    with Console("admin_reload") as p:
        a = p.admin()
        pool = [r["value"] for r in show(a, "CONFIG") if r["key"] == "login_timeout"]
        eq(pool, ["60"], "login_timeout before")
        with open(p.ini) as f:
            text = f.read()
        with open(p.ini, "w") as f:
            f.write(text.replace("[proxy]\n", "[proxy]\nlogin_timeout = 42\n", 1))
        cur = a.cursor()
        cur.execute("RELOAD")
        eq(cur.statusmessage, "RELOAD", "tag")
        wait_for("login_timeout 42 in SHOW CONFIG",
                 lambda: [r for r in show(a, "CONFIG") if r["key"] == "login_timeout"
                          and r["value"] == "42"])
        # a broken file keeps the running config
        with open(p.ini, "w") as f:
            f.write(text.replace("[proxy]\n", "[proxy]\nbogus_key = 1\n", 1))
        cur.execute("reload;")
        wait_for("the failed reload in the log", lambda: "reload failed" in p.log_text())
        eq([r["value"] for r in show(a, "CONFIG") if r["key"] == "login_timeout"], ["42"],
           "the running config is kept")
        a.close()
        p.healthy()


@test
def test_show_transactions_lists_an_open_transaction_and_its_shards():
    with Console("admin_tx") as p:
        ensure_pgbench_tables(p)
        a = p.admin()
        eq([r for r in show(a, "TRANSACTIONS") if r["database"] == "app"], [],
           "no transaction before")
        c = rl.pg(p.port)
        c.autocommit = False
        cur = c.cursor()
        cur.execute("select count(*) from pgbench_branches")  # every shard joins
        cur.execute("update pgbench_branches set bbalance = bbalance where bid = 1")
        rows = [r for r in show(a, "TRANSACTIONS") if r["database"] == "app"]
        eq(len(rows), 1, "one open transaction: %s" % rows)
        r = rows[0]
        eq((r["user"], r["state"], r["implicit"]), ("app", "open", "no"), "its row")
        check(len(r["shards"].split(", ")) >= 2, "it joined several shards: %s" % r)
        eq(len(r["wrote"].split(", ")), 1, "it wrote on one: %s" % r)
        check(any(x["id"] == r["client"] and x["tx"] == "in transaction"
                  for x in show(a, "CLIENTS")), "SHOW CLIENTS agrees")
        c.rollback()
        eq([r for r in show(a, "TRANSACTIONS") if r["database"] == "app"], [],
           "none after ROLLBACK")
        c.close()
        a.close()


@test
def test_extended_protocol_gets_a_clear_error():
    with Console("admin_extended") as p:
        r = rl.RawAt(p.port)
        saved, tp.PASSWORD = tp.PASSWORD, ADMIN_PASSWORD  # what Raw answers a SCRAM request with
        try:
            r.startup(user=ADMIN, database="pgshard")
        finally:
            tp.PASSWORD = saved
        r.send(r.parse("", "SHOW STATS") + r.bind("", "") + r.execute() + r.SYNC)
        got = r.until_ready()
        kinds = [m[0] for m in got]
        eq(kinds, ["E", "Z"], "one error for the batch, then ReadyForQuery")
        fields = rl.parse_fields(got[0][1])
        eq(fields.get("C"), "0A000", "SQLSTATE")
        check("simple query protocol" in fields.get("M", ""), "message: %s" % fields)
        rows, tags, err, status = r.simple("SHOW VERSION")
        check(err is None and len(rows) == 1, "simple query after it: %s %s" % (rows, err))
        r.close()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=3)
