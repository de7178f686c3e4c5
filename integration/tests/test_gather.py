#!/usr/bin/python3
"""Scatter-gather, differentially: every query of integration/difftest/corpus.sql must answer
through pgshard (rows spread over the shards) what one PostgreSQL holding all the rows answers.

The reference is a plain PostgreSQL that this suite starts itself (initdb as the postgres OS
user, on a free port, in a temporary directory, stopped at the end) with the same encoding,
collation, ctype, TimeZone and DateStyle as the shards, so that text sorts by the same real
collation on both sides. The schema (difftest/schema.sql) and the data (difftest/dataset.py)
are loaded into it directly, and through pgshard, which splits the INSERT and COPY rows to the
shards (the dg_* tables of integration/cluster.sh's pgshard.ini).

Then pqrows (difftest/pqrows.c) runs the whole corpus against each side in three modes: simple
protocol, extended protocol with text results, extended protocol with binary results (a query
preceded by a "--$ V1 | V2" line is bound those parameters, and skipped in the simple mode). Each
query x mode is one test. Column names, type OIDs and command tags must be equal; the rows are
compared as the corpus annotates the query: in order (a total ORDER BY), as multisets (no
ORDER BY), or as multisets plus the sequence of the sort-key columns (an ORDER BY with ties).
An error must have the same SQLSTATE on both sides, except for queries the corpus marks
"refuse": pgshard must answer exactly one error 0A000 where PostgreSQL answers rows.

Needs: the env of integration/integration.sh (PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE for
pgshard, SHARD_PORTS to read the shards' locale and count their rows) and the pqrows binary,
found next to PGSHARD_BIN (same build directory) or given as PQROWS.

Run:   /usr/bin/python3 integration/tests/test_gather.py [--self] [--keep] [NAME ...]
       NAME selects queries of the corpus (all modes). --self checks the harness itself: no
       pgshard; both sides are the reference server, one database loaded in the corpus's row
       order and one loaded in reverse order (so ties and unordered results come out in
       another order: an annotation that claims a total order where there is none fails).
       --keep leaves the reference server running and prints where it is.
       Env: PQROWS (the binary), GATHER_CORPUS (another query file), GATHER_LOCALE (--self:
       the reference's locale; default en_US.UTF-8 when the system has it),
       GATHER_PQROWS_TIMEOUT (seconds for one pqrows run over the corpus, default 240).
Output: "ok NAME/MODE" or "FAIL NAME/MODE: why" (with an indented diff) per test, a count of
results by mode, then exactly "N passed, N failed".
"""

import difflib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
DIFFTEST = os.path.join(os.path.dirname(HERE), "difftest")
sys.path.insert(0, DIFFTEST)
import dataset  # noqa: E402

PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
MODES = ["simple", "text", "binary"]
PQROWS_TIMEOUT = float(os.environ.get("GATHER_PQROWS_TIMEOUT", "240"))
DIFF_LINES = 24

# How each table is loaded (the same way into the reference and through pgshard).
LOAD = {"dg_countries": "insert", "dg_items": "insert", "dg_orders": "copy",
        "dg_big": "copy", "dg_empty": "copy", "dg_events": "insert"}
SHARDED = ["dg_items", "dg_orders", "dg_big", "dg_empty", "dg_events"]

passed = failed = 0
by_mode = {}


def ok(name, mode=None):
    global passed
    passed += 1
    if mode:
        by_mode.setdefault(mode, [0, 0])[0] += 1
    print("ok %s" % name, flush=True)


def fail(name, why, detail=None, mode=None):
    global failed
    failed += 1
    if mode:
        by_mode.setdefault(mode, [0, 0])[1] += 1
    print("FAIL %s: %s" % (name, why), flush=True)
    for line in (detail or [])[:DIFF_LINES]:
        print("    | %s" % line)
    if detail and len(detail) > DIFF_LINES:
        print("    | ... (%d more lines)" % (len(detail) - DIFF_LINES))
    sys.stdout.flush()


class SetupError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# the corpus

ANNOT = re.compile(r"^--\s*@\s+(\w+)\s+(ordered|unordered|ties|refuse)(?:\s+([\d,]+))?\s*$")


def read_corpus(path):
    """[(name, kind, tie_columns, sql)], split by pqrows' rule: a query ends at a line whose
    last non-blank character is ';'; lines starting with "--" are not part of a query.
    "ordered" without ORDER BY is for one-row answers (aggregates): compare() checks that."""
    queries, pending, text = [], None, []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if s.startswith("--"):
                m = ANNOT.match(s)
                if m:
                    if pending or text:
                        raise SetupError("%s:%d: annotation inside a query" % (path, lineno))
                    cols = [int(c) for c in m.group(3).split(",")] if m.group(3) else []
                    if (m.group(2) == "ties") != bool(cols):
                        raise SetupError("%s:%d: 'ties' needs its key columns, others none"
                                         % (path, lineno))
                    pending = (m.group(1), m.group(2), cols, lineno)
                elif s.startswith("-- @"):
                    raise SetupError("%s:%d: bad annotation %r" % (path, lineno, s))
                continue
            if not text and not s:
                continue
            text.append(line)
            if s.endswith(";"):
                sql = "".join(text).strip()[:-1]
                if pending is None:
                    raise SetupError("%s:%d: query without an annotation" % (path, lineno))
                name, kind, cols, _ = pending
                if kind == "ties" and not re.search(r"\border\s+by\b", sql, re.I):
                    raise SetupError("%s: %s is marked ties but has no ORDER BY" % (path, name))
                queries.append((name, kind, cols, sql))
                pending, text = None, []
    if text or pending:
        raise SetupError("%s: the last query does not end with ';'" % path)
    names = [q[0] for q in queries]
    dup = sorted(set(n for n in names if names.count(n) > 1))
    if dup:
        raise SetupError("%s: names used twice: %s" % (path, ", ".join(dup)))
    return queries


# ---------------------------------------------------------------------------------------
# pqrows output

FIELD = re.compile(r'NULL|x"[0-9a-f]*"|"(?:[^"\\]|\\.)*"')


def fields(row_line):
    """The fields of a "row ..." line, as their printed tokens."""
    return FIELD.findall(row_line[4:])


def parse_pqrows(out):
    """{query number: [result]}; a result is ("error", sqlstate, line) or
    ("rows", [column lines], [row lines], tag line)."""
    blocks, cur, res = {}, None, None
    for line in out.split("\n"):
        if line.startswith("=== query "):
            cur = blocks.setdefault(int(line[10:]), [])
            res = None
        elif cur is None or not line:
            continue
        elif line.startswith("error "):
            cur.append(("error", line.split(" ", 2)[1], line))
            res = None
        elif line == "skipped (parameters)":
            cur.append(("skipped", line, line))
            res = None
        elif line.startswith("columns "):
            res = ("rows", [], [], None)
            cur.append(res)
        elif line.startswith("column ") and res:
            res[1].append(line)
        elif line.startswith("row") and res:
            res[2].append(line)
        elif line.startswith("tag "):
            if res is None:  # a command without rows
                cur.append(("rows", None, [], line))
            else:
                cur[-1] = ("rows", res[1], res[2], line)
            res = None
        else:
            cur.append(("garbage", line, line))
    return blocks


def describe(results):
    out = []
    for r in results:
        if r[0] == "rows":
            out += (r[1] or []) + r[2] + [r[3]]
        else:
            out.append(r[2])
    return out


def udiff(a, b, what_a, what_b):
    return list(difflib.unified_diff(a, b, what_a, what_b, lineterm="", n=1))[2:]


def compare(kind, cols, sql, ref, got, side_b):
    """None when equal, else (why, diff lines)."""
    if kind == "ordered" and not re.search(r"\border\s+by\b", sql, re.I):
        if any(r[0] == "rows" and len(r[2]) > 1 for r in ref):
            return "marked ordered, but no ORDER BY and several rows (fix the corpus)", []
    if kind == "refuse":
        if not ref or ref[0][0] != "rows":
            return "the reference did not answer rows (fix the corpus)", describe(ref)
        if len(got) == 1 and got[0][0] == "error" and got[0][1] == "0A000":
            return None
        return "expected exactly one error 0A000 from %s" % side_b, describe(got)[:6]
    if [r[0] for r in ref] != [r[0] for r in got] or len(ref) != len(got):
        return ("different results: reference %s, %s %s"
                % ("+".join(r[0] if r[0] == "rows" else "error " + r[1] for r in ref), side_b,
                   "+".join(r[0] if r[0] == "rows" else "error " + r[1] for r in got)),
                ["reference: " + l for l in describe(ref)[:4]] +
                ["%s: %s" % (side_b, l) for l in describe(got)[:4]])
    for a, b in zip(ref, got):
        if a[0] == "skipped":  # a query with parameters in the simple protocol
            continue
        if a[0] == "error":
            if a[1] != b[1]:
                return "different SQLSTATE", [a[2], b[2]]
            continue
        if a[0] != "rows":
            return "unreadable pqrows output", [a[1], b[1]]
        if a[1] != b[1]:
            return "different columns (name, type OID)", udiff(a[1] or [], b[1] or [], "reference", side_b)
        if kind == "ordered":
            if a[2] != b[2]:
                return "different rows (in order)", udiff(a[2], b[2], "reference", side_b)
        else:
            sa, sb = sorted(a[2]), sorted(b[2])
            if sa != sb:
                return ("different rows (as multisets: %d vs %d rows)" % (len(sa), len(sb)),
                        udiff(sa, sb, "reference (sorted)", side_b + " (sorted)"))
            if kind == "ties":
                ncols = len(a[1] or [])
                bad = [c for c in cols if c < 1 or c > ncols]
                if bad:
                    return "tie columns %s outside 1..%d (fix the corpus)" % (bad, ncols), []
                ka = [" ".join(fields(r)[c - 1] for c in cols) for r in a[2]]
                kb = [" ".join(fields(r)[c - 1] for c in cols) for r in b[2]]
                if ka != kb:
                    return ("same rows, but the sort key columns %s come in another order"
                            % ",".join(map(str, cols)), udiff(ka, kb, "reference", side_b))
        if a[3] != b[3]:
            return "different command tag", [a[3], b[3]]
    return None


# ---------------------------------------------------------------------------------------
# the reference server

def as_postgres(cmd, **kw):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Reference:
    def __init__(self, settings):
        self.dir = tempfile.mkdtemp(prefix="pgshard-gather-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = None
        self.started = False
        r = as_postgres([PGBIN + "/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                         "--no-sync", "-E", settings["encoding"],
                         "--lc-collate=" + settings["collate"], "--lc-ctype=" + settings["ctype"],
                         "--locale=" + settings["collate"]])
        if r.returncode != 0:
            raise SetupError("initdb of the reference failed: %s" % r.stdout[-800:])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# integration/tests/test_gather.py: the reference server\n"
                    "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "timezone = '%s'\ndatestyle = '%s'\n"
                    % (self.dir, settings["timezone"], settings["datestyle"]))
        for _ in range(5):  # a free port may be taken between the probe and the start
            self.port = free_port()
            r = as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-l",
                             os.path.join(self.dir, "server.log"), "-w", "-t", "60",
                             "-o", "-p %d" % self.port, "start"])
            if r.returncode == 0:
                self.started = True
                return
        raise SetupError("the reference server did not start: %s" % self.log_tail())

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return " | ".join(f.read().splitlines()[-10:])
        except OSError:
            return "(no log)"

    def conninfo(self, db):
        return "host=127.0.0.1 port=%d user=postgres dbname=%s" % (self.port, db)

    def connect(self, db):
        c = psycopg2.connect(self.conninfo(db), connect_timeout=10)
        c.autocommit = True
        return c

    def stop(self):
        if self.started:
            as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30",
                         "stop"])
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


def shard_conn(port):
    c = psycopg2.connect(host="127.0.0.1", port=port, user="app", password="app-secret",
                         dbname="app", connect_timeout=10)
    c.autocommit = True
    return c


def settings_of(conn):
    cur = conn.cursor()
    cur.execute("SELECT pg_encoding_to_char(encoding), datcollate, datctype, "
                "current_setting('TimeZone'), current_setting('DateStyle') "
                "FROM pg_database WHERE datname = current_database()")
    enc, coll, ctype, tz, ds = cur.fetchone()
    return {"encoding": enc, "collate": coll, "ctype": ctype, "timezone": tz, "datestyle": ds}


def self_settings():
    have = subprocess.run(["locale", "-a"], stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.lower().split()
    loc = os.environ.get("GATHER_LOCALE") or (
        "en_US.UTF-8" if "en_us.utf8" in have else "C.UTF-8")
    return {"encoding": "UTF8", "collate": loc, "ctype": loc, "timezone": "UTC",
            "datestyle": "ISO, MDY"}


def schema_statements():
    with open(os.path.join(DIFFTEST, "schema.sql"), encoding="utf-8") as f:
        text = "".join(l for l in f if not l.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";\n") if s.strip().rstrip(";")]


def load(conn, reverse=False):
    """The schema and every table's rows, loaded as LOAD says (reverse: rows in reverse)."""
    cur = conn.cursor()
    for stmt in schema_statements():
        cur.execute(stmt.rstrip(";"))
    for table in dataset.TABLES:
        rows = dataset.rows(table)
        if reverse:
            rows = rows[::-1]
        if LOAD[table] == "copy":
            cur.copy_expert("COPY %s (%s) FROM STDIN" % (table, ", ".join(dataset.COLUMNS[table])),
                            io.StringIO(dataset.copy_text(rows)))
        else:
            for stmt in dataset.insert_statements(table, rows, 50):
                cur.execute(stmt)
    for table in dataset.TABLES:
        cur.execute("SELECT count(*) FROM %s" % table)
        n = cur.fetchone()[0]
        if n != len(dataset.rows(table)):
            raise SetupError("%s holds %d rows after loading, want %d"
                             % (table, n, len(dataset.rows(table))))


def run_pqrows(pqrows, mode, conninfo, corpus):
    """(parsed blocks, problem or None)"""
    try:
        p = subprocess.run([pqrows, mode, conninfo, corpus], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=PQROWS_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        return parse_pqrows(out), "pqrows %s timed out after %.0f s" % (mode, PQROWS_TIMEOUT)
    out = p.stdout.decode("utf-8", "replace")
    problem = None
    if p.returncode != 0:
        problem = "pqrows %s exited %d: %s" % (mode, p.returncode,
                                               p.stderr.decode("utf-8", "replace")[-600:])
    return parse_pqrows(out), problem


def find_pqrows():
    if os.environ.get("PQROWS"):
        return os.environ["PQROWS"]
    cands = []
    if os.environ.get("PGSHARD_BIN"):
        cands.append(os.path.join(os.path.dirname(os.environ["PGSHARD_BIN"]), "pqrows"))
    root = os.path.dirname(os.path.dirname(HERE))
    cands += [os.path.join(root, d, "pqrows") for d in ("build-asan", "build")]
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    raise SetupError("no pqrows binary (looked at %s; build the pqrows target or set PQROWS)"
                     % ", ".join(cands))


def main(argv):
    self_check = "--self" in argv
    keep = "--keep" in argv
    selected = set(a for a in argv if not a.startswith("--"))
    corpus = os.environ.get("GATHER_CORPUS") or os.path.join(DIFFTEST, "corpus.sql")
    ref = None
    try:
        queries = read_corpus(corpus)
        pqrows = find_pqrows()
        unknown = selected - set(q[0] for q in queries)
        if unknown:
            raise SetupError("no such queries in the corpus: %s" % ", ".join(sorted(unknown)))
        print("corpus: %d queries (%s), pqrows %s" % (
            len(queries), ", ".join("%d %s" % (sum(1 for q in queries if q[1] == k), k)
                                    for k in ("ordered", "unordered", "ties", "refuse")), pqrows),
              flush=True)

        if self_check:
            settings = self_settings()
        else:
            ports = [int(p) for p in os.environ.get("SHARD_PORTS", "").split()]
            if not ports:
                raise SetupError("SHARD_PORTS is not set (run under integration/integration.sh "
                                 "or source the cluster's env.sh)")
            all_settings = []
            for port in ports:
                c = shard_conn(port)
                all_settings.append(settings_of(c))
                c.close()
            settings = all_settings[0]
            if any(s != settings for s in all_settings):
                fail("shards_share_settings", "the shards differ: %r" % all_settings)
            else:
                ok("shards_share_settings")
        print("reference settings: %s" % ", ".join("%s=%s" % kv for kv in sorted(settings.items())),
              flush=True)

        t0 = time.time()
        ref = Reference(settings)
        c = ref.connect("postgres")
        c.cursor().execute("CREATE DATABASE ref")
        if self_check:
            c.cursor().execute("CREATE DATABASE ref_rev")
        c.close()
        c = ref.connect("ref")
        load(c)
        c.cursor().execute("ANALYZE")
        c.close()
        ok("load_reference")
        print("reference on port %d, loaded in %.1f s" % (ref.port, time.time() - t0), flush=True)

        if self_check:
            side_b, conn_b = "reference-reversed", ref.conninfo("ref_rev")
            c = ref.connect("ref_rev")
            load(c, reverse=True)
            c.cursor().execute("ANALYZE")
            c.close()
            ok("load_reference_reversed")
        else:
            side_b, conn_b = "pgshard", ""  # libpq takes PGHOST, PGPORT, ... from the env
            t0 = time.time()
            try:
                c = psycopg2.connect("", connect_timeout=10)
                c.autocommit = True
                load(c)
                c.close()
                ok("load_through_pgshard")
            except (psycopg2.Error, SetupError) as e:
                fail("load_through_pgshard", str(e).strip().replace("\n", " | "))
                raise SetupError("cannot go on without the data in pgshard")
            print("loaded through pgshard in %.1f s" % (time.time() - t0), flush=True)
            # The rows really are spread: each on one shard, reference rows on every shard.
            counts = {t: [] for t in dataset.TABLES}
            for port in ports:
                c = shard_conn(port)
                cur = c.cursor()
                for t in dataset.TABLES:
                    cur.execute("SELECT count(*) FROM %s" % t)
                    counts[t].append(cur.fetchone()[0])
                c.close()
            bad = []
            for t in dataset.TABLES:
                want = len(dataset.rows(t))
                if t in SHARDED and sum(counts[t]) != want:
                    bad.append("%s: %s on the shards, want %d in all" % (t, counts[t], want))
                if t not in SHARDED and any(n != want for n in counts[t]):
                    bad.append("%s: %s on the shards, want %d on each" % (t, counts[t], want))
            spread = [t for t in ("dg_items", "dg_orders", "dg_big") if 0 in counts[t]]
            if len(ports) > 1 and spread:
                bad.append("not spread over every shard: %s" % ", ".join(spread))
            if bad:
                fail("rows_on_shards", "; ".join(bad))
            else:
                ok("rows_on_shards")
            print("rows per shard: %s" % ", ".join("%s %s" % (t, counts[t]) for t in SHARDED),
                  flush=True)

        for mode in MODES:
            t0 = time.time()
            out_a, prob_a = run_pqrows(pqrows, mode, ref.conninfo("ref"), corpus)
            t1 = time.time()
            out_b, prob_b = run_pqrows(pqrows, mode, conn_b, corpus)
            print("mode %s: reference %.1f s, %s %.1f s" % (mode, t1 - t0, side_b,
                                                           time.time() - t1), flush=True)
            for what, prob in (("reference", prob_a), (side_b, prob_b)):
                if prob:
                    fail("pqrows/%s/%s" % (mode, what), prob)
            for i, (name, kind, cols, sql) in enumerate(queries, 1):
                if selected and name not in selected:
                    continue
                test = "%s/%s" % (name, mode)
                if i not in out_a:
                    fail(test, "no answer from the reference", mode=mode)
                    continue
                if i not in out_b:
                    fail(test, "no answer from %s" % side_b, mode=mode)
                    continue
                k = "unordered" if (self_check and kind == "refuse") else kind
                verdict = compare(k, cols, sql, out_a[i], out_b[i], side_b)
                if verdict is None:
                    ok(test, mode)
                else:
                    fail(test, verdict[0], verdict[1], mode=mode)
    except SetupError as e:
        fail("setup", str(e))
    except (psycopg2.Error, OSError) as e:
        fail("setup", "%s: %s" % (type(e).__name__, str(e).strip().replace("\n", " | ")))
    finally:
        if ref is not None:
            if keep:
                print("reference kept: %s (dbname=ref; stop: runuser -u postgres -- %s/pg_ctl "
                      "-D %s stop)" % (ref.conninfo("ref"), PGBIN, ref.data))
            else:
                ref.stop()

    if by_mode:
        print("queries by mode: %s" % ", ".join("%s %d passed %d failed" % (m, v[0], v[1])
                                                  for m, v in sorted(by_mode.items())))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    # run-all.sh's time limit sends SIGTERM: leave through main's finally (stops the reference).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(sys.argv[1:]))
