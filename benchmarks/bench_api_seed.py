"""Fast seeding for the API benchmark: many invoices in one company, written with COPY instead of the service
layer (which needs ~50 ms an invoice: 100k invoices would take over an hour).

What is written is what the service layer would have left behind, in an order the database triggers accept:

1. invoices are COPYed as drafts (the insert trigger refuses anything else), their lines next (the lines
   trigger refuses lines of a sent invoice), then one UPDATE sends them (draft -> sent: numbered, positive);
2. payments and their allocations are COPYed, then one UPDATE books what each invoice was paid (the amounts
   trigger recomputes the allocations and the derived status);
3. every sent invoice and every payment gets its posted journal entry (AR / revenue, bank / AR), COPYed as a
   draft with its lines and then posted by one UPDATE (the balance trigger sums each entry's lines);
4. every row written gets one audit row holding its final state, chained onto the company's hash chain with
   the audit trail's own snapshot and hash functions, and `audit_heads` moves to the new last link; so
   `ez360 audit verify` finds the seeded company intact and the API appends to a valid chain;
5. the invoice counter (`number_sequences`) continues after the last seeded number.

Ids are reserved from each table's sequence first, so the rows can reference each other before they exist.
The company, its users, clients and projects are created through the service layer (few rows, real rules).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Connection, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from operational_api.db import audit_trail
from operational_api.db import models as m
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.services import companies, records
from operational_api.services.invoicing import LineInput, line_amounts
from operational_api.services.ledger import AR, BANK, REVENUE

ACTOR = audit_trail.Actor(None, "system:bench-seed")
HOURLY_RATE_MINOR = 15_000


@dataclass
class Mix:
    """How many invoices of each kind to add to a company."""

    paid: int = 0  # sent and paid in full by one bank payment
    partly_paid: int = 0  # sent, half paid
    open: int = 0  # sent, nothing paid yet
    drafts: int = 0
    open_total_minor: int | None = None  # total of each open invoice (None: an ordinary invoice amount)

    @property
    def total(self) -> int:
        return self.paid + self.partly_paid + self.open + self.drafts

    @classmethod
    def of_company(cls, invoices: int) -> Mix:
        """A company's history: most invoices paid, some open or partly paid, a few drafts."""
        drafts, open_, partly = invoices * 3 // 100, invoices * 8 // 100, invoices * 4 // 100
        return cls(paid=invoices - drafts - open_ - partly, partly_paid=partly, open=open_, drafts=drafts)


@dataclass
class Added:
    """Ids of what was added, by kind (each kind is one contiguous id range, in the order of `Mix`)."""

    paid: list[int] = field(default_factory=list)
    partly_paid: list[int] = field(default_factory=list)
    open: list[int] = field(default_factory=list)
    drafts: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table


@dataclass(frozen=True)
class BenchCompany:
    id: int
    slug: str
    client_ids: list[int]
    project_ids: list[int]
    finance_emails: list[str]


def create_company(url: str, *, slug: str, name: str, clients: int, password_hash: str, finance_users: int,
                   currency: str = "USD") -> BenchCompany:
    """A company on the Business plan with clients, a project each and finance users, via the service layer."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            audit_trail.set_actor(s, ACTOR)
            company = companies.create_company(s, slug=slug, name=name, base_currency=currency,
                                               invoice_prefix="BEN", plan="business")
            client_ids, project_ids = [], []
            for i in range(clients):
                client = records.create_client(s, company, name=f"Bench client {i + 1:04d}",
                                               email=f"ap{i + 1}@client.example.org", currency=currency)
                project = records.create_project(s, company, client, name=f"Retainer {i + 1:04d}",
                                                 hourly_rate_minor=HOURLY_RATE_MINOR, budget_minor=0)
                client_ids.append(client.id)
                project_ids.append(project.id)
            emails = add_finance_users(s, company, finance_users, password_hash)
            return BenchCompany(company.id, slug, client_ids, project_ids, emails)
    finally:
        engine.dispose()


def add_finance_users(s: Session, company: m.Company, count: int, password_hash: str) -> list[str]:
    emails = []
    for i in range(count):
        email = f"bench.finance.{i + 1:02d}@{company.slug}.example.com"
        user = companies.create_user(s, email=email, full_name=f"Bench finance {i + 1}", password_hash=password_hash)
        companies.add_member(s, company, user, "finance")
        emails.append(email)
    return emails


# --- bulk rows ---------------------------------------------------------------------------------------------

def _reserve(conn: Connection, table: str, count: int) -> int:
    """The first of `count` consecutive ids taken from the table's sequence (nothing else writes meanwhile)."""
    if count == 0:
        return 0
    seq = f"{table}_id_seq"
    first = conn.execute(text(f"SELECT nextval('{seq}')")).scalar()
    conn.execute(text(f"SELECT setval('{seq}', {first + count - 1})"))
    return first


def _escape(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


_FORMAT = {type(None): lambda _v: r"\N", bool: lambda v: "t" if v else "f", int: str, Decimal: str,
           str: _escape, date: date.isoformat, datetime: datetime.isoformat,
           dict: lambda v: _escape(json.dumps(v, ensure_ascii=False))}


def copy_rows(conn: Connection, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
    """COPY rows (tuples in `columns` order) into a table through the connection's psycopg2 cursor."""
    buf, n, fmt = io.StringIO(), 0, _FORMAT
    for row in rows:
        buf.write("\t".join([fmt[type(v)](v) for v in row]))
        buf.write("\n")
        n += 1
    buf.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
    cursor.close()
    return n


class _Rows:
    """The rows of one audited model as dicts of column values, each logged for its audit row."""

    def __init__(self, model, log: list):
        self.model, self.log = model, log
        self.entity = audit_trail.ENTITY_OF[model]
        self.columns = [(a.key, a.columns[0]) for a in sa_inspect(model).mapper.column_attrs]
        self.rows: list[dict] = []

    def add(self, **values) -> dict:
        if len(values) != len(self.columns):
            raise ValueError(f"{self.entity}: give every column ({set(k for k, _ in self.columns) - set(values)})")
        self.rows.append(values)
        self.log.append((self, values))  # the audit trail's order: as the service layer writes them
        return values

    def snapshot(self, values: dict) -> dict:
        """`audit_trail.snapshot` of these column values (every column but the row's own times)."""
        if hasattr(audit_trail, "snapshot_values"):  # the trail's own, where it has one for Core inserts
            return audit_trail.snapshot_values(self.model, values)
        return {key: audit_trail.jsonable(values[key], column) for key, column in self.columns
                if key not in audit_trail.NOT_SNAPSHOT}

    def copy(self, conn: Connection, override: dict[str, object] | None = None) -> int:
        """COPY every row; `override` replaces columns at insert time (e.g. status 'draft' before sending)."""
        override = override or {}
        keys = [key for key, _ in self.columns]
        rows = (tuple([override[k] if k in override else r[k] for k in keys]) for r in self.rows)
        return copy_rows(conn, self.model.__tablename__, [c.name for _, c in self.columns], rows)


def _stamp(day: date, minute: int) -> datetime:
    return datetime.combine(day, time(9), tzinfo=UTC) + timedelta(minutes=minute % 480)


BATCH = 10_000  # invoices written per round of COPYs (bounds the memory of the seeding process)


def add_invoices(url: str, company_id: int, client_ids: list[int], project_ids: list[int], mix: Mix, *,
                 seed: int = 42, today: date | None = None) -> Added:
    """Add `mix` invoices (with lines, payments, allocations, postings and audit rows) to a company, in one
    transaction."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            seeder = _Seeder(conn, company_id, client_ids, project_ids, mix, random.Random(seed),
                             today or datetime.now(UTC).date())
            kinds = [kind for kind in ("paid", "partly_paid", "open", "drafts") for _ in range(getattr(mix, kind))]
            for start in range(0, len(kinds), BATCH):
                seeder.batch(start, kinds[start:start + BATCH])
            seeder.finish()
            return seeder.added
    finally:
        engine.dispose()


class _Seeder:
    def __init__(self, conn: Connection, company_id: int, client_ids: list[int], project_ids: list[int], mix: Mix,
                 rng: random.Random, today: date):
        self.conn, self.company_id, self.mix, self.rng = conn, company_id, mix, rng
        self.clients = list(zip(client_ids, project_ids, strict=True))
        self.company = conn.execute(select(m.Company.__table__).where(m.Company.id == company_id)).one()
        self.accounts = dict(conn.execute(select(m.Account.code, m.Account.id)
                                          .where(m.Account.company_id == company_id)).all())
        self.counter = conn.execute(select(m.NumberSequence.last_value).where(
            m.NumberSequence.company_id == company_id, m.NumberSequence.kind == "invoice")).scalar() or 0
        heads = m.AuditHead.__table__
        head = conn.execute(select(heads.c.last_seq, heads.c.last_hash).where(heads.c.company_id == company_id)
                            .with_for_update()).first()
        self.had_head = head is not None
        self.seq, self.prev = (head.last_seq, head.last_hash) if head else (0, audit_trail.GENESIS)
        self.added = Added()
        self.sent = mix.total - mix.drafts
        # paid history first (up to four years back), open invoices recent, drafts being prepared now
        self.span = max(1, (today - date(today.year - 4, 1, 1)).days - 60)
        self.history_start, self.today = today - timedelta(days=self.span + 45), today

    def batch(self, first: int, kinds: list[str]) -> None:
        conn, company_id, rng = self.conn, self.company_id, self.rng
        currency, terms = self.company.base_currency, self.company.payment_terms_days
        n_lines = [1 + (rng.random() < 0.3) for _ in kinds]
        paying = sum(kind in ("paid", "partly_paid") for kind in kinds)
        sent = sum(kind != "drafts" for kind in kinds)
        ids = {"invoices": _reserve(conn, "invoices", len(kinds)),
               "invoice_lines": _reserve(conn, "invoice_lines", sum(n_lines)),
               "payments": _reserve(conn, "payments", paying),
               "payment_allocations": _reserve(conn, "payment_allocations", paying),
               "journal_entries": _reserve(conn, "journal_entries", sent + paying),
               "journal_lines": _reserve(conn, "journal_lines", 2 * (sent + paying))}
        nxt = dict(ids)

        def take(table: str) -> int:
            nxt[table] += 1
            return nxt[table] - 1

        log: list = []
        invoices, lines = _Rows(m.Invoice, log), _Rows(m.InvoiceLine, log)
        payments, allocations = _Rows(m.Payment, log), _Rows(m.PaymentAllocation, log)
        entries, entry_lines = _Rows(m.JournalEntry, log), _Rows(m.JournalLine, log)
        author = {"created_by_id": None, "updated_by_id": None}

        def post(day: date, memo: str, source_type: str, source_id: int, legs: list[tuple[str, int, int]], at):
            entry = entries.add(id=take("journal_entries"), company_id=company_id, entry_date=day, memo=memo,
                                currency=currency, status="posted", source_type=source_type, source_id=source_id,
                                posted_at=at, reversal_of_id=None, created_at=at, updated_at=at, **author)
            for code, debit, credit in legs:
                entry_lines.add(id=take("journal_lines"), company_id=company_id, journal_entry_id=entry["id"],
                                account_id=self.accounts[code], debit_minor=debit, credit_minor=credit)

        for j, kind in enumerate(kinds):
            i = first + j
            client_id, project_id = self.clients[rng.randrange(len(self.clients))]
            invoice_id = take("invoices")
            getattr(self.added, kind).append(invoice_id)
            if kind == "drafts":
                issue = None
                created = _stamp(self.today - timedelta(days=rng.randrange(7)), i)
            else:
                issue = self.history_start + timedelta(days=int(i / max(1, self.sent) * self.span))
                created = _stamp(issue, i)
            drafted = []
            for pos in range(n_lines[j]):
                if pos == 0:
                    line = LineInput("Consulting", Decimal(rng.randint(4, 80)) / 2, HOURLY_RATE_MINOR)
                else:
                    line = LineInput("Workshop (fixed fee)", Decimal(1), HOURLY_RATE_MINOR * 6,
                                     discount_percent=Decimal(10))
                drafted.append((line, *line_amounts(line)))
            if kind == "open" and self.mix.open_total_minor:
                drafted = [(LineInput("Retainer, payable in instalments", Decimal(1), self.mix.open_total_minor),
                            self.mix.open_total_minor, 0)]
            subtotal = sum(net for _, net, _ in drafted)
            tax = sum(t for _, _, t in drafted)
            total = subtotal + tax
            paid = total if kind == "paid" else total // 2 if kind == "partly_paid" else 0
            status = {"paid": "paid", "partly_paid": "partially_paid", "open": "sent", "drafts": "draft"}[kind]
            number = None
            if issue is not None:
                self.counter += 1
                number = self.company.invoice_number_format.format(prefix=self.company.invoice_prefix,
                                                                   year=issue.year, seq=self.counter)
            invoices.add(id=invoice_id, company_id=company_id, client_id=client_id, project_id=project_id,
                         number=number, status=status, currency=currency, issue_date=issue,
                         due_date=issue + timedelta(days=terms) if issue else None,
                         subtotal_minor=subtotal, tax_minor=tax, total_minor=total, amount_paid_minor=paid,
                         credited_minor=0, sent_at=created if issue else None, notes="", deleted_at=None,
                         created_at=created, updated_at=created, **author)
            for pos, (line, net, line_tax) in enumerate(drafted):
                lines.add(id=take("invoice_lines"), company_id=company_id, invoice_id=invoice_id, position=pos,
                          description=line.description, quantity=line.quantity.quantize(Decimal("0.0001")),
                          unit_price_minor=line.unit_price_minor,
                          discount_percent=line.discount_percent.quantize(Decimal("0.01")),
                          tax_rate_percent=line.tax_rate_percent.quantize(Decimal("0.01")), net_minor=net,
                          tax_minor=line_tax)
            if issue is None:
                continue
            post(issue, f"Invoice {number}", "invoice", invoice_id, [(AR, total, 0), (REVENUE, 0, subtotal)], created)
            if paid:
                received = min(self.today, issue + timedelta(days=rng.randint(5, 40)))
                at = _stamp(received, i)
                payment = payments.add(id=take("payments"), company_id=company_id, client_id=client_id,
                                       method="bank", currency=currency, amount_minor=paid, received_on=received,
                                       reference=f"BANK-{received:%Y%m%d}-{invoice_id}",
                                       stripe_payment_intent_id=None, stripe_charge_id=None, created_at=at,
                                       updated_at=at, **author)
                allocations.add(id=take("payment_allocations"), company_id=company_id, payment_id=payment["id"],
                                invoice_id=invoice_id, amount_minor=paid, refund_id=None, created_at=at)
                post(received, f"Payment {payment['reference']}", "payment", payment["id"],
                     [(BANK, paid, 0), (AR, 0, paid)], at)

        self._count("invoices", invoices.copy(conn, {"status": "draft", "amount_paid_minor": 0}))
        self._count("invoice_lines", lines.copy(conn))
        _analyze(conn, "invoices", "invoice_lines")  # the triggers' queries plan on fresh statistics
        conn.execute(text("UPDATE invoices SET status = 'sent' WHERE id BETWEEN :a AND :b AND number IS NOT NULL"),
                     {"a": ids["invoices"], "b": ids["invoices"] + len(kinds) - 1})
        self._count("payments", payments.copy(conn))
        self._count("payment_allocations", allocations.copy(conn))
        _analyze(conn, "payments", "payment_allocations")
        conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS bench_paid (id integer PRIMARY KEY, paid bigint, "
                          "status text) ON COMMIT DROP"))
        conn.execute(text("TRUNCATE bench_paid"))
        copy_rows(conn, "bench_paid", ["id", "paid", "status"],
                  ((r["id"], r["amount_paid_minor"], r["status"]) for r in invoices.rows if r["amount_paid_minor"]))
        conn.execute(text("UPDATE invoices i SET amount_paid_minor = p.paid, status = p.status FROM bench_paid p "
                          "WHERE i.id = p.id"))
        self._count("journal_entries", entries.copy(conn, {"status": "draft", "posted_at": None}))
        self._count("journal_lines", entry_lines.copy(conn))
        _analyze(conn, "journal_entries", "journal_lines")
        conn.execute(text("UPDATE journal_entries e SET status = 'posted', posted_at = e.created_at "
                          "WHERE id BETWEEN :a AND :b"),
                     {"a": ids["journal_entries"], "b": ids["journal_entries"] + len(entries.rows) - 1})
        self._count("audit_log", self._audit(log))

    def _count(self, table: str, n: int) -> None:
        self.added.rows[table] = self.added.rows.get(table, 0) + n

    def _audit(self, log: list[tuple[_Rows, dict]], update: bool = False) -> int:
        """One 'create' audit row per seeded row holding its final state, chained onto the company's log
        (`update`: an 'update' row instead, for a row that existed before)."""
        first_id = _reserve(self.conn, "audit_log", len(log))

        def chain() -> Iterator[tuple]:
            at = datetime.now(UTC)
            for n, (kind, values) in enumerate(log):
                self.seq += 1
                at = values.get("created_at") or at  # a line carries no time: its document's
                row = {"company_id": self.company_id, "seq": self.seq, "occurred_at": at,
                       "actor_user_id": ACTOR.user_id, "actor": ACTOR.label, "request_id": None,
                       "action": "update" if update else "create", "entity_type": kind.entity,
                       "entity_id": values["id"], "before": None, "after": kind.snapshot(values)}
                digest = audit_trail.row_hash(self.prev, row)
                yield (first_id + n, self.prev, digest, *(row[k] for k in audit_trail.HASHED))
                self.prev = digest

        return copy_rows(self.conn, "audit_log", ["id", "prev_hash", "hash", *audit_trail.HASHED], chain())

    def finish(self) -> None:
        conn, heads = self.conn, m.AuditHead.__table__
        if self.counter:
            conn.execute(text("INSERT INTO number_sequences (company_id, kind, last_value) VALUES (:c, 'invoice', :v) "
                              "ON CONFLICT (company_id, kind) DO UPDATE SET last_value = EXCLUDED.last_value"),
                         {"c": self.company_id, "v": self.counter})
            if "number_sequence" in audit_trail.AUDITED:  # where the trail audits the counters too (issue 7)
                counter = _Rows(m.NumberSequence, [])
                values = {"company_id": self.company_id, "kind": "invoice", "last_value": self.counter}
                self._count("audit_log", self._audit([(counter, {**values, "id": audit_trail.COUNTER_IDS["invoice"]})],
                                                     update=True))
        head = {"last_seq": self.seq, "last_hash": self.prev}
        if hasattr(audit_trail, "head_seal"):  # where heads carry a seal (issue 7), seal the new last link
            head["seal"] = audit_trail.head_seal(audit_trail.seal_key(), self.company_id, self.seq, self.prev)
        if self.had_head:
            conn.execute(heads.update().where(heads.c.company_id == self.company_id).values(**head))
        else:
            conn.execute(heads.insert().values(company_id=self.company_id, **head))


def _analyze(conn: Connection, *tables: str) -> None:
    for table in tables:
        conn.execute(text(f"ANALYZE {table}"))
