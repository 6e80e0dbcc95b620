"""The `forager` command line: the parser, the dispatch, and one line for every known error.

Each command group lives in its own module (`agent.cli.run`, `.wallet`, `.dataset`,
`.telemetry`, `.akash`, `.arena`, `.fleet`, `.landlord`, `.lab`, `.model`, `.logs`) whose
`add(commands)` registers its parsers with a `handler`. Handlers import what is heavy
themselves, so `forager --help` and the small commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from agent.cli import (
    akash,
    arena,
    dataset,
    fleet,
    lab,
    landlord,
    logs,
    model,
    run,
    telemetry,
    wallet,
)
from agent.errors import AgentError
from akash.errors import AkashError
from arena.errors import ArenaError
from telemetry.errors import TelemetryError
from wallets.errors import WalletError

EXIT_ERROR = 2  # a known error: the message says what to fix

# Every package's base: a failure the user can act on, told in one line instead of a traceback.
PACKAGE_ERRORS = (AgentError, WalletError, TelemetryError, AkashError, ArenaError)

_GROUPS = (run, wallet, dataset, telemetry, akash, arena, fleet, landlord, lab, model, logs)


def parser() -> argparse.ArgumentParser:
    """The `forager` parser: every group's commands, each with its handler."""
    top = argparse.ArgumentParser(prog="forager", description="Run agents that must pay rent.")
    commands = top.add_subparsers(dest="command", required=True)
    for group in _GROUPS:
        group.add(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except PACKAGE_ERRORS as exc:
        print(f"forager: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
