"""Deterministic identifiers in each system's own style (Stripe `ch_...`, Frappe `ACC-PAY-...`)."""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits


class IdFactory:
    def __init__(self, rng: random.Random):
        self._rng = rng
        self._counters: dict[str, int] = {}

    def stripe(self, prefix: str) -> str:
        return f"{prefix}_{''.join(self._rng.choice(_ALPHABET) for _ in range(24))}"

    def frappe(self, series: str, year: int) -> str:
        key = f"{series}-{year}"
        self._counters[key] = self._counters.get(key, 0) + 1
        return f"{series}-{year}-{self._counters[key]:05d}"
