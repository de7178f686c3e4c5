// End-to-end tests of pgshard with node-postgres ("pg"), which speaks the extended protocol.
//
// The target comes from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (node-postgres reads them
// itself). Every test passes against plain PostgreSQL 15; pgshard passes them by being
// transparent: named prepared statements re-prepared on whatever server connection runs them,
// two clients using one statement name for different SQL, startup parameters in effect.
//
// Run: node --test integration/tests/test_node.js   (or integration/tests/run_node.sh)
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const pg = require('pg');

const CONNECT_TIMEOUT_MS = 10000;
const T = { timeout: 60000 };

function newClient(extra = {}) {
  return new pg.Client({ connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...extra });
}

async function withClient(extra, fn) {
  const c = newClient(extra);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function expectPgError(promise, code) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.code, code, `want SQLSTATE ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`query succeeded, want error ${code}`);
}

before(async () => {
  await withClient({}, async (c) => {
    await c.query('drop table if exists e2e_node_t');
    await c.query(`create table e2e_node_t (
        id int constraint e2e_node_t_pk primary key,
        name text not null,
        data bytea)`);
  });
});

after(async () => {
  await withClient({}, (c) => c.query('drop table if exists e2e_node_t'));
});

test('extended protocol queries with typed $n parameters', T, async () => {
  await withClient({}, async (c) => {
    const ts = new Date('2024-02-29T23:59:58.123Z');
    const r = await c.query(
      `select $1::int + 1 as i, $2::text as t, $3::numeric as n, $4::bool as b,
              $5::timestamptz as ts, $6::jsonb as j, $7::int[] as arr, $8::text as nul,
              $9::int8 as big, $10::float8 as f, $11::date as d, $12::uuid as u`,
      [41, 'héllo ✓ 😀 \'q\' "dq" \\', '12345678901234567890.5', true, ts,
        JSON.stringify({ a: [1, { b: null }] }), [1, 2, 3], null,
        '9007199254740993', 0.25, '2024-01-02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']);
    assert.equal(r.rows.length, 1);
    const row = r.rows[0];
    assert.equal(row.i, 42);
    assert.equal(row.t, 'héllo ✓ 😀 \'q\' "dq" \\');
    assert.equal(row.n, '12345678901234567890.5');
    assert.equal(row.b, true);
    assert.equal(row.ts.getTime(), ts.getTime());
    assert.deepEqual(row.j, { a: [1, { b: null }] });
    assert.deepEqual(row.arr, [1, 2, 3]);
    assert.equal(row.nul, null);
    assert.equal(row.big, '9007199254740993');
    assert.equal(row.f, 0.25);
    assert.equal(row.u, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    assert.deepEqual(r.fields.map((f) => f.name),
      ['i', 't', 'n', 'b', 'ts', 'j', 'arr', 'nul', 'big', 'f', 'd', 'u']);
    assert.deepEqual(r.fields.map((f) => f.dataTypeID),
      [23, 25, 1700, 16, 1184, 3802, 1007, 25, 20, 701, 1082, 2950]);

    // Parameters in DML, and the command tag/rowCount.
    const ins = await c.query('insert into e2e_node_t (id, name) select g, $1 || g from generate_series($2::int, $3::int) g',
      ['n', 1000, 1099]);
    assert.equal(ins.command, 'INSERT');
    assert.equal(ins.rowCount, 100);
    const upd = await c.query('update e2e_node_t set name = $1 where id >= $2 and id < $3', ['u', 1000, 1010]);
    assert.equal(upd.rowCount, 10);
    const del = await c.query('delete from e2e_node_t where id between $1 and $2', [1000, 1099]);
    assert.equal(del.rowCount, 100);
  });
});

test('named prepared statements across a pool of 10 clients, same name different SQL', T, async () => {
  const pool = new pg.Pool({ max: 10, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  const clients = [];
  try {
    for (let i = 0; i < 10; i++) clients.push(await pool.connect());
    // Even clients define 'e2e_dup' one way, odd clients another; all share 'e2e_q1'.
    const dupSql = (i) => (i % 2 === 0
      ? "select 'even:' || $1::text as v, $2::int * 2 as w"
      : "select 'odd:' || $1::text as v, $2::int * 3 as w, 'extra' as x");
    const jobs = [];
    for (let k = 0; k < 500; k++) {
      const i = k % 10;
      const c = clients[i];
      if (k % 3 === 0) {
        jobs.push(c.query({ name: 'e2e_q1', text: 'select $1::int + 1000 as v', values: [k] })
          .then((r) => assert.deepEqual(r.rows, [{ v: k + 1000 }], `q1 #${k}`)));
      } else {
        jobs.push(c.query({ name: 'e2e_dup', text: dupSql(i), values: [`c${i}k${k}`, k] })
          .then((r) => {
            const want = i % 2 === 0
              ? { v: `even:c${i}k${k}`, w: k * 2 }
              : { v: `odd:c${i}k${k}`, w: k * 3, x: 'extra' };
            assert.deepEqual(r.rows, [want], `dup #${k} on client ${i}`);
          }));
      }
      if (k % 50 === 49) {
        // Unnamed extended queries and simple queries interleave with the named ones.
        jobs.push(c.query('select $1::text as s', [`plain${k}`])
          .then((r) => assert.equal(r.rows[0].s, `plain${k}`)));
        jobs.push(c.query(`select ${k} as s`).then((r) => assert.equal(r.rows[0].s, k)));
      }
    }
    await Promise.all(jobs);
    // Each client's statements exist in its session (as pg_prepared_statements tells it).
    for (let i = 0; i < 10; i++) {
      const r = await clients[i].query({ name: 'e2e_dup', text: dupSql(i), values: ['last', 1] });
      assert.equal(r.rows[0].v, (i % 2 === 0 ? 'even:' : 'odd:') + 'last');
    }
  } finally {
    for (const c of clients) c.release();
    await pool.end();
  }
});

test('a named statement survives transactions and errors of its client', T, async () => {
  await withClient({}, async (c) => {
    const q = { name: 'e2e_survivor', text: 'select $1::int * 10 as v' };
    assert.equal((await c.query({ ...q, values: [1] })).rows[0].v, 10);
    await c.query('begin');
    assert.equal((await c.query({ ...q, values: [2] })).rows[0].v, 20);
    await c.query('commit');
    await expectPgError(c.query('select 1/0'), '22012');
    assert.equal((await c.query({ ...q, values: [3] })).rows[0].v, 30);
    await c.query('begin');
    await expectPgError(c.query({ ...q, values: ['notanint'] }), '22P02');
    await c.query('rollback');
    assert.equal((await c.query({ ...q, values: [4] })).rows[0].v, 40);
    // Deallocate via SQL, then the driver's cached name no longer exists on the server.
    await c.query('deallocate all');
    const r = await c.query('select count(*)::int as n from pg_prepared_statements');
    assert.equal(r.rows[0].n, 0);
  });
});

test("rowMode 'array'", T, async () => {
  await withClient({}, async (c) => {
    const r = await c.query({
      text: 'select 1 as a, $1::text as b, null::int as c from generate_series(1, 3)',
      values: ['x'],
      rowMode: 'array',
    });
    assert.deepEqual(r.rows, [[1, 'x', null], [1, 'x', null], [1, 'x', null]]);
    assert.deepEqual(r.fields.map((f) => f.name), ['a', 'b', 'c']);
    const named = await c.query({ name: 'e2e_arr', text: 'select $1::int, $1::int * 2', values: [21], rowMode: 'array' });
    assert.deepEqual(named.rows, [[21, 42]]);
  });
});

test('errors keep SQLSTATE, position, constraint, detail and the client stays usable', T, async () => {
  await withClient({}, async (c) => {
    let err = await expectPgError(c.query('select 1 fromm e2e_node_t'), '42601');
    assert.equal(err.position, '16');
    assert.equal(err.message, 'syntax error at or near "e2e_node_t"');
    assert.equal(err.severity, 'ERROR');
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);

    err = await expectPgError(c.query('select $1::int fromm e2e_node_t', [1]), '42601');
    assert.equal(err.position, '22');

    await c.query("insert into e2e_node_t (id, name) values (1, 'one')");
    err = await expectPgError(c.query('insert into e2e_node_t (id, name) values ($1, $2)', [1, 'dup']), '23505');
    assert.equal(err.constraint, 'e2e_node_t_pk');
    assert.equal(err.table, 'e2e_node_t');
    assert.equal(err.schema, 'public');
    assert.equal(err.detail, 'Key (id)=(1) already exists.');

    err = await expectPgError(c.query('insert into e2e_node_t (id) values (2)'), '23502');
    assert.equal(err.column, 'name');
    assert.equal(err.table, 'e2e_node_t');

    err = await expectPgError(c.query('select e2e_no_such_fn($1::int)', [1]), '42883');
    assert.match(err.hint, /^No function matches/);

    err = await expectPgError(c.query({ name: 'e2e_err_named', text: 'select $1::int / 0', values: [1] }), '22012');
    await expectPgError(c.query('select * from e2e_no_such_table'), '42P01');

    const r = await c.query('select count(*)::int as n from e2e_node_t where id = $1', [1]);
    assert.equal(r.rows[0].n, 1);
    await c.query('delete from e2e_node_t where id = 1');
  });
});

test('statement_timeout in the client config (startup parameter) is in effect', T, async () => {
  await withClient({ statement_timeout: 150, application_name: 'e2e_node_app' }, async (c) => {
    for (let i = 0; i < 5; i++) {
      const r = await c.query("select current_setting('statement_timeout') as st, current_setting('application_name') as app");
      assert.deepEqual(r.rows[0], { st: '150ms', app: 'e2e_node_app' });
    }
    const t0 = Date.now();
    const err = await expectPgError(c.query('select pg_sleep(3)'), '57014');
    assert.match(err.message, /statement timeout/);
    assert.ok(Date.now() - t0 < 2500, `timeout took ${Date.now() - t0} ms`);
    assert.equal((await c.query('select 5 as v')).rows[0].v, 5);
    await expectPgError(c.query({ name: 'e2e_sleep', text: 'select pg_sleep($1)', values: [2] }), '57014');
  });
  // A client without it is not affected.
  await withClient({}, async (c) => {
    const r = await c.query('select pg_sleep(0.3)::text as s');
    assert.equal(r.rows[0].s, '');
    assert.notEqual((await c.query('show statement_timeout')).rows[0].statement_timeout, '150ms');
  });
});

test('transaction BEGIN/INSERT/ROLLBACK and COMMIT, seen from another client', T, async () => {
  const a = newClient();
  const b = newClient();
  await a.connect();
  await b.connect();
  try {
    await a.query('begin');
    await a.query('insert into e2e_node_t (id, name) values ($1, $2), ($3, $4)', [10, 'ten', 11, 'eleven']);
    assert.equal((await a.query('select count(*)::int as n from e2e_node_t where id in (10, 11)')).rows[0].n, 2);
    assert.equal((await b.query('select count(*)::int as n from e2e_node_t where id in (10, 11)')).rows[0].n, 0);
    await a.query('rollback');
    assert.equal((await a.query('select count(*)::int as n from e2e_node_t where id in (10, 11)')).rows[0].n, 0);
    assert.equal((await b.query('select count(*)::int as n from e2e_node_t where id in (10, 11)')).rows[0].n, 0);

    await a.query('begin');
    await a.query('insert into e2e_node_t (id, name) values ($1, $2)', [12, 'twelve']);
    await a.query('commit');
    assert.equal((await b.query('select name from e2e_node_t where id = $1', [12])).rows[0].name, 'twelve');
    await b.query('delete from e2e_node_t where id = 12');
  } finally {
    await a.end();
    await b.end();
  }
});

test('a query returning 10000 rows', T, async () => {
  await withClient({}, async (c) => {
    const r = await c.query('select g as n, md5(g::text) as h, repeat($1, g % 20) as pad from generate_series(1, 10000) g', ['ü']);
    assert.equal(r.rows.length, 10000);
    assert.equal(r.rowCount, 10000);
    let sum = 0;
    for (let i = 0; i < r.rows.length; i++) {
      const row = r.rows[i];
      assert.equal(row.n, i + 1);
      sum += row.n;
      if (i % 997 === 0) {
        assert.equal(row.h, crypto.createHash('md5').update(String(i + 1)).digest('hex'));
        assert.equal(row.pad, 'ü'.repeat((i + 1) % 20));
      }
    }
    assert.equal(sum, 10000 * 10001 / 2);
  });
});

test('bytea roundtrip', T, async () => {
  await withClient({}, async (c) => {
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const big = crypto.randomBytes(1024 * 1024 + 3);
    await c.query('insert into e2e_node_t (id, name, data) values ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)',
      [20, 'all', all, 21, 'big', big, 22, 'empty', Buffer.alloc(0)]);
    const r = await c.query('select id, data, length(data) as len, md5(data) as h from e2e_node_t where id between 20 and 22 order by id');
    assert.equal(r.rows.length, 3);
    assert.ok(Buffer.isBuffer(r.rows[0].data));
    assert.ok(r.rows[0].data.equals(all));
    assert.ok(r.rows[1].data.equals(big));
    assert.equal(r.rows[1].len, 1024 * 1024 + 3);
    assert.equal(r.rows[1].h, crypto.createHash('md5').update(big).digest('hex'));
    assert.equal(r.rows[2].data.length, 0);
    const echo = await c.query('select $1::bytea as b', [all]);
    assert.ok(echo.rows[0].b.equals(all));
    await c.query('delete from e2e_node_t where id between 20 and 22');
  });
});

// INSERT ... VALUES without a column list, with parameters (issue 11). Through pgshard,
// rt_users and rt_orders are sharded on one map by id and user_id (integration/cluster.sh's
// config): pgshard writes the column list in from the catalog and routes each row by its key.
// Placement is checked on each shard (SHARD_PORTS) against rows of the same keys written by
// a plain INSERT with a column list, routed as every other statement.
function int8(v) {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(v));
  return b;
}

test('INSERT without a column list, parameterized: unnamed, named, binary, several shards', T, async () => {
  await withClient({}, async (c) => {
    await c.query('drop table if exists rt_users, rt_orders');
    await c.query('create table rt_users (id bigint primary key, name text, n int default 0)');
    await c.query('create table rt_orders (user_id bigint, item text)');
    const ids = [];
    for (let id = 1; id <= 12; id++) { // unnamed statements, text parameters
      const r = await c.query('insert into rt_users values ($1, $2)', [id, `u${id}`]);
      assert.equal(r.rowCount, 1);
      ids.push(id);
    }
    for (let id = 101; id <= 112; id++) { // one named statement, bound again and again
      await c.query({ name: 'nocols_ins', text: 'insert into rt_users values ($1, $2, $3)',
        values: [id, `named${id}`, id % 5] });
      ids.push(id);
    }
    for (let id = 201; id <= 206; id++) { // the key as a binary parameter
      await c.query('insert into rt_users values ($1, $2)', [int8(id), 'binary']);
      ids.push(id);
    }
    for (const base of [300, 310]) { // several rows for several shards, RETURNING in order
      const vals = [base + 3, 'm', base + 1, 'm', base + 2, 'm'];
      const r = await c.query({ name: 'nocols_multi',
        text: 'insert into rt_users values ($1, $2), ($3, $4), ($5, $6) returning id', values: vals });
      assert.deepEqual(r.rows.map((x) => x.id), [base + 3, base + 1, base + 2].map(String));
      ids.push(base + 1, base + 2, base + 3);
    }
    const ret = await c.query('insert into rt_users values ($1, $2) returning *', [400, 'ret']);
    assert.deepEqual(ret.rows, [{ id: '400', name: 'ret', n: 0 }]);
    ids.push(400);
    await expectPgError(c.query('insert into rt_users values ($1, $2, $3, $4)', [401, 'x', 1, 'y']), '42601');
    // a column added after the first use (DDL through pgshard empties its column cache)
    await c.query('alter table rt_users add column extra text');
    for (let id = 501; id <= 506; id++) {
      await c.query('insert into rt_users values ($1, $2, $3, $4)', [id, 'new', 7, `x${id}`]);
      ids.push(id);
    }
    const got = await c.query('select id, name, n, extra from rt_users where id = any($1) order by id', [[105, 202, 503]]);
    assert.deepEqual(got.rows, [
      { id: '105', name: 'named105', n: 0, extra: null },
      { id: '202', name: 'binary', n: 0, extra: null },
      { id: '503', name: 'new', n: 7, extra: 'x503' }]);
    assert.equal((await c.query('select count(*)::int as n from rt_users')).rows[0].n, ids.length);
    await c.query(`insert into rt_orders (user_id, item) values ${ids.map((id) => `(${id}, 'o')`).join(', ')}`);
    const ports = (process.env.SHARD_PORTS || '').split(/\s+/).filter(Boolean);
    const seen = [];
    for (const port of ports) {
      await withClient({ port: Number(port) }, async (s) => {
        const users = (await s.query('select id from rt_users order by id')).rows.map((x) => x.id);
        const orders = (await s.query('select user_id from rt_orders order by user_id')).rows.map((x) => x.user_id);
        assert.deepEqual(users, orders, `rows on the shard at port ${port}`);
        seen.push(...users);
      });
    }
    if (ports.length > 0)
      assert.equal(seen.length, ids.length, 'each row on one shard');
    await c.query('drop table rt_users, rt_orders');
  });
});
