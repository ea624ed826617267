"""Logs as JSON lines on stderr (LOYALTY_LOG_FORMAT=text for a developer's terminal): every line
has the time, level, logger, message, the request's id when there is one, and the `extra`
fields its caller gave. Standard-library loggers (Flask, gunicorn, SQLAlchemy, RQ) go through
the same formatter, so one parser reads them all. No line carries the values of a statement the
database refused (the engine hides SQL parameters; PostgreSQL's DETAIL lines are left out), as
those are often a member's contacts."""

from __future__ import annotations

import logging
import re
import sys

import structlog
from flask import g, has_request_context

_configured = False


def _request_id(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The id of the request being served, read when a line is logged (nothing per request)."""
    if has_request_context() and "request_id" in g:
        event.setdefault("request_id", g.request_id)
    return event


# PostgreSQL explains a refused row with its values ("DETAIL:  Failing row contains (…)", "Key
# (email)=(…) already exists"): personal data, kept out of the logs with the line that holds it.
_DETAIL = re.compile(r"^\s*DETAIL:.*$", re.MULTILINE)


def _without_row_values(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key in ("exception", "event"):
        value = event.get(key)
        if isinstance(value, str) and "DETAIL:" in value:
            event[key] = _DETAIL.sub("DETAIL: (left out: it may hold personal data)", value)
    return event


_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    _request_id,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(log_format: str) -> logging.Formatter:
    """What every log line goes through: JSON, or plain text for a developer's terminal."""
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "text"
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _without_row_values,
            renderer,
        ],
    )


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Once per process: the first app (or worker) to start sets the format."""
    global _configured  # noqa: PLW0603 - logging is per process by nature
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
