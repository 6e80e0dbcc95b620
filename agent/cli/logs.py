"""`forager logs` and `forager status`: an agent's log lines and its state, for a person."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.errors import ConfigError


def add(commands: Any) -> None:
    logs = commands.add_parser("logs", help="pretty-print an agent's JSON log lines")
    logs.add_argument("file", nargs="?", default="-", help="a log file, or - for stdin")
    logs.add_argument("--follow", "-f", action="store_true", help="keep reading as it grows")
    logs.add_argument("--event", help="only this event, e.g. swap_submitted")
    logs.add_argument(
        "--level", choices=["debug", "info", "warning", "error"], help="this level and above"
    )
    logs.set_defaults(handler=_logs)
    status = commands.add_parser("status", help="an agent's state at a glance")
    status.add_argument("url", nargs="?", default="http://127.0.0.1:8080")
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from agent.cli.statusview import fetch, render

    state, health = fetch(args.url)
    print(render(state, health))
    return 0 if health.get("ok") else 1


def _logs(args: argparse.Namespace) -> int:
    from agent.cli.logview import follow, show

    colour = sys.stdout.isatty()
    if args.file == "-":
        show(sys.stdin, sys.stdout, event=args.event, level=args.level, colour=colour)
        return 0
    try:
        handle = Path(args.file).open()  # noqa: SIM115 -- closed below; may be followed forever
    except OSError as exc:
        raise ConfigError(f"log file {args.file} cannot be read: {exc.strerror}") from exc
    with handle:
        lines = follow(handle) if args.follow else handle
        try:
            show(lines, sys.stdout, event=args.event, level=args.level, colour=colour)
        except KeyboardInterrupt:
            return 0
    return 0
