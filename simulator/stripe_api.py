"""A Stripe API stand-in over a simulated account: what an account looks like to a client of the
API at a moment of its history, for syncing, catching up and reconciling against.

- List endpoints (``/v1/customers``, ``/v1/subscriptions``, ``/v1/invoices``, ``/v1/charges``,
  ``/v1/refunds``, ``/v1/disputes``, ``/v1/checkout/sessions``, ``/v1/products``, ``/v1/prices``)
  with Stripe's pagination: newest first, ``limit`` (at most 100), ``starting_after``,
  ``has_more``, ``created[gte]``; subscriptions without ``status`` leave out the ended ones, as
  Stripe does, and ``status=all`` lists them all. Retrieve endpoints (``/v1/<list>/<id>``).
- Each object as its newest snapshot among the events up to the account's moment (``as_of``,
  which a test moves forward); a deleted customer is no longer listed.
- The Events API (``/v1/events``, ``type`` / ``types[]``, ``created[gte]``) holds only the last
  30 days before ``as_of``, as Stripe's does.
- Stripe's error bodies: 401 for another key, 404 for an unknown object or URL; and faults on
  demand (:class:`Faults`): 429s marked retryable (``Stripe-Should-Retry: true``), one request
  answering 500, or every request from some point on (Stripe gone).

Served by a real HTTP server (:class:`StripeApiServer`), so the service's own client (the
official SDK) is what talks to it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from simulator.clock import DAY
from simulator.engine import Simulation
from simulator.objects import Builder, template

__all__ = ["EVENTS_RETENTION_DAYS", "Faults", "StripeAccount", "StripeApiServer"]

Obj = dict[str, Any]

EVENTS_RETENTION_DAYS = 30
LISTS = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "checkout/sessions": "checkout.session",
    "products": "product",
    "prices": "price",
    "invoiceitems": "invoiceitem",
}
_ENDED = ("canceled", "incomplete_expired")


@dataclass
class Faults:
    """Misbehaviour on demand, counted over the requests the stand-in answers (from 1)."""

    rate_limit_every: int = 0
    """Every Nth request answers 429 (retryable), 0 for never."""
    fail_requests: set[int] = field(default_factory=set)
    """These requests answer 500 (once each: the SDK's retry is a new request)."""
    down_from: int | None = None
    """From this request on, every request answers 500 (Stripe gone)."""


class StripeAccount:
    """A simulated account's objects and events, as the API shows them at ``as_of``."""

    def __init__(
        self,
        events: Iterable[Obj],
        *,
        products: Iterable[Obj] = (),
        prices: Iterable[Obj] = (),
        invoice_items: Iterable[tuple[Obj, int | None]] = (),
    ) -> None:
        self.events = sorted(events, key=lambda e: e["created"])
        self.catalogue = [*products, *prices]
        self.invoice_items = list(invoice_items)
        """Each invoice item and when the invoice that bills it was created (None: never)."""
        self.as_of = self.events[-1]["created"] if self.events else 0
        self.lock = threading.Lock()
        self.requests = 0
        self.faults = Faults()
        self._cache: tuple[int, dict[str, list[Obj]], dict[str, Obj]] | None = None
        self._changed: dict[str, Obj] = {}
        self._views: dict[tuple[str, str, str | None], tuple[list[Obj], dict[str, int]]] = {}

    def change(self, obj: Obj) -> None:
        """A change made at Stripe that sends no event the service sees (a lost webhook, an edit
        in the dashboard with the endpoint down): the object as it now is."""
        with self.lock:
            self._changed[obj["id"]] = obj
            self._cache = None
            self._views.clear()

    @classmethod
    def of(cls, sim: Simulation) -> StripeAccount:
        """The account a simulation played: its events, and its catalogue (products and prices,
        created when the history starts)."""
        prices = [{**price, "created": sim.start} for price in sim.prices.values()]
        products = [
            {
                **template("product"),
                "id": product_id,
                "name": product_id.removeprefix("prod_").title(),
                "created": sim.start,
            }
            for product_id in sorted({str(price["product"]) for price in prices})
        ]
        items = [
            (
                Builder.invoice_item(item, item["invoice"]),
                sim.invoices[item["invoice"]]["created"] if item["invoice"] else None,
            )
            for item in sim.invoice_items
        ]
        return cls(sim.events, products=products, prices=prices, invoice_items=items)

    # -- the account at as_of ------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, list[Obj]], dict[str, Obj]]:
        """Objects by list (newest first) and by id, at ``as_of``; cached until it moves."""
        if self._cache is not None and self._cache[0] == self.as_of:
            return self._cache[1], self._cache[2]
        latest: dict[str, Obj] = {obj["id"]: obj for obj in self.catalogue}
        for event in self.events:
            if event["created"] > self.as_of:
                break
            obj = event["data"]["object"]
            latest[obj["id"]] = obj
            if obj.get("object") == "charge":  # a charge's refunds are objects of their own
                refunds = obj.get("refunds")
                nested = refunds.get("data", []) if isinstance(refunds, dict) else refunds or []
                for refund in nested:
                    if isinstance(refund, dict) and refund.get("id"):
                        latest[refund["id"]] = refund
        for item, billed_at in self.invoice_items:  # no event tells them: pending until billed
            if item["date"] <= self.as_of:
                latest[item["id"]] = {
                    **item,
                    "invoice": item["invoice"] if billed_at and billed_at <= self.as_of else None,
                }
        latest.update(self._changed)
        lists: dict[str, list[Obj]] = {name: [] for name in LISTS}
        by_type = {object_type: name for name, object_type in LISTS.items()}
        for obj in latest.values():
            name = by_type.get(str(obj.get("object")))
            if name is not None and not obj.get("deleted"):
                lists[name].append(obj)
        for objects in lists.values():
            objects.sort(key=lambda o: (_created(o), str(o["id"])), reverse=True)
        self._cache = (self.as_of, lists, latest)
        self._views.clear()
        return lists, latest

    def listing(self, name: str, query: dict[str, str]) -> Obj:
        status = query.get("status") if name == "subscriptions" else "all"
        pending = query.get("pending") if name == "invoiceitems" else None
        key = (name, f"{status}|{pending}", query.get("created[gte]"))
        view = self._views.get(key)
        if view is None or self._cache is None or self._cache[0] != self.as_of:
            lists, _ = self._state()
            objects = lists[name]
            if status is None:
                objects = [o for o in objects if o.get("status") not in _ENDED]
            elif status != "all":
                objects = [o for o in objects if o.get("status") == status]
            if pending is not None:
                objects = [o for o in objects if (o.get("invoice") is None) == (pending == "true")]
            since = query.get("created[gte]")
            if since:
                objects = [o for o in objects if _created(o) >= int(since)]
            # Each filtered list and where each id sits in it, kept while the account does not
            # move: a walk asks for the same list a page at a time.
            view = (objects, {str(o["id"]): i for i, o in enumerate(objects)})
            self._views[key] = view
        return _page(view[0], query, f"/v1/{name}", view[1])

    def retrieve(self, name: str, object_id: str) -> Obj | None:
        _, latest = self._state()
        obj = latest.get(object_id)
        return obj if obj is not None and obj.get("object") == LISTS[name] else None

    def event_listing(self, query: dict[str, str], types: list[str]) -> Obj:
        since = query.get("created[gte]")
        key = ("events", "|".join(sorted(types)), since)
        view = self._views.get(key) if self._cache is not None and self._cache[0] == self.as_of else None
        if view is None:
            self._state()  # the views are kept while the account does not move
            oldest = max(self.as_of - EVENTS_RETENTION_DAYS * DAY, int(since) if since else 0)
            kept = [e for e in self.events if oldest <= e["created"] <= self.as_of]
            if types:
                kept = [e for e in kept if e["type"] in types]
            kept.sort(key=lambda e: (e["created"], e["id"]), reverse=True)
            view = (kept, {str(e["id"]): i for i, e in enumerate(kept)})
            self._views[key] = view
        return _page(view[0], query, "/v1/events", view[1])

    # -- one request -----------------------------------------------------------------------------
    def answer(self, path: str, raw_query: str, authorization: str, api_key: str) -> tuple[int, Obj, dict[str, str]]:
        with self.lock:
            self.requests += 1
            number = self.requests
            faults = self.faults
            if (faults.down_from is not None and number >= faults.down_from) or number in faults.fail_requests:
                return 500, _error("api_error", "An unknown error occurred."), {}
            if faults.rate_limit_every and number % faults.rate_limit_every == 0:
                error = _error("invalid_request_error", "Too many requests in a period of time.", "rate_limit")
                return 429, error, {"Stripe-Should-Retry": "true"}
            if authorization != f"Bearer {api_key}":
                return 401, _error("invalid_request_error", "Invalid API Key provided."), {}
            parsed = parse_qs(raw_query, keep_blank_values=True)
            query = {key: values[-1] for key, values in parsed.items()}
            types = [
                v
                for key, values in parsed.items()
                if key in ("type", "types[]") or key.startswith("types[")
                for v in values
            ]
            route = path.removeprefix("/v1/").strip("/")
            if route == "events":
                return 200, self.event_listing(query, types), {}
            if route in LISTS:
                return 200, self.listing(route, query), {}
            head, _, object_id = route.rpartition("/")
            if head in LISTS and object_id:
                found = self.retrieve(head, object_id)
                if found is None:
                    message = f"No such {LISTS[head]}: '{object_id}'"
                    return 404, _error("invalid_request_error", message, "resource_missing"), {}
                return 200, found, {}
            return 404, _error("invalid_request_error", f"Unrecognized request URL (GET: {path})."), {}


def _created(obj: Obj) -> int:
    """What a list sorts and filters ``created`` by (an invoice item's is its ``date``)."""
    return int(obj.get("created") or obj.get("date") or 0)


def _page(objects: list[Obj], query: dict[str, str], url: str, positions: dict[str, int] | None = None) -> Obj:
    """One page of ``objects`` (already filtered), after ``starting_after``."""
    limit = max(1, min(100, int(query.get("limit") or 10)))
    if positions is None:
        since = query.get("created[gte]")
        if since:
            objects = [o for o in objects if _created(o) >= int(since)]
        positions = {str(o["id"]): i for i, o in enumerate(objects)}
    start = 0
    after = query.get("starting_after")
    if after:
        position = positions.get(after)
        start = position + 1 if position is not None else len(objects)
    page = objects[start : start + limit]
    return {"object": "list", "url": url, "has_more": start + limit < len(objects), "data": page}


def _error(kind: str, message: str, code: str | None = None) -> Obj:
    error: Obj = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


class StripeApiServer:
    """The stand-in on 127.0.0.1 (a free port unless given), in a thread of this process."""

    def __init__(self, account: StripeAccount, api_key: str, port: int = 0) -> None:
        self.account = account
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go in two writes; with Nagle's algorithm the second waits for the
            # client's delayed ACK (about 40 ms a request on Linux).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                status, body, headers = owner.account.answer(
                    url.path, url.query, self.headers.get("Authorization", ""), api_key
                )
                payload = msgspec.json.encode(body)  # several times faster than json.dumps
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_{owner.account.requests}")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> StripeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    """``python -m simulator.stripe_api``: serve a simulated account until interrupted."""
    import argparse
    import signal

    from simulator.engine import SimConfig

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--key", default="sk_test_standin", help="the API key it accepts")
    args = parser.parse_args()
    sim = Simulation(SimConfig(customers=args.customers, months=args.months, seed=args.seed)).run()
    account = StripeAccount.of(sim)
    account._state()  # build the lists before the first request
    with StripeApiServer(account, args.key, args.port) as server:
        print(f"serving {len(sim.events)} events' account at {server.url}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()


if __name__ == "__main__":
    main()
