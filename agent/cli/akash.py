"""`forager akash ...`: render and validate SDL, and deploy through the Akash Console API.

The SDL's defaults live once, in `akash.sdl.SdlOptions`: a flag left out is not passed, so the
option keeps its default there (`fleet deploy` and `fleet supervise` build theirs the same way).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import SHARE_RPC_URL_VAR, AkashSettings, Settings, load_settings, settings_env
from agent.errors import ConfigError
from akash.errors import AkashError, SdlError
from telemetry.redaction import secrets

if TYPE_CHECKING:
    from akash.console import ConsoleClient, DeploymentStatus
    from akash.rent import Rent
    from akash.sdl import SdlOptions

_SDL_FLAGS = ("image", "cpu", "memory", "storage", "persistent", "gpu", "gpu_ram", "price", "denom")


def add(commands: Any) -> None:
    akash = commands.add_parser("akash", help="deploy to the Akash decentralized cloud")
    akash_commands = akash.add_subparsers(dest="akash_command", required=True)
    _add_sdl(akash_commands)
    _add_console(akash_commands)


def _add_sdl(akash_commands: Any) -> None:
    sdl = akash_commands.add_parser("sdl", help="render the SDL for this agent")
    sdl.add_argument("--image")
    sdl.add_argument("--cpu", type=float)
    sdl.add_argument("--memory")
    sdl.add_argument("--storage")
    sdl.add_argument(
        "--persistent", action="store_true", default=None, help="keep the data dir on a volume"
    )
    sdl.add_argument("--gpu", help="NVIDIA model, e.g. h100, a100, rtx4090")
    sdl.add_argument("--gpu-ram", help="GPU memory, e.g. 80Gi")
    sdl.add_argument("--price", type=int, help="max per block (uact or uakt)")
    sdl.add_argument("--denom", choices=["uact", "uakt"])
    sdl.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container")
    add_share_rpc_url(sdl)
    add_rent_from_price(sdl)
    sdl.add_argument("--out", type=Path, help="write here instead of stdout")
    sdl.set_defaults(handler=_sdl)
    check = akash_commands.add_parser("validate", help="validate any SDL file")
    check.add_argument("file", type=Path)
    check.add_argument("--schema", type=Path, help="sdl-input.schema.yaml (default: found)")
    check.set_defaults(handler=_validate)
    steps = akash_commands.add_parser("commands", help="print the self-custody CLI sequence")
    steps.add_argument("--sdl", default="deploy.yaml", help="the SDL file the commands use")
    steps.set_defaults(handler=_commands)


def _add_console(akash_commands: Any) -> None:
    go = akash_commands.add_parser("deploy", help="create a deployment and lease via the Console")
    go.add_argument("--sdl", type=Path, required=True)
    go.add_argument("--gpu", help="only accept bids offering this GPU model")
    go.add_argument("--max-price", type=Decimal, help="highest acceptable price per block")
    go.add_argument("--bid-timeout", type=float, default=180.0, help="seconds to wait for bids")
    go.add_argument("--keep-dir", type=Path, default=Path("akash-deployments"))
    go.set_defaults(handler=_deploy)
    for name, text, handler in (
        ("status", "a deployment's state and its lease URIs", _status),
        ("close", "close a deployment (its remaining deposit returns)", _close),
    ):
        one = akash_commands.add_parser(name, help=text)
        one.add_argument("dseq")
        one.set_defaults(handler=handler)
    _add_logs(akash_commands)
    topup = akash_commands.add_parser("topup", help="add funds to a deployment's escrow")
    topup.add_argument("dseq")
    topup.add_argument("--usd", type=float, required=True)
    topup.set_defaults(handler=_topup)


def _add_logs(akash_commands: Any) -> None:
    logs = akash_commands.add_parser("logs", help="stream a lease's logs from its provider")
    logs.add_argument("dseq")
    logs.add_argument("--follow", "-f", action="store_true", help="keep streaming new lines")
    logs.add_argument("--tail", type=int, default=100, help="lines from the end to start with")
    logs.add_argument("--service", help="one service of the SDL (default: all)")
    logs.add_argument("--event", help="only this event, e.g. swap_submitted")
    logs.add_argument(
        "--level", choices=["debug", "info", "warning", "error"], help="this level and above"
    )
    logs.set_defaults(handler=_lease_logs)


def add_share_rpc_url(command: Any) -> None:
    """The operator's consent to ship a live chain's RPC URLs (secrets) in an SDL."""
    command.add_argument(
        "--share-rpc-url",
        action="store_true",
        default=None,  # not given: FORAGER_AKASH__SHARE_RPC_URL or the default (no) decides
        help=f"put the live chain's RPC URLs, API keys and all, in the SDL, where the provider "
        f"sees them (also {SHARE_RPC_URL_VAR}=true); needed with FORAGER_CHAIN__RPC_URL",
    )


def add_rent_from_price(command: Any) -> None:
    """The agent's rent set from the SDL's price cap (see `akash.rent`)."""
    command.add_argument(
        "--rent-from-price",
        action="store_true",
        help="set the agent's FORAGER_RENT__AMOUNT from the price cap: cap * blocks per rent "
        "period, in stable at FORAGER_LANDLORD__STABLE_PER_USD, plus FORAGER_LANDLORD__MARGIN "
        "(the arithmetic goes to stderr)",
    )


def rent_quote(settings: Settings, price: Decimal | int, denom: str) -> Rent:
    """The rent per period for a lease at `price` per block, under these settings."""
    from akash.rent import rent_from_price

    landlord = settings.landlord
    return rent_from_price(
        price,
        period_ticks=settings.rent.period_ticks,
        interval_s=Decimal(str(settings.interval_s)),
        decimals=landlord.stable_decimals,
        margin=landlord.margin,
        denom=denom,
        block_s=landlord.block_s,
        usd_per_token=landlord.usd_per_token,
        stable_per_usd=landlord.stable_per_usd,
    )


def priced(settings: Settings, options: SdlOptions, args: argparse.Namespace) -> Settings:
    """`settings` with the rent from the price cap when `--rent-from-price` was given."""
    if not getattr(args, "rent_from_price", False):
        return settings
    rent = rent_quote(settings, options.price, options.denom)
    print("rent from the price cap:", *rent.lines(), sep="\n  ", file=sys.stderr)
    return settings.model_copy(
        update={"rent": settings.rent.model_copy(update={"amount": rent.amount})}
    )


def sdl_settings(args: argparse.Namespace) -> dict[str, Any]:
    """`load_settings` overrides from the SDL-rendering flags given (`--share-rpc-url`)."""
    if getattr(args, "share_rpc_url", None) is None:
        return {}
    return {"akash": {"share_rpc_url": args.share_rpc_url}}


def sdl_options(args: argparse.Namespace, **extra: Any) -> SdlOptions:
    """`SdlOptions` from the SDL flags this command has and was given; the rest keep defaults."""
    from akash.sdl import SdlOptions

    given = {name: getattr(args, name, None) for name in _SDL_FLAGS}
    return SdlOptions(**{k: v for k, v in given.items() if v is not None}, **extra)


def console_client(settings: AkashSettings) -> ConsoleClient:
    """The Console API client; its key is registered as a secret before it is used."""
    from akash.console import ConsoleClient

    key = settings.api_key.get_secret_value() if settings.api_key else ""
    secrets.register(key)
    return ConsoleClient(key, base_url=settings.console_url)


def _sdl(args: argparse.Namespace) -> int:
    from akash.sdl import render_sdl

    options = sdl_options(args, env=dict(_pair(item) for item in args.env))
    settings = priced(load_settings(**sdl_settings(args)), options, args)
    text = render_sdl(options, settings_env(settings))
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")
    return 0


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--env {item!r}: expected KEY=VALUE")
    return key, value


def _read_sdl(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise SdlError(f"SDL file {path} cannot be read: {exc.strerror}") from exc


def _validate(args: argparse.Namespace) -> int:
    from akash.validate import load_schema, load_yaml, validate_document

    text = _read_sdl(args.file)
    problems = validate_document(load_yaml(text, str(args.file)), load_schema(args.schema))
    for problem in problems:
        print(f"{args.file}: {problem}")
    print(f"{args.file}: {'valid' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1


def _commands(args: argparse.Namespace) -> int:
    from akash.sdl import cli_commands

    print("\n".join(cli_commands(args.sdl)))
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from akash.deploy import deploy

    client = console_client(load_settings().akash)
    sdl = _read_sdl(args.sdl)
    done = deploy(
        client,
        sdl,
        args.keep_dir,
        gpu=args.gpu,
        max_price=args.max_price,
        bid_timeout_s=args.bid_timeout,
    )
    print(f"dseq {done.dseq} leased from {done.provider} at {done.price} {done.denom}/block")
    print(f"manifest kept in {done.manifest_file}")
    print(f"state: {done.state_url or '(no URI yet: forager akash status ' + done.dseq + ')'}")
    return 0


def _close(args: argparse.Namespace) -> int:
    client = console_client(load_settings().akash)
    print(f"dseq {args.dseq} closed: {client.close(args.dseq)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = load_settings()
    status = console_client(settings.akash).deployment(args.dseq)
    _show_status(status)
    if status.escrow is not None:
        print(f"  escrow: {status.escrow.balance} {status.escrow.denom} ({status.escrow.state})")
    for lease in status.leases:
        if lease.price is not None and lease.denom in ("uact", "uakt"):
            rent = rent_quote(settings, lease.price, lease.denom)
            print(f"  rent at this bid ({lease.price} {lease.denom}/block):")
            print("\n".join(f"    {line}" for line in rent.lines()))
    return 0


def _topup(args: argparse.Namespace) -> int:
    return _show_status(console_client(load_settings().akash).deposit(args.dseq, args.usd))


def _show_status(status: DeploymentStatus) -> int:
    print(f"dseq {status.dseq}: {status.state}")
    for lease in status.leases:
        print(f"  lease {lease.provider}: {lease.state} {' '.join(lease.uris)}")
    return 0


def _lease_logs(args: argparse.Namespace) -> int:
    """The Console finds the lease and its provider and mints a JWT; the provider streams."""
    from agent.cli.logview import show
    from akash import leaselogs

    client = console_client(load_settings().akash)
    url = _logs_url(client, args)
    lines = (line.message for line in leaselogs.stream(url, client.lease_token(("logs",))))
    try:
        show(lines, sys.stdout, event=args.event, level=args.level, colour=sys.stdout.isatty())
    except KeyboardInterrupt:
        return 0
    return 0


def _logs_url(client: ConsoleClient, args: argparse.Namespace) -> str:
    """The log stream of the deployment's active lease, at its provider."""
    from akash.leaselogs import logs_url

    status = client.deployment(args.dseq)
    lease = next((item for item in status.leases if item.state == "active"), None)
    if lease is None:
        raise AkashError(f"dseq {args.dseq} has no active lease (state: {status.state})")
    return logs_url(
        client.provider_host(lease.provider),
        status.dseq,
        lease.gseq,
        lease.oseq,
        follow=args.follow,
        tail=args.tail,
        service=args.service,
    )
