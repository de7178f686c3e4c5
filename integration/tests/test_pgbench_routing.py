#!/usr/bin/python3
"""pgbench on sharded tables, through pgshard (the routing issue's "must show").

  init       `pgbench -i -s 3` through pgshard leaves exactly the right rows on each shard:
             pgbench_accounts by aid, pgbench_tellers by tid, pgbench_branches by bid,
             pgbench_history by aid (placement computed here from the README's rules)
  select     `pgbench -S` in simple and prepared mode runs with no failed transaction, and
             every benchmark query ran on exactly one shard: the one that owns its aid (each
             shard's statement log is read back)

Needs integration/cluster.sh's cluster (its pgshard.ini shards the pgbench tables on map
"bench": bigint, 256 vnodes) and its env.sh (SHARD_PORTS, PGSHARD_DIR, PGSHARD_SOCKDIR).

Output: "ok NAME" / "FAIL NAME: why" per test, then exactly "N passed, N failed".
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402
from test_protocol import check, eq, test  # noqa: E402
import test_routing as rt  # noqa: E402

tp.TESTS.clear()

SCALE = 3
DIR = os.environ.get("PGSHARD_DIR", "")
SOCK = os.environ.get("PGSHARD_SOCKDIR", "")
BENCH = rt.ring(range(rt.N), 256)


def bench_shard(k):
    return rt.ring_shard(BENCH, rt.struct.pack("!q", k))


def pgbench(*args, timeout=600):
    p = subprocess.run(["pgbench"] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def superuser_sql(port, sql):
    cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", str(port),
           "-U", "postgres", "-d", "postgres", "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(cmd, check=True, capture_output=True, cwd="/", env=env, timeout=60)


@test
def init_scale_3_places_every_row():
    check(rt.N >= 2, "needs 2 or more shards in SHARD_PORTS, got %d" % rt.N)
    rc, out = pgbench("-i", "-s", str(SCALE), "-q")
    eq(rc, 0, "pgbench -i exit status (output: %s)" % out[-400:])
    tables = [("pgbench_accounts", "aid", 100000 * SCALE), ("pgbench_tellers", "tid", 10 * SCALE),
              ("pgbench_branches", "bid", SCALE), ("pgbench_history", "aid", 0)]
    for table, key, total in tables:
        got = rt.ids_on_each_shard(table, key)
        for i in range(rt.N):
            wrong = [k for k in got[i] if bench_shard(k) != i]
            check(not wrong, "%s: %d rows on shard %d belong elsewhere (e.g. %s)"
                  % (table, len(wrong), i, wrong[:3]))
        every = sorted(k for g in got for k in g)
        eq(every, list(range(1, total + 1)), "%s keys over all shards" % table)
        if total >= 1000:
            check(all(len(g) > 0 for g in got), "%s: a shard got no rows" % table)
    # the primary keys were created on every shard
    for i in range(rt.N):
        c = rt.shard(i)
        rows, _ = rt.q(c, "SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'pgbench%%' "
                          "AND indexname LIKE '%%pkey'")
        eq(rows, [(3,)], "primary keys on shard %d" % i)
        c.close()


def shard_logs():
    return [os.path.join(DIR, "logs", "shard%d-primary.log" % i) for i in range(rt.N)]


SIMPLE_RE = re.compile(r"statement: SELECT abalance FROM pgbench_accounts WHERE aid = (\d+);")
EXEC_RE = re.compile(r"execute \S+: SELECT abalance FROM pgbench_accounts WHERE aid = \$1")
PARAM_RE = re.compile(r"parameters: \$1 = '(\d+)'")


def aids_logged(path, offset):
    """aids of the select-only statements a shard logged after offset."""
    aids = []
    with open(path, errors="replace") as f:
        f.seek(offset)
        want_param = False
        for line in f:
            m = SIMPLE_RE.search(line)
            if m:
                aids.append(int(m.group(1)))
                continue
            if EXEC_RE.search(line):
                want_param = True
                continue
            m = PARAM_RE.search(line)
            if m and want_param:
                aids.append(int(m.group(1)))
                want_param = False
    return aids


@test
def select_only_runs_each_query_on_its_shard():
    ports = rt.SHARD_PORTS
    for port in ports:
        superuser_sql(port, "ALTER SYSTEM SET log_statement = 'all'")
        superuser_sql(port, "SELECT pg_reload_conf()")
    time.sleep(0.5)
    try:
        for mode, clients, txns in (("simple", 4, 250), ("prepared", 4, 250)):
            offsets = [os.path.getsize(p) for p in shard_logs()]
            rc, out = pgbench("-n", "-S", "-M", mode, "-c", str(clients), "-j", "2", "-t",
                              str(txns))
            eq(rc, 0, "pgbench -S -M %s exit status (output: %s)" % (mode, out[-400:]))
            want = clients * txns
            check("number of transactions actually processed: %d/%d" % (want, want) in out,
                  "-M %s: not all transactions processed: %s" % (mode, out[-300:]))
            check("number of failed transactions: 0 (" in out,
                  "-M %s: failed transactions: %s" % (mode, out[-300:]))
            time.sleep(0.3)  # the servers' log lines are written by now
            total = 0
            for i, path in enumerate(shard_logs()):
                aids = aids_logged(path, offsets[i])
                wrong = [a for a in aids if bench_shard(a) != i]
                check(not wrong, "-M %s: shard %d ran queries for aids of other shards: %s"
                      % (mode, i, wrong[:5]))
                total += len(aids)
            eq(total, want, "-M %s: select-only queries run on the shards, in total" % mode)
    finally:
        for port in ports:
            superuser_sql(port, "ALTER SYSTEM RESET log_statement")
            superuser_sql(port, "SELECT pg_reload_conf()")


if __name__ == "__main__":
    sys.exit(tp.run(set(sys.argv[1:])))
