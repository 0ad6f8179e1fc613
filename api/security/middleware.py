"""Authentication as a Litestar middleware, and the role guard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.types import ASGIApp, Scope

from api.observability.metrics import AUTH_FAILURES
from api.security.tokens import AuthError, Principal, TokenVerifier

__all__ = ["PUBLIC_PATHS", "BearerAuthMiddleware", "bearer_auth", "requires_admin"]

PUBLIC_PATHS = ["^/api/webhooks/", "^/api/health", "^/api/schema", "^/api/plans$", "^/demo/", "^/metrics$"]
"""Routes without a bearer token: Stripe authenticates webhooks by signature; probes, the OpenAPI
document and the plan catalogue are public; demo mode's checkout and portal pages are reached by
capability URLs, as Stripe's are (they exist only in demo mode); ``/metrics`` is for the scraper's
network."""


OnFailure = Callable[[Scope, str], Awaitable[None]]
"""Called with the scope and the failure's reason before a 401 is answered; it may raise instead
(the protection layer counts failures per address, and answers 429 or 403 for abuse)."""


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """``Authorization: Bearer <JWT>`` on every route but :data:`PUBLIC_PATHS`."""

    def __init__(
        self, app: ASGIApp, verifier: TokenVerifier, exclude: list[str], on_failure: OnFailure | None = None
    ) -> None:
        super().__init__(app, exclude=exclude)
        self.verifier = verifier
        self.on_failure = on_failure

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await self._failed(connection, "missing")
            raise _unauthorized("Missing bearer token: send `Authorization: Bearer <token>`.")
        try:
            principal = await self.verifier.verify(token.strip())
        except AuthError as exc:
            await self._failed(connection, exc.reason)
            raise _unauthorized(str(exc)) from None
        return AuthenticationResult(user=principal, auth=principal.claims)

    async def _failed(self, connection: ASGIConnection[Any, Any, Any, Any], reason: str) -> None:
        AUTH_FAILURES.labels(reason).inc()
        if self.on_failure is not None:
            await self.on_failure(connection.scope, reason)


def _unauthorized(message: str) -> NotAuthorizedException:
    challenge = f'Bearer error="invalid_token", error_description="{message}"'
    return NotAuthorizedException(detail=message, headers={"WWW-Authenticate": challenge})


def bearer_auth(verifier: TokenVerifier, on_failure: OnFailure | None = None) -> DefineMiddleware:
    return DefineMiddleware(BearerAuthMiddleware, verifier=verifier, exclude=PUBLIC_PATHS, on_failure=on_failure)


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: only principals with the ``admin`` role."""
    user = connection.scope.get("user")  # absent on an unauthenticated OPTIONS request
    if not isinstance(user, Principal) or not user.is_admin:
        raise PermissionDeniedException(detail="This needs the admin role.")
