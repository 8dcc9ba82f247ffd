"""Credit notes (issued from an invoice: POST /invoices/{id}/credit-notes); read-only here."""

from operational_api.api.routers.invoices import notes_router as router

__all__ = ["router"]
