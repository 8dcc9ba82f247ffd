"""The demo universe: one deterministic, consistent world across the ops DB, Stripe and ERPNext."""
