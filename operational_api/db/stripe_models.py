"""Persistence of Stripe integration: webhook events and their processing queue (issue: Stripe webhooks)."""
