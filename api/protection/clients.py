"""Who is calling: the client's address and scheme as seen through trusted reverse proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import cached_property
from typing import Any

__all__ = ["ClientResolver"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientResolver:
    """Believes ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only from ``trusted`` proxies; the
    client is the rightmost forwarded address that is not itself a trusted proxy."""

    def __init__(self, trusted: Sequence[str]) -> None:
        try:
            self.trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(t.strip(), strict=False) for t in trusted)
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc

    @cached_property
    def enabled(self) -> bool:
        return bool(self.trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    @staticmethod
    def _header(scope: Any, name: bytes) -> str | None:
        for key, value in scope.get("headers") or ():
            if key == name:
                return bytes(value).decode("latin-1")
        return None

    def peer(self, scope: Any) -> str:
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    def client_ip(self, scope: Any) -> str:
        peer = self.peer(scope)
        if not self.enabled or not self._is_trusted(peer):
            return peer
        forwarded = self._header(scope, b"x-forwarded-for")
        if not forwarded:
            return peer
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer

    def scheme(self, scope: Any) -> str:
        scheme = str(scope.get("scheme", "http"))
        if self.enabled and self._is_trusted(self.peer(scope)):
            proto = self._header(scope, b"x-forwarded-proto")
            if proto:
                return proto.split(",")[0].strip().lower()
        return scheme
