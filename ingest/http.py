"""HTTP for the API connectors: dlt's REST client with one retry policy, exact decimals, and counters.

Both connectors (Stripe, ERPNext) read through `dlt.sources.helpers.rest_client.RESTClient` on a requests
session whose `send` is wrapped in a tenacity retry built from dlt's own retry predicates:

- retried: HTTP 429 and 5xx, dropped connections, timeouts; never other 4xx (a refused key stays refused);
- the wait honours `Retry-After` (seconds or an HTTP date, capped), else grows exponentially, and always
  adds random jitter so that parallel clients do not retry in lockstep;
- bounded by `max_attempts`; then the last error is raised, naming the URL and status: a loud failure.

JSON is parsed with `parse_float=Decimal` so a rate such as Stripe's `exchange_rate` or an ERPNext currency
value keeps every digit it was sent with. Each request, retry and page is counted into `HttpStats`, which
the load report carries.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from dlt.sources.helpers.requests.retry import (
    DEFAULT_RETRY_EXCEPTIONS,
    retry_if_status,
    wait_exponential_retry_after,
)
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import AuthBase
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Response
from tenacity import RetryCallState, Retrying, retry_any, retry_if_exception_type, stop_after_attempt

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. The defaults suit a real API; tests shrink the waits, never the semantics."""

    max_attempts: int = 6
    backoff_seconds: float = 1.0  # first exponential wait; doubles per attempt
    max_wait_seconds: float = 60.0  # cap of one wait, Retry-After included
    jitter_seconds: float = 1.0  # uniform random extra added to every wait
    timeout_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep  # tests record the waits instead of asserting durations


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    pages: int = 0
    waits: list[float] = field(default_factory=list)  # seconds slept before each retry
    retry_reasons: dict[str, int] = field(default_factory=dict)  # "HTTP 429", "ConnectionError", ...

    def merge(self, other: HttpStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.pages += other.pages
        self.waits += other.waits
        for reason, count in other.retry_reasons.items():
            self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + count


class SourceHttpError(RuntimeError):
    """A request that failed for good; the message names the source, the URL and the status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _retry_reason(state: RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if exc is not None:
        return type(exc).__name__
    result = state.outcome.result() if state.outcome else None
    return f"HTTP {result.status_code}" if isinstance(result, Response) else "unknown"


class _JitteredWait(wait_exponential_retry_after):
    """dlt's exponential-or-Retry-After wait, plus jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        super().__init__(multiplier=policy.backoff_seconds, max=policy.max_wait_seconds)
        self.jitter = policy.jitter_seconds

    def __call__(self, retry_state: RetryCallState) -> float:
        return super().__call__(retry_state) + random.uniform(0, self.jitter)


def retrying_session(policy: RetryPolicy, stats: HttpStats) -> requests.Session:
    """A requests session whose every send is retried per `policy` and counted into `stats`."""
    session = requests.Session()

    def before_sleep(state: RetryCallState) -> None:
        stats.retries += 1
        reason = _retry_reason(state)
        stats.retry_reasons[reason] = stats.retry_reasons.get(reason, 0) + 1
        stats.waits.append(state.upcoming_sleep)

    retrying = Retrying(
        retry=retry_any(retry_if_status(RETRY_STATUSES), retry_if_exception_type(DEFAULT_RETRY_EXCEPTIONS)),
        wait=_JitteredWait(policy),
        stop=stop_after_attempt(policy.max_attempts),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
        # out of attempts on a retryable status: hand back the last response, the caller raises on it
        retry_error_callback=lambda state: state.outcome.result(),
    )
    plain_send = session.send

    def send(request: requests.PreparedRequest, **kwargs: Any) -> Response:
        kwargs.setdefault("timeout", policy.timeout_seconds)
        stats.requests += 1  # every attempt, retried ones included
        return plain_send(request, **kwargs)

    session.send = retrying.wraps(send)  # type: ignore[method-assign]
    return session


def decimal_json(response: Response) -> Any:
    """The response body as JSON with Decimal for every non-integer number (parsed once per response)."""
    cached = getattr(response, "_ez360_json", None)
    if cached is None:
        cached = json.loads(response.content, parse_float=Decimal)
        response._ez360_json = cached  # type: ignore[attr-defined]
    return cached


class ApiClient(RESTClient):
    """dlt's RESTClient reading exact decimals, counting pages, and raising `SourceHttpError` for good."""

    def __init__(self, name: str, base_url: str, auth: AuthBase, policy: RetryPolicy,
                 stats: HttpStats | None = None, headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.stats = stats if stats is not None else HttpStats()
        super().__init__(base_url=base_url.rstrip("/"), auth=auth, headers=headers,
                         session=retrying_session(policy, self.stats))

    def extract_response(self, response: Response, data_selector: Any) -> list[Any]:
        body = decimal_json(response)
        data = body.get(data_selector) if isinstance(body, dict) and isinstance(data_selector, str) else body
        if data is None:
            return []
        return data if isinstance(data, list) else [data]

    def pages(self, path: str, params: dict[str, Any], paginator: BasePaginator, data_selector: str = "data",
              headers: dict[str, str] | None = None) -> Iterator[list[dict[str, Any]]]:
        try:
            for page in self.paginate(path, params=dict(params), paginator=paginator, data_selector=data_selector,
                                      headers=headers):
                self.stats.pages += 1
                yield list(page)
        except requests.HTTPError as exc:
            raise self.error(exc) from exc
        except requests.RequestException as exc:
            raise SourceHttpError(f"{self.name}: GET {self.base_url}{path} failed: {exc!r}") from exc

    def get_json(self, path: str, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> Any:
        try:
            response = self.get(path, params=params, headers=headers)
        except requests.RequestException as exc:
            raise SourceHttpError(f"{self.name}: GET {self.base_url}{path} failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise self.error(requests.HTTPError(response=response))
        return decimal_json(response)

    def error(self, exc: requests.HTTPError) -> SourceHttpError:
        response = exc.response
        if response is None:
            return SourceHttpError(f"{self.name}: {exc}")
        return SourceHttpError(f"{self.name}: GET {response.request.url} -> HTTP {response.status_code}: "
                               f"{_error_detail(response)}", response.status_code)


def _error_detail(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Stripe's envelope
            return str(error.get("message") or error)[:300]
        return str(body.get("exception") or body.get("exc_type") or body.get("message") or body)[:300]
    return str(body)[:300]
