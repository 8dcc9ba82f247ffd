"""The fixed cast of the demo world: companies, their people, client names and price lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WORLD_START = date(2025, 10, 1)
WORLD_END = date(2026, 10, 31)  # fixed so that two runs with one seed are identical on any day

ROLES_CAST = (("owner", "Owner"), ("admin", "Admin"), ("finance", "Finance"), ("staff", "Staff"),
              ("staff", "Staff Two"), ("viewer", "Viewer"))


@dataclass(frozen=True)
class CompanySpec:
    slug: str
    name: str
    currency: str
    prefix: str
    tax_rate: Decimal
    plan: str
    # client currencies in rotation; the base currency dominates
    client_currencies: tuple[str, ...]


COMPANIES = (
    CompanySpec("northwind", "Northwind Studio LLC", "USD", "NWS", Decimal("0"), "business",
                ("USD", "USD", "USD", "EUR", "USD", "GBP")),
    CompanySpec("aurora", "Aurora Consulting GmbH", "EUR", "AUR", Decimal("19"), "pro",
                ("EUR", "EUR", "KWD", "EUR", "USD", "EUR")),
    CompanySpec("sakura", "Sakura Digital KK", "JPY", "SKR", Decimal("10"), "pro",
                ("JPY", "JPY", "JPY", "USD", "JPY", "JPY")),
)

HOURLY_RATE_MINOR = {"USD": 15000, "EUR": 13000, "GBP": 12000, "JPY": 15000, "KWD": 45500}
COST_RATE_MINOR = {"USD": 6500, "EUR": 6000, "GBP": 5500, "JPY": 6500, "KWD": 20000}
STRIPE_CURRENCIES = ("USD", "EUR", "GBP", "JPY")  # KWD clients pay by bank transfer

CLIENT_NAMES = (
    "Acme Robotics", "Blue Harbor Foods", "Cedar & Pine Legal", "Delta Freight", "Evergreen Clinics",
    "Fjord Analytics", "Granite Insurance", "Helios Solar", "Indigo Retail", "Juniper Schools",
    "Kestrel Aviation", "Lumen Media", "Meridian Hotels", "Nimbus Cloudworks", "Orchid Cosmetics",
    "Pioneer Builders", "Quartz Labs", "Redwood Partners", "Summit Outdoor", "Tidewater Marine",
)

PROJECT_KINDS = ("Website rebuild", "Data platform", "Brand refresh", "Mobile app", "Process audit", "CRM rollout")
EXPENSE_CATEGORIES = (("software", "Cloud hosting", 4500), ("office", "Office supplies", 1800),
                      ("travel", "Client visit", 32000), ("contractors", "Freelance designer", 120000))
