"""structlog set-up: one JSON object per line on stdout, with trace context and redaction.

Standard-library logging (uvicorn, APScheduler) goes through the same processors, so every
line an operator tails is JSON and every line is redacted.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from telemetry.errors import TelemetryError
from telemetry.events import export_log_event
from telemetry.redaction import redact_event


def add_trace_context(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: stamp the current OpenTelemetry trace and span ids."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to JSON lines on `stream` (stdout by default)."""
    out = stream if stream is not None else sys.stdout
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise TelemetryError(f"log level {level!r} is not one of debug, info, warning, error")
    structlog.configure(
        processors=[*_SHARED, *_TAIL],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_LineWriterFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, numeric)


def _route_stdlib(out: TextIO, numeric: int) -> None:
    """Standard-library records through the same processors, to the same stream."""
    handler = _LineHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_SHARED],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_TAIL],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries' own chatter stays out unless it is a warning.
    root.setLevel(max(numeric, logging.WARNING))


# One lock for every line on the stream: structlog's own PrintLogger prints the message and
# its newline as two writes, so a library's warning from another thread could land between
# them and leave two unparseable lines where an operator (or a test) expected two events.
_WRITE_LOCK = threading.Lock()


class _LineWriter:
    """A structlog logger that writes each line whole, with its newline, then flushes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def msg(self, message: str) -> None:
        with _WRITE_LOCK:
            self._out.write(message + "\n")
            self._out.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _LineWriterFactory:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, *_args: Any) -> _LineWriter:
        return _LineWriter(self._out)


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stdlib records written under the same lock as structlog's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        with _WRITE_LOCK:
            super().emit(record)


# What every line gets first (level, time, trace context) ...
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_trace_context,
]
# ... and last: redaction, then export, then the JSON line.
_TAIL: list[Any] = [
    structlog.processors.format_exc_info,
    redact_event,
    export_log_event,  # after redaction: what leaves is what the log line shows
    structlog.processors.JSONRenderer(),
]
