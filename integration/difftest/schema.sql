-- The tables of the scatter-gather differential test (integration/tests/test_gather.py).
-- Run once on the reference PostgreSQL and once through pgshard, where the integration
-- cluster's pgshard.ini (integration/cluster.sh) places them:
--   dg_items, dg_orders, dg_big, dg_empty  hash map "dg" (bigint key); dg_orders is keyed by
--                                          item_id, so it is co-located with dg_items
--   dg_events                              range map "events" (< 1000 on shard 0, the rest
--                                          on the last shard)
--   dg_countries                           reference table (a copy on every shard)
-- The data is made by dataset.py. Statements end with ';' at the end of a line.

DROP TABLE IF EXISTS dg_countries, dg_items, dg_orders, dg_big, dg_empty, dg_events;

CREATE TABLE dg_countries (
    code text PRIMARY KEY,
    name text NOT NULL,
    region text
);

CREATE TABLE dg_items (
    id bigint PRIMARY KEY,
    cat int,
    grp text,
    name text,
    code varchar(12),
    tag char(4),
    country text,
    price numeric(10, 2),
    qty int,
    weight numeric,
    ratio float8,
    big bigint,
    flag bool,
    d date,
    ts timestamp,
    tstz timestamptz,
    doc jsonb
);

CREATE TABLE dg_orders (
    order_id bigint NOT NULL,
    item_id bigint NOT NULL,
    qty int,
    amount numeric(10, 2),
    placed date,
    status varchar(20),
    PRIMARY KEY (item_id, order_id)
);

CREATE TABLE dg_big (
    id bigint PRIMARY KEY,
    k int,
    v bigint,
    amt numeric(12, 3),
    f float8,
    s text,
    b bool
);

CREATE TABLE dg_empty (
    id bigint PRIMARY KEY,
    v int,
    n numeric,
    f float8,
    s text,
    b bool,
    d date
);

CREATE TABLE dg_events (
    id bigint PRIMARY KEY,
    kind text,
    at timestamptz,
    val int
);
