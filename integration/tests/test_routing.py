#!/usr/bin/python3
"""Routing by shard key, end to end: rows written through pgshard are found on the shard
the placement rules (README "Placement") say, and on no other; statements for one shard,
for several and for every shard answer what one PostgreSQL would.

Needs the cluster of integration/cluster.sh (its pgshard.ini shards the rt_* tables) and
SHARD_PORTS (from its env.sh) to look at each shard directly. Placement is computed here from
the README's rules with python3-xxhash, independently of pgshard's code.

Run:   /usr/bin/python3 integration/tests/test_routing.py [TEST_NAME ...]
Output: "ok NAME" / "FAIL NAME: why" per test, then exactly "N passed, N failed".
"""

import bisect
import os
import struct
import sys

import psycopg2
import xxhash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol as tp  # noqa: E402  (the raw-protocol client and the tiny runner)
from test_protocol import check, eq, test  # noqa: E402

tp.TESTS.clear()

SHARD_PORTS = [int(p) for p in os.environ.get("SHARD_PORTS", "").split()]
N = len(SHARD_PORTS)
RING_SEED = 0x0070677368617264


def ring(shards, vnodes):
    points = []
    for s in shards:
        for v in range(vnodes):
            points.append((xxhash.xxh64(struct.pack("!II", s, v), seed=RING_SEED).intdigest(), s))
    points.sort()
    return points


def ring_shard(points, key_bytes):
    h = xxhash.xxh64(key_bytes, seed=0).intdigest()
    i = bisect.bisect_left(points, (h, -1))
    return points[i % len(points)][1]


USERS = ring(range(N), 256)  # [map.users]: bigint, vnodes 256
NAMES = ring(range(N), 64)  # [map.names]: text, vnodes 64


def user_shard(i):
    return ring_shard(USERS, struct.pack("!q", i))


def name_shard(s):
    return ring_shard(NAMES, s.encode())


def event_shard(i):
    return 0 if i < 1000 else N - 1  # [map.events]: range - 1000 0, range 1000 - N-1


def proxy():
    c = psycopg2.connect("", connect_timeout=10)
    c.autocommit = True
    return c


def shard(i):
    c = psycopg2.connect(host="127.0.0.1", port=SHARD_PORTS[i], user="app",
                         password="app-secret", dbname="app", connect_timeout=10)
    c.autocommit = True
    return c


def q(conn, sql, args=None):
    cur = conn.cursor()
    cur.execute(sql, args)
    rows = cur.fetchall() if cur.description is not None else None
    return rows, cur.statusmessage


def sqlstate_of(conn, sql):
    try:
        q(conn, sql)
    except psycopg2.Error as e:
        return e.pgcode, str(e)
    return None, None


def ids_on_each_shard(table, col="id"):
    out = []
    for i in range(N):
        c = shard(i)
        out.append(sorted(r[0] for r in q(c, "SELECT %s FROM %s" % (col, table))[0]))
        c.close()
    return out


def check_placement(table, ids, where, col="id"):
    got = ids_on_each_shard(table, col)
    for i in range(N):
        want = sorted(k for k in ids if where(k) == i)
        eq(got[i], want, "%s rows on shard %d" % (table, i))


def reset_tables():
    c = proxy()
    q(c, "DROP TABLE IF EXISTS rt_users, rt_orders, rt_names, rt_events, rt_countries")
    q(c, "CREATE TABLE rt_users (id bigint PRIMARY KEY, name text, n int DEFAULT 0)")
    q(c, "CREATE TABLE rt_orders (user_id bigint, item text)")
    q(c, "CREATE TABLE rt_names (name text PRIMARY KEY, v int)")
    q(c, "CREATE TABLE rt_events (id bigint, v text)")
    q(c, "CREATE TABLE rt_countries (code text PRIMARY KEY, name text)")
    c.close()


@test
def ddl_runs_on_every_shard():
    check(N >= 2, "SHARD_PORTS lists %d shards; the routing tests need 2 or more" % N)
    reset_tables()
    for i in range(N):
        c = shard(i)
        rows, _ = q(c, "SELECT relname FROM pg_class WHERE relname LIKE 'rt\\_%%' "
                       "AND relkind = 'r' ORDER BY 1")
        eq([r[0] for r in rows], ["rt_countries", "rt_events", "rt_names", "rt_orders",
                                  "rt_users"], "tables on shard %d" % i)
        c.close()


@test
def single_row_inserts_land_on_their_shard():
    reset_tables()
    c = proxy()
    for i in range(1, 41):
        _, tag = q(c, "INSERT INTO rt_users (id, name) VALUES (%s, %s)", (i, "u%d" % i))
        eq(tag, "INSERT 0 1", "tag of insert %d" % i)
    # every spelling of a key routes alike
    q(c, "INSERT INTO rt_users (id, name) VALUES ('41', 'quoted')")
    q(c, "INSERT INTO rt_users (id, name) VALUES (42::int8, 'cast')")
    check_placement("rt_users", range(1, 43), user_shard)
    # and is read back from there
    for i in (1, 7, 41, 42):
        rows, _ = q(c, "SELECT id FROM rt_users WHERE id = %s", (i,))
        eq(rows, [(i,)], "row %d read back" % i)
    c.close()


@test
def multi_row_insert_is_split_per_shard():
    reset_tables()
    c = proxy()
    values = ", ".join("(%d, 'v%d')" % (i, i) for i in range(1, 101))
    _, tag = q(c, "INSERT INTO rt_users (id, name) VALUES " + values)
    eq(tag, "INSERT 0 100", "tag of a split insert")
    check_placement("rt_users", range(1, 101), user_shard)
    rows, tag = q(c, "INSERT INTO rt_users (id, name) VALUES (201, 'a'), (202, 'b'), (203, 'c'),"
                     " (204, 'it''s') RETURNING id, name")
    eq(sorted(rows), [(201, "a"), (202, "b"), (203, "c"), (204, "it's")], "RETURNING rows")
    eq(tag, "INSERT 0 4", "tag of INSERT ... RETURNING")
    check_placement("rt_users", list(range(1, 101)) + [201, 202, 203, 204], user_shard)
    c.close()


@test
def text_and_range_keys():
    reset_tables()
    c = proxy()
    names = ["alice", "bob", "carol", "dave", "eve", "frank", "Grace", "héloïse", "x y"]
    for n in names:
        q(c, "INSERT INTO rt_names (name, v) VALUES (%s, 1)", (n,))
    check_placement("rt_names", names, name_shard, col="name")
    events = [1, 5, 999, 1000, 1001, 50000, -7]
    for e in events:
        q(c, "INSERT INTO rt_events (id, v) VALUES (%s, 'e')", (e,))
    check_placement("rt_events", events, event_shard)
    c.close()


@test
def text_keys_in_another_client_encoding():
    """A LATIN1 client's 'héloïse' reaches the database as the UTF-8 bytes a UTF-8 client
    sends, but pgshard would hash the client's bytes: a non-ASCII text key from a client whose
    encoding is not the database's is refused (0A000), not sent to another shard than the
    UTF-8 spelling; ASCII keys route as always."""
    import io

    reset_tables()
    c = proxy()
    q(c, "INSERT INTO rt_names (name, v) VALUES (%s, 1)", ("héloïse",))
    q(c, "SET client_encoding = 'LATIN1'")
    for sql, args in (("INSERT INTO rt_names (name, v) VALUES (%s, 2)", ("zoë",)),
                      ("SELECT v FROM rt_names WHERE name = %s", ("héloïse",)),
                      ("UPDATE rt_names SET v = 3 WHERE name = %s", ("héloïse",))):
        try:
            q(c, sql, args)
            raise tp.Failure("a LATIN1 non-ASCII key was routed: %s" % sql)
        except psycopg2.errors.FeatureNotSupported as e:
            check("client_encoding" in str(e) and "LATIN1" in str(e), "the error says why: %s" % e)
    try:
        c.cursor().copy_expert("COPY rt_names (name, v) FROM STDIN",
                               io.StringIO("amélie\t4\n"))
        raise tp.Failure("a LATIN1 non-ASCII key was split by COPY")
    except psycopg2.errors.FeatureNotSupported as e:
        check("client_encoding" in str(e), "the COPY error says why: %s" % e)
    q(c, "INSERT INTO rt_names (name, v) VALUES (%s, 5)", ("bob",))
    rows, _ = q(c, "SELECT v FROM rt_names WHERE name = %s", ("bob",))
    eq(rows, [(5,)], "an ASCII key from the LATIN1 client")
    q(c, "RESET client_encoding")
    rows, _ = q(c, "SELECT v FROM rt_names WHERE name = %s", ("héloïse",))
    eq(rows, [(1,)], "the UTF-8 client's row, untouched")
    check_placement("rt_names", ["héloïse", "bob"], name_shard, col="name")
    c.close()


@test
def copy_from_stdin_is_split_by_key():
    import io

    reset_tables()
    c = proxy()
    cur = c.cursor()
    text = "".join("%d\tcopied %d\t%d\n" % (i, i, i % 7) for i in range(1, 301))
    cur.copy_expert("COPY rt_users FROM STDIN", io.StringIO(text))
    eq(cur.rowcount, 300, "row count of a text COPY")
    csv = "user_id,item\n" + "".join('%d,"item, %d"\n' % (i % 50, i) for i in range(1, 201))
    cur.copy_expert("COPY rt_orders (user_id, item) FROM STDIN WITH (FORMAT csv, HEADER)",
                    io.StringIO(csv))
    eq(cur.rowcount, 200, "row count of a CSV COPY with a header")
    check_placement("rt_users", range(1, 301), user_shard)
    got = ids_on_each_shard("rt_orders", "user_id")
    for i in range(N):
        check(all(user_shard(k) == i for k in got[i]), "orders on shard %d misplaced" % i)
    eq(sum(len(g) for g in got), 200, "orders in total")
    # a row whose key is NULL cannot be placed: refused, nothing written
    try:
        cur.copy_expert("COPY rt_users FROM STDIN", io.StringIO("1000\ta\t1\n\\N\tb\t2\n"))
        raise tp.Failure("a NULL key in COPY was accepted")
    except psycopg2.Error as e:
        check("null" in str(e), "error names the NULL key: %s" % e)
    rows, _ = q(c, "SELECT count(*) FROM rt_users WHERE id = 1000")
    eq(rows, [(0,)], "rows of a failed COPY")
    # a client encoding whose characters can hide a delimiter cannot be split byte-wise
    q(c, "SET client_encoding = 'SJIS'")
    try:
        cur.copy_expert("COPY rt_users FROM STDIN", io.StringIO("2000\ta\t1\n"))
        raise tp.Failure("COPY in SJIS was split")
    except psycopg2.errors.FeatureNotSupported as e:
        check("SJIS" in str(e), "the error names the encoding: %s" % e)
    q(c, "RESET client_encoding")
    c.close()


@test
def update_and_delete_counts_are_summed():
    reset_tables()
    c = proxy()
    q(c, "INSERT INTO rt_users (id, name) VALUES " +
      ", ".join("(%d, 'n')" % i for i in range(1, 61)))
    _, tag = q(c, "UPDATE rt_users SET n = n + 1 WHERE id = 17")
    eq(tag, "UPDATE 1", "single-shard UPDATE")
    _, tag = q(c, "UPDATE rt_users SET n = n + 1 WHERE id <= 30")
    eq(tag, "UPDATE 30", "multi-shard UPDATE")
    _, tag = q(c, "UPDATE rt_users SET n = n + 1 WHERE id IN (1, 2, 3, 59)")
    eq(tag, "UPDATE 4", "UPDATE with IN")
    rows, _ = q(c, "SELECT n FROM rt_users WHERE id = 17")
    eq(rows, [(2,)], "updated value")
    rows, tag = q(c, "DELETE FROM rt_users WHERE id > 50 RETURNING id")
    eq(sorted(r[0] for r in rows), list(range(51, 61)), "DELETE ... RETURNING rows")
    eq(tag, "DELETE 10", "multi-shard DELETE")
    rows, tag = q(c, "SELECT count(*) FROM rt_users")
    eq(rows, [(50,)], "count(*) across shards")
    rows, tag = q(c, "SELECT id FROM rt_users WHERE id > 40")
    eq(sorted(r[0] for r in rows), list(range(41, 51)), "rows of a multi-shard SELECT")
    eq(tag, "SELECT 10", "tag of a multi-shard SELECT")
    check_placement("rt_users", range(1, 51), user_shard)
    c.close()


@test
def reference_table_writes_reach_every_shard_once():
    reset_tables()
    c = proxy()
    _, tag = q(c, "INSERT INTO rt_countries VALUES ('fr', 'France'), ('de', 'Germany')")
    eq(tag, "INSERT 0 2", "tag of a reference-table insert (not one per shard)")
    rows, _ = q(c, "INSERT INTO rt_countries VALUES ('it', 'Italy') RETURNING code")
    eq(rows, [("it",)], "RETURNING of a reference-table insert: one copy")
    for i in range(N):
        s = shard(i)
        rows, _ = q(s, "SELECT code FROM rt_countries ORDER BY code")
        eq([r[0] for r in rows], ["de", "fr", "it"], "countries on shard %d" % i)
        s.close()
    rows, _ = q(c, "SELECT name FROM rt_countries WHERE code = 'fr'")
    eq(rows, [("France",)], "reference read")
    c.close()


@test
def refusals_name_what_to_change():
    reset_tables()
    c = proxy()
    code, text = sqlstate_of(c, "WITH x AS (UPDATE rt_users SET id = id + 1 WHERE id = 5 "
                                "RETURNING 1) SELECT count(*) FROM x")
    eq(code, "0A000", "UPDATE of the key column in a WITH")
    check("key column id" in text, "the error names the key column: %s" % text)
    code, text = sqlstate_of(c, "INSERT INTO rt_users (name) VALUES ('nokey')")
    eq(code, "0A000", "INSERT without the key column")
    check("id" in text, "the error names the key column: %s" % text)
    code, text = sqlstate_of(c, "SELECT id, row_number() OVER (ORDER BY id) FROM rt_users")
    eq(code, "0A000", "a window function across shards")
    check("shard" in text, "the error says what would work: %s" % text)
    # the session goes on
    rows, _ = q(c, "SELECT 1")
    eq(rows, [(1,)], "after refusals")
    c.close()


@test
def constraints_that_cannot_hold_across_shards_are_refused():
    """A unique key without the shard key, a foreign key off the key or to another map, and
    ON CONFLICT on such columns are refused with 0A000 before any shard sees them (one
    PostgreSQL would enforce them; separate shards cannot)."""
    reset_tables()
    c = proxy()
    refused = [
        ("CREATE TABLE rt_orders (id bigserial PRIMARY KEY, user_id bigint)", "rt_orders"),
        ("CREATE TABLE rt_orders (id bigint, user_id bigint, email text UNIQUE)", "rt_orders"),
        ("CREATE TABLE rt_orders (user_id bigint, item text, uid bigint REFERENCES rt_users "
         "(id))", "rt_orders"),
        ("CREATE TABLE rt_orders (user_id bigint REFERENCES rt_events (id))", "rt_orders"),
        ("CREATE TABLE rt_countries (code text, uid bigint REFERENCES rt_users (id))",
         "rt_countries"),
    ]
    q(c, "DROP TABLE rt_orders, rt_countries")
    for sql, table in refused:
        code, text = sqlstate_of(c, sql)
        eq(code, "0A000", sql)
        check("shard" in text, "the error says why: %s" % text)
        eq(ids_on_each_shard("pg_tables WHERE tablename = '%s'" % table, "tablename"),
           [[]] * N, "%s after the refused CREATE TABLE" % table)
    q(c, "CREATE TABLE rt_orders (id bigint, user_id bigint REFERENCES rt_users (id), "
         "PRIMARY KEY (user_id, id))")
    code, text = sqlstate_of(c, "CREATE UNIQUE INDEX ON rt_orders (id)")
    eq(code, "0A000", "a unique index without the key")
    code, text = sqlstate_of(c, "ALTER TABLE rt_orders ADD UNIQUE (id)")
    eq(code, "0A000", "a unique constraint without the key")
    code, text = sqlstate_of(c, "INSERT INTO rt_orders (id, user_id) VALUES (1, 1) "
                                "ON CONFLICT (id) DO NOTHING")
    eq(code, "0A000", "ON CONFLICT without the key")
    q(c, "INSERT INTO rt_users (id, name) VALUES (1, 'a')")
    rows, tag = q(c, "INSERT INTO rt_orders (id, user_id) VALUES (1, 1) "
                     "ON CONFLICT (user_id, id) DO NOTHING")
    eq(tag, "INSERT 0 1", "ON CONFLICT with the key")
    q(c, "DROP TABLE rt_orders")
    q(c, "CREATE TABLE rt_countries (code text PRIMARY KEY, name text)")
    c.close()


@test
def ids_are_unique_across_shards():
    """bigserial ids of a sharded table never repeat across shards (shard k counts k+1,
    k+1+256, ...), nor do those of a sequence made through pgshard, which exists on every
    shard so that nextval() works wherever its INSERT is routed."""
    reset_tables()
    c = proxy()
    q(c, "DROP TABLE rt_orders")
    q(c, "CREATE TABLE rt_orders (id bigserial, user_id bigint, item text, "
         "PRIMARY KEY (user_id, id))")
    values = ", ".join("(%d, 'i%d')" % (u % 60 + 1, u) for u in range(300))
    rows, tag = q(c, "INSERT INTO rt_orders (user_id, item) VALUES %s RETURNING id" % values)
    eq(tag, "INSERT 0 300", "the split INSERT")
    ids = [r[0] for r in rows]
    eq(len(set(ids)), 300, "distinct ids returned")
    for i in range(N):
        got = ids_on_each_shard("rt_orders")[i]
        check(got, "rows on shard %d" % i)
        eq(sorted(set(x % 256 for x in got)), [i + 1], "shard %d's ids modulo 256" % i)
    for u in (1, 2, 3, 4, 5, 6):
        rows, _ = q(c, "INSERT INTO rt_orders (user_id, item) VALUES (%d, 'one') RETURNING id"
                    % u)
        ids.append(rows[0][0])
    eq(len(set(ids)), len(ids), "ids of single-row INSERTs too")
    q(c, "DROP SEQUENCE IF EXISTS rt_seq")
    q(c, "CREATE SEQUENCE rt_seq")
    eq(ids_on_each_shard("pg_class WHERE relname = 'rt_seq'", "relname"), [["rt_seq"]] * N,
       "the sequence on every shard")
    seq_ids = []
    for u in range(1, 13):
        rows, _ = q(c, "INSERT INTO rt_orders (id, user_id) VALUES (nextval('rt_seq'), %d) "
                       "RETURNING id" % (1000 + u))
        seq_ids.append(rows[0][0])
    eq(len(set(seq_ids)), len(seq_ids), "nextval('rt_seq') on the shards of the rows")
    code, text = sqlstate_of(c, "ALTER SEQUENCE rt_seq RESTART")
    eq(code, "0A000", "ALTER SEQUENCE RESTART")
    q(c, "DROP SEQUENCE rt_seq")
    eq(ids_on_each_shard("pg_class WHERE relname = 'rt_seq'", "relname"), [[]] * N,
       "the sequence after DROP SEQUENCE")
    q(c, "DROP TABLE rt_orders")
    q(c, "CREATE TABLE rt_orders (user_id bigint, item text)")
    c.close()


@test
def joins_pinned_to_one_shard_and_numeric_keys_run():
    """What was refused though it has one right answer: tables joined on other columns than
    their keys when each is held to the same shard by its own key condition (directly, in
    a FROM subquery, in a CTE), and a bigint key written as a numeric literal (5.0)."""
    reset_tables()
    c = proxy()
    q(c, "INSERT INTO rt_users (id, name) VALUES (5.0, 'five'), (6, 'six')")
    check_placement("rt_users", [5, 6], user_shard)
    q(c, "INSERT INTO rt_orders (user_id, item) VALUES (5, 'five'), (5, 'six'), (6, 'five')")
    for sql in [
        "SELECT u.id, o.item FROM rt_users u JOIN rt_orders o ON o.item = u.name "
        "WHERE u.id = 5 AND o.user_id = 5.0",
        "SELECT u.id, o.item FROM rt_users u JOIN (SELECT * FROM rt_orders WHERE user_id = 5) o "
        "ON o.item = u.name WHERE u.id = 5",
        "WITH o AS (SELECT * FROM rt_orders WHERE user_id = 5) SELECT u.id, o.item "
        "FROM rt_users u JOIN o ON o.item = u.name WHERE u.id = 5",
    ]:
        rows, _ = q(c, sql)
        eq(rows, [(5, "five")], sql)
    # INSERT without a column list: pgshard writes the list in from the catalog
    q(c, "INSERT INTO rt_users VALUES (11, 'eleven', 0), (12, 'twelve', 5)")
    q(c, "INSERT INTO rt_users VALUES (13)")
    check_placement("rt_users", [5, 6, 11, 12, 13], user_shard)
    rows, _ = q(c, "SELECT id, name, n FROM rt_users WHERE id IN (11, 12, 13) ORDER BY id")
    eq(rows, [(11, "eleven", 0), (12, "twelve", 5), (13, None, 0)], "rows without column list")
    code, _ = sqlstate_of(c, "INSERT INTO rt_users VALUES (14, 'x', 1, 'too many')")
    eq(code, "42601", "more values than columns, as PostgreSQL answers")
    q(c, "ALTER TABLE rt_users DROP COLUMN name")
    q(c, "INSERT INTO rt_users VALUES (15, 7)")
    rows, _ = q(c, "SELECT id, n FROM rt_users WHERE id = 15")
    eq(rows, [(15, 7)], "after DDL through pgshard, the new column order")
    q(c, "ALTER TABLE rt_users ADD COLUMN name text")
    rows, _ = q(c, "SELECT name FROM rt_users WHERE id = 6.0")
    eq(rows, [(None,)], "a key written 6.0")
    rows, tag = q(c, "UPDATE rt_users SET name = 'six' WHERE id = 6.0")
    eq(tag, "UPDATE 1", "an UPDATE by a key written 6.0")
    # one side not held to the shard: a join across shards (test_joins.py), FULL too (both
    # tables fetched whole), unless no equality ties them
    code, _ = sqlstate_of(c, "SELECT * FROM rt_users u JOIN rt_orders o ON o.item = u.name "
                             "WHERE u.id = 5")
    eq(code, None, "one side not held to the shard: a join across shards")
    code, _ = sqlstate_of(c, "SELECT * FROM rt_users u FULL JOIN rt_orders o ON o.item = u.name "
                             "WHERE u.id = 5")
    eq(code, None, "one side not held to the shard, FULL JOIN: a join across shards")
    code, _ = sqlstate_of(c, "SELECT * FROM rt_users u JOIN rt_orders o ON o.item > u.name "
                             "WHERE u.id = 5")
    eq(code, "0A000", "one side not held to the shard, no equality")
    c.close()


@test
def cursors_on_one_shard_follow_their_shard():
    """psycopg2's server-side (named) cursors, as SQLAlchemy's yield_per uses them: DECLARE on
    the shard its query reads, then each FETCH goes there, also with statements on other
    shards in between and WITH HOLD past the commit."""
    reset_tables()
    c = proxy()
    a, b = 5, next(k for k in range(6, 60) if user_shard(k) != user_shard(5))
    q(c, "INSERT INTO rt_orders (user_id, item) VALUES %s, (%d, 'other')"
      % (", ".join("(%d, 'i%02d')" % (a, i) for i in range(10)), b))
    c.autocommit = False
    for hold in (False, True):
        cur = c.cursor(name="big_%s" % hold, withhold=hold)
        cur.itersize = 3
        cur.execute("SELECT item FROM rt_orders WHERE user_id = %s ORDER BY item", (a,))
        got = []
        for (item,) in cur:
            got.append(item)
            if len(got) == 4:
                other = c.cursor()
                other.execute("SELECT item FROM rt_orders WHERE user_id = %s", (b,))
                eq(other.fetchall(), [("other",)], "a statement on another shard meanwhile")
                if hold:
                    c.commit()  # the WITH HOLD cursor lives on
        eq(got, ["i%02d" % i for i in range(10)], "rows of the named cursor (hold=%s)" % hold)
        cur.close()
        c.commit()
    c.autocommit = True
    # over several shards (test_cursors.py), also declared inside a query string
    code, text = sqlstate_of(c, "BEGIN; DECLARE x CURSOR FOR SELECT * FROM rt_orders; COMMIT")
    eq(code, None, "a cursor over several shards declared in a query string: %s" % text)
    c.close()


@test
def multi_row_insert_with_parameters_is_split_with_them():
    """node-postgres and JDBC send a multi-row INSERT with $n parameters (Sequelize's
    bulkCreate, knex's batchInsert): each shard gets its rows and the parameters they use,
    in one transaction pgshard commits in two phases."""
    reset_tables()
    ids = [1, 2, 3, 4, 5, 6]
    check(len(set(user_shard(i) for i in ids)) == N, "the rows cover every shard")
    r = tp.Raw()
    try:
        r.startup()
        values = ", ".join("($%d, $%d)" % (2 * k + 1, 2 * k + 2) for k in range(len(ids)))
        params = []
        for i in ids:
            params += [str(i), "name %d" % i]
        r.send(r.parse("", "INSERT INTO rt_users (id, name) VALUES %s RETURNING id, name"
                       % values) + r.bind("", "", params) + r.describe(b"P", "")
               + r.execute() + r.SYNC)
        got = r.until_ready()
        kinds = [k for k, _ in got]
        eq([k for k in kinds if k not in "D"], ["1", "2", "T", "C", "Z"], "messages")
        eq(sorted(int(tp.data_row(b)[0]) for k, b in got if k == "D"), ids, "RETURNING rows")
        eq([b for k, b in got if k == "C"], [b"INSERT 0 6\0"], "tag")
    finally:
        r.close()
    check_placement("rt_users", ids, user_shard)
    c = proxy()
    rows, _ = q(c, "SELECT id, name FROM rt_users ORDER BY id")
    eq(rows, [(i, "name %d" % i) for i in ids], "each row with its own values")
    c.close()


def raw_fields(body):
    """A DataRow's fields as bytes (binary results)."""
    (n,) = struct.unpack("!h", body[:2])
    pos, out = 2, []
    for _ in range(n):
        (ln,) = struct.unpack("!i", body[pos:pos + 4])
        out.append(None if ln < 0 else body[pos + 4:pos + 4 + ln])
        pos += 4 + max(ln, 0)
    return out


def spread_ids(n, start):
    """n keys from start on, shuffled the same way every run, covering every shard."""
    ids = list(range(start, start + n))
    ids = ids[1::2][::-1] + ids[0::2]
    check(len(set(user_shard(i) for i in ids)) == N, "the rows cover every shard")
    return ids


@test
def split_insert_returning_answers_in_values_order():
    """psycopg2's execute_values(..., fetch=True) (and node-postgres, SQLAlchemy's
    insertmanyvalues) match returned rows to their input rows by position: a multi-row
    INSERT ... RETURNING split across shards answers its rows in VALUES order, as one
    PostgreSQL does, every time."""
    from psycopg2.extras import execute_values

    reset_tables()
    c = proxy()
    for run in range(5):
        ids = spread_ids(60, 1000 * (run + 1))
        cur = c.cursor()
        got = execute_values(cur, "INSERT INTO rt_users (id, name) VALUES %s RETURNING id, name",
                             [(i, "n%d" % i) for i in ids], page_size=1000, fetch=True)
        eq([tuple(r) for r in got], [(i, "n%d" % i) for i in ids],
           "run %d: returned rows in input order" % run)
    # with a column computed on the shard (a default): still in VALUES order
    ids = spread_ids(30, 9000)
    rows, tag = q(c, "INSERT INTO rt_orders (user_id, item) VALUES %s RETURNING user_id, "
                     "item || '!'" % ", ".join("(%d, 'i%d')" % (i, i) for i in ids))
    eq(rows, [(i, "i%d!" % i) for i in ids], "expressions in RETURNING, in VALUES order")
    eq(tag, "INSERT 0 30", "tag")
    # without RETURNING nothing changes
    _, tag = q(c, "INSERT INTO rt_orders (user_id, item) VALUES %s"
               % ", ".join("(%d, 'x')" % i for i in spread_ids(20, 9500)))
    eq(tag, "INSERT 0 20", "tag without RETURNING")
    c.close()


@test
def split_insert_returning_with_parameters_answers_in_values_order():
    """The extended protocol with parameters (node-postgres' multi-row INSERT ... RETURNING),
    with text and binary results."""
    reset_tables()
    ids = spread_ids(24, 500)
    values = ", ".join("($%d, $%d)" % (2 * k + 1, 2 * k + 2) for k in range(len(ids)))
    sql = "INSERT INTO rt_users (id, name) VALUES %s RETURNING id, name" % values
    r = tp.connected()
    try:
        for fmt in (0, 1):
            params = []
            for i in ids:
                params += [str(i + fmt * 1000), "name %d" % (i + fmt * 1000)]
            r.send(r.parse("", sql) + r.bind("", "", params, (fmt,)) + r.describe(b"P", "")
                   + r.execute() + r.SYNC)
            got = r.until_ready()
            eq([k for k, _ in got if k != "D"], ["1", "2", "T", "C", "Z"], "messages")
            rows = [raw_fields(b) for k, b in got if k == "D"]
            if fmt == 0:
                eq([int(x[0]) for x in rows], ids, "text results in VALUES order")
                eq([x[1].decode() for x in rows], ["name %d" % i for i in ids], "names")
            else:
                eq([struct.unpack("!q", x[0])[0] for x in rows], [i + 1000 for i in ids],
                   "binary results in VALUES order")
            eq([b for k, b in got if k == "C"], [b"INSERT 0 24\0"], "tag")
    finally:
        r.close()


@test
def split_insert_on_conflict_do_nothing_returns_the_rows_it_inserted():
    """A shard that skips a row returns fewer rows than it was given: which input row each
    returned row is cannot be known, so the rows come shard by shard, but they are exactly
    the rows inserted."""
    reset_tables()
    c = proxy()
    ids = spread_ids(30, 700)
    q(c, "INSERT INTO rt_users (id, name) VALUES (%d, 'old'), (%d, 'old')" % (ids[3], ids[17]))
    rows, tag = q(c, "INSERT INTO rt_users (id, name) VALUES %s ON CONFLICT (id) DO NOTHING "
                     "RETURNING id, name" % ", ".join("(%d, 'new')" % i for i in ids))
    want = [(i, "new") for i in ids if i not in (ids[3], ids[17])]
    eq(sorted(rows), sorted(want), "the inserted rows")
    eq(tag, "INSERT 0 28", "tag")
    # every shard inserted all it was given: VALUES order again
    ids = spread_ids(30, 800)
    rows, _ = q(c, "INSERT INTO rt_users (id, name) VALUES %s ON CONFLICT (id) DO NOTHING "
                   "RETURNING id" % ", ".join("(%d, 'new')" % i for i in ids))
    eq([r[0] for r in rows], ids, "no conflict: VALUES order")
    # a failing row fails the statement, and no row comes back
    ids = spread_ids(10, 900)
    try:
        q(c, "INSERT INTO rt_users (id, name) VALUES %s RETURNING id"
          % ", ".join("(%d, 'x')" % i for i in ids + [ids[0]]))
        check(False, "a duplicate key must fail the INSERT")
    except psycopg2.Error as e:
        eq(e.pgcode, "23505", "duplicate key")
    rows, _ = q(c, "SELECT count(*) FROM rt_users WHERE id >= 900 AND id < 910")
    eq(rows, [(0,)], "nothing of the failed INSERT stays")
    c.close()


@test
def a_pinned_session_keeps_its_transactions():
    """A session pinned to its server connection (LISTEN, a temporary table) still runs
    BEGIN ... ROLLBACK as one transaction there: the rollback undoes what ran on the pinned
    connection, and ends without a warning."""
    reset_tables()
    for pin in ("LISTEN rt_channel", "CREATE TEMP TABLE rt_tmp (x int)"):
        c = proxy()
        notices = []
        q(c, pin)
        q(c, "BEGIN")
        q(c, "INSERT INTO rt_users (id, name) VALUES (1, 'gone'), (2, 'gone')")
        q(c, "INSERT INTO rt_users (id, name) VALUES (3, 'gone')")
        q(c, "ROLLBACK")
        rows, _ = q(c, "SELECT count(*) FROM rt_users")
        eq(rows, [(0,)], "rows after ROLLBACK in a session pinned by %s" % pin)
        q(c, "BEGIN")
        q(c, "SELECT 1")
        q(c, "ROLLBACK")
        notices += c.notices
        eq([n for n in notices if "no transaction" in n], [], "warnings (%s)" % pin)
        q(c, "BEGIN")
        q(c, "INSERT INTO rt_users (id, name) VALUES (4, 'kept')")
        q(c, "COMMIT")
        rows, _ = q(c, "SELECT id FROM rt_users")
        eq(rows, [(4,)], "rows after COMMIT (%s)" % pin)
        q(c, "DELETE FROM rt_users")
        c.close()


@test
def query_strings_across_shards_run_statement_by_statement():
    """A query string whose statements route differently (psycopg2's execute_batch, `BEGIN;
    ...; COMMIT` in one string) runs as PostgreSQL runs it: each statement where it routes,
    in one transaction (its own BEGIN ... COMMIT, or one pgshard opens), the rest skipped after
    an error and everything of the string rolled back."""
    import psycopg2.extras
    reset_tables()
    c = proxy()
    cur = c.cursor()
    psycopg2.extras.execute_batch(cur, "INSERT INTO rt_users (id, name) VALUES (%s, %s)",
                                  [(i, "u%d" % i) for i in range(1, 21)], page_size=7)
    check_placement("rt_users", list(range(1, 21)), user_shard)
    cur.execute("UPDATE rt_users SET n = 1 WHERE id = 1; UPDATE rt_users SET n = 2 WHERE id = 2; "
                "SELECT id, n FROM rt_users WHERE id IN (1, 2) ORDER BY id")
    eq(cur.fetchall(), [(1, 1), (2, 2)], "the last statement's rows, after the others ran")
    try:
        cur.execute("INSERT INTO rt_users (id) VALUES (101); INSERT INTO rt_users (id) VALUES (1); "
                    "INSERT INTO rt_users (id) VALUES (102)")
        raise tp.Failure("a duplicate key in the string went through")
    except psycopg2.Error as e:
        eq(e.pgcode, "23505", "the failing statement's error")
    rows, _ = q(c, "SELECT id FROM rt_users WHERE id > 100")
    eq(rows, [], "nothing of the failed string stays")
    cur.execute("BEGIN; UPDATE rt_users SET n = 10 WHERE id = 3; UPDATE rt_users SET n = 10 "
                "WHERE id = 4; COMMIT")
    rows, _ = q(c, "SELECT count(*) FROM rt_users WHERE n = 10")
    eq(rows, [(2,)], "BEGIN ... COMMIT in one string")
    eq(ids_on_each_shard("pg_prepared_xacts", "gid"), [[]] * N, "prepared transactions left")
    c.close()


@test
def transactions_span_shards():
    reset_tables()
    a, b = 1, next(i for i in range(2, 100) if user_shard(i) != user_shard(1))
    c = proxy()
    c.autocommit = False
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'a')", (a,))
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'b')", (b,))
    c.rollback()
    eq(ids_on_each_shard("rt_users"), [[] for _ in range(N)], "rows after ROLLBACK")
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'a')", (a,))
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'b')", (b,))
    rows, _ = q(c, "SELECT count(*) FROM rt_users")
    eq(rows, [(2,)], "own writes seen inside the transaction")
    c.commit()
    check_placement("rt_users", [a, b], user_shard)
    # an error aborts the whole transaction, on every shard
    q(c, "UPDATE rt_users SET n = 5 WHERE id = %s", (a,))
    try:
        q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'dup')", (b,))
        raise tp.Failure("duplicate key accepted")
    except psycopg2.IntegrityError:
        pass
    code, _ = sqlstate_of(c, "SELECT 1")
    eq(code, "25P02", "statement in an aborted transaction")
    c.rollback()
    rows, _ = q(c, "SELECT n FROM rt_users WHERE id = %s", (a,))
    eq(rows, [(0,)], "update rolled back with the transaction")
    c.commit()
    c.autocommit = True
    # savepoints on several shards
    q(c, "BEGIN")
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'x')", (1001,))
    q(c, "SAVEPOINT s1")
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'y')", (1002,))
    q(c, "INSERT INTO rt_users (id, name) VALUES (%s, 'z')", (1003,))
    q(c, "ROLLBACK TO SAVEPOINT s1")
    q(c, "COMMIT")
    rows, _ = q(c, "SELECT id FROM rt_users WHERE id > 1000")
    eq(sorted(r[0] for r in rows), [1001], "rows after ROLLBACK TO SAVEPOINT")
    c.close()


@test
def cancel_reaches_a_statement_on_several_shards():
    import threading
    import time

    reset_tables()
    c = proxy()
    q(c, "INSERT INTO rt_users (id, name) VALUES " +
      ", ".join("(%d, 'n')" % i for i in range(1, 21)))
    timer = threading.Timer(0.5, c.cancel)
    timer.start()
    t0 = time.time()
    try:
        q(c, "UPDATE rt_users SET n = n + 1 WHERE pg_sleep(1) IS NOT NULL")
        raise tp.Failure("the UPDATE was not canceled")
    except psycopg2.errors.QueryCanceled:
        pass
    finally:
        timer.cancel()
    check(time.time() - t0 < 15, "cancel took %.1f s" % (time.time() - t0))
    rows, _ = q(c, "SELECT 1")
    eq(rows, [(1,)], "the session after the cancel")
    # every shard's part was canceled: none of them went on to update its rows
    for i in range(N):
        s = shard(i)
        rows, _ = q(s, "SELECT count(*) FROM rt_users WHERE n <> 0")
        eq(rows, [(0,)], "rows updated on shard %d after the cancel" % i)
        s.close()
    c.close()


def bind_binary(portal, stmt, values):
    body = tp.cstr(portal) + tp.cstr(stmt) + struct.pack("!hh", 1, 1) + struct.pack("!h", len(values))
    for v in values:
        body += struct.pack("!i", len(v)) + v
    body += struct.pack("!h", 0)
    return tp.msg(b"B", body)


@test
def extended_protocol_routes_at_bind():
    reset_tables()
    c = proxy()
    q(c, "INSERT INTO rt_users (id, name) VALUES " +
      ", ".join("(%d, 'n%d')" % (i, i) for i in range(1, 21)))
    c.close()
    r = tp.connected()
    R = tp.Raw
    sql = "SELECT name FROM rt_users WHERE id = $1"
    r.send(R.parse("s1", sql, (20,)) + R.SYNC)
    eq(tp.kinds(r.until_ready()), "1Z", "prepare")
    for i in (3, 11, 19):
        # text parameter, unnamed statement
        r.send(R.parse("", sql) + R.bind("", "", [str(i)]) + R.execute() + R.SYNC)
        got = r.until_ready()
        rows = [tp.data_row(b) for k, b in got if k == "D"]
        eq(rows, [["n%d" % i]], "unnamed, text parameter %d" % i)
        # binary int8 parameter, named statement
        r.send(bind_binary("", "s1", [struct.pack("!q", i)]) + R.execute() + R.SYNC)
        got = r.until_ready()
        rows = [tp.data_row(b) for k, b in got if k == "D"]
        eq(rows, [["n%d" % i]], "named, binary parameter %d" % i)
    # BEGIN and COMMIT over the extended protocol, writes on two shards
    a, b = 30, next(i for i in range(31, 200) if user_shard(i) != user_shard(30))
    for stmt in ("BEGIN", "INSERT INTO rt_users (id, name) VALUES (%d, 'e')" % a,
                 "INSERT INTO rt_users (id, name) VALUES (%d, 'e')" % b, "COMMIT"):
        r.send(R.parse("", stmt) + R.bind("", "") + R.execute() + R.SYNC)
        got = r.until_ready()
        check("E" not in tp.kinds(got), "%s failed: %r" % (stmt, got))
        status = got[-1][1]
        eq(status, b"I" if stmt == "COMMIT" else b"T", "status after %s" % stmt)
    r.close()
    check_placement("rt_users", list(range(1, 21)) + [a, b], user_shard)


def run_ext(r, msgs, what):
    """Send extended-protocol messages and a Sync; the replies, which must hold no error."""
    r.send(msgs + tp.Raw.SYNC)
    got = r.until_ready()
    check("E" not in tp.kinds(got), "%s failed: %r" % (what, got))
    return got


def tag_of(got):
    return [b[:-1].decode() for k, b in got if k == "C"][-1]


def error_of(got):
    return next((tp.parse_fields(b) for k, b in got if k == "E"), {})


@test
def insert_without_column_list_over_the_extended_protocol():
    """INSERT INTO t VALUES ($1, ...) over Parse/Bind/Execute (node-postgres, JDBC, psycopg 3):
    pgshard writes the column list into the Parse, from the default shard's catalog, and
    routes each Bind by its key as the same INSERT with a column list; what each shard
    prepares is that INSERT, so the parameters keep the types the client gave them."""
    reset_tables()  # DDL through pgshard: the column cache starts empty
    R = tp.Raw
    keys = [next(i for i in range(1, 300) if user_shard(i) == s) for s in range(N)]
    placed = []
    r = tp.connected()
    # unnamed statement, text parameters, one row to each shard (the first asks the catalog)
    for k in keys:
        got = run_ext(r, R.parse("", "INSERT INTO rt_users VALUES ($1, $2)") +
                      R.bind("", "", [str(k), "u%d" % k]) + R.execute(), "unnamed %d" % k)
        eq(tp.kinds(got), "12CZ", "replies of the unnamed INSERT of %d" % k)
        eq(tag_of(got), "INSERT 0 1", "tag of %d" % k)
        placed.append(k)
    # a named statement with the client's types (int4 key, text), bound again and again with
    # binary keys; Describe shows the types the client gave
    got = run_ext(r, R.parse("ins", "INSERT INTO rt_users VALUES ($1, $2)", (23, 25)) +
                  R.describe(b"S", "ins"), "prepare ins")
    eq(tp.kinds(got), "1tnZ", "Parse and Describe of ins")
    desc = next(b for k, b in got if k == "t")
    eq(struct.unpack("!hII", desc), (2, 23, 25), "parameter types of ins")
    for i in range(2):
        for k in keys:
            k += 1000 + 300 * i
            got = run_ext(r, bind_binary("", "ins", [struct.pack("!i", k), b"named"]) +
                          R.execute(), "named %d" % k)
            eq(tp.kinds(got), "2CZ", "replies of ins bound to %d" % k)
            placed.append(k)
    # several rows for several shards in one statement, bound twice: split per shard with
    # each shard's own parameters, RETURNING in VALUES order
    sql = "INSERT INTO rt_users VALUES " + ", ".join(
        "($%d, $%d, $%d)" % (3 * j + 1, 3 * j + 2, 3 * j + 3) for j in range(N)) + \
        " RETURNING id, n"
    run_ext(r, R.parse("multi", sql), "prepare multi")
    for base in (2000, 3000):
        ks = [k + base for k in reversed(keys)]
        vals = []
        for k in ks:
            vals += [str(k), "m%d" % k, str(k % 7)]
        got = run_ext(r, R.bind("", "multi", vals) + R.execute(), "multi %d" % base)
        eq([tp.data_row(b) for k, b in got if k == "D"], [[str(k), str(k % 7)] for k in ks],
           "RETURNING rows of multi %d" % base)
        eq(tag_of(got), "INSERT 0 %d" % N, "tag of multi %d" % base)
        placed += ks
    # RETURNING *, one row, unnamed
    got = run_ext(r, R.parse("", "INSERT INTO rt_users VALUES ($1, $2) RETURNING *") +
                  R.bind("", "", ["4000", "ret"]) + R.describe(b"P", "") + R.execute(),
                  "RETURNING *")
    eq([tp.data_row(b) for k, b in got if k == "D"], [["4000", "ret", "0"]], "RETURNING *")
    placed.append(4000)
    # more values than columns: PostgreSQL's own 42601, at the Parse
    r.send(R.parse("", "INSERT INTO rt_users VALUES ($1, $2, $3, $4)") +
           R.bind("", "", ["5000", "x", "1", "y"]) + R.execute() + R.SYNC)
    got = r.until_ready()
    eq((tp.kinds(got), error_of(got).get("C")), ("EZ", "42601"), "too many values")
    # a table the default shard's catalog does not know: the 0A000 refusal, as before
    q(proxy(), "DROP TABLE rt_events")
    r.send(R.parse("", "INSERT INTO rt_events VALUES ($1, $2)") +
           R.bind("", "", ["1", "x"]) + R.execute() + R.SYNC)
    got = r.until_ready()
    eq(error_of(got).get("C"), "0A000", "a table without catalog")
    check("column list" in error_of(got).get("M", ""), "refusal says what to change")
    # in a transaction block, a batch for several shards
    eq(r.simple("BEGIN")[3], "T", "BEGIN")
    batch = b""
    for k in keys:
        batch += (R.parse("", "INSERT INTO rt_users VALUES ($1, $2)") +
                  R.bind("", "", [str(k + 6000), "tx"]) + R.execute())
        placed.append(k + 6000)
    got = run_ext(r, batch, "batch in a transaction")
    eq(tp.kinds(got), "12C" * N + "Z", "replies of the batch")
    eq(r.simple("COMMIT")[1:], (["COMMIT"], None, "I"), "COMMIT")
    # a column added through pgshard after the first use: the new order is asked again,
    # also for a Parse inside a transaction block
    eq(r.simple("ALTER TABLE rt_users ADD COLUMN extra text")[2], None, "ALTER TABLE")
    eq(r.simple("BEGIN")[3], "T", "BEGIN")
    eq(r.simple("SELECT 1 FROM rt_users WHERE id = %d" % keys[-1])[2], None, "a read first")
    for k in keys:
        run_ext(r, R.parse("", "INSERT INTO rt_users VALUES ($1, $2, $3, $4)") +
                R.bind("", "", [str(k + 7000), "new", "3", "x%d" % k]) + R.execute(),
                "with the new column %d" % k)
        placed.append(k + 7000)
    eq(r.simple("COMMIT")[1:], (["COMMIT"], None, "I"), "COMMIT")
    # the statement prepared before the ALTER TABLE still runs, with its columns
    run_ext(r, bind_binary("", "ins", [struct.pack("!i", 8000), b"old"]) + R.execute(), "ins")
    placed.append(8000)
    r.close()
    check_placement("rt_users", placed, user_shard)
    rows, _ = q(proxy(), "SELECT id, name, n, extra FROM rt_users WHERE id IN (%d, %d, %d) "
                "ORDER BY id" % (keys[0] + 2000, keys[0] + 7000, 8000))
    eq(rows, [(keys[0] + 2000, "m%d" % (keys[0] + 2000), (keys[0] + 2000) % 7, None),
              (keys[0] + 7000, "new", 3, "x%d" % keys[0]), (8000, "old", 0, None)],
       "rows as written")


@test
def an_extended_batch_runs_on_several_shards_in_a_transaction_block():
    """JDBC's executeBatch with autocommit off: Parse/Bind/Execute of statements for several
    shards, one Sync, inside BEGIN: each runs in order on its shard, in the transaction; an
    error skips the rest as PostgreSQL does. Outside a transaction block the batch is one
    transaction too: committed at its Sync on every shard, or rolled back everywhere."""
    reset_tables()
    keys = [next(i for i in range(100, 400) if user_shard(i) == s) for s in range(N)]
    R = tp.Raw
    r = tp.connected()
    eq(r.simple("BEGIN")[3], "T", "BEGIN")
    batch = b""
    for k in keys:
        batch += (R.parse("", "INSERT INTO rt_users (id, name) VALUES ($1, $2)") +
                  R.bind("", "", [str(k), "b%d" % k]) + R.execute())
    batch += (R.parse("", "SELECT count(*) FROM rt_users WHERE id = ANY($1::bigint[])") +
              R.bind("", "", ["{%s}" % ",".join(map(str, keys))]) + R.execute())
    r.send(batch + R.SYNC)
    got = r.until_ready()
    eq(tp.kinds(got), "12C" * N + "12DCZ", "replies of the batch")
    eq([tp.data_row(b) for k, b in got if k == "D"], [[str(N)]], "rows seen in the transaction")
    eq(got[-1][1], b"T", "still in the transaction")
    eq(r.simple("COMMIT")[1:], (["COMMIT"], None, "I"), "COMMIT")
    check_placement("rt_users", keys, user_shard)
    # an error in the middle: the rest is skipped, the transaction fails, nothing stays
    eq(r.simple("BEGIN")[3], "T", "BEGIN")
    batch = b""
    for k in [keys[0] + 1000, keys[1], keys[2] + 1000]:  # keys[1] exists: 23505
        batch += (R.parse("", "INSERT INTO rt_users (id, name) VALUES ($1, 'x')") +
                  R.bind("", "", [str(k)]) + R.execute())
    r.send(batch + R.SYNC)
    got = r.until_ready()
    errs = [tp.parse_fields(b).get("C") for k, b in got if k == "E"]
    eq(errs, ["23505"], "the duplicate's error, the rest skipped")
    eq(got[-1][1], b"E", "the transaction failed")
    eq(r.simple("ROLLBACK")[1:], (["ROLLBACK"], None, "I"), "ROLLBACK")
    check_placement("rt_users", keys, user_shard)
    # outside a transaction block: one transaction of pgshard's own, committed at the Sync
    more = [k + 2000 for k in keys]
    batch = (R.parse("", "SELECT count(*) FROM rt_users WHERE id = $1") +
             R.bind("", "", [str(keys[0])]) + R.execute())
    for k in more:
        batch += (R.parse("", "INSERT INTO rt_users (id, name) VALUES ($1, 'y')") +
                  R.bind("", "", [str(k)]) + R.execute())
    r.send(batch + R.SYNC)
    got = r.until_ready()
    eq(tp.kinds(got), "12DC" + "12C" * N + "Z", "replies of an autocommit batch")
    eq(got[-1][1], b"I", "committed")
    check_placement("rt_users", keys + more, user_shard)
    no_prepared = [x for x in
                   (q(shard(i), "SELECT gid FROM pg_prepared_xacts")[0] for i in range(N)) if x]
    eq(no_prepared, [], "prepared transactions left")
    # ... and rolled back everywhere when a statement fails
    batch = b""
    for k in (keys[0] + 3000, keys[1] + 3000, keys[2]):  # keys[2] exists: 23505
        batch += (R.parse("", "INSERT INTO rt_users (id, name) VALUES ($1, 'z')") +
                  R.bind("", "", [str(k)]) + R.execute())
    batch += (R.parse("", "INSERT INTO rt_users (id, name) VALUES (1, 'skipped')") +
              R.bind("", "") + R.execute())
    r.send(batch + R.SYNC)
    got = r.until_ready()
    eq([tp.parse_fields(b).get("C") for k, b in got if k == "E"], ["23505"], "the error")
    eq(got[-1][1], b"I", "status after the failed batch")
    check_placement("rt_users", keys + more, user_shard)
    eq(r.simple("SELECT count(*) FROM rt_users")[0], [[str(2 * N)]], "the session goes on")
    r.close()


@test
def a_statement_pgshard_refuses_in_a_batch_undoes_the_batch():
    """PostgreSQL rolls back a batch whose statement fails: also when pgshard refuses the
    statement (0A000) after others of the batch ran on a shard; and a refused Query sent in
    the middle of a batch is answered (the batch's answers are flushed before it)."""
    reset_tables()
    R = tp.Raw
    refused = "SELECT * FROM rt_users u JOIN rt_names n ON n.name > u.name"
    r = tp.connected()
    r.send(R.parse("", "INSERT INTO rt_users (id, name) VALUES ($1, 'a')") +
           R.bind("", "", ["5"]) + R.execute() +
           R.parse("", refused) + R.bind("", "") + R.execute() + R.SYNC)
    got = r.until_ready()
    eq([tp.parse_fields(b).get("C") for k, b in got if k == "E"], ["0A000"], "refused")
    eq(got[-1][1], b"I", "status")
    eq(ids_on_each_shard("rt_users"), [[]] * N, "the batch's INSERT was rolled back")
    # a refused Query inside a batch: no hang
    r.send(R.parse("", "INSERT INTO rt_users (id, name) VALUES ($1, 'b')") +
           R.bind("", "", ["6"]) + R.execute() + R.query(refused))
    got = r.until_ready()
    check("E" in tp.kinds(got), "the Query's refusal: %s" % tp.kinds(got))
    r.send(R.SYNC)
    r.until_ready()
    eq(r.simple("SELECT 1")[0], [["1"]], "the session goes on")
    r.close()


if __name__ == "__main__":
    sys.exit(tp.run(set(sys.argv[1:])))
