#!/usr/bin/python3
"""A small multi-tenant shop written with SQLAlchemy 1.4's ORM (psycopg2 driver), the way the
SQLAlchemy and psycopg2 documentation write such an app. integration/tests/test_apps.py runs it
twice, through pgshard and against one PostgreSQL, and compares what it prints.

The database comes from libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE):
the engine URL is just "postgresql+psycopg2://".

    /usr/bin/python3 integration/apps/sqla_app.py > out.json

Output: one JSON object {"app": "sqla", "steps": [{"step": NAME, "answers": [...]}, ...],
"dump": {TABLE: [rows ordered by a natural key]}}. Every value of a bigserial column (and of
a column referring to one) is written as {"$id": [TABLE, VALUE]}, so that the comparison can
rename ids (pgshard's are unique across shards, not 1, 2, 3) while keeping which row refers to
which. A statement the database refuses is an answer too ({"error": SQLSTATE, "message": ...});
the app rolls back and goes on, as an app with a retry-less error handler would.

Tables (pgshard.ini of integration/cluster.sh): app_users, app_orders, app_order_lines sharded
by tenant_id on one hash map (co-located), app_products a reference table, app_audit not in
the config (it lives on the default shard).
"""

import datetime
import decimal
import json
import random
import sys

import psycopg2
import psycopg2.extras
from sqlalchemy import (BigInteger, Column, DateTime, ForeignKey, ForeignKeyConstraint,
                        Integer, Numeric, String, Text, UniqueConstraint, create_engine,
                        delete, func, inspect, literal, literal_column, select, text,
                        update)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import (Session, declarative_base, joinedload, relationship,
                            selectinload)

Base = declarative_base()

TENANTS = [1, 2, 3, 4, 5, 6, 7, 8]
EPOCH = datetime.datetime(2024, 3, 1, 9, 0, tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------------------------
# the models


class Product(Base):
    """The catalogue, the same for every tenant (a reference table)."""

    __tablename__ = "app_products"

    id = Column(BigInteger, primary_key=True)
    sku = Column(String(20), nullable=False, unique=True)
    name = Column(String(100), nullable=False)
    price = Column(Numeric(10, 2), nullable=False)


class User(Base):
    __tablename__ = "app_users"

    tenant_id = Column(BigInteger, primary_key=True)
    id = Column(BigInteger, primary_key=True, autoincrement=True)
    email = Column(String(100), nullable=False)
    name = Column(String(100), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)

    orders = relationship("Order", back_populates="user", cascade="all, delete-orphan",
                          order_by="Order.number")

    __table_args__ = (UniqueConstraint("tenant_id", "email", name="app_users_tenant_email"),)


class Order(Base):
    __tablename__ = "app_orders"

    tenant_id = Column(BigInteger, primary_key=True)
    id = Column(BigInteger, primary_key=True, autoincrement=True)
    user_id = Column(BigInteger, nullable=False)
    number = Column(Integer, nullable=False)
    status = Column(String(20), nullable=False, default="new")
    placed_at = Column(DateTime(timezone=True), nullable=False)
    note = Column(Text)

    user = relationship("User", back_populates="orders")
    lines = relationship("OrderLine", back_populates="order", cascade="all, delete-orphan",
                         order_by="OrderLine.line_no")

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["app_users.tenant_id", "app_users.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "number", name="app_orders_tenant_number"),
    )


class OrderLine(Base):
    __tablename__ = "app_order_lines"

    tenant_id = Column(BigInteger, primary_key=True)
    id = Column(BigInteger, primary_key=True, autoincrement=True)
    order_id = Column(BigInteger, nullable=False)
    line_no = Column(Integer, nullable=False)
    product_id = Column(BigInteger, ForeignKey("app_products.id"), nullable=False)
    qty = Column(Integer, nullable=False)
    unit_price = Column(Numeric(10, 2), nullable=False)

    order = relationship("Order", back_populates="lines")
    product = relationship("Product")

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["app_orders.tenant_id", "app_orders.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "order_id", "line_no", name="app_order_lines_order_line"),
    )


class Audit(Base):
    """What happened, for the operators: not sharded."""

    __tablename__ = "app_audit"

    id = Column(BigInteger, primary_key=True)
    tenant_id = Column(BigInteger, nullable=False)
    action = Column(String(50), nullable=False)
    at = Column(DateTime(timezone=True), nullable=False)


# ---------------------------------------------------------------------------------------
# recording answers


def jsonable(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, (list, tuple, Row)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def Id(table, v):
    """An id value, renamed by the comparison."""
    return None if v is None else {"$id": [table, v]}


class Recorder:
    def __init__(self):
        self.steps = []

    def step(self, name):
        self.steps.append({"step": name, "answers": []})

    def answer(self, what, value):
        self.steps[-1]["answers"].append([what, jsonable(value)])

    def attempt(self, what, fn, session=None):
        """Runs fn(); records its value, or the error the database gave (then rolls the
        session or connection back and goes on)."""
        try:
            value = fn()
        except DBAPIError as e:
            self.answer(what, error_of(e.orig))
            if session is not None:
                session.rollback()
            return None
        except psycopg2.Error as e:
            self.answer(what, error_of(e))
            if session is not None:
                session.rollback()
            return None
        self.answer(what, value)
        return value


def error_of(e):
    diag = getattr(e, "diag", None)
    return {"error": getattr(e, "pgcode", None),
            "message": (str(e).strip().splitlines() or [""])[0],
            "constraint": getattr(diag, "constraint_name", None)}


def user_row(u):
    return [u.tenant_id, Id("app_users", u.id), u.email, u.name]


def order_row(o):
    return [o.tenant_id, Id("app_orders", o.id), Id("app_users", o.user_id), o.number, o.status,
            o.placed_at, o.note]


def line_row(ln):
    return [ln.tenant_id, Id("app_order_lines", ln.id), Id("app_orders", ln.order_id), ln.line_no,
            Id("app_products", ln.product_id), ln.qty, ln.unit_price]


# ---------------------------------------------------------------------------------------
# the app's steps


def schema(engine, rec):
    rec.step("schema")
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    insp = inspect(engine)
    tables = sorted(t for t in insp.get_table_names() if t.startswith("app_")
                    and t in Base.metadata.tables)
    rec.answer("tables", tables)
    for t in tables:
        cols = []
        for c in insp.get_columns(t):
            default = c.get("default")
            # A bigserial column: a sequence default on one PostgreSQL, an identity column
            # through pgshard (README: "a serial column becomes ... GENERATED BY DEFAULT AS
            # IDENTITY"). Both make ids; the app only cares that they do.
            makes_ids = bool(c.get("identity")) or (default or "").startswith("nextval(")
            cols.append([c["name"], str(c["type"]), c["nullable"], makes_ids,
                         None if makes_ids else default])
        rec.answer("columns of " + t, cols)
        rec.answer("primary key of " + t, insp.get_pk_constraint(t)["constrained_columns"])
        rec.answer("foreign keys of " + t, sorted(
            [fk["name"], fk["constrained_columns"], fk["referred_table"],
             fk["referred_columns"], fk.get("options", {})] for fk in insp.get_foreign_keys(t)))
        rec.answer("unique constraints of " + t, sorted(
            [u["name"], u["column_names"]] for u in insp.get_unique_constraints(t)))
        rec.answer("indexes of " + t, sorted(
            [i["name"], i["column_names"], i["unique"]] for i in insp.get_indexes(t)))
    rec.answer("has_table app_users", insp.has_table("app_users"))
    rec.answer("has_table app_nothing", insp.has_table("app_nothing"))


def seed_products(engine, rec):
    rec.step("products")
    with Session(engine) as session:
        products = [Product(sku="SKU-%03d" % i, name="product %d" % i,
                            price=decimal.Decimal(i * 250 + 99) / 100) for i in range(1, 9)]
        session.add_all(products)
        session.commit()
        rec.answer("ids", [[p.sku, Id("app_products", p.id)] for p in products])
        rec.answer("all", [[Id("app_products", p.id), p.sku, p.name, p.price] for p in
                           session.scalars(select(Product).order_by(Product.sku))])


def seed_tenants(engine, rec):
    """Each tenant's users, their orders and order lines, as one unit of work per tenant."""
    rec.step("tenants")
    rnd = random.Random(11)
    with Session(engine) as session:
        products = session.scalars(select(Product).order_by(Product.sku)).all()
        for t in TENANTS:
            users = []
            for u in range(1, 4 + t % 3):
                user = User(tenant_id=t, email="u%d@t%d.example" % (u, t),
                            name="user %d/%d" % (t, u),
                            created_at=EPOCH + datetime.timedelta(days=t, hours=u))
                for n in range(1, 1 + rnd.randint(0, 3)):
                    order = Order(tenant_id=t, number=u * 100 + n,
                                  placed_at=EPOCH + datetime.timedelta(days=t, hours=u, minutes=n),
                                  note=None if n % 2 else "gift")
                    for ln in range(1, 1 + rnd.randint(1, 4)):
                        p = rnd.choice(products)
                        order.lines.append(OrderLine(tenant_id=t, line_no=ln, product=p,
                                                     qty=rnd.randint(1, 5), unit_price=p.price))
                    user.orders.append(order)
                users.append(user)
            session.add_all(users)
            session.add(Audit(tenant_id=t, action="tenant created", at=EPOCH))
            session.commit()
            rec.answer("tenant %d users" % t, [user_row(u) for u in users])
            rec.answer("tenant %d orders" % t, [order_row(o) for u in users for o in u.orders])
            rec.answer("tenant %d lines" % t,
                       [line_row(ln) for u in users for o in u.orders for ln in o.lines])


def eager_loading(engine, rec):
    rec.step("eager loading")
    with Session(engine) as session:
        def ask(what, fn):
            rec.attempt(what, fn, session)
            session.expunge_all()

        for t in (1, 2, 5):
            ask("selectinload tenant %d" % t, lambda t=t: [
                user_row(u) + [[order_row(o) + [[line_row(ln) + [ln.product.sku]
                                                 for ln in o.lines]] for o in u.orders]]
                for u in session.scalars(
                    select(User).where(User.tenant_id == t).order_by(User.email)
                    .options(selectinload(User.orders).selectinload(Order.lines)
                             .joinedload(OrderLine.product)))])
            ask("joinedload with limit, tenant %d" % t, lambda t=t: [
                order_row(o) + [o.user.email, [line_row(ln) for ln in o.lines]]
                for o in session.scalars(
                    select(Order).where(Order.tenant_id == t).order_by(Order.number).limit(3)
                    .options(joinedload(Order.user), joinedload(Order.lines))).unique()])
        ask("selectinload over every tenant", lambda: [
            [u.tenant_id, u.email, [o.number for o in u.orders]]
            for u in session.scalars(select(User).order_by(User.tenant_id, User.email)
                                     .options(selectinload(User.orders)))])
        ask("joinedload over every tenant, joined filter", lambda: [
            line_row(ln) + [ln.product.sku]
            for ln in session.scalars(
                select(OrderLine).join(OrderLine.order).where(Order.note == "gift")
                .order_by(OrderLine.tenant_id, Order.number, OrderLine.line_no)
                .options(joinedload(OrderLine.product)))])

        def lazy():
            # Lazy loading, one row at a time (many-to-one, then one-to-many).
            o = session.scalars(select(Order).where(Order.tenant_id == 3)
                                .order_by(Order.number)).first()
            return [o.user.email, [ln.line_no for ln in o.lines]] if o else None
        ask("lazy load", lazy)


def reports(engine, rec):
    """Queries over every tenant."""
    rec.step("reports")
    total = (OrderLine.qty * OrderLine.unit_price)
    queries = [
        ("count users", select(func.count()).select_from(User)),
        ("count orders per status",
         select(Order.status, func.count()).group_by(Order.status).order_by(Order.status)),
        ("revenue per tenant",
         select(Order.tenant_id, func.count(func.distinct(Order.id)), func.sum(total))
         .join(Order.lines).group_by(Order.tenant_id).order_by(Order.tenant_id)),
        ("top products",
         select(Product.sku, func.sum(OrderLine.qty).label("sold"), func.sum(total))
         .join(OrderLine.product).group_by(Product.sku)
         .order_by(text("sold DESC"), Product.sku).limit(3)),
        ("top customers",
         select(User.tenant_id, User.email, func.sum(total).label("spent"))
         .join(User.orders).join(Order.lines).group_by(User.tenant_id, User.email)
         .order_by(text("spent DESC"), User.tenant_id, User.email).limit(5)),
        ("avg, min, max",
         select(func.round(func.avg(OrderLine.unit_price), 4), func.min(Order.placed_at),
                func.max(Order.placed_at), func.count(func.distinct(OrderLine.product_id)))
         .join(Order.lines)),
        ("tenants with more than 3 orders",
         select(Order.tenant_id, func.count()).group_by(Order.tenant_id)
         .having(func.count() > 3).order_by(Order.tenant_id)),
        ("latest orders, page 2",
         select(Order.tenant_id, Order.number, Order.placed_at)
         .order_by(Order.placed_at.desc(), Order.tenant_id, Order.number).limit(4).offset(4)),
        ("users without orders",
         select(User.tenant_id, User.email).where(~User.orders.any())
         .order_by(User.tenant_id, User.email)),
    ]
    with Session(engine) as session:
        for what, q in queries:
            rec.attempt(what, lambda q=q: session.execute(q).all(), session)
        rec.attempt("ids of one tenant in id order", lambda: [
            Id("app_orders", i) for i in session.scalars(
                select(Order.id).where(Order.tenant_id == 4).order_by(Order.id))], session)


def streaming(engine, rec):
    """yield_per: rows fetched from a server-side cursor (psycopg2 named cursor) in batches."""
    rec.step("yield_per")
    with Session(engine) as session:
        def one_tenant():
            q = (session.query(OrderLine).filter(OrderLine.tenant_id == 2)
                 .order_by(OrderLine.id).yield_per(3))
            return [line_row(ln) for ln in q]
        rec.attempt("yield_per within tenant 2", one_tenant, session)
        session.rollback()

        def every_tenant():
            q = (session.query(OrderLine).order_by(OrderLine.tenant_id, OrderLine.id)
                 .yield_per(4))
            return [line_row(ln) for ln in q]
        rec.attempt("yield_per over every tenant", every_tenant, session)
        session.rollback()

    def core_partitions():
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                select(User.tenant_id, User.email).order_by(User.tenant_id, User.email))
            return [[list(r) for r in part] for part in result.partitions(5)]
    rec.attempt("stream_results partitions over every tenant", core_partitions)


def bulk(engine, rec):
    """psycopg2.extras on the engine's DBAPI connection: rows of many tenants at once."""
    rec.step("bulk")
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        rows = [(t, "bulk%d@t%d.example" % (i, t), "bulk user %d" % i,
                 EPOCH + datetime.timedelta(days=30, minutes=i))
                for i, t in enumerate(TENANTS * 2, start=1)]
        rec.attempt("execute_batch insert users", lambda: psycopg2.extras.execute_batch(
            cur, "INSERT INTO app_users (tenant_id, email, name, created_at) "
            "VALUES (%s, %s, %s, %s)", rows, page_size=5) or cur.rowcount)
        conn.commit()
        cur.execute("SELECT tenant_id, id, email FROM app_users WHERE email LIKE 'bulk%%' "
                    "ORDER BY tenant_id, email")
        bulk_users = cur.fetchall()
        rec.answer("bulk users", [[t, Id("app_users", i), e] for t, i, e in bulk_users])
        orders = [(t, uid, 900 + k, "new", EPOCH + datetime.timedelta(days=31, minutes=k))
                  for k, (t, uid, _) in enumerate(bulk_users)]

        def values():
            got = psycopg2.extras.execute_values(
                cur, "INSERT INTO app_orders (tenant_id, user_id, number, status, placed_at) "
                "VALUES %s RETURNING tenant_id, id, user_id, number", orders, page_size=7,
                fetch=True)
            return [[t, Id("app_orders", i), Id("app_users", u), n] for t, i, u, n in got]
        rec.attempt("execute_values insert orders returning", values)
        conn.commit()
        rec.attempt("execute_batch update across tenants", lambda: psycopg2.extras.execute_batch(
            cur, "UPDATE app_orders SET status = %s WHERE tenant_id = %s AND number = %s",
            [("paid", t, 900 + k) for k, (t, _, _) in enumerate(bulk_users) if k % 3 == 0])
            or cur.rowcount)
        conn.commit()
        cur.execute("SELECT tenant_id, number, status FROM app_orders "
                    "WHERE number BETWEEN 900 AND 999 "
                    "ORDER BY tenant_id, number")
        rec.answer("bulk orders after update", cur.fetchall())
        lines = [(t, oid, 1, p, 2, decimal.Decimal("9.99"))
                 for (t, oid), p in zip(fetch_bulk_orders(cur), [1, 2, 3] * 20)]
        conn.commit()
        rec.attempt("execute_values insert lines", lambda: psycopg2.extras.execute_values(
            cur, "INSERT INTO app_order_lines (tenant_id, order_id, line_no, product_id, qty, "
            "unit_price) VALUES %s", lines_with_products(cur, lines)) or cur.rowcount)
        conn.commit()
    finally:
        conn.close()


def fetch_bulk_orders(cur):
    cur.execute("SELECT tenant_id, id FROM app_orders WHERE number BETWEEN 900 AND 999 "
                "ORDER BY tenant_id, number")
    return cur.fetchall()


def lines_with_products(cur, lines):
    """The lines with the product's id in place of its position in the catalogue."""
    cur.execute("SELECT id FROM app_products ORDER BY sku")
    ids = [r[0] for r in cur.fetchall()]
    return [(t, o, n, ids[p - 1], q, price) for t, o, n, p, q, price in lines]


def upserts(engine, rec):
    rec.step("upserts")
    with Session(engine) as session:
        stmt = insert(User).values([
            dict(tenant_id=1, email="u1@t1.example", name="renamed one", created_at=EPOCH),
            dict(tenant_id=2, email="new@t2.example", name="new two", created_at=EPOCH),
            dict(tenant_id=6, email="u2@t6.example", name="renamed six", created_at=EPOCH),
            dict(tenant_id=7, email="new@t7.example", name="new seven", created_at=EPOCH),
        ])
        stmt = stmt.on_conflict_do_update(
            constraint="app_users_tenant_email", set_=dict(name=stmt.excluded.name)
        ).returning(User.tenant_id, User.id, User.email, User.name,
                    literal_column("xmax = 0").label("inserted"))
        rec.attempt("upsert users on constraint, returning", lambda: sorted(
            [[t, Id("app_users", i), e, n, ins] for t, i, e, n, ins in session.execute(stmt)],
            key=lambda r: (r[0], r[2])), session)
        session.commit()

        stmt = insert(User).values(tenant_id=3, email="u1@t3.example", name="ignored",
                                   created_at=EPOCH)
        stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id", "email"])
        rec.attempt("upsert do nothing", lambda: session.execute(stmt).rowcount, session)
        session.commit()

        stmt = insert(Order).values(tenant_id=2, user_id=select(User.id).where(
            User.tenant_id == 2, User.email == "new@t2.example").scalar_subquery(),
            number=777, status="new", placed_at=EPOCH)
        for status in ("new", "paid"):
            s = stmt.on_conflict_do_update(index_elements=["tenant_id", "number"],
                                           set_=dict(status=status))
            rec.attempt("upsert order 777 (%s)" % status,
                        lambda s=s: session.execute(s).rowcount, session)
            session.commit()

        stmt = insert(Product).values([dict(sku="SKU-001", name="product 1", price=3.49),
                                       dict(sku="SKU-100", name="product 100", price=100)])
        stmt = stmt.on_conflict_do_update(index_elements=["sku"],
                                          set_=dict(price=stmt.excluded.price))
        rec.attempt("upsert products (reference table)",
                    lambda: session.execute(stmt).rowcount, session)
        session.commit()
        rec.answer("after upserts", session.execute(
            select(User.tenant_id, User.email, User.name).where(
                User.email.in_(["u1@t1.example", "new@t2.example", "u2@t6.example",
                                "new@t7.example", "u1@t3.example"]))
            .order_by(User.tenant_id, User.email)).all())


def changes(engine, rec):
    rec.step("updates and deletes")
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.tenant_id == 4)
                               .order_by(User.email)).first()
        user.name = "changed"
        if user.orders:
            user.orders[0].status = "shipped"
        session.commit()
        rec.answer("orm update", [user_row(user), [order_row(o) for o in user.orders]])

        rec.attempt("bulk update with synchronize fetch", lambda: session.query(Order).filter(
            Order.tenant_id.in_([1, 2, 3]), Order.status == "new").update(
            {Order.note: "bulk"}, synchronize_session="fetch"), session)
        session.commit()
        rec.attempt("core update over every tenant", lambda: session.execute(
            update(Order).where(Order.note == "gift").values(status="gifted")).rowcount, session)
        session.commit()
        rec.attempt("update with a subquery in the same tenant", lambda: session.execute(
            update(Order).where(Order.tenant_id == 5, Order.user_id.in_(
                select(User.id).where(User.tenant_id == 5, User.email.like("u1%"))))
            .values(note="first user").execution_options(synchronize_session="fetch")).rowcount,
            session)
        session.commit()

        victim = session.scalars(select(User).where(User.tenant_id == 6)
                                 .order_by(User.email)).first()
        rec.answer("orm delete with cascade", user_row(victim) + [len(victim.orders)])
        session.delete(victim)
        session.commit()
        rec.attempt("core delete over every tenant", lambda: session.execute(
            delete(OrderLine).where(OrderLine.qty == 1)).rowcount, session)
        session.commit()
        rec.attempt("delete returning in one tenant", lambda: [
            [Id("app_order_lines", i), n] for i, n in sorted(session.execute(
                delete(OrderLine).where(OrderLine.tenant_id == 8, OrderLine.line_no > 2)
                .returning(OrderLine.id, OrderLine.line_no)))], session)
        session.commit()


def transactions(engine, rec):
    rec.step("transactions")
    with Session(engine) as session:
        before = session.scalar(select(func.count()).select_from(Order))
        u1 = session.scalars(select(User).where(User.tenant_id == 1).order_by(User.email)).first()
        u2 = session.scalars(select(User).where(User.tenant_id == 2).order_by(User.email)).first()
        u1.orders.append(Order(tenant_id=1, number=601, placed_at=EPOCH))
        u2.orders.append(Order(tenant_id=2, number=601, placed_at=EPOCH))
        session.add(Audit(tenant_id=1, action="two tenants", at=EPOCH))
        session.flush()
        rec.answer("inside the transaction", session.scalar(
            select(func.count()).select_from(Order)) - before)
        session.rollback()
        rec.answer("after rollback", session.scalar(
            select(func.count()).select_from(Order)) - before)

        u1 = session.scalars(select(User).where(User.tenant_id == 1).order_by(User.email)).first()
        u3 = session.scalars(select(User).where(User.tenant_id == 3).order_by(User.email)).first()
        u1.orders.append(Order(tenant_id=1, number=602, placed_at=EPOCH))
        u3.orders.append(Order(tenant_id=3, number=602, placed_at=EPOCH))
        session.commit()
        rec.answer("committed over two tenants", session.execute(
            select(Order.tenant_id, Order.number).where(Order.number == 602)
            .order_by(Order.tenant_id)).all())

        # A savepoint: the duplicate fails, the rest of the transaction stays.
        session.add(User(tenant_id=5, email="saved@t5.example", name="saved", created_at=EPOCH))
        session.flush()

        def duplicate():
            with session.begin_nested():
                session.add(User(tenant_id=5, email="saved@t5.example", name="twice",
                                 created_at=EPOCH))
        try:
            duplicate()
            rec.answer("savepoint duplicate", "no error")
        except DBAPIError as e:
            rec.answer("savepoint duplicate", error_of(e.orig))
        session.add(User(tenant_id=5, email="after@t5.example", name="after", created_at=EPOCH))
        session.commit()
        rec.answer("after the savepoint", session.execute(
            select(User.email, User.name).where(User.tenant_id == 5, User.created_at == EPOCH)
            .order_by(User.email)).all())

        def fk_violation():
            session.add(Order(tenant_id=2, user_id=987654321, number=699, placed_at=EPOCH))
            session.flush()
        rec.attempt("foreign key violation", fk_violation, session)
        session.rollback()


def insert_select(engine, rec):
    rec.step("insert select")
    with Session(engine) as session:
        lines = session.scalars(select(OrderLine).where(OrderLine.tenant_id == 3)
                                .order_by(OrderLine.id)).all()
        first = lines[0] if lines else None
        if first is not None:
            src = select(OrderLine.tenant_id, OrderLine.order_id, OrderLine.line_no + 100,
                         OrderLine.product_id, OrderLine.qty, OrderLine.unit_price).where(
                OrderLine.tenant_id == 3, OrderLine.order_id == first.order_id)
            rec.attempt("copy an order's lines (same tenant)", lambda: session.execute(
                insert(OrderLine).from_select(["tenant_id", "order_id", "line_no", "product_id",
                                               "qty", "unit_price"], src)).rowcount, session)
            session.commit()
        # A new tenant 9 made from tenant 1's users: the key is a constant.
        src = select(literal(9), User.email, User.name, User.created_at).where(
            User.tenant_id == 1)
        rec.attempt("copy tenant 1's users into tenant 9", lambda: session.execute(
            insert(User).from_select(["tenant_id", "email", "name", "created_at"], src)).rowcount,
            session)
        session.commit()
        src = select(Order.tenant_id, literal("order placed"), Order.placed_at).where(
            Order.number.between(900, 999))
        rec.attempt("audit rows from orders of every tenant", lambda: session.execute(
            insert(Audit).from_select(["tenant_id", "action", "at"], src)).rowcount, session)
        session.commit()


def dump(engine):
    with Session(engine) as session:
        return {
            "app_products": [[Id("app_products", p.id), p.sku, p.name, p.price]
                             for p in session.scalars(select(Product).order_by(Product.sku))],
            "app_users": [user_row(u) + [u.created_at] for u in session.scalars(
                select(User).order_by(User.tenant_id, User.email))],
            "app_orders": [order_row(o) for o in session.scalars(
                select(Order).order_by(Order.tenant_id, Order.number))],
            "app_order_lines": [line_row(ln) for ln in session.scalars(
                select(OrderLine).join(OrderLine.order)
                .order_by(OrderLine.tenant_id, Order.number, OrderLine.line_no))],
            "app_audit": [[Id("app_audit", a.id), a.tenant_id, a.action, a.at]
                          for a in session.scalars(select(Audit).order_by(
                              Audit.tenant_id, Audit.action, Audit.at))],
        }


def main():
    engine = create_engine("postgresql+psycopg2://", future=True)
    rec = Recorder()
    for step in (schema, seed_products, seed_tenants, eager_loading, reports, streaming, bulk,
                 upserts, changes, transactions, insert_select):
        step(engine, rec)
    out = {"app": "sqla", "steps": rec.steps, "dump": jsonable(dump(engine))}
    engine.dispose()
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
