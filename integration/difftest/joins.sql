-- The joins across shards of the differential test (integration/tests/test_joins.py runs
-- integration/tests/test_gather.py's harness on this file): each query runs on one PostgreSQL
-- holding all the rows and through pgshard over the shards, in the simple protocol and in
-- the extended one with text and with binary results, and the answers must be the same.
-- The tables and data are the scatter-gather test's (schema.sql, dataset.py):
--   dg_items (key id), dg_orders (key item_id), dg_big (key id): hash map "dg"
--   dg_events (key id): range map "events" (< 1000 on shard 0, the rest on the last shard)
-- so every join below is one the shards cannot run alone: two tables of "dg" joined on other
-- columns than their keys, or a "dg" table joined to dg_events.
-- Annotations as in corpus.sql: ordered, unordered, ties C,..., refuse.

-- ---------------------------------------------------------------------------------------
-- inner joins on columns that are not the keys (one map)

-- @ j_items_big_on_cat ordered
SELECT i.id, i.name, b.id AS bid, b.v FROM dg_items i JOIN dg_big b ON b.k = i.cat
WHERE i.id < 40 ORDER BY i.id, b.id;

-- @ j_comma_form_filters_both_sides ordered
SELECT i.id, b.id AS bid, b.s FROM dg_items i, dg_big b
WHERE b.k = i.cat AND i.id BETWEEN 10 AND 30 AND b.v > 30000 ORDER BY 1, 2;

-- @ j_drive_pinned_to_one_shard ordered
SELECT i.id, i.cat, b.id AS bid FROM dg_items i JOIN dg_big b ON b.k = i.cat
WHERE i.id = 5 ORDER BY b.id;

-- @ j_drive_pinned_by_in_list ordered
SELECT i.id, b.id AS bid FROM dg_items i JOIN dg_big b ON i.cat = b.k
WHERE i.id IN (3, 17, 250) AND b.id < 500 ORDER BY 1, 2;

-- @ j_probe_by_its_shard_key ordered
SELECT o.order_id, o.item_id, i.name, i.price FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
WHERE o.item_id = 8 ORDER BY o.order_id;

-- @ j_probe_by_key_all_drive_rows ordered
SELECT o.order_id, o.status, i.id, i.grp FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
ORDER BY o.order_id, o.item_id;

-- @ j_star_all_types ordered
SELECT * FROM dg_orders o JOIN dg_items i ON i.id = o.order_id WHERE o.order_id < 60
ORDER BY o.order_id, o.item_id;

-- @ j_bigint_to_int_key ordered
SELECT b.id, b.k, i.id AS item, i.cat FROM dg_big b JOIN dg_items i ON i.id = b.k
WHERE b.id < 200 ORDER BY b.id;

-- @ j_date_keys ordered
SELECT o.order_id, o.placed, i.id FROM dg_orders o JOIN dg_items i ON i.d = o.placed
WHERE o.order_id < 120 ORDER BY o.order_id, i.id;

-- @ j_numeric_keys ordered
SELECT o.order_id, o.amount, i.id, i.price FROM dg_orders o JOIN dg_items i ON i.price = o.amount
ORDER BY o.order_id, o.item_id, i.id;

-- @ j_numeric_keys_to_int_column ordered
SELECT i.id, i.price, b.id AS bid FROM dg_items i JOIN dg_big b ON b.k = i.price
WHERE i.id < 150 ORDER BY 1, 3;

-- @ j_bigint_keys_past_int4_to_int_column ordered
SELECT i.id, b.id AS bid FROM dg_items i JOIN dg_big b ON b.k = i.big WHERE i.id < 50 ORDER BY 1, 2;

-- @ j_float_keys_to_int_column ordered
SELECT i.id, i.ratio, b.id AS bid FROM dg_items i JOIN dg_big b ON b.k = i.ratio
WHERE i.id < 60 AND b.id < 400 ORDER BY 1, 3;

-- ---------------------------------------------------------------------------------------
-- NULL and duplicate join keys, text keys in the database's collation

-- @ j_null_keys_never_match ordered
SELECT count(*), count(a.qty), count(b.k), sum(b.v) FROM dg_items a JOIN dg_big b ON b.k = a.qty;

-- @ j_duplicate_keys_both_sides ordered
SELECT a.grp, count(*) AS n FROM dg_items a JOIN dg_items b ON b.grp = a.grp
GROUP BY a.grp ORDER BY a.grp;

-- @ j_text_keys_odd_characters ordered
SELECT a.id, b.id AS bid, a.name FROM dg_items a JOIN dg_items b ON b.name = a.name
WHERE a.id < 120 AND b.id <> a.id ORDER BY 1, 2;

-- @ j_text_key_order_by_collation ties 1
SELECT a.code, b.id FROM dg_items a JOIN dg_items b ON b.code = a.code
WHERE a.id < 100 ORDER BY a.code;

-- @ j_varchar_to_text ordered
SELECT o.order_id, o.status, i.id FROM dg_orders o JOIN dg_items i ON i.grp = o.status
WHERE o.order_id < 300 ORDER BY 1, 3;

-- ---------------------------------------------------------------------------------------
-- tables of different maps

-- @ j_items_events_by_event_key ordered
SELECT i.id, i.name, e.kind, e.val FROM dg_items i JOIN dg_events e ON e.id = i.id ORDER BY i.id;

-- @ j_events_drive_on_one_range_shard ordered
SELECT e.id, e.kind, i.name FROM dg_events e JOIN dg_items i ON i.id = e.id
WHERE e.id < 200 ORDER BY e.id;

-- @ j_events_big_non_key ordered
SELECT e.id, e.val, b.id AS bid FROM dg_events e JOIN dg_big b ON b.k = e.val
WHERE e.id > 1500 AND b.id < 1000 ORDER BY 1, 3;

-- @ j_events_orders_qty ordered
SELECT e.kind, count(*), sum(o.amount) FROM dg_events e JOIN dg_orders o ON o.qty = e.val
GROUP BY e.kind ORDER BY e.kind NULLS FIRST;

-- ---------------------------------------------------------------------------------------
-- with reference tables (they stay in the final statement, on its shard)

-- @ j_with_reference_table ordered
SELECT i.id, c.name, b.id AS bid FROM dg_items i JOIN dg_big b ON b.k = i.cat
JOIN dg_countries c ON c.code = i.country WHERE i.id < 40 AND c.region = 'Europe' ORDER BY 1, 3;

-- @ j_with_reference_table_comma_form ordered
SELECT i.id, e.kind, c.region FROM dg_items i, dg_events e, dg_countries c
WHERE e.id = i.id AND c.code = i.country ORDER BY i.id;

-- @ j_reference_subquery_in_where ordered
SELECT i.id, e.val FROM dg_items i JOIN dg_events e ON e.id = i.id
WHERE i.country IN (SELECT code FROM dg_countries WHERE region = 'Asia') ORDER BY i.id;

-- @ j_reference_grouped ordered
SELECT c.region, count(*), sum(o.qty) FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
JOIN dg_countries c ON c.code = i.country GROUP BY c.region ORDER BY c.region NULLS FIRST;

-- ---------------------------------------------------------------------------------------
-- three and four tables, step by step

-- @ t_chain_three_maps ordered
SELECT i.id, e.val, b.id AS bid FROM dg_items i JOIN dg_events e ON e.id = i.id
JOIN dg_big b ON b.k = e.val WHERE b.id < 300 ORDER BY 1, 3;

-- @ t_star_from_one_table ordered
SELECT o.order_id, i.name, e.kind FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
JOIN dg_events e ON e.id = o.order_id WHERE o.item_id < 100 ORDER BY o.order_id, o.item_id;

-- @ t_co_located_pair_and_another_map ordered
SELECT i.id, o.order_id, e.kind FROM dg_items i JOIN dg_orders o ON o.item_id = i.id
JOIN dg_events e ON e.id = o.order_id WHERE i.id BETWEEN 10 AND 60 ORDER BY 1, 2;

-- @ t_three_grouped ordered
SELECT e.kind, count(*), sum(b.v) FROM dg_events e JOIN dg_items i ON i.id = e.id
JOIN dg_big b ON b.k = i.cat GROUP BY e.kind ORDER BY e.kind NULLS FIRST;

-- @ t_four_tables_with_reference ordered
SELECT i.id, c.name, o.order_id, e.val, b.id AS bid FROM dg_items i
JOIN dg_countries c ON c.code = i.country JOIN dg_orders o ON o.order_id = i.id
JOIN dg_events e ON e.id = i.id JOIN dg_big b ON b.id = o.order_id
WHERE i.id < 200 ORDER BY 1, 3, o.item_id;

-- @ t_chain_keys_of_another_type ordered
SELECT i.id, b.f, e.id AS eid FROM dg_items i JOIN dg_big b ON b.id = i.id
JOIN dg_events e ON e.val = b.f WHERE i.id IN (2, 5) ORDER BY 1, 3;

-- @ t_three_match_nothing ordered
SELECT i.id FROM dg_items i JOIN dg_empty x ON x.v = i.qty JOIN dg_big b ON b.k = x.v ORDER BY 1;

-- ---------------------------------------------------------------------------------------
-- outer joins

-- @ j_left_keeps_unmatched ordered
SELECT i.id, e.id AS eid, e.kind FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id
WHERE i.id <= 60 ORDER BY i.id;

-- @ j_left_on_filter_nullable_side ordered
SELECT i.id, e.val FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id AND e.val > 0
WHERE i.id <= 100 ORDER BY i.id;

-- @ j_left_on_filter_preserved_side ordered
SELECT i.id, e.kind FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id AND i.cat = 2
WHERE i.id <= 80 ORDER BY i.id;

-- @ j_left_anti_join_shape ordered
SELECT i.id FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id
WHERE e.id IS NULL AND i.id < 50 ORDER BY i.id;

-- @ j_left_where_on_nullable_side ordered
SELECT i.id, e.kind FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id
WHERE e.kind = 'view' OR i.id < 12 ORDER BY i.id;

-- @ j_left_non_key_null_keys ordered
SELECT a.id, b.id AS bid FROM dg_items a LEFT JOIN dg_big b ON b.k = a.qty AND b.id < 300
WHERE a.id < 70 ORDER BY 1, 2 NULLS FIRST;

-- @ j_right_keeps_unmatched ordered
SELECT e.id, i.name FROM dg_items i RIGHT JOIN dg_events e ON i.id = e.id
WHERE e.id < 400 ORDER BY e.id;

-- @ j_right_count ordered
SELECT count(*), count(i.id), count(e.id) FROM dg_items i RIGHT JOIN dg_events e ON i.id = e.id;

-- ---------------------------------------------------------------------------------------
-- joins that match nothing

-- @ j_empty_side ordered
SELECT i.id, e.v FROM dg_items i JOIN dg_empty e ON e.v = i.qty ORDER BY i.id;

-- @ j_empty_side_aggregates ordered
SELECT count(*), sum(e.v), max(i.name) FROM dg_items i JOIN dg_empty e ON e.v = i.qty;

-- @ j_no_key_matches ordered
SELECT i.id, e.kind FROM dg_items i JOIN dg_events e ON e.id = i.id WHERE i.id = 2 ORDER BY 1;

-- @ j_drive_filter_matches_nothing ordered
SELECT i.id, b.id FROM dg_items i JOIN dg_big b ON b.k = i.cat WHERE i.id = 97 ORDER BY 1, 2;

-- @ j_left_empty_side ordered
SELECT i.id, e.s FROM dg_items i LEFT JOIN dg_empty e ON e.id = i.cat WHERE i.id < 20 ORDER BY i.id;

-- ---------------------------------------------------------------------------------------
-- under ORDER BY / LIMIT / OFFSET, GROUP BY / HAVING, DISTINCT, expressions, windows

-- @ j_order_limit ordered
SELECT i.id, b.id AS bid, b.v FROM dg_items i JOIN dg_big b ON b.k = i.cat
WHERE i.id < 100 ORDER BY b.v DESC, b.id, i.id LIMIT 10;

-- @ j_order_limit_offset ordered
SELECT o.order_id, i.name FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
ORDER BY i.name NULLS FIRST, o.order_id, o.item_id LIMIT 15 OFFSET 20;

-- @ j_group_having ordered
SELECT i.country, count(*) AS n, sum(o.qty) AS q, avg(o.amount) AS a
FROM dg_items i JOIN dg_orders o ON o.order_id = i.id
GROUP BY i.country HAVING count(*) > 5 ORDER BY i.country NULLS FIRST;

-- @ j_group_by_both_sides ordered
SELECT i.cat, o.status, count(*), min(o.amount), max(i.price)
FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
GROUP BY i.cat, o.status ORDER BY i.cat NULLS LAST, o.status NULLS LAST;

-- @ j_distinct ordered
SELECT DISTINCT e.kind FROM dg_events e JOIN dg_items i ON i.id = e.id ORDER BY 1 NULLS FIRST;

-- @ j_count_distinct ordered
SELECT count(DISTINCT b.k), count(DISTINCT i.grp) FROM dg_items i JOIN dg_big b ON b.k = i.cat;

-- @ j_expressions ordered
SELECT i.id, i.price * o.qty AS total, upper(i.name) AS uname, o.placed - i.d AS days,
       coalesce(o.status, 'none') || '/' || i.grp AS label
FROM dg_orders o JOIN dg_items i ON i.id = o.order_id WHERE o.order_id < 150
ORDER BY i.id, o.item_id;

-- @ j_window ordered
SELECT i.id, e.val, rank() OVER (ORDER BY e.val NULLS FIRST) AS r
FROM dg_items i JOIN dg_events e ON e.id = i.id ORDER BY r, i.id;

-- @ j_unordered_plain unordered
SELECT i.id, b.id AS bid FROM dg_items i JOIN dg_big b ON b.k = i.cat WHERE i.id < 25;

-- @ j_reference_filter_in_where ordered
SELECT i.id, o.order_id FROM dg_items i JOIN dg_orders o ON o.order_id = i.id
WHERE i.country IN ('fr', 'de') AND o.status IS NOT NULL ORDER BY 1, 2, o.item_id;

-- ---------------------------------------------------------------------------------------
-- semi- and anti-joins: IN and [NOT] EXISTS subqueries over the other table

-- @ s_in_non_key ordered
SELECT i.id, i.cat FROM dg_items i WHERE i.cat IN (SELECT b.k FROM dg_big b WHERE b.v > 40000)
ORDER BY i.id;

-- @ s_in_unqualified ordered
SELECT id FROM dg_items WHERE qty IN (SELECT k FROM dg_big WHERE id < 60) ORDER BY id;

-- @ s_in_probe_by_key ordered
SELECT o.order_id, o.item_id FROM dg_orders o
WHERE o.item_id < 40 AND o.order_id IN (SELECT i.id FROM dg_items i WHERE i.flag) ORDER BY 1, 2;

-- @ s_in_other_map ordered
SELECT e.id, e.kind FROM dg_events e WHERE e.val IN (SELECT i.qty FROM dg_items i WHERE i.cat = 3)
ORDER BY e.id;

-- @ s_exists ordered
SELECT i.id, i.name FROM dg_items i
WHERE EXISTS (SELECT 1 FROM dg_events e WHERE e.id = i.id AND e.val > 0) ORDER BY i.id;

-- @ s_not_exists ordered
SELECT i.id FROM dg_items i WHERE i.id < 90
AND NOT EXISTS (SELECT 1 FROM dg_events e WHERE e.id = i.id) ORDER BY i.id;

-- @ s_not_exists_outer_filter_inside ordered
SELECT i.id FROM dg_items i
WHERE NOT EXISTS (SELECT 1 FROM dg_big b WHERE b.k = i.cat AND i.qty > 5 AND b.v > 49000)
ORDER BY i.id;

-- @ s_exists_grouped ordered
SELECT i.grp, count(*) FROM dg_items i
WHERE EXISTS (SELECT 1 FROM dg_orders o WHERE o.order_id = i.id AND o.status = 'paid')
GROUP BY i.grp ORDER BY i.grp NULLS FIRST;

-- @ s_in_with_nulls_both_sides ordered
SELECT count(*), count(i.qty) FROM dg_items i WHERE i.qty IN (SELECT b.k FROM dg_big b);

-- @ s_correlated_not_in ordered
SELECT i.id FROM dg_items i WHERE i.id < 120
AND i.name NOT IN (SELECT b.s FROM dg_big b WHERE b.k = i.cat AND b.id < 2000) ORDER BY i.id;

-- @ s_correlated_scalar_aggregate ordered
SELECT i.id, (SELECT count(*) FROM dg_big b WHERE b.k = i.cat) AS n,
       (SELECT max(e.val) FROM dg_events e WHERE e.id = i.id) AS m
FROM dg_items i WHERE i.id < 70 ORDER BY i.id;

-- @ s_exists_with_limit_and_group ordered
SELECT i.id FROM dg_items i
WHERE EXISTS (SELECT b.k FROM dg_big b WHERE b.k = i.qty GROUP BY b.k HAVING count(*) > 70 LIMIT 1)
ORDER BY i.id;

-- @ s_join_and_exists ordered
SELECT o.order_id, i.name FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
WHERE o.item_id < 60 AND NOT EXISTS (SELECT 1 FROM dg_events e WHERE e.id = o.order_id)
ORDER BY o.order_id, o.item_id;

-- ---------------------------------------------------------------------------------------
-- uncorrelated subqueries over a sharded table: run first, their answers passed to the
-- statement as parameters (a value, an array, a bool)

-- @ s_not_in_with_a_null_in_the_subquery unordered
SELECT i.id FROM dg_items i WHERE i.qty NOT IN (SELECT b.k FROM dg_big b WHERE b.id < 100);

-- @ s_not_in_without_nulls ordered
SELECT i.id, i.qty FROM dg_items i
WHERE i.qty NOT IN (SELECT b.k FROM dg_big b WHERE b.id < 100 AND b.k IS NOT NULL) ORDER BY i.id;

-- @ s_not_in_an_empty_subquery_keeps_every_row ordered
SELECT i.id, i.qty FROM dg_items i
WHERE i.qty NOT IN (SELECT b.k FROM dg_big b WHERE b.id < 0) AND i.id < 40 ORDER BY i.id;

-- @ s_scalar_avg_of_another_map ordered
SELECT i.id, i.qty FROM dg_items i WHERE i.qty > (SELECT avg(e.val) FROM dg_events e)
ORDER BY i.id;

-- @ s_scalar_in_the_select_list_named_as_postgres_names_it ordered
SELECT i.id, (SELECT max(b.v) FROM dg_big b WHERE b.k = 7), (SELECT count(*) FROM dg_events)
FROM dg_items i WHERE i.id < 20 ORDER BY i.id;

-- @ s_scalar_items_of_other_kinds_named_as_postgres_names_them ordered
SELECT i.id, (SELECT max(b.v)::int FROM dg_big b), (SELECT 1::int FROM dg_big b LIMIT 1),
       (SELECT coalesce(min(b.k), 0) FROM dg_big b), (SELECT CASE WHEN count(*) > 0 THEN 1 END
       FROM dg_big b)
FROM dg_items i WHERE i.id < 3 ORDER BY i.id;

-- @ s_scalar_without_rows_is_null ordered
SELECT i.id, (SELECT b.v FROM dg_big b WHERE b.id = -1) AS v FROM dg_items i WHERE i.id < 4
ORDER BY i.id;

-- @ s_scalar_with_two_rows_is_an_error ordered
SELECT i.id FROM dg_items i WHERE i.qty = (SELECT b.k FROM dg_big b WHERE b.id < 5);

-- @ s_in_on_other_columns_under_or ordered
SELECT i.id, i.qty FROM dg_items i
WHERE i.id < 5 OR i.qty IN (SELECT e.val FROM dg_events e WHERE e.kind = 'view') ORDER BY i.id;

-- @ s_any_and_all_with_other_operators ordered
SELECT i.id, i.cat FROM dg_items i
WHERE i.cat > ANY (SELECT b.k FROM dg_big b WHERE b.id BETWEEN 10 AND 12)
  AND i.cat <> ALL (SELECT e.val FROM dg_events e WHERE e.id < 100) ORDER BY i.id;

-- @ s_exists_uncorrelated ordered
SELECT i.id FROM dg_items i
WHERE i.id < 10 AND EXISTS (SELECT 1 FROM dg_events e WHERE e.kind = 'view') ORDER BY i.id;

-- @ s_not_exists_uncorrelated_empty ordered
SELECT i.id, NOT EXISTS (SELECT 1 FROM dg_big b WHERE b.v < 0) AS none FROM dg_items i
WHERE i.id < 6 AND NOT EXISTS (SELECT * FROM dg_empty) ORDER BY i.id;

-- @ s_reference_table_by_a_subquery ordered
SELECT c.code, c.name FROM dg_countries c
WHERE c.code IN (SELECT i.country FROM dg_items i WHERE i.qty > 10) ORDER BY c.code;

-- @ s_no_from_two_subqueries ordered
SELECT (SELECT count(*) FROM dg_big b WHERE b.v > 1000) AS n, (SELECT min(e.id) FROM dg_events e);

-- @ s_join_and_a_scalar_subquery ordered
SELECT o.order_id, i.name FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
WHERE o.qty > (SELECT avg(b.k) FROM dg_big b) AND o.item_id < 40 ORDER BY 1, 2;

-- @ s_text_values_in_an_array ordered
SELECT b.id, b.s FROM dg_big b
WHERE b.id < 200 AND b.s = ANY (SELECT i.name FROM dg_items i WHERE i.id < 30) ORDER BY b.id;

-- @ s_subquery_with_group_by_and_limit ordered
SELECT i.id FROM dg_items i
WHERE i.cat IN (SELECT b.k FROM dg_big b GROUP BY b.k ORDER BY count(*) DESC, b.k LIMIT 3)
ORDER BY i.id;

-- ---------------------------------------------------------------------------------------
-- parameters ("--$" values, untyped text; the extended-protocol modes only): the driving
-- side's and the probed side's filters take theirs down, the final statement has them all

-- @ j_params_pin_drive ordered
--$ 8
SELECT o.order_id, o.item_id, i.name FROM dg_orders o JOIN dg_items i ON i.id = o.order_id
WHERE o.item_id = $1 ORDER BY o.order_id;

-- @ j_params_both_sides_and_limit ordered
--$ 40 | 30000 | 5
SELECT i.id, b.id AS bid, b.v FROM dg_items i JOIN dg_big b ON b.k = i.cat
WHERE i.id < $1 AND b.v > $2 ORDER BY b.v DESC, b.id, i.id LIMIT $3;

-- @ j_params_text_key ordered
--$ apple
SELECT a.id, b.id AS bid FROM dg_items a JOIN dg_items b ON b.name = a.name
WHERE a.name = $1 ORDER BY 1, 2;

-- @ j_params_numbered_out_of_order ordered
--$ view | 30
SELECT i.id, e.kind FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id
WHERE (e.kind = $1 OR i.id < 5) AND i.id < $2 ORDER BY i.id;

-- @ s_params_and_a_subquery_run_first ordered
--$ 30
SELECT i.id, i.qty FROM dg_items i WHERE i.id < $1 AND i.qty > (SELECT avg(b.k) FROM dg_big b)
ORDER BY i.id;

-- @ j_params_seventy_in_a_list ordered
--$ 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 | 26 | 27 | 28 | 29 | 30 | 31 | 32 | 33 | 34 | 35 | 36 | 37 | 38 | 39 | 40 | 41 | 42 | 43 | 44 | 45 | 46 | 47 | 48 | 49 | 50 | 51 | 52 | 53 | 54 | 55 | 56 | 57 | 58 | 59 | 60 | 61 | 62 | 63 | 64 | 65 | 66 | 67 | 68 | 69 | 70
SELECT i.id, e.kind FROM dg_items i JOIN dg_events e ON e.id = i.id
WHERE i.id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43, $44, $45, $46, $47, $48, $49, $50, $51, $52, $53, $54, $55, $56, $57, $58, $59, $60, $61, $62, $63, $64, $65, $66, $67, $68, $69, $70) ORDER BY i.id;

-- ---------------------------------------------------------------------------------------
-- CTEs and subqueries in FROM over sharded tables: every sharded table fetched whole (the
-- filters of a CTE's own WHERE on its one table go down), the statement over them

-- @ c_cte_over_another_map_joined ordered
WITH x AS (SELECT b.k, count(*) AS n FROM dg_big b WHERE b.v > 100 AND b.k < 10 GROUP BY b.k)
SELECT i.id, x.n FROM dg_items i JOIN x ON x.k = i.cat WHERE i.id < 40 ORDER BY 1;

-- @ c_from_subquery_grouped_on_other_columns ordered
SELECT s.k, s.m FROM (SELECT e.val AS k, max(e.id) AS m FROM dg_events e GROUP BY e.val) s
WHERE s.k > 40 ORDER BY 1;

-- @ c_cte_used_twice ordered
WITH t AS (SELECT b.k, b.v FROM dg_big b WHERE b.id < 50)
SELECT (SELECT count(*) FROM t) AS n, i.id FROM dg_items i WHERE i.cat IN (SELECT k FROM t)
ORDER BY i.id;

-- @ c_from_subquery_with_limit_joined ordered
SELECT s.id, s.name, e.kind FROM
(SELECT i.id, i.name FROM dg_items i ORDER BY i.price DESC NULLS LAST, i.id LIMIT 40) s
JOIN dg_events e ON e.id = s.id ORDER BY 1;

-- @ c_count_of_a_distinct_derived_table ordered
SELECT count(*), sum(s.k) FROM (SELECT DISTINCT b.k FROM dg_big b) s;

-- ---------------------------------------------------------------------------------------
-- FULL joins and outer joins among other joins: every sharded table fetched whole

-- @ j_full_join unordered
SELECT i.id, e.id FROM dg_items i FULL JOIN dg_events e ON e.id = i.id;

-- @ j_full_join_with_on_filter_and_where ordered
SELECT i.id, e.id AS eid, e.kind FROM dg_items i
FULL JOIN dg_events e ON e.id = i.id AND e.kind = 'view'
WHERE i.id IS NULL OR i.id < 20 ORDER BY 1, 2;

-- @ j_outer_join_with_reference unordered
SELECT i.id, e.id FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id
JOIN dg_countries c ON c.code = i.country;

-- @ j_left_join_then_right_join_with_reference ordered
SELECT c.code, i.id, e.kind FROM dg_items i LEFT JOIN dg_events e ON e.id = i.id AND e.val > 0
RIGHT JOIN dg_countries c ON c.code = i.country WHERE i.id IS NULL OR i.id < 30 ORDER BY 1, 2;

-- @ j_five_tables_one_empty unordered
SELECT i.id FROM dg_items i JOIN dg_events e ON e.id = i.id JOIN dg_big b ON b.k = e.val
JOIN dg_orders o ON o.order_id = b.id JOIN dg_empty x ON x.id = o.item_id;

-- @ j_five_tables_chain ordered
SELECT i.id, e.kind, b.id AS bid, o.order_id, i2.name FROM dg_items i
JOIN dg_events e ON e.id = i.id JOIN dg_big b ON b.k = e.val
JOIN dg_orders o ON o.order_id = b.id JOIN dg_items i2 ON i2.id = o.item_id
WHERE i.id < 60 ORDER BY 1, 2, 3, 4, 5;

-- @ j_six_tables_chain_grouped ordered
SELECT i.grp, count(*), count(DISTINCT i3.id) FROM dg_items i
JOIN dg_events e ON e.id = i.id JOIN dg_big b ON b.k = e.val
JOIN dg_orders o ON o.order_id = b.id JOIN dg_items i2 ON i2.id = o.item_id
JOIN dg_items i3 ON i3.cat = i2.cat
WHERE i.id < 40 GROUP BY i.grp ORDER BY i.grp NULLS FIRST;

-- ---------------------------------------------------------------------------------------
-- probe keys that repeat beyond one batch (1000 keys): a row must not come once per batch

-- @ j_int_probe_keys_repeat_across_batches ordered
SELECT count(*), count(DISTINCT i.id), sum(b.v) FROM dg_big b JOIN dg_items i ON i.cat = b.k;

-- @ j_text_probe_keys_repeat_across_batches ordered
SELECT count(*), count(DISTINCT b2.id) FROM dg_big b JOIN dg_big b2 ON b2.s = b.s;

-- ---------------------------------------------------------------------------------------
-- co-located pairs inside larger joins (dg_items.id = dg_orders.item_id, dg_big.id = dg_items.id:
-- one map, equal keys): fetched together by one statement per shard, each table's rows once

-- @ g_pair_then_events_by_order_id ordered
SELECT i.id, i.name, o.order_id, o.qty, e.kind FROM dg_items i JOIN dg_orders o ON o.item_id = i.id
JOIN dg_events e ON e.id = o.order_id WHERE i.id < 80 ORDER BY 1, 3;

-- @ g_pair_probed_by_its_shard_key_null_keys ordered
SELECT e.id, e.val, i.name, o.order_id FROM dg_events e JOIN dg_items i ON i.id = e.val
JOIN dg_orders o ON o.item_id = i.id WHERE e.id < 400 ORDER BY 1, 4;

-- @ g_pair_probed_by_the_second_tables_key ordered
SELECT e.id, o.order_id, i.grp FROM dg_events e JOIN dg_orders o ON o.item_id = e.val
JOIN dg_items i ON i.id = o.item_id WHERE e.id BETWEEN 100 AND 900 ORDER BY 1, 2;

-- @ g_pair_grouped_with_duplicate_partners ordered
SELECT i.grp, count(*) AS n, sum(o.qty) AS q, count(DISTINCT e.id) AS ev, count(DISTINCT i.id) AS items
FROM dg_events e JOIN dg_items i ON i.id = e.val JOIN dg_orders o ON o.item_id = i.id
GROUP BY i.grp ORDER BY i.grp NULLS FIRST;

-- @ g_pair_filters_on_both_tables ordered
SELECT i.id, o.order_id, o.status, e.kind FROM dg_items i JOIN dg_orders o ON o.item_id = i.id
JOIN dg_events e ON e.id = o.order_id
WHERE i.price > 20 AND o.status IS NOT NULL AND e.val >= 0 ORDER BY 1, 2;

-- @ g_pair_comma_form ordered
SELECT i.id, b.v, e.kind FROM dg_items i, dg_big b, dg_events e
WHERE b.id = i.id AND e.val = b.k AND i.cat = 3 ORDER BY 1, 3, 2;

-- @ g_two_pairs_four_tables ordered
SELECT i.id, o.order_id, b.id AS bid, i2.name FROM dg_items i JOIN dg_orders o ON o.item_id = i.id
JOIN dg_big b ON b.k = o.qty JOIN dg_items i2 ON i2.id = b.id WHERE i.id < 30 ORDER BY 1, 2, 3;

-- @ g_self_pair_counts_every_partner ordered
SELECT o.item_id, count(*), sum(o2.qty), count(e.kind) FROM dg_orders o
JOIN dg_orders o2 ON o2.item_id = o.item_id JOIN dg_events e ON e.id = o.order_id
WHERE o.item_id < 50 GROUP BY 1 ORDER BY 1;

-- @ g_pair_with_more_conditions_between_them ordered
SELECT e.id, i.id, o.order_id FROM dg_events e JOIN dg_items i ON i.id = e.val
JOIN dg_orders o ON o.item_id = i.id AND o.qty > i.qty ORDER BY 1, 2, 3;

-- @ g_pair_and_reference_table_grouped ordered
SELECT c.name, count(*), sum(o.amount) FROM dg_events e JOIN dg_items i ON i.id = e.val
JOIN dg_orders o ON o.item_id = i.id JOIN dg_countries c ON c.code = i.country
GROUP BY c.name ORDER BY 1;

-- @ g_pair_matches_nothing ordered
SELECT i.id, o.order_id, e.kind FROM dg_items i JOIN dg_orders o ON o.item_id = i.id
JOIN dg_events e ON e.id = o.order_id WHERE i.id > 5000 ORDER BY 1;

-- @ g_pair_with_an_outer_join_stays_per_table ordered
SELECT i.id, o.order_id, e.kind FROM dg_items i JOIN dg_orders o ON o.item_id = i.id
LEFT JOIN dg_events e ON e.id = o.order_id WHERE i.id < 25 ORDER BY 1, 2;

-- @ g_pair_limit_offset ordered
SELECT e.id, o.order_id FROM dg_events e JOIN dg_items i ON i.id = e.val
JOIN dg_orders o ON o.item_id = i.id ORDER BY e.id DESC, o.order_id LIMIT 7 OFFSET 3;

-- ---------------------------------------------------------------------------------------
-- still refused: pgshard answers 0A000 where PostgreSQL answers rows


-- @ s_refuse_bare_outer_column_in_a_subquery refuse
SELECT i.id FROM dg_items i WHERE i.qty > (SELECT avg(v) FROM dg_big WHERE v > cat);


-- @ j_refuse_no_equality refuse
SELECT i.id, e.id FROM dg_items i JOIN dg_events e ON e.id < i.id WHERE i.id < 3;
