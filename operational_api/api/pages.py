"""What a page of records needs beside its rows, loaded for the whole page at once (never one query per row).

Each loader takes the company and the ids of the page's rows and answers a dict keyed by row id; the company
condition is repeated on the child table, so a loader cannot leak another company's children even if handed a
foreign id. Rows are plain SQLAlchemy Core rows (attribute access like the ORM objects, none of the ORM's
per-object bookkeeping, which a read-only page does not need).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from operational_api.db.models import Account, InvoiceLine, JournalLine, PaymentAllocation, Refund


def _grouped(rows: Iterable[Row], key: str) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        out[getattr(row, key)].append(row)
    return out


def _ids():
    """The page's row ids, bound as a list when the statement runs (`IN (...)` expanded to its length)."""
    return bindparam("ids", expanding=True)


def _children(db: Session, table, parent: str, company_id: int, ids: list[int], order: str) -> dict[int, list[Row]]:
    """Rows of `table` whose `parent` column is one of `ids`, grouped by it, in `order` within each parent."""
    if not ids:
        return {}
    return _grouped(db.execute(_children_query(table, parent, order), {"company_id": company_id, "ids": ids}), parent)


@cache
def _children_query(table, parent: str, order: str):
    """Built once per loader: its cache key is memoized on the statement, so a page only binds its ids."""
    return (select(table).where(table.c.company_id == bindparam("company_id"), table.c[parent].in_(_ids()))
            .order_by(table.c[parent], table.c[order]))


def invoice_lines(db: Session, company_id: int, invoice_ids: list[int]) -> dict[int, list[Row]]:
    return _children(db, InvoiceLine.__table__, "invoice_id", company_id, invoice_ids, "position")


_line = InvoiceLine.__table__
# A listed invoice's lines as `LINE_FIELDS` tuples (a list page unpacks ~150 of them: no whole row, no names)
LINE_FIELDS = ("invoice_id", "position", "description", "quantity", "unit_price_minor", "discount_percent",
               "tax_rate_percent", "net_minor", "tax_minor")
_LISTED_LINES = (select(*(_line.c[name] for name in LINE_FIELDS))
                 .where(_line.c.company_id == bindparam("company_id"), _line.c.invoice_id.in_(_ids()))
                 .order_by(_line.c.invoice_id, _line.c.position))


def listed_invoice_lines(db: Session, company_id: int, invoice_ids: list[int]) -> list[tuple]:
    """The lines of a page of invoices, in invoice then line order, as tuples of `LINE_FIELDS`."""
    if not invoice_ids:
        return []
    return db.connection().execute(_LISTED_LINES, {"company_id": company_id, "ids": invoice_ids}).all()


def payment_allocations(db: Session, company_id: int, payment_ids: list[int]) -> dict[int, list[Row]]:
    return _children(db, PaymentAllocation.__table__, "payment_id", company_id, payment_ids, "id")


_refund, _lines, _accounts = Refund.__table__, JournalLine.__table__, Account.__table__
# Built once, like _children_query's statements
_REFUNDED = (select(_refund.c.payment_id, func.sum(_refund.c.amount_minor))
             .where(_refund.c.company_id == bindparam("company_id"), _refund.c.payment_id.in_(_ids()))
             .group_by(_refund.c.payment_id))
_ENTRY_LINES = (select(_lines.c.journal_entry_id, _lines.c.debit_minor, _lines.c.credit_minor, _accounts.c.code)
                .join(_accounts, _accounts.c.id == _lines.c.account_id)
                .where(_lines.c.company_id == bindparam("company_id"), _lines.c.journal_entry_id.in_(_ids()))
                .order_by(_lines.c.journal_entry_id, _lines.c.id))


def refunded(db: Session, company_id: int, payment_ids: list[int]) -> dict[int, int]:
    """Minor units refunded per payment (payments without refunds are absent)."""
    if not payment_ids:
        return {}
    return {pid: int(total) for pid, total in db.execute(_REFUNDED, {"company_id": company_id, "ids": payment_ids})}


def entry_lines(db: Session, company_id: int, entry_ids: list[int]) -> dict[int, list[Row]]:
    """Journal lines with their account's code, in line order."""
    if not entry_ids:
        return {}
    return _grouped(db.execute(_ENTRY_LINES, {"company_id": company_id, "ids": entry_ids}), "journal_entry_id")
