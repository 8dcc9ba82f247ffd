"""POST /api/v1/companies (not company-scoped: any signed-in user may create a company)."""

from operational_api.api.routers.company_settings import create_router as router

__all__ = ["router"]
