#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (checked in; run again after
changing an input format). Seeds are real messages and statements: SQL from the
router's unit tests and integration/difftest/corpus.sql, COPY data in the three
formats, PostgreSQL protocol messages and SCRAM exchanges.

    fuzz/make_corpus.py
"""
import hashlib
import os
import re
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus")


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def msg(t, body):
    return t + struct.pack(">i", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


# ---- wire ----------------------------------------------------------------------------

def wire():
    q = msg(b"Q", cstr("SELECT * FROM users WHERE id = 1"))
    parse = msg(b"P", cstr("s1") + cstr("SELECT $1::int8") + struct.pack(">hi", 1, 20))
    bind = msg(b"B", cstr("") + cstr("s1") + struct.pack(">hh", 1, 1) + struct.pack(">h", 1)
               + struct.pack(">i", 8) + struct.pack(">q", 42) + struct.pack(">h", 0))
    bind_text = msg(b"B", cstr("p") + cstr("s1") + struct.pack(">hhi", 0, 2, 2) + b"42"
                    + struct.pack(">i", -1) + struct.pack(">h", 0))
    describe = msg(b"D", b"S" + cstr("s1"))
    close = msg(b"C", b"P" + cstr(""))
    execute = msg(b"E", cstr("") + struct.pack(">i", 0))
    sync = msg(b"S", b"")
    err = msg(b"E", b"SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0P15\0"
              b"Fparse_relation.c\0L1392\0RparserOpenTable\0\0")
    auth_sasl = msg(b"R", struct.pack(">i", 10) + cstr("SCRAM-SHA-256") + b"\0")
    auth_md5 = msg(b"R", struct.pack(">i", 5) + b"\x01\x02\x03\x04")
    ready = msg(b"Z", b"I")
    rowdesc = msg(b"T", struct.pack(">h", 1) + cstr("id") + struct.pack(">ihihih", 0, 0, 20, 8, -1, 0))
    datarow = msg(b"D", struct.pack(">hi", 2, 2) + b"42" + struct.pack(">i", -1))
    cc = msg(b"C", cstr("SELECT 1"))
    for stream in ([q], [parse, bind, describe, execute, sync], [bind_text, close, sync], [err],
                   [auth_sasl], [auth_md5, ready], [rowdesc, datarow, cc, ready]):
        write("fuzz_wire", b"\0" + b"".join(stream))

    def startup(params):
        body = struct.pack(">i", 196608) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
        return struct.pack(">i", len(body) + 4) + body
    write("fuzz_wire", b"\1" + startup([("user", "app"), ("database", "app")]))
    write("fuzz_wire", b"\1" + startup([("user", "app"), ("application_name", "psql"),
                                        ("extra_float_digits", "3"), ("options", "-c search_path=x")]))
    write("fuzz_wire", b"\1" + struct.pack(">ii", 8, 80877103))
    write("fuzz_wire", b"\1" + struct.pack(">ii", 8, 80877104))
    write("fuzz_wire", b"\1" + struct.pack(">iiii", 16, 80877102, 1234, 5678))

    write("fuzz_wire", b"\2\0" + b"ERROR\0" + b"0A000\0" + b"pgshard: refused\0")
    write("fuzz_wire", b"\2\1" + struct.pack(">i", 11) + b"r=abc,s=c2FsdA==,i=4096")
    write("fuzz_wire", b"\2\2" + b"client_encoding\0UTF8\0")
    write("fuzz_wire", b"\2\3" + struct.pack(">ii", 4242, -7))
    write("fuzz_wire", b"\2\4" + b"T")
    write("fuzz_wire", b"\2\5" + b"s1\0SELECT $1\0\x02" + struct.pack(">ii", 20, 25))
    write("fuzz_wire", b"\2\6" + b"\0s1\0\x03\x02\x00\x01\x01\x0242\xff\x0812345678")
    write("fuzz_wire", b"\2\7" + b"portal\0SELECT 1\0\x01")


# ---- auth ----------------------------------------------------------------------------

def auth():
    write("fuzz_auth", b"\0" + b"app\0secret\0md5a3556571e93b0d20722ba62be61e8c2d\0\x01\x02\x03\x04")
    write("fuzz_auth", b"\0" + b"app\0md5a3556571e93b0d20722ba62be61e8c2d\0\0\xde\xad\xbe\xef")
    write("fuzz_auth", b"\0" + b"app\0SCRAM-SHA-256$4096:c2FsdA==$a:b\0x\0abcd")
    # server role: how, stored, client-first, client-final
    first = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"
    final = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
             b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    for how in (b"\0", b"\1", b"\2", b"\3"):
        write("fuzz_auth", b"\1" + how + b"secret\0" + first + b"\0" + final)
    write("fuzz_auth", b"\1\0SCRAM-SHA-256$2:MDEyMzQ1Njc4OWFiY2RlZg==$"
          b"WG5dW3PGSrr0g6cDJoSiZXu/Ee1Z0Xv8RUzWSz46+EU=:o0h5uzVdsV/tmXmoR6xYJ0rsy4jZvhGqI9hdsuuR9Xo=\0"
          b"y,,n=user,r=abc,x=ext\0c=eSws,r=abc,p=AAAA")
    # client role: password, server-first, server-final
    write("fuzz_auth", b"\2secret\0r=fuzznonceSERVER,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=2\0"
          b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    write("fuzz_auth", b"\2secret\0r=fuzznonce,s=c2FsdA==,i=4096\0e=invalid-proof")
    # whole exchange: iterations, salt length, salt, password, other, client nonce, server nonce
    write("fuzz_auth", b"\3\1\x04salt" + b"secret\0\0cnonce\0snonce\0")
    write("fuzz_auth", b"\3\0\x10" + bytes(range(16)) + b"pencil\0pen\0a\0b\0")


# ---- route ---------------------------------------------------------------------------

SQL_START = re.compile(r"^\s*(/\*|--|SELECT|INSERT|UPDATE|DELETE|WITH|COPY|BEGIN|START|COMMIT|END|"
                       r"ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE|CREATE|DROP|ALTER|TRUNCATE|"
                       r"SET|RESET|SHOW|DISCARD|LISTEN|NOTIFY|UNLISTEN|DECLARE|FETCH|CLOSE|"
                       r"EXPLAIN|VALUES|TABLE|MERGE|LOCK|GRANT|VACUUM|ANALYZE|DEALLOCATE|"
                       r"EXECUTE|CALL|DO|select|insert|update|delete|with|set|begin)", re.S)
LITERAL = re.compile(r'((?:"(?:[^"\\\n]|\\.)*"\s*)+)')


def c_strings(path):
    text = open(path, encoding="utf-8").read()
    for m in LITERAL.finditer(text):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(1))
        s = "".join(parts)
        try:
            s = bytes(s, "utf-8").decode("unicode_escape").encode("latin-1")
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue
        if SQL_START.match(s.decode("latin-1")) and b"\0" not in s:
            yield s


def route():
    sqls = []
    for f in ("router/tests/test_route_keys.c", "router/tests/test_route_shapes.c",
              "router/tests/test_route_writes.c", "router/tests/test_route_plan.c",
              "router/tests/test_route_hint.c", "router/tests/test_route_lex.c",
              "router/tests/test_route_merge.c", "router/tests/test_route_subq.c",
              "router/tests/test_plancache.c", "router/tests/test_plancache_reuse.c",
              "router/tests/test_classify.c",
              "router/tests/test_gather.c"):
        sqls.extend(c_strings(os.path.join(ROOT, f)))
    text = open(os.path.join(ROOT, "integration/difftest/corpus.sql"), encoding="utf-8").read()
    cur = []
    for line in text.splitlines():
        if line.startswith("--") or not line.strip():
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            q = "\n".join(cur)
            for a, b in (("dg_items", "users"), ("dg_orders", "orders"), ("dg_big", "sites"),
                         ("dg_countries", "countries"), ("dg_empty", "slots"),
                         ("dg_events", "accounts")):
                q = q.replace(a, b)
            sqls.append(q.encode())
            cur = []
    seen = set()
    for s in sqls:
        if s in seen or len(s) > 2000:
            continue
        seen.add(s)
        write("fuzz_route", b"\0" + s)
    # parameters: header (bit 0 binary, bit 1 NULL, bits 2-4 type), length, bytes
    p = b"SELECT * FROM users WHERE id = $1\0"
    write("fuzz_route", b"\0" + p + b"\x00\x0242")
    write("fuzz_route", b"\0" + p + b"\x05\x08" + struct.pack(">q", 42))
    write("fuzz_route", b"\0" + p + b"\x0d\x04" + struct.pack(">i", -7))
    write("fuzz_route", b"\0" + p + b"\x02\x00")
    write("fuzz_route", b"\0SELECT * FROM accounts WHERE name = $1 OR name = $2\0"
          b"\x10\x05alice\x14\x03bob")
    write("fuzz_route", b"\0SELECT * FROM devices WHERE id = $1\0\x19\x10" + bytes(range(16)))
    write("fuzz_route", b"\0SELECT * FROM devices WHERE id = $1\0\x18\x24"
          b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    write("fuzz_route", b"\0INSERT INTO users (id, name) VALUES ($1, $2), ($3, 'x')\0"
          b"\x00\x011\x00\x01a\x00\x012")
    write("fuzz_route", b"\0SELECT * FROM sites WHERE region_id BETWEEN $1 AND $2\0"
          b"\x00\x03999\x00\x041000")
    # the depth guard: flags bit 0, "A\x01B\x01C" with B repeated 64 * (byte + 1) times
    write("fuzz_route", b"\1SELECT \1(\1 1\0\x20")
    write("fuzz_route", b"\1SELECT 1\1+1\1 FROM users\0\x40")
    write("fuzz_route", b"\1SELECT * FROM users WHERE id = 1\1 AND NOT id = 2\1\0\x08")
    write("fuzz_route", b"\1SELECT ARRAY\1[\1 1]\0\x1f")
    write("fuzz_route", b"\1SELECT \1CASE WHEN true THEN \1 1\0\x1f")


# ---- copy ----------------------------------------------------------------------------

def copy():
    # statement selector, key index, chunk size, row limit (0: none), data
    text = b"1\talice\tfirst\n2\t\\N\tsecond\\tline\n3\tc\\\\d\t\\N\n\\.\n"
    write("fuzz_copy", b"\0\0\3\0" + text)
    write("fuzz_copy", b"\0\1\7\0" + text.replace(b"\n", b"\r\n"))
    write("fuzz_copy", b"\1\0\5\0" + b"1,a,NULL\n2,NULL,b\n")
    write("fuzz_copy", b"\2\0\4\0" + b"id\tname\n1\ta\n2\tb")
    csv = b'1,"a,b","multi\nline"\n2,,"quote "" inside"\n"3",c,\n\\.\n'
    write("fuzz_copy", b"\3\0\3\0" + csv)
    write("fuzz_copy", b"\4\0\2\x10" + b"id,name,note\n" + csv)
    write("fuzz_copy", b"\5\1\1\0" + b"'a;b';1\nN;2\n'x\\'y';N\n")
    write("fuzz_copy", b"\6\0\x20\0" + b"id,name\r\n1,a\r\n")

    def field(b):
        return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b
    binary = (b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0)
              + struct.pack(">h", 3) + field(struct.pack(">q", 1)) + field(b"alice") + field(None)
              + struct.pack(">h", 3) + field(None) + field(b"") + field(b"x")
              + struct.pack(">h", -1))
    write("fuzz_copy", b"\7\0\x09\0" + binary)
    write("fuzz_copy", b"\7\1\x40\x08" + binary)
    # the statement itself fuzzed (selector >= 8): text up to NUL, then data
    write("fuzz_copy", b"\x08\0\4\0COPY users (id) FROM STDIN (FORMAT csv, FREEZE, "
          b"ENCODING 'LATIN1')\0" + b"1\n2\n")
    write("fuzz_copy", b"\x08\0\4\0COPY t FROM STDIN WITH CSV HEADER DELIMITER '|' QUOTE '\"'\0"
          b"a|b\n1|2\n")
    write("fuzz_copy", b"\x08\0\4\0COPY t TO STDOUT\0")


# ---- rowcmp --------------------------------------------------------------------------

def rowcmp():
    oids = [16, 17, 18, 19, 20, 21, 23, 25, 26, 700, 701, 1042, 1043, 1082, 1083, 1114, 1184,
            1186, 1266, 1700, 2950, 114]

    def seed(oid, fmt, vals, flags=0):
        out = bytes([oids.index(oid), fmt | flags])
        for v in vals:
            out += b"\xff" if v is None else bytes([len(v)]) + v
        write("fuzz_rowcmp", out)
    text = {
        16: [b"t", b"f", b"t"], 17: [b"\\x00ff", b"\\x", b"\\x0102"], 18: [b"a", b"b", b"\x80"],
        19: [b"pg_class", b"abc", b""], 20: [b"-9223372036854775808", b"42", b"9223372036854775807"],
        21: [b"-32768", b"0", b"32767"], 23: [b"-1", b"2147483647", b"0"], 25: [b"apple", b"Apple", b"\xc3\xa9t\xc3\xa9"],
        26: [b"4294967295", b"0", b"16384"], 700: [b"NaN", b"-0", b"1.5e+38"],
        701: [b"Infinity", b"-Infinity", b"2.2250738585072014e-308"],
        1042: [b"ab  ", b"ab", b"a"], 1043: [b"x", b"", b"y z"],
        1082: [b"2024-02-29", b"infinity", b"0044-03-15 BC"], 1083: [b"23:59:59.999999", b"00:00:00", b"24:00:00"],
        1114: [b"2024-01-01 12:00:00", b"-infinity", b"1999-12-31 23:59:59.5 BC"],
        1184: [b"2024-01-01 12:00:00+02", b"2024-01-01 10:00:00+00", b"2024-01-01 05:30:00-04:30"],
        1186: [b"1 mon", b"30 days", b"-1 years -2 mons +3 days 04:05:06.789"],
        1266: [b"12:00:00+02", b"10:00:00+00", b"23:59:59-14:59"],
        1700: [b"1.50", b"1.5", b"-Infinity"], 2950: [b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                                    b"00000000-0000-0000-0000-000000000000", b"ffffffff-ffff-ffff-ffff-ffffffffffff"],
        114: [b"{}", b"[]", b"1"],
    }
    for oid, vals in text.items():
        seed(oid, 0, vals)
    seed(25, 0, [b"b", b"a", None], 2 | 4 | (2 << 3))
    seed(1043, 0, [b"cote", b"c\xc3\xb4te", b"cot\xc3\xa9"], 1 << 3)
    binary = {
        16: [b"\1", b"\0", b"\1"], 20: [struct.pack(">q", -5), struct.pack(">q", 5), struct.pack(">q", 0)],
        21: [struct.pack(">h", -5), struct.pack(">h", 5), b"\0"], 23: [struct.pack(">i", 7), struct.pack(">i", -7), b"\0\0\0\0"],
        26: [struct.pack(">I", 4000000000), struct.pack(">I", 1), b"\0\0\0\0"],
        700: [struct.pack(">f", 1.5), struct.pack(">f", float("nan")), struct.pack(">f", -0.0)],
        701: [struct.pack(">d", 1e300), struct.pack(">d", float("-inf")), struct.pack(">d", 0.0)],
        1082: [struct.pack(">i", 8000), struct.pack(">i", 0x7fffffff), struct.pack(">i", -0x80000000)],
        1083: [struct.pack(">q", 86400000000), struct.pack(">q", 0), struct.pack(">q", 1)],
        1114: [struct.pack(">q", 0), struct.pack(">q", 0x7fffffffffffffff), struct.pack(">q", -1)],
        1184: [struct.pack(">q", 5), struct.pack(">q", -5), struct.pack(">q", 0)],
        1186: [struct.pack(">qii", 0, 30, 0), struct.pack(">qii", 0, 0, 1), struct.pack(">qii", 86400000000, 0, 0)],
        1266: [struct.pack(">qi", 0, -7200), struct.pack(">qi", 0, 0), struct.pack(">qi", 3600000000, 3600)],
        1700: [struct.pack(">hhhh", 1, 0, 0, 0) + struct.pack(">h", 15), struct.pack(">hhhh", 1, 0, 0, 1) + struct.pack(">h", 1500),
               struct.pack(">hhHh", 0, 0, 0xC000, 0)],
        2950: [bytes(16), bytes(range(16)), b"\xff" * 16],
        17: [b"", b"\0", b"\0\0"], 25: [b"a", b"b", b"ab"], 1042: [b"a ", b"a", b"b"],
    }
    for oid, vals in binary.items():
        seed(oid, 1, vals)
    # a DataRow body after the three values
    write("fuzz_rowcmp", bytes([4, 0]) + b"\x011\x012\x013" + struct.pack(">hi", 2, 2) + b"42"
          + struct.pack(">i", -1))


if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    wire()
    auth()
    route()
    copy()
    rowcmp()
    for t in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, t))
        size = sum(os.path.getsize(os.path.join(OUT, t, f)) for f in files)
        print(f"{t}: {len(files)} seeds, {size} bytes")
