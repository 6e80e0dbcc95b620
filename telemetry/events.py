"""Events that leave as OTLP log records: every structlog line, and each tick's snapshot.

Values are converted to what OTLP can carry: integers beyond int64 (wei amounts) become
strings, `None` fields are left out, nested records stay nested in the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import _logs
from opentelemetry._logs import SeverityNumber

_INT64 = 2**63
_LOGGER_NAME = "openforager"
_SEVERITY = {
    "debug": SeverityNumber.DEBUG,
    "info": SeverityNumber.INFO,
    "warning": SeverityNumber.WARN,
    "error": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
}
_SKIP = frozenset({"event", "level", "timestamp", "trace_id", "span_id"})


def to_any_value(value: Any) -> Any:
    """A Python value as an OTLP AnyValue (nested maps and lists allowed)."""
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): to_any_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_any_value(v) for v in value if v is not None]
    return str(value)


def _attribute(value: Any) -> Any:
    """A log attribute must be a primitive (or a list of them): others become JSON."""
    converted = to_any_value(value)
    if converted is None or isinstance(converted, bool | int | float | str):
        return converted
    return json.dumps(converted, default=str)


def emit_event(name: str, body: Any, attributes: Mapping[str, Any] | None = None) -> None:
    """Emit one event as an OTLP log record; never raises."""
    try:
        _logs.get_logger(_LOGGER_NAME).emit(
            event_name=name,
            body=to_any_value(body),
            attributes={k: _attribute(v) for k, v in (attributes or {}).items() if v is not None},
            severity_number=SeverityNumber.INFO,
            severity_text="info",
        )
    except Exception:
        return


def export_log_event(
    _logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: send the (already redacted) event as an OTLP log record too."""
    level = str(event_dict.get("level", method))
    try:
        _logs.get_logger(_LOGGER_NAME).emit(
            body=str(event_dict.get("event", "")),
            attributes={
                k: _attribute(v) for k, v in event_dict.items() if k not in _SKIP and v is not None
            },
            severity_number=_SEVERITY.get(level, SeverityNumber.INFO),
            severity_text=level,
        )
    except Exception:
        return event_dict
    return event_dict
