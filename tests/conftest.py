from __future__ import annotations

import pytest

from tests.support.postgres import temporary_database


@pytest.fixture
def postgres_url():
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with temporary_database() as url:
        yield url
