"""Imports every model module so `Base.metadata` knows all tables (Alembic, tests)."""

from operational_api.db import billing_models, models, reconciliation_models, security_models, stripe_models  # noqa: F401,E501
from operational_api.db.models import Base

metadata = Base.metadata
