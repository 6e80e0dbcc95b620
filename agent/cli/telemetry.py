"""`forager telemetry replay`: stored tick records sent again to the OTLP collector."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add(commands: Any) -> None:
    telemetry = commands.add_parser("telemetry", help="telemetry tools")
    telemetry_commands = telemetry.add_subparsers(dest="telemetry_command", required=True)
    replay = telemetry_commands.add_parser(
        "replay", help="re-send stored tick records to the OTLP collector (OTEL_* settings)"
    )
    replay.add_argument("--data-dir", type=Path, required=True)
    replay.add_argument("--since", type=int, default=0, help="first tick to send")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from agent.runtime.replay import replay

    sent = replay(args.data_dir, args.since)
    print(f"{sent} tick records re-sent")
    return 0
