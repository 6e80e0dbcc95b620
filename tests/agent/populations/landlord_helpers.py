"""Parts the landlord tests share: a tenant paying real rent on anvil, an agent's HTTP
stand-in, and a landlord built the way `forager landlord run` builds one."""

from __future__ import annotations

import json
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from eth_account import Account

from agent.config import load_settings
from agent.populations.landlord import Landlord, LeaseConsole
from agent.populations.landlord_book import Book, Tenant
from agent.populations.landlord_service import BOOK_FILE, ChainPlace, build_landlord
from agent.populations.landlord_service import add_tenant as add_to_book
from akash.console import ConsoleClient
from arena.local import LocalArena
from tests.loopback import LoopbackServer
from wallets.chain import Chain
from wallets.journal import Journal
from wallets.tokens import Erc20
from wallets.transactions import TxSender

RENT = 1_000  # stable base units per period
STABLE_DECIMALS = 6  # the arena's stable token
PERIOD_TICKS = 10
INTERVAL_S = 100  # a period is 1 000 s of chain time: real seconds passing in a test are noise
GRACE_TICKS = 5  # 500 s
API_KEY = "test-key"
LOW_HOURS = Decimal(10)  # the mock's 5 000 000 uact at 1 000 uact/block last 8.3 h: low


def place_of(arena: LocalArena) -> ChainPlace:
    info = arena.info
    assert info is not None
    return ChainPlace((info.rpc_url,), info.stable_token, info.landlord)


def landlord(
    arena: LocalArena,
    folder: Path,
    console_url: str,
    api_key: str = API_KEY,
    auto_top_up: bool = False,
) -> Landlord:
    """A landlord over `folder`'s book, as the CLI composes it."""
    section = {"dir": folder, "low_escrow_hours": LOW_HOURS, "auto_top_up": auto_top_up}
    settings = load_settings(landlord=section)
    return build_landlord(settings, place_of(arena), ConsoleClient(api_key, console_url))


def landlord_with(arena: LocalArena, folder: Path, console: LeaseConsole) -> Landlord:
    """The same, with a Console client of the caller's (a dying one, in the crash helper)."""
    settings = load_settings(landlord={"dir": folder, "low_escrow_hours": LOW_HOURS})
    return build_landlord(settings, place_of(arena), console)


class Payer:
    """An agent's wallet paying rent with the project's own sender (sign, journal, send)."""

    def __init__(self, arena: LocalArena, folder: Path) -> None:
        info = arena.info
        assert info is not None
        self.account = Account.create()
        arena.fund(self.account.address, native_wei=10**18, stable=10**9, risk=0)
        chain = Chain(info.rpc_url)
        journal = Journal(folder / f"payer-{self.account.address}.sqlite")
        self.sender = TxSender(chain, self.account, journal, info.chain_id)
        self.token = Erc20(chain, info.stable_token)
        self.landlord = info.landlord

    @property
    def address(self) -> str:
        return str(self.account.address)

    def pay(self, periods: int = 1) -> None:
        data = self.token.transfer_data(self.landlord, RENT * periods)
        assert self.sender.send(self.token.address, data, "rent").status == 1


def add_tenant(
    arena: LocalArena, folder: Path, dseq: str, address: str, state_url: str | None = None
) -> Tenant:
    """Put a tenant starting at the chain's head in `folder`'s book, as `landlord add` does."""
    book = Book(folder / BOOK_FILE)
    try:
        return add_to_book(
            book,
            place_of(arena),
            address=address,
            dseq=dseq,
            rent_amount=Decimal(RENT) / 10**STABLE_DECIMALS,
            period_ticks=PERIOD_TICKS,
            interval_s=Decimal(INTERVAL_S),
            grace_ticks=GRACE_TICKS,
            state_url=state_url,
        )
    finally:
        book.close()


def advance(arena: LocalArena, seconds: int) -> None:
    """Move chain time on by `seconds` and mine a block at it."""
    arena.anvil.rpc("evm_increaseTime", [seconds])
    arena.anvil.rpc("evm_mine", [])


class AgentStandIn:
    """An agent's `/state` and `/series` on loopback; `alive`, `up` and `extra` (more keys of
    its `/state`, e.g. the `children` a parent funded) are knobs."""

    def __init__(self, alive: bool = True, tick: int = 42, address: str | None = None) -> None:
        self.alive, self.tick, self.up, self.address = alive, tick, True, address
        self.extra: dict[str, Any] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.answer(self)

            def log_message(self, *_: Any) -> None:
                return

        self.loopback = LoopbackServer(Handler)

    @property
    def url(self) -> str:
        return self.loopback.url

    def state(self) -> dict[str, Any]:
        cause = None if self.alive else "rent"
        return {
            "alive": self.alive,
            "death_cause": cause,
            "tick": self.tick,
            "net_worth": 12.5,
            "address": self.address,
            **self.extra,
        }

    def answer(self, req: BaseHTTPRequestHandler) -> None:
        if not self.up:
            req.send_response(503)
            req.end_headers()
            return
        body = {"/state": self.state(), "/series": {"ticks": [1, 2, 3]}}.get(req.path)
        payload = json.dumps(body).encode()
        req.send_response(200 if body is not None else 404)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)

    def close(self) -> None:
        self.loopback.close()
