"""One error model: every error is an RFC 9457 ``application/problem+json`` document.

Each has ``type`` (a URN naming its category), ``title``, ``status``, ``detail`` (a sentence a
person can act on), ``request_id`` (also in the ``X-Request-ID`` header and on every log line of
the request) and, for invalid input, ``errors`` (the field and the reason). Never a stack trace, SQL
or an internal path: the full context goes to the log.

Each category has a severity that decides how it is logged and counted, so bursts feed the alert
rules: low (the client's mistake) to critical (the service cannot do its job).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from sqlalchemy.exc import SQLAlchemyError

from api.db.engine import DatabaseUnavailable, is_transient
from api.domain_errors import DomainError
from api.observability.metrics import ERRORS
from api.protection.edge import request_id_of

__all__ = ["CATEGORIES", "EXCEPTION_HANDLERS", "Category", "category_of", "problem"]

logger = structlog.get_logger("api.errors")

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Category:
    name: str
    severity: str
    """low, medium, high or critical."""


CATEGORIES: dict[int, Category] = {
    400: Category("validation", "low"),
    401: Category("authentication", "medium"),
    402: Category("payment", "low"),
    403: Category("permission", "medium"),
    404: Category("not_found", "low"),
    405: Category("method_not_allowed", "low"),
    409: Category("conflict", "low"),
    413: Category("payload_too_large", "medium"),
    415: Category("unsupported_media_type", "low"),
    422: Category("idempotency_mismatch", "low"),
    429: Category("rate_limit", "medium"),
    500: Category("internal", "critical"),
    502: Category("payment_provider", "high"),
    503: Category("unavailable", "high"),
}


def category_of(status: int, code: str | None = None) -> Category:
    if status == 503 and code == "database_unavailable":
        return Category("database", "critical")
    if status == 503 and code == "billing_unavailable":
        return Category("payment_provider", "high")
    if status in CATEGORIES:
        return CATEGORIES[status]
    return Category("client_error", "low") if status < 500 else Category("server_error", "high")


_LOG_LEVEL = {"low": "info", "medium": "warning", "high": "error", "critical": "critical"}


def problem(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    request_id: str | None = None,
    **extra: Any,
) -> Response[Any]:
    category = category_of(status, extra.get("code"))
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {"type": f"urn:faddl:problem:{category.name}", "title": title, "status": status}
    body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _log(request: Request[Any, Any, Any], status: int, detail: str, code: str | None) -> None:
    category = category_of(status, code)
    ERRORS.labels(category.name, category.severity, str(status)).inc()
    log = getattr(logger, _LOG_LEVEL[category.severity])
    log(
        "request failed",
        status=status,
        category=category.name,
        severity=category.severity,
        method=request.method,
        path=request.url.path,
        detail=detail,
        request_id=request_id_of(request.scope),
    )


_MISSING_BODY = {"message": "'data'", "key": "data", "source": "body"}
"""What Litestar reports for a route with a body when none was sent: the KeyError of its missing
``data`` argument, which says nothing to a person."""


def _field_errors(errors: list[Any]) -> tuple[list[Any], str | None]:
    """Field errors a person can act on, and a better detail when the whole body is missing."""
    if _MISSING_BODY in errors:
        message = "required: send a JSON object (Content-Type: application/json)"
        errors = [{**e, "message": message} if e == _MISSING_BODY else e for e in errors]
        return errors, "The request has no body; this route needs a JSON object."
    return errors, None


def _body_limit(request: Request[Any, Any, Any]) -> int | None:
    """The body-size limit of the route the request was for (the app's when it has none of its own)."""
    handler = request.scope.get("route_handler")
    resolve = getattr(handler, "resolve_request_max_body_size", None)
    limit = resolve() if callable(resolve) else None
    if limit is None:
        limit = getattr(request.app, "request_max_body_size", None)
    return limit if isinstance(limit, int) else None


def _size(limit: int) -> str:
    return f"{limit // 1024:,} KiB" if limit % 1024 == 0 else f"{limit:,} bytes"


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra: dict[str, Any] = {}
    status = exc.status_code
    detail = exc.detail
    if isinstance(exc.extra, dict):
        extra.update(exc.extra)  # RFC 9457 extension members (e.g. a limit and its usage)
    elif isinstance(exc.extra, list) and exc.extra:
        extra["errors"], better = _field_errors(exc.extra)  # field errors from request validation
        detail = better or detail
    if status == 413:
        limit = _body_limit(request)
        if limit is None:
            detail = "The request body is too large."
        else:
            detail = f"The request body is over this route's limit of {_size(limit)} ({limit:,} bytes)."
            extra["limit_bytes"] = limit
    _log(request, status, detail, extra.get("code"))
    return problem(status, detail, headers=exc.headers, request_id=request_id_of(request.scope), **extra)


def _transient(exc: BaseException) -> bool:
    """A database fault (a dropped or refused connection, a deadlock) anywhere in the chain; a
    file's OSError is not one (only the connection errors a driver raises unwrapped)."""
    seen: BaseException | None = exc
    while seen is not None:
        database_error = isinstance(seen, SQLAlchemyError | ConnectionError | TimeoutError)
        if database_error and is_transient(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _transient(exc):
        # Outside Database.run (which retries, then raises DatabaseUnavailable), a transient
        # database error is still the database's unavailability, never a 500.
        return _database_unavailable(request, DatabaseUnavailable(type(exc).__name__))
    ERRORS.labels("internal", "critical", "500").inc()
    logger.exception(
        "unhandled error",
        path=request.url.path,
        method=request.method,
        error=type(exc).__name__,
        request_id=request_id_of(request.scope),
        category="internal",
        severity="critical",
    )
    return problem(
        500,
        "An unexpected error occurred; it has been logged. Quote the request id if you report it.",
        request_id=request_id_of(request.scope),
    )


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A refusal of the service's own (billing, usage, the payment provider): its answer as it says."""
    extra = dict(exc.extra)
    if exc.errors:
        extra["errors"] = exc.errors
    _log(request, exc.status, exc.message, extra.get("code"))
    return problem(exc.status, exc.message, exc.headers or None, request_id=request_id_of(request.scope), **extra)


def _database_unavailable(request: Request[Any, Any, Any], exc: DatabaseUnavailable) -> Response[Any]:
    detail = "The database is unavailable right now; nothing was changed. Try again shortly."
    _log(request, 503, f"{detail} ({exc})", "database_unavailable")
    return problem(
        503, detail, {"Retry-After": "5"}, request_id=request_id_of(request.scope), code="database_unavailable"
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: _http_exception,
    DomainError: _domain_error,
    DatabaseUnavailable: _database_unavailable,
    Exception: _unexpected,
}
