"""Company-scoped data access: every read of a tenant row goes through here, filtered by company."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from operational_api.services.errors import NotFound

T = TypeVar("T")


class Scoped:
    def __init__(self, session: Session, company_id: int):
        self.session, self.company_id = session, company_id

    def select(self, model: type[T]) -> Select:
        return select(model).where(model.company_id == self.company_id)

    def rows(self, model) -> Select:
        """The company's rows of `model` as Core rows (read-only pages: no ORM bookkeeping per row)."""
        table = model.__table__
        return select(table).where(table.c.company_id == self.company_id)

    def get(self, model: type[T], row_id: int) -> T:
        """The row if it belongs to this company; otherwise 404, exactly as if it did not exist."""
        return self._found(model, row_id, self.session.scalar(self.select(model).where(model.id == row_id)))

    def get_row(self, model, row_id: int) -> Row:
        """`get` as a Core row, for read-only answers."""
        return self._found(model, row_id, self.session.execute(self.rows(model).where(model.id == row_id)).first())

    @staticmethod
    def _found(model, row_id: int, row):
        if row is None:
            raise NotFound(f"{model.__tablename__.rstrip('s')} {row_id} not found")
        return row
