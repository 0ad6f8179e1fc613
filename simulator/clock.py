"""The simulator's calendar: seconds in a day, and Stripe's month arithmetic."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

__all__ = ["DAY", "add_months"]

DAY = 86_400


def add_months(ts: int, months: int) -> int:
    """Stripe's calendar arithmetic: same day and time, clipped to the target month's last day."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())
