"""The landlord on a real anvil arena and the Console mock: rent read from Transfer logs keeps
a lease funded, a tenant past its grace or dead is closed once with its final state kept,
kill -9 at either side of a Console call acts exactly once, and Console errors change nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.populations.landlord_book import Book, Tenant
from agent.populations.landlord_service import BOOK_FILE
from arena.local import LocalArena
from tests.agent.populations.landlord_helpers import (
    API_KEY,
    LOW_HOURS,
    AgentStandIn,
    Payer,
    add_tenant,
    advance,
    landlord,
    place_of,
)
from tests.akash.console_mock import ConsoleMock
from tests.conftest import REPO, ForagerProcess
from wallets.chain import Chain

PERIOD_S = 1_000
GRACE_S = 500


def calls(console: ConsoleMock, what: str) -> int:
    return console.calls.count(what)


def test_a_paying_tenant_is_topped_up_once_and_stays_open(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """Rent paid on chain and a low escrow: one deposit, the lease stays open, the bid kept."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address)
    payer.pay(periods=2)
    advance(arena, PERIOD_S + 10)  # one period due, two paid
    owner = landlord(arena, tmp_path, console.url)
    (view,) = owner.run_pass()
    assert (view.paid_through, view.periods_due, view.status) == (2, 1, "active")
    assert calls(console, "POST /v1/deposit-deployment") == 1
    assert console.escrow(dseq)["funds"] == 10_000_000  # 5 USD of ACT added
    owner.run_pass()  # 16.7 h of escrow now: above the 10 h floor
    assert calls(console, "POST /v1/deposit-deployment") == 1
    assert calls(console, f"DELETE /v1/deployments/{dseq}") == 0
    tenant = owner.book.tenant(dseq)
    assert (tenant.status, tenant.bid_price, tenant.bid_denom) == ("active", "1000", "uact")


def test_a_tenant_behind_on_rent_is_left_in_grace_then_closed_with_its_state_kept(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """One period unpaid: no deposit and no close within grace; past it, closed once."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address, state_url=agent.url)
    payer.pay(periods=1)
    advance(arena, 2 * PERIOD_S + GRACE_S - 100)  # the 2nd period unpaid, still in grace
    owner = landlord(arena, tmp_path, console.url)
    (view,) = owner.run_pass()
    assert (view.paid_through, view.periods_due, view.status) == (1, 2, "active")
    assert calls(console, "POST /v1/deposit-deployment") == 0  # behind: not topped up
    advance(arena, 200)  # past grace
    (view,) = owner.run_pass()
    assert (view.status, view.fate) == ("closed", "evicted")
    assert console.deployments[dseq]["state"] == "closed"
    final = tmp_path / "final" / dseq
    assert json.loads((final / "state.json").read_text())["net_worth"] == 12.5
    assert json.loads((final / "series.json").read_text()) == {"ticks": [1, 2, 3]}
    owner.run_pass()
    assert calls(console, f"DELETE /v1/deployments/{dseq}") == 1


def test_a_dead_tenant_is_closed_once_even_if_paid_up(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """/state says dead: the death is recorded with its tick, the deployment closed once."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address, state_url=agent.url)
    payer.pay(periods=3)
    agent.alive = False
    owner = landlord(arena, tmp_path, console.url)
    owner.run_pass()
    owner.run_pass()
    tenant = owner.book.tenant(dseq)
    assert (tenant.status, tenant.fate, tenant.died_tick) == ("closed", "died", 42)
    assert calls(console, f"DELETE /v1/deployments/{dseq}") == 1
    assert tenant.closed_block is not None


def test_an_unreachable_dead_agent_is_still_closed_and_the_loss_recorded(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """Past grace with the agent's HTTP down: closed, and 'unreachable' kept as its final."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address, state_url=agent.url)
    agent.up = False
    advance(arena, PERIOD_S + GRACE_S + 100)
    owner = landlord(arena, tmp_path, console.url)
    owner.run_pass()
    tenant = owner.book.tenant(dseq)
    assert (tenant.status, tenant.fate) == ("closed", "evicted")
    assert tenant.final is not None
    assert "state: unreachable" in tenant.final


def test_a_lease_the_provider_closed_is_recorded_and_left_alone(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """Closed or overdrawn by the chain: the fate is recorded, nothing is called on it again."""
    payer = Payer(arena, tmp_path)
    closed, overdrawn = console.lease(price="1000"), console.lease(price="1000")
    add_tenant(arena, tmp_path, closed, payer.address)
    add_tenant(arena, tmp_path, overdrawn, payer.address)
    console.deployments[closed]["state"] = "closed"
    console.deployments[overdrawn]["leases"][0]["state"] = "insufficient_funds"
    console.escrow(overdrawn)["state"] = "overdrawn"
    owner = landlord(arena, tmp_path, console.url)
    owner.run_pass()
    owner.run_pass()
    fates = {t.dseq: (t.status, t.fate) for t in owner.book.tenants()}
    assert fates == {
        closed: ("provider_closed", "provider_closed"),
        overdrawn: ("overdrawn", "overdrawn"),
    }
    assert calls(console, f"GET /v1/deployments/{closed}") == 1
    assert not [c for c in console.calls if c.startswith(("DELETE", "POST /v1/deposit"))]


def test_rent_a_real_agent_paid_is_read_from_the_chain_and_its_lease_freed_when_it_stops(
    arena: LocalArena, console: ConsoleMock, forager: list[ForagerProcess], tmp_path: Path
):
    """A `forager run` (a rule, no model) pays rent; the landlord counts exactly what it paid."""
    info = arena.info
    assert info is not None
    arena_file = tmp_path / "arena.json"
    info.dump(arena_file)
    start = Chain(info.rpc_url).head().number
    rule = ("--strategy", "hold", "--interval", "0.1", "--ticks", "12")
    proc = ForagerProcess(
        tmp_path / "agent", "--arena", str(arena_file), *rule,
        env={"FORAGER_RENT__PERIOD_TICKS": "5", "FORAGER_RENT__GRACE_TICKS": "2"},
    )  # fmt: skip
    forager.append(proc)
    assert proc.wait() == 0
    address = proc.wait_event("arena_funded")["address"]
    rents = [e["amount"] for e in proc.events() if e.get("event") == "rent_paid"]
    assert len(rents) >= 2
    dseq = console.lease(price="1000")
    book = Book(tmp_path / BOOK_FILE)
    head = Chain(info.rpc_url).head(start)
    book.add(
        Tenant(dseq, address, rents[0], 5, "0.1", 2, start, head.timestamp, "http://127.0.0.1:9")
    )
    book.close()
    owner = landlord(arena, tmp_path, console.url)
    assert owner.ledger.paid(owner.book.tenant(dseq), Chain(info.rpc_url).head().number) == sum(
        rents
    )
    (view,) = owner.run_pass()
    assert view.paid_through == len(rents)
    advance(arena, 3_600)  # the agent has stopped: an hour on, it is long past its grace
    owner.run_pass()
    tenant = owner.book.tenant(dseq)
    assert (tenant.status, tenant.fate) == ("closed", "evicted")
    assert tenant.final is not None
    assert "unreachable" in tenant.final
    assert calls(console, f"DELETE /v1/deployments/{dseq}") == 1


def crash_at(
    point: str, arena: LocalArena, console: ConsoleMock, folder: Path, auto_top_up: bool = False
) -> int:
    place = place_of(arena)
    args = {
        "rpc_url": place.rpc_urls[0],
        "stable_token": place.stable_token,
        "landlord": place.landlord,
        "console_url": console.url,
        "api_key": API_KEY,
        "dir": str(folder),
        "low_hours": str(LOW_HOURS),
        "auto_top_up": auto_top_up,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.agent.populations.landlord_crash_helper",
            point,
            json.dumps(args),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode


@pytest.mark.parametrize("point", ["before_call", "after_call"])
def test_kill_9_around_a_close_then_restart_closes_exactly_once(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path, point: str
):
    """SIGKILL between the intent and the close, or after it: one close, the death kept."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address, state_url=agent.url)
    agent.alive = False
    assert crash_at(point, arena, console, tmp_path) == -signal.SIGKILL
    expected_before = 0 if point == "before_call" else 1
    assert calls(console, f"DELETE /v1/deployments/{dseq}") == expected_before
    owner = landlord(arena, tmp_path, console.url)
    owner.run_pass()
    owner.run_pass()
    assert calls(console, f"DELETE /v1/deployments/{dseq}") == 1
    tenant = owner.book.tenant(dseq)
    assert (tenant.status, tenant.fate, tenant.died_tick) == ("closed", "died", 42)
    assert owner.book.open_intents() == []


@pytest.mark.parametrize("point", ["before_call", "after_call"])
def test_kill_9_around_a_deposit_then_restart_deposits_exactly_once(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path, point: str
):
    """SIGKILL between the intent and the deposit, or after it: one deposit, none forgotten."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address)
    payer.pay(periods=1)
    assert crash_at(point, arena, console, tmp_path) == -signal.SIGKILL
    owner = landlord(arena, tmp_path, console.url)
    owner.run_pass()
    owner.run_pass()
    assert calls(console, "POST /v1/deposit-deployment") == 1
    assert console.escrow(dseq)["funds"] == 10_000_000
    assert owner.book.open_intents() == []
    (done,) = [line for line in owner.book.lines(dseq) if line.phase == "done"]
    assert done.data["recovered"] is True


def test_with_auto_top_up_the_console_funds_a_paying_tenant_and_stops_when_it_falls_behind(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """A managed wallet's auto top-up: on while paid up (no deposit of ours), off as soon as a
    period is unpaid (the Console funds it no more), the lease closed past its grace."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address, state_url=agent.url)
    payer.pay(periods=2)
    advance(arena, PERIOD_S + 10)  # one period due, two paid; the escrow is low
    owner = landlord(arena, tmp_path, console.url, auto_top_up=True)
    (view,) = owner.run_pass()
    assert (view.paid_through, view.auto_top_up, view.status) == (2, True, "active")
    assert console.settings[dseq]["autoTopUpEnabled"] is True
    assert calls(console, "POST /v1/deposit-deployment") == 0  # the Console's job now
    assert console.run_auto_top_up() == [dseq]
    owner.run_pass()  # already on: nothing set again
    assert calls(console, "POST /v2/deployment-settings") == 1
    assert not any(c.startswith("PATCH") for c in console.calls)
    advance(arena, 2 * PERIOD_S)  # three periods due, two paid: behind, within grace
    (view,) = owner.run_pass()
    assert (view.periods_due, view.auto_top_up, view.status) == (3, False, "active")
    assert console.settings[dseq]["autoTopUpEnabled"] is False
    assert console.run_auto_top_up() == []  # nobody funds a tenant that owes rent
    payer.pay(periods=1)  # it pays: on again
    (view,) = owner.run_pass()
    assert (view.paid_through, view.auto_top_up) == (3, True)
    advance(arena, PERIOD_S + GRACE_S + 10)  # it stops paying: past its grace
    (view,) = owner.run_pass()
    assert (view.status, view.fate) == ("closed", "evicted")
    assert console.deployments[dseq]["state"] == "closed"
    settings = [line for line in owner.book.lines(dseq) if line.kind == "auto_top_up"]
    assert [line.data["enabled"] for line in settings if line.phase == "done"] == [
        True,
        False,
        True,
    ]
    assert console.violations == []


@pytest.mark.parametrize("point", ["before_call", "after_call"])
def test_kill_9_around_an_auto_top_up_setting_then_restart_sets_it_once(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path, point: str
):
    """SIGKILL between the intent and the setting, or after it: the restart leaves it on, made
    once, and the intent answered."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address)
    payer.pay(periods=1)
    assert crash_at(point, arena, console, tmp_path, auto_top_up=True) == -signal.SIGKILL
    assert (dseq in console.settings) == (point == "after_call")
    owner = landlord(arena, tmp_path, console.url, auto_top_up=True)
    owner.run_pass()
    owner.run_pass()
    assert console.settings[dseq]["autoTopUpEnabled"] is True
    assert calls(console, "POST /v2/deployment-settings") == 1
    assert calls(console, "POST /v1/deposit-deployment") == 0
    assert owner.book.open_intents() == []
    (done,) = [line for line in owner.book.lines(dseq) if line.phase == "done"]
    assert done.data == {"enabled": True, "recovered": True}
    assert console.violations == []


def _failing_pass(owner: Any) -> tuple[list[Any], list[Any]]:
    before = owner.book.tenants()
    with capture_logs() as logs:
        owner.run_pass()
    assert owner.book.tenants() == before  # the book is unchanged
    failures = [e for e in logs if e["event"] == "landlord_console_failed"]
    assert failures, logs
    return failures, logs


def test_a_wrong_api_key_changes_nothing_and_says_so_without_the_key(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """401: the failure is journalled and logged as NotAuthorized; the key appears nowhere."""
    secret = "sk-wrong-key-0123456789"
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, Payer(arena, tmp_path).address)
    failures, logs = _failing_pass(landlord(arena, tmp_path, console.url, api_key=secret))
    assert failures[0]["error_type"] == "NotAuthorized"
    assert "401" in failures[0]["error"]
    assert "FORAGER_AKASH__API_KEY" in failures[0]["error"]
    book = Book(tmp_path / BOOK_FILE)
    journal = json.dumps([line.data for line in book.lines()])
    assert secret not in journal
    assert secret not in json.dumps(logs, default=str)
    assert any(line.phase == "failed" for line in book.lines(dseq))


def test_insufficient_funds_leaves_the_book_unchanged_and_the_next_pass_deposits_once(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """A refused deposit is journalled as failed; once the wallet is topped up, one deposit."""
    payer = Payer(arena, tmp_path)
    dseq = console.lease(price="1000")
    add_tenant(arena, tmp_path, dseq, payer.address)
    payer.pay(periods=1)
    console.escrow(dseq)["funds"] = 100_000_000  # plenty: the first pass records the bid only
    owner = landlord(arena, tmp_path, console.url)
    owner.run_pass()
    console.escrow(dseq)["funds"] = 1_000_000
    console.fail["deposit"] = (400, "Insufficient balance in the managed wallet")
    failures, _ = _failing_pass(owner)
    assert failures[0]["error_type"] == "InsufficientFunds"
    assert len(owner.book.open_intents()) == 1
    del console.fail["deposit"]
    owner.run_pass()
    owner.run_pass()
    assert owner.book.open_intents() == []
    assert console.escrow(dseq)["funds"] == 6_000_000
    assert len(console.escrow(dseq)["deposits"]) == 2  # the lease's first, and ours


def test_an_unreachable_console_changes_nothing_and_says_so(arena: LocalArena, tmp_path: Path):
    """No Console at the URL: reported as unreachable, the tenant untouched."""
    add_tenant(arena, tmp_path, "4242", Payer(arena, tmp_path).address)
    failures, _ = _failing_pass(landlord(arena, tmp_path, "http://127.0.0.1:9"))
    assert "unreachable" in failures[0]["error"]
