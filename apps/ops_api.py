"""The dashboards' writes go through the operational API as the signed-in user: the browser's session cookie
and the session's CSRF token, so the API authorises (`reconcile`), validates and audits them like any change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ez360.core.settings import Settings

TIMEOUT = httpx.Timeout(10.0)


@dataclass(frozen=True)
class ApiRefusal(Exception):
    status: int
    detail: str

    def __str__(self) -> str:
        return f"{self.detail} (HTTP {self.status})"


class OpsApi:
    def __init__(self, settings: Settings, session_token: str, csrf_token: str):
        self.base = settings.public_base_url.rstrip("/")
        self.cookies = {settings.session_cookie_name: session_token}
        self.csrf = csrf_token

    def _call(self, method: str, path: str, **kwargs) -> Any:
        headers = {"X-CSRF-Token": self.csrf, "Accept": "application/json"}
        try:
            with httpx.Client(base_url=self.base, cookies=self.cookies, timeout=TIMEOUT) as client:
                response = client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiRefusal(0, f"the operational app at {self.base} did not answer ({type(exc).__name__})") \
                from None
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail") or body.get("title") or response.text
            except ValueError:
                detail = response.text[:300]
            raise ApiRefusal(response.status_code, str(detail))
        return response.json()

    def record_resolution(self, company_id: int, *, pair: str, item_key: str, action: str, note: str,
                          linked_key: str | None = None) -> dict:
        body = {"pair": pair, "item_key": item_key, "action": action, "note": note}
        if linked_key:
            body["linked_key"] = linked_key
        return self._call("POST", f"/api/v1/companies/{company_id}/reconciliation/resolutions", json=body)

    def resolutions(self, company_id: int, *, limit: int = 200, pages: int = 5) -> list[dict]:
        """The newest decisions (up to limit x pages), newest first."""
        items, cursor = [], None
        for _ in range(pages):
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", f"/api/v1/companies/{company_id}/reconciliation/resolutions", params=params)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items
