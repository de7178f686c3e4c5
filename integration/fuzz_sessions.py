#!/usr/bin/python3
"""Session-level fuzzer for pgshard: mutates recorded real client sessions and sends them to a
running pgshard (the sanitizer build, ideally) while a well-behaved client checks that it is
never disturbed.

Recordings (integration/fuzz/sessions/*.json) are the client->proxy byte streams of real
clients (psql, pgbench -M simple/extended/prepared, psycopg2, node-postgres, a COPY,
transactions across shards), captured through a recording TCP relay by `--record`. Only the
part after the login is kept: the login is done live (SCRAM/md5/trust) by the raw client of
integration/tests/test_protocol.py, then the mutated messages follow. Mutations are
message-aware: flip bytes, change lengths, change types, truncate, duplicate, drop, reorder,
splice in messages of other sessions, insert Terminate anywhere, close the socket anywhere,
split writes at random points.

Meanwhile a well-behaved client runs checked queries: a single-shard read, a multi-shard
read (count and sum over all shards), a transaction reading on two shards. A wrong answer, an
error, a reply slower than --max-wait seconds, or pgshard's death is a failure; the seeds of
the last sessions sent before a failure are written to --crash-dir as reproducers.

Needs the env of a running cluster (`. DIR/env.sh`; PGSHARD_DIR names the pid file).

  integration/fuzz_sessions.py --seconds 45 --seed 1        (what integration.sh runs)
  integration/fuzz_sessions.py --sessions 100000            (a long run: one command)
  integration/fuzz_sessions.py --seed S --only N            (resend session N of seed S)
  integration/fuzz_sessions.py --seed S --only N --show     (print it, send nothing)
  integration/fuzz_sessions.py --record                     (re-record the sessions)

PGSHARD_ON_HANG=CMD runs CMD (shell) when a checked query gets no reply, while that
connection is still open: e.g. a gdb script that prints the worker's pools and clients.

Output: figures (sessions sent, sessions/s, well-behaved queries checked), "ok"/"FAIL" lines,
then exactly "N passed, N failed".
"""

import argparse
import base64
import glob
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "tests"))

import robustlib as rl  # noqa: E402
from robustlib import Closed, Failure, Watcher, login  # noqa: E402

SESSIONS_DIR = os.path.join(HERE, "fuzz", "sessions")
CHECK_IDS = list(range(900001, 900031))  # the well-behaved client's rows of rt_users

# ---------------------------------------------------------------------------------------
# framing


def split_login(stream):
    """Client->server bytes of a whole connection -> bytes after the login (startup packet,
    SSL/GSS requests and password/SASL messages removed)."""
    pos = 0
    while pos + 8 <= len(stream):
        (n, code) = struct.unpack("!ii", stream[pos:pos + 8])
        pos += n
        if code not in (80877103, 80877104):  # SSLRequest, GSSENCRequest: answered 'N'
            break
    out = []
    while pos + 5 <= len(stream):
        kind = stream[pos:pos + 1]
        (n,) = struct.unpack("!i", stream[pos + 1:pos + 5])
        if kind != b"p":
            out.append(stream[pos:pos + 1 + n])
        pos += 1 + n
    return b"".join(out)


def messages(data):
    """bytes -> list of whole messages (type + length + body); a torn tail is kept as is."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 5 > len(data):
            out.append(data[pos:])
            break
        (n,) = struct.unpack("!i", data[pos + 1:pos + 5])
        end = pos + 1 + max(n, 4)
        out.append(data[pos:end])
        pos = end
    return out


def load_sessions():
    sessions = []
    for path in sorted(glob.glob(os.path.join(SESSIONS_DIR, "*.json"))):
        with open(path) as f:
            rec = json.load(f)
        for i, s in enumerate(rec["sessions"]):
            data = base64.b64decode(s)
            if data:
                sessions.append(("%s#%d" % (rec["name"], i), data))
    return sessions


# ---------------------------------------------------------------------------------------
# mutations

TYPES = b"QPBEDCSHXdcfFp"


def mutate(rng, data, corpus):
    """Returns (list of write chunks, close_early, description)."""
    msgs = messages(data)
    done = []
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
        if not msgs:
            break
        op = rng.randrange(11)
        i = rng.randrange(len(msgs))
        m = bytearray(msgs[i])
        if op == 0 and len(m) > 5:  # flip bytes of a body
            for _ in range(rng.randint(1, 4)):
                j = rng.randrange(5, len(m))
                m[j] ^= 1 << rng.randrange(8)
            msgs[i] = bytes(m)
            done.append("flip#%d" % i)
        elif op == 1 and len(m) >= 5:  # change the length
            n = struct.unpack("!i", m[1:5])[0]
            n = rng.choice((n + rng.randint(-4, 4), 0, 3, 4, 2 ** 31 - 1, -1, n * 2, rng.randrange(1 << 20)))
            m[1:5] = struct.pack("!i", max(min(n, 2 ** 31 - 1), -2 ** 31))
            msgs[i] = bytes(m)
            done.append("len#%d=%d" % (i, n))
        elif op == 2 and len(m) >= 1:  # change the type
            m[0] = rng.choice(TYPES) if rng.random() < 0.7 else rng.randrange(256)
            msgs[i] = bytes(m)
            done.append("type#%d=%r" % (i, chr(m[0])))
        elif op == 3:  # truncate the stream
            cut = rng.randrange(len(b"".join(msgs)) + 1)
            msgs = [b"".join(msgs)[:cut]]
            done.append("truncate@%d" % cut)
        elif op == 4:  # duplicate
            msgs.insert(i, msgs[i])
            done.append("dup#%d" % i)
        elif op == 5:  # drop
            del msgs[i]
            done.append("drop#%d" % i)
        elif op == 6 and len(msgs) > 1:  # reorder
            j = rng.randrange(len(msgs))
            msgs[i], msgs[j] = msgs[j], msgs[i]
            done.append("swap#%d,%d" % (i, j))
        elif op == 7 and corpus:  # splice messages of another session
            other = messages(rng.choice(corpus)[1])
            a = rng.randrange(len(other))
            b = min(len(other), a + rng.randint(1, 6))
            msgs[i:i] = other[a:b]
            done.append("splice#%d+%d" % (i, b - a))
        elif op == 8:  # Terminate anywhere
            msgs.insert(i, b"X\0\0\0\4")
            done.append("terminate#%d" % i)
        elif op == 9 and len(m) > 5:  # cut a message in two (a torn message mid-stream)
            j = rng.randrange(1, len(m))
            msgs[i] = bytes(m[:j])
            done.append("tear#%d@%d" % (i, j))
        elif op == 10:  # insert random bytes
            msgs.insert(i, bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))))
            done.append("junk#%d" % i)
    stream = b"".join(msgs)
    close_early = None
    if rng.random() < 0.25:
        close_early = rng.randrange(len(stream) + 1)
        stream = stream[:close_early]
        done.append("close@%d" % close_early)
    chunks, pos = [], 0
    while pos < len(stream):  # split writes at random points
        n = rng.choice((len(stream), rng.randint(1, 64), rng.randint(1, 4096)))
        chunks.append(stream[pos:pos + n])
        pos += n
    return chunks, close_early is not None, ",".join(done) or "none"


def session_for(seed, index, corpus):
    rng = random.Random("%d:%d" % (seed, index))
    name, data = rng.choice(corpus)
    chunks, close_early, what = mutate(rng, data, corpus)
    return name, chunks, close_early, what


# ---------------------------------------------------------------------------------------
# sending


def send_session(port, chunks, close_early, linger=0.5):
    """Login live, send the chunks, read what comes for a moment, close. Returns the number
    of bytes read, or raises Failure when the login itself fails."""
    r = login(port, timeout=10)
    got = 0
    try:
        r.sock.settimeout(linger)
        for c in chunks:
            r.sock.sendall(c)
            try:
                got += len(r.sock.recv(65536))
            except socket.timeout:
                pass
        if not close_early:
            deadline = time.time() + linger
            while time.time() < deadline:
                try:
                    d = r.sock.recv(65536)
                except socket.timeout:
                    break
                if not d:
                    break
                got += len(d)
    except OSError:
        pass  # the proxy closed on us: fine
    finally:
        r.close()
    return got


def pid_alive():
    try:
        with open(os.path.join(rl.PGSHARD_DIR, "pgshard.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None, "no pgshard.pid in PGSHARD_DIR"
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return pid, None if state != "Z" else "pgshard (pid %d) is a zombie: it died" % pid
    except OSError:
        return pid, "pgshard (pid %d) is gone: it died" % pid


# ---------------------------------------------------------------------------------------
# the well-behaved client's data


def setup_data(port):
    c = rl.pg(port)
    created = []
    with c.cursor() as cur:
        cur.execute("select to_regclass('rt_users') is null, to_regclass('rt_orders') is null")
        no_users, no_orders = cur.fetchone()
        if no_users:
            cur.execute("create table rt_users (id bigint primary key, name text)")
            created.append("rt_users")
        if no_orders:
            cur.execute("create table rt_orders (user_id bigint, id bigint, amount int)")
            created.append("rt_orders")
        cur.execute("delete from rt_users where id between %s and %s", (CHECK_IDS[0], CHECK_IDS[-1]))
        cur.execute("insert into rt_users (id, name) values " + ", ".join(
            "(%d, 'fz%d')" % (k, k) for k in CHECK_IDS))
    c.close()
    rl.wait_replicas()
    return created


def cleanup_data(port, created):
    c = rl.pg(port)
    with c.cursor() as cur:
        cur.execute("delete from rt_users where id between %s and %s", (CHECK_IDS[0], CHECK_IDS[-1]))
        for t in created:
            cur.execute("drop table if exists %s" % t)
    c.close()


def checked_queries():
    a = CHECK_IDS[0]
    b = next(k for k in CHECK_IDS if rl.shard_of_key(k) != rl.shard_of_key(a))
    single = [("select name from rt_users where id = %d" % a, [["fz%d" % a]]),
              ("select count(*), sum(id) from rt_users where id between %d and %d"
               % (CHECK_IDS[0], CHECK_IDS[-1]), [[str(len(CHECK_IDS)), str(sum(CHECK_IDS))]])]
    tx = [("select name from rt_users where id = %d" % a, [["fz%d" % a]]),
          ("select name from rt_users where id = %d" % b, [["fz%d" % b]])]
    return single, tx


# ---------------------------------------------------------------------------------------
# recording


class Recorder:
    """A TCP relay on an ephemeral port to the proxy; keeps each connection's client bytes."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.streams = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    def _relay(self, c):
        u = socket.create_connection(("127.0.0.1", self.upstream))
        buf = bytearray()
        with self.lock:
            self.streams.append(buf)

        def pump(src, dst, keep):
            try:
                while True:
                    d = src.recv(65536)
                    if not d:
                        break
                    if keep is not None:
                        keep += d
                    dst.sendall(d)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(u, c, None), daemon=True)
        t.start()
        pump(c, u, buf)
        t.join(5)

    def take(self):
        time.sleep(0.3)
        with self.lock:
            out, self.streams = [bytes(b) for b in self.streams], []
        return [split_login(s) for s in out]


def record(upstream):
    rec = Recorder(upstream)
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(rec.port), PGSSLMODE="prefer")
    os.makedirs(SESSIONS_DIR, exist_ok=True)
    setup = rl.pg(upstream)
    with setup.cursor() as cur:
        cur.execute("drop table if exists rt_orders")
        cur.execute("create table rt_orders (user_id bigint, id bigint, amount int)")
    setup.close()

    def save(name, sessions):
        sessions = [s for s in sessions if s]
        with open(os.path.join(SESSIONS_DIR, name + ".json"), "w") as f:
            json.dump({"name": name, "sessions": [base64.b64encode(s).decode() for s in sessions]}, f)
        print("recorded %s: %d sessions, %d bytes" % (name, len(sessions), sum(map(len, sessions))))

    def sh(cmd, stdin=None):
        subprocess.run(cmd, env=env, input=stdin, text=True, capture_output=True, timeout=120)

    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=0"]
    sh(psql + ["-c", "select 1", "-c", "select name from rt_users where id = 1",
               "-c", "select count(*) from rt_orders", "-c", "show server_version"])
    sh(psql, stdin="begin;\ninsert into rt_orders (user_id, id, amount) values (1, 1, 10), (2, 2, 20), (5, 3, 30);\n"
       "select * from rt_orders where user_id = 1;\nselect * from rt_orders where user_id = 2;\n"
       "update rt_orders set amount = amount + 1 where user_id in (1, 2, 5);\ncommit;\n"
       "select user_id, sum(amount) from rt_orders group by user_id order by 1;\n"
       "select * from rt_orders order by amount desc limit 2;\nbegin;\n"
       "delete from rt_orders where user_id = 5;\nrollback;\nset application_name = 'fz';\n"
       "select 1/0;\nselect distinct user_id from rt_orders;\n\\q\n")
    sh(psql, stdin="\\copy rt_orders (user_id, id, amount) from stdin\n7\t7\t70\n8\t8\t80\n9\t9\t90\n\\.\n"
       "copy rt_orders to stdout;\ncopy (select * from rt_orders where user_id = 7) to stdout with csv;\n")
    save("psql", rec.take())

    script = ("\\set uid random(1, 40)\nbegin;\nselect * from rt_orders where user_id = :uid;\n"
              "insert into rt_orders (user_id, id, amount) values (:uid, :uid, 1);\nselect count(*) from rt_orders;\n"
              "update rt_orders set amount = amount + 1 where user_id = :uid;\nend;\n"
              "select sum(amount) from rt_orders where user_id in (1, 2, 3, 4, 5);\n")
    path = os.path.join(SESSIONS_DIR, ".pgbench.sql")
    with open(path, "w") as f:
        f.write(script)
    for mode in ("simple", "extended", "prepared"):
        sh(["pgbench", "-n", "-M", mode, "-c", "2", "-j", "1", "-t", "3", "-f", path])
        save("pgbench-" + mode, rec.take())
    os.unlink(path)

    c = rl.pg(rec.port)
    with c.cursor() as cur:
        cur.execute("select %s::int + 1, %s::text", (41, "it's"))
        cur.execute("select * from rt_orders where user_id = %s", (1,))
        c.autocommit = False
        cur.execute("insert into rt_orders (user_id, id, amount) values (%s, %s, %s)", (3, 3, 33))
        cur.execute("select count(*) from rt_orders where user_id in (1, 3)")
        c.commit()
        cur.execute("select user_id, amount from rt_orders order by user_id")
        c.rollback()
        cur.copy_expert("copy rt_orders (user_id, id, amount) from stdin", __import__("io").StringIO("11\t11\t1\n12\t12\t2\n"))
        c.commit()
    c.close()
    save("psycopg2", rec.take())

    node = ("const {Client}=require('pg');(async()=>{const c=new Client();await c.connect();"
            "await c.query('select $1::int + 1 as n',[41]);"
            "await c.query({name:'byuser',text:'select * from rt_orders where user_id = $1',values:[2]});"
            "await c.query({name:'byuser',text:'select * from rt_orders where user_id = $1',values:[5]});"
            "await c.query('begin');await c.query('insert into rt_orders (user_id, id, amount) values ($1, $2, $3)',[4,4,44]);"
            "await c.query('select count(*) from rt_orders');await c.query('commit');"
            "try{await c.query('select $1::int/0',[1])}catch(e){}"
            "await c.end();})().catch(e=>{console.error(e);process.exit(1)})")
    node_path = os.pathsep.join(p for p in (os.path.join(HERE, "node_modules"),
                                            os.environ.get("NODE_PATH", "")) if p)
    node_env = dict(env, NODE_PATH=node_path)
    node_env.pop("PGSSLMODE")  # node-postgres reads "prefer" as "require"
    p = subprocess.run(["node", "-e", node], env=node_env, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        print("node-postgres: %s" % p.stderr.strip()[:400])
    save("node-postgres", rec.take())

    # rows that move, INSERT without a column list, a cursor, a parameterized split INSERT
    sh(psql, stdin="update rt_orders set user_id = user_id + 1 where user_id in (1, 2) returning *;\n"
       "begin;\nupdate rt_orders set user_id = 9 where user_id = 3;\nrollback;\n"
       "update rt_orders set user_id = 30, amount = amount * 2 where user_id = 3;\n"
       "insert into rt_orders values (20, 20, 2), (21, 21, 3);\n"
       "begin;\ndeclare c cursor for select * from rt_orders where user_id = 7;\n"
       "fetch 1 from c;\nfetch 2 from c;\nclose c;\ncommit;\n\\q\n")
    moves = ("const {Client}=require('pg');(async()=>{const c=new Client();await c.connect();"
             "await c.query('insert into rt_orders (user_id, id, amount) values ($1, $2, $3), ($4, $5, $3)',[22,22,5,23,23]);"
             "await c.query('update rt_orders set user_id = $1 where user_id = $2 returning id',[24,22]);"
             "await c.end();})().catch(e=>{console.error(e);process.exit(1)})")
    p = subprocess.run(["node", "-e", moves], env=node_env, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        print("node-postgres (moves): %s" % p.stderr.strip()[:400])
    save("moves", rec.take())

    # cursors over several shards: SQL cursors, psql's FETCH_COUNT, a portal read in parts
    sh(psql, stdin="begin;\ndeclare m cursor for select * from rt_orders order by amount desc;\n"
       "fetch 2 from m;\nmove 1 from m;\nfetch all from m;\nfetch prior from m;\nrollback;\n"
       "\\set FETCH_COUNT 2\nselect user_id, amount from rt_orders order by user_id;\n\\q\n")
    cursors = ("const {Client}=require('pg');const Cursor=require('pg-cursor');"
               "(async()=>{const c=new Client();await c.connect();"
               "const cur=c.query(new Cursor('select * from rt_orders where amount > $1 "
               "order by user_id, id',[0]));"
               "for(;;){const rows=await cur.read(2);if(!rows.length)break}await cur.close();"
               "await c.end();})().catch(e=>{console.error(e);process.exit(1)})")
    p = subprocess.run(["node", "-e", cursors], env=node_env, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        print("node-postgres (cursors): %s" % p.stderr.strip()[:400])
    save("cursors", rec.take())

    setup = rl.pg(upstream)
    with setup.cursor() as cur:
        cur.execute("drop table if exists rt_orders")
    setup.close()


# ---------------------------------------------------------------------------------------
# main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--record", action="store_true", help="record sessions of real clients")
    ap.add_argument("--sessions", type=int, help="send this many sessions")
    ap.add_argument("--seconds", type=float, help="send sessions for this long (default 45)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", type=int, help="send only session N of --seed")
    ap.add_argument("--show", action="store_true", help="with --only: print it, send nothing")
    ap.add_argument("--parallel", type=int, default=4, help="concurrent fuzz connections")
    ap.add_argument("--max-wait", type=float, default=3.0, help="the checker's reply limit, s")
    ap.add_argument("--crash-dir", default=os.path.join(HERE, "fuzz", "crashes"))
    ap.add_argument("--checker-pause", type=float, default=0.0,
                    help="seconds the checkers wait between queries (0: as fast as they can)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PGPORT") or rl.MAIN_PORT))
    a = ap.parse_args()

    if a.record:
        record(a.port)
        return 0
    corpus = load_sessions()
    if not corpus:
        print("FAIL setup: no recorded sessions in %s (run --record)" % SESSIONS_DIR)
        print("0 passed, 1 failed")
        return 1
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    if a.only is not None:
        name, chunks, close_early, what = session_for(seed, a.only, corpus)
        print("session %d of seed %d: %s mutated %s, %d bytes in %d writes%s"
              % (a.only, seed, name, what, sum(map(len, chunks)), len(chunks),
                 ", then close" if close_early else ""))
        if a.show:
            for c in chunks:
                print(" ", c[:400])
            return 0
        try:
            send_session(a.port, chunks, close_early)
        except (Failure, Closed, OSError) as e:
            print("  login failed: %s" % e)
        time.sleep(0.5)
        pid, dead = pid_alive()
        print("ok pgshard alive" if not dead else "FAIL pgshard: " + dead)
        print("%d passed, %d failed" % ((0, 1) if dead else (1, 0)))
        return 1 if dead else 0

    budget = a.seconds if a.seconds is not None else (None if a.sessions else 45.0)
    limit = a.sessions
    print("fuzz_sessions: seed %d, %d recorded sessions, %s, %d parallel, against port %d"
          % (seed, len(corpus), ("%d sessions" % limit if limit else "%.0f s" % budget),
             a.parallel, a.port), flush=True)
    passed = failed = 0
    pid, dead = pid_alive()
    if dead:
        print("FAIL setup: %s" % dead)
        print("0 passed, 1 failed")
        return 1
    created = setup_data(a.port)
    single, tx = checked_queries()
    watchers = [Watcher(a.port, single, a.max_wait, name="checker", pause=a.checker_pause),
                Watcher(a.port, tx, a.max_wait, transaction=True, name="checker-tx",
                        pause=a.checker_pause)]
    lock = threading.Lock()
    state = {"next": 0, "sent": 0, "login_fail": 0, "stop": False, "recent": [], "bytes": 0}
    t0 = time.time()

    def worker():
        while True:
            with lock:
                if state["stop"] or (limit and state["next"] >= limit) or \
                        (budget and time.time() - t0 >= budget):
                    return
                i = state["next"]
                state["next"] += 1
            name, chunks, close_early, what = session_for(seed, i, corpus)
            with lock:
                state["recent"] = (state["recent"] + [(i, name, what)])[-4 * a.parallel:]
            try:
                got = send_session(a.port, chunks, close_early)
            except (Failure, Closed, OSError):
                with lock:
                    state["login_fail"] += 1
                if pid_alive()[1] or state["login_fail"] > 20:
                    with lock:
                        state["stop"] = True
                    return
                continue
            with lock:
                state["sent"] += 1
                state["bytes"] += got
                if any(w.errors for w in watchers):
                    state["stop"] = True

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.parallel)]
    for t in threads:
        t.start()
    last = time.time()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        if pid_alive()[1]:
            state["stop"] = True
        if time.time() - last >= 10:
            last = time.time()
            print("  %.0fs: %d sessions sent, %d checked queries" % (
                last - t0, state["sent"], sum(w.checked for w in watchers)), flush=True)
    for t in threads:
        t.join(30)
    secs = time.time() - t0
    errors = []
    for w in watchers:
        errors += w.finish()
    pid, dead = pid_alive()
    checked = sum(w.checked for w in watchers)
    print("fuzz_sessions: %d sessions sent in %.1f s (%.1f sessions/s), %d logins refused,"
          " %d well-behaved queries checked, slowest checked reply %.2f s"
          % (state["sent"], secs, state["sent"] / max(secs, 0.001), state["login_fail"], checked,
             max(w.slowest for w in watchers)), flush=True)

    problems = []
    if dead:
        problems.append(dead)
    if errors:
        problems.append("the well-behaved client was disturbed: " + "; ".join(errors[:3]))
    if state["login_fail"] > 20:
        problems.append("%d fuzz logins failed" % state["login_fail"])
    if not dead:
        try:
            r = login(a.port, timeout=5)
            rows = r.simple("select 'alive'")[0]
            r.close()
            if rows != [["alive"]]:
                problems.append("a fresh client got %r" % rows)
        except (Failure, Closed, OSError) as e:
            problems.append("a fresh client gets no answer: %s" % e)
    if problems:
        os.makedirs(a.crash_dir, exist_ok=True)
        path = os.path.join(a.crash_dir, "seed-%d.txt" % seed)
        with open(path, "w") as f:
            f.write("# fuzz_sessions.py --seed %d: %s\n# the sessions in flight before it, newest last;"
                    " resend one with: integration/fuzz_sessions.py --seed %d --only N\n"
                    % (seed, " / ".join(problems), seed))
            for i, name, what in state["recent"]:
                f.write("%d %s %s\n" % (i, name, what))
        print("FAIL fuzz_sessions: %s (reproducers: %s)" % (" / ".join(problems), path), flush=True)
        failed += 1
    else:
        print("ok fuzz_sessions: pgshard alive, every checked answer right and on time")
        passed += 1
    try:
        if not dead:
            cleanup_data(a.port, created)
    except Exception as e:  # noqa: BLE001
        print("  (cleanup: %s)" % e)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
