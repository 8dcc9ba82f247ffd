"""Persistence of accounts security: sessions, login attempts, 2FA, email outbox (issue: security hardening)."""
