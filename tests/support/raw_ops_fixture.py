"""A small `raw_ops` schema as dlt leaves it, in a DuckDB file or a PostgreSQL database.

The tables and columns are derived from the ops models (operational_api/db/models.py) the way the
ingest copies them: same table and column names, minus `users.password_hash`, plus dlt's
`_dlt_load_id` and `_dlt_id` (text). Timestamps are timestamptz, Numeric is decimal, money bigint.

    create_raw_ops(target)                      # every table, filled with sample_rows()
    create_raw_ops(target, rows={...})          # your own rows (tables not named stay empty)
    insert_rows(target, "invoices", [{...}])    # add rows later, e.g. a rule-breaking one
    execute(target, "update raw_ops.invoices set ...")

`target` is a DuckDB file path, a `duckdb:///...` URL or a `postgresql://...` URL. Rows are dicts;
missing columns are null except `created_at`/`updated_at` (a fixed time) and the dlt columns.
The expected figures of the sample data are in SAMPLE_REVENUE_MART.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
from psycopg2.extras import Json
from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Integer, Numeric, String

from ez360.core.warehouse import RAW_SCHEMAS, Warehouse, parse_warehouse_url
from ingest.ops_source import EXCLUDED_COLUMNS, OPS_TABLES
from operational_api.db.registry import metadata as ops_metadata

RAW_SCHEMA = RAW_SCHEMAS["ops"]
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
LOAD_ID = "1704067200.000001"
LOADED_AT = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)

Target = str | Path


def raw_ops_columns() -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, kind)]} with kind one of bigint, text, boolean, date, timestamptz,
    decimal(p,s), json: the raw copy of every ops table, dlt columns last."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for table in ops_metadata.sorted_tables:
        if table.name not in OPS_TABLES:  # what the ops ingest copies, no more (e.g. no credentials)
            continue
        columns = [
            (column.name, _kind(column.type))
            for column in table.columns
            if column.name not in EXCLUDED_COLUMNS.get(table.name, ())
        ]
        tables[table.name] = columns + [(name, "text") for name in DLT_COLUMNS]
    return tables


def _kind(sa_type: Any) -> str:
    if isinstance(sa_type, (Integer, BigInteger)):
        return "bigint"
    if isinstance(sa_type, Boolean):
        return "boolean"
    if isinstance(sa_type, DateTime):
        return "timestamptz"
    if isinstance(sa_type, Date):
        return "date"
    if isinstance(sa_type, Numeric):
        return f"decimal({sa_type.precision},{sa_type.scale})"
    if isinstance(sa_type, JSON):
        return "json"
    if isinstance(sa_type, String):
        return "text"
    raise TypeError(f"no raw_ops type for {sa_type!r}")


def _sql_type(kind: str, engine: str) -> str:
    if kind == "timestamptz":
        return "timestamp with time zone"
    if kind == "json":
        return "jsonb" if engine == "postgres" else "json"
    return kind


def _ts(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def sample_rows() -> dict[str, list[dict[str, Any]]]:
    """Three companies (USD+EUR, JPY, KWD) and invoices in every status, incl. draft and void, with a
    month boundary (Jan 31 / Feb 1) and a leap day. A fresh deep copy on every call: mutate freely."""
    companies = [
        dict(id=1, slug="acme", name="Acme Consulting", base_currency="USD", invoice_prefix="ACME"),
        dict(id=2, slug="sakura", name="Sakura Studio", base_currency="JPY", invoice_prefix="SAK"),
        dict(id=3, slug="gulf", name="Gulf Advisory", base_currency="KWD", invoice_prefix="GULF"),
    ]
    for company in companies:
        company.update(fiscal_year_start_month=1, invoice_number_format="{prefix}-{year}-{seq:05d}",
                       payment_terms_days=30, plan="pro")
    users = [
        dict(id=1, email="ada@acme.test", full_name="Ada Acme", is_active=True),
        dict(id=2, email="hana@sakura.test", full_name="Hana Sakura", is_active=True),
        dict(id=3, email="omar@gulf.test", full_name="Omar Gulf", is_active=True),
    ]
    memberships = [dict(id=i, company_id=i, user_id=i, role="owner") for i in (1, 2, 3)]
    clients = [
        dict(id=10, company_id=1, name="Globex", email="ap@globex.test", currency="USD"),
        dict(id=11, company_id=1, name="Initech GmbH", email="ap@initech.test", currency="EUR"),
        dict(id=20, company_id=2, name="Tanaka KK", email="ap@tanaka.test", currency="JPY"),
        dict(id=30, company_id=3, name="Kuwait Trading", email="ap@kt.test", currency="KWD"),
    ]
    projects = [
        dict(id=1, company_id=1, client_id=10, name="ERP rollout", status="active", currency="USD",
             budget_minor=5_000_000, hourly_rate_minor=15_000),
        dict(id=2, company_id=2, client_id=20, name="Brand refresh", status="active", currency="JPY",
             budget_minor=2_000_000, hourly_rate_minor=12_000),
    ]

    def invoice(id_, company, client, status, currency, issued, sub, tax, paid=0):
        return dict(
            id=id_, company_id=company, client_id=client, project_id=None, status=status, currency=currency,
            number=None if status == "draft" else f"INV-{id_}",
            issue_date=date.fromisoformat(issued) if issued else None,
            due_date=None, subtotal_minor=sub, tax_minor=tax, total_minor=sub + tax, amount_paid_minor=paid,
            sent_at=_ts(issued) if issued and status != "draft" else None,
        )

    invoices = [
        # Acme, USD: Jan 31 and Feb 1 fall in different months; draft and void never count.
        invoice(100, 1, 10, "sent", "USD", "2024-01-31", 100_000, 20_000),
        invoice(101, 1, 10, "paid", "USD", "2024-01-15", 50_000, 10_000, paid=60_000),
        invoice(102, 1, 10, "partially_paid", "USD", "2024-02-01", 25_000, 5_000, paid=10_000),
        invoice(103, 1, 10, "draft", "USD", "2024-01-20", 99_900, 0),
        invoice(104, 1, 10, "void", "USD", "2024-01-10", 77_700, 0),
        # Acme also bills in EUR: a separate row of the same month.
        invoice(105, 1, 11, "sent", "EUR", "2024-01-05", 40_000, 8_000),
        # Sakura, JPY (exponent 0: minor units are yen).
        invoice(200, 2, 20, "paid", "JPY", "2024-01-31", 120_000, 12_000, paid=132_000),
        invoice(201, 2, 20, "sent", "JPY", "2024-01-02", 5_000, 500),
        invoice(202, 2, 20, "void", "JPY", "2024-01-03", 9_999, 0),
        invoice(203, 2, 20, "draft", "JPY", None, 1_000, 100),
        # Gulf, KWD (exponent 3: 1.250 KWD = 1250 fils); leap day then March.
        invoice(300, 3, 30, "sent", "KWD", "2024-02-29", 1_250, 0),
        invoice(301, 3, 30, "paid", "KWD", "2024-03-01", 2_500, 125, paid=2_625),
    ]
    invoice_lines = [
        dict(id=i, company_id=inv["company_id"], invoice_id=inv["id"], position=1, description="Services",
             quantity=Decimal("1.0000"), unit_price_minor=inv["subtotal_minor"], discount_percent=Decimal("0"),
             tax_rate_percent=Decimal("0"), net_minor=inv["subtotal_minor"], tax_minor=inv["tax_minor"])
        for i, inv in enumerate(invoices, start=1000)
    ]
    payments = [
        dict(id=500, company_id=1, client_id=10, method="bank", currency="USD", amount_minor=60_000,
             received_on=date(2024, 1, 20), reference="SEPA 1"),
        dict(id=501, company_id=1, client_id=10, method="card", currency="USD", amount_minor=10_000,
             received_on=date(2024, 2, 10), reference=""),
        dict(id=502, company_id=2, client_id=20, method="stripe", currency="JPY", amount_minor=132_000,
             received_on=date(2024, 2, 5), reference="", stripe_payment_intent_id="pi_123",
             stripe_charge_id="ch_123"),
        dict(id=503, company_id=3, client_id=30, method="bank", currency="KWD", amount_minor=2_625,
             received_on=date(2024, 3, 15), reference="KNET"),
    ]
    payment_allocations = [
        dict(id=600, company_id=1, payment_id=500, invoice_id=101, amount_minor=60_000),
        dict(id=601, company_id=1, payment_id=501, invoice_id=102, amount_minor=10_000),
        dict(id=602, company_id=2, payment_id=502, invoice_id=200, amount_minor=132_000),
        dict(id=603, company_id=3, payment_id=503, invoice_id=301, amount_minor=2_625),
    ]
    usage_events = [
        dict(id=700, company_id=1, user_id=1, event_name="invoice.sent", occurred_at=_ts("2024-01-31"),
             properties={"invoice_id": 100}),
    ]
    return copy.deepcopy(dict(
        companies=companies, users=users, memberships=memberships, clients=clients, projects=projects,
        invoices=invoices, invoice_lines=invoice_lines, payments=payments,
        payment_allocations=payment_allocations, usage_events=usage_events,
    ))


# The mart the sample rows must produce: (company_slug, revenue_month, currency, currency_exponent,
# invoice_count, net_revenue_minor, tax_minor, gross_revenue_minor), ordered.
SAMPLE_REVENUE_MART = [
    ("acme", date(2024, 1, 1), "EUR", 2, 1, 40_000, 8_000, 48_000),
    ("acme", date(2024, 1, 1), "USD", 2, 2, 150_000, 30_000, 180_000),
    ("acme", date(2024, 2, 1), "USD", 2, 1, 25_000, 5_000, 30_000),
    ("gulf", date(2024, 2, 1), "KWD", 3, 1, 1_250, 0, 1_250),
    ("gulf", date(2024, 3, 1), "KWD", 3, 1, 2_500, 125, 2_625),
    ("sakura", date(2024, 1, 1), "JPY", 0, 2, 125_000, 12_500, 137_500),
]


def create_raw_ops(
    target: Target, rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> Warehouse:
    """(Re)create schema raw_ops with every ops table and insert `rows` (default: sample_rows())."""
    warehouse = _warehouse(target)
    rows = sample_rows() if rows is None else rows
    unknown = set(rows) - set(raw_ops_columns())
    if unknown:
        raise KeyError(f"not raw_ops tables: {sorted(unknown)}")
    statements = [f"drop schema if exists {RAW_SCHEMA} cascade", f"create schema {RAW_SCHEMA}"]
    for table, columns in raw_ops_columns().items():
        ddl = ", ".join(
            f"\"{name}\" {_sql_type(kind, warehouse.kind)}" + (" not null" if name in DLT_COLUMNS else "")
            for name, kind in columns
        )
        statements.append(f"create table {RAW_SCHEMA}.{table} ({ddl})")
    with cursor(warehouse) as cur:
        for statement in statements:
            cur.execute(statement)
    for table, table_rows in rows.items():
        insert_rows(warehouse, table, table_rows)
    return warehouse


def insert_rows(target: Target | Warehouse, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows to raw_ops.<table>, filling dlt's columns and created_at/updated_at like a load."""
    if not rows:
        return
    warehouse = target if isinstance(target, Warehouse) else _warehouse(target)
    columns = raw_ops_columns()[table]
    names = [name for name, _ in columns]
    unknown = {key for row in rows for key in row} - set(names)
    if unknown:
        raise KeyError(f"raw_ops.{table} has no columns {sorted(unknown)}")
    placeholder = "%s" if warehouse.kind == "postgres" else "?"
    sql = (
        f"insert into {RAW_SCHEMA}.{table} ({', '.join(chr(34) + n + chr(34) for n in names)}) "
        f"values ({', '.join([placeholder] * len(names))})"
    )
    values = [tuple(_value(row, name, kind, warehouse.kind) for name, kind in columns) for row in rows]
    with cursor(warehouse) as cur:
        cur.executemany(sql, values)


def execute(target: Target | Warehouse, sql: str) -> None:
    """Run one statement against the warehouse (e.g. to break a rule on purpose)."""
    warehouse = target if isinstance(target, Warehouse) else _warehouse(target)
    with cursor(warehouse) as cur:
        cur.execute(sql)


def _value(row: Mapping[str, Any], name: str, kind: str, engine: str) -> Any:
    if name == "_dlt_load_id":
        return row.get(name, LOAD_ID)
    if name == "_dlt_id":
        return row.get(name) or uuid.uuid4().hex[:14]
    if name in ("created_at", "updated_at") and name not in row:
        return LOADED_AT
    value = row.get(name)
    if kind == "json" and value is not None:
        return Json(value) if engine == "postgres" else json.dumps(value)
    return value


def _warehouse(target: Target | Warehouse) -> Warehouse:
    if isinstance(target, Warehouse):
        return target
    text = str(target)
    if "://" in text:
        return parse_warehouse_url(text)
    return Warehouse(kind="duckdb", path=Path(text).resolve())


@contextmanager
def cursor(warehouse: Warehouse) -> Iterator[Any]:
    """A cursor on the warehouse (DuckDB connection or psycopg2 cursor), committed and closed afterwards."""
    if warehouse.kind == "duckdb":
        warehouse.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(warehouse.path))
        try:
            yield con
        finally:
            con.close()
    else:
        con = psycopg2.connect(warehouse.postgres_dsn())
        try:
            with con, con.cursor() as cur:
                yield cur
        finally:
            con.close()
