"""The kinds of threat input screening recognises, each with how a refusal describes it: the
vocabulary of ``security_incidents.kind`` that screening writes and the business alerts count."""

from __future__ import annotations

__all__ = ["THREATS", "THREAT_KINDS"]

THREATS: dict[str, str] = {
    "sql_injection": "an SQL injection attempt",
    "xss": "a script injection (XSS) attempt",
    "path_traversal": "a path traversal attempt",
    "command_injection": "a command injection attempt",
    "oversized": "more text than is accepted",
    "too_deep": "JSON nested deeper than is accepted (JSON_MAX_DEPTH)",
}
"""Kind -> what a refused request is told its input looks like."""

THREAT_KINDS = tuple(THREATS)
"""Every kind of incident the screener records."""
