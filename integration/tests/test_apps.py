#!/usr/bin/python3
"""The same app, run twice (issue 11): once through pgshard on the cluster's shards, once
against one PostgreSQL, and what it saw compared.

The apps (integration/apps/) are written as their libraries' documentation writes them:
sqla_app.py with SQLAlchemy 1.4's ORM on psycopg2, node_app.js with node-postgres and
pg-cursor. Each prints every answer it got (rows, row counts, errors) step by step, then a dump
of its tables ordered by natural keys. "One PostgreSQL" is a fresh database, apps_single, made
on shard 0's primary for each run; the pgshard run uses the environment's PGHOST/PGPORT/...
(integration.sh points them at pgshard) and the tables the app makes through pgshard.

Ids: the apps' tables use default bigserial ids, which pgshard hands out unique across
shards (shard k counts k+1, k+1+256, ...), not 1, 2, 3. The apps write every id as
{"$id": [TABLE, VALUE]}; before comparing, each run's ids are renamed TABLE#1, TABLE#2, ... in
the order they appear in the dump (natural-key order), then in the steps. Two runs compare
equal only if every reference between rows is the same. Then, on the shards themselves: no id
value of a sharded table is on two shards, every row is on the shard of its tenant, and the
reference table's copies are equal.

One test per app step, per dumped table, plus the checks on the shards; a failure shows a
unified diff (one PostgreSQL first, then pgshard). Needs the env of a running cluster.sh
cluster (`. DIR/env.sh`, as integration.sh exports it) and PGSHARD_BIN (for --route):
    PGSHARD_BIN=build-asan/pgshard /usr/bin/python3 integration/tests/test_apps.py [sqla|node]
"""

import difflib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import robustlib as rl  # noqa: E402

APPS_DIR = os.path.join(rl.ROOT, "integration", "apps")
NODE_MODULES = os.path.join(rl.ROOT, "integration", "node_modules")
SINGLE_DB = "apps_single"
APP_TIMEOUT = 240
DIFF_LINES = 60

APPS = {
    "sqla": {
        "cmd": ["/usr/bin/python3", os.path.join(APPS_DIR, "sqla_app.py")],
        "sharded": ["app_users", "app_orders", "app_order_lines"],
        "reference": [("app_products", "sku")],
    },
    "node": {
        "cmd": ["node", os.path.join(APPS_DIR, "node_app.js")],
        "sharded": ["app_accounts", "app_payments"],
        "reference": [],
    },
}


class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def ok(self, name):
        self.passed += 1
        print("ok %s" % name, flush=True)

    def fail(self, name, why, lines=()):
        self.failed += 1
        print("FAIL %s: %s" % (name, why), flush=True)
        lines = list(lines)
        for ln in lines[:DIFF_LINES]:
            print("    " + ln.rstrip("\n"), flush=True)
        if len(lines) > DIFF_LINES:
            print("    ... %d more diff lines" % (len(lines) - DIFF_LINES), flush=True)


# ---------------------------------------------------------------------------------------
# running an app


def fresh_single_db():
    c = rl.su(0, "postgres")
    try:
        with c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % SINGLE_DB)
            cur.execute("CREATE DATABASE %s OWNER %s"
                        % (SINGLE_DB, os.environ.get("PGUSER", "app")))
    finally:
        c.close()


def run_app(name, where, env):
    """The app's JSON output, or raises rl.Failure with its stderr."""
    app = APPS[name]
    full = dict(os.environ, **env)
    full["NODE_PATH"] = NODE_MODULES + (":" + os.environ["NODE_PATH"]
                                        if os.environ.get("NODE_PATH") else "")
    t0 = time.time()
    p = subprocess.run(app["cmd"], env=full, capture_output=True, text=True,
                       timeout=APP_TIMEOUT)
    secs = time.time() - t0
    if p.returncode != 0:
        raise rl.Failure("%s app %s exited with status %d after %.1fs; stderr:\n%s"
                         % (name, where, p.returncode, secs, p.stderr[-3000:]))
    try:
        out = json.loads(p.stdout)
    except ValueError as e:
        raise rl.Failure("%s app %s printed no JSON (%s): %r" % (name, where, e, p.stdout[-500:]))
    print("   %s app %s: %.1fs" % (name, where, secs), flush=True)
    return out


def rename_ids(out):
    """Each {"$id": [table, value]} becomes "table#n", numbered per table in order of first
    appearance in the dump (its rows are in natural-key order); ids of rows that are no longer
    there (deleted, rolled back) become "table#gone-n", numbered in order of first appearance
    in the steps, so that a row missing from one dump does not renumber the others."""
    labels, counts = {}, {}

    def walk(v, kind):
        if isinstance(v, dict):
            if set(v) == {"$id"}:
                table, value = v["$id"]
                key = (table, value)
                if key not in labels:
                    counts[(table, kind)] = n = counts.get((table, kind), 0) + 1
                    labels[key] = "%s#%s%d" % (table, kind, n)
                return labels[key]
            return {k: walk(v[k], kind) for k in sorted(v)}
        if isinstance(v, list):
            return [walk(x, kind) for x in v]
        return v

    dump = {t: walk(out["dump"][t], "") for t in sorted(out["dump"])}
    steps = [{"step": s["step"], "answers": walk(s["answers"], "gone-")} for s in out["steps"]]
    return {"dump": dump, "steps": steps}


def pretty(v):
    return json.dumps(v, indent=1, sort_keys=True).splitlines(keepends=True)


def diff(single, sharded):
    return list(difflib.unified_diff(pretty(single), pretty(sharded), "one PostgreSQL",
                                     "pgshard", n=3))


def compare(res, name, single, sharded):
    """One test per step (matched by name and position) and per dumped table."""
    a, b = rename_ids(single), rename_ids(sharded)
    names_a = [s["step"] for s in a["steps"]]
    names_b = [s["step"] for s in b["steps"]]
    if names_a != names_b:
        res.fail("%s steps" % name, "the runs made different steps",
                 difflib.unified_diff([n + "\n" for n in names_a], [n + "\n" for n in names_b],
                                      "one PostgreSQL", "pgshard"))
    for sa, sb in zip(a["steps"], b["steps"]):
        test = "%s step %s" % (name, sa["step"])
        if sa == sb:
            res.ok(test)
            continue
        answers_a = {what: v for what, v in sa["answers"]}
        answers_b = {what: v for what, v in sb["answers"]}
        differ = [w for w, _ in sa["answers"] if answers_a[w] != answers_b.get(w, "(no answer)")]
        differ += [w for w, _ in sb["answers"] if w not in answers_a]
        res.fail(test, "%d of %d answers differ: %s" % (len(differ), len(sa["answers"]),
                                                      "; ".join(differ)),
                 diff(sa["answers"], sb["answers"]))
    for table in sorted(set(a["dump"]) | set(b["dump"])):
        test = "%s data %s" % (name, table)
        ta, tb = a["dump"].get(table), b["dump"].get(table)
        if ta == tb:
            res.ok(test + " (%d rows)" % len(ta))
        else:
            res.fail(test, "the tables differ (%s vs %s rows)"
                     % (len(ta or []), len(tb or [])), diff(ta, tb))


# ---------------------------------------------------------------------------------------
# checks on the shards


_route = {}


def shard_of_tenant(table, tenant):
    if (table, tenant) not in _route:
        out = subprocess.run([rl.pgshard_bin(), "-c", os.path.join(rl.PGSHARD_DIR, "pgshard.ini"),
                              "--route", "select * from %s where tenant_id = %d" % (table, tenant)],
                             capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"^route:\s+shards, shard (\d+)$", out, re.M)
        if m is None:
            raise rl.Failure("pgshard --route: unexpected output %r" % out[:300])
        _route[(table, tenant)] = int(m.group(1))
    return _route[(table, tenant)]


def check_shards(res, name):
    app = APPS[name]
    for table in app["sharded"]:
        test = "%s ids of %s unique across shards, rows on their tenant's shard" % (name, table)
        try:
            rows = rl.on_shards("SELECT id, tenant_id FROM %s" % table)
        except rl.psycopg2.Error as e:
            res.fail(test, "cannot read %s on the shards: %s" % (table, str(e).strip()))
            continue
        seen, twice, misplaced = {}, [], []
        for shard, shard_rows in enumerate(rows):
            for i, tenant in shard_rows:
                if i in seen and seen[i] != shard:
                    twice.append("id %d on shards %d and %d" % (i, seen[i], shard))
                seen[i] = shard
                want = shard_of_tenant(table, tenant)
                if want != shard:
                    misplaced.append("id %d of tenant %d on shard %d, not %d"
                                     % (i, tenant, shard, want))
        used = [s for s, r in enumerate(rows) if r]
        if twice or misplaced:
            res.fail(test, "%d ids on two shards, %d rows misplaced" % (len(twice), len(misplaced)),
                     twice + misplaced)
        elif len(used) < 2:
            res.fail(test, "rows on shards %s only: the check proves nothing" % used)
        else:
            res.ok("%s (%d ids on shards %s)" % (test, len(seen), used))
    for table, natural in app["reference"]:
        test = "%s copies of reference table %s equal on every shard" % (name, table)
        copies = rl.on_shards("SELECT * FROM %s ORDER BY %s" % (table, natural))
        bad = [i for i, c in enumerate(copies) if c != copies[0]]
        if bad:
            res.fail(test, "shards %s differ from shard 0" % bad,
                     difflib.unified_diff([repr(r) + "\n" for r in copies[0]],
                                          [repr(r) + "\n" for r in copies[bad[0]]],
                                          "shard 0", "shard %d" % bad[0]))
        elif not copies[0]:
            res.fail(test, "the table is empty: the check proves nothing")
        else:
            res.ok("%s (%d rows)" % (test, len(copies[0])))


def run(res, name):
    try:
        fresh_single_db()
        single = run_app(name, "against one PostgreSQL",
                         {"PGHOST": rl.HOST, "PGPORT": str(rl.SHARD_PORTS[0]),
                          "PGDATABASE": SINGLE_DB})
        sharded = run_app(name, "through pgshard", {})
    except (rl.Failure, rl.psycopg2.Error, subprocess.TimeoutExpired, OSError) as e:
        res.fail("%s app runs" % name, str(e).splitlines()[0] if str(e) else repr(e),
                 str(e).splitlines()[1:])
        return
    res.ok("%s app runs twice" % name)
    compare(res, name, single, sharded)
    check_shards(res, name)


def main():
    missing = [v for v in ("PGSHARD_DIR", "SHARD_PORTS", "PGSHARD_SOCKDIR")
               if not os.environ.get(v)]
    res = Results()
    if missing:
        res.fail("setup", "%s not set (source the cluster's env.sh)" % ", ".join(missing))
    else:
        for name in sys.argv[1:] or list(APPS):
            if name not in APPS:
                res.fail("setup", "no app %r (apps: %s)" % (name, ", ".join(APPS)))
                continue
            run(res, name)
    print("%d passed, %d failed" % (res.passed, res.failed), flush=True)
    sys.exit(1 if res.failed else 0)


if __name__ == "__main__":
    main()
