/*
 * test_plancache.c — the plan cache (router/plancache.h), pinned.
 *
 * The cache's one promise is that it changes nothing but the cost: every
 * plan equals route_statement's on the same text, reason and error
 * included. So most tests route a statement both ways and compare; the
 * corpus is every statement router/tests/test_route_*.c route, each also
 * with its literals changed (so that texts meet entries made by others).
 * The rest pin that texts differing only in literals share an entry, that
 * a masked text parsing differently from the original is not used, and
 * the bounds. What the cache makes once and reuses (gather plans, generic
 * plans, a join's plan) is test_plancache_reuse.c's.
 */
#include "router/tests/plancache_expect.h"

/* Generated from router/tests/test_route_*.c: every SQL string they route. */
static const char *const corpus[] = {
    "(none)",
    "SELEC * FROM users WHERE id = 1",
    /* every masked literal empty: the values buffer holds no byte (found by fuzz_route) */
    "SELECT * FROM users WHERE id = ''",
    "SELECT * FROM users WHERE name = '' AND id = ''",
    "SELEC",
    "SELECT 1",
    "SELECT version()",
    "SELECT now(), current_user",
    "  -- only a comment\n",
    "SET search_path = app, public",
    "SET LOCAL statement_timeout = 0",
    "RESET ALL",
    "SHOW server_version",
    "SHOW ALL",
    "BEGIN",
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT a",
    "LISTEN events",
    "DISCARD ALL",
    "FETCH 10 FROM c",
    "SELECT * FROM pg_catalog.pg_class WHERE relname = 'users'",
    "SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_tables WHERE tablename = 'orders'",
    "UPDATE settings SET v = 1 WHERE k = 'x'",
    "SELECT * FROM settings",
    "SELECT * FROM app.settings s JOIN logs l ON l.id = s.id",
    "update",
    "SELECT * FROM countries WHERE code = 'fr'",
    "SELECT * FROM countries c JOIN local_stats s ON s.code = c.code",
    "INSERT INTO countries (code, name) VALUES ('fr', 'France')",
    "UPDATE countries SET name = 'France' WHERE code = 'fr'",
    "DELETE FROM countries WHERE code = 'xx'",
    "WITH x AS (DELETE FROM countries WHERE code = 'xx' RETURNING *) SELECT * FROM x",
    "INSERT INTO countries (code) SELECT country FROM users WHERE id = 1",
    "UPDATE countries c SET n = u.n FROM users u WHERE u.cc = c.code",
    "DELETE FROM countries WHERE code NOT IN (SELECT cc FROM orders)",
    "SELECT * FROM users u JOIN countries c ON c.code = u.cc WHERE u.id = 42",
    "SELECT * FROM countries c, users u WHERE u.cc = c.code AND u.id = 7",
    "UPDATE users SET cc = c.code FROM countries c WHERE c.name = 'x' AND users.id = 9",
    "SELECT * FROM users WHERE id = 42",
    "SELECT name FROM orders WHERE user_id = 7 AND total > 10",
    "DELETE FROM users WHERE id = -3",
    "SELECT * FROM users WHERE id = 9223372036854775807",
    "SELECT * FROM users WHERE 42 = id",
    "SELECT * FROM users WHERE '43' = users.id",
    "SELECT * FROM users u WHERE u.id = 5",
    "SELECT * FROM users AS x WHERE x.id = 5",
    "SELECT * FROM users WHERE users.id = 5",
    "SELECT * FROM public.users WHERE public.users.id = 5",
    "SELECT * FROM orders o WHERE o.user_id = 6",
    "SELECT * FROM orders o WHERE o.id = 6",
    "SELECT * FROM users u, local_t t WHERE t.id = 6",
    "SELECT * FROM users u WHERE users.id = 5",
    "SELECT * FROM public.users WHERE id = 11",
    "SELECT * FROM widgets WHERE id = 12",
    "SELECT * FROM public.widgets w WHERE w.id = 13",
    "SELECT * FROM \"users\" WHERE \"id\" = 14",
    "SELECT * FROM \"Users\" WHERE id = 14",
    "SELECT * FROM users WHERE id = '42'",
    "SELECT * FROM users WHERE id = '42'::int8",
    "SELECT * FROM users WHERE id = '42'::bigint",
    "SELECT * FROM users WHERE id = 42::int4",
    "SELECT * FROM users WHERE id = CAST('42' AS bigint)",
    "SELECT * FROM users WHERE id = CAST(CAST('42' AS text) AS int8)",
    "SELECT * FROM users WHERE id = 99999999999",
    "SELECT * FROM users WHERE id = '42.7'::numeric::int8",
    "SELECT * FROM accounts WHERE name = 'abcdef'::varchar(2)",
    "SELECT * FROM users WHERE id = 42.0",
    "SELECT * FROM users WHERE id::text = '42'",
    "SELECT * FROM orders WHERE user_id IN (1, 2, 3)",
    "SELECT * FROM users WHERE id IN ('4', 5::int8, 6)",
    "SELECT * FROM users WHERE id IN (7, NULL)",
    "SELECT * FROM users WHERE id NOT IN (1, 2)",
    "SELECT * FROM users WHERE id IN (1, id + 1)",
    "SELECT * FROM users WHERE id = ANY('{1,2}')",
    "SELECT * FROM users WHERE id = ANY('{1, 2, 30}'::bigint[])",
    "SELECT * FROM users WHERE id = ANY('{{1,2},{3,4}}'::int8[])",
    "SELECT * FROM users WHERE id = ANY('{\"5\", NULL}')",
    "SELECT * FROM users WHERE id = ANY(ARRAY[1, 2])",
    "SELECT * FROM users WHERE id = ANY(ARRAY['8', 9]::bigint[])",
    "SELECT * FROM users WHERE id = ANY('{1,x}')",
    "SELECT * FROM users WHERE id <> ALL('{1,2}')",
    "SELECT * FROM users WHERE id = ANY(some_column)",
    "SELECT * FROM accounts WHERE name = ANY('{\"a b\",c\\,d}')",
    "SELECT * FROM users WHERE id = ANY($1)",
    "SELECT * FROM users WHERE id = ANY($1::bigint[])",
    "SELECT * FROM users WHERE id IN (1, 2, 3) AND id IN (3, 4)",
    "SELECT * FROM users WHERE name = 'x' AND id = 5 AND age > 3",
    "SELECT * FROM users WHERE id = 1 OR id = 2",
    "SELECT * FROM users WHERE id = 1 OR (id IN (2, 3) AND name = 'x')",
    "SELECT * FROM users WHERE id = 1 OR name = 'x'",
    "SELECT * FROM users WHERE (id = 1 OR name = 'x') AND id = 2",
    "SELECT * FROM users WHERE NOT (id = 1)",
    "SELECT * FROM users WHERE id <> 1",
    "SELECT * FROM users WHERE id IS DISTINCT FROM 1",
    "SELECT * FROM users WHERE id = other_id",
    "SELECT * FROM users WHERE id OPERATOR(myschema.=) 1",
    "SELECT * FROM users WHERE id = NULL",
    "SELECT * FROM users WHERE id IS NULL",
    "SELECT * FROM users WHERE id = 'abc'",
    "SELECT * FROM users WHERE id = true",
    "SELECT * FROM users WHERE id = 99999999999999999999",
    "SELECT * FROM users",
    "SELECT count(*) FROM accounts",
    "SELECT * FROM users WHERE id = $1",
    "SELECT * FROM users WHERE id = $1::bigint",
    "SELECT * FROM users WHERE name = $1 AND id = $2",
    "SELECT * FROM users WHERE id = $1::int4",
    "SELECT * FROM accounts WHERE name = $1",
    "SELECT * FROM accounts WHERE name = 'alice'",
    "SELECT * FROM users WHERE id = $2",
    "SELECT * FROM sites WHERE region_id = 1500",
    "SELECT * FROM sites WHERE region_id < 1000",
    "SELECT * FROM sites WHERE region_id <= 1000",
    "SELECT * FROM sites WHERE region_id >= 2000",
    "SELECT * FROM sites WHERE region_id > 1500 AND region_id < 1600",
    "SELECT * FROM sites WHERE 2500 < region_id",
    "SELECT * FROM sites WHERE region_id BETWEEN 500 AND 1500",
    "SELECT * FROM sites WHERE region_id BETWEEN SYMMETRIC 2500 AND 1500",
    "SELECT * FROM sites WHERE region_id NOT BETWEEN 1 AND 2",
    "SELECT * FROM users WHERE id < 10",
    "SELECT * FROM users WHERE id BETWEEN 1 AND 2",
    "SELECT * FROM users WHERE id > 10 AND id = 11",
    "SELECT * FROM slots WHERE slot = 150",
    "INSERT INTO slots (slot) VALUES (150)",
    "SELECT * FROM (SELECT * FROM users WHERE id = 3) s",
    "SELECT count(*) FROM (SELECT id FROM users WHERE id IN (1, 2)) s",
    "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE user_id = 4)",
    "SELECT * FROM countries WHERE code IN (SELECT cc FROM users WHERE id = 5)",
    "SELECT * FROM users u WHERE u.id = 6 AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = "
    "u.id)",
    "SELECT * FROM users WHERE id = 1 OR id IN (SELECT user_id FROM orders)",
    "SELECT * FROM users WHERE id <> ALL (SELECT user_id FROM orders WHERE user_id = 5)",
    "SELECT * FROM countries WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = 5)",
    "SELECT (SELECT name FROM users WHERE id = 3)",
    "SELECT EXISTS (SELECT 1 FROM orders WHERE user_id = 4)",
    "SELECT EXISTS (SELECT 1 FROM orders WHERE total > 4)",
    "WITH x AS (SELECT * FROM users WHERE id = 7) SELECT * FROM x",
    "WITH a AS (SELECT * FROM orders WHERE user_id = 8), b AS (SELECT * FROM a) SELECT * FROM b",
    "WITH users AS (SELECT 1 AS id) SELECT * FROM users WHERE id = 5",
    "WITH users AS (SELECT * FROM users WHERE id = 9) SELECT * FROM users",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT * FROM t "
    "JOIN users ON users.id = t.n",
    "SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 42",
    "SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE o.user_id = 43",
    "SELECT * FROM users JOIN widgets USING (id) WHERE id = 44",
    "SELECT * FROM users a JOIN users b ON b.id = a.id WHERE a.id = 47",
    "SELECT * FROM users u, orders o WHERE o.user_id = u.id AND o.user_id IN (1, 2)",
    "SELECT * FROM users u JOIN orders o ON o.user_id = u.id AND u.id = 45",
    "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) x WHERE u.id = "
    "46",
    "SELECT * FROM users u, orders o WHERE u.id = 5",
    "without equal keys",
    "SELECT * FROM users u JOIN orders o ON o.note = u.name WHERE u.id = 5",
    "SELECT * FROM users u JOIN orders o USING (id)",
    "SELECT * FROM users a JOIN users b ON a.manager_id = b.id",
    "SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id OR o.x = 1",
    "UPDATE orders SET total = 0 FROM users WHERE users.id = 3",
    "SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id",
    "SELECT * FROM users u FULL JOIN orders o ON u.id = o.user_id AND o.x = 1",
    "SELECT * FROM users u JOIN orders o ON o.user_id = u.id",
    "SELECT * FROM users u, orders o WHERE u.id = o.user_id",
    "SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id AND o.user_id = 5",
    "SELECT * FROM users u LEFT JOIN (SELECT * FROM orders WHERE user_id = 5) o ON o.user_id = "
    "u.id",
    "SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.id = 5",
    "SELECT * FROM users u JOIN sites s ON s.region_id = u.region WHERE u.id = 1",
    "SELECT * FROM users WHERE id IN (SELECT owner FROM sites)",
    "SELECT id FROM users UNION SELECT region_id FROM sites",
    "WITH s AS (SELECT * FROM accounts) SELECT * FROM users, s",
    "SELECT id FROM users WHERE id = 1 UNION ALL SELECT user_id FROM orders WHERE user_id = 2",
    "SELECT id FROM users WHERE id = 1 UNION SELECT user_id FROM orders",
    "UPDATE orders o SET total = 0 FROM users u WHERE u.id = o.user_id AND u.id = 3",
    "DELETE FROM orders USING users WHERE users.id = orders.user_id AND users.id = 4",
    "UPDATE users SET name = 'x' WHERE id = 5 RETURNING *",
    "DELETE FROM orders WHERE total = 0",
    "SELECT * FROM users u WHERE u.id = 4 FOR UPDATE",
    "INSERT INTO users (name, id) VALUES ('ann', 42) RETURNING id",
    "INSERT INTO orders (user_id, total) VALUES ('7'::bigint, 1.5)",
    "INSERT INTO public.users (id) VALUES (8)",
    "INSERT INTO sites (region_id) VALUES (1500)",
    "INSERT INTO users (id, name) VALUES ($1, 'a'), ($2, 'b')",
    "INSERT INTO users VALUES (1, 'a')",
    "INSERT INTO users (id, ...)",
    "INSERT INTO orders DEFAULT VALUES",
    "INSERT INTO users SELECT * FROM users",
    "INSERT INTO users (name) VALUES ('x')",
    "INSERT INTO orders (id, total) VALUES (1, 2)",
    "INSERT INTO users (id) VALUES (DEFAULT)",
    "INSERT INTO users (id) VALUES (1), (1 + 1)",
    "INSERT INTO users (id) VALUES (nextval('users_id_seq'))",
    "INSERT INTO users (id) VALUES (NULL)",
    "INSERT INTO users (id) VALUES ('abc')",
    "INSERT INTO orders (user_id, total) SELECT id, 0 FROM users",
    "INSERT INTO orders (user_id, total) SELECT u.id, 0 FROM users u WHERE u.id = 5",
    "INSERT INTO orders (user_id, total) SELECT 6, 0",
    "INSERT INTO orders (user_id, cc) SELECT 7, code FROM countries",
    "INSERT INTO orders (user_id) SELECT code FROM countries",
    "INSERT ... SELECT",
    "INSERT INTO orders (user_id) SELECT id + 1 FROM users",
    "INSERT INTO orders (user_id) SELECT 5 FROM users",
    "INSERT INTO orders (user_id) SELECT * FROM users",
    "INSERT INTO users (id) SELECT region_id FROM sites",
    "INSERT INTO local_t (id) SELECT id FROM users",
    "INSERT INTO users (id, n) VALUES (1, 'x') ON CONFLICT DO NOTHING",
    "INSERT INTO users (id, n) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET n = excluded.n, id = "
    "excluded.id",
    "UPDATE of the key column id",
    "UPDATE users SET id = id + 1 WHERE id = 5",
    "UPDATE users SET id = 5",
    "UPDATE orders SET user_id = (SELECT 1) WHERE user_id = 5",
    "WITH x AS (UPDATE users SET id = 6 WHERE id = 5 RETURNING *) SELECT * FROM x",
    "UPDATE users SET id = $1 WHERE id = $2",
    "UPDATE users SET id = 5, name = 'x' WHERE id = 5",
    "UPDATE users SET (id, name) = (5, 'x') WHERE id = 5",
    "UPDATE users u SET id = u.id WHERE u.id IN (1, 2)",
    "CREATE TABLE users (id bigint PRIMARY KEY, name text)",
    "CREATE TABLE IF NOT EXISTS public.orders (user_id bigint, total numeric)",
    "ALTER TABLE users ADD COLUMN age int",
    "ALTER TABLE public.orders RENAME COLUMN total TO amount",
    "DROP TABLE orders",
    "DROP TABLE IF EXISTS local_t, users CASCADE",
    "CREATE INDEX users_name_idx ON users (name)",
    "CREATE UNIQUE INDEX CONCURRENTLY ON orders (user_id, id)",
    "TRUNCATE users, orders",
    "VACUUM ANALYZE users",
    "ANALYZE countries",
    "COMMENT ON TABLE users IS 'people'",
    "COMMENT ON COLUMN public.users.name IS 'full name'",
    "GRANT SELECT ON users TO reporting",
    "REVOKE ALL ON countries FROM PUBLIC",
    "CREATE TABLE countries (code text PRIMARY KEY)",
    "DROP TRIGGER t ON users",
    "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting",
    "CREATE TABLE audit (id bigint, user_id bigint REFERENCES users (id))",
    "DROP TABLE audit",
    "CREATE INDEX ON audit (id)",
    "ALTER TABLE audit ADD FOREIGN KEY (user_id) REFERENCES users (id)",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP INDEX users_name_idx",
    "CREATE TEMP TABLE users (id bigint)",
    "CREATE TABLE c2 AS SELECT * FROM countries",
    "CREATE TABLE u2 AS SELECT * FROM users",
    "CREATE TABLE",
    "SELECT * INTO u2 FROM users WHERE id = 1",
    "CREATE TABLE orders AS SELECT * FROM users",
    "CREATE VIEW v AS SELECT * FROM users",
    "CREATE TABLE orders AS SELECT * FROM users WITH NO DATA",
    "CREATE VIEW widgets AS SELECT * FROM users",
    "COPY users FROM STDIN",
    "COPY orders (total, user_id) FROM STDIN WITH (FORMAT csv)",
    "COPY orders (total) FROM STDIN",
    "COPY users FROM '/tmp/users.csv'",
    "COPY users FROM PROGRAM 'cat x'",
    "COPY users TO STDOUT",
    "COPY (SELECT * FROM orders WHERE user_id = 3) TO STDOUT WITH (FORMAT binary)",
    "COPY users TO '/tmp/out'",
    "COPY countries FROM STDIN",
    "COPY countries TO STDOUT",
    "COPY local_t FROM STDIN",
    "BEGIN; UPDATE users SET n = 1 WHERE id = 9; COMMIT;",
    "SET LOCAL statement_timeout = 100; SELECT * FROM users WHERE id = 3",
    "SELECT 1; SHOW server_version; BEGIN",
    "SELECT * FROM users; SELECT * FROM accounts",
    "SELECT * FROM users WHERE id = 1; SELECT * FROM sites WHERE region_id = 1; SELECT * FROM "
    "sites WHERE region_id = 2500",
    "BEGIN; UPDATE users SET n = 0; COMMIT",
    "INSERT INTO countries (code) VALUES ('x'); COMMIT",
    "/* pgshard: shard=2 */ SELECT * FROM users u JOIN sites s ON true",
    "  /*pgshard:shard = 0*/ INSERT INTO users (id) VALUES (1), (2), (3)",
    "-- note\n/* something else */ /* pgshard: shard=1 */ SELECT 1",
    "/* pgshard: shard=2 */ SELEC oops",
    "/* pgshard: shard=3 */ SELECT 1",
    "/* pgshard: shard=x */ SELECT 1",
    "/* pgshard: shrad=1 */ SELECT 1",
    "/* pgshard: key=77 */ SELECT * FROM users WHERE name = 'x'",
    "/* pgshard: key=1500 */ SELECT f(region_id) FROM sites",
    "/* pgshard: key='it''s' */ SELECT * FROM accounts",
    "/* pgshard: key=abc */ SELECT * FROM users",
    "/* pgshard: key=1 */ SELECT 1",
    "/* pgshard: key=150 */ SELECT * FROM slots",
    "/* pgshard: all */ DROP INDEX users_name_idx",
    "EXPLAIN SELECT * FROM users WHERE id = 3",
    "EXPLAIN UPDATE users SET n = 1 WHERE id = 3",
    "EXPLAIN (ANALYZE, BUFFERS) UPDATE users SET n = 1 WHERE id = 3",
    "EXPLAIN SELECT 1",
    "PREPARE p AS SELECT * FROM users WHERE id = $1",
    "PREPARE",
    "PREPARE q AS SELECT 1",
    "EXECUTE q",
    "DECLARE c CURSOR FOR SELECT * FROM users",
    "DECLARE c CURSOR FOR SELECT * FROM pg_class",
    "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN UPDATE SET n = 1 WHEN "
    "NOT MATCHED THEN INSERT (id, n) VALUES (o.user_id, 0)",
    "MERGE INTO users u USING countries c ON u.cc = c.code WHEN NOT MATCHED THEN INSERT (id) "
    "VALUES (7)",
    "MERGE ... INSERT",
    "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN UPDATE SET id = 5",
    "LOCK TABLE users IN SHARE MODE",
    "SELECT * FROM users WHERE id = 1 AND x = ",
    "SELECT 1+1+1",
    "SELECT (1)",
    "SELECT ((1+1)+1)*2",
    "SELECT x::int::text",
    "SELECT a[1][2]",
    "SELECT a=-5",
    "SELECT a@-5",
    "SELECT 1e-5",
    "SELECT a FROM t WHERE a = 1 AND b = 2 OR c = 3",
    "SELECT f(1, 2, 3), g(4)",
    "INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "SELECT CASE WHEN a = 1 THEN 'x' WHEN a = 2 THEN 'y' ELSE 'z' END + 1",
    "SELECT 1+1+1; SELECT 2",
    "SELECT 1) + 1] + 1",
    "SELECT '((((+++', 'it''s (('",
    "SELECT $$((+++$$, $a$ (( $$ )) $a$, $1",
    "SELECT \"a+b((\" FROM \"t\"\"((\"",
    "SELECT E'\\'((++', e'\\\\', U&'((+' , B'01', X'1f'",
    "SELECT /* (( /* nested (( */ ++ */ 1 -- ((+++\n",
    "SELECT 'a'\n'(+('",
    "SELECT E'x'\n'\\'' +1+1 '",
    "SELECT 1 + 'oops ((((+",
    "SELECT 1 + /* oops ((((+",
    "SELECT 'a'",
    "SELECT x",
    "SELECT now()",
    "SELECT ",
    "SELECT * FROM t",
    "(",
    "(SELECT ",
    "SELECT * FROM t WHERE a = 1",
    "SELECT * FROM t WHERE a IN (1",
    "SELECT CASE a",
    " END",
    "SELECT * FROM users WHERE id = 1 AND x = 1",
    "/* pgshard: shard=2 */ SELECT 1",
    "INSERT INTO users (id, v) VALUES ",
    "begin work",
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    "END",
    "COMMIT TRANSACTION;",
    "ABORT",
    "RELEASE SAVEPOINT a",
    "RELEASE a",
    "ROLLBACK TO SAVEPOINT a",
    "ROLLBACK TO a",
    "COMMIT AND CHAIN",
    "ROLLBACK AND CHAIN",
    "COMMIT AND NO CHAIN",
    "PREPARE TRANSACTION 'g1'",
    "COMMIT PREPARED 'g1'",
    "ROLLBACK PREPARED 'g1'",
    "/* pgshard: shard=2 */ BEGIN",
    "BEGIN; SELECT 1",
    "SELECT * FROM users WHERE id = 1; COMMIT",
    "BEGIN; COMMIT",
    "SELEC 1; BEGIN",
    "SELECT * FROM users WHERE id = 1 ORDER BY name LIMIT 3",
    "SELECT count(DISTINCT name) FROM users WHERE id = 1",
    "SELECT * FROM countries ORDER BY code",
    "SELECT 1 UNION SELECT 2",
    "UPDATE users SET n = 1 WHERE id = 3",
    "/* pgshard: shard=1 */ SELECT * FROM users ORDER BY id",
    "SELECT id, name FROM users WHERE id IN (1, 2, 3, 4, 5, 6)",
    "SELECT * FROM orders o RIGHT JOIN users u ON o.user_id = u.id",
    "SELECT * FROM users u FULL JOIN orders o ON o.user_id = u.id",
    "SELECT * FROM users u JOIN countries c ON c.code = u.cc",
    "SELECT * FROM (SELECT id FROM users WHERE name = 'x') s",
    "WITH x AS (SELECT * FROM users) SELECT * FROM x",
    "SELECT id FROM users UNION ALL SELECT user_id FROM orders",
    "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)",
    "SELECT * FROM users FOR UPDATE",
    "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
    "SELECT upper(name), id + 1 FROM users",
    "COPY (SELECT * FROM orders) TO STDOUT",
    "EXPLAIN SELECT * FROM users ORDER BY id",
    "SELECT count(*) FROM users",
    "SELECT count(*) AS n, count(name) FROM users u JOIN orders o ON o.user_id = u.id",
    "SELECT pg_catalog.count(*) FROM accounts WHERE name > 'm'",
    "SELECT count(*) FROM (SELECT id FROM users WHERE name = 'x') s",
    "SELECT * FROM orders ORDER BY total",
    "SELECT * FROM orders LIMIT 10",
    "SELECT * FROM orders OFFSET 10",
    "SELECT * FROM orders FETCH FIRST 3 ROWS ONLY",
    "SELECT user_id, count(*) FROM orders GROUP BY user_id",
    "SELECT 1 FROM orders HAVING true",
    "SELECT DISTINCT total FROM orders",
    "SELECT DISTINCT ON (user_id) * FROM orders",
    "SELECT sum(total) FROM orders",
    "SELECT count(*), max(total) FROM orders",
    "SELECT coalesce(max(total), 0) FROM orders",
    "SELECT count(DISTINCT total) FROM orders",
    "SELECT count(*) FILTER (WHERE total > 1) FROM orders",
    "SELECT count(*) + 1 FROM orders",
    "SELECT count(*) FROM orders ORDER BY 1",
    "SELECT string_agg(note, ',' ORDER BY note) FROM orders",
    "SELECT *, row_number() OVER () FROM orders",
    "SELECT user_id FROM orders UNION SELECT id FROM users",
    "SELECT user_id FROM orders INTERSECT SELECT id FROM users",
    "SELECT user_id FROM orders EXCEPT SELECT id FROM users",
    "SELECT id FROM users UNION ALL SELECT 1",
    "SELECT * FROM countries WHERE code IN (SELECT cc FROM users)",
    "SELECT * FROM countries c LEFT JOIN users u ON u.cc = c.code",
    "SELECT (SELECT count(*) FROM orders)",
    "SELECT * FROM (SELECT count(*) FROM orders) s",
    "WITH c AS (SELECT user_id FROM orders LIMIT 5) SELECT * FROM c",
    "COPY (SELECT count(*) FROM orders) TO STDOUT",
    "COPY (SELECT * FROM orders ORDER BY total) TO STDOUT",
    "/* pgshard: shard=N */",
    "UPDATE users SET n = 0",
    "UPDATE users SET n = 0 WHERE id IN (1, 2, 3, 4) RETURNING *",
    "DELETE FROM orders WHERE total = 0 RETURNING user_id",
    "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN UPDATE SET n = 1",
    "CREATE INDEX ON users (name)",
    "ALTER TABLE orders ADD COLUMN x int",
    "TRUNCATE users",
    "INSERT INTO countries (code) VALUES ('fr') RETURNING *",
    "UPDATE countries SET name = 'x'",
    "/* pgshard: all */ SELEC oops",
    "/* pgshard: all */ SELECT * FROM countries",
    "/* pgshard: all */ SELECT * FROM pg_stat_activity",
    "/* pgshard: all */ SELECT * FROM users",
    "/* pgshard: all */ SELECT * FROM users ORDER BY id",
    "SELECT * FROM users; SELECT * FROM orders",
    "SET LOCAL work_mem = '1MB'; SELECT count(*) FROM users",
    "UPDATE users SET n = 0; SELECT count(*) FROM users",
    "SELECT * FROM users; SELECT * FROM users ORDER BY id",
    "SELECT * FROM users WHERE id = $1 ORDER BY name",
    "INSERT INTO users (id, name, note) VALUES (1, 'it''s', NULL), (2, E'tab\\there', 'x'::text), "
    "(3, 'caf\xc3\xa9', now()), ('4'::int8, $$dollar$$, 1.5), (-5, 'back\\slash', -2), (6, "
    "E'quote\\'s', 'a\n'\n'b'), (7, '', 99999999999), (8, 'x', DEFAULT) ON CONFLICT (id) DO UPDATE "
    "SET name = excluded.name RETURNING id, name",
    "INSERT INTO users (id, name, note) VALUES",
    "INSERT INTO users (id) VALUES (1)",
    "SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id IN ($1, 3)",
};

/* ---- helpers ---- */

static int shard_of(int64_t v)
{
	shard_key_t k;

	assert_int_equal(shard_key_from_int(v, &k), 0);
	return shard_map_lookup(&ctx.maps[0], &k); /* map users */
}

/* ---- same plans ---- */

/* Every statement of test_route_*.c and three variants of each, three times over. */
static void run_corpus(route_cache_t *c)
{
	static const char *const values[] = {"1", "2", "30", "{1,2}"};
	route_param_t prm[4];

	for (int i = 0; i < 4; i++)
		prm[i] = text_param(values[i]);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
			both(c, corpus[i], NULL, 0);
			if (strchr(corpus[i], '$') != NULL)
				both(c, corpus[i], prm, 4);
			for (int k = 0; k < 3; k++) {
				char *v = variant(corpus[i], k);

				both(c, v, NULL, 0);
				both(c, v, prm, 2);
				free(v);
			}
		}
}

static void test_corpus_routes_the_same_cached_and_not(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 4096);
	route_cache_stats_t s;

	(void)state;
	assert_non_null(c);
	run_corpus(c);
	s = stats(c);
	/* most of it is served from the cache: each text's later rounds at least */
	assert_true(s.hits > 2 * (s.misses + s.uncacheable));
	route_cache_free(c);
}

/* The same with a cache too small for the corpus: entries come and go. */
static void test_corpus_routes_the_same_through_a_small_cache(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 8);

	(void)state;
	assert_non_null(c);
	run_corpus(c);
	route_cache_free(c);
}

/* ---- sharing entries ---- */

static void test_statements_differing_in_literals_share_an_entry(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_plan_t p;

	(void)state;
	p = both(c, "SELECT * FROM users WHERE id = 7", NULL, 0);
	assert_int_equal(shard_set_count(&p.shards), 1);
	assert_true(shard_set_has(&p.shards, shard_of(7)));
	EXPECT_STATS(c, 0, 1, 0);
	p = both(c, "SELECT * FROM users WHERE id = 8", NULL, 0);
	EXPECT_STATS(c, 1, 1, 0);
	/* still routed by its own value */
	assert_int_equal(shard_set_count(&p.shards), 1);
	assert_true(shard_set_has(&p.shards, shard_of(8)));
	assert_string_equal(p.reason, shard_of(8) == 0 ? "users.id = 8 -> shard 0 (hash map users)"
	                              : shard_of(8) == 1
	                                  ? "users.id = 8 -> shard 1 (hash map users)"
	                                  : "users.id = 8 -> shard 2 (hash map users)");
	route_cache_free(c);
}

/*
 * The same text twice in a row (a Parse and its Bind, a prepared statement's
 * Binds) is masked once; each call still routes by its own inputs.
 */
static void test_the_same_text_again_routes_by_its_own_inputs(void **state)
{
	static const char *const texts[] = {
	    "SELECT * FROM users WHERE id = $1", "SELECT * FROM users WHERE id = $1",
	    "SELECT * FROM users WHERE id = 7",  "SELECT * FROM users WHERE id = 7",
	    "SELECT * FROM users WHERE id = $1", "SELECT * FROM users WHERE id = 8",
	};
	route_cache_t *c = route_cache_new(&ctx, 16);

	(void)state;
	for (int v = 1; v < 40; v++) {
		char num[8];
		route_param_t prm;
		route_plan_t p;
		size_t i = (size_t)v % (sizeof texts / sizeof texts[0]);

		snprintf(num, sizeof num, "%d", v);
		prm = text_param(num);
		p = both(c, texts[i], &prm, 1);
		if (strchr(texts[i], '$') != NULL)
			assert_true(shard_set_has(&p.shards, shard_of(v)));
	}
	route_cache_free(c);
}

/* A statement for the default shard reads no input: one plan for every value, unanalysed. */
static void test_default_shard_plans_serve_every_value(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_plan_t p;

	(void)state;
	for (int v = 1; v <= 6; v++) {
		char sql[96], num[8];
		route_param_t prm;

		snprintf(sql, sizeof sql, "SELECT * FROM not_configured WHERE a = %d AND b = $1",
		         v);
		snprintf(num, sizeof num, "%d", v * 7);
		prm = text_param(num);
		p = both(c, sql, &prm, 1);
		assert_int_equal(p.kind, ROUTE_DEFAULT);
		assert_true(p.generic.any_input);
	}
	/* analysed once, the other five copied */
	assert_int_equal(stats(c).misses, 1);
	assert_int_equal(stats(c).reused, 5);
	/* a statement whose plan reads a key is not one of them */
	p = both(c, "SELECT * FROM users WHERE id = 3", NULL, 0);
	assert_false(p.generic.any_input);
	route_cache_free(c);
}

/* A refusal names a long number as analysis names it, cut alike (found by fuzz_route). */
static void test_long_number_in_a_refusal_reads_the_same_cached(void **state)
{
	char sql[256];
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id, name) VALUES (1%s, 'x')",
	         "888888888888888888888888888888888888888888888888888888888888888888888888");
	for (int round = 0; round < 2; round++) {
		p = both(c, sql, NULL, 0);
		assert_int_equal(p.kind, ROUTE_REFUSE);
		assert_non_null(strstr(p.error, "is not a valid bigint key"));
	}
	route_cache_free(c);
}

/* A text without literals or parameters has one plan: later calls copy it, unanalysed. */
static void test_texts_without_inputs_reuse_their_plan(void **state)
{
	static const char *const texts[] = {"BEGIN", "COMMIT", "END", "SELECT now()",
	                                    "SELECT * FROM users WHERE id = $1"};
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_param_t prm = text_param("5");
	route_cache_stats_t s;

	(void)state;
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 4; i++)
			both(c, texts[i], NULL, 0);
	s = stats(c);
	assert_int_equal(s.misses, 4);
	assert_int_equal(s.reused, 8);
	/* a parameter is an input: its plan is not reused for another value */
	both(c, texts[4], &prm, 1);
	prm = text_param("6");
	both(c, texts[4], &prm, 1);
	assert_int_equal(stats(c).reused, 8);
	route_cache_free(c);
}

/* A text is calm (no session effect to look for) only when the effects scan finds none. */
static void test_calm_is_the_effects_scan_of_the_key(void **state)
{
	static const struct {
		const char *sql;
		bool calm;
	} cases[] = {
	    {"SELECT * FROM users WHERE id = 7", true},
	    {"UPDATE users SET name = 'x' WHERE id = 3", true},
	    {"SELECT name FROM users WHERE name = 'advisory_lock'", true}, /* a value, masked */
	    {"SELECT pg_advisory_lock(1)", false},
	    {"SELECT * INTO TEMP t FROM users WHERE id = 7", false},
	    {"SET search_path = public", false},
	    {"SELECT 1; SET work_mem = '1MB'", false},
	    {"PREPARE p AS SELECT 1", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_cache_t *c = route_cache_new(&ctx, 16);
		route_plan_t a, b;

		assert_non_null(c);
		/* analysis alone never says calm: only the cache knows the key */
		assert_int_equal(route_statement(&ctx, cases[i].sql, NULL, 0, &a), 0);
		assert_false(a.calm);
		for (int round = 0; round < 2; round++) {
			assert_int_equal(route_statement_cached(c, cases[i].sql, NULL, 0, &b), 0);
			if (b.calm != cases[i].calm)
				fail_msg("%s: calm %d, expected %d", cases[i].sql, b.calm,
				         cases[i].calm);
		}
		route_cache_free(c);
	}
}

static void test_strings_negative_numbers_and_lists_are_masked(void **state)
{
	static const char *const pairs[][2] = {
	    {"SELECT * FROM accounts WHERE name = 'alice'",
	     "SELECT * FROM accounts WHERE name = 'bob'"},
	    {"SELECT * FROM users WHERE id = -5", "SELECT * FROM users WHERE id = -6"},
	    {"SELECT * FROM users WHERE id=-5", "SELECT * FROM users WHERE id=-77"},
	    {"SELECT * FROM users WHERE id IN (1, 2, 3)",
	     "SELECT * FROM users WHERE id IN (4, 5, 6)"},
	    {"SELECT * FROM users WHERE id = ANY('{1,2}')",
	     "SELECT * FROM users WHERE id = ANY('{3,4,5}')"},
	    {"UPDATE users SET name = 'it''s' WHERE id = 3",
	     "UPDATE users SET name = 'x' WHERE id = 4"},
	    {"INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b')",
	     "INSERT INTO users (id, name) VALUES (10, 'c'), (20, 'd')"},
	    {"SELECT * FROM sites WHERE region_id BETWEEN 500 AND 1500",
	     "SELECT * FROM sites WHERE region_id BETWEEN 2500 AND 3000"},
	    {"SELECT * FROM users WHERE id = '42'::int8",
	     "SELECT * FROM users WHERE id = '43'::int8"},
	    {"SELECT * FROM users WHERE id = 1.5e3", "SELECT * FROM users WHERE id = 2.5e3"},
	    {"SELECT * FROM users WHERE id = 99999999999", "SELECT * FROM users WHERE id = 1e3"},
	    {"SELECT * FROM users WHERE id = -5::int8", "SELECT * FROM users WHERE id = -6::int8"},
	    /* pgbench's deltas: the sign folds after a binary operator */
	    {"UPDATE users SET n = n + -5 WHERE id = 3",
	     "UPDATE users SET n = n + -77 WHERE id = 4"},
	    {"UPDATE users SET n = n + -5 WHERE id = 3",
	     "UPDATE users SET n = n + -0 WHERE id = 3"},
	    {"SELECT * FROM users WHERE id = 2 * -5", "SELECT * FROM users WHERE id = 3 * -6"},
	    {"SELECT * FROM users WHERE id = + -5", "SELECT * FROM users WHERE id = + -6"},
	    {"SELECT * FROM orders WHERE user_id = 3 LIMIT 10",
	     "SELECT * FROM orders WHERE user_id = 4 LIMIT 20"},
	    {"SELECT * FROM users WHERE id = $1 AND name = 'x'",
	     "SELECT * FROM users WHERE id = $1 AND name = 'yy'"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		route_cache_t *c = route_cache_new(&ctx, 16);
		route_param_t prm = text_param("5");
		route_cache_stats_t s;

		both(c, pairs[i][0], &prm, 1);
		both(c, pairs[i][1], &prm, 1);
		s = stats(c);
		if (s.hits != 1 || s.misses != 1)
			fail_msg("\"%s\" and \"%s\": %llu hits, %llu misses", pairs[i][0],
			         pairs[i][1], (unsigned long long)s.hits,
			         (unsigned long long)s.misses);
		route_cache_free(c);
	}
}

/* Where a parameter cannot stand for a literal, the literal stays in the key. */
static void test_literals_that_cannot_be_parameters_stay_in_the_key(void **state)
{
	static const char *const pairs[][2] = {
	    {"SET search_path = app", "SET search_path = other"},
	    {"SHOW work_mem", "SHOW search_path"},
	    {"COPY (SELECT * FROM users WHERE id = 1) TO STDOUT",
	     "COPY (SELECT * FROM users WHERE id = 2) TO STDOUT"},
	    {"CREATE TABLE t1 (a varchar(10))", "CREATE TABLE t1 (a varchar(20))"},
	    {"SELECT date '2020-01-01' FROM users WHERE id = 1",
	     "SELECT date '2020-01-02' FROM users WHERE id = 1"},
	    {"SELECT 'a'::varchar(10) FROM users WHERE id = 1",
	     "SELECT 'a'::varchar(20) FROM users WHERE id = 1"},
	    {"SELECT E'a' FROM users WHERE id = 1", "SELECT E'b' FROM users WHERE id = 1"},
	    {"/* pgshard: key=1 */ SELECT * FROM users",
	     "/* pgshard: key=2 */ SELECT * FROM users"},
	    {"SELECT * FROM users WHERE id = - -5", "SELECT * FROM users WHERE id = - -6"},
	    {"PREPARE q AS SELECT 1", "PREPARE q AS SELECT 2"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		route_cache_t *c = route_cache_new(&ctx, 16);
		route_cache_stats_t s;

		both(c, pairs[i][0], NULL, 0);
		both(c, pairs[i][1], NULL, 0);
		both(c, pairs[i][1], NULL, 0); /* the same text again: a hit */
		s = stats(c);
		if (s.hits != 1 || s.misses != 2)
			fail_msg("\"%s\" and \"%s\": %llu hits, %llu misses", pairs[i][0],
			         pairs[i][1], (unsigned long long)s.hits,
			         (unsigned long long)s.misses);
		route_cache_free(c);
	}
}

/*
 * The safety net: a masked text whose tree is not the original's with the
 * literal in place is never used. 00000000042 is an int4 constant to
 * PostgreSQL, but the lexer takes integers of more than ten digits for
 * other numbers; the comparison notices, and the text is routed uncached.
 */
static void test_masked_text_that_parses_otherwise_is_not_used(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_plan_t p;

	(void)state;
	p = both(c, "SELECT * FROM users WHERE id = 00000000042", NULL, 0);
	assert_true(shard_set_has(&p.shards, shard_of(42)));
	EXPECT_STATS(c, 0, 0, 1);
	both(c, "SELECT * FROM users WHERE id = 00000000043", NULL, 0);
	EXPECT_STATS(c, 0, 0, 2);
	/*
	 * id = 44 masks to the same text; its entry must not serve the long
	 * spelling, whose literal is another token kind (the key says so)
	 */
	both(c, "SELECT * FROM users WHERE id = 44", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = 00000000044", NULL, 0);
	EXPECT_STATS(c, 0, 1, 3);
	route_cache_free(c);
}

static route_parsed_t *parse(const char *sql)
{
	route_parsed_t *p = route_parse(sql);

	assert_non_null(p);
	return p;
}

static void test_parsed_match_wants_the_literal_where_its_parameter_is(void **state)
{
	route_param_t v42 = text_param("42"), v43 = text_param("43"), vm5 = text_param("-5");
	route_literals_t lits = {.first = 1, .n = 1, .values = &v42, .kinds = "i"};
	route_parsed_t *orig = parse("SELECT * FROM users WHERE id = 42");
	route_parsed_t *masked = parse("SELECT * FROM users WHERE id = $1");
	route_parsed_t *other = parse("SELECT * FROM users WHERE id = $2");
	route_parsed_t *cast = parse("SELECT * FROM users WHERE id = -5::int8");
	route_parsed_t *cast_masked = parse("SELECT * FROM users WHERE id = $1::int8");

	(void)state;
	assert_true(route_parsed_match(orig, masked, &lits));
	assert_false(route_parsed_match(orig, masked, NULL));
	lits.values = &v43;
	assert_false(route_parsed_match(orig, masked, &lits));
	lits.values = &v42;
	lits.kinds = "s";
	assert_false(route_parsed_match(orig, masked, &lits));
	lits.kinds = "i";
	assert_false(route_parsed_match(orig, other, &lits));
	/* -5::int8 is -(5::int8): folding the sign into the literal would change the tree */
	lits.values = &vm5;
	assert_false(route_parsed_match(cast, cast_masked, &lits));
	assert_true(route_parsed_match(orig, orig, NULL));
	route_parsed_free(orig);
	route_parsed_free(masked);
	route_parsed_free(other);
	route_parsed_free(cast);
	route_parsed_free(cast_masked);
}

/* ---- parameters with literals ---- */

static void test_caller_parameters_and_masked_literals_do_not_mix(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_param_t one = text_param("7");
	route_plan_t p;

	(void)state;
	/* the literal becomes $2, after the statement's own $1 */
	p = both(c, "SELECT * FROM users WHERE id = $1 AND name = 'x'", &one, 1);
	assert_true(shard_set_has(&p.shards, shard_of(7)));
	assert_false(p.params_missing);
	p = both(c, "SELECT * FROM users WHERE id = $1 AND name = 'y'", NULL, 0);
	assert_true(p.params_missing);
	/* $2 was not given, the literal 5 (now $3) is */
	p = both(c, "SELECT * FROM users WHERE id = $2 AND n = 5", &one, 1);
	assert_true(p.params_missing);
	p = both(c, "SELECT * FROM users WHERE n = $2 AND id = 5", &one, 1);
	assert_false(p.params_missing);
	assert_true(shard_set_has(&p.shards, shard_of(5)));
	/* more parameters given than the text uses */
	p = both(c, "SELECT * FROM users WHERE id = 9", (route_param_t[]){one, one, one}, 3);
	assert_true(shard_set_has(&p.shards, shard_of(9)));
	route_cache_free(c);
}

/* Refusals print the literal as route_statement does, whatever the cache holds. */
static void test_errors_and_reasons_name_the_literals(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_plan_t p;

	(void)state;
	p = both(c, "INSERT INTO slots (slot) VALUES (150)", NULL, 0);
	assert_non_null(strstr(p.error, "key value 150 of row 1"));
	p = both(c, "INSERT INTO slots (slot) VALUES (151)", NULL, 0);
	assert_non_null(strstr(p.error, "key value 151 of row 1"));
	p = both(c, "INSERT INTO users (id) VALUES ('abc')", NULL, 0);
	p = both(c, "INSERT INTO users (id) VALUES ('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG')",
	         NULL, 0);
	assert_non_null(strstr(p.error, "...'"));
	p = both(c, "SELECT * FROM users WHERE id IN (0042, -7, '8')", NULL, 0);
	assert_non_null(strstr(p.reason, "users.id IN (42, -7, '8')"));
	EXPECT_STATS(c, 2, 3, 0);
	route_cache_free(c);
}

/* ---- bounds ---- */

static void test_least_recently_used_entry_goes_first(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 2);
	const char *a = "SELECT * FROM users WHERE id = 1",
	           *b = "SELECT * FROM orders WHERE user_id = 1",
	           *d = "SELECT * FROM sites WHERE region_id = 1";

	(void)state;
	both(c, a, NULL, 0); /* miss */
	both(c, b, NULL, 0); /* miss */
	both(c, a, NULL, 0); /* hit: a is the most recent */
	both(c, d, NULL, 0); /* miss: b goes */
	both(c, a, NULL, 0); /* hit */
	EXPECT_STATS(c, 2, 3, 0);
	both(c, b, NULL, 0); /* miss again: d goes */
	both(c, a, NULL, 0); /* hit */
	both(c, d, NULL, 0); /* miss */
	EXPECT_STATS(c, 3, 5, 0);
	route_cache_free(c);
}

static void test_big_texts_and_trees_are_not_kept(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 4);
	size_t n = ROUTE_CACHE_MAX_TEXT / 2 + 10, k;
	char *sql = malloc(n * 8 + 64);

	(void)state;
	assert_non_null(sql);
	/* a text over ROUTE_CACHE_MAX_TEXT: routed, never kept */
	k = (size_t)sprintf(sql, "SELECT * FROM users WHERE id IN (1");
	for (size_t i = 0; i < n; i++)
		k += (size_t)sprintf(sql + k, ",%zu", i % 10);
	strcpy(sql + k, ")");
	assert_true(strlen(sql) > ROUTE_CACHE_MAX_TEXT);
	both(c, sql, NULL, 0);
	both(c, sql, NULL, 0);
	EXPECT_STATS(c, 0, 0, 2);
	/* a short text with a tree over the budget of a one-entry cache */
	route_cache_free(c);
	c = route_cache_new(&ctx, 1);
	k = (size_t)sprintf(sql, "SELECT a0");
	for (int i = 1; i < 300; i++)
		k += (size_t)sprintf(sql + k, ", a%d", i);
	strcpy(sql + k, " FROM users WHERE id = 1");
	assert_true(strlen(sql) < ROUTE_CACHE_MAX_TEXT);
	both(c, sql, NULL, 0);
	both(c, sql, NULL, 0);
	EXPECT_STATS(c, 0, 0, 2);
	both(c, "SELECT * FROM users WHERE id = 1", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = 2", NULL, 0);
	EXPECT_STATS(c, 1, 1, 2);
	route_cache_free(c);
	free(sql);
}

/* Statements the guard refuses, statements that do not parse: same plans, cached or not. */
static void test_refused_and_unparsable_texts_route_the_same(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	size_t n = 3000;
	char *sql = malloc(n * 2 + 64), *p;

	(void)state;
	assert_non_null(sql);
	p = sql + sprintf(sql, "SELECT * FROM users WHERE id = 5 AND x = -1");
	for (size_t i = 0; i < n; i++) {
		*p++ = '+';
		*p++ = '1';
	}
	*p = '\0';
	both(c, sql, NULL, 0);
	both(c, sql, NULL, 0);
	both(c, "SELEC * FROM users WHERE id = 1", NULL, 0);
	both(c, "SELEC * FROM users WHERE id = 2", NULL, 0);
	both(c, "/* pgshard: shard=2 */ SELEC 1", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = 'unterminated", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = 1 /* unterminated", NULL, 0);
	both(c, "", NULL, 0);
	both(c, ";;", NULL, 0);
	free(sql);
	route_cache_free(c);
}

static void test_capacity_below_one_still_caches_one(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 0);

	(void)state;
	assert_non_null(c);
	both(c, "SELECT * FROM users WHERE id = 1", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = 2", NULL, 0);
	EXPECT_STATS(c, 1, 1, 0);
	route_cache_free(c);
	route_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus_routes_the_same_cached_and_not),
	    cmocka_unit_test(test_corpus_routes_the_same_through_a_small_cache),
	    cmocka_unit_test(test_statements_differing_in_literals_share_an_entry),
	    cmocka_unit_test(test_calm_is_the_effects_scan_of_the_key),
	    cmocka_unit_test(test_texts_without_inputs_reuse_their_plan),
	    cmocka_unit_test(test_long_number_in_a_refusal_reads_the_same_cached),
	    cmocka_unit_test(test_default_shard_plans_serve_every_value),
	    cmocka_unit_test(test_the_same_text_again_routes_by_its_own_inputs),
	    cmocka_unit_test(test_strings_negative_numbers_and_lists_are_masked),
	    cmocka_unit_test(test_literals_that_cannot_be_parameters_stay_in_the_key),
	    cmocka_unit_test(test_masked_text_that_parses_otherwise_is_not_used),
	    cmocka_unit_test(test_parsed_match_wants_the_literal_where_its_parameter_is),
	    cmocka_unit_test(test_caller_parameters_and_masked_literals_do_not_mix),
	    cmocka_unit_test(test_errors_and_reasons_name_the_literals),
	    cmocka_unit_test(test_least_recently_used_entry_goes_first),
	    cmocka_unit_test(test_big_texts_and_trees_are_not_kept),
	    cmocka_unit_test(test_refused_and_unparsable_texts_route_the_same),
	    cmocka_unit_test(test_capacity_below_one_still_caches_one),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
