"""What every response carries, and what every request gets first.

- A request id: the caller's ``X-Request-ID`` when it is well-formed, else a new one. It is bound
  to every log line of the request, returned in ``X-Request-ID`` and in every problem document.
- Security headers on every response (a ``before_send`` hook, so router 404s get them too):
  ``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options``, a strict
  ``Content-Security-Policy`` (HTML pages may set their own; the API docs page runs its own scripts),
  and HSTS with ``FORCE_HTTPS``.
- With ``FORCE_HTTPS``, a plain-HTTP request (its scheme as a trusted proxy reports it) is
  redirected (GET, HEAD) or refused (400). Health probes are exempt: load balancers probe over HTTP.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.observability.http import count_unrouted
from api.protection.clients import ClientResolver
from api.settings import Settings

__all__ = ["EdgeMiddleware", "SecurityHeaders", "request_id_of"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The OpenAPI page's assets are served from here (api.openapi_page): nothing from elsewhere.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'"
)
_HSTS = "max-age=63072000; includeSubDomains"


def request_id_of(scope: Any) -> str:
    """The request's id (made here if the edge middleware did not run, e.g. for a router 404)."""
    state = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if request_id is None:
        request_id = state["request_id"] = uuid.uuid4().hex
    return str(request_id)


class EdgeMiddleware(ASGIMiddleware):
    """Request id, log context and HTTPS enforcement, before anything else runs."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings, clients: ClientResolver) -> None:
        self.force_https = settings.force_https
        self.clients = clients

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        incoming = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if self.force_https and not scope["path"].startswith("/api/health") and self.clients.scheme(scope) != "https":
            self._refuse_plain_http(scope)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await next_app(scope, receive, send)

    @staticmethod
    def _refuse_plain_http(scope: Scope) -> None:
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if str(scope.get("method", "")) in ("GET", "HEAD") and host:
            query = scope.get("query_string", b"").decode("latin-1")
            target = f"https://{host}{scope['path']}" + (f"?{query}" if query else "")
            raise HTTPException(
                status_code=308, detail="This service is only served over HTTPS.", headers={"Location": target}
            )
        raise HTTPException(
            status_code=400, detail="This service is only served over HTTPS; resend the request with https://."
        )


class SecurityHeaders:
    """``before_send`` hook adding the security headers and the request id to every response."""

    def __init__(self, settings: Settings) -> None:
        self.hsts = settings.force_https

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        if "path_template" not in scope:  # the router answered (404, 405): no middleware counted it
            count_unrouted(int(message["status"]), str(scope.get("method", "")))
        headers = MutableScopeHeaders.from_message(message)
        headers["X-Request-ID"] = request_id_of(scope)
        headers["X-Content-Type-Options"] = "nosniff"
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if "content-security-policy" not in headers:
            docs = scope["path"].startswith("/api/schema")
            headers["Content-Security-Policy"] = _DOCS_CSP if docs else _STRICT_CSP
        if self.hsts:
            headers["Strict-Transport-Security"] = _HSTS
