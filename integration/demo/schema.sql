-- The demo application's schema and data, loaded through pgshard (psql -f) by
-- integration/demo.sh and by the compose demo's "demo" service. Its placement is in
-- pgshard.ini (integration/pgshard-tables.sh demo N):
--   users, orders  sharded by tenant_id on hash map "tenants": a tenant's users and orders
--                  are on the same shard, so joins and foreign keys between them work there
--   plans          a reference table: a copy on every shard, written on all of them at once
--   events         sharded by event_id on range map "event_ids" (another map: not co-located
--                  with users and orders)
-- Every statement below is ordinary PostgreSQL; pgshard sends DDL to every shard (in two
-- phases: a CREATE that fails on one shard creates the table on none).
\set ON_ERROR_STOP on
SET client_min_messages = warning;  -- no NOTICE for the tables DROP ... IF EXISTS does not find
DROP TABLE IF EXISTS orders, users, plans, events;

CREATE TABLE plans (
    plan_id int PRIMARY KEY,
    name text NOT NULL,
    monthly_price numeric(8, 2) NOT NULL
);

CREATE TABLE users (
    tenant_id bigint NOT NULL,
    user_id bigint NOT NULL,
    email text NOT NULL,
    plan_id int NOT NULL REFERENCES plans,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE orders (
    tenant_id bigint NOT NULL,
    order_id bigint NOT NULL,
    user_id bigint NOT NULL,
    amount numeric(10, 2) NOT NULL,
    status text NOT NULL DEFAULT 'new',
    PRIMARY KEY (tenant_id, order_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users
);

CREATE TABLE events (
    event_id bigint PRIMARY KEY,
    tenant_id bigint NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

-- A reference table's rows go to every shard (one transaction, committed in two phases).
INSERT INTO plans VALUES (1, 'free', 0), (2, 'team', 12.50), (3, 'business', 49);

-- Multi-row INSERTs are split by tenant_id, each shard receives its own rows.
INSERT INTO users (tenant_id, user_id, email, plan_id) VALUES
    (1, 1, 'user1@tenant1.example', 3),
    (1, 2, 'user2@tenant1.example', 1),
    (1, 3, 'user3@tenant1.example', 2),
    (2, 1, 'user1@tenant2.example', 1),
    (2, 2, 'user2@tenant2.example', 2),
    (2, 3, 'user3@tenant2.example', 3),
    (3, 1, 'user1@tenant3.example', 2),
    (3, 2, 'user2@tenant3.example', 3),
    (3, 3, 'user3@tenant3.example', 1),
    (4, 1, 'user1@tenant4.example', 3),
    (4, 2, 'user2@tenant4.example', 1),
    (4, 3, 'user3@tenant4.example', 2),
    (5, 1, 'user1@tenant5.example', 1),
    (5, 2, 'user2@tenant5.example', 2),
    (5, 3, 'user3@tenant5.example', 3),
    (6, 1, 'user1@tenant6.example', 2),
    (6, 2, 'user2@tenant6.example', 3),
    (6, 3, 'user3@tenant6.example', 1);
INSERT INTO orders (tenant_id, order_id, user_id, amount, status) VALUES
    (1, 1, 1, 111.11, 'paid'),
    (1, 2, 2, 134.37, 'new'),
    (1, 3, 3, 28.73, 'new'),
    (1, 4, 1, 124.82, 'new'),
    (2, 1, 1, 171.27, 'paid'),
    (2, 2, 2, 17.28, 'new'),
    (2, 3, 3, 147.09, 'shipped'),
    (2, 4, 1, 27.89, 'paid'),
    (3, 1, 1, 34.72, 'shipped'),
    (3, 2, 2, 24.36, 'new'),
    (3, 3, 3, 78.15, 'new'),
    (3, 4, 1, 194.10, 'shipped'),
    (4, 1, 1, 21.24, 'paid'),
    (4, 2, 2, 20.26, 'paid'),
    (4, 3, 3, 99.89, 'shipped'),
    (4, 4, 1, 52.26, 'new'),
    (5, 1, 1, 192.07, 'paid'),
    (5, 2, 2, 188.58, 'paid'),
    (5, 3, 3, 38.76, 'paid'),
    (5, 4, 1, 127.02, 'new'),
    (6, 1, 1, 184.48, 'new'),
    (6, 2, 2, 189.93, 'new'),
    (6, 3, 3, 72.48, 'shipped'),
    (6, 4, 1, 179.23, 'shipped');

-- events by id ranges: below 1,000,000 on shard 0, each next million on the next shard.
INSERT INTO events (event_id, tenant_id, kind) VALUES
    (101, 1, 'signup'), (102, 2, 'signup'), (103, 3, 'signup'),
    (1000001, 4, 'signup'), (1000002, 5, 'signup'),
    (2000001, 6, 'signup'), (2000002, 1, 'upgrade');
