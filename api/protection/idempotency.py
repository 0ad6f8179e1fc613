"""``Idempotency-Key`` on the client API's POSTs, modelled on Stripe's own API.

- Same key, same request (route and body) → the stored response is replayed, marked with
  ``Idempotent-Replayed: true``.
- Same key, different route or body → 422.
- While the first request with that key is still running → 409 (a request that died holds its key
  for at most ``RUNNING_TIMEOUT_SECONDS``).
- A first request that failed with a 5xx is not stored, so the client may retry it; 2xx and 4xx
  answers are.
- Keys are scoped per user and kept ``IDEMPOTENCY_CHECKOUT_SECONDS`` (checkout) or
  ``IDEMPOTENCY_MODIFY_SECONDS`` (subscription changes); in the database by default (expired rows
  are purged by the worker), in Redis when configured (its TTL expires them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis
from sqlalchemy import and_, delete, select, update

from api.db.dialects import for_update, insert, utc
from api.db.engine import Database
from api.db.models import idempotency_keys
from api.observability.metrics import IDEMPOTENCY
from api.security.tokens import Principal
from api.settings import Settings

__all__ = [
    "RUNNING_TIMEOUT_SECONDS",
    "DatabaseIdempotencyStore",
    "IdempotencyMiddleware",
    "IdempotencyStore",
    "RedisIdempotencyStore",
    "StoredResponse",
]

RUNNING_TIMEOUT_SECONDS = 60
"""A first request still marked running after this long is taken to have died."""

MAX_KEY_LENGTH = 255
_KEPT_HEADERS = ("content-type", "location", "retry-after")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Begin:
    outcome: Literal["new", "replay", "running", "mismatch"]
    response: StoredResponse | None = None


class IdempotencyStore(Protocol):
    async def begin(self, scope_key: str, route: str, request_hash: str, ttl: int) -> Begin: ...
    async def complete(self, scope_key: str, response: StoredResponse) -> None: ...
    async def release(self, scope_key: str) -> None: ...
    async def purge(self) -> int: ...


def _now() -> datetime:
    return datetime.now(UTC)


class DatabaseIdempotencyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def begin(self, scope_key: str, route: str, request_hash: str, ttl: int) -> Begin:
        now = _now()
        fresh = {
            "route": route,
            "request_hash": request_hash,
            "state": "running",
            "response_status": None,
            "response_headers": None,
            "response_body": None,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }
        async with self.db.write() as conn:
            inserted = await conn.execute(
                insert(idempotency_keys, conn.dialect.name)
                .values(scope_key=scope_key, **fresh)
                .on_conflict_do_nothing(index_elements=["scope_key"])
                .returning(idempotency_keys.c.id)
            )
            if inserted.first() is not None:
                return Begin("new")
            query = for_update(
                select(idempotency_keys).where(idempotency_keys.c.scope_key == scope_key), conn.dialect.name
            )
            row = (await conn.execute(query)).mappings().one()
            stale = row["state"] == "running" and utc(row["created_at"]) < now - timedelta(
                seconds=RUNNING_TIMEOUT_SECONDS
            )
            if utc(row["expires_at"]) <= now or stale:
                await conn.execute(
                    update(idempotency_keys).where(idempotency_keys.c.scope_key == scope_key).values(**fresh)
                )
                return Begin("new")
            if row["route"] != route or row["request_hash"] != request_hash:
                return Begin("mismatch")
            if row["state"] == "running":
                return Begin("running")
            return Begin(
                "replay",
                StoredResponse(
                    row["response_status"], json.loads(row["response_headers"] or "[]"), row["response_body"] or b""
                ),
            )

    async def complete(self, scope_key: str, response: StoredResponse) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.scope_key == scope_key)
                .values(
                    state="done",
                    response_status=response.status,
                    response_headers=json.dumps(response.headers),
                    response_body=response.body,
                )
            )

    async def release(self, scope_key: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(idempotency_keys).where(
                    and_(idempotency_keys.c.scope_key == scope_key, idempotency_keys.c.state == "running")
                )
            )

    async def purge(self) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= _now()))
        return int(result.rowcount or 0)


class RedisIdempotencyStore:
    PREFIX = "faddl:idem:"

    def __init__(self, client: Redis) -> None:
        self.client = client

    async def begin(self, scope_key: str, route: str, request_hash: str, ttl: int) -> Begin:
        key = self.PREFIX + scope_key
        fresh = json.dumps({"state": "running", "route": route, "hash": request_hash, "created": time.time()})
        if await self.client.set(key, fresh, nx=True, ex=ttl):
            return Begin("new")
        raw = await self.client.get(key)
        if raw is None:  # expired in between
            return Begin("new") if await self.client.set(key, fresh, nx=True, ex=ttl) else Begin("running")
        entry = json.loads(raw)
        if entry["state"] == "running" and entry["created"] < time.time() - RUNNING_TIMEOUT_SECONDS:
            # Take over a dead request's key, unless someone else just did.
            if await self.client.set(key, fresh, xx=True, ex=ttl, get=True) == raw:
                return Begin("new")
            return Begin("running")
        if entry["route"] != route or entry["hash"] != request_hash:
            return Begin("mismatch")
        if entry["state"] == "running":
            return Begin("running")
        return Begin(
            "replay",
            StoredResponse(entry["status"], [tuple(h) for h in entry["headers"]], base64.b64decode(entry["body"])),
        )

    async def complete(self, scope_key: str, response: StoredResponse) -> None:
        key = self.PREFIX + scope_key
        raw = await self.client.get(key)
        if raw is None:
            return
        entry = json.loads(raw)
        entry.update(
            state="done",
            status=response.status,
            headers=response.headers,
            body=base64.b64encode(response.body).decode(),
        )
        await self.client.set(key, json.dumps(entry), xx=True, keepttl=True)

    async def release(self, scope_key: str) -> None:
        await self.client.delete(self.PREFIX + scope_key)

    async def purge(self) -> int:
        return 0  # Redis expires keys itself


def _canonical(body: bytes) -> bytes:
    """The body as compared between requests: JSON with sorted keys and no insignificant spaces."""
    try:
        return msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except (msgspec.DecodeError, TypeError):
        return body


class IdempotencyMiddleware(ASGIMiddleware):
    """Applies to routes with ``opt={"idempotency": "checkout" | "modify"}``."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings, store: IdempotencyStore) -> None:
        self.ttl = {"checkout": settings.idempotency_checkout_seconds, "modify": settings.idempotency_modify_seconds}
        self.max_body = settings.max_body_bytes
        self.store = store

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        kind = scope["route_handler"].opt.get("idempotency")
        key = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"idempotency-key"), None)
        user = scope.get("user")
        if kind not in self.ttl or key is None or not isinstance(user, Principal):
            await next_app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            raise HTTPException(
                status_code=400,
                detail=f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
                extra=[{"key": "Idempotency-Key", "message": "invalid", "source": "header"}],
            )
        body, messages = await self._read_body(receive)
        route = f"{scope.get('method', 'POST')} {scope.get('path_template') or scope['path']}"
        request_hash = hashlib.sha256(route.encode() + b"\0" + _canonical(body)).hexdigest()
        scope_key = hashlib.sha256(f"{user.user_id}\0{key}".encode()).hexdigest()
        try:
            begin = await self.store.begin(scope_key, route, request_hash, self.ttl[kind])
        except Exception:
            IDEMPOTENCY.labels("unavailable").inc()
            raise HTTPException(
                status_code=503,
                detail="Idempotency keys cannot be checked right now, so the request was not run; retry shortly.",
                headers={"Retry-After": "5"},
            ) from None
        IDEMPOTENCY.labels(
            {"new": "miss", "replay": "hit", "running": "conflict", "mismatch": "mismatch"}[begin.outcome]
        ).inc()
        if begin.outcome == "mismatch":
            raise HTTPException(
                status_code=422,
                detail="This Idempotency-Key was already used with a different request; "
                "use a new key for a new request.",
            )
        if begin.outcome == "running":
            raise HTTPException(
                status_code=409,
                detail="A request with this Idempotency-Key is still being processed; retry in a moment.",
                headers={"Retry-After": "1"},
            )
        if begin.outcome == "replay" and begin.response is not None:
            await self._replay(begin.response, send)
            return
        await self._run(scope, messages, send, next_app, scope_key)

    async def _read_body(self, receive: Receive) -> tuple[bytes, list[Any]]:
        messages: list[Any] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body:
                raise HTTPException(status_code=413, detail="The request body is too large.")
            if not message.get("more_body", False):
                break
        return b"".join(bytes(m.get("body", b"")) for m in messages if m["type"] == "http.request"), messages

    @staticmethod
    async def _replay(response: StoredResponse, send: Send) -> None:
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})

    async def _run(self, scope: Scope, messages: list[Any], send: Send, next_app: ASGIApp, scope_key: str) -> None:
        pending = list(messages)

        async def replay_receive() -> Any:
            if pending:
                return pending.pop(0)
            return {"type": "http.disconnect"}

        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if bytes(k).decode("latin-1").lower() in _KEPT_HEADERS
                ]
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await next_app(scope, replay_receive, capture)
        except BaseException:
            await self.store.release(scope_key)
            raise
        if status >= 500:
            await self.store.release(scope_key)  # not stored: the client may retry
        else:
            await self.store.complete(scope_key, StoredResponse(status, headers, b"".join(chunks)))
