"""Source connectors (Stripe, ERPNext, export files, ops DB) landing into the warehouse's raw schemas."""

import os

# dlt must never phone home from this platform; set before any submodule imports dlt.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
