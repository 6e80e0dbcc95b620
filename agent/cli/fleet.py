"""`forager fleet run|deploy|supervise|leaderboard`: populations of agents on one arena."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli.akash import (
    add_rent_from_price,
    add_share_rpc_url,
    console_client,
    priced,
    sdl_options,
    sdl_settings,
)
from agent.cli.arena import until_signalled
from agent.cli.landlord import with_book
from agent.config import Settings, load_settings, settings_env
from agent.errors import AgentError, ConfigError
from agent.reports.tables import show
from telemetry.logs import configure_logging
from wallets.errors import WalletError

if TYPE_CHECKING:
    from agent.populations.landlord_service import ChainPlace


def add(commands: Any) -> None:
    fleet = commands.add_parser("fleet", help="populations of agents on one arena")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", required=True)
    _add_run(fleet_commands)
    _add_deploy(fleet_commands)
    _add_supervise(fleet_commands)
    _add_leaderboard(fleet_commands)


def _add_run(fleet_commands: Any) -> None:
    run = fleet_commands.add_parser("run", help="launch, supervise and stop N agents")
    run.add_argument("--agents", type=int, required=True)
    run.add_argument("--strategies", required=True, help="comma-separated, assigned in turn")
    run.add_argument("--ticks", type=int, required=True, help="ticks each agent lives at most")
    run.add_argument("--dir", type=Path, default=Path("fleet"), help="one data dir per agent")
    run.add_argument("--interval", type=float, default=2.0)
    run.add_argument("--seed", type=int)
    run.add_argument("--generation", type=int, default=0)
    run.add_argument("--stagger", type=float, default=1.0, help="seconds between starts")
    run.add_argument(
        "--model-server",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="model agents share one `forager model serve` (default: what bench.density measured "
        "faster on this kind of node)",
    )
    run.add_argument(
        "--model-engine",
        choices=("llama-server", "forager"),
        help="the shared model server: llama.cpp's llama-server or our engine (default: "
        "agent.populations.fleet.DEFAULT_MODEL_ENGINE)",
    )
    run.set_defaults(handler=_run)


def _add_deploy(fleet_commands: Any) -> None:
    go = fleet_commands.add_parser("deploy", help="one Akash deployment per agent")
    go.add_argument("--agents", type=int, required=True)
    go.add_argument("--strategies", required=True, help="comma-separated, assigned in turn")
    go.add_argument("--dir", type=Path, default=Path("fleet-akash"), help="records and manifests")
    go.add_argument("--image")
    go.add_argument("--cpu", type=float)
    go.add_argument("--memory")
    go.add_argument("--storage")
    go.add_argument("--price", type=int, help="max per block (uact)")
    go.add_argument("--generation", type=int, default=0)
    go.add_argument("--max-price", type=Decimal, help="highest acceptable bid per block")
    go.add_argument("--bid-timeout", type=float, default=180.0, help="seconds to wait for bids")
    go.add_argument(
        "--keys", action="store_true", help="make each agent's wallet here and ship it (secret env)"
    )
    add_share_rpc_url(go)
    add_rent_from_price(go)
    _add_landlord_dir(go, "add each leased agent to the landlord's book in DIR")
    go.set_defaults(handler=_deploy)


def _add_supervise(fleet_commands: Any) -> None:
    watch = fleet_commands.add_parser("supervise", help="deploy the children deployed agents fund")
    watch.add_argument("--deployments", type=Path, required=True)
    watch.add_argument("--image")
    watch.add_argument("--price", type=int, help="max per block (uact)")
    watch.add_argument("--poll", type=float, default=60.0, help="seconds between passes")
    watch.add_argument("--once", action="store_true", help="one pass, then exit")
    add_share_rpc_url(watch)
    _add_landlord_dir(watch, "add each leased agent (children too) to the landlord's book in DIR")
    watch.set_defaults(handler=_supervise)


def _add_leaderboard(fleet_commands: Any) -> None:
    board = fleet_commands.add_parser("leaderboard", help="rank the lives of a population")
    board.add_argument("dir", type=Path, nargs="?", help="a local fleet dir (one per agent)")
    board.add_argument(
        "--deployments", type=Path, help="deployments.json of `fleet deploy`: ask each agent"
    )
    board.add_argument("--json", type=Path, help="also write the ranking as JSON here")
    board.add_argument("--chart", type=Path, help="PNG of net worth (default: DIR/networth.png)")
    _add_landlord_dir(board, "with --deployments: each life's fate from the landlord's book")
    board.set_defaults(handler=_leaderboard)


def _add_landlord_dir(command: Any, what: str) -> None:
    command.add_argument(
        "--landlord-dir",
        type=Path,
        metavar="DIR",
        help=f"{what} (default: FORAGER_LANDLORD__DIR; neither: no book)",
    )


def _leaderboard(args: argparse.Namespace) -> int:
    from agent.populations import leaderboard as board

    if (args.dir is None) == (args.deployments is None):
        raise ConfigError("fleet leaderboard: give a fleet DIR or --deployments FILE")
    fates = None
    if args.deployments is not None:
        landlord = _landlord_dir(args)
        fates = None if landlord is None else _fates(args.deployments, landlord)
        lives = board.remote_leaderboard(args.deployments, landlord)
        default_chart = args.deployments.parent / "networth.png"
    else:
        lives = board.leaderboard(args.dir)
        default_chart = args.dir / "networth.png"
    if sys.stdout.isatty():
        show(board.ranking(lives, fates))
    else:
        print(board.render_table(lives, fates))  # plain, aligned text for pipes and scripts
    chart = board.write_chart(lives, args.chart or default_chart)
    print(f"chart: {chart}")
    if args.json:
        args.json.write_text(json.dumps([board.row(life, fates) for life in lives], indent=2))
        print(f"json: {args.json}")
    return 0


def _landlord_dir(args: argparse.Namespace) -> Path | None:
    """The landlord's folder when a book is configured (flag or settings), else None."""
    from agent.populations.landlord_service import book_configured

    settings = with_book(load_settings(), args.landlord_dir)
    return settings.landlord.dir if book_configured(settings) else None


def _fates(deployments: Path, landlord: Path) -> dict[str, str]:
    from agent.populations.landlord_service import existing_book
    from agent.populations.leaderboard import landlord_fates

    book = existing_book(landlord)
    try:
        return landlord_fates(deployments, book)
    finally:
        book.close()


def _settings(args: argparse.Namespace) -> Settings:
    settings = with_book(load_settings(**sdl_settings(args)), getattr(args, "landlord_dir", None))
    configure_logging(settings.telemetry.log_level)
    return settings


def _strategies(flag: str) -> list[str]:
    strategies = [s.strip() for s in flag.split(",") if s.strip()]
    for name in strategies:
        load_settings(strategy=name)  # a bad name stops here, named
    return strategies


def _run(args: argparse.Namespace) -> int:
    from agent.populations.fleet import run_fleet
    from agent.reports.progress import progress_for

    settings = _settings(args)
    strategies = _strategies(args.strategies)
    with until_signalled() as stop, progress_for() as progress:
        members = run_fleet(
            args.dir,
            agents=args.agents,
            strategies=strategies,
            ticks=args.ticks,
            settings=settings,
            interval_s=args.interval,
            seed=args.seed,
            generation=args.generation,
            stagger_s=args.stagger,
            stop=stop,
            model_server=_model_server(args.model_server),
            progress=progress,
            **({"model_engine": args.model_engine} if args.model_engine else {}),
        )
    failed = [m.name for m in members if m.exit_code not in (0, None)]
    print(f"fleet: {len(members)} agents in {args.dir}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def _model_server(flag: bool | None) -> bool:
    from agent.populations.fleet import DEFAULT_MODEL_SERVER

    return DEFAULT_MODEL_SERVER if flag is None else flag


def _deploy(args: argparse.Namespace) -> int:
    from agent.populations.akash_fleet import deploy_fleet
    from agent.populations.landlord_service import fleet_book

    options = sdl_options(args)
    settings = priced(_settings(args), options, args)
    strategies = _strategies(args.strategies)
    env = settings_env(settings)  # a live chain without consent stops here, before any lease
    place = fleet_book(settings)  # so does a landlord's book without a chain
    done = deploy_fleet(
        console_client(settings.akash),
        args.dir,
        agents=args.agents,
        strategies=strategies,
        options=options,
        base_env=env,
        generation=args.generation,
        bid_timeout_s=args.bid_timeout,
        max_price=args.max_price,
        with_keys=args.keys,
    )
    for entry in done:
        where = entry.get("state_url") or entry.get("error")
        print(f"{entry['name']} {entry['strategy']}: dseq {entry.get('dseq', '-')} {where}")
    print(f"recorded in {args.dir / 'deployments.json'}")
    booked = place is None or _into_book(settings, place, args.dir / "deployments.json")
    return 0 if booked and all("dseq" in entry for entry in done) else 1


def _supervise(args: argparse.Namespace) -> int:
    from agent.populations.akash_fleet import supervise_remote
    from agent.populations.landlord_service import fleet_book

    settings = _settings(args)
    env = settings_env(settings)  # a live chain without consent stops here, before any lease
    place = fleet_book(settings)  # so does a landlord's book without a chain
    client, options = console_client(settings.akash), sdl_options(args)
    with until_signalled() as stop:
        while True:
            for entry in supervise_remote(client, args.deployments, options, env):
                where = entry.get("state_url") or entry.get("error")
                print(f"{entry['name']} (child of {entry['parent']}): {where}")
            # The whole record: an agent skipped before may have an address now.
            booked = place is None or _into_book(settings, place, args.deployments)
            if args.once:
                return 0 if booked else 1
            if stop.wait(args.poll):
                return 0


def _into_book(settings: Settings, place: ChainPlace, deployments: Path) -> bool:
    """Add the record's leased agents not yet in the landlord's book, and say what was done.

    A failure (the chain, the book) is said, not raised: the leases are already recorded, and
    the next `fleet supervise` pass or `forager landlord adopt` adds them.
    """
    from agent.populations.landlord_service import adopt_record

    try:
        done = adopt_record(settings, place, deployments)
    except (AgentError, WalletError) as exc:
        print(
            f"landlord: the book was not updated ({exc}); the leases are recorded in "
            f"{deployments}: forager landlord adopt --deployments {deployments}",
            file=sys.stderr,
        )
        return False
    for dseq, what in done:
        print(f"landlord: dseq {dseq} {what}")
    return True
