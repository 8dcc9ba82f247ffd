"""Authentication and credentials: API tokens here; sessions, 2FA and throttling alongside."""
