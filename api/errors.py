"""Errors as RFC 9457 problem documents; an unexpected error never shows its trace or SQL."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException

__all__ = ["EXCEPTION_HANDLERS", "problem"]

logger = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[Any]:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra: dict[str, Any] = {}
    if isinstance(exc.extra, dict):
        extra.update(exc.extra)  # RFC 9457 extension members (e.g. a limit and its usage)
    elif isinstance(exc.extra, list) and exc.extra:
        extra["errors"] = exc.extra  # field errors from request validation
    return problem(exc.status_code, exc.detail, headers=exc.headers, **extra)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error", path=request.url.path, method=request.method, error=type(exc).__name__)
    return problem(500, "An unexpected error occurred; it has been logged.")


EXCEPTION_HANDLERS: dict[Any, Any] = {HTTPException: _http_exception, Exception: _unexpected}
