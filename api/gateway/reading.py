"""Reading an account from the Stripe API, for the sync, the Events API catch-up and
reconciliation.

- The official SDK's ``StripeClient`` (its requestor: authentication, API version, telemetry,
  retries with backoff on network errors, 409, 5xx and any answer Stripe marks
  ``Stripe-Should-Retry``, as its 429s are) over its aiohttp client (``stripe.AIOHTTPClient``):
  an unchanged sync of a large account spent a third of its time in httpx's request path, and
  took 30% less time over aiohttp.
- Every request, retries included, first takes a token from a bucket (``aiolimiter``) of
  ``STRIPE_SYNC_REQUESTS_PER_SECOND``, so a sync stays under Stripe's rate limits instead of
  leaning on its 429s.
- Lists are walked 100 a page with Stripe's own cursor (``starting_after``, ``has_more``), the
  next page fetched while the caller stores the current one. The
  pages are read through the SDK's raw requests rather than its ``auto_paging_iter``: the objects
  go to the log as the JSON Stripe sent, and building the SDK's ``StripeObject`` for each one and
  turning it back into a dict cost more than storing it.
- Each object of a page is kept as its JSON (:class:`Fetched`, whitespace removed), with only its
  ``id`` and ``object`` read: most objects of a later sync are unchanged, and are recognised by a
  digest of that text without being decoded at all (decoding every page was a third of an
  unchanged sync).
- Failures become exceptions a person can act on: :class:`StripeUnreachable`,
  :class:`StripeRefused` (a wrong or restricted key), :class:`ListUnavailable` (this Stripe, a
  stand-in, has no such list) and :class:`ObjectMissing` (no such object).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import msgspec
import stripe
from aiolimiter import AsyncLimiter
from stripe import _api_requestor as stripe_requestor
from stripe import _util as stripe_util
from stripe._util import get_api_mode

from api.observability.metrics import STRIPE_LATENCY, STRIPE_REQUESTS
from api.settings import Settings

__all__ = [
    "PAGE_SIZE",
    "Fetched",
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


class Fetched:
    """One object as Stripe sent it: its JSON text without whitespace (so the same object reads
    the same in a list and on its own), its ``id`` and ``object``, and the rest decoded only when
    asked for (:attr:`data`)."""

    __slots__ = ("_data", "id", "object", "raw")

    def __init__(self, raw: bytes, object_id: str | None, object_type: str | None) -> None:
        self.raw = raw
        self.id = object_id
        self.object = object_type
        self._data: dict[str, Any] | None = None

    @classmethod
    def read(cls, raw: bytes) -> Fetched | None:
        """The object in ``raw``; None when it is not a JSON object."""
        try:
            head = msgspec.json.decode(raw, type=_Head)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        object_id = head.id if isinstance(head.id, str) else None
        object_type = head.object if isinstance(head.object, str) else None
        return cls(msgspec.json.format(raw, indent=-1), object_id, object_type)

    @property
    def data(self) -> dict[str, Any]:
        """The object decoded (once)."""
        if self._data is None:
            self._data = cast(dict[str, Any], msgspec.json.decode(self.raw))  # read() saw an object
        return self._data


class _Head(msgspec.Struct):
    """What is read of every object of a page before deciding whether to decode it."""

    id: Any = None
    object: Any = None


class _Listing(msgspec.Struct):
    """A page of a list, each object left as its JSON text."""

    data: list[msgspec.Raw]
    has_more: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a list, as Stripe sent it."""

    objects: list[Fetched]
    has_more: bool


class _MeteredHTTPClient(stripe.AIOHTTPClient):
    """The SDK's aiohttp client with every request (retries included) taking a token first."""

    def __init__(self, limiter: AsyncLimiter | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limiter = limiter

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if self._limiter is not None:
            await self._limiter.acquire()
        return await super().request_async(method, url, headers, post_data)


def _quiet_unless_debugging(log_debug: Callable[..., None]) -> Callable[..., None]:
    """The SDK's debug log, called only when someone reads it: the SDK formats every response
    body as a log line before asking whether debug logging is on (a tenth of an unchanged
    sync's time went there)."""

    @functools.wraps(log_debug)
    def guarded(message: str, **params: Any) -> None:
        if "debug" in (stripe.log, stripe_util.STRIPE_LOG) or _SDK_LOGGER.isEnabledFor(logging.DEBUG):
            log_debug(message, **params)

    return guarded


_SDK_LOGGER = logging.getLogger("stripe")
_sdk_log_debug = getattr(stripe_requestor, "log_debug", None)
if callable(_sdk_log_debug) and not hasattr(_sdk_log_debug, "__wrapped__"):
    setattr(stripe_requestor, "log_debug", _quiet_unless_debugging(_sdk_log_debug))  # noqa: B010


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
            http_client=_MeteredHTTPClient(limiter, timeout=aiohttp.ClientTimeout(settings.stripe_timeout_seconds)),
        )

    async def page(self, path: str, params: Mapping[str, Any], starting_after: str | None = None) -> Page:
        """One page of the list at ``path`` (e.g. ``/v1/customers``), after ``starting_after``."""
        query: dict[str, Any] = {**params, "limit": PAGE_SIZE}
        if starting_after:
            query["starting_after"] = starting_after
        body = await self._get(path, query, listing=True)
        try:
            listing = msgspec.json.decode(body, type=_Listing)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise StripeUnreachable(f"Stripe answered {path} with something that is not a list.") from None
        objects = [fetched for raw in listing.data if (fetched := Fetched.read(bytes(raw))) is not None]
        return Page(objects, listing.has_more)

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
                    after = str(page.objects[-1].id)
                    pending = asyncio.ensure_future(self.page(path, params, after))
                if page.objects:
                    yield page
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def retrieve(self, path: str, params: Mapping[str, Any] | None = None) -> Fetched:
        """One object (e.g. ``/v1/subscriptions/sub_123``)."""
        fetched = Fetched.read(await self._get(path, dict(params or {}), listing=False))
        if fetched is None:
            raise StripeUnreachable(f"Stripe answered {path} with something that is not a JSON object.")
        return fetched

    async def _get(self, path: str, query: dict[str, Any], *, listing: bool) -> bytes:
        """The body of a successful answer."""
        operation = path.split("/")[2] if path.count("/") >= 2 else path
        with STRIPE_LATENCY.labels(f"{operation}.read").time():
            try:
                body = await self._request(path, query)
            except stripe.StripeError as exc:
                if exc.http_status != 404:
                    raise self._failure(exc, path, operation) from None
                STRIPE_REQUESTS.labels(f"{operation}.read", "not_found").inc()
                if listing:
                    raise ListUnavailable(f"{self.base} has no {path} list") from None
                raise ObjectMissing(f"Stripe has no {path}") from None
        STRIPE_REQUESTS.labels(f"{operation}.read", "ok").inc()
        return body

    async def _request(self, path: str, query: dict[str, Any]) -> bytes:
        """The SDK's ``raw_request_async`` (its requestor: authentication, retries, errors); a
        successful body is returned as it came, for the caller to decode with msgspec (the SDK
        decodes it into ``OrderedDict`` objects through the standard library, an eighth of a first
        sync's time). Any other answer goes through the SDK's own handling, which raises its
        error."""
        requestor = self.client._requestor
        api_mode = get_api_mode(path)
        body, code, headers = await requestor.request_raw_async(
            "get", path, params=query, base_address="api", api_mode=api_mode, usage=["raw_request"]
        )
        if 200 <= code < 300:
            return cast(bytes, body)  # a whole body when not streaming
        requestor._interpret_response(body, code, headers, api_mode)  # raises for an error
        raise StripeUnreachable(f"Stripe answered {path} with HTTP {code}.")

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
