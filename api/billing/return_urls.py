"""Where Checkout and the billing portal may send a user back to.

A client with several front ends (a web app, a mobile app's deep link) passes its own
``success_url``, ``cancel_url`` or ``return_url``. Accepting any URL would make this service an open
redirect (a phishing link through a trusted checkout), so a URL is accepted only when its origin,
``scheme://host[:port]``, is one of ``CHECKOUT_RETURN_ORIGINS`` or the origin of ``APP_RETURN_URL``
(of this service's own return page when that is unset). Compared as origins, never as string
prefixes: ``https://app.example.com.evil.test`` and ``https://app.example.com@evil.test`` are other
hosts.
"""

from __future__ import annotations

from api.domain_errors import DomainError
from api.origins import origin_of

__all__ = ["MAX_RETURN_URL_LENGTH", "ReturnUrlRefused", "allowed_origins", "check_return_url"]

MAX_RETURN_URL_LENGTH = 2048


class ReturnUrlRefused(DomainError, ValueError):
    """The URL is malformed or its origin is not allowed (400); the message names the allowed origins."""

    status = 400


def allowed_origins(configured: tuple[str, ...], app_return_url: str) -> tuple[str, ...]:
    """The configured origins and the app's own, normalised; ValueError naming a malformed entry."""
    origins: list[str] = []
    for name, entry in [*(("CHECKOUT_RETURN_ORIGINS", e) for e in configured), ("APP_RETURN_URL", app_return_url)]:
        try:
            origin = origin_of(entry)
        except ValueError as exc:
            raise ValueError(f"{name}: {entry!r} {exc}.") from None
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def check_return_url(field: str, url: str, allowed: tuple[str, ...]) -> str:
    """``url`` when it may be returned to; :class:`ReturnUrlRefused` saying why not."""
    listed = ", ".join(allowed)
    if len(url) > MAX_RETURN_URL_LENGTH:
        raise ReturnUrlRefused(f"{field} is longer than {MAX_RETURN_URL_LENGTH} characters.")
    try:
        origin = origin_of(url)
    except ValueError as exc:
        raise ReturnUrlRefused(f"{field} {exc}; it must be a URL on one of: {listed}.") from None
    if origin not in allowed:
        raise ReturnUrlRefused(
            f"{field} must be on an allowed origin ({listed}); {origin} is not one. "
            "Add it to CHECKOUT_RETURN_ORIGINS to allow it."
        )
    return url
