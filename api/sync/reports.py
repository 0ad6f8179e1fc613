"""What a sync did: per resource, objects fetched, stored, unchanged, skipped and failed (with
the reasons, for the first few), and the run as a whole."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MAX_FAILURES_KEPT", "ResourceReport", "SyncReport"]

MAX_FAILURES_KEPT = 50
"""Failed objects listed per resource in a run's summary (all are counted)."""


@dataclass
class ResourceReport:
    """What one resource's walk did (in a dry run: what it would have stored)."""

    name: str
    fetched: int = 0
    stored: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    resumed_after: str | None = None
    unavailable: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, object_id: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append({"object_id": object_id, "reason": reason})


@dataclass
class SyncReport:
    resources: list[ResourceReport]
    seconds: float
    dry_run: bool
    error: str | None = None

    def total(self, name: str) -> int:
        return sum(int(getattr(report, name)) for report in self.resources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "resources": {report.name: asdict(report) for report in self.resources},
        }
