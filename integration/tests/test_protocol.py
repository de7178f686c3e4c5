#!/usr/bin/python3
"""Raw PostgreSQL v3 wire-protocol tests of pgshard: the things drivers do not do.

  cancel     CancelRequest reaches the query it was meant for, and only that one
  malformed  broken or hostile input gets ErrorResponse 08P01 "pgshard: ..." and a
             disconnect, never a hang, and never hurts the other clients
  pipeline   extended protocol by hand: pipelines, portals with row limits, Flush,
             Close, Describe, errors that skip to Sync
  terminate  'X' closes cleanly and an abandoned transaction is rolled back

The target comes from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE. Raw connections do their
own authentication (trust, cleartext, md5 or SCRAM-SHA-256), so they work whatever the target
asks for. Every test passes against plain PostgreSQL 15 except the proxy's own error text:
with PGSHARD_TARGET_IS_DIRECT=1 (for developing these tests against plain PostgreSQL only) a
malformed-input test also accepts PostgreSQL's own reaction (08P01 with PostgreSQL's text, a
silent close, or an ERROR after which PostgreSQL keeps the session).

Run:   /usr/bin/python3 integration/tests/test_protocol.py [TEST_NAME ...]
Output: "ok NAME" / "FAIL NAME: why" per test, then exactly "N passed, N failed".
"""

import base64
import hashlib
import hmac
import os
import random
import socket
import struct
import sys
import threading
import time
import traceback

import psycopg2

DIRECT = os.environ.get("PGSHARD_TARGET_IS_DIRECT") == "1"
TEST_TIMEOUT = float(os.environ.get("E2E_TEST_TIMEOUT", "90"))
IO_TIMEOUT = 10.0  # no single read may wait longer than this

HOST = os.environ.get("PGHOST", "127.0.0.1")
PORT = int(os.environ.get("PGPORT", "5432"))
USER = os.environ.get("PGUSER") or os.environ.get("USER", "postgres")
PASSWORD = os.environ.get("PGPASSWORD", "")
DATABASE = os.environ.get("PGDATABASE") or USER

# ---------------------------------------------------------------------------------------
# tiny runner

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Failure(why)


def eq(got, want, what):
    if got != want:
        raise Failure("%s: got %.300r, want %.300r" % (what, got, want))


def run(selected):
    passed = failed = 0
    for fn in TESTS:
        name = fn.__name__
        if selected and name not in selected:
            continue

        def on_hang(name=name, passed=passed, failed=failed):
            print("FAIL %s: timed out after %.0fs (watchdog)" % (name, TEST_TIMEOUT), flush=True)
            print("%d passed, %d failed" % (passed, failed + 1), flush=True)
            os._exit(1)

        dog = threading.Timer(TEST_TIMEOUT, on_hang)
        dog.daemon = True
        dog.start()
        try:
            fn()
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, str(e).strip().replace("\n", " | ")), flush=True)
        except Exception as e:  # noqa: BLE001 - any exception is a failed test
            failed += 1
            tb = traceback.extract_tb(e.__traceback__)
            where = "line %d" % tb[-1].lineno if tb else ""
            print("FAIL %s: %s: %s (%s)" % (name, type(e).__name__,
                                            str(e).strip().replace("\n", " | "), where),
                  flush=True)
        else:
            passed += 1
            print("ok %s" % name, flush=True)
        finally:
            dog.cancel()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------
# raw wire protocol client

PROTOCOL_V3 = 196608
CANCEL_CODE = 80877102


def cstr(s):
    return s.encode() + b"\0" if isinstance(s, str) else s + b"\0"


def msg(kind, body=b""):
    return kind + struct.pack("!i", len(body) + 4) + body


def parse_fields(body):
    """ErrorResponse/NoticeResponse body -> {field code: text}."""
    out = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        code = chr(body[pos])
        end = body.index(b"\0", pos + 1)
        out[code] = body[pos + 1:end].decode("utf-8", "replace")
        pos = end + 1
    return out


class Closed(Exception):
    """The server closed the connection."""


class Raw:
    """One raw connection: framing, reading with timeouts, message builders."""

    def __init__(self, timeout=IO_TIMEOUT):
        if HOST.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = os.path.join(HOST, ".s.PGSQL.%d" % PORT)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            addr = (HOST, PORT)
        self.sock.settimeout(timeout)
        self.sock.connect(addr)
        self.buf = b""
        self.params = {}
        self.pid = self.key = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                raise Failure("no reply from the server within %.0fs (hang)" % self.sock.gettimeout())
            if not chunk:
                raise Closed()
            self.buf += chunk

    def read(self):
        """Next message as (type char, body bytes)."""
        self._fill(5)
        kind = chr(self.buf[0])
        (length,) = struct.unpack("!i", self.buf[1:5])
        if length < 4 or length > 64 * 1024 * 1024:
            raise Failure("server sent a message %r with bad length %d" % (kind, length))
        self._fill(1 + length)
        body = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return kind, body

    def read_until_eof(self):
        """Read messages until the server closes; return them. Fails if it does not close."""
        got = []
        while True:
            try:
                got.append(self.read())
            except Closed:
                return got

    # -- startup and authentication ----------------------------------------------------

    def startup(self, user=USER, database=DATABASE, extra=None):
        params = [("user", user), ("database", database), ("client_encoding", "UTF8")]
        params += list((extra or {}).items())
        body = struct.pack("!i", PROTOCOL_V3) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
        self.send(struct.pack("!i", len(body) + 4) + body)
        self._authenticate(user)
        while True:
            kind, body = self.read()
            if kind == "S":
                name, value = body.split(b"\0")[:2]
                self.params[name.decode()] = value.decode()
            elif kind == "K":
                self.pid, self.key = struct.unpack("!ii", body)
            elif kind == "Z":
                return body
            elif kind == "E":
                raise Failure("startup failed: %r" % parse_fields(body))
            elif kind == "N":
                continue
            else:
                raise Failure("unexpected message %r during startup" % kind)

    def _authenticate(self, user):
        scram = None
        while True:
            kind, body = self.read()
            if kind == "E":
                raise Failure("authentication failed: %r" % parse_fields(body))
            if kind != "R":
                raise Failure("expected Authentication, got %r" % kind)
            (code,) = struct.unpack("!i", body[:4])
            if code == 0:  # AuthenticationOk
                return
            if code == 3:  # cleartext
                self.send(msg(b"p", cstr(PASSWORD)))
            elif code == 5:  # md5
                salt = body[4:8]
                inner = hashlib.md5((PASSWORD + user).encode()).hexdigest().encode()
                self.send(msg(b"p", cstr(b"md5" + hashlib.md5(inner + salt).hexdigest().encode())))
            elif code == 10:  # SASL: list of mechanisms
                mechs = [m.decode() for m in body[4:].split(b"\0") if m]
                check("SCRAM-SHA-256" in mechs, "server offers no SCRAM-SHA-256: %r" % mechs)
                scram = Scram(PASSWORD)
                first = scram.client_first()
                self.send(msg(b"p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
            elif code == 11:  # SASLContinue
                self.send(msg(b"p", scram.client_final(body[4:])))
            elif code == 12:  # SASLFinal
                scram.verify_server(body[4:])
            else:
                raise Failure("unsupported authentication request %d" % code)

    # -- builders ------------------------------------------------------------------------

    @staticmethod
    def query(sql):
        return msg(b"Q", cstr(sql))

    @staticmethod
    def parse(name, sql, oids=()):
        return msg(b"P", cstr(name) + cstr(sql) + struct.pack("!h", len(oids))
                   + b"".join(struct.pack("!I", o) for o in oids))

    @staticmethod
    def bind(portal, stmt, values=(), result_formats=()):
        body = cstr(portal) + cstr(stmt) + struct.pack("!h", 0) + struct.pack("!h", len(values))
        for v in values:
            if v is None:
                body += struct.pack("!i", -1)
            else:
                v = v.encode() if isinstance(v, str) else v
                body += struct.pack("!i", len(v)) + v
        body += struct.pack("!h", len(result_formats))
        body += b"".join(struct.pack("!h", f) for f in result_formats)
        return msg(b"B", body)

    @staticmethod
    def execute(portal="", max_rows=0):
        return msg(b"E", cstr(portal) + struct.pack("!i", max_rows))

    @staticmethod
    def describe(kind, name):
        return msg(b"D", kind + cstr(name))

    @staticmethod
    def close_(kind, name):
        return msg(b"C", kind + cstr(name))

    SYNC = msg(b"S")
    FLUSH = msg(b"H")
    TERMINATE = msg(b"X")

    # -- reading helpers -----------------------------------------------------------------

    def until_ready(self):
        """Messages up to and including ReadyForQuery."""
        got = []
        while True:
            m = self.read()
            got.append(m)
            if m[0] == "Z":
                return got

    def simple(self, sql):
        """Run a simple query; return (rows as lists of str/None, tags, error fields or None, status)."""
        self.send(self.query(sql))
        rows, tags, err = [], [], None
        for kind, body in self.until_ready():
            if kind == "D":
                rows.append(data_row(body))
            elif kind == "C":
                tags.append(body[:-1].decode())
            elif kind == "E":
                err = parse_fields(body)
            elif kind == "Z":
                return rows, tags, err, body.decode()


def data_row(body):
    (n,) = struct.unpack("!h", body[:2])
    pos = 2
    out = []
    for _ in range(n):
        (ln,) = struct.unpack("!i", body[pos:pos + 4])
        pos += 4
        if ln < 0:
            out.append(None)
        else:
            out.append(body[pos:pos + ln].decode())
            pos += ln
    return out


class Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677), as PostgreSQL uses it (no channel binding)."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=,r=" + self.nonce

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        check(attrs["r"].startswith(self.nonce), "SCRAM server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_signature = hmac.new(server_key, auth_message, "sha256").digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify_server(self, server_final):
        text = server_final.decode()
        check(text.startswith("v="), "SCRAM server-final %r" % text)
        check(base64.b64decode(text[2:]) == self.server_signature, "SCRAM server signature wrong")


def connected():
    r = Raw()
    status = r.startup()
    eq(status, b"I", "ReadyForQuery status after startup")
    return r


def pg_connect(**kw):
    kw.setdefault("connect_timeout", 10)
    c = psycopg2.connect("", **kw)
    c.autocommit = True
    return c


def kinds(msgs):
    return "".join(k for k, _ in msgs)


# ---------------------------------------------------------------------------------------
# (a) cancel


def wait_until_running(marker, secs=10):
    """Wait until a query containing marker is active on the server (so a cancel can hit it)."""
    c = pg_connect()
    try:
        deadline = time.time() + secs
        with c.cursor() as cur:
            while time.time() < deadline:
                cur.execute("select count(*) from pg_stat_activity where state = 'active'"
                            " and query like %s and pid <> pg_backend_pid()", ("%" + marker + "%",))
                if cur.fetchone()[0] > 0:
                    return
                time.sleep(0.05)
        raise Failure("query %r never showed up as active in pg_stat_activity" % marker)
    finally:
        c.close()


@test
def cancel_running_query_with_psycopg2():
    c = pg_connect()
    try:
        result = {}

        def sleeper():
            t0 = time.time()
            try:
                with c.cursor() as cur:
                    cur.execute("select pg_sleep(30) -- e2e_cancel_a")
                result["outcome"] = "completed"
            except psycopg2.Error as e:
                result["outcome"] = e.pgcode
                result["message"] = str(e).strip()
            result["secs"] = time.time() - t0

        t = threading.Thread(target=sleeper, daemon=True)
        t.start()
        time.sleep(0.5)
        wait_until_running("e2e_cancel_a")
        c.cancel()
        t.join(10)
        check(not t.is_alive(), "query still running 10s after cancel")
        eq(result.get("outcome"), "57014", "outcome of cancelled query (%r)" % result)
        check("canceling statement due to user request" in result.get("message", ""),
              "message %r" % result.get("message"))
        check(result["secs"] < 8, "cancel took %.1fs" % result["secs"])
        with c.cursor() as cur:
            cur.execute("select 41 + 1")
            eq(cur.fetchone()[0], 42, "connection usable after cancel")
    finally:
        c.close()


@test
def cancel_in_transaction_and_wrong_key_ignored():
    r = connected()
    try:
        check(r.pid is not None, "no BackendKeyData")
        # A CancelRequest with a wrong secret must not cancel anything.
        r.send(Raw.query("select pg_sleep(1.5), 'finished' -- e2e_cancel_b"))
        wait_until_running("e2e_cancel_b")
        bad = Raw()
        bad.send(struct.pack("!iiii", 16, CANCEL_CODE, r.pid, (r.key or 0) ^ 0x5A5A5A5A))
        try:
            extra = bad.read_until_eof()
            eq(extra, [], "reply to a CancelRequest")
        finally:
            bad.close()
        msgs = r.until_ready()
        eq(kinds(msgs), "TDCZ", "query after a wrong-key cancel")
        eq(data_row(msgs[1][1]), ["", "finished"], "row")

        # A real CancelRequest on a raw connection inside a transaction block.
        rows, tags, err, status = r.simple("begin")
        eq((tags, err, status), (["BEGIN"], None, "T"), "begin")
        r.send(Raw.query("select pg_sleep(30) -- e2e_cancel_c"))
        wait_until_running("e2e_cancel_c")
        canceller = Raw()
        canceller.send(struct.pack("!iiii", 16, CANCEL_CODE, r.pid, r.key))
        eq(canceller.read_until_eof(), [], "reply to a CancelRequest")
        canceller.close()
        msgs = r.until_ready()
        errs = [parse_fields(b) for k, b in msgs if k == "E"]
        check(errs and errs[0].get("C") == "57014", "want 57014, got %r" % kinds(msgs))
        eq(msgs[-1], ("Z", b"E"), "transaction failed after cancel")
        rows, tags, err, status = r.simple("rollback")
        eq((tags, status), (["ROLLBACK"], "I"), "rollback")
        rows, tags, err, status = r.simple("select 7")
        eq(rows, [["7"]], "usable after cancel")
    finally:
        r.close()


# ---------------------------------------------------------------------------------------
# (b) malformed input, while other clients keep working


class Checkers:
    """Clients that run checked queries in a loop; any error or wrong answer is counted."""

    def __init__(self, n=4):
        self.stop = threading.Event()
        self.errors = []
        self.iterations = [0] * n
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True)
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def _loop(self, i):
        try:
            c = pg_connect(application_name="e2e_checker_%d" % i)
        except psycopg2.Error as e:
            self.errors.append("checker %d connect: %s" % (i, e))
            return
        try:
            cur = c.cursor()
            k = 0
            while not self.stop.is_set():
                k += 1
                cur.execute("select %s::int * 2, repeat('ab', %s), current_setting('application_name')",
                            (k, k % 500))
                got = cur.fetchone()
                want = (k * 2, "ab" * (k % 500), "e2e_checker_%d" % i)
                if got != want:
                    self.errors.append("checker %d iteration %d: got %.100r" % (i, k, got))
                cur.execute("begin")
                cur.execute("select count(*) from generate_series(1, %s)", (k % 100,))
                if cur.fetchone()[0] != k % 100:
                    self.errors.append("checker %d iteration %d: bad count" % (i, k))
                cur.execute("commit")
                self.iterations[i] += 1
        except Exception as e:  # noqa: BLE001
            self.errors.append("checker %d: %s: %s" % (i, type(e).__name__, str(e).strip()))
        finally:
            c.close()

    def finish(self):
        time.sleep(0.3)
        self.stop.set()
        for t in self.threads:
            t.join(15)
        check(not any(t.is_alive() for t in self.threads), "a checker client hung")
        check(not self.errors, "other clients were hurt: %s" % "; ".join(self.errors[:3]))
        check(all(n > 0 for n in self.iterations), "a checker made no progress: %r" % self.iterations)


def expect_protocol_violation(r, what, pre_startup=False, allow_pg_keeps_session=False,
                              codes=("08P01",)):
    """The server must answer a protocol violation and close, within IO_TIMEOUT.

    pgshard: ErrorResponse with C=08P01 and M starting "pgshard:", then EOF. Before startup a
    plain close (PostgreSQL's own behaviour) is also fine. With PGSHARD_TARGET_IS_DIRECT=1 the
    reaction of plain PostgreSQL is accepted too (see module docstring)."""
    got, closed = [], False
    try:
        while True:
            m = r.read()
            got.append(m)
            if m[0] == "Z":
                break  # the server kept the session
    except Closed:
        closed = True
    except ConnectionResetError:
        closed = True
    except Failure:
        raise Failure("%s: neither closed nor answered within %.0fs (got %r)"
                      % (what, IO_TIMEOUT, kinds(got)))
    if os.environ.get("E2E_DEBUG"):
        print("  [debug] %s: closed=%s got=%r" % (what, closed, [(k, parse_fields(b) if k == "E" else b)
                                                              for k, b in got]), flush=True)
    if not closed:
        if DIRECT and allow_pg_keeps_session and any(k == "E" for k, _ in got):
            e = parse_fields([b for k, b in got if k == "E"][0])
            eq(e.get("C"), "08P01", "%s: SQLSTATE (%r)" % (what, e))
            return  # plain PostgreSQL reports this one as an ERROR and goes on
        raise Failure("%s: server kept the session after a protocol violation (got %r)"
                      % (what, kinds(got)))
    errors = [parse_fields(b) for k, b in got if k == "E"]
    others = [k for k, _ in got if k not in ("E", "N", "1")]
    if not errors:
        if pre_startup or DIRECT:
            check(closed, "%s: no error and no close" % what)
            return
        raise Failure("%s: connection closed without an ErrorResponse (got %r)" % (what, kinds(got)))
    e = errors[0]
    if DIRECT:
        check(e.get("C") in ("08P01", "0A000"), "%s: SQLSTATE %r, want 08P01 (%r)" % (what, e.get("C"), e))
        return
    check(e.get("C") in codes, "%s: SQLSTATE %r, want %s (%r)" % (what, e.get("C"), codes, e))
    check(e.get("M", "").startswith("pgshard:"), "%s: message %r does not start with 'pgshard:'"
          % (what, e.get("M")))
    check(e.get("S") in ("FATAL", "ERROR"), "%s: severity %r" % (what, e.get("S")))
    eq(others, [], "%s: messages after the error, before close" % what)
    check(len(errors) == 1, "%s: %d ErrorResponses" % (what, len(errors)))


def raw_after_startup_bad(payload, what, allow_pg_keeps_session=False):
    r = connected()
    try:
        r.send(payload)
        expect_protocol_violation(r, what, allow_pg_keeps_session=allow_pg_keeps_session)
    finally:
        r.close()


def raw_before_startup_bad(payload, what, codes=("08P01",)):
    r = Raw()
    try:
        try:
            r.send(payload)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed on us while sending: fine
        expect_protocol_violation(r, what, pre_startup=True, codes=codes)
    finally:
        r.close()


@test
def malformed_input_is_rejected_and_others_unharmed():
    checkers = Checkers(4)
    try:
        time.sleep(0.3)
        rng = random.Random(20240601)

        # Random garbage before startup; the first byte makes the declared length absurd.
        garbage = bytearray(rng.getrandbits(8) for _ in range(256))
        garbage[0] |= 0x40
        raw_before_startup_bad(bytes(garbage), "random garbage before startup")

        # Random bytes that are framed like a startup packet but carry a nonsense version.
        body = bytes(rng.getrandbits(8) for _ in range(60))
        raw_before_startup_bad(struct.pack("!i", 64) + struct.pack("!i", 0x7F000001) + body,
                               "startup packet with an unknown protocol version",
                               codes=("08P01", "0A000"))  # PostgreSQL says 0A000 here

        # Startup packet declaring 20000 bytes (limit is 10000); send only part of it.
        raw_before_startup_bad(struct.pack("!ii", 20000, PROTOCOL_V3) + cstr("user") + cstr(USER),
                               "startup packet of declared length 20000")

        # Startup packet shorter than its fixed header.
        raw_before_startup_bad(struct.pack("!i", 3), "startup packet of declared length 3")

        # After a good startup: an unknown message type.
        raw_after_startup_bad(msg(b"z"), "message type 'z'")

        # A 'Q' declaring 2^31-1 bytes; only a few follow.
        raw_after_startup_bad(b"Q" + struct.pack("!i", 2 ** 31 - 1) + b"select 1",
                              "'Q' of declared length 2^31-1")

        # A length below the minimum of 4.
        raw_after_startup_bad(b"Q" + struct.pack("!i", 2) + b"\0\0", "'Q' of declared length 2")

        # A 'Q' whose body ends before its string's NUL.
        raw_after_startup_bad(b"Q" + struct.pack("!i", 5) + b"x",
                              "'Q' with unterminated string", allow_pg_keeps_session=True)

        # A Parse cut off inside its parameter-type array, then a Bind that uses it.
        cut = cstr("e2e_cut") + cstr("select $1::int") + struct.pack("!h", 2) + struct.pack("!I", 23)
        raw_after_startup_bad(msg(b"P", cut) + Raw.bind("", "e2e_cut", ["1", "2"]) + Raw.execute()
                              + Raw.SYNC, "Parse with truncated parameter types",
                              allow_pg_keeps_session=True)

        # A valid Parse, then a Bind whose parameter values are cut off.
        bind_cut = cstr("") + cstr("e2e_ok") + struct.pack("!hh", 0, 2) + struct.pack("!i", 1) + b"5"
        raw_after_startup_bad(Raw.parse("e2e_ok", "select $1::int + $2::int", [23, 23])
                              + msg(b"B", bind_cut) + Raw.execute() + Raw.SYNC,
                              "Bind with truncated parameter values", allow_pg_keeps_session=True)

        # A client that disappears half-way through a message must not disturb anyone.
        r = connected()
        r.send(b"Q" + struct.pack("!i", 100) + b"select 1")
        r.close()
        # Nor one that disappears half-way through its startup packet.
        r = Raw()
        r.send(struct.pack("!ii", 60, PROTOCOL_V3) + cstr("user"))
        r.close()

        # The proxy still accepts and serves new clients.
        r = connected()
        rows, tags, err, status = r.simple("select 'still alive'")
        eq((rows, err, status), ([["still alive"]], None, "I"), "new client after the abuse")
        r.close()
    finally:
        checkers.finish()


@test
def ssl_and_gssenc_requests_are_declined_then_startup_works():
    # libpq sends SSLRequest first by default (sslmode=prefer) over TCP; a proxy must answer it.
    for code, name in ((80877103, "SSLRequest"), (80877104, "GSSENCRequest")):
        if HOST.startswith("/"):
            return  # libpq never negotiates encryption on a Unix socket
        r = Raw()
        try:
            r.send(struct.pack("!ii", 8, code))
            try:
                answer = r.sock.recv(1)
            except socket.timeout:
                raise Failure("%s: no answer within %.0fs" % (name, IO_TIMEOUT))
            check(answer in (b"N", b"S", b"G"), "%s: answer %r" % (name, answer))
            if answer != b"N":
                continue  # encryption offered; this raw client cannot go on, which is fine
            eq(r.startup(), b"I", "startup after declined %s" % name)
            rows, tags, err, status = r.simple("select 'after %s'" % name)
            eq(rows, [["after %s" % name]], "query after %s" % name)
        finally:
            r.close()


# ---------------------------------------------------------------------------------------
# (c) extended protocol by hand


@test
def pipeline_two_statements_one_sync():
    r = connected()
    try:
        r.send(Raw.parse("e2e_s1", "select 1::int4 as a, 'x'::text as b")
               + Raw.bind("", "e2e_s1") + Raw.execute()
               + Raw.parse("e2e_s2", "select $1::text || '!' as c, $2::int8 * 2 as d", [25, 20])
               + Raw.bind("", "e2e_s2", ["héllo", "21"]) + Raw.execute()
               + Raw.bind("", "e2e_s2", [None, "-1"]) + Raw.execute()
               + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "12DC12DC2DCZ", "message sequence")
        eq(data_row(msgs[2][1]), ["1", "x"], "row of S1")
        eq(msgs[3][1], b"SELECT 1\0", "tag of S1")
        eq(data_row(msgs[6][1]), ["héllo!", "42"], "row of S2")
        eq(data_row(msgs[9][1]), [None, "-2"], "row of S2 with NULL")
        eq(msgs[-1][1], b"I", "status")
        # Named statements stay usable in later pipelines (re-prepared if needed).
        for i in range(5):
            r.send(Raw.bind("", "e2e_s2", [str(i), str(i)]) + Raw.execute() + Raw.SYNC)
            msgs = r.until_ready()
            eq(kinds(msgs), "2DCZ", "reuse #%d" % i)
            eq(data_row(msgs[1][1]), ["%d!" % i, str(2 * i)], "reuse row #%d" % i)
        # Parse of an existing name is an error (42P05), like on PostgreSQL.
        r.send(Raw.parse("e2e_s1", "select 2") + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "EZ", "duplicate Parse")
        eq(parse_fields(msgs[0][1]).get("C"), "42P05", "duplicate Parse SQLSTATE")
        # Binary result format.
        r.send(Raw.bind("", "e2e_s1", result_formats=[1]) + Raw.execute() + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "2DCZ", "binary result")
        eq(msgs[1][1], struct.pack("!hi", 2, 4) + struct.pack("!i", 1) + struct.pack("!i", 1) + b"x",
           "binary DataRow")
    finally:
        r.close()


@test
def portal_row_limit_and_portal_suspended():
    r = connected()
    try:
        rows, tags, err, status = r.simple("begin")
        eq(status, "T", "status after begin")
        r.send(Raw.parse("", "select g from generate_series(1, 5) g")
               + Raw.bind("e2e_portal", "") + Raw.execute("e2e_portal", 2) + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "12DDsZ", "first execute")
        eq([data_row(b) for k, b in msgs if k == "D"], [["1"], ["2"]], "first rows")
        eq(msgs[-1][1], b"T", "still in transaction")
        r.send(Raw.execute("e2e_portal", 2) + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "DDsZ", "second execute")
        eq([data_row(b) for k, b in msgs if k == "D"], [["3"], ["4"]], "second rows")
        r.send(Raw.execute("e2e_portal", 0) + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "DCZ", "last execute")
        eq(data_row(msgs[0][1]), ["5"], "last row")
        eq(msgs[1][1], b"SELECT 1\0", "last tag")
        rows, tags, err, status = r.simple("commit")
        eq((tags, status), (["COMMIT"], "I"), "commit")

        # Several Executes of one portal in a single pipeline, outside a transaction block.
        r.send(Raw.parse("", "select g from generate_series(1, 5) g") + Raw.bind("", "")
               + Raw.execute("", 3) + Raw.execute("", 3) + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "12DDDsDDCZ", "pipelined executes")
        eq(msgs[-2][1], b"SELECT 2\0", "tag")
    finally:
        r.close()


@test
def flush_without_sync_and_describe_and_close():
    r = connected()
    try:
        r.send(Raw.parse("e2e_flush", "select $1::int4 as x, $2::text as y, now() as z")
               + Raw.FLUSH)
        eq(r.read(), ("1", b""), "ParseComplete after Flush, before any Sync")
        r.send(Raw.describe(b"S", "e2e_flush") + Raw.FLUSH)
        kind, body = r.read()
        eq(kind, "t", "ParameterDescription")
        eq(struct.unpack("!hII", body), (2, 23, 25), "parameter types")
        kind, body = r.read()
        eq(kind, "T", "RowDescription")
        (n,) = struct.unpack("!h", body[:2])
        eq(n, 3, "field count")
        pos, fields = 2, []
        for _ in range(n):
            end = body.index(b"\0", pos)
            name = body[pos:end].decode()
            table, col, typ, size, mod, fmt = struct.unpack("!IhIhih", body[end + 1:end + 19])
            fields.append((name, typ, fmt))
            pos = end + 19
        eq(fields, [("x", 23, 0), ("y", 25, 0), ("z", 1184, 0)], "fields")
        r.send(Raw.SYNC)
        eq(kinds(r.until_ready()), "Z", "Sync after flushes")

        # Describe of a portal, and of a statement that returns no rows.
        r.send(Raw.bind("p1", "e2e_flush", ["7", "seven"]) + Raw.describe(b"P", "p1")
               + Raw.execute("p1") + Raw.parse("e2e_norows", "set application_name = 'e2e'")
               + Raw.describe(b"S", "e2e_norows") + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "2TDC1tnZ", "describe portal / no-data statement")
        eq(data_row(msgs[2][1])[:2], ["7", "seven"], "row via described portal")

        # Close statement -> CloseComplete; using it afterwards -> 26000.
        r.send(Raw.close_(b"S", "e2e_flush") + Raw.close_(b"S", "e2e_never_existed") + Raw.SYNC)
        eq(kinds(r.until_ready()), "33Z", "CloseComplete twice (closing a missing name is ok)")
        r.send(Raw.bind("", "e2e_flush", ["1", "a"]) + Raw.execute() + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "EZ", "Bind to a closed statement")
        eq(parse_fields(msgs[0][1]).get("C"), "26000", "SQLSTATE")
        # The name is free again.
        r.send(Raw.parse("e2e_flush", "select 'reused'") + Raw.bind("", "e2e_flush")
               + Raw.execute() + Raw.close_(b"P", "") + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "12DC3Z", "reparse after close")
        eq(data_row(msgs[2][1]), ["reused"], "row")
    finally:
        r.close()


@test
def error_in_pipeline_skips_to_sync():
    r = connected()
    try:
        r.send(Raw.parse("", "select 1") + Raw.bind("", "") + Raw.execute()
               + Raw.parse("", "select 1/(g - $1::int) from generate_series(1, 5) g")
               + Raw.bind("", "", ["3"]) + Raw.execute()
               + Raw.parse("", "select 3") + Raw.bind("", "") + Raw.execute()
               + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "12DC12DDEZ", "pipeline with an error")
        eq([data_row(b) for k, b in msgs[6:8]], [["0"], ["-1"]], "rows before the error")
        e = parse_fields(msgs[8][1])
        eq(e.get("C"), "22012", "SQLSTATE")
        eq(e.get("M"), "division by zero", "message")
        eq(msgs[-1][1], b"I", "status after error")
        # A syntax error at Parse: position survives.
        r.send(Raw.parse("e2e_bad", "select 1 frm x") + Raw.bind("", "e2e_bad") + Raw.execute()
               + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "EZ", "syntax error at parse")
        e = parse_fields(msgs[0][1])
        eq((e.get("C"), e.get("P")), ("42601", "14"), "SQLSTATE and position")
        # The failed Parse did not create the statement.
        r.send(Raw.parse("e2e_bad", "select 'fine'") + Raw.bind("", "e2e_bad") + Raw.execute()
               + Raw.SYNC)
        msgs = r.until_ready()
        eq(kinds(msgs), "12DCZ", "next pipeline works")
        eq(data_row(msgs[2][1]), ["fine"], "row")
        # Inside a transaction block the error leaves it failed until ROLLBACK.
        r.send(Raw.query("begin") + Raw.parse("", "select 1/0") + Raw.bind("", "") + Raw.execute()
               + Raw.SYNC + Raw.parse("", "select 1") + Raw.bind("", "") + Raw.execute() + Raw.SYNC)
        msgs = r.until_ready() + r.until_ready() + r.until_ready()
        eq(kinds(msgs[:2]), "CZ", "begin")
        tail = kinds(msgs[2:])
        check(tail in ("1EZEZ", "12EZEZ", "EZEZ"), "failed-transaction pipelines: %r" % tail)
        eq(msgs[-1][1], b"E", "status in failed transaction")
        eq(parse_fields([b for k, b in msgs if k == "E"][-1]).get("C"), "25P02", "SQLSTATE")
        rows, tags, err, status = r.simple("rollback")
        eq((tags, status), (["ROLLBACK"], "I"), "rollback")
    finally:
        r.close()


@test
def simple_query_multi_statement_and_empty():
    r = connected()
    try:
        rows, tags, err, status = r.simple("select 1; select 2, 3; ")
        eq((rows, tags, err, status), ([["1"], ["2", "3"]], ["SELECT 1", "SELECT 1"], None, "I"),
           "two statements")
        r.send(Raw.query(""))
        eq(kinds(r.until_ready()), "IZ", "empty query -> EmptyQueryResponse")
        rows, tags, err, status = r.simple("select 1; select 1/0; select 3")
        eq(rows, [["1"]], "rows before the error")
        eq(err.get("C"), "22012", "error")
        rows, tags, err, status = r.simple("select 'ok'")
        eq(rows, [["ok"]], "after multi-statement error")
    finally:
        r.close()


def leave_statement_then_bind_from_others(name):
    """Client A parses statement `name` and leaves it; other clients, which may get A's server
    connection next, must not be able to use it, and may define the same name themselves."""
    a = connected()
    try:
        a.send(Raw.parse(name, "select 'from A'") + Raw.SYNC)
        eq(kinds(a.until_ready()), "1Z", "A's Parse")
        for i in range(6):
            b = connected()
            try:
                b.send(Raw.bind("", name) + Raw.execute() + Raw.SYNC)
                msgs = b.until_ready()
                got = [data_row(x) for k, x in msgs if k == "D"]
                eq(kinds(msgs), "EZ", "B binds statement %r that only A parsed #%d (rows %r)"
                   % (name, i, got))
                eq(parse_fields(msgs[0][1]).get("C"), "26000", "SQLSTATE")
                b.send(Raw.parse(name, "select 'from B'") + Raw.bind("", name)
                       + Raw.execute() + Raw.SYNC)
                msgs = b.until_ready()
                eq(kinds(msgs), "12DCZ", "B's own %r" % name)
                eq(data_row(msgs[2][1]), ["from B"], "B's row")
            finally:
                b.close()
            if name:  # the unnamed statement is not required to survive a Sync's transaction end
                a.send(Raw.bind("", name) + Raw.execute() + Raw.SYNC)
                msgs = a.until_ready()
                eq(kinds(msgs), "2DCZ", "A's statement still there #%d" % i)
                eq(data_row(msgs[1][1]), ["from A"], "A's row")
    finally:
        a.close()


@test
def unnamed_statement_does_not_leak_between_clients():
    leave_statement_then_bind_from_others("")


@test
def named_statement_does_not_leak_between_clients():
    leave_statement_then_bind_from_others("e2e_leak")


# ---------------------------------------------------------------------------------------
# (d) terminate


@test
def terminate_closes_cleanly_and_rolls_back():
    r = connected()
    r.send(Raw.TERMINATE)
    eq(r.read_until_eof(), [], "messages after Terminate")
    r.close()

    setup = pg_connect()
    try:
        with setup.cursor() as cur:
            cur.execute("drop table if exists e2e_proto_term")
            cur.execute("create table e2e_proto_term (id int primary key)")
        # Terminate in the middle of a transaction that wrote and holds a row lock.
        r = connected()
        for sql in ("begin", "insert into e2e_proto_term values (1)"):
            rows, tags, err, status = r.simple(sql)
            eq((err, status), (None, "T"), sql)
        r.send(Raw.TERMINATE)
        eq(r.read_until_eof(), [], "messages after Terminate in a transaction")
        r.close()
        with setup.cursor() as cur:
            cur.execute("set lock_timeout = '5s'")
            # Blocks (then fails) if the abandoned transaction were still open.
            cur.execute("insert into e2e_proto_term values (1)")
            cur.execute("select count(*) from e2e_proto_term")
            eq(cur.fetchone()[0], 1, "rows after abandoned transaction")
        # Neither a Terminate nor a plain disconnect leaves a transaction for the next client.
        r = connected()
        r.simple("begin")
        r.simple("insert into e2e_proto_term values (2)")
        r.close()  # no Terminate at all
        time.sleep(0.3)
        for i in range(10):
            c = connected()
            rows, tags, err, status = c.simple("select txid_current_if_assigned() is null,"
                                               " (select count(*) from e2e_proto_term)")
            eq((rows, status), ([["t", "1"]], "I"), "fresh client #%d sees clean state" % i)
            c.send(Raw.TERMINATE)
            c.close()
        with setup.cursor() as cur:
            cur.execute("drop table e2e_proto_term")
    finally:
        setup.close()


if __name__ == "__main__":
    sys.exit(run(set(sys.argv[1:])))
