#!/usr/bin/python3
"""End-to-end tests of pgshard with psycopg2 (libpq), a driver applications really use.

The target is whatever the libpq environment names (PGHOST, PGPORT, PGUSER, PGPASSWORD,
PGDATABASE): pgshard in CI, or a plain PostgreSQL 15 while developing. Every test must pass
against plain PostgreSQL; pgshard passes them by being transparent.

Run:   /usr/bin/python3 integration/tests/test_psycopg2.py [TEST_NAME ...]
Output: one line per test, "ok NAME" or "FAIL NAME: why", then exactly "N passed, N failed".
Exit status 1 if anything failed. A per-test watchdog ends the run if a test hangs.
"""

import datetime
import decimal
import io
import os
import select
import sys
import threading
import time
import traceback

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

TEST_TIMEOUT = float(os.environ.get("E2E_TEST_TIMEOUT", "120"))

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


def short(v, limit=300):
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "...(%d chars)" % len(r)


def eq(got, want, what):
    if got != want:
        if isinstance(got, str) and isinstance(want, str):
            i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                     min(len(got), len(want)))
            raise Failure("%s: differs at char %d: got %s, want %s"
                          % (what, i, short(got[max(0, i - 40):i + 80]),
                             short(want[max(0, i - 40):i + 80])))
        raise Failure("%s: got %s, want %s" % (what, short(got), short(want)))


def connect(**kw):
    kw.setdefault("connect_timeout", 10)
    return psycopg2.connect("", **kw)


def autocommit_conn(**kw):
    c = connect(**kw)
    c.autocommit = True
    return c


def one(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def scalar(conn, sql, args=None):
    return one(conn, sql, args)[0]


def expect_error(conn, sql, sqlstate, args=None):
    """Run sql, require it to fail with sqlstate; return the psycopg2 exception."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql, args)
        except psycopg2.Error as e:
            if e.pgcode != sqlstate:
                raise Failure("%r: want SQLSTATE %s, got %s (%s)"
                              % (sql, sqlstate, e.pgcode, str(e).strip()))
            return e
    raise Failure("%r: succeeded, want error %s" % (sql, sqlstate))


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
# tests


@test
def connect_and_server_parameters():
    c = connect()
    try:
        eq(c.info.transaction_status, psycopg2.extensions.TRANSACTION_STATUS_IDLE, "txn status")
        eq(scalar(c, "select 1"), 1, "select 1")
        # ParameterStatus values a driver relies on must reach the client.
        check(c.server_version >= 150000, "server_version %r" % c.server_version)
        eq(c.get_parameter_status("client_encoding"), "UTF8", "client_encoding")
        eq(c.get_parameter_status("integer_datetimes"), "on", "integer_datetimes")
        check(c.get_parameter_status("server_version"), "no server_version ParameterStatus")
        check(c.get_parameter_status("standard_conforming_strings") == "on",
              "standard_conforming_strings")
        eq(scalar(c, "select current_user"), os.environ.get("PGUSER", scalar(c, "select current_user")),
           "current_user")
        if os.environ.get("PGDATABASE"):
            eq(scalar(c, "select current_database()"), os.environ["PGDATABASE"], "current_database")
        check(c.get_backend_pid() != 0, "BackendKeyData pid is 0")
    finally:
        c.close()


@test
def simple_query_types():
    c = autocommit_conn()
    try:
        row = one(c, """
            select 42::int4, 9007199254740993::int8, '-32768'::int2,
                   12345678901234567890.123456789::numeric, 1.5::float8,
                   'héllo wörld ✓ 日本語 😀'::text, '\\x00ff10'::bytea,
                   NULL::text, true, '2024-02-29 23:59:58.123456+00'::timestamptz,
                   '{"a": [1, 2, {"b": null}], "ü": "ß"}'::jsonb,
                   ARRAY[1, 2, 3]::int[], ARRAY['x', NULL, 'z y']::text[],
                   '2024-01-02'::date, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
                   '1 day 02:03:04'::interval, ''::text, ARRAY[[1,2],[3,4]]::int[]
        """)
        eq(row[0], 42, "int4")
        eq(row[1], 9007199254740993, "int8")
        eq(row[2], -32768, "int2")
        eq(row[3], decimal.Decimal("12345678901234567890.123456789"), "numeric")
        eq(row[4], 1.5, "float8")
        eq(row[5], "héllo wörld ✓ 日本語 😀", "unicode text")
        eq(bytes(row[6]), b"\x00\xff\x10", "bytea")
        eq(row[7], None, "NULL")
        eq(row[8], True, "bool")
        want_ts = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc)
        eq(row[9], want_ts, "timestamptz")
        eq(row[10], {"a": [1, 2, {"b": None}], "ü": "ß"}, "jsonb")
        eq(row[11], [1, 2, 3], "int[]")
        eq(row[12], ["x", None, "z y"], "text[]")
        eq(row[13], datetime.date(2024, 1, 2), "date")
        eq(row[14], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid")
        eq(row[15], datetime.timedelta(days=1, hours=2, minutes=3, seconds=4), "interval")
        eq(row[16], "", "empty text")
        eq(row[17], [[1, 2], [3, 4]], "2-d array")

        # Many rows, column metadata.
        with c.cursor() as cur:
            cur.execute("select g as n, g::text || 'é' as s from generate_series(1, 5000) g")
            eq([d.name for d in cur.description], ["n", "s"], "column names")
            eq(cur.description[0].type_code, 23, "int4 type oid")
            eq(cur.description[1].type_code, 25, "text type oid")
            rows = cur.fetchall()
            eq(len(rows), 5000, "row count")
            eq(rows[4999], (5000, "5000é"), "last row")
            eq(sum(r[0] for r in rows), 5000 * 5001 // 2, "sum")
            eq(cur.rowcount, 5000, "rowcount")
            eq(cur.statusmessage, "SELECT 5000", "command tag")
    finally:
        c.close()


@test
def parameters_roundtrip():
    c = autocommit_conn()
    try:
        tricky = "it's \"quoted\" \\ back\\slash ü 😀 $1 %s ;"
        ts = datetime.datetime(2023, 7, 1, 12, 0, 0, 1, tzinfo=datetime.timezone.utc)
        with c.cursor() as cur:
            cur.execute("select %s, %s, %s, %s, %s, %s, %s, %s::jsonb",
                        (123, tricky, None, psycopg2.Binary(b"\x00\x01\xfe\xff'\\"),
                         decimal.Decimal("-1.50"), ts, [1, None, 3],
                         psycopg2.extras.Json({"k": ["v", 1]})))
            r = cur.fetchone()
        eq(r[0], 123, "int param")
        eq(r[1], tricky, "text param")
        eq(r[2], None, "None param")
        eq(bytes(r[3]), b"\x00\x01\xfe\xff'\\", "bytea param")
        eq(r[4], decimal.Decimal("-1.50"), "numeric param")
        eq(r[5], ts, "timestamptz param")
        eq(r[6], [1, None, 3], "array param")
        eq(r[7], {"k": ["v", 1]}, "json param")

        with c.cursor() as cur:
            cur.execute("drop table if exists e2e_py_params")
            cur.execute("create table e2e_py_params (id int primary key, t text, b bytea)")
            blob = bytes(range(256)) * 64
            data = [(i, "row %d %s" % (i, tricky), psycopg2.Binary(blob[i:])) for i in range(200)]
            cur.executemany("insert into e2e_py_params values (%s, %s, %s)", data)
            cur.execute("select id, t, b from e2e_py_params where id = any(%s) order by id",
                        ([5, 199, 1000],))
            rows = cur.fetchall()
            eq([r[0] for r in rows], [5, 199], "ids by = any()")
            eq(rows[0][1], "row 5 " + tricky, "text back")
            eq(bytes(rows[1][2]), blob[199:], "bytea back")
            cur.execute("select count(*) from e2e_py_params where t like %s", ("row 1%",))
            eq(cur.fetchone()[0], 111, "like count")
            cur.execute("drop table e2e_py_params")
    finally:
        c.close()


@test
def transactions_commit_and_rollback_visibility():
    a = connect()  # psycopg2 default: implicit BEGIN before the first statement
    b = autocommit_conn()
    try:
        with b.cursor() as cur:
            cur.execute("drop table if exists e2e_py_txn")
            cur.execute("create table e2e_py_txn (id int primary key, v text)")
        with a.cursor() as cur:
            cur.execute("insert into e2e_py_txn values (1, 'one'), (2, 'two')")
            eq(a.info.transaction_status, psycopg2.extensions.TRANSACTION_STATUS_INTRANS,
               "status after insert")
            eq(scalar(a, "select count(*) from e2e_py_txn"), 2, "own uncommitted rows")
            eq(scalar(b, "select count(*) from e2e_py_txn"), 0, "other sees uncommitted rows")
        a.commit()
        eq(scalar(b, "select count(*) from e2e_py_txn"), 2, "other after commit")

        with a.cursor() as cur:
            cur.execute("insert into e2e_py_txn values (3, 'three')")
            cur.execute("update e2e_py_txn set v = 'changed' where id = 1")
            cur.execute("delete from e2e_py_txn where id = 2")
            eq(cur.rowcount, 1, "delete rowcount")
        a.rollback()
        eq(scalar(b, "select string_agg(id || '=' || v, ',' order by id) from e2e_py_txn"),
           "1=one,2=two", "after rollback (other)")
        eq(scalar(a, "select string_agg(id || '=' || v, ',' order by id) from e2e_py_txn"),
           "1=one,2=two", "after rollback (own)")
        a.rollback()

        # Explicit BEGIN/COMMIT in autocommit mode, with a savepoint.
        with b.cursor() as cur:
            cur.execute("begin")
            cur.execute("insert into e2e_py_txn values (10, 'ten')")
            cur.execute("savepoint s1")
            cur.execute("insert into e2e_py_txn values (11, 'eleven')")
            cur.execute("rollback to savepoint s1")
            cur.execute("insert into e2e_py_txn values (12, 'twelve')")
            cur.execute("commit")
        eq(scalar(a, "select string_agg(id::text, ',' order by id) from e2e_py_txn"),
           "1,2,10,12", "savepoint result")
        a.rollback()

        # Repeatable read: a snapshot held across statements of one transaction.
        a.set_session(isolation_level="REPEATABLE READ")
        eq(scalar(a, "select count(*) from e2e_py_txn"), 4, "rr first read")
        with b.cursor() as cur:
            cur.execute("insert into e2e_py_txn values (20, 'twenty')")
        eq(scalar(a, "select count(*) from e2e_py_txn"), 4, "rr snapshot kept")
        eq(scalar(a, "select current_setting('transaction_isolation')"), "repeatable read",
           "isolation")
        a.commit()
        eq(scalar(a, "select count(*) from e2e_py_txn"), 5, "new snapshot after commit")
        a.commit()
        with b.cursor() as cur:
            cur.execute("drop table e2e_py_txn")
    finally:
        a.close()
        b.close()


@test
def errors_keep_all_fields_and_connection_stays_usable():
    c = connect()
    try:
        with c.cursor() as cur:
            cur.execute("drop table if exists e2e_py_err")
            cur.execute("create table e2e_py_err (id int constraint e2e_py_err_pk primary key,"
                        " v text constraint e2e_py_err_v_check check (v <> 'bad'))")
            cur.execute("insert into e2e_py_err values (1, 'a')")
        c.commit()

        e = expect_error(c, "insert into e2e_py_err values (1, 'dup')", "23505")
        check(isinstance(e, psycopg2.errors.UniqueViolation), "exception class %r" % type(e))
        eq(e.diag.constraint_name, "e2e_py_err_pk", "constraint_name")
        eq(e.diag.table_name, "e2e_py_err", "table_name")
        eq(e.diag.schema_name, "public", "schema_name")
        eq(e.diag.message_primary,
           'duplicate key value violates unique constraint "e2e_py_err_pk"', "message")
        eq(e.diag.message_detail, "Key (id)=(1) already exists.", "detail")
        eq(e.diag.severity_nonlocalized, "ERROR", "severity")
        eq(c.info.transaction_status, psycopg2.extensions.TRANSACTION_STATUS_INERROR, "inerror")
        expect_error(c, "select 1", "25P02")  # in failed transaction
        c.rollback()
        eq(scalar(c, "select count(*) from e2e_py_err"), 1, "usable after rollback")
        c.rollback()

        e = expect_error(c, "insert into e2e_py_err values (2, 'bad')", "23514")
        eq(e.diag.constraint_name, "e2e_py_err_v_check", "check constraint_name")
        eq(e.diag.table_name, "e2e_py_err", "check table_name")
        check(e.diag.message_detail and "Failing row contains" in e.diag.message_detail,
              "check detail %r" % e.diag.message_detail)
        c.rollback()

        e = expect_error(c, "select 1/0", "22012")
        eq(e.diag.message_primary, "division by zero", "22012 message")
        c.rollback()

        e = expect_error(c, "select 1 fromm e2e_py_err", "42601")
        eq(e.diag.message_primary, 'syntax error at or near "e2e_py_err"', "42601 message")
        eq(e.diag.statement_position, "16", "42601 position")
        c.rollback()

        e = expect_error(c, "select e2e_no_such_function(1, 'x')", "42883")
        check(e.diag.message_hint and e.diag.message_hint.startswith("No function matches"),
              "42883 hint %r" % e.diag.message_hint)
        eq(e.diag.statement_position, "8", "42883 position")
        c.rollback()

        e = expect_error(c, "select nope from e2e_py_err", "42703")
        eq(e.diag.message_primary, 'column "nope" does not exist', "42703 message")
        c.rollback()

        e = expect_error(c, "select * from e2e_py_no_such_table", "42P01")
        eq(e.diag.statement_position, "15", "42P01 position")
        c.rollback()

        # Every field a server can send, set by the user, must arrive unchanged.
        e = expect_error(c, """do $$ begin raise exception 'custom ü message'
               using errcode = 'P0042', detail = 'the detail', hint = 'the hint',
                     column = 'colname', constraint = 'consname', datatype = 'dtname',
                     table = 'tabname', schema = 'schname'; end $$""", "P0042")
        eq(e.diag.message_primary, "custom ü message", "custom message")
        eq(e.diag.message_detail, "the detail", "custom detail")
        eq(e.diag.message_hint, "the hint", "custom hint")
        eq(e.diag.column_name, "colname", "custom column")
        eq(e.diag.constraint_name, "consname", "custom constraint")
        eq(e.diag.datatype_name, "dtname", "custom datatype")
        eq(e.diag.table_name, "tabname", "custom table")
        eq(e.diag.schema_name, "schname", "custom schema")
        check(e.diag.context and "PL/pgSQL" in e.diag.context, "context %r" % e.diag.context)
        c.rollback()

        # NoticeResponse reaches the client too.
        del c.notices[:]
        with c.cursor() as cur:
            cur.execute("do $$ begin raise notice 'e2e notice %', 42; end $$")
        check(any("e2e notice 42" in n for n in c.notices), "notice missing: %r" % c.notices)
        c.rollback()

        # Autocommit mode: errors do not leave the session in a failed transaction.
        c.autocommit = True
        expect_error(c, "select 1/0", "22012")
        eq(scalar(c, "select 2"), 2, "autocommit usable after error")
        expect_error(c, "insert into e2e_py_err values (1, 'dup')", "23505")
        eq(scalar(c, "select count(*) from e2e_py_err"), 1, "autocommit after 23505")
        with c.cursor() as cur:
            cur.execute("drop table e2e_py_err")
    finally:
        c.close()


@test
def server_side_named_cursor():
    c = connect()
    try:
        with c.cursor() as cur:
            cur.execute("drop table if exists e2e_py_cur")
            cur.execute("create table e2e_py_cur as"
                        " select g as id, md5(g::text) as h from generate_series(1, 10000) g")
        c.commit()
        cur = c.cursor(name="e2e_named_cursor")
        cur.execute("select id, h from e2e_py_cur order by id")
        seen = 0
        batches = 0
        while True:
            rows = cur.fetchmany(777)  # one FETCH round trip each
            if not rows:
                break
            batches += 1
            for r in rows:
                seen += 1
                if r[0] != seen:
                    raise Failure("row %d has id %r" % (seen, r[0]))
            # Other statements in the same transaction interleave with the cursor.
            eq(scalar(c, "select count(*) from pg_cursors where name = 'e2e_named_cursor'"), 1,
               "cursor visible in pg_cursors")
        eq(seen, 10000, "rows through cursor")
        eq(batches, 13, "fetch round trips")
        cur.close()
        eq(scalar(c, "select count(*) from pg_cursors where name = 'e2e_named_cursor'"), 0,
           "cursor closed")
        c.commit()

        # Scrollable cursor with explicit DECLARE/FETCH/MOVE in SQL.
        with c.cursor() as cur:
            cur.execute("declare e2e_sql_cur scroll cursor for"
                        " select id from e2e_py_cur where id <= 100 order by id")
            cur.execute("fetch forward 10 from e2e_sql_cur")
            eq([r[0] for r in cur.fetchall()], list(range(1, 11)), "fetch 10")
            cur.execute("move forward 50 in e2e_sql_cur")
            cur.execute("fetch next from e2e_sql_cur")
            eq(cur.fetchone()[0], 61, "after move")
            cur.execute("fetch backward 2 from e2e_sql_cur")
            eq([r[0] for r in cur.fetchall()], [60, 59], "backward")
            cur.execute("close e2e_sql_cur")
        c.commit()
        with c.cursor() as cur:
            cur.execute("drop table e2e_py_cur")
        c.commit()
    finally:
        c.close()


@test
def copy_from_and_to_stdout():
    c = connect()
    try:
        with c.cursor() as cur:
            cur.execute("drop table if exists e2e_py_copy")
            cur.execute("create table e2e_py_copy (id int primary key, name text, note text,"
                        " amount numeric)")
        c.commit()
        n = 5000
        lines = []
        for i in range(1, n + 1):
            name = 'name %d, with "quotes" and ü' % i
            note = "" if i % 7 == 0 else "tab\there 😀 %d" % i
            # Written the way PostgreSQL writes CSV: quotes only where needed.
            lines.append('%d,"%s",%s,%d.%02d' % (i, name.replace('"', '""'), note, i, i % 100))
        csv = "\n".join(lines) + "\n"
        with c.cursor() as cur:
            cur.copy_expert("COPY e2e_py_copy FROM STDIN WITH (FORMAT csv)", io.StringIO(csv))
            eq(cur.rowcount, n, "COPY FROM rowcount")
        c.commit()
        row = one(c, "select count(*), sum(id), count(note), sum(amount) from e2e_py_copy")
        eq(row[0], n, "count after COPY")
        eq(row[1], n * (n + 1) // 2, "sum(id)")
        eq(row[2], n - n // 7, "non-null notes")
        eq(row[3], sum(decimal.Decimal("%d.%02d" % (i, i % 100)) for i in range(1, n + 1)),
           "sum(amount)")
        eq(scalar(c, "select name from e2e_py_copy where id = 42"),
           'name 42, with "quotes" and ü', "csv quoting")
        c.commit()

        out = io.StringIO()
        with c.cursor() as cur:
            cur.copy_expert("COPY (select * from e2e_py_copy order by id) TO STDOUT"
                            " WITH (FORMAT csv)", out)
            eq(cur.rowcount, n, "COPY TO rowcount")
        eq(out.getvalue(), csv, "COPY TO output equals COPY FROM input")
        c.commit()

        # Text format with a bad row: the whole COPY fails with 22P02 and nothing lands.
        bad = "".join("%d\tx\t\\N\t1\n" % i for i in range(n + 1, n + 1001)) + "notanint\tx\t\\N\t1\n"
        with c.cursor() as cur:
            try:
                cur.copy_expert("COPY e2e_py_copy FROM STDIN", io.StringIO(bad))
                raise Failure("COPY with a bad row succeeded")
            except psycopg2.Error as e:
                eq(e.pgcode, "22P02", "bad COPY SQLSTATE")
                check(e.diag.context and "COPY e2e_py_copy, line 1001" in e.diag.context,
                      "COPY error context %r" % e.diag.context)
        c.rollback()
        eq(scalar(c, "select count(*) from e2e_py_copy"), n, "failed COPY left no rows")
        c.rollback()

        # Binary COPY out and back in.
        blob = io.BytesIO()
        with c.cursor() as cur:
            cur.copy_expert("COPY (select id + 100000, name, note, amount from e2e_py_copy)"
                            " TO STDOUT WITH (FORMAT binary)", blob)
            check(blob.getvalue().startswith(b"PGCOPY\n\xff\r\n\x00"), "binary COPY header")
            blob.seek(0)
            cur.copy_expert("COPY e2e_py_copy FROM STDIN WITH (FORMAT binary)", blob)
            eq(cur.rowcount, n, "binary COPY FROM rowcount")
        c.commit()
        eq(scalar(c, "select count(*) from e2e_py_copy a join e2e_py_copy b"
                     " on b.id = a.id + 100000 and b.name = a.name"
                     " and b.note is not distinct from a.note and b.amount = a.amount"), n,
           "binary roundtrip rows equal")
        c.commit()
        with c.cursor() as cur:
            cur.execute("drop table e2e_py_copy")
        c.commit()
    finally:
        c.close()


LISTEN_LIMIT = ("[LISTEN under transaction pooling: a LISTENing client must stay pinned to its"
                " server connection] ")


def wait_notifies(conn, count, secs):
    deadline = time.time() + secs
    while len(conn.notifies) < count:
        left = deadline - time.time()
        if left <= 0:
            break
        if select.select([conn], [], [], left) != ([], [], []):
            conn.poll()
    return list(conn.notifies)


@test
def listen_notify_delivery():
    listener = autocommit_conn()
    sender = autocommit_conn()
    bystander = autocommit_conn()  # never LISTENs: must never receive anything
    try:
        with listener.cursor() as cur:
            cur.execute("LISTEN e2e_chan")
        # Run unrelated autocommit traffic first: with transaction pooling these could land
        # anywhere unless the listener is pinned.
        for i in range(5):
            eq(scalar(listener, "select %s::int", (i,)), i, "listener query")
        with sender.cursor() as cur:
            cur.execute("NOTIFY e2e_chan, 'hello ü'")
            cur.execute("select pg_notify('e2e_chan', 'second')")
        got = wait_notifies(listener, 2, 10)
        for i in range(5):
            eq(scalar(bystander, "select %s::int", (i,)), i, "bystander query")
        if len(got) < 2:
            raise Failure(LISTEN_LIMIT + "got %d of 2 notifications: %r" % (len(got), got))
        eq([(n.channel, n.payload) for n in got], [("e2e_chan", "hello ü"), ("e2e_chan", "second")],
           LISTEN_LIMIT + "notifications")
        del listener.notifies[:]

        # NOTIFY inside a transaction is delivered on COMMIT, never before, and not on ROLLBACK.
        with sender.cursor() as cur:
            cur.execute("begin")
            cur.execute("notify e2e_chan, 'in txn'")
            time.sleep(0.3)
            listener.poll()
            eq(len(listener.notifies), 0, LISTEN_LIMIT + "delivered before commit")
            cur.execute("commit")
            cur.execute("begin")
            cur.execute("notify e2e_chan, 'rolled back'")
            cur.execute("rollback")
        got = wait_notifies(listener, 1, 10)
        eq([n.payload for n in got], ["in txn"], LISTEN_LIMIT + "after commit")
        time.sleep(0.3)
        listener.poll()
        eq([n.payload for n in listener.notifies], ["in txn"], LISTEN_LIMIT + "rolled back NOTIFY")
        del listener.notifies[:]

        # A client notifying itself inside its own transaction.
        with listener.cursor() as cur:
            cur.execute("begin")
            cur.execute("notify e2e_chan, 'self'")
            cur.execute("commit")
        got = wait_notifies(listener, 1, 10)
        eq([n.payload for n in got], ["self"], LISTEN_LIMIT + "self notify")
        del listener.notifies[:]

        with listener.cursor() as cur:
            cur.execute("UNLISTEN e2e_chan")
        with sender.cursor() as cur:
            cur.execute("NOTIFY e2e_chan, 'after unlisten'")
        time.sleep(0.3)
        listener.poll()
        eq(len(listener.notifies), 0, "notification after UNLISTEN")
        for i in range(5):
            eq(scalar(bystander, "select %s::int", (i,)), i, "bystander query")
        bystander.poll()
        eq(bystander.notifies, [], "notifications delivered to a client that never LISTENed")
        eq(sender.notifies, [], "notifications delivered to the sender, which never LISTENed")
    finally:
        listener.close()
        sender.close()
        bystander.close()


@test
def set_search_path_persists_across_statements():
    c = autocommit_conn()
    others = [autocommit_conn() for _ in range(3)]
    try:
        with c.cursor() as cur:
            cur.execute("drop schema if exists e2e_py_schema cascade")
            cur.execute("create schema e2e_py_schema")
            cur.execute("create table e2e_py_schema.e2e_sp (v text)")
            cur.execute("insert into e2e_py_schema.e2e_sp values ('from schema')")
            cur.execute("SET search_path = e2e_py_schema, public")
        for i in range(20):
            # Traffic from other clients between our statements shuffles server connections.
            for o in others:
                eq(scalar(o, "select current_setting('search_path')"), '"$user", public',
                   "other client's search_path (SET leaked?)")
            eq(scalar(c, "select current_setting('search_path')"), "e2e_py_schema, public",
               "search_path read back #%d" % i)
            eq(scalar(c, "select v from e2e_sp"), "from schema", "unqualified name #%d" % i)
        with c.cursor() as cur:
            cur.execute("RESET search_path")
        eq(scalar(c, "select current_setting('search_path')"), '"$user", public', "after RESET")
        expect_error(c, "select v from e2e_sp", "42P01")

        # SET inside a transaction that rolls back is undone; SET LOCAL ends with the transaction.
        with c.cursor() as cur:
            cur.execute("begin")
            cur.execute("set search_path = e2e_py_schema")
            cur.execute("rollback")
        eq(scalar(c, "select current_setting('search_path')"), '"$user", public',
           "SET rolled back with its transaction")
        with c.cursor() as cur:
            cur.execute("begin")
            cur.execute("set local search_path = e2e_py_schema")
            eq(scalar(c, "select v from e2e_sp"), "from schema", "SET LOCAL in effect")
            cur.execute("commit")
        eq(scalar(c, "select current_setting('search_path')"), '"$user", public',
           "SET LOCAL gone after commit")
        with c.cursor() as cur:
            cur.execute("begin")
            cur.execute("set search_path = e2e_py_schema, public")
            cur.execute("commit")
        for i in range(5):
            eq(scalar(c, "select v from e2e_sp"), "from schema", "SET committed in txn #%d" % i)
        with c.cursor() as cur:
            cur.execute("drop schema e2e_py_schema cascade")
    finally:
        c.close()
        for o in others:
            o.close()


@test
def set_statement_timeout_persists():
    c = autocommit_conn()
    try:
        with c.cursor() as cur:
            cur.execute("SET statement_timeout = '300ms'")
        for i in range(5):
            eq(scalar(c, "show statement_timeout"), "300ms", "SHOW #%d" % i)
        eq(scalar(c, "select pg_sleep(0.05)::text"), "", "short sleep is fine")
        t0 = time.time()
        e = expect_error(c, "select pg_sleep(3)", "57014")
        check("statement timeout" in e.diag.message_primary, "message %r" % e.diag.message_primary)
        check(time.time() - t0 < 2.5, "timeout took %.1fs" % (time.time() - t0))
        eq(scalar(c, "select 1"), 1, "usable after 57014")
        expect_error(c, "select pg_sleep(3)", "57014")  # still in effect later
        with c.cursor() as cur:
            cur.execute("SET statement_timeout = 0")
        eq(scalar(c, "select pg_sleep(0.5)::text"), "", "sleep after reset to 0")
    finally:
        c.close()


@test
def set_application_name_visible_everywhere():
    c = autocommit_conn()
    try:
        with c.cursor() as cur:
            cur.execute("SET application_name = 'e2e_py_appname_x'")
        for i in range(10):
            row = one(c, "select current_setting('application_name'), application_name"
                         " from pg_stat_activity where pid = pg_backend_pid()")
            eq(row, ("e2e_py_appname_x", "e2e_py_appname_x"), "application_name #%d" % i)
        # Drivers learn about application_name from ParameterStatus.
        eq(c.get_parameter_status("application_name"), "e2e_py_appname_x",
           "ParameterStatus application_name")
    finally:
        c.close()


@test
def startup_options_and_application_name():
    plain = autocommit_conn()
    base_work_mem = scalar(plain, "show work_mem")
    base_app = scalar(plain, "show application_name")
    check(base_work_mem != "5MB", "server default work_mem is already 5MB; test is meaningless")
    c = autocommit_conn(options="-c statement_timeout=100 -c work_mem=5MB",
                        application_name="e2e_x")
    try:
        for i in range(5):
            row = one(c, "select current_setting('statement_timeout'),"
                         " current_setting('application_name'), current_setting('work_mem')")
            eq(row, ("100ms", "e2e_x", "5MB"), "startup settings #%d" % i)
            # Plain clients running in between must not see them.
            eq(one(plain, "select current_setting('work_mem'), current_setting('application_name')"),
               (base_work_mem, base_app), "plain client's settings #%d" % i)
        expect_error(c, "select pg_sleep(2)", "57014")
        eq(scalar(c, "select application_name from pg_stat_activity where pid = pg_backend_pid()"),
           "e2e_x", "application_name in pg_stat_activity")
        eq(c.get_parameter_status("application_name"), "e2e_x", "ParameterStatus application_name")
        # A later SET overrides the startup value, RESET goes back to it.
        with c.cursor() as cur:
            cur.execute("set work_mem = '7MB'")
        eq(scalar(c, "show work_mem"), "7MB", "SET over startup option")
        with c.cursor() as cur:
            cur.execute("reset work_mem")
        eq(scalar(c, "show work_mem"), "5MB", "RESET returns to startup option")
        with c.cursor() as cur:
            cur.execute("set statement_timeout = 0")
            cur.execute("reset all")
        eq(scalar(c, "show statement_timeout"), "100ms", "RESET ALL returns to startup option")
    finally:
        c.close()
    try:
        d = autocommit_conn()
        for i in range(5):
            eq(one(d, "select current_setting('work_mem'), current_setting('statement_timeout')"),
               (base_work_mem, scalar(plain, "show statement_timeout")),
               "new plain client inherits nothing #%d" % i)
        d.close()
    finally:
        plain.close()


@test
def session_advisory_lock_stays_with_its_client():
    c = autocommit_conn()
    other = autocommit_conn()
    try:
        eq(scalar(c, "select pg_advisory_lock(424242)::text"), "", "lock")
        for i in range(5):
            eq(scalar(other, "select pg_try_advisory_lock(424242)"), False,
               "another client got the lock #%d" % i)
            eq(scalar(c, "select count(*) from pg_locks where locktype = 'advisory'"
                         " and objid = 424242 and pid = pg_backend_pid()"), 1,
               "lock held by the session that runs our statements #%d" % i)
        del c.notices[:]
        eq(scalar(c, "select pg_advisory_unlock(424242)"), True, "unlock by its owner")
        check(not any("not owned" in n for n in c.notices), "notices: %r" % c.notices)
        eq(scalar(other, "select pg_try_advisory_lock(424242)"), True, "free after unlock")
        eq(scalar(other, "select pg_advisory_unlock(424242)"), True, "other's unlock")
    finally:
        c.close()
        other.close()


@test
def temporary_table_stays_with_its_client():
    c = autocommit_conn()
    try:
        with c.cursor() as cur:
            cur.execute("create temp table e2e_py_tmp (v int)")
            cur.execute("insert into e2e_py_tmp select generate_series(1, 10)")
        others = [autocommit_conn() for _ in range(3)]
        try:
            for i in range(5):
                for o in others:
                    eq(scalar(o, "select count(*) from pg_class where relname = 'e2e_py_tmp'"
                                 " and relpersistence = 't' and pg_table_is_visible(oid)"), 0,
                       "another client sees our temp table")
                eq(scalar(c, "select sum(v) from e2e_py_tmp"), 55, "temp table read #%d" % i)
        finally:
            for o in others:
                o.close()
        with c.cursor() as cur:
            cur.execute("drop table e2e_py_tmp")
    finally:
        c.close()
    # Gone with its session: a new client cannot see it.
    d = autocommit_conn()
    try:
        for i in range(3):
            expect_error(d, "select * from e2e_py_tmp", "42P01")
    finally:
        d.close()


@test
def sql_prepare_execute_across_statements():
    c = autocommit_conn()
    try:
        with c.cursor() as cur:
            cur.execute("PREPARE e2e_sqlprep (int, text) AS select $1 * 2, $2 || '!'")
        for i in range(10):
            eq(one(c, "EXECUTE e2e_sqlprep (%s, %s)", (i, "x%d" % i)), (i * 2, "x%d!" % i),
               "EXECUTE #%d" % i)
        eq(scalar(c, "select count(*) from pg_prepared_statements where name = 'e2e_sqlprep'"), 1,
           "visible in pg_prepared_statements")
        with c.cursor() as cur:
            cur.execute("DEALLOCATE e2e_sqlprep")
        expect_error(c, "EXECUTE e2e_sqlprep (1, 'a')", "26000")
    finally:
        c.close()
    d = autocommit_conn()
    try:
        expect_error(d, "EXECUTE e2e_sqlprep (1, 'a')", "26000")  # nothing left behind
    finally:
        d.close()


@test
def concurrent_clients_keep_their_own_set_values():
    nthreads, nqueries = 20, 200
    errors = []
    done = [0] * nthreads
    start = threading.Barrier(nthreads)

    def worker(i):
        try:
            c = autocommit_conn()
        except Exception as e:  # noqa: BLE001
            errors.append("thread %d connect: %s" % (i, e))
            return
        try:
            cur = c.cursor()
            app = "e2e_t%d" % i
            tmo = "%dms" % (61001 + i)
            tag = "tag-%d" % i
            cur.execute("SET application_name = %s", (app,))
            cur.execute("SET statement_timeout = %s", (tmo,))
            cur.execute("SET e2e.tag = %s", (tag,))
            start.wait(30)
            for k in range(nqueries):
                if k % 50 == 49:
                    app = "e2e_t%d_%d" % (i, k)
                    cur.execute("SET application_name = %s", (app,))
                if k % 17 == 5:
                    # SET LOCAL inside a transaction must not outlive it.
                    cur.execute("BEGIN")
                    cur.execute("SET LOCAL e2e.tag = 'local'")
                    cur.execute("select current_setting('e2e.tag')")
                    got = cur.fetchone()[0]
                    if got != "local":
                        errors.append("thread %d q%d SET LOCAL read %r" % (i, k, got))
                    cur.execute("COMMIT")
                cur.execute("select current_setting('application_name'),"
                            " current_setting('statement_timeout'),"
                            " current_setting('e2e.tag'), %s::int", (k,))
                got = cur.fetchone()
                if got != (app, tmo, tag, k):
                    errors.append("thread %d query %d: got %r, want %r"
                                  % (i, k, got, (app, tmo, tag, k)))
                    if len(errors) > 50:
                        return
                done[i] += 1
        except Exception as e:  # noqa: BLE001
            errors.append("thread %d: %s: %s" % (i, type(e).__name__, str(e).strip()))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for t in threads:
        t.start()
    deadline = time.time() + 100
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    if any(t.is_alive() for t in threads):
        errors.append("threads still running after 100s")
    check(not errors, "%d problems, first: %s" % (len(errors), "; ".join(errors[:3])))
    eq(sum(done), nthreads * nqueries, "queries completed")


if __name__ == "__main__":
    sys.exit(run(set(sys.argv[1:])))
