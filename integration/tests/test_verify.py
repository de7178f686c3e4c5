#!/usr/bin/python3
"""Read-only consistency checks (`pgshard --check-reference`, `pgshard --check-placement`)
against real shards: on tables of 1,000,000 rows they report nothing on a clean cluster and
exactly the rows planted directly on a shard (one changed, one deleted, one extra on a reference
table; one row on the wrong shard of a sharded table), with the checker's memory bounded: its
maximum resident set size (/usr/bin/time -v) under 64 MB, and no more than 16 MB above that of
a check of 1,000 rows (the sanitizer build alone starts at about 50 MB).

The tables are made directly on every shard (as the app user) and loaded directly on each
shard: the reference table with INSERT ... SELECT generate_series on each, the sharded table's
rows on the shard pgshard's map gives them (the ring computed here from libxxhash, as
README.md's Placement describes it, and checked against `pgshard --route` for a sample of keys).
The checks run with a config of this suite's own: the cluster's shards and this suite's tables.

Needs the env of a running cluster.sh cluster (`. DIR/env.sh`) and PGSHARD_BIN:
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_verify.py [TEST ...]
"""

import bisect
import ctypes
import io
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402
from robustlib import Failure, check, eq  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("VERIFY_TEST_TIMEOUT", "240"))
ROWS = int(os.environ.get("VERIFY_ROWS", "1000000"))
# The checker's peak memory may not grow with the tables: a check of 1,000,000 rows stays within
# MEMORY_GROWTH_MB of one of 1,000 rows, and under MEMORY_BOUND_MB in all (a sanitizer build
# starts at about 50 MB of its own, so there only the growth is bounded).
MEMORY_BOUND_MB = 64
MEMORY_GROWTH_MB = 16
TESTS = []

SUITE_TABLES = """
[table.vr_ref]
reference = yes

[table.vr_names]
reference = yes

[table.vr_nokey]
reference = yes

[map.vr_users]
kind = hash
key = bigint
shards = %(all)s
vnodes = 256

[table.vr_items]
key = id
map = vr_users

[map.vr_ranges]
kind = range
key = bigint
range = - 1000 0
range = 1000 2000 1
range = 2000 - %(last)d

[table.vr_events]
key = id
map = vr_ranges
"""

SCHEMA = [
    "drop table if exists vr_ref, vr_names, vr_nokey, vr_items, vr_events",
    "create table vr_ref (id bigint primary key, name text, amount numeric, day date, "
    "at timestamptz)",
    "create table vr_names (name text primary key, n int)",
    "create table vr_nokey (a int, b text)",
    "create table vr_items (id bigint primary key, note text)",
    "create table vr_events (id bigint, what text)",
]


def test(fn):
    TESTS.append(fn)
    return fn


def config_path():
    """This suite's config: the cluster's [proxy], [auth] and [shard.N] sections, and its own
    tables."""
    path = os.path.join(tempfile.gettempdir(), "pgshard-verify-%d.ini" % os.getpid())
    if os.path.exists(path):
        return path
    with open(os.path.join(rl.PGSHARD_DIR, "pgshard.ini")) as f:
        text = f.read()
    keep, out = False, []
    for line in text.splitlines():
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            keep = m.group(1) in ("proxy", "auth") or m.group(1).startswith("shard.")
        if keep:
            if line.startswith("users ="):
                line = "users = " + os.path.join(rl.PGSHARD_DIR, "users.txt")
            out.append(line)
    n = len(rl.SHARD_PORTS)
    out.append(SUITE_TABLES % {"all": ", ".join(str(s) for s in range(n)), "last": n - 1})
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def run_check(kind, *tables, extra=()):
    """Runs pgshard --check-KIND under /usr/bin/time -v: (exit status, finding lines, summary
    lines, stderr, max RSS in MB)."""
    cmd = ["/usr/bin/time", "-v", rl.pgshard_bin(), "-c", config_path(), "--check-" + kind]
    cmd += list(extra) + list(tables)
    env = dict(os.environ)
    # ASan keeps freed memory in a quarantine (256 MB by default) that would be counted as
    # the checker's own; a small one leaves what the checker holds.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TEST_TIMEOUT, env=env)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    check(m is not None, "no /usr/bin/time report: %r" % p.stderr[-300:])
    rss_mb = int(m.group(1)) / 1024.0
    err = "\n".join(line for line in p.stderr.splitlines()
                    if not line.startswith("\t") and "Command exited" not in line)
    lines = p.stdout.splitlines()
    summaries = [s for s in lines if re.match(r"^\S+: (reference table|sharded by map)", s)]
    findings = [s for s in lines if s not in summaries]
    return p.returncode, findings, summaries, err, rss_mb


# ---------------------------------------------------------------------------------------
# the map's placement, as README.md's Placement describes it

_xxh = None
RING_SEED = 0x0070677368617264


def xxh64(data, seed=0):
    global _xxh
    if _xxh is None:
        _xxh = ctypes.CDLL("libxxhash.so.0")
        _xxh.XXH64.restype = ctypes.c_uint64
        _xxh.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    return _xxh.XXH64(data, len(data), seed)


def ring(shards, vnodes=256):
    points = sorted((xxh64(struct.pack(">II", s, v), RING_SEED), s)
                    for s in shards for v in range(vnodes))
    return [p for p, _ in points], [s for _, s in points]


def shard_of(r, key):
    points, owners = r
    i = bisect.bisect_left(points, xxh64(struct.pack(">q", key)))
    return owners[i % len(points)]


def run_on(shard, sql, args=None):
    c = rl.su(shard)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def each_shard(fn):
    """fn(shard) on every shard at once (one thread each); re-raises the first failure."""
    errors = []

    def run(s):
        try:
            fn(s)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(len(rl.SHARD_PORTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


_placement = {}


def placement():
    if not _placement:
        _placement["ring"] = ring(range(len(rl.SHARD_PORTS)))
    return _placement["ring"]


@test
def setup():
    for sql in SCHEMA:
        rl.as_app_on_shards(sql)
    r = placement()
    # the ring computed here is pgshard's: a sample of keys routed by pgshard --route
    sample = [1, 2, 3, 17, 4242, 99999, ROWS]
    out = subprocess.run([rl.pgshard_bin(), "-c", config_path(), "--route"] +
                         ["select * from vr_items where id = %d" % k for k in sample],
                         capture_output=True, text=True, timeout=60).stdout
    routed = [int(s) for s in re.findall(r"^route:\s+shards?, shard (\d+)$", out, re.M)]
    eq(routed, [shard_of(r, k) for k in sample], "shards of sample keys (pgshard --route)")

    def load(s):
        c = rl.su(s)
        try:
            with c.cursor() as cur:
                cur.execute("insert into vr_ref select g, 'name ' || g, g * 1.25, "
                            "date '2020-01-01' + g %% 1000, timestamptz '2020-01-01 00:00+00' + "
                            "g * interval '1 minute' from generate_series(1, %d) g" % ROWS)
                cur.execute("insert into vr_names select 'n' || g, g from generate_series(1, 5000) g")
                cur.execute("insert into vr_nokey select g % 100, 'b' || (g % 100) "
                            "from generate_series(1, 1000) g")
                buf = io.StringIO("".join("%d\titem %d\n" % (k, k) for k in range(1, ROWS + 1)
                                          if shard_of(r, k) == s))
                cur.copy_from(buf, "vr_items", columns=("id", "note"))
                # range map: [0, 1000) on 0, [1000, 2000) on 1, [2000, ...) on the last
                lo, hi = {0: (0, 1000), 1: (1000, 2000),
                          len(rl.SHARD_PORTS) - 1: (2000, 3000)}.get(s, (0, 0))
                cur.execute("insert into vr_events select g, 'e' from generate_series(%d, %d) g"
                            % (lo, hi - 1))
                cur.execute("vacuum (freeze, analyze) vr_ref, vr_items")
        finally:
            c.close()

    each_shard(load)
    counts = rl.on_shards("select count(*) from vr_items")
    eq(sum(c[0][0] for c in counts), ROWS, "rows of vr_items over the shards")


_baseline = {}


def check_memory(what, rss):
    """rss (MB) of a check over 1,000,000 rows within the bounds (see MEMORY_BOUND_MB)."""
    if not _baseline:
        _, _, _, _, small = run_check("reference", "vr_nokey")
        ldd = subprocess.run(["ldd", rl.pgshard_bin()], capture_output=True, text=True).stdout
        _baseline["rss"], _baseline["asan"] = small, "libasan" in ldd
    check(rss <= _baseline["rss"] + MEMORY_GROWTH_MB,
          "%s used %.1f MB, %.1f MB more than a check of 1,000 rows (bound %d MB)"
          % (what, rss, rss - _baseline["rss"], MEMORY_GROWTH_MB))
    check(_baseline["asan"] or rss < MEMORY_BOUND_MB,
          "%s used %.1f MB (bound %d MB)" % (what, rss, MEMORY_BOUND_MB))


def expect_clean(kind, tables=()):
    rc, findings, summaries, err, rss = run_check(kind, *tables)
    eq((rc, findings, err), (0, [], ""), "--check-%s on a clean cluster" % kind)
    check_memory("--check-" + kind, rss)
    print("  --check-%s: %s; max RSS %.1f MB (%.1f MB for 1,000 rows)"
          % (kind, " | ".join(summaries), rss, _baseline["rss"]), flush=True)
    return summaries


@test
def test_reference_tables_clean_report_nothing():
    summaries = expect_clean("reference")
    eq(len(summaries), 3, "one summary per reference table: %r" % summaries)
    check(any(s.startswith("vr_ref: reference table, %d rows" % ROWS) for s in summaries),
          "summary of vr_ref: %r" % summaries)


@test
def test_reference_reports_exactly_the_planted_rows():
    run_on(0, "update vr_ref set name = 'changed' where id = 4242")
    run_on(1, "delete from vr_ref where id = 777777")
    run_on(2, "insert into vr_ref values (%d, 'extra', 1, null, null)" % (ROWS + 5))
    try:
        rc, findings, summaries, err, rss = run_check("reference", "vr_ref")
        eq((rc, err), (1, ""), "exit status and errors of --check-reference")
        eq(sorted(findings), sorted([
            "vr_ref: key 4242: changed on shard 0 (shards 1, 2 agree)",
            "vr_ref: key 777777: missing on shard 1 (shards 0, 2 agree)",
            "vr_ref: key %d: extra on shard 2 (shards 0, 1 lack it)" % (ROWS + 5),
        ]), "the rows that differ")
        check(summaries and summaries[0].endswith(")") and ": 3 differences" in summaries[0],
              "summary: %r" % summaries)
        check_memory("--check-reference", rss)
        print("  " + summaries[0] + "; max RSS %.1f MB" % rss, flush=True)
    finally:
        run_on(0, "update vr_ref set name = 'name 4242' where id = 4242")
        run_on(1, "insert into vr_ref select g, 'name ' || g, g * 1.25, date '2020-01-01' + "
               "g % 1000, timestamptz '2020-01-01 00:00+00' + g * interval '1 minute' "
               "from generate_series(777777, 777777) g")
        run_on(2, "delete from vr_ref where id = %d" % (ROWS + 5))


@test
def test_reference_text_key_and_table_without_key():
    run_on(1, "update vr_names set n = -1 where name = 'n42'")
    run_on(0, "insert into vr_names values (E'tab\\there', 1)")
    run_on(2, "delete from vr_nokey where ctid = (select min(ctid) from vr_nokey where a = 7)")
    run_on(0, "insert into vr_nokey values (8, 'b8')")
    try:
        rc, findings, _, err, _ = run_check("reference", "vr_names", "vr_nokey")
        eq((rc, err), (1, ""), "exit status and errors")
        eq(sorted(findings), sorted([
            "vr_names: key n42: changed on shard 1 (shards 0, 2 agree)",
            "vr_names: key tab\\there: extra on shard 0 (shards 1, 2 lack it)",
            "vr_nokey: row (7,b7): 9 copies on shard 2 (10 on shards 0, 1)",
            "vr_nokey: row (8,b8): 11 copies on shard 0 (10 on shards 1, 2)",
        ]), "the rows that differ")
    finally:
        run_on(1, "update vr_names set n = 42 where name = 'n42'")
        run_on(0, "delete from vr_names where name = E'tab\\there'")
        run_on(2, "insert into vr_nokey values (7, 'b7')")
        run_on(0, "delete from vr_nokey where ctid = (select min(ctid) from vr_nokey where a = 8)")


@test
def test_sharded_tables_clean_report_nothing():
    summaries = expect_clean("placement")
    check(any(s.startswith("vr_items: sharded by map vr_users, %d rows" % ROWS) for s in summaries),
          "summary of vr_items: %r" % summaries)


@test
def test_placement_reports_the_row_on_the_wrong_shard():
    r = placement()
    key = ROWS + 1
    home = shard_of(r, key)
    wrong = (home + 1) % len(rl.SHARD_PORTS)
    run_on(wrong, "insert into vr_items values (%d, 'misplaced')" % key)
    run_on(0, "insert into vr_events values (1500, 'misplaced')")
    try:
        rc, findings, summaries, err, rss = run_check("placement")
        eq((rc, err), (1, ""), "exit status and errors of --check-placement")
        eq(sorted(findings), sorted([
            "vr_items: key %d: on shard %d, belongs on shard %d (map vr_users)" % (key, wrong, home),
            "vr_events: key 1500: on shard 0, belongs on shard 1 (map vr_ranges)",
        ]), "the misplaced rows")
        check_memory("--check-placement", rss)
    finally:
        run_on(wrong, "delete from vr_items where id = %d" % key)
        rl.on_shards("delete from vr_events where what = 'misplaced'")


@test
def test_tables_named_wrongly_or_missing_on_a_shard():
    rc, findings, _, err, _ = run_check("reference", "vr_nosuch")
    eq(rc, 2, "exit status for a table the config does not name")
    check("vr_nosuch: no such table in the config" in err, "stderr: %r" % err)
    rc, findings, _, err, _ = run_check("placement", "vr_ref")
    eq(rc, 2, "exit status for a reference table given to --check-placement")
    check("not a sharded table" in err, "stderr: %r" % err)
    run_on(1, "alter table vr_names rename to vr_names_away")
    try:
        rc, findings, _, err, _ = run_check("reference", "vr_names")
        eq((rc, err), (1, ""), "exit status with the table missing on shard 1")
        eq(findings, ["vr_names: table missing on shard 1 (present on 0, %s)"
                          % ", ".join(str(s) for s in range(2, len(rl.SHARD_PORTS)))], "report")
    finally:
        run_on(1, "alter table vr_names_away rename to vr_names")


@test
def test_cleanup():
    rl.as_app_on_shards(SCHEMA[0])
    try:
        os.unlink(config_path())
    except OSError:
        pass


if __name__ == "__main__":
    if os.environ.get("PGSHARD_DIR") is None:
        raise Failure("source the cluster's env.sh")
    rl.main(TESTS, TEST_TIMEOUT, min_shards=3)
