"""`forager logs`: JSON lines made readable, filtered by event and level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.cli.logview import format_line, wanted
from tests.conftest import REPO

LINE = json.dumps(
    {
        "tick": 3,
        "reason": "buy the dip",
        "event": "decision_made",
        "level": "info",
        "timestamp": "2026-11-25T20:16:30.529460Z",
        "trace_id": "ab" * 16,
    }
)


def test_a_line_reads_as_time_level_event_fields():
    """Time, level and event lead; fields follow; ids are left out; spaces are quoted."""
    text = format_line(LINE)
    assert text == '20:16:30.529 INFO    decision_made tick=3 reason="buy the dip"'
    assert "\x1b[32m" in format_line(LINE, colour=True)
    assert format_line("provider says hello\n") == "provider says hello"


def test_filters_by_event_and_minimum_level():
    """--event keeps one event; --level keeps that level and worse."""
    warn = json.dumps({"event": "rent_missed", "level": "warning"})
    assert wanted(LINE, "decision_made", None) and not wanted(LINE, "rent_paid", None)
    assert wanted(warn, None, "warning") and not wanted(LINE, None, "warning")
    assert not wanted("plain text", "decision_made", None)


def test_cli_reads_a_file(tmp_path: Path):
    """`forager logs FILE --level warning` prints only the warning."""
    log = tmp_path / "agent.log"
    log.write_text(LINE + "\n" + json.dumps({"event": "rent_missed", "level": "warning"}) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "logs", str(log), "--level", "warning"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.splitlines() == [" WARNING rent_missed"]
