-- The queries of the scatter-gather differential test (integration/tests/test_gather.py):
-- each runs on one PostgreSQL holding all the rows and through pgshard over the shards, in
-- the simple protocol and in the extended one with text and with binary results, and the
-- answers must be the same.
--
-- Each query is preceded by one annotation line:
--   -- @ NAME ordered      the ORDER BY is total: rows compared in order, exactly
--   -- @ NAME unordered    no ORDER BY (or not a total one that matters): rows compared as
--                          multisets
--   -- @ NAME ties C,...   the ORDER BY has ties: rows compared as multisets, and the listed
--                          output columns (1-based; they must hold the whole sort key)
--                          compared in order
--   -- @ NAME refuse       pgshard must answer SQLSTATE 0A000 where PostgreSQL answers rows
-- A query ends at a line ending with ';' (pqrows' rule); other "--" lines are comments.
-- Queries with LIMIT/OFFSET or DISTINCT ON must have a total ORDER BY, or the rows chosen
-- are not defined.

-- ---------------------------------------------------------------------------------------
-- plain multi-shard SELECTs, no ORDER BY

-- @ plain_items_id_name unordered
SELECT id, name FROM dg_items;

-- @ plain_items_star unordered
SELECT * FROM dg_items;

-- @ plain_orders_star unordered
SELECT * FROM dg_orders;

-- @ plain_big_where unordered
SELECT * FROM dg_big WHERE k = 3;

-- @ plain_empty unordered
SELECT * FROM dg_empty;

-- @ plain_events_range_map unordered
SELECT * FROM dg_events;

-- @ plain_jsonb_columns unordered
SELECT id, doc, doc->'arr' AS arr, doc->'nested' AS nested FROM dg_items WHERE doc IS NOT NULL;

-- @ plain_expressions unordered
SELECT id, name || '!' AS n2, price * 2 AS p2, upper(grp) AS g FROM dg_items WHERE cat = 1;

-- @ plain_limit_zero_unordered unordered
SELECT id FROM dg_big LIMIT 0;

-- ---------------------------------------------------------------------------------------
-- ORDER BY

-- @ order_id_asc ordered
SELECT id, name FROM dg_items ORDER BY id;

-- @ order_id_desc ordered
SELECT id, name FROM dg_items ORDER BY id DESC;

-- @ order_text_collation ordered
SELECT name, id FROM dg_items ORDER BY name, id;

-- @ order_text_desc_nulls_first_by_default ordered
SELECT name, id FROM dg_items ORDER BY name DESC, id;

-- @ order_text_nulls_first ordered
SELECT name, id FROM dg_items ORDER BY name NULLS FIRST, id DESC;

-- @ order_text_desc_nulls_last ordered
SELECT name, id FROM dg_items ORDER BY name DESC NULLS LAST, id;

-- @ order_text_only_key ordered
SELECT name FROM dg_items ORDER BY name;

-- @ order_text_collate_c ordered
SELECT name, id FROM dg_items ORDER BY name COLLATE "C", id;

-- @ order_text_collate_c_desc ordered
SELECT grp, id FROM dg_items ORDER BY grp COLLATE "C" DESC, id DESC;

-- @ order_several_keys ordered
SELECT grp, cat, id FROM dg_items ORDER BY grp, cat DESC NULLS LAST, id;

-- @ order_expression_in_list ordered
SELECT lower(name) AS lname, id FROM dg_items ORDER BY lower(name), id;

-- @ order_expression_not_in_list ordered
SELECT id, name FROM dg_items ORDER BY lower(name), id;

-- @ order_product_expression ordered
SELECT id, price, qty FROM dg_items ORDER BY price * qty DESC NULLS LAST, id;

-- @ order_by_position ordered
SELECT id, name, price FROM dg_items ORDER BY 3, 1;

-- @ order_by_position_desc ordered
SELECT cat, name, id FROM dg_items ORDER BY 2 DESC, 3;

-- @ order_key_not_in_list ordered
SELECT id, name FROM dg_items ORDER BY price, id;

-- @ order_date_desc_infinity ordered
SELECT id, d FROM dg_items ORDER BY d DESC, id;

-- @ order_timestamptz ordered
SELECT id, tstz FROM dg_items ORDER BY tstz, id;

-- @ order_timestamp_desc_nulls_first ordered
SELECT id, ts FROM dg_items ORDER BY ts DESC NULLS FIRST, id;

-- @ order_bool ordered
SELECT id, flag FROM dg_items ORDER BY flag, id;

-- @ order_float8_with_nan ordered
SELECT id, ratio FROM dg_items ORDER BY ratio DESC, id;

-- @ order_bpchar_varchar ordered
SELECT id, tag, code FROM dg_items ORDER BY tag, code, id;

-- @ order_bigint_desc ordered
SELECT id, big FROM dg_items ORDER BY big DESC NULLS LAST, id;

-- @ order_numeric_scales ordered
SELECT id, weight FROM dg_items ORDER BY weight, id;

-- @ order_jsonb_field ordered
SELECT doc->>'k' AS k, id FROM dg_items ORDER BY doc->>'k' NULLS FIRST, id;

-- @ ties_int_key ties 1
SELECT cat, grp FROM dg_items ORDER BY cat;

-- @ ties_text_key_desc ties 1
SELECT name, cat, id FROM dg_items ORDER BY name DESC;

-- @ ties_two_keys ties 1,2
SELECT placed, status, amount FROM dg_orders ORDER BY placed DESC, status;

-- @ ties_bool_desc ties 1
SELECT flag, name FROM dg_items ORDER BY flag DESC;

-- @ ties_date_expression ties 1
SELECT tstz::date AS day, id FROM dg_items ORDER BY tstz::date;

-- @ order_some_shards ordered
SELECT id, name FROM dg_items WHERE id IN (1, 2, 3, 50, 51, 52, 200) ORDER BY name, id;

-- @ order_big_table ordered
SELECT id, k, v, s FROM dg_big ORDER BY s, v, id;

-- ---------------------------------------------------------------------------------------
-- LIMIT / OFFSET

-- @ limit ordered
SELECT id, name FROM dg_items ORDER BY id LIMIT 10;

-- @ limit_offset_text ordered
SELECT id, name FROM dg_items ORDER BY name DESC, id LIMIT 7 OFFSET 5;

-- @ offset_only ordered
SELECT id FROM dg_items ORDER BY id OFFSET 290;

-- @ limit_larger_than_table ordered
SELECT id FROM dg_items ORDER BY id LIMIT 100000;

-- @ limit_zero ordered
SELECT id FROM dg_items ORDER BY id LIMIT 0;

-- @ offset_past_end ordered
SELECT id FROM dg_items ORDER BY id OFFSET 100000;

-- @ limit_numeric_desc ordered
SELECT id, price FROM dg_items ORDER BY price DESC NULLS LAST, id LIMIT 5;

-- @ limit_offset_big ordered
SELECT * FROM dg_big ORDER BY v DESC, id LIMIT 20 OFFSET 100;

-- @ limit_fetch_first ordered
SELECT id, tstz FROM dg_items ORDER BY tstz DESC NULLS LAST, id FETCH FIRST 4 ROWS ONLY;

-- @ limit_all ordered
SELECT id FROM dg_items ORDER BY id LIMIT ALL;

-- @ limit_collate_c_desc_nulls_first ordered
SELECT id, name FROM dg_items ORDER BY name COLLATE "C" DESC NULLS FIRST, id LIMIT 10;

-- @ limit_range_map ordered
SELECT id, kind FROM dg_events ORDER BY at DESC, id LIMIT 15;

-- ---------------------------------------------------------------------------------------
-- aggregates without GROUP BY

-- @ agg_count_star ordered
SELECT count(*) FROM dg_items;

-- @ agg_counts ordered
SELECT count(*), count(name), count(cat), count(doc), count(1) FROM dg_items;

-- @ agg_count_expression ordered
SELECT count(*) AS n, count(*) + 1 AS n1, 'x' AS lit FROM dg_big;

-- @ agg_sums ordered
SELECT sum(qty), sum(cat), sum(big), sum(price), sum(weight), sum(ratio) FROM dg_items WHERE ratio IS DISTINCT FROM 'NaN';

-- @ agg_min_max ordered
SELECT min(id), max(id), min(name), max(name), min(price), max(price), min(weight), max(weight) FROM dg_items;

-- @ agg_min_max_dates ordered
SELECT min(d), max(d), min(ts), max(ts), min(tstz), max(tstz) FROM dg_items;

-- @ agg_min_max_varchar_bpchar ordered
SELECT min(code), max(code), min(tag), max(tag), min(grp COLLATE "C"), max(grp COLLATE "C") FROM dg_items;

-- @ agg_avg ordered
SELECT avg(qty), avg(cat), avg(big), avg(price), avg(weight), avg(ratio) FROM dg_items WHERE ratio IS DISTINCT FROM 'NaN';

-- @ agg_float_with_nan ordered
SELECT sum(ratio), avg(ratio), min(ratio), max(ratio) FROM dg_items;

-- @ agg_bool ordered
SELECT bool_and(flag), bool_or(flag), every(flag) FROM dg_items;

-- @ agg_bool_where ordered
SELECT bool_and(flag), bool_or(flag) FROM dg_items WHERE flag;

-- @ agg_big_table ordered
SELECT count(*), sum(v), avg(v), sum(amt), avg(amt), sum(f), avg(f), min(s), max(s) FROM dg_big;

-- @ agg_jsonb ordered
SELECT max(doc->>'k'), min((doc->>'n')::int), sum((doc->>'n')::int) FROM dg_items;

-- @ agg_expressions ordered
SELECT sum(qty) / count(*) AS a, round(avg(price), 2) AS b, max(price) - min(price) AS c, avg(qty)::int AS d FROM dg_items;

-- @ agg_filter ordered
SELECT count(*) FILTER (WHERE flag), sum(price) FILTER (WHERE cat > 3), avg(qty) FILTER (WHERE name IS NULL) FROM dg_items;

-- @ agg_count_distinct ordered
SELECT count(DISTINCT cat), count(DISTINCT name), count(DISTINCT grp) FROM dg_items;

-- @ agg_sum_distinct ordered
SELECT sum(DISTINCT qty), avg(DISTINCT qty), sum(DISTINCT price) FROM dg_items;

-- @ agg_range_map ordered
SELECT count(*), min(at), max(at), sum(val), avg(val) FROM dg_events;

-- @ agg_bigint_key_expressions ordered
SELECT avg(id), sum(id), max(big)::numeric - min(big) AS spread, sum(big) / count(big) AS mean FROM dg_items;

-- @ agg_expression_error ordered
SELECT count(*) / (count(*) - count(*)) FROM dg_items;

-- @ agg_overflow_error ordered
SELECT max(big) - min(big) FROM dg_items;

-- @ agg_one_shard ordered
SELECT count(*), sum(price) FROM dg_items WHERE id = 7;

-- ---------------------------------------------------------------------------------------
-- empty inputs

-- @ empty_table_aggregates ordered
SELECT count(*), count(v), sum(v), avg(v), sum(n), avg(f), min(s), max(d), bool_and(b), bool_or(b) FROM dg_empty;

-- @ empty_table_group_by unordered
SELECT v, count(*), sum(n) FROM dg_empty GROUP BY v;

-- @ empty_where_aggregates ordered
SELECT count(*), sum(qty), avg(price), max(name), count(DISTINCT cat) FROM dg_items WHERE id < 0;

-- @ empty_where_group_by unordered
SELECT cat, count(*) FROM dg_items WHERE id < 0 GROUP BY cat;

-- @ empty_table_order_limit ordered
SELECT id FROM dg_empty ORDER BY id LIMIT 5;

-- @ empty_table_distinct unordered
SELECT DISTINCT s FROM dg_empty;

-- ---------------------------------------------------------------------------------------
-- GROUP BY, HAVING

-- @ group_unordered unordered
SELECT cat, count(*), sum(qty), avg(price) FROM dg_items GROUP BY cat;

-- @ group_ordered_nulls_first ordered
SELECT cat, count(*) FROM dg_items GROUP BY cat ORDER BY cat NULLS FIRST;

-- @ group_two_columns ordered
SELECT grp, cat, count(*), min(name), max(name) FROM dg_items GROUP BY grp, cat ORDER BY grp, cat;

-- @ group_big_all_aggregates ordered
SELECT k, count(*), sum(v), avg(v), sum(amt), avg(amt), sum(f), avg(f), min(s), max(s), bool_and(b), bool_or(b) FROM dg_big GROUP BY k ORDER BY k;

-- @ group_expression ordered
SELECT k % 5 AS m, count(*), sum(v) FROM dg_big GROUP BY k % 5 ORDER BY 1;

-- @ group_date_trunc ordered
SELECT date_trunc('month', d) AS m, count(*), min(d), max(d) FROM dg_items GROUP BY 1 ORDER BY 1;

-- @ group_lower_text unordered
SELECT lower(name) AS l, count(*) FROM dg_items GROUP BY lower(name);

-- @ group_jsonb_field ordered
SELECT doc->>'k' AS k, count(*), sum((doc->>'n')::int) FROM dg_items GROUP BY doc->>'k' ORDER BY 1;

-- @ group_bool ordered
SELECT flag, count(*), sum(price), avg(weight) FROM dg_items GROUP BY flag ORDER BY flag;

-- @ group_null_only unordered
SELECT cat, count(*), count(cat) FROM dg_items WHERE cat IS NULL GROUP BY cat;

-- @ group_aggregates_of_nulls unordered
SELECT grp, sum(cat), avg(cat), min(cat), max(cat), bool_or(cat > 0) FROM dg_items WHERE cat IS NULL GROUP BY grp;

-- @ group_order_by_aggregate ordered
SELECT status, count(*), sum(amount), avg(qty) FROM dg_orders GROUP BY status ORDER BY count(*) DESC, status;

-- @ group_expressions_over_aggregates ordered
SELECT cat, sum(qty) / count(*), round(avg(price), 2), max(price) - min(price), avg(qty)::int FROM dg_items GROUP BY cat ORDER BY cat;

-- @ group_round_float_avg ordered
SELECT k, round(avg(f)::numeric, 3) AS af, sum(v) * 2 + 1 AS x, coalesce(max(s), '?') AS ms FROM dg_big GROUP BY k ORDER BY k;

-- @ group_filter ordered
SELECT grp, count(*) FILTER (WHERE qty > 5), sum(qty) FILTER (WHERE flag) FROM dg_items GROUP BY grp ORDER BY grp;

-- @ group_count_distinct ordered
SELECT k % 7 AS m, count(DISTINCT s), sum(DISTINCT v) FROM dg_big GROUP BY 1 ORDER BY 1;

-- @ group_dates_minmax ordered
SELECT cat, min(tstz), max(tstz), min(ts), max(d) FROM dg_items GROUP BY cat ORDER BY cat;

-- @ group_key_not_selected unordered
SELECT count(*), sum(v) FROM dg_big GROUP BY k HAVING count(*) > 80;

-- @ having_count ordered
SELECT cat, count(*) FROM dg_items GROUP BY cat HAVING count(*) > 30 ORDER BY cat;

-- @ having_on_aggregates_not_selected ordered
SELECT k, sum(v) FROM dg_big GROUP BY k HAVING sum(v) > 0 AND min(f) >= 1 ORDER BY k;

-- @ having_bool_or unordered
SELECT grp FROM dg_items GROUP BY grp HAVING bool_or(flag);

-- @ having_avg ordered
SELECT status, avg(amount) FROM dg_orders GROUP BY status HAVING avg(amount) > 240 ORDER BY 2 DESC, 1;

-- @ group_order_aggregate_limit ordered
SELECT k, sum(v) AS total FROM dg_big GROUP BY k ORDER BY total DESC, k LIMIT 5;

-- @ group_order_count_limit ordered
SELECT name, count(*) FROM dg_items GROUP BY name ORDER BY count(*) DESC, name LIMIT 3;

-- @ group_order_count_limit_offset ordered
SELECT item_id, count(*) AS n, sum(amount) FROM dg_orders GROUP BY item_id ORDER BY n DESC, item_id LIMIT 10 OFFSET 2;

-- @ group_range_map ordered
SELECT kind, count(*), min(at), max(at), sum(val) FROM dg_events GROUP BY kind ORDER BY kind;

-- ---------------------------------------------------------------------------------------
-- DISTINCT

-- @ distinct_unordered unordered
SELECT DISTINCT cat FROM dg_items;

-- @ distinct_two_columns ordered
SELECT DISTINCT grp, flag FROM dg_items ORDER BY grp, flag;

-- @ distinct_expression ordered
SELECT DISTINCT lower(name) FROM dg_items ORDER BY 1;

-- @ distinct_text_collation ordered
SELECT DISTINCT name FROM dg_items ORDER BY name DESC;

-- @ distinct_on_first_id ordered
SELECT DISTINCT ON (cat) cat, id, name FROM dg_items ORDER BY cat, id;

-- @ distinct_on_max_price ordered
SELECT DISTINCT ON (grp) grp, price, id FROM dg_items ORDER BY grp, price DESC NULLS LAST, id;

-- @ distinct_jsonb unordered
SELECT DISTINCT doc->'nested' AS nested FROM dg_items;

-- ---------------------------------------------------------------------------------------
-- joins: co-located (dg_orders.item_id is on dg_items' map) and with the reference table

-- @ join_colocated_ordered ordered
SELECT i.id, i.name, o.order_id, o.amount FROM dg_items i JOIN dg_orders o ON o.item_id = i.id ORDER BY o.order_id;

-- @ join_colocated_unordered unordered
SELECT i.id, o.qty FROM dg_items i JOIN dg_orders o ON o.item_id = i.id WHERE o.status = 'paid';

-- @ join_colocated_group ordered
SELECT i.grp, count(*), sum(o.amount), avg(o.qty) FROM dg_items i JOIN dg_orders o ON o.item_id = i.id GROUP BY i.grp ORDER BY i.grp;

-- @ join_colocated_left_count_limit ordered
SELECT i.id, count(o.order_id) FROM dg_items i LEFT JOIN dg_orders o ON o.item_id = i.id GROUP BY i.id ORDER BY count(o.order_id) DESC, i.id LIMIT 10;

-- @ join_reference_ordered ordered
SELECT i.id, c.name FROM dg_items i JOIN dg_countries c ON c.code = i.country ORDER BY c.name, i.id;

-- @ join_reference_group ordered
SELECT c.region, count(*), avg(i.price), max(c.name) FROM dg_items i JOIN dg_countries c ON c.code = i.country GROUP BY c.region ORDER BY c.region;

-- @ reference_only ordered
SELECT code, name FROM dg_countries ORDER BY name;

-- ---------------------------------------------------------------------------------------
-- parameters ("--$" values, untyped text; the extended-protocol modes only): in HAVING, in the
-- select list over aggregates, in ORDER BY expressions, LIMIT/OFFSET; typed by the server

-- @ param_having_numeric_sum ordered
--$ 1000.5
SELECT status, sum(amount) AS paid FROM dg_orders GROUP BY status HAVING sum(amount) > $1 ORDER BY status;

-- @ param_where_and_having ordered
--$ 10 | 5
SELECT cat, count(*) FROM dg_items WHERE price > $1 GROUP BY cat HAVING count(*) >= $2 ORDER BY cat;

-- @ param_having_twice ordered
--$ 50
SELECT k, count(*) FROM dg_big GROUP BY k HAVING count(*) > $1 AND sum(v) > $1 * 10 ORDER BY k;

-- @ param_having_without_group_by ordered
--$ 0
SELECT count(*), sum(v) FROM dg_big HAVING count(*) > $1;

-- @ param_having_filters_everything ordered
--$ 1000000
SELECT count(*), sum(v) FROM dg_big HAVING count(*) > $1;

-- @ param_select_list_over_aggregates ordered
--$ 2 | 3
SELECT k, round(avg(v), $1) AS a, sum(v) * $2 AS s2, max(amt) - $2 AS m FROM dg_big GROUP BY k ORDER BY k;

-- @ param_bare_in_select_list ordered
--$ hello
SELECT k, $1 AS label, count(*) FROM dg_big GROUP BY k ORDER BY k;

-- @ param_order_by_expression ordered
--$ 5000
SELECT k, sum(v) FROM dg_big GROUP BY k ORDER BY abs(sum(v) - $1), k;

-- @ param_final_limit_offset ordered
--$ 3 | 2
SELECT k, count(*) FROM dg_big GROUP BY k ORDER BY k LIMIT $1 OFFSET $2;

-- @ param_having_and_limit ordered
--$ 90 | 2
SELECT k, count(*) FROM dg_big GROUP BY k HAVING count(*) > $1 ORDER BY count(*) DESC, k LIMIT $2;

-- @ param_having_bad_value ordered
--$ abc
SELECT cat, count(*) FROM dg_items GROUP BY cat HAVING count(*) > $1 ORDER BY cat;

-- @ param_having_null ordered
--$ \N
SELECT cat, count(*) FROM dg_items GROUP BY cat HAVING count(*) > $1 ORDER BY cat;

-- @ param_streaming_limit_offset ordered
--$ 4 | 3
SELECT id, name FROM dg_items ORDER BY id LIMIT $1 OFFSET $2;

-- @ param_distinct_select_list ordered
--$ 7
SELECT DISTINCT cat, cat + $1::int AS c2 FROM dg_items ORDER BY cat;

-- ---------------------------------------------------------------------------------------
-- refused across shards: one PostgreSQL answers rows, pgshard must answer 0A000

-- @ refuse_window_row_number refuse
SELECT id, row_number() OVER (ORDER BY id) FROM dg_items;

-- @ refuse_window_partition refuse
SELECT k, sum(v) OVER (PARTITION BY k) FROM dg_big;

-- @ refuse_window_rank_limit refuse
SELECT id, rank() OVER (ORDER BY price DESC) FROM dg_items ORDER BY id LIMIT 5;

-- jsonb has an order of its own (objects by size, then keys, ...); pgshard does not merge by it
-- @ refuse_order_by_jsonb refuse
SELECT id, doc FROM dg_items ORDER BY doc, id;

-- @ refuse_ordered_set_aggregate refuse
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM dg_big;
