"""list indexes: one index per sort and filter the API offers on a company's lists (issue 8).

Every list pages with a keyset on (sort column, id) inside one company, so each sort gets an index on
(company_id, sort column, id): a page is then a short index range scan however many rows the company has,
forwards or backwards, first page or later. Filters that a sort index cannot serve cheaply (a rare value such
as one project, one user, a draft status) get an index that starts with the filter; the planner then reads the
matching rows and sorts that handful. `tests/test_list_indexes.py` EXPLAINs every filter and sort at 100k rows
and fails when one reads a company table sequentially, so a new filter or sort needs its index here.

A sort on `id` alone is served by (company_id, id), which also serves every lookup by company alone.

Revision ID: 0007_api_speed
Revises: 0006 (and needs 0007_ops_security, which creates the invitations table)
"""

from alembic import op

revision = "0007_api_speed"
down_revision = "0006"
branch_labels = None
depends_on = ("0007_ops_security",)  # the invitations table

# table -> column lists (company_id is prepended, id appended for the keyset's tie-break)
SORTS: dict[str, tuple[str, ...]] = {
    "clients": ("name", "created_at", "updated_at"),
    "projects": ("name", "created_at", "updated_at", "budget_minor"),
    "time_entries": ("work_date", "created_at", "updated_at"),
    "expenses": ("incurred_on", "amount_minor", "created_at"),
    "invoices": ("created_at", "updated_at", "total_minor", "status"),
    "credit_notes": ("issue_date", "created_at"),
    "payments": ("received_on", "amount_minor", "created_at"),
    "accounts": ("name",),
    "journal_entries": ("entry_date", "created_at"),
    "closed_periods": ("closed_at",),
    "memberships": ("role", "created_at"),
    "api_tokens": ("created_at", "expires_at"),
    "usage_events": ("occurred_at",),
}
BY_ID = ("clients", "projects", "time_entries", "expenses", "invoices", "credit_notes", "payments", "accounts",
         "journal_entries", "memberships", "api_tokens", "usage_events")

# Filters whose rare values a sort index would have to skip through (full column lists, after company_id).
FILTERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "invoices": (("project_id",), ("issue_date",)),
    "time_entries": (("user_id", "work_date"),),
    "expenses": (("project_id",),),
    "usage_events": (("event_name", "occurred_at"), ("user_id", "occurred_at")),
    "audit_log": (("actor_user_id", "seq"), ("request_id",), ("action", "seq")),
    # the list shows open invitations only, a few among the accepted and expired ones: status first
    "invitations": (("status", "id"), ("status", "created_at", "id")),
}


def _indexes() -> list[tuple[str, str, list[str]]]:
    out = []
    for table, columns in SORTS.items():
        out += [(f"ix_{table}_list_{column}", table, ["company_id", column, "id"]) for column in columns]
    out += [(f"ix_{table}_list_id", table, ["company_id", "id"]) for table in BY_ID]
    for table, lists in FILTERS.items():
        out += [(f"ix_{table}_filter_{'_'.join(cols)}", table, ["company_id", *cols]) for cols in lists]
    return out


def upgrade() -> None:
    for name, table, columns in _indexes():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_indexes()):
        op.drop_index(name, table_name=table)
