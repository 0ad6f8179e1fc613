"""The one base of the service's own refusals: an exception that knows its answer (status, a
sentence for a person, extension members, headers). Domain code raises them without knowing HTTP's
machinery; one exception handler (:mod:`api.errors`) turns each into a problem document, so no
route converts them by hand."""

from __future__ import annotations

from typing import Any

__all__ = ["DomainError"]


class DomainError(Exception):
    """A refusal with its answer. Subclasses set ``status``; ``extra`` holds RFC 9457 extension
    members (a limit and its usage, a ``code``), ``errors`` field errors, ``headers`` e.g.
    ``Retry-After``."""

    status: int = 400

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.extra = dict(extra or {})
        self.errors = list(errors or [])
        self.headers = dict(headers or {})
