"""Delivery through apprise to the channels configured per severity (``ALERT_CHANNELS_<SEVERITY>``):
email (``mailto://``), Slack (``slack://``), SMS gateways (``twilio://``, ``sns://``...), a generic
webhook (``json://``) and ``console://``, our own apprise plugin that writes the alert to the log.
Channel URLs hold credentials, so they are never logged; a failure names the scheme only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import apprise
import structlog
from apprise.decorators import notify

__all__ = ["Delivery", "Notifier"]

_log = structlog.get_logger("faddl.alerts")
_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "high": apprise.NotifyType.FAILURE,
    "medium": apprise.NotifyType.WARNING,
    "low": apprise.NotifyType.INFO,
}


@notify(on="console", name="faddl console")  # type: ignore[untyped-decorator,no-untyped-call]
def _console(body: str, title: str, notify_type: str, *args: Any, **kwargs: Any) -> bool:
    _log.warning("alert", title=title, body=body, kind=str(notify_type))
    return True


@dataclass(frozen=True)
class Delivery:
    sent: int
    """Channels that took the alert."""
    summary: str
    """What happened, in a short line (schemes only: never a URL)."""


class Notifier:
    """Sends an alert to every channel of its severity; says what happened in a short line."""

    def __init__(self, channels: dict[str, tuple[str, ...]]) -> None:
        self.channels = channels

    def _send(self, severity: str, title: str, body: str, resolved: bool) -> Delivery:
        urls = self.channels.get(severity, ())
        if not urls:
            return Delivery(0, "no channel configured")
        sent = 0
        failures: list[str] = []
        for url in urls:  # one at a time, so a failure can be told apart
            target = apprise.Apprise()
            scheme = f"{url.split('://', 1)[0]}://"
            if not target.add(url):
                failures.append(f"{scheme} (not a valid apprise URL)")
                continue
            kind = apprise.NotifyType.SUCCESS if resolved else _TYPES.get(severity, apprise.NotifyType.INFO)
            if target.notify(body=body, title=title, notify_type=kind):
                sent += 1
            else:
                failures.append(scheme)
        if failures:
            _log.error("alert delivery failed", title=title, channels=failures)
            total = sent + len(failures)
            return Delivery(sent, f"delivered to {sent} of {total} channels; failed: {', '.join(failures)}"[:255])
        return Delivery(sent, f"delivered to {sent} channel{'s' if sent != 1 else ''}")

    async def send(self, severity: str, title: str, body: str, *, resolved: bool = False) -> Delivery:
        return await asyncio.to_thread(self._send, severity, title, body, resolved)
