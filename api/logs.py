"""Structured logging (structlog): JSON lines by default, one configuration for every process.

Every line carries the request id (bound by the edge middleware) and, inside a traced span, the
trace and span ids. Secrets never reach a line: values under sensitive keys are replaced, and
anything that looks like a bearer token, a JWT, a Stripe key or webhook secret, a
``Stripe-Signature`` or a card number is masked wherever it appears."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from api.observability.tracing import current_trace_ids
from api.settings import Settings

__all__ = ["configure_logging", "mask_secrets", "scrub"]

REDACTED = "[redacted]"

_SENSITIVE_KEY = re.compile(
    r"(?i)(authorization|token|secret|password|passwd|signature|api[_-]?key|cookie|card[_-]?number|cvc|cvv)"
)
_SENSITIVE_TEXT = re.compile(
    r"""(?x)
      (?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}
    | eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}
    | \b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}
    | \bwhsec_[A-Za-z0-9_]{6,}
    | \bt=\d{9,},v1=[a-f0-9]{16,}
    | (?<!\d)\d(?:[ .-]?\d){12,18}(?!\d)
    """
)
# A card number is 13 to 19 digits, alone or split by spaces, dashes or dots, wherever it stands
# (glued to a letter too: ``q4242424242424242``); the Luhn check keeps timestamps and amounts.


def mask_secrets(text: str) -> str:
    """``text`` with every bearer token, JWT, Stripe key or webhook secret, ``Stripe-Signature``
    and card number replaced by ``[redacted]``."""

    def replace(match: re.Match[str]) -> str:
        value = match.group(0)
        digits = re.sub(r"\D", "", value)
        if value[0].isdigit() and not _luhn(digits):
            return value  # a long number that is not a card number (a timestamp, an amount)
        return REDACTED

    return _SENSITIVE_TEXT.sub(replace, text)


def _luhn(digits: str) -> bool:
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _scrub_value(key: str, value: Any) -> Any:
    if _SENSITIVE_KEY.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(key, v) for v in value]
    return value


def scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field (and in the message itself)."""
    for key in list(event_dict):
        event_dict[key] = _scrub_value(key if key != "event" else "", event_dict[key])
    return event_dict


def _add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in current_trace_ids().items():
        event_dict.setdefault(key, value)
    return event_dict


class _StandardError:
    """Writes each line to whatever ``sys.stderr`` is at the time (it is replaced under test
    capture and by some process managers), not the stream of the moment logging was configured."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _standard_error(*_: object) -> _StandardError:
    return _StandardError()


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level, logging.INFO)
    # Alembic reports at INFO on every schema check (the readiness probe makes one): keep it quiet.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_standard_error,
        cache_logger_on_first_use=True,
    )
