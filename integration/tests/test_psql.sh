#!/usr/bin/env bash
# psql through the target (PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE): describe commands,
# multi-statement query strings, \copy in and out, error reporting and ON_ERROR_STOP.
# Prints "ok - NAME" / "not ok - NAME: why" lines (integration/lib.sh) and exactly
# "N passed, N failed"; exit 1 on failure.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
integration="$(dirname "$here")"
# shellcheck source=integration/lib.sh
. "$integration/lib.sh"
set +e
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# -X: no ~/.psqlrc; every invocation bounded in time.
p() { timeout 60 psql -X "$@"; }
oneline() { tr '\n' ' ' <"$1" | cut -c1-300; }

# expect NAME FILE PATTERN...: every extended regex must match a line of FILE
expect() {
    local name=$1 file=$2 pat
    shift 2
    for pat in "$@"; do
        if ! grep -qE -- "$pat" "$file"; then
            t_fail "$name" "no line matches /$pat/ in: $(oneline "$file")"
            return 1
        fi
    done
    t_pass "$name"
}

# --- setup through the target --------------------------------------------------------------
if p -q -v ON_ERROR_STOP=1 >"$tmp/setup" 2>&1 <<'SQL'
drop table if exists e2e_psql_t;
create table e2e_psql_t (
    id int constraint e2e_psql_t_pk primary key,
    name text not null default 'nobody',
    created timestamptz default now()
);
create index e2e_psql_t_name_idx on e2e_psql_t (name);
comment on table e2e_psql_t is 'e2e psql table';
SQL
then t_pass psql_setup; else t_fail psql_setup "$(oneline "$tmp/setup")"; fi

# --- \d, \dt, \l ------------------------------------------------------------------------------
p -c '\d e2e_psql_t' >"$tmp/d" 2>&1
expect psql_describe_table "$tmp/d" \
    '^ *Table "public\.e2e_psql_t"' \
    '^ *id +\| integer +\| +\| not null \|' \
    "^ *name +\\| text +\\| +\\| not null \\| 'nobody'::text" \
    '^ *created +\| timestamp with time zone \|' \
    '"e2e_psql_t_pk" PRIMARY KEY, btree \(id\)' \
    '"e2e_psql_t_name_idx" btree \(name\)'

p -c '\dt+ e2e_psql*' >"$tmp/dt" 2>&1
expect psql_list_tables "$tmp/dt" '^ *public +\| e2e_psql_t +\| table +\|.*e2e psql table' '\(1 row\)'

db=$(p -At -c 'select current_database()' 2>&1)
p -c '\l' >"$tmp/l" 2>&1
expect psql_list_databases "$tmp/l" 'List of databases' "^ *${db} +\\|" '^ *template1 +\|'

# --- multi-statement query strings ----------------------------------------------------------
p -At -c 'select 1 as a; select 2 as b' >"$tmp/multi" 2>&1
if [ "$(cat "$tmp/multi")" = "$(printf '1\n2')" ]; then t_pass psql_multi_statement
else t_fail psql_multi_statement "got: $(oneline "$tmp/multi")"; fi

# One query string is one implicit transaction: an error rolls back the statements before it.
p -At -c "insert into e2e_psql_t (id) values (9001); select 1/0; insert into e2e_psql_t (id) values (9002)" \
    >"$tmp/multi_err" 2>&1
status=$?
n=$(p -At -c 'select count(*) from e2e_psql_t where id > 9000' 2>&1)
if [ "$status" -eq 1 ] && grep -q 'ERROR:  division by zero' "$tmp/multi_err" && [ "$n" = 0 ]; then
    t_pass psql_multi_statement_implicit_transaction
else
    t_fail psql_multi_statement_implicit_transaction "exit $status, rows after failed string: '$n', output: $(oneline "$tmp/multi_err")"
fi

# --- \copy in and out -------------------------------------------------------------------------
{
    for i in $(seq 1 3000); do
        if [ $((i % 10)) -eq 0 ]; then
            printf '%d,"name %d, ""quoted"" é 😀"\n' "$i" "$i"
        else
            printf '%d,plain %d\n' "$i" "$i"
        fi
    done
} >"$tmp/in.csv"
p -v ON_ERROR_STOP=1 -c "\\copy e2e_psql_t (id, name) from '$tmp/in.csv' with (format csv)" >"$tmp/copy_in" 2>&1
status=$?
if [ "$status" -eq 0 ] && grep -qx 'COPY 3000' "$tmp/copy_in" \
    && [ "$(p -At -c 'select count(*), sum(id) from e2e_psql_t' 2>&1)" = "3000|4501500" ]; then
    t_pass psql_copy_in
else
    t_fail psql_copy_in "exit $status: $(oneline "$tmp/copy_in")"
fi
p -v ON_ERROR_STOP=1 -c "\\copy (select id, name from e2e_psql_t order by id) to '$tmp/out.csv' with (format csv)" \
    >"$tmp/copy_out" 2>&1
status=$?
if [ "$status" -eq 0 ] && grep -qx 'COPY 3000' "$tmp/copy_out" && cmp -s "$tmp/in.csv" "$tmp/out.csv"; then
    t_pass psql_copy_out
else
    t_fail psql_copy_out "exit $status: $(oneline "$tmp/copy_out"); diff: $(diff "$tmp/in.csv" "$tmp/out.csv" 2>&1 | head -n 4 | tr '\n' ' ')"
fi
# A \copy with a bad row fails as a whole, with the line number in the context.
printf '5001,ok\nnot-a-number,bad\n' >"$tmp/bad.csv"
p -v ON_ERROR_STOP=1 -c "\\copy e2e_psql_t (id, name) from '$tmp/bad.csv' with (format csv)" >"$tmp/copy_bad" 2>&1
status=$?
if [ "$status" -ne 0 ] && grep -q 'invalid input syntax for type integer: "not-a-number"' "$tmp/copy_bad" \
    && grep -q 'COPY e2e_psql_t, line 2' "$tmp/copy_bad" \
    && [ "$(p -At -c 'select count(*) from e2e_psql_t where id = 5001' 2>&1)" = 0 ]; then
    t_pass psql_copy_in_bad_row
else
    t_fail psql_copy_in_bad_row "exit $status: $(oneline "$tmp/copy_bad")"
fi

# --- errors and ON_ERROR_STOP -----------------------------------------------------------------
cat >"$tmp/script.sql" <<'SQL'
select 'before' as marker;
select no_such_column from e2e_psql_t;
select 'after' as marker;
SQL
p -At -v ON_ERROR_STOP=1 -f "$tmp/script.sql" >"$tmp/stop" 2>&1
status=$?
if [ "$status" -eq 3 ] && grep -qx before "$tmp/stop" && ! grep -qx after "$tmp/stop" \
    && grep -q 'ERROR:  column "no_such_column" does not exist' "$tmp/stop" \
    && grep -q 'LINE 1: select no_such_column from e2e_psql_t;' "$tmp/stop"; then
    t_pass psql_on_error_stop
else
    t_fail psql_on_error_stop "exit $status (want 3): $(oneline "$tmp/stop")"
fi
p -At -f "$tmp/script.sql" >"$tmp/nostop" 2>&1
status=$?
if [ "$status" -eq 0 ] && grep -qx before "$tmp/nostop" && grep -qx after "$tmp/nostop"; then
    t_pass psql_error_without_stop_continues
else
    t_fail psql_error_without_stop_continues "exit $status: $(oneline "$tmp/nostop")"
fi

# Every error field reaches psql (VERBOSITY verbose prints them).
p -v VERBOSITY=verbose -c "insert into e2e_psql_t (id) values (1)" >"$tmp/verbose" 2>&1
expect psql_error_fields "$tmp/verbose" \
    '^ERROR:  23505: duplicate key value violates unique constraint "e2e_psql_t_pk"' \
    '^DETAIL:  Key \(id\)=\(1\) already exists\.' \
    '^SCHEMA NAME:  public' '^TABLE NAME:  e2e_psql_t' '^CONSTRAINT NAME:  e2e_psql_t_pk' \
    '^LOCATION:  '

# Transactions in a psql script: ROLLBACK undoes, COMMIT keeps, variables and \gset work.
p -At -v ON_ERROR_STOP=1 >"$tmp/txn" 2>&1 <<'SQL'
begin;
delete from e2e_psql_t;
rollback;
begin;
update e2e_psql_t set name = 'committed' where id = 2;
commit;
select count(*) as n from e2e_psql_t \gset
select :n || ' rows', name from e2e_psql_t where id = 2;
SQL
status=$?
if [ "$status" -eq 0 ] && grep -qx '3000 rows|committed' "$tmp/txn"; then
    t_pass psql_transactions_and_gset
else
    t_fail psql_transactions_and_gset "exit $status: $(oneline "$tmp/txn")"
fi

p -q -c 'drop table e2e_psql_t' >/dev/null 2>&1
t_summary
