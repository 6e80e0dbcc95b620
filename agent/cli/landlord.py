"""`forager landlord add|adopt|run|show`: keep agents' Akash leases funded while they pay rent.

The book lives in `FORAGER_LANDLORD__DIR`; rent is read from the chain named by `--arena FILE`
or the `FORAGER_CHAIN__*` settings; leases are funded and closed through the Console API
(`FORAGER_AKASH__API_KEY`).
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.cli.akash import console_client
from agent.cli.arena import until_signalled
from agent.config import Settings, load_settings
from agent.reports.tables import Table, show
from telemetry.logs import configure_logging


def add(commands: Any) -> None:
    landlord = commands.add_parser("landlord", help="fund leases of agents that pay rent")
    sub = landlord.add_subparsers(dest="landlord_command", required=True)
    one = sub.add_parser("add", help="put a deployed agent in the book")
    one.add_argument("--address", required=True, help="the agent's wallet address")
    one.add_argument("--dseq", required=True, help="its Akash deployment")
    one.add_argument("--rent-amount", type=Decimal, required=True, help="stable per period")
    one.add_argument("--period-ticks", type=int, required=True)
    one.add_argument("--interval", type=Decimal, required=True, help="the agent's seconds a tick")
    one.add_argument("--grace-ticks", type=int, required=True)
    one.add_argument("--state-url", help="the agent's HTTP base URL (its /state, /series)")
    one.add_argument("--start-block", type=int, help="where its tenancy starts (default: now)")
    _common(one)
    one.set_defaults(handler=_add)
    fleet = sub.add_parser("adopt", help="add a fleet's leased agents (deployments.json)")
    fleet.add_argument("--deployments", type=Path, required=True, help="fleet deploy's record")
    _common(fleet)
    fleet.set_defaults(handler=_adopt)
    run = sub.add_parser("run", help="a pass over the book every S seconds, and HTTP")
    run.add_argument("--once", action="store_true", help="one pass, then exit")
    run.add_argument("--every", type=float, help="seconds between passes")
    run.add_argument("--port", type=int, default=8090, help="/healthz and /tenants (0: any)")
    run.add_argument("--host", default="127.0.0.1")
    _common(run)
    run.set_defaults(handler=_run)
    book = sub.add_parser("show", help="the book as a table")
    book.add_argument("--dir", type=Path, help="the landlord's folder")
    book.set_defaults(handler=_show)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, help="the landlord's folder")
    parser.add_argument("--arena", type=Path, help="the chain of a shared arena (its file)")


def _settings(args: argparse.Namespace) -> Settings:
    return with_book(load_settings(), args.dir)


def with_book(settings: Settings, folder: Path | None) -> Settings:
    """`settings` with the landlord's folder set from a flag (`--dir`, a fleet's
    `--landlord-dir`), when one was given; `FORAGER_LANDLORD__DIR` otherwise."""
    if folder is None:
        return settings
    return settings.model_copy(
        update={"landlord": settings.landlord.model_copy(update={"dir": folder})}
    )


def _add(args: argparse.Namespace) -> int:
    from agent.populations.landlord_service import add_tenant, chain_place, open_book, read_arena

    settings = _settings(args)
    configure_logging(settings.telemetry.log_level)
    place = chain_place(settings, read_arena(args.arena))
    book = open_book(settings)
    try:
        tenant = add_tenant(
            book,
            place,
            address=args.address,
            dseq=args.dseq,
            rent_amount=args.rent_amount,
            period_ticks=args.period_ticks,
            interval_s=args.interval,
            grace_ticks=args.grace_ticks,
            state_url=args.state_url,
            start_block=args.start_block,
        )
    finally:
        book.close()
    print(f"tenant {tenant.dseq}: {tenant.address} from block {tenant.start_block}")
    return 0


def _adopt(args: argparse.Namespace) -> int:
    from agent.populations.landlord_service import adopt_record, chain_place, read_arena

    settings = _settings(args)
    configure_logging(settings.telemetry.log_level)
    place = chain_place(settings, read_arena(args.arena))
    done = adopt_record(settings, place, args.deployments)
    for dseq, what in done:
        print(f"dseq {dseq}: {what}")
    print(f"{len(done)} new deployment(s) in {args.deployments}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from agent.populations.landlord_service import (
        Http,
        build_landlord,
        chain_place,
        read_arena,
        tenants_app,
    )
    from telemetry.otel import configure_telemetry, shutdown_telemetry

    settings = _settings(args)
    configure_logging(settings.telemetry.log_level)
    configure_telemetry(settings.telemetry.service_name, {"forager.role": "landlord"})
    place = chain_place(settings, read_arena(args.arena))
    landlord = build_landlord(settings, place, console_client(settings.akash))
    try:
        if args.once:
            landlord.run_pass()
            return 0
        every = args.every if args.every is not None else settings.landlord.every_s
        http = Http(tenants_app(landlord), args.host, args.port)
        with until_signalled() as stop:
            while not stop.is_set():
                landlord.run_pass()
                stop.wait(every)
        http.stop()
        return 0
    finally:
        landlord.book.close()
        shutdown_telemetry()


def _show(args: argparse.Namespace) -> int:
    from agent.populations.landlord_service import existing_book

    book = existing_book(_settings(args).landlord.dir)
    tenants = book.tenants()
    book.close()
    columns = ("dseq", "address", "rent", "period", "status", "fate", "bid", "last action")
    rows = tuple(
        (
            t.dseq,
            t.address,
            str(t.amount),
            f"{t.period_ticks} x {t.interval_s}s",
            t.status,
            t.fate or "",
            f"{t.bid_price} {t.bid_denom}" if t.bid_price else "",
            t.last_action or "",
        )
        for t in tenants
    )
    show(Table(columns, rows, title="landlord book", notes=("rent in stable base units",)))
    return 0
