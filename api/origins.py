"""The origin of a URL (``scheme://host[:port]``), as browsers compare them: the unit in which
this service allows a redirect target (see :mod:`api.billing.return_urls`)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["origin_of"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (lower-case, default port left out); ValueError when the
    URL has no scheme or host, carries credentials, or holds characters a browser would rewrite."""
    if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise ValueError("contains whitespace, control characters or a backslash")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise ValueError("is not an absolute URL (scheme://host/...)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("carries credentials (user@host)")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"
