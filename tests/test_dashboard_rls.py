"""Row-level security on the PostgreSQL warehouse's published tables, the dashboards' second line of defence:
each reader role sees its own company's rows even with no WHERE clause. The publish applies the policies to the
new tables before it swaps them in, so no read ever meets a published table without them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from apps import rls
from apps.data import ALL_COMPANIES, PublishedData
from ez360.core.settings import Settings
from ez360.core.warehouse import parse_warehouse_url
from pipelines.publish import publish
from tests.support.dashboard_marts import ACME, GLOBEX, build_postgres

pytestmark = pytest.mark.postgres


def _as(engine: sa.Engine, role: str, sql: str) -> list[tuple]:
    with engine.begin() as conn:
        conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_each_reader_role_sees_only_its_company_even_without_a_where_clause(postgres_url, tmp_path):
    warehouse = parse_warehouse_url(postgres_url)
    publish(warehouse, tmp_path, build_postgres(postgres_url), run_id="run-rls-1")
    data = PublishedData(Settings(_env_file=None, warehouse_url=postgres_url, published_dir=tmp_path))
    engine = sa.create_engine(postgres_url)
    try:
        everything = "SELECT DISTINCT company_id FROM published.fct_invoices ORDER BY 1"
        with engine.begin() as conn:  # roles of companies are made by the first read as them; nothing else is
            rls._ensure_role(conn, rls.company_reader(ACME), rls.READERS)
        assert _as(engine, rls.company_reader(ACME), everything) == [(ACME,)]  # secured by the publish itself
        assert set(data.read("fct_invoices", [ACME])["company_id"]) == {ACME}
        with engine.begin() as conn:  # a reader of a company with no rows (roles are cluster-wide: reuse is fine)
            rls._ensure_role(conn, rls.company_reader(999_999), rls.READERS)
        assert _as(engine, rls.company_reader(999_999), everything) == []
        data.read("fct_invoices", [GLOBEX])
        assert _as(engine, rls.company_reader(GLOBEX), everything) == [(GLOBEX,)]
        assert _as(engine, rls.PLATFORM_READER, everything) == [(ACME,), (GLOBEX,)]

        # a child table without company_id (candidates) follows its parent item's company
        assert list(data.read("fct_reconciliation_candidates", [ACME])["candidate_id"].sort_values()) == \
            ["ch_1", "ch_9"]
        candidates = "SELECT candidate_id FROM published.fct_reconciliation_candidates ORDER BY 1"
        assert _as(engine, rls.company_reader(ACME), candidates) == [("ch_1",), ("ch_9",)]
        assert _as(engine, rls.company_reader(GLOBEX), candidates) == [("ch_g",)]

        # rows of no company (the platform row of active users) are the platform reader's only
        data.read("rpt_active_users_daily", [ACME])
        users = "SELECT count(*) FROM published.rpt_active_users_daily"
        assert _as(engine, rls.company_reader(ACME), users) == [(2,)]
        assert _as(engine, rls.PLATFORM_READER, users) == [(4,)]
        assert len(data.read("rpt_active_users_daily", ALL_COMPANIES)) == 4

        # a new publish swaps in new tables that carry their policies before any read; a read changes nothing
        publish(warehouse, tmp_path, build_postgres(postgres_url), run_id="run-rls-2")
        policies = "SELECT c.relname, c.oid, p.oid FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid " \
                   "WHERE c.relnamespace = 'published'::regnamespace AND c.relrowsecurity ORDER BY 1"
        scoped = "SELECT table_name FROM information_schema.columns WHERE table_schema = 'published' " \
                 "AND column_name = 'company_id' UNION SELECT 'fct_reconciliation_candidates' ORDER BY 1"
        with engine.connect() as conn:
            secured = conn.execute(sa.text(policies)).all()
            assert [name for name, *_ in secured] == conn.execute(sa.text(scoped)).scalars().all()
        assert _as(engine, rls.company_reader(ACME), everything) == [(ACME,)]
        assert _as(engine, rls.company_reader(GLOBEX), candidates) == [("ch_g",)]
        assert set(data.read("fct_invoices", [GLOBEX])["company_id"]) == {GLOBEX}
        with engine.connect() as conn:
            assert conn.execute(sa.text(policies)).all() == secured
    finally:
        engine.dispose()
        data.close()
