"""`forager logs`: the agent's JSON log lines, readable by a person.

Each line becomes `time LEVEL event key=value ...`, coloured by level on a terminal. Lines that
are not JSON (a provider's own messages in a lease's log stream) pass through unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

_LEVELS = ("debug", "info", "warning", "error", "critical")
_COLOURS = {"debug": "\x1b[2m", "info": "\x1b[32m", "warning": "\x1b[33m", "error": "\x1b[31m"}
_RESET = "\x1b[0m"
_QUIET = ("event", "level", "timestamp", "trace_id", "span_id")


def format_line(line: str, colour: bool = False) -> str:
    """One log line for a person; non-JSON lines come back as they were."""
    try:
        event = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    if not isinstance(event, dict):
        return line.rstrip("\n")
    stamp = str(event.get("timestamp", ""))[11:23]
    level = str(event.get("level", "info"))
    fields = " ".join(f"{k}={_value(v)}" for k, v in event.items() if k not in _QUIET)
    head = f"{level.upper():7} {event.get('event', '')}"
    if colour:
        head = f"{_COLOURS.get(level, '')}{head}{_RESET}"
    return f"{stamp} {head} {fields}".rstrip()


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return json.dumps(text) if " " in text else text


def wanted(line: str, event: str | None, level: str | None) -> bool:
    """Filter by event name and minimum level (non-JSON lines pass only without filters)."""
    if event is None and level is None:
        return True
    try:
        record = json.loads(line)
    except ValueError:
        return False
    if not isinstance(record, dict):
        return False
    if event is not None and record.get("event") != event:
        return False
    if level is not None:
        have = str(record.get("level", "info"))
        rank = _LEVELS.index(have) if have in _LEVELS else 1
        return rank >= _LEVELS.index(level)
    return True


def follow(handle: TextIO, poll_s: float = 0.2) -> Iterator[str]:
    """Lines of a growing file, waiting for more at the end (like `tail -f`)."""
    while True:
        line = handle.readline()
        if line:
            yield line
        else:
            time.sleep(poll_s)


def show(
    lines: Iterable[str], out: TextIO, *, event: str | None, level: str | None, colour: bool
) -> int:
    shown = 0
    for line in lines:
        if line.strip() and wanted(line, event, level):
            out.write(format_line(line, colour) + "\n")
            out.flush()
            shown += 1
    return shown
