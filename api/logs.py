"""Structured logging (structlog): JSON lines by default, one configuration for every process."""

from __future__ import annotations

import logging
import sys

import structlog

from api.settings import Settings

__all__ = ["configure_logging"]


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
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_standard_error,
        cache_logger_on_first_use=True,
    )
