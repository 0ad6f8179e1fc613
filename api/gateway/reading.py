"""Reading an account from the Stripe API, for the sync, the Events API catch-up and
reconciliation.

- The official SDK's ``StripeClient`` (its requestor: authentication, API version, telemetry,
  retries with backoff on network errors, 409, 5xx and any answer Stripe marks
  ``Stripe-Should-Retry``, as its 429s are) over httpx.
- Every request, retries included, first takes a token from a bucket (``aiolimiter``) of
  ``STRIPE_SYNC_REQUESTS_PER_SECOND``, so a sync stays under Stripe's rate limits instead of
  leaning on its 429s.
- Lists are walked 100 a page with Stripe's own cursor (``starting_after``, ``has_more``), the
  next page fetched while the caller stores the current one. The
  pages are read through the SDK's raw requests rather than its ``auto_paging_iter``: the objects
  go to the log as the JSON Stripe sent, and building the SDK's ``StripeObject`` for each one and
  turning it back into a dict cost more than storing it.
- Failures become exceptions a person can act on: :class:`StripeUnreachable`,
  :class:`StripeRefused` (a wrong or restricted key), :class:`ListUnavailable` (this Stripe, a
  stand-in, has no such list) and :class:`ObjectMissing` (no such object).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import stripe
from aiolimiter import AsyncLimiter
from stripe._util import get_api_mode

from api.observability.metrics import STRIPE_LATENCY, STRIPE_REQUESTS
from api.settings import Settings

__all__ = [
    "PAGE_SIZE",
    "ListUnavailable",
    "ObjectMissing",
    "Page",
    "StripeReader",
    "StripeRefused",
    "StripeUnreachable",
]

PAGE_SIZE = 100
"""Objects a page: Stripe's maximum."""


class StripeUnreachable(Exception):
    """Stripe could not be reached, or kept failing after the SDK's retries."""


class StripeRefused(Exception):
    """Stripe refused the key: wrong, revoked, or not allowed to read this resource."""


class ListUnavailable(Exception):
    """This Stripe has no such list (a stand-in that lacks the endpoint)."""


class ObjectMissing(Exception):
    """Stripe has no such object (any more)."""


@dataclass(frozen=True)
class Page:
    """One page of a list, as Stripe sent it."""

    objects: list[dict[str, Any]]
    has_more: bool


class _MeteredHTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client with every request (retries included) taking a token first."""

    def __init__(self, limiter: AsyncLimiter | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limiter = limiter

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if self._limiter is not None:
            await self._limiter.acquire()
        return await super().request_async(method, url, headers, post_data)


class StripeReader:
    """Read-only access to one Stripe account."""

    def __init__(self, settings: Settings, *, max_network_retries: int | None = None) -> None:
        rate = settings.sync_rate
        # A bucket of one second's tokens: a burst never goes over the rate within a second.
        limiter = AsyncLimiter(rate, 1.0) if rate is not None else None
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        retries = settings.stripe_max_network_retries if max_network_retries is None else max_network_retries
        self.base = settings.stripe_api_base or "https://api.stripe.com"
        self.client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=retries,
            http_client=_MeteredHTTPXClient(limiter, timeout=settings.stripe_timeout_seconds),
        )

    async def page(self, path: str, params: Mapping[str, Any], starting_after: str | None = None) -> Page:
        """One page of the list at ``path`` (e.g. ``/v1/customers``), after ``starting_after``."""
        query: dict[str, Any] = {**params, "limit": PAGE_SIZE}
        if starting_after:
            query["starting_after"] = starting_after
        body = await self._get(path, query, listing=True)
        data = body.get("data")
        if not isinstance(data, list):
            raise StripeUnreachable(f"Stripe answered {path} with something that is not a list.")
        return Page([obj for obj in data if isinstance(obj, dict)], bool(body.get("has_more")))

    async def walk(
        self, path: str, params: Mapping[str, Any], starting_after: str | None = None
    ) -> AsyncIterator[Page]:
        """Every page of the list from ``starting_after`` on, newest first (Stripe's order). The
        next page is already being fetched while the caller works on this one."""
        pending: asyncio.Task[Page] | None = asyncio.ensure_future(self.page(path, params, starting_after))
        try:
            while pending is not None:
                page = await pending
                pending = None
                if page.has_more and page.objects:
                    after = str(page.objects[-1].get("id"))
                    pending = asyncio.ensure_future(self.page(path, params, after))
                if page.objects:
                    yield page
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def retrieve(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One object (e.g. ``/v1/subscriptions/sub_123``)."""
        return await self._get(path, dict(params or {}), listing=False)

    async def _get(self, path: str, query: dict[str, Any], *, listing: bool) -> dict[str, Any]:
        operation = path.split("/")[2] if path.count("/") >= 2 else path
        with STRIPE_LATENCY.labels(f"{operation}.read").time():
            try:
                data = await self._request(path, query)
            except stripe.StripeError as exc:
                if exc.http_status != 404:
                    raise self._failure(exc, path, operation) from None
                STRIPE_REQUESTS.labels(f"{operation}.read", "not_found").inc()
                if listing:
                    raise ListUnavailable(f"{self.base} has no {path} list") from None
                raise ObjectMissing(f"Stripe has no {path}") from None
        STRIPE_REQUESTS.labels(f"{operation}.read", "ok").inc()
        if not isinstance(data, dict):
            raise StripeUnreachable(f"Stripe answered {path} with something that is not JSON.")
        return data

    async def _request(self, path: str, query: dict[str, Any]) -> Any:
        """The SDK's ``raw_request_async`` (its requestor: authentication, retries, errors), with
        a successful body decoded by msgspec: the SDK decodes it into ``OrderedDict`` objects
        through the standard library, an eighth of a first sync's time. Any other answer goes
        through the SDK's own handling, which raises its error."""
        requestor = self.client._requestor
        api_mode = get_api_mode(path)
        body, code, headers = await requestor.request_raw_async(
            "get", path, params=query, base_address="api", api_mode=api_mode, usage=["raw_request"]
        )
        if 200 <= code < 300:
            try:
                return msgspec.json.decode(cast(bytes, body))  # a whole body when not streaming
            except msgspec.DecodeError:
                return None  # not JSON: the caller says so
        return requestor._interpret_response(body, code, headers, api_mode).data  # raises for an error

    def _failure(self, exc: stripe.StripeError, path: str, operation: str) -> Exception:
        """A failed read as a sentence for a person (Stripe's own text says little more)."""
        STRIPE_REQUESTS.labels(f"{operation}.read", type(exc).__name__).inc()
        if isinstance(exc, stripe.AuthenticationError):
            return StripeRefused("Stripe refused the API key (STRIPE_API_KEY): check that it is right.")
        if isinstance(exc, stripe.PermissionError):
            return StripeRefused(f"The API key may not read {path} (a restricted key without that right).")
        if isinstance(exc, stripe.APIConnectionError):
            return StripeUnreachable(f"Stripe is unreachable at {self.base}.")
        detail = f": {exc.user_message}" if exc.user_message else ""
        return StripeUnreachable(f"Stripe answered {path} with HTTP {exc.http_status}{detail}.")

    async def close(self) -> None:
        http = self.client._requestor._client  # the SDK keeps its HTTP client here
        if http is not None and hasattr(http, "close_async"):
            await http.close_async()  # type: ignore[no-untyped-call]
