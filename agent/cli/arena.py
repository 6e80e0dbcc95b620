"""`forager arena up|calibrate`: a shared local arena, and the baselines measured on many."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Settings, load_settings
from agent.errors import ConfigError
from telemetry.logs import configure_logging

if TYPE_CHECKING:
    from agent.lab.calibrate import Report

_WEATHER_FLAGS = {
    "drift": "per-step drift of the fair value's log price",
    "volatility": "per-step volatility of the fair value's log price",
    "regime_switch": "chance per step of calm <-> storm",
    "shock_prob": "chance per step of a fair-value jump",
    "shock_size": "a jump's size in log price",
    "noise": "noise traders' push per step (log price)",
    "arb_strength": "share of the gap to fair value the arbitrageur closes per step",
}


def add(commands: Any) -> None:
    arena = commands.add_parser("arena", help="a shared local arena for many agents")
    arena_commands = arena.add_subparsers(dest="arena_command", required=True)
    up = arena_commands.add_parser("up", help="start an arena and write its connection file")
    up.add_argument("--out", type=Path, required=True, help="the connection file (JSON)")
    up.add_argument("--seed", type=int, help="weather seed: same seed, same price path")
    up.add_argument("--port", type=int, help="anvil's loopback port (default: a free one)")
    up.add_argument("--state-dir", type=Path, help="keep the world here across restarts")
    up.add_argument("--weather-interval", type=float, help="seconds between weather trades")
    up.add_argument("--replay", type=Path, help="replay a CSV price series instead")
    _add_weather_flags(up)
    up.set_defaults(handler=_up)
    _add_calibrate(arena_commands)


def _add_calibrate(arena_commands: Any) -> None:
    calibrate = arena_commands.add_parser(
        "calibrate", help="run the rule-based baselines on many seeds: does skill pay?"
    )
    calibrate.add_argument("--seeds", type=int, default=12, help="how many seeds (arenas)")
    calibrate.add_argument("--first-seed", type=int, help="default: FORAGER_ARENA__SEED")
    calibrate.add_argument("--ticks", type=int, default=300, help="ticks each life lasts at most")
    calibrate.add_argument(
        "--steps-per-tick",
        type=int,
        help="weather steps between two ticks (default: FORAGER_INTERVAL_S / weather interval)",
    )
    calibrate.add_argument(
        "--strategies",
        help="comma-separated baselines (default: all of them); llm adds the model (slow)",
    )
    calibrate.add_argument(
        "--out", type=Path, default=Path("calibration"), help="JSON, Markdown and PNG go here"
    )
    calibrate.add_argument(
        "--keep", type=Path, help="also keep every life's store here (for `dataset export`)"
    )
    _add_weather_flags(calibrate)
    calibrate.set_defaults(handler=_calibrate)


def _add_weather_flags(parser: argparse.ArgumentParser) -> None:
    for name, text in _WEATHER_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, help=text)


def _weather_overrides(args: argparse.Namespace) -> dict[str, float]:
    return {n: getattr(args, n) for n in _WEATHER_FLAGS if getattr(args, n) is not None}


@contextmanager
def until_signalled() -> Iterator[threading.Event]:
    """An event that SIGINT or SIGTERM sets; the previous handlers come back on the way out."""
    from agent.populations.arena_service import stop_on_signals

    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        yield stop
    finally:
        restore()


def _up(args: argparse.Namespace) -> int:
    from agent.daemon.wiring import arena_config
    from agent.populations.arena_service import serve_arena

    settings = load_settings()
    configure_logging(settings.telemetry.log_level)
    config = arena_config(
        settings,
        seed=args.seed,
        port=args.port,
        state_dir=args.state_dir,
        weather_interval_s=args.weather_interval,
        replay_csv=args.replay,
        **_weather_overrides(args),
    )
    with until_signalled() as stop:
        serve_arena(config, args.out, stop)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from agent.lab.calibrate import BASELINES, calibrate
    from agent.lab.report import write_report
    from agent.reports.progress import progress_for

    if args.seeds < 1 or args.ticks < 1:
        raise ConfigError(f"--seeds {args.seeds} and --ticks {args.ticks} must both be 1 or more")
    settings = _weather_settings(args)
    configure_logging("error")  # thousands of ticks: the report is the output
    strategies = _strategies(args.strategies) if args.strategies else BASELINES
    first = settings.arena.seed if args.first_seed is None else args.first_seed
    seeds = range(first, first + args.seeds)
    with progress_for() as progress:
        report = calibrate(
            settings, seeds, args.ticks, args.steps_per_tick, strategies, args.keep, progress
        )
    paths = write_report(report, args.out)
    p = report.params
    print(
        f"{len(seeds)} seeds ({first}..{first + len(seeds) - 1}) x {p.ticks} ticks, "
        f"{p.steps_per_tick} weather steps per tick; weather {p.weather}; flow {p.flow}"
    )
    _print_report(report, paths)
    return 0


def _print_report(report: Report, paths: Sequence[Path]) -> None:
    from agent.reports.tables import show

    show(report.table())
    print(json.dumps(report.verdict()))
    print("wrote " + ", ".join(str(x) for x in paths))


def _strategies(flag: str) -> tuple[str, ...]:
    """The --strategies names, each one calibrate can run (a rule, or llm for the model)."""
    from agent.lab.calibrate import STRATEGIES

    names = tuple(flag.split(","))
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown:
        raise ConfigError(
            f"--strategies {flag!r}: {', '.join(map(repr, unknown))} not known "
            f"(expected comma-separated names from: {', '.join(STRATEGIES)})"
        )
    return names


def _weather_settings(args: argparse.Namespace) -> Settings:
    """The settings with the weather flags applied to the arena (checked like the settings)."""
    settings = load_settings()
    arena = settings.arena.model_dump() | _weather_overrides(args)
    try:
        return settings.model_copy(update={"arena": type(settings.arena)(**arena)})
    except ValueError as exc:
        raise ConfigError(f"weather flags: {exc}") from exc
