"""`forager landlord` assembled: the book, the Console, the chain, passes and HTTP.

One concurrency model: passes run one at a time on the caller's thread; uvicorn serves
`/healthz` and `/tenants` from a background thread, reading the tuple of views the last pass
left (replaced whole, so a reader never sees half a pass).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

from agent.config import Settings
from agent.errors import ConfigError
from agent.populations.landlord import Landlord, LeaseConsole, RentLedger, Terms
from agent.populations.landlord_book import Book, Tenant
from arena.world import ArenaInfo
from telemetry import otel
from wallets.chain import Chain
from wallets.tokens import Erc20, to_base

log = structlog.get_logger()

BOOK_FILE = "book.sqlite"


@dataclass(frozen=True)
class ChainPlace:
    """Where rent is paid: the chain's endpoints, the stable token, the landlord address."""

    rpc_urls: tuple[str, ...]
    stable_token: str
    landlord: str


def chain_place(settings: Settings, arena: ArenaInfo | None) -> ChainPlace:
    """The chain from a shared arena's connection file, else from the chain settings."""
    if arena is not None:
        return ChainPlace((arena.rpc_url,), arena.stable_token, arena.landlord)
    chain = settings.chain
    if chain.rpc_url is None or chain.stable_token is None or chain.landlord is None:
        raise ConfigError(
            "the landlord reads rent from a chain: pass --arena FILE, or set "
            "FORAGER_CHAIN__RPC_URL, FORAGER_CHAIN__STABLE_TOKEN and FORAGER_CHAIN__LANDLORD"
        )
    return ChainPlace(tuple(chain.urls()), chain.stable_token, chain.landlord)


def open_book(settings: Settings) -> Book:
    return Book(settings.landlord.dir / BOOK_FILE)


def existing_book(folder: Path) -> Book:
    """The book in `folder`, for reading: one that is not there is an error, not made."""
    if not (folder / BOOK_FILE).is_file():
        raise ConfigError(f"no landlord book in {folder} (forager landlord add or adopt)")
    return Book(folder / BOOK_FILE)


def terms(settings: Settings) -> Terms:
    section = settings.landlord
    return Terms(
        deposit_usd=section.deposit_usd,
        low_escrow_hours=section.low_escrow_hours,
        block_s=section.block_s,
        agent_timeout_s=section.agent_timeout_s,
        auto_top_up=section.auto_top_up,
    )


def build_landlord(settings: Settings, place: ChainPlace, console: LeaseConsole) -> Landlord:
    """The composition root of a landlord."""
    ledger = RentLedger(Chain(list(place.rpc_urls)), place.stable_token, place.landlord)
    return Landlord(open_book(settings), console, ledger, settings.landlord.dir, terms(settings))


def add_tenant(
    book: Book,
    place: ChainPlace,
    *,
    address: str,
    dseq: str,
    rent_amount: Decimal,
    period_ticks: int,
    interval_s: Decimal,
    grace_ticks: int,
    state_url: str | None = None,
    start_block: int | None = None,
    bid_price: str | None = None,
    bid_denom: str | None = None,
) -> Tenant:
    """Put a tenant in the book; its start is `start_block` (default: the chain's head)."""
    chain = Chain(list(place.rpc_urls))
    decimals = Erc20(chain, place.stable_token).decimals()
    start = chain.head() if start_block is None else chain.head(start_block)
    amount = to_base(rent_amount, decimals)
    if amount <= 0:
        raise ConfigError(f"--rent-amount {rent_amount}: expected more than 0 base units")
    tenant = Tenant(
        dseq=str(dseq),
        address=address,
        amount=amount,
        period_ticks=period_ticks,
        interval_s=str(interval_s),
        grace_ticks=grace_ticks,
        start_block=start.number,
        start_ts=start.timestamp,
        state_url=state_url,
        bid_price=bid_price,
        bid_denom=bid_denom,
    )
    book.add(tenant)
    log.info("tenant_added", dseq=tenant.dseq, address=address, start_block=start.number)
    return tenant


def book_configured(settings: Settings) -> bool:
    """Whether the operator named a landlord book (`FORAGER_LANDLORD__DIR`, the settings file,
    or a command's `--landlord-dir`): a fleet never writes to the default folder unasked."""
    return "dir" in settings.landlord.model_fields_set


def fleet_book(settings: Settings) -> ChainPlace | None:
    """Where a fleet command adds the agents it leases: the chain rent is paid on, or None
    (said in one log line) when no book is configured. Called before any lease, so a book
    without a chain stops the command while nothing is spent."""
    if not book_configured(settings):
        log.info(
            "landlord_book_not_configured",
            detail="leased agents are not added to a landlord's book: set FORAGER_LANDLORD__DIR "
            "or --landlord-dir (or run forager landlord adopt later)",
        )
        return None
    return chain_place(settings, None)


def adopt_record(settings: Settings, place: ChainPlace, deployments: Path) -> list[tuple[str, str]]:
    """`adopt` on the book of `settings`, opened and closed around it."""
    book = open_book(settings)
    try:
        done = adopt(book, place, deployments, settings)
    finally:
        book.close()
    for dseq, what in done:
        log.info("tenant_adopted", dseq=dseq, outcome=what, book=str(settings.landlord.dir))
    return done


def adopt(
    book: Book, place: ChainPlace, deployments: Path, settings: Settings
) -> list[tuple[str, str]]:
    """Add each leased agent of a fleet record (`fleet deploy`, `fleet supervise`) not yet in
    the book, on the rent terms it was deployed with and at its accepted bid.

    The terms are the entry's `rent` (what its SDL's env held; the fleet records it), else
    those of `settings`. The agent's address comes from the record (`--keys`, or a child's
    derived wallet) or else from its `/state`; one that has neither yet is skipped and named,
    to be adopted on a later run. Returns (dseq, what).
    """
    try:
        entries = json.loads(deployments.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"fleet record {deployments} cannot be read: {exc}") from exc
    known = {tenant.dseq for tenant in book.tenants()}
    done = []
    for entry in entries:
        dseq = str(entry.get("dseq") or "")
        if not dseq or dseq in known:
            continue
        address = entry.get("address") or _address_of(entry.get("state_url"), settings)
        if not address:
            done.append((dseq, "skipped: no address yet (no --keys, /state unreachable)"))
            continue
        add_tenant(
            book,
            place,
            address=str(address),
            dseq=dseq,
            state_url=entry.get("state_url"),
            bid_price=entry.get("price"),
            bid_denom=entry.get("denom"),
            **_deployed_terms(entry.get("rent") or {}, settings),
        )
        known.add(dseq)
        done.append((dseq, f"added {address}"))
    return done


def _deployed_terms(rent: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The rent terms of a fleet entry, each missing one taken from `settings`."""
    try:
        return {
            "rent_amount": Decimal(str(rent.get("amount", settings.rent.amount))),
            "period_ticks": int(rent.get("period_ticks", settings.rent.period_ticks)),
            "interval_s": Decimal(str(rent.get("interval_s", settings.interval_s))),
            "grace_ticks": int(rent.get("grace_ticks", settings.rent.grace_ticks)),
        }
    except (ArithmeticError, ValueError) as exc:
        raise ConfigError(f"fleet record rent terms {rent}: expected numbers ({exc})") from exc


def _address_of(state_url: str | None, settings: Settings) -> str | None:
    if not state_url:
        return None
    url = state_url.rstrip("/").removesuffix("/state") + "/state"
    try:
        answer = httpx.get(url, timeout=settings.landlord.agent_timeout_s).json()
    except (httpx.HTTPError, ValueError):
        return None
    address = answer.get("address") if isinstance(answer, dict) else None
    return str(address) if address else None


def tenants_app(landlord: Landlord) -> FastAPI:
    """`/healthz`, `/tenants` and `/metrics` (read-only) over the last pass."""
    app = FastAPI(title="forager landlord", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "tenants": len(landlord.views)}

    @app.get("/tenants")
    def tenants() -> list[dict[str, Any]]:
        return [dataclasses.asdict(view) for view in landlord.views]

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        """The landlord's metrics in Prometheus text format."""
        telemetry = otel.current()
        text = telemetry.prometheus_text() if telemetry else b""
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


class Http:
    """uvicorn on a background thread; `port` is the one it bound (0 picks a free one)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"HTTP could not listen on {host}:{port} (in use?)")
            time.sleep(0.01)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        log.info("http_listening", host=host, port=self.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def read_arena(path: Path | None) -> ArenaInfo | None:
    if path is None:
        return None
    from agent.daemon.wiring import load_arena_file

    return load_arena_file(path)
