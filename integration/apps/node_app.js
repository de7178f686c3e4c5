// A small multi-tenant ledger written with node-postgres ("pg") and pg-cursor, the way their
// documentation writes one: a Pool, parameterized queries (the extended protocol), named
// prepared statements, transactions on a client checked out of the pool, a cursor read in
// pages. integration/tests/test_apps.py runs it through pgshard and against one PostgreSQL
// and compares what it prints.
//
// The database comes from libpq's environment variables, which node-postgres reads itself
// (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).
//
//   NODE_PATH=integration/node_modules node integration/apps/node_app.js > out.json
//
// Output: {"app": "node", "steps": [{"step": NAME, "answers": [[WHAT, VALUE], ...]}, ...],
// "dump": {TABLE: rows ordered by a natural key}}; ids as {"$id": [TABLE, VALUE]} (see
// test_apps.py). An error the database gives is an answer ({"error": SQLSTATE, ...}).
//
// Tables (pgshard.ini of integration/cluster.sh): app_accounts and app_payments, sharded by
// tenant_id on the map of the SQLAlchemy app's tables.
'use strict';

const { Pool } = require('pg');
const Cursor = require('pg-cursor');

const TENANTS = [11, 12, 13, 14, 15, 16, 17, 18];

const pool = new Pool({ max: 4 });
const steps = [];

function step(name) {
  steps.push({ step: name, answers: [] });
}

function answer(what, value) {
  steps[steps.length - 1].answers.push([what, value]);
}

function Id(table, v) {
  return v === null || v === undefined ? null : { $id: [table, v] };
}

function errorOf(err) {
  return { error: err.code || null, message: String(err.message).split('\n')[0],
    constraint: err.constraint || null };
}

// Runs fn(); records its value or the database's error, and goes on.
async function attempt(what, fn) {
  try {
    const v = await fn();
    answer(what, v);
    return v;
  } catch (err) {
    if (!err.code) throw err; // not the database's: a bug in the app
    answer(what, errorOf(err));
    return null;
  }
}

const account = (r) => [r.tenant_id, Id('app_accounts', r.id), r.name, r.balance, r.tags];
const payment = (r) => [r.tenant_id, Id('app_payments', r.id), Id('app_accounts', r.account_id),
  r.amount, r.memo, r.paid_at.toISOString(), r.meta];

async function schema() {
  step('schema');
  await pool.query('DROP TABLE IF EXISTS app_payments, app_accounts');
  await pool.query(`CREATE TABLE app_accounts (
      tenant_id bigint NOT NULL,
      id bigserial,
      name text NOT NULL,
      balance numeric(12, 2) NOT NULL DEFAULT 0 CHECK (balance >= 0),
      tags text[] NOT NULL DEFAULT '{}',
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, name))`);
  await pool.query(`CREATE TABLE app_payments (
      tenant_id bigint NOT NULL,
      id bigserial,
      account_id bigint NOT NULL,
      amount numeric(12, 2) NOT NULL,
      memo text,
      paid_at timestamptz NOT NULL,
      meta jsonb,
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, account_id) REFERENCES app_accounts (tenant_id, id))`);
  const cols = await pool.query(
    `SELECT table_name, column_name, data_type, is_nullable
       FROM information_schema.columns
      WHERE table_name IN ('app_accounts', 'app_payments')
      ORDER BY table_name, ordinal_position`);
  answer('columns', cols.rows.map((r) => [r.table_name, r.column_name, r.data_type, r.is_nullable]));
}

async function accounts() {
  step('accounts');
  // One multi-row INSERT with parameters, rows of every tenant.
  const rows = [];
  for (const t of TENANTS) for (const n of ['cash', 'bank', 'card']) rows.push([t, n, t * 10, [n, 't' + t]]);
  const params = rows.flat();
  const values = rows.map((_, i) => `($${4 * i + 1}, $${4 * i + 2}, $${4 * i + 3}, $${4 * i + 4})`);
  await attempt('multi-row insert returning', async () => {
    const r = await pool.query(
      `INSERT INTO app_accounts (tenant_id, name, balance, tags) VALUES ${values.join(', ')}
       RETURNING tenant_id, id, name, balance, tags`, params);
    return { rowCount: r.rowCount, rows: r.rows.map(account) };
  });
  await attempt('read back', async () => (await pool.query(
    'SELECT * FROM app_accounts ORDER BY tenant_id, name')).rows.map(account));
}

async function payments() {
  step('payments');
  const byTenant = { name: 'accounts-of-tenant',
    text: 'SELECT * FROM app_accounts WHERE tenant_id = $1 ORDER BY name' };
  for (const t of TENANTS) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const accts = (await client.query({ ...byTenant, values: [t] })).rows;
      for (const [i, a] of accts.entries()) {
        for (let k = 1; k <= 3; k++) {
          const amount = (i + 1) * k;
          await client.query({
            name: 'pay',
            text: `INSERT INTO app_payments (tenant_id, account_id, amount, memo, paid_at, meta)
                   VALUES ($1, $2, $3, $4, $5, $6)`,
            values: [t, a.id, amount, k === 2 ? null : `p${k}`,
              new Date(Date.UTC(2024, 4, t, i, k)), { k, tags: a.tags }],
          });
          await client.query('UPDATE app_accounts SET balance = balance - $1 WHERE tenant_id = $2 AND id = $3',
            [amount, t, a.id]);
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      answer('tenant ' + t, errorOf(err));
    } finally {
      client.release();
    }
    await attempt('tenant ' + t + ' accounts', async () =>
      (await pool.query({ ...byTenant, values: [t] })).rows.map(account));
  }
}

async function transfers() {
  step('transfers');
  async function transfer(from, to, amount) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const a = await client.query(
        'UPDATE app_accounts SET balance = balance - $1 WHERE tenant_id = $2 AND name = $3 RETURNING balance',
        [amount, from[0], from[1]]);
      const b = await client.query(
        'UPDATE app_accounts SET balance = balance + $1 WHERE tenant_id = $2 AND name = $3 RETURNING balance',
        [amount, to[0], to[1]]);
      await client.query('COMMIT');
      return [a.rows[0].balance, b.rows[0].balance];
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }
  await attempt('across tenants 11 -> 14', () => transfer([11, 'bank'], [14, 'cash'], 5));
  await attempt('across tenants, overdrawn (check violation, rolled back)',
    () => transfer([12, 'cash'], [15, 'cash'], 1000));
  await attempt('within tenant 13', () => transfer([13, 'card'], [13, 'cash'], 7));
  await attempt('balances', async () => (await pool.query(
    'SELECT tenant_id, name, balance FROM app_accounts WHERE tenant_id = ANY($1) ORDER BY tenant_id, name',
    [[11, 12, 13, 14, 15]])).rows.map((r) => [r.tenant_id, r.name, r.balance]));

  // Concurrent queries on the pool.
  await attempt('concurrent counts', () => Promise.all(TENANTS.map(async (t) =>
    [t, (await pool.query('SELECT count(*)::int AS n FROM app_payments WHERE tenant_id = $1', [t])).rows[0].n])));
}

async function readCursor(what, text, values, pageSize) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const cursor = client.query(new Cursor(text, values));
    const pages = [];
    try {
      for (;;) {
        const rows = await cursor.read(pageSize);
        if (rows.length === 0) break;
        pages.push(rows.map(payment));
      }
    } finally {
      await cursor.close().catch(() => {});
    }
    await client.query('COMMIT');
    return pages;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function cursors() {
  step('cursors');
  await attempt('pg-cursor within tenant 12', () => readCursor('one',
    'SELECT * FROM app_payments WHERE tenant_id = $1 ORDER BY id', [12], 4));
  await attempt('pg-cursor over every tenant', () => readCursor('all',
    'SELECT * FROM app_payments WHERE amount >= $1 ORDER BY tenant_id, id', [3], 5));
}

async function upserts() {
  step('upserts');
  const sql = `INSERT INTO app_accounts (tenant_id, name, balance) VALUES ($1, $2, $3), ($4, $5, $6)
               ON CONFLICT (tenant_id, name) DO UPDATE SET balance = app_accounts.balance + EXCLUDED.balance
               RETURNING tenant_id, id, name, balance, (xmax = 0) AS inserted`;
  await attempt('upsert, one new and one existing, two tenants', async () => {
    const r = await pool.query(sql, [11, 'savings', 100, 16, 'cash', 50]);
    return r.rows.map((x) => [x.tenant_id, Id('app_accounts', x.id), x.name, x.balance, x.inserted])
      .sort((a, b) => a[0] - b[0]);
  });
  await attempt('upsert do nothing', async () => (await pool.query(
    'INSERT INTO app_accounts (tenant_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [12, 'cash'])).rowCount);
}

async function reports() {
  step('reports');
  const queries = [
    ['count', 'SELECT count(*) FROM app_payments', []],
    ['sum per tenant', 'SELECT tenant_id, sum(amount), count(*) FROM app_payments GROUP BY tenant_id ORDER BY tenant_id', []],
    ['biggest balances', 'SELECT tenant_id, name, balance FROM app_accounts ORDER BY balance DESC, tenant_id, name LIMIT $1', [4]],
    ['memo counts', 'SELECT memo, count(*) FROM app_payments GROUP BY memo ORDER BY memo NULLS FIRST', []],
    ['json and arrays', `SELECT meta->>'k' AS k, count(DISTINCT tenant_id) FROM app_payments
       WHERE meta->'tags' ? $1 GROUP BY 1 ORDER BY 1`, ['bank']],
    ['join with accounts', `SELECT a.tenant_id, a.name, sum(p.amount) AS paid FROM app_accounts a
       JOIN app_payments p ON p.tenant_id = a.tenant_id AND p.account_id = a.id
       GROUP BY a.tenant_id, a.name HAVING sum(p.amount) > $1 ORDER BY paid DESC, a.tenant_id, a.name`, [10]],
    ['rows mode', { text: 'SELECT tenant_id, name FROM app_accounts WHERE tenant_id = $1 ORDER BY name', rowMode: 'array' }, [13]],
  ];
  for (const [what, q, values] of queries) {
    await attempt(what, async () => {
      const r = await pool.query(q, values);
      return { fields: r.fields.map((f) => [f.name, f.dataTypeID]), rows: r.rows };
    });
  }
}

async function changes() {
  step('updates and deletes');
  await attempt('update over every tenant', async () => (await pool.query(
    'UPDATE app_payments SET memo = $1 WHERE memo IS NULL', ['none'])).rowCount);
  await attempt('delete returning over every tenant', async () => (await pool.query(
    'DELETE FROM app_payments WHERE amount > $1 RETURNING tenant_id, id', [8])).rows
    .map((r) => [r.tenant_id, r.id]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([t, i]) => [t, Id('app_payments', i)]));
  await attempt('foreign key violation', async () => (await pool.query(
    'INSERT INTO app_payments (tenant_id, account_id, amount, paid_at) VALUES ($1, $2, 1, now())',
    [11, '999999999'])).rowCount);
}

async function dump() {
  const a = await pool.query('SELECT * FROM app_accounts ORDER BY tenant_id, name');
  const p = await pool.query(`SELECT p.* FROM app_payments p JOIN app_accounts a
      ON a.tenant_id = p.tenant_id AND a.id = p.account_id ORDER BY p.tenant_id, a.name, p.paid_at`);
  return { app_accounts: a.rows.map(account), app_payments: p.rows.map(payment) };
}

async function main() {
  for (const s of [schema, accounts, payments, transfers, cursors, upserts, reports, changes]) await s();
  const out = { app: 'node', steps, dump: await dump() };
  await pool.end();
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
