#!/usr/bin/python3
"""Joins across shards (router/join_plan.h, proxy/join.c), end to end.

- test_differential_corpus: integration/difftest/joins.sql through test_gather.py's harness:
  every join query answers through pgshard what one PostgreSQL holding all the rows answers,
  in the simple protocol and the extended one with text and binary results (the still
  refused shapes must get 0A000).
- The issue's scenario on jn_orders (sharded by user_id, map dg) and jn_order_lines (sharded
  by order_id, map jn_lines; integration/cluster.sh): the join of one user's orders with their
  lines touches the orders shard of that user and only the lines shards that own that user's
  orders (per-shard statement counts of the admin console's SHOW STATS, and --route), and
  answers the right rows. A co-located pair inside the join (jn_orders joined to itself by
  user_id) costs one statement on its shard, not one per table.
- A side over max_join_rows gets 54000 naming it (driving side and probed side), so do rows
  over merge_memory bytes, and the session goes on; a join inside a transaction sees the transaction's own writes; a client
  can cancel a running join (57014) and go on.

Needs the env of a cluster.sh cluster (`. DIR/env.sh`), PGHOST/PGPORT/... for pgshard,
PGSHARD_BIN, and ROBUST_PORT_BASE for the extra pgshard instances of its own.
Run: /usr/bin/python3 integration/tests/test_joins.py [TEST ...]
"""

import os
import re
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402

import robustlib as rl  # noqa: E402
import test_protocol as tp  # noqa: E402
from robustlib import Failure, Proxy, check, cstr, data_row, eq, msg  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "difftest", "joins.sql")
TEST_TIMEOUT = float(os.environ.get("JOINS_TEST_TIMEOUT", "300"))
ADMIN, ADMIN_PASSWORD = "ops", "ops-secret"
TESTS = []

# users 100..119: orders 1000+u and 2000+u, each with lines; user 7: one order with 40 lines
USERS = range(100, 120)
BIG_USER, BIG_ORDER, BIG_LINES = 7, 7000, 40


def test(fn):
    TESTS.append(fn)
    return fn


class Console(Proxy):
    """A pgshard of its own (the cluster's tables) whose admin is ops."""

    def __init__(self, name, settings=None):
        settings = dict(settings or {})
        settings.setdefault("admin_users", ADMIN)
        super().__init__(name, settings=settings, extra_ini="")
        with open(os.path.join(self.work, "users.txt"), "a") as f:
            f.write('"%s" "%s"\n' % (ADMIN, ADMIN_PASSWORD))

    def admin(self):
        c = psycopg2.connect(host=rl.HOST, port=self.port, user=ADMIN, password=ADMIN_PASSWORD,
                             dbname="pgshard", connect_timeout=10)
        c.autocommit = True
        return c


def load_tables(conn):
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS jn_orders, jn_order_lines")
    cur.execute("CREATE TABLE jn_orders (id bigint, user_id bigint, note text)")
    cur.execute("CREATE TABLE jn_order_lines (order_id bigint, line int, sku text, qty int)")
    orders = []
    for u in USERS:
        orders += [(1000 + u, u, "first of %d" % u), (2000 + u, u, None)]
    orders.append((BIG_ORDER, BIG_USER, "big"))
    cur.execute("INSERT INTO jn_orders (id, user_id, note) VALUES " +
                ", ".join(cur.mogrify("(%s, %s, %s)", o).decode() for o in orders))
    lines = []
    for u in USERS:
        for o in (1000 + u, 2000 + u):
            for n in range(1, 1 + (o % 3) + 1):
                lines.append((o, n, "sku-%d-%d" % (o, n), n * 2))
    lines += [(BIG_ORDER, n, "big-%d" % n, n) for n in range(1, BIG_LINES + 1)]
    lines.append((999999, 1, "no order", 1))
    cur.execute("INSERT INTO jn_order_lines (order_id, line, sku, qty) VALUES " +
                ", ".join(cur.mogrify("(%s, %s, %s, %s)", r).decode() for r in lines))
    return orders, lines


def shards_holding(table, column, values):
    """The shards (by direct reads) holding rows of table whose column is one of values."""
    out = set()
    for i, rows in enumerate(rl.on_shards("SELECT count(*) FROM %s WHERE %s = ANY(%%s)"
                                          % (table, column), (list(values),))):
        if rows[0][0] > 0:
            out.add(i)
    return out


def statements_by_shard(admin):
    cur = admin.cursor()
    cur.execute("SHOW STATS")
    names = [d[0] for d in cur.description]
    per = {}
    for row in cur.fetchall():
        r = dict(zip(names, row))
        if r["role"] == "primary":
            per[int(r["shard"])] = per.get(int(r["shard"]), 0) + int(r["statements"])
    return per


SCENARIO = ("SELECT o.id, o.user_id, l.line, l.sku, l.qty FROM jn_orders o "
            "JOIN jn_order_lines l ON l.order_id = o.id WHERE o.user_id = %d ORDER BY o.id, l.line")


@test
def test_differential_corpus():
    env = dict(os.environ, GATHER_CORPUS=CORPUS)
    p = subprocess.run([sys.executable, os.path.join(HERE, "test_gather.py")], env=env,
                       capture_output=True, text=True, timeout=TEST_TIMEOUT - 30)
    out = p.stdout + p.stderr
    for line in out.splitlines():
        if not line.startswith("ok "):
            print("  [corpus] " + line, flush=True)
    m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    check(m is not None, "no summary from test_gather.py: %s" % out[-400:])
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    check(int(m.group(2)) == 0 and not fails, "%s failed: %s" % (m.group(2), " | ".join(fails[:5])))
    queries = len(re.findall(r"^-- @ ", open(CORPUS).read(), re.M))
    check(queries >= 40, "only %d queries in %s" % (queries, CORPUS))
    # every query in every mode, plus the harness's own checks
    check(int(m.group(1)) >= 3 * queries, "only %s passed for %d queries" % (m.group(1), queries))


@test
def test_one_users_orders_touch_their_shards_only():
    with Console("joins-stats") as px:
        c = rl.pg(px.port)
        orders, lines = load_tables(c)
        # a user whose orders are on one shard and whose lines are on other shards, so that
        # a shard runs nothing of the join
        pick = None
        for u in USERS:
            ids = [o[0] for o in orders if o[1] == u]
            osh = shards_holding("jn_orders", "user_id", [u])
            lsh = shards_holding("jn_order_lines", "order_id", ids)
            check(len(osh) == 1, "user %d's orders on shards %s" % (u, osh))
            if len(osh | lsh) < len(rl.SHARD_PORTS) and not lsh <= osh:
                pick = (u, ids, osh, lsh)
                break
        check(pick is not None, "no user whose join leaves a shard out (placement changed?)")
        u, ids, osh, lsh = pick
        sql = SCENARIO % u
        want = sorted((o[0], o[1], ln[1], ln[2], ln[3]) for o in orders if o[1] == u
                      for ln in lines if ln[0] == o[0])

        # --route: jn_orders drives on its one shard, the lines by their key
        route = subprocess.run([rl.pgshard_bin(), "-c", px.ini, "--route", sql],
                               capture_output=True, text=True, timeout=30).stdout
        check("step 1:    join" in route, "--route shows no join step: %s" % route)
        m = re.search(r"^join 1:    drive jn_orders on shard (\d+) ", route, re.M)
        check(m is not None and {int(m.group(1))} == osh,
              "--route drives elsewhere than %s: %s" % (osh, route))
        check("probe jn_order_lines by l.order_id = ANY($1) (keys: o.id), 1000 keys a batch, "
              "only on the shards owning the keys" in route, "--route: %s" % route)

        cur = c.cursor()
        cur.execute(sql)  # once, so that every link it takes has its settings already
        eq(cur.fetchall(), want, "the first run's rows")
        admin = px.admin()
        before = statements_by_shard(admin)
        cur.execute(sql)
        got = cur.fetchall()
        after = statements_by_shard(admin)
        eq(got, want, "the join's rows")
        ran = {s for s in after if after[s] != before.get(s, 0)}
        print("  user %d: orders on shard %s, lines on shards %s; statements per shard %s"
              % (u, sorted(osh), sorted(lsh),
                 {s: after[s] - before.get(s, 0) for s in sorted(after)}), flush=True)
        eq(ran, osh | lsh, "shards that ran statements (orders on %s, lines on %s)" % (osh, lsh))
        # the orders shard: the driving statement and the final one; a lines shard: one probe
        for s in lsh - osh:
            eq(after[s] - before[s], 1, "statements on lines shard %d" % s)
        c.close()
        admin.close()
        px.healthy()


PAIR = ("SELECT o.id, o2.id, l.line FROM jn_orders o JOIN jn_orders o2 ON o2.user_id = o.user_id "
        "JOIN jn_order_lines l ON l.order_id = o.id WHERE o.user_id = %d ORDER BY 1, 2, 3")


@test
def test_co_located_pair_costs_one_statement_per_shard():
    """o and o2 (one map, joined by their shard key) are fetched by one statement on the user's
    shard, not one each: that shard runs it and the final statement (and a probe of the lines
    when some are there), the other lines shards one probe each."""
    with Console("joins-pair") as px:
        c = rl.pg(px.port)
        orders, lines = load_tables(c)
        u = USERS[3]
        ids = [o[0] for o in orders if o[1] == u]
        osh = shards_holding("jn_orders", "user_id", [u])
        lsh = shards_holding("jn_order_lines", "order_id", ids)
        check(len(osh) == 1, "user %d's orders on shards %s" % (u, osh))
        sql = PAIR % u
        want = sorted((o[0], o2[0], ln[1]) for o in orders if o[1] == u
                      for o2 in orders if o2[1] == u for ln in lines if ln[0] == o[0])
        check(len(want) > len(ids), "user %d: too few rows to show duplicates" % u)

        route = subprocess.run([rl.pgshard_bin(), "-c", px.ini, "--route", sql],
                               capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"^join 1:    drive jn_orders with jn_orders \(o2\), a co-located pair "
                      r"in one statement on shard (\d+) ", route, re.M)
        check(m is not None and {int(m.group(1))} == osh,
              "--route shows no pair step on shard %s: %s" % (osh, route))
        check(re.search(r"^join 2:    probe jn_order_lines ", route, re.M) is not None and
              not re.search(r"^join \d+:    probe jn_orders", route, re.M),
              "--route: %s" % route)

        cur = c.cursor()
        cur.execute(sql)  # once, so that every link it takes has its settings already
        eq(cur.fetchall(), want, "the first run's rows")
        admin = px.admin()
        before = statements_by_shard(admin)
        cur.execute(sql)
        got = cur.fetchall()
        after = statements_by_shard(admin)
        eq(got, want, "the join's rows")
        ran = {s: after[s] - before.get(s, 0) for s in after if after[s] != before.get(s, 0)}
        print("  user %d: orders on shard %s, lines on shards %s; statements per shard %s"
              % (u, sorted(osh), sorted(lsh), ran), flush=True)
        # the pair's shard: SHOW extra_float_digits, the pair's one statement and the final
        # one (and the lines' probe if it owns some); as two sides it would run one more
        expect = {s: 1 for s in lsh}
        for s in osh:
            expect[s] = expect.get(s, 0) + 3
        eq(ran, expect, "statements per shard (orders on %s, lines on %s)" % (osh, lsh))
        c.close()
        admin.close()
        px.healthy()


@test
def test_side_over_max_join_rows_gets_54000():
    with Proxy("joins-cap", settings={"max_join_rows": "30"}, extra_ini="") as px:
        c = rl.pg(px.port)
        load_tables(c)
        cur = c.cursor()
        # the driving side: 41 orders with no filter
        try:
            cur.execute("SELECT count(*) FROM jn_orders o JOIN jn_order_lines l "
                        "ON l.order_id = o.id")
            raise Failure("a join of 41 orders passed max_join_rows = 30")
        except psycopg2.Error as e:
            eq(e.pgcode, "54000", "SQLSTATE over the cap")
            check("max_join_rows = 30" in e.pgerror and "jn_orders" in e.pgerror,
                  "message: %s" % e.pgerror)
        # the probed side: one order, 40 lines
        try:
            cur.execute(SCENARIO % BIG_USER)
            raise Failure("40 lines passed max_join_rows = 30")
        except psycopg2.Error as e:
            eq(e.pgcode, "54000", "SQLSTATE over the cap (probe)")
            check("jn_order_lines" in e.pgerror, "message: %s" % e.pgerror)
        # under it, the same session goes on
        cur.execute(SCENARIO % 101)
        check(len(cur.fetchall()) > 0, "no rows for user 101")
        c.close()
        px.healthy()


@test
def test_subquery_run_first_is_capped_and_shown_first():
    with Proxy("joins-subcap", settings={"max_join_rows": "30"}, extra_ini="") as px:
        c = rl.pg(px.port)
        load_tables(c)
        cur = c.cursor()
        under = ("SELECT o.id FROM jn_orders o WHERE o.user_id = 101 AND o.id NOT IN "
                 "(SELECT l.order_id FROM jn_order_lines l WHERE l.order_id = 1101) ORDER BY 1")
        # --route: the subquery first (as its own plan runs it: on the one shard of its key),
        # then the statement's table, then the statement over them
        route = subprocess.run([rl.pgshard_bin(), "-c", px.ini, "--route", under],
                               capture_output=True, text=True, timeout=30).stdout
        steps = re.findall(r"^join (\d+):    (\S+ \S+)", route, re.M)
        eq([s[1] for s in steps], ["subquery first", "drive jn_orders", "the statement"],
           "--route steps: %s" % route)
        check("its answer is $1): itself, as its own plan runs it, on shard " in route and
              "NOT o.id = ANY($1)" in route, "--route: %s" % route)
        # a subquery its shards cannot answer alone (DISTINCT): its table's rows first, then
        # the subquery over them on one shard
        distinct = ("SELECT count(*) FROM jn_orders WHERE note NOT IN "
                    "(SELECT DISTINCT sku FROM jn_order_lines)")
        route = subprocess.run([rl.pgshard_bin(), "-c", px.ini, "--route", distinct],
                               capture_output=True, text=True, timeout=30).stdout
        steps = re.findall(r"^join (\d+):    (\S+ \S+)", route, re.M)
        eq([s[1] for s in steps],
           ["subquery first", "the subquery", "drive jn_orders", "the statement"],
           "--route steps: %s" % route)
        # ... its table: 97 lines with no filter of its own
        try:
            cur.execute(distinct)
            raise Failure("a subquery over 97 lines passed max_join_rows = 30")
        except psycopg2.Error as e:
            eq(e.pgcode, "54000", "SQLSTATE over the cap (a subquery's rows)")
            check("max_join_rows = 30 rows of jn_order_lines" in e.pgerror,
                  "message: %s" % e.pgerror)
        # run as it is, its answer: 97 values
        try:
            cur.execute("SELECT count(*) FROM jn_orders WHERE note NOT IN "
                        "(SELECT sku FROM jn_order_lines)")
            raise Failure("a subquery answering 97 values passed max_join_rows = 30")
        except psycopg2.Error as e:
            eq(e.pgcode, "54000", "SQLSTATE over the cap (a subquery's answer)")
            check("max_join_rows = 30 values" in e.pgerror and "jn_order_lines" in e.pgerror,
                  "message: %s" % e.pgerror)
        # its answer: order 1101's one line, 40 values
        try:
            cur.execute("SELECT count(*) FROM jn_orders o WHERE o.user_id = 101 AND o.id NOT IN "
                        "(SELECT generate_series(1, 40) FROM jn_order_lines l "
                        "WHERE l.order_id = 1101)")
            raise Failure("a subquery answering 40 values passed max_join_rows = 30")
        except psycopg2.Error as e:
            eq(e.pgcode, "54000", "SQLSTATE over the cap (a subquery's answer)")
            check("max_join_rows = 30" in e.pgerror and "answer" in e.pgerror,
                  "message: %s" % e.pgerror)
        # a scalar subquery with two rows (order 1102's lines): PostgreSQL's own error, before
        # the statement's table (41 orders, over the cap) is fetched
        try:
            cur.execute("SELECT count(*) FROM jn_orders o WHERE o.id = "
                        "(SELECT l.order_id FROM jn_order_lines l WHERE l.order_id = 1102)")
            raise Failure("a scalar subquery of 2 rows gave an answer")
        except psycopg2.Error as e:
            eq(e.pgcode, "21000", "SQLSTATE of a scalar subquery with more than one row")
            check("more than one row returned by a subquery used as an expression"
                  in e.pgerror, "message: %s" % e.pgerror)
        # a bare name that is the outer query's column: the subquery, run on its own, does not
        # know it (42703); pgshard says what that means instead
        try:
            cur.execute("SELECT count(*) FROM jn_orders o WHERE o.user_id = 101 AND o.id NOT IN "
                        "(SELECT order_id FROM jn_order_lines WHERE line > user_id)")
            raise Failure("a subquery reading the outer query's user_id ran on its own")
        except psycopg2.Error as e:
            eq(e.pgcode, "0A000", "SQLSTATE of a subquery with the outer query's bare column")
            check("the subquery is correlated" in e.pgerror and "user_id" in e.pgerror,
                  "message: %s" % e.pgerror)
        # under the cap, the same session goes on
        cur.execute(under)
        eq(cur.fetchall(), [(2101,)], "rows of the NOT IN under the cap")
        c.close()
        px.healthy()


@test
def test_rows_over_merge_memory_get_54000():
    with Proxy("joins-bytes", settings={"merge_memory": "1024"}, extra_ini="") as px:
        c = rl.pg(px.port)
        load_tables(c)
        cur = c.cursor()
        try:
            cur.execute("SELECT count(*) FROM jn_orders o JOIN jn_order_lines l "
                        "ON l.order_id = o.id")
            raise Failure("a join holding more than 1024 bytes of rows passed merge_memory")
        except psycopg2.Error as e:
            eq(e.pgcode, "54000", "SQLSTATE over merge_memory")
            check("merge_memory = 1024" in e.pgerror, "message: %s" % e.pgerror)
        cur.execute(SCENARIO % 101)
        check(len(cur.fetchall()) > 0, "no rows for user 101")
        c.close()
        px.healthy()


@test
def test_join_in_a_transaction_sees_its_writes():
    c = rl.pg()
    orders, lines = load_tables(c)
    c.autocommit = False
    cur = c.cursor()
    cur.execute("SELECT count(*) FROM jn_orders o JOIN jn_order_lines l ON l.order_id = o.id "
                "WHERE o.user_id = 105")
    n = cur.fetchone()[0]
    cur.execute("INSERT INTO jn_order_lines (order_id, line, sku, qty) VALUES (1105, 99, 'new', 1)")
    cur.execute("SELECT l.sku FROM jn_orders o JOIN jn_order_lines l ON l.order_id = o.id "
                "WHERE o.user_id = 105 ORDER BY l.sku")
    got = [r[0] for r in cur.fetchall()]
    eq(len(got), n + 1, "rows with the transaction's own line")
    check("new" in got, "the new line is not joined: %s" % got)
    c.rollback()
    cur.execute("SELECT count(*) FROM jn_orders o JOIN jn_order_lines l ON l.order_id = o.id "
                "WHERE o.user_id = 105")
    eq(cur.fetchone()[0], n, "rows after ROLLBACK")
    c.rollback()
    c.close()


@test
def test_extended_protocol_binary_parameter_and_row_limit():
    c = rl.pg()
    orders, lines = load_tables(c)
    c.close()
    R = tp.Raw
    sql = ("SELECT o.id, l.line, l.sku FROM jn_orders o JOIN jn_order_lines l "
           "ON l.order_id = o.id WHERE o.user_id = $1 ORDER BY o.id, l.line")
    want = sorted([str(o[0]), str(ln[1]), ln[2]] for o in orders if o[1] == 101
                  for ln in lines if ln[0] == o[0])
    # $1 an int8 in binary; results in text
    bind = msg(b"B", cstr("") + cstr("") + struct.pack("!hh", 1, 1) + struct.pack("!h", 1)
               + struct.pack("!iq", 8, 101) + struct.pack("!h", 0))
    r = rl.login(rl.MAIN_PORT)
    r.send(R.parse("", sql, [20]) + bind + R.describe(b"P", "") + R.execute() + R.SYNC)
    got = r.until_ready()
    kinds = [k for k, _ in got]
    eq([k for k in kinds if k != "D"], ["1", "2", "T", "C", "Z"], "the answer's messages")
    eq(sorted(data_row(b) for k, b in got if k == "D"), want, "rows of user 101")
    eq([b for k, b in got if k == "C"], [b"SELECT %d\x00" % len(want)], "the tag")
    # an Execute with a row limit: refused, the session goes on
    r.send(R.parse("", sql, [20]) + bind + R.execute("", 1) + R.SYNC)
    got = r.until_ready()
    errs = [tp.parse_fields(b) for k, b in got if k == "E"]
    eq([e.get("C") for e in errs], ["0A000"], "a row limit on a join")
    check("row limit" in errs[0].get("M", ""), "message: %r" % errs[0])
    eq(r.simple("SELECT 1")[0], [["1"]], "the session goes on")
    r.close()


@test
def test_join_in_a_query_string_of_several_statements():
    c = rl.pg()
    load_tables(c)
    cur = c.cursor()
    # psycopg2 sends the string as one Query: its statements run one by one, in one transaction
    cur.execute("INSERT INTO jn_order_lines (order_id, line, sku, qty) VALUES (1101, 77, 'b', 1); "
                "SELECT l.sku FROM jn_orders o JOIN jn_order_lines l ON l.order_id = o.id "
                "WHERE o.user_id = 101 AND l.line = 77")
    eq(cur.fetchall(), [("b",)], "the join sees the string's own INSERT")
    try:
        cur.execute("INSERT INTO jn_order_lines (order_id, line, sku, qty) VALUES "
                    "(1101, 78, 'c', 1); SELECT count(*) FROM jn_orders o JOIN jn_order_lines l "
                    "ON l.order_id = o.id; SELECT 1/0")
        raise Failure("1/0 passed")
    except psycopg2.Error as e:
        eq(e.pgcode, "22012", "the string's error")
    cur.execute("SELECT count(*) FROM jn_order_lines WHERE line = 78")
    eq(cur.fetchone()[0], 0, "the failed string's INSERT is rolled back")
    c.close()


@test
def test_rounded_float_output_is_refused():
    c = rl.pg()
    load_tables(c)
    cur = c.cursor()
    cur.execute("SET extra_float_digits = 0")
    try:
        cur.execute(SCENARIO % 101)
        raise Failure("a join ran with extra_float_digits = 0")
    except psycopg2.Error as e:
        eq(e.pgcode, "0A000", "SQLSTATE with rounded floats")
        check("extra_float_digits" in e.pgerror, "message: %s" % e.pgerror)
    cur.execute("SET extra_float_digits = 1")
    cur.execute(SCENARIO % 101)
    check(len(cur.fetchall()) > 0, "no rows for user 101")
    c.close()


@test
def test_client_cancels_a_running_join():
    c = rl.pg()
    load_tables(c)
    cur = c.cursor()
    err = []

    def run():
        try:
            cur.execute("SELECT o.id, l.line FROM jn_orders o JOIN jn_order_lines l "
                        "ON l.order_id = o.id WHERE pg_sleep(0.2) IS NOT NULL")
        except psycopg2.Error as e:
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    c.cancel()
    t.join(60)
    check(not t.is_alive(), "the join still runs after the cancel")
    check(len(err) == 1, "the join was not cancelled")
    eq(err[0].pgcode, "57014", "SQLSTATE of the cancelled join")
    cur.execute("SELECT count(*) FROM jn_orders o JOIN jn_order_lines l ON l.order_id = o.id "
                "WHERE o.user_id = 101")
    check(cur.fetchone()[0] > 0, "the session after the cancel")
    c.close()


@test
def test_shard_connection_lost_during_a_join():
    c = rl.pg()
    load_tables(c)
    cur = c.cursor()
    err = []

    def run():
        try:
            cur.execute("SELECT o.id, l.line FROM jn_orders o JOIN jn_order_lines l "
                        "ON l.order_id = o.id WHERE pg_sleep(0.2) IS NOT NULL")
        except psycopg2.Error as e:
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    killed = 0
    deadline = time.time() + 20
    while killed == 0 and time.time() < deadline:
        # active only: an idle pooled backend still shows the last join it ran
        for rows in rl.on_shards("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE state = 'active' AND query LIKE '%%unnest(%%' "
                                 "AND pid <> pg_backend_pid()"):
            killed += len(rows)
        time.sleep(0.1)
    t.join(60)
    check(killed > 0, "no backend ran the join's final statement")
    check(not t.is_alive(), "the join still runs after its shard connection was lost")
    check(len(err) == 1, "the join did not fail")
    check(err[0].pgcode in ("57P01", "08006", None), "SQLSTATE %r" % err[0].pgcode)
    c.close()
    c = rl.pg()
    cur = c.cursor()
    cur.execute(SCENARIO % 101)
    check(len(cur.fetchall()) > 0, "a new session's join after the lost connection")
    c.close()


if __name__ == "__main__":
    rl.main(TESTS, TEST_TIMEOUT, min_shards=2)
