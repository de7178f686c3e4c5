"""The data of the scatter-gather differential test (integration/tests/test_gather.py).

Every value is computed from the row number with plain arithmetic, so the data is the same on
every run and every machine. rows(table) gives the rows of one table as lists of Python values
(None for NULL, str for everything else that is not NULL); copy_text(rows) turns them into
COPY text format. The tables themselves are in schema.sql; the sharded ones are declared in
the pgshard.ini that integration/cluster.sh writes (dg_*).

What the values are chosen for:
- text that sorts differently under a real collation (en_US.UTF-8) than bytewise: mixed case,
  accents, leading spaces, punctuation, digits as text, the empty string, a tab and a newline;
- duplicates everywhere (ties in ORDER BY, groups of several rows) and many NULLs;
- numeric values of different scales; float8 values that are multiples of 1/8 (exact in
  binary, so a sum does not depend on the order it is added in) plus one NaN;
- bigints near the int8 limit (their sum does not fit in bigint: sum(bigint) is numeric);
- dates with 'infinity', timestamps, timestamptz given with different UTC offsets, jsonb with
  and without the keys the queries read.
The extreme values of weight (numeric, several scales) are unique, so min/max have one
spelling.
"""

TABLES = ["dg_countries", "dg_items", "dg_orders", "dg_big", "dg_empty", "dg_events"]

# The columns of schema.sql, in order (pgshard needs INSERT's column list to find the key).
COLUMNS = {
    "dg_countries": ["code", "name", "region"],
    "dg_items": ["id", "cat", "grp", "name", "code", "tag", "country", "price", "qty", "weight",
                 "ratio", "big", "flag", "d", "ts", "tstz", "doc"],
    "dg_orders": ["order_id", "item_id", "qty", "amount", "placed", "status"],
    "dg_big": ["id", "k", "v", "amt", "f", "s", "b"],
    "dg_empty": ["id", "v", "n", "f", "s", "b", "d"],
    "dg_events": ["id", "kind", "at", "val"],
}

NAMES = [
    "apple", "Apple", "APPLE", "banana", "Banana split", "cherry", "Çedilla", "côte", "cote",
    "coté", "côté", "Zebra", "zebra", "ümlaut", "Umlaut", "éclair", "Eclair", "hello world",
    "hello-world", "hello_world", "hello, world", "  leading", "trailing  ", "", None, "a",
    "A", "b", "B", "Ärger", "Ångström", "naïve", "naive", "o'brien", "O'Brien", "100", "20",
    "3", "x;y", "tab\there", "new\nline", "back\\slash", "quote\"d", None, "Œuvre", "ß",
    "zz top", "Zz Top",
]
GROUPS = ["alpha", "Beta", "gamma", None, "Émile", "delta x", "zeta-1", "éclair", "Zoë",
          "a b", "A", "a"]
TAGS = ["ab", "AB", "x", None, "abcd", "a", " a"]
COUNTRIES = [
    ("fr", "France", "Europe"), ("de", "Germany", "Europe"), ("es", "España", "Europe"),
    ("at", "Österreich", "Europe"), ("jp", "Japan", "Asia"), ("cn", "China", "Asia"),
    ("us", "United States", "Americas"), ("br", "Brasil", "Americas"),
    ("ca", "Canada", "Americas"), ("is", "Ísland", None),
]
WEIGHTS = ["1.5", "1.50", "2.25", "3", "0.125", "10.0001", "7.10", "-2.5", "100", "0.0"]
STATUSES = ["new", "paid", "shipped", "Paid", None, "cancelled", "Shipped"]
KINDS = ["click", "view", "Buy", "éxit", None]


def _date(n):
    """Day n after 2023-12-01 as an ISO date (no datetime: plain arithmetic on a calendar)."""
    import datetime
    return (datetime.date(2023, 12, 1) + datetime.timedelta(days=n)).isoformat()


def _items():
    rows = []
    for i in range(1, 301):
        if i % 97 == 0:
            continue  # a few gaps in the ids
        cat = None if i % 11 == 0 else (i * 7) % 9
        grp = GROUPS[(i * 5) % len(GROUPS)]
        name = NAMES[(i * 13) % len(NAMES)]
        code = None if i % 13 == 0 else "C%02d-%s" % (i % 37, "xyz"[i % 3])
        tag = TAGS[i % len(TAGS)]
        country = None if i % 17 == 0 else ("xx" if i % 29 == 0 else COUNTRIES[i % 10][0])
        price = None if i % 10 == 3 else "%d.%02d" % ((i * 37) % 250, (i * 7) % 4 * 25)
        qty = None if i % 14 == 5 else (i * 3) % 17
        if i == 1:
            weight = "-1000.5"  # the unique minimum
        elif i == 2:
            weight = "99999.999"  # the unique maximum
        else:
            weight = None if i % 9 == 4 else WEIGHTS[i % len(WEIGHTS)]
        if i == 150:
            ratio = "NaN"
        else:
            ratio = None if i % 8 == 1 else "%s" % (((i * 29) % 161 - 80) / 8)
        big = None if i % 15 == 2 else str((4611686018427387904 + i * 1000003) * (-1 if i % 4 == 0 else 1))
        flag = None if i % 6 == 0 else ("t" if (i * 5) % 7 < 4 else "f")
        if i == 60:
            d = "infinity"
        else:
            d = None if i % 12 == 7 else _date((i * 11) % 400)
        ts = None if i % 16 == 9 else "%s %02d:%02d:%02d" % (_date((i * 3) % 90), (i * 5) % 24, (i * 7) % 60, i % 3 * 15)
        tstz = None if i % 19 == 4 else "%s %02d:%02d:00%+03d" % (_date((i * 2) % 60), i % 24, (i * 11) % 60, (i % 5) - 2)
        if i % 7 == 3:
            doc = None
        elif i % 7 == 5:
            doc = '{"n": %d, "other": [1, 2]}' % (i % 4)
        else:
            doc = '{"k": "%s", "n": %d, "arr": [%d, "x", null], "nested": {"a": %s}}' % (
                ["red", "Green", "blue", "ünïcode", "red "][i % 5], i % 6, i, "true" if i % 2 else "null")
        rows.append([str(i), None if cat is None else str(cat), grp, name, code, tag, country,
                     price, None if qty is None else str(qty), weight, ratio, big, flag, d, ts,
                     tstz, doc])
    return rows


def _orders():
    rows = []
    for o in range(1, 1001):
        item = (o * 7919) % 320 + 1  # some point at ids that do not exist
        qty = None if o % 23 == 0 else o % 9 + 1
        amount = None if o % 31 == 0 else "%d.%02d" % ((o * 13) % 500, o % 100)
        placed = None if o % 41 == 0 else _date((o * 17) % 120)
        status = STATUSES[(o * 3) % len(STATUSES)]
        rows.append([str(o), str(item), None if qty is None else str(qty), amount, placed, status])
    return rows


def _big():
    rows = []
    for i in range(1, 4001):
        k = None if i % 53 == 0 else (i * 31) % 50
        v = (i * 7907) % 100003 - 50000
        amt = None if i % 19 == 0 else "%d.%03d" % ((i * 131) % 9000, (i * 17) % 1000)
        f = None if i % 37 == 0 else str(((i * 43) % 400 - 150) / 8)
        s = "s%04d %s" % ((i * 3) % 700, ["Alpha", "beta", "Gamma", "déjà vu"][i % 4])
        b = None if i % 10 == 0 else ("t" if i % 3 else "f")
        rows.append([str(i), None if k is None else str(k), str(v), amt, f, s, b])
    return rows


def _events():
    rows = []
    for i in range(1, 400):
        eid = i * 5 if i % 2 else 1000 + i * 3  # ids on both sides of the range map's split
        rows.append([str(eid), KINDS[i % len(KINDS)],
                     "2024-02-%02d %02d:%02d:00+00" % (i % 28 + 1, i % 24, (i * 13) % 60),
                     None if i % 9 == 0 else str((i * 37) % 101 - 50)])
    return rows


def rows(table):
    if table == "dg_countries":
        return [list(c) for c in COUNTRIES]
    if table == "dg_items":
        return _items()
    if table == "dg_orders":
        return _orders()
    if table == "dg_big":
        return _big()
    if table == "dg_empty":
        return []
    if table == "dg_events":
        return _events()
    raise KeyError(table)


def copy_text(table_rows):
    """COPY ... FROM STDIN text format."""
    def field(v):
        if v is None:
            return "\\N"
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return "".join("\t".join(field(v) for v in r) + "\n" for r in table_rows)


def sql_literal(v):
    if v is None:
        return "NULL"
    return "'" + v.replace("'", "''") + "'"


def insert_statements(table, table_rows, per_statement=100):
    """Multi-row INSERTs (pgshard splits each one per shard)."""
    out = []
    for start in range(0, len(table_rows), per_statement):
        chunk = table_rows[start:start + per_statement]
        out.append("INSERT INTO %s (%s) VALUES %s" % (
            table, ", ".join(COLUMNS[table]), ", ".join("(" + ", ".join(sql_literal(v) for v in r) + ")" for r in chunk)))
    return out
