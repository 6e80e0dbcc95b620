"""Run one landlord pass and die with SIGKILL at a chosen point of a Console call.

Used by test_landlord.py as a subprocess: `python -m
tests.agent.populations.landlord_crash_helper POINT ARGS_JSON`. POINT is `before_call` (the
intent is journalled, the Console not yet called) or `after_call` (the Console acted, its
`done` line not yet written). The parts are the real ones; the wrapper only adds the kill.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from agent.config import load_settings
from agent.populations.landlord_service import ChainPlace, build_landlord
from akash.console import ConsoleClient, DeploymentStatus


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DyingConsole(ConsoleClient):
    """The real client, killed around the calls that act."""

    def __init__(self, api_key: str, base_url: str, point: str) -> None:
        super().__init__(api_key, base_url)
        self._point = point

    def close(self, dseq: str) -> bool:
        self._maybe_die("before_call")
        closed = super().close(dseq)
        self._maybe_die("after_call")
        return closed

    def deposit(self, dseq: str, usd: float) -> DeploymentStatus:
        self._maybe_die("before_call")
        status = super().deposit(dseq, usd)
        self._maybe_die("after_call")
        return status

    def set_auto_top_up(self, dseq: str, enabled: bool) -> bool:
        self._maybe_die("before_call")
        now = super().set_auto_top_up(dseq, enabled)
        self._maybe_die("after_call")
        return now

    def _maybe_die(self, point: str) -> None:
        if self._point == point:
            die()


def main() -> None:
    point, args = sys.argv[1], json.loads(sys.argv[2])
    settings = load_settings(
        landlord={
            "dir": Path(args["dir"]),
            "low_escrow_hours": args["low_hours"],
            "auto_top_up": args.get("auto_top_up", False),
        }
    )
    place = ChainPlace((args["rpc_url"],), args["stable_token"], args["landlord"])
    console = DyingConsole(args["api_key"], args["console_url"], point)
    build_landlord(settings, place, console).run_pass()
    print("survived", flush=True)


if __name__ == "__main__":
    main()
