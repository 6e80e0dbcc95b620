"""The loop on a real anvil arena, with the real bundled model where a decision matters."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agent.core.decider import Decider
from agent.core.testing import FakeDecider
from agent.daemon.wiring import build_agent, market_from_arena
from agent.model.deciders import LlamaDecider
from agent.runtime.loop import Agent
from agent.runtime.store import Store
from arena.local import LocalArena
from tests.arena.test_paper import _OnChain
from tests.conftest import cast, cast_balance, settings_for
from wallets.chain import Chain

RENT = 5 * 10**6


def make_agent(
    arena: LocalArena,
    tmp_path: Path,
    decider: Decider,
    *,
    stable: int = 500 * 10**6,
    paid_periods: int = 0,
    **overrides: Any,
) -> tuple[Agent, str]:
    info = arena.info
    assert info is not None
    account = Account.create()
    arena.fund(account.address, native_wei=10**19, stable=stable, risk=0)
    settings = settings_for(tmp_path, **overrides)
    store = Store(settings.data_dir / "state.sqlite")
    if paid_periods:
        store.put("paid_periods", str(paid_periods))
    agent, _chain, _sender = build_agent(settings, market_from_arena(info), account, decider, store)
    return agent, account.address


def test_real_model_ticks_leave_onchain_effects(
    arena: LocalArena, tmp_path: Path, decider: LlamaDecider
):
    """Ticks with the real model pay the landlord on-chain and every tx is really mined."""
    info = arena.info
    assert info is not None and arena.weather is not None
    agent, address = make_agent(arena, tmp_path, decider)
    records = []
    for _ in range(3):
        records.append(agent.tick())
        arena.weather.step()
    assert [r.tick for r in records if r] == [0, 1, 2]
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == RENT
    stable_now = cast_balance(info.rpc_url, info.stable_token, address)
    assert stable_now <= 500 * 10**6 - RENT
    for record in records:
        assert record is not None and record.decision.model == decider.name
        assert record.decision.raw.startswith("{") and record.decision.completion_tokens > 0
        for outcome in (record.outcome, record.rent_outcome):
            for tx_hash in outcome.tx_hashes if outcome else ():
                receipt = json.loads(cast("receipt", tx_hash, "--json", "--rpc-url", info.rpc_url))
                assert receipt["status"] == "0x1"
    first = records[0]
    assert first is not None and first.rent_outcome is not None
    assert first.rent_outcome.status == "ok"
    assert Chain(info.rpc_url).nonce(address, "latest") >= 1


def test_unparseable_model_output_becomes_hold(
    arena: LocalArena, tmp_path: Path, decider: LlamaDecider, monkeypatch: pytest.MonkeyPatch
):
    """The real model cut off mid-JSON yields hold, with the reason recorded; nothing trades."""
    monkeypatch.setattr(decider, "max_tokens", 3)
    agent, address = make_agent(arena, tmp_path, decider, paid_periods=1)
    info = arena.info
    assert info is not None
    record = agent.tick()
    assert record is not None
    assert record.decision.action == "hold" and not record.decision.valid
    assert record.decision.error is not None and "max_tokens=3" in record.decision.error
    assert record.outcome.status == "held"
    assert Chain(info.rpc_url).nonce(address, "latest") == 0


def test_policy_veto_leaves_the_chain_untouched(arena: LocalArena, tmp_path: Path):
    """A buy that would break the rent reserve is vetoed and no transaction is sent."""
    info = arena.info
    assert info is not None
    all_in = '{"action": "buy_risk", "amount_pct": 100, "reason": "all in"}'
    agent, address = make_agent(
        arena, tmp_path, FakeDecider([all_in]), stable=2 * RENT, paid_periods=1
    )
    before = cast_balance(info.rpc_url, info.stable_token, address)
    record = agent.tick()
    assert record is not None and record.veto is not None
    assert record.veto.rule == "reserve_floor" and record.outcome.status == "vetoed"
    assert cast_balance(info.rpc_url, info.stable_token, address) == before
    assert cast_balance(info.rpc_url, info.risk_token, address) == 0
    assert Chain(info.rpc_url).nonce(address, "latest") == 0


def test_agent_without_rent_money_dies_after_grace(arena: LocalArena, tmp_path: Path):
    """Too little stable: rent is missed, grace runs out, the agent dies and stops acting."""
    agent, _ = make_agent(arena, tmp_path, FakeDecider(), stable=RENT // 2, rent={"grace_ticks": 2})
    records = [agent.tick() for _ in range(3)]
    assert [r.alive for r in records if r] == [True, True, False]
    last = records[-1]
    assert last is not None and last.death_cause is not None
    assert "rent unpaid" in last.death_cause and last.fitness_delta < 0
    assert all(r and r.rent_outcome and r.rent_outcome.status == "failed" for r in records)
    assert not agent.alive and agent.tick() is None


def test_pay_rent_decision_pays_what_is_owed(arena: LocalArena, tmp_path: Path):
    """A model's pay_rent, when rent is owed, transfers exactly the rent to the landlord."""
    info = arena.info
    assert info is not None
    pay = '{"action": "pay_rent", "amount_pct": 10, "reason": "rent"}'
    agent, _ = make_agent(arena, tmp_path, FakeDecider([pay]))
    record = agent.tick()
    assert record is not None and record.action is not None
    assert record.action.kind == "pay_rent" and record.outcome.status == "ok"
    assert record.rent_outcome is None  # already paid by the decision
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == RENT
    assert agent.paid_periods == 1


def test_window_spend_survives_a_restart(arena: LocalArena, tmp_path: Path):
    """Swaps counted in the rolling window still count after the agent is rebuilt."""
    info = arena.info
    assert info is not None
    buy = '{"action": "buy_risk", "amount_pct": 50, "reason": "buy"}'
    caps = {"max_swap_stable": "10", "window_hour_stable": "15"}
    account = Account.create()
    arena.fund(account.address, native_wei=10**19, stable=500 * 10**6, risk=0)
    settings = settings_for(tmp_path, policy=caps)
    store = Store(settings.data_dir / "state.sqlite")
    store.put("paid_periods", "1")
    market = market_from_arena(info)
    first, _, _ = build_agent(settings, market, account, FakeDecider([buy]), store)
    one = first.tick()
    assert one is not None and one.action is not None and one.action.amount_in == 10 * 10**6
    store.close()
    store = Store(settings.data_dir / "state.sqlite")  # a restart: same data dir
    again, _, _ = build_agent(settings, market, account, FakeDecider([buy, buy]), store)
    two, three = again.tick(), again.tick()
    assert two is not None and two.action is not None and two.action.amount_in == 5 * 10**6
    assert three is not None and three.veto is not None and three.veto.rule == "window_cap"
    assert store.spent_since(0) == 15 * 10**6


def test_lost_data_dir_rebuilds_the_day_spend_from_the_chain(arena: LocalArena, tmp_path: Path):
    """A new data dir for a wallet that swapped today counts those swaps against the caps."""
    info = arena.info
    assert info is not None
    buy = '{"action": "buy_risk", "amount_pct": 10, "reason": "buy"}'
    sell = '{"action": "sell_risk", "amount_pct": 50, "reason": "sell"}'
    account = Account.create()
    arena.fund(account.address, native_wei=10**19, stable=500 * 10**6, risk=10 * 10**18)
    market = market_from_arena(info)
    first_settings = settings_for(tmp_path / "first")
    store = Store(first_settings.data_dir / "state.sqlite")
    store.put("paid_periods", "1")
    agent, _, _ = build_agent(first_settings, market, account, FakeDecider([buy, sell]), store)
    records = [agent.tick(), agent.tick()]
    assert all(r is not None and r.outcome.status == "ok" for r in records)
    spent = store.spent_since(0)
    sold_stable = records[0].action.amount_in if records[0] and records[0].action else 0
    received = records[1].outcome.amount_out if records[1] else 0
    # A fresh data dir (the old one is gone) for the same wallet:
    fresh_settings = settings_for(tmp_path / "second")
    fresh = Store(fresh_settings.data_dir / "state.sqlite")
    build_agent(fresh_settings, market, account, FakeDecider(), fresh)
    assert fresh.spent_since(0) == sold_stable + received
    assert spent > 0
    # Built again on the first store, nothing is counted twice.
    build_agent(first_settings, market, account, FakeDecider(), store)
    assert store.spent_since(0) == spent


def test_swap_lost_to_a_crash_before_its_record_is_still_counted(arena: LocalArena, tmp_path: Path):
    """If the process died after a swap but before recording it, restart counts it once."""
    info = arena.info
    assert info is not None
    buy = '{"action": "buy_risk", "amount_pct": 10, "reason": "buy"}'
    account = Account.create()
    arena.fund(account.address, native_wei=10**19, stable=500 * 10**6, risk=0)
    settings = settings_for(tmp_path)
    store = Store(settings.data_dir / "state.sqlite")
    store.put("paid_periods", "1")
    market = market_from_arena(info)
    agent, _, _ = build_agent(settings, market, account, FakeDecider([buy]), store)
    record = agent.tick()
    assert record is not None and record.action is not None
    with sqlite3.connect(settings.data_dir / "state.sqlite") as db:
        db.execute("DELETE FROM actions")  # as if the record never made it to disk
    assert store.spent_since(0) == 0
    build_agent(settings, market, account, FakeDecider(), store)
    assert store.spent_since(0) == record.action.amount_in


@pytest.mark.parametrize("reflex", [True, False])
def test_owed_rent_is_raised_from_risk_when_stable_is_short(
    arena: LocalArena, tmp_path: Path, reflex: bool
):
    """The model holds; rent is owed and STABLE is short. The runtime sells just enough RISK
    through the guard and pays (a `rent_sale` action, checked on-chain); switched off, the
    rent is missed and the grace period starts."""
    info = arena.info
    assert info is not None
    agent, address = make_agent(
        arena, tmp_path, FakeDecider(), stable=2 * 10**6, rent={"sell_for_rent": reflex}
    )
    arena.fund(address, native_wei=0, stable=0, risk=10 * 10**18)
    record = agent.tick()
    assert record is not None and record.decision.action == "hold"
    assert record.rent_outcome is not None
    landlord = cast_balance(info.rpc_url, info.stable_token, info.landlord)
    sales = [a for a in agent._store.actions() if a["kind"] == "rent_sale"]
    if not reflex:
        assert record.rent_outcome.status == "failed" and landlord == 0 and not sales
        return
    assert record.rent_outcome.status == "ok" and landlord == RENT
    assert [s["status"] for s in sales] == ["ok"]
    sold = 10 * 10**18 - cast_balance(info.rpc_url, info.risk_token, address)
    # The shortfall (3 STABLE) plus 10 %, at a price of 2: 1.65 RISK, not the whole bag.
    assert sold == 33 * 10**17 // 2
    assert record.alive


class MovesTheMarket(FakeDecider):
    """Answers a buy; while it "thinks", a trader pushes the pool's price up by about 3 %."""

    def __init__(self, arena: LocalArena) -> None:
        super().__init__(['{"action": "buy_risk", "amount_pct": 10, "reason": "cheap"}'])
        self.arena = arena

    def decide(self, obs: Any, recent_prices: tuple[float, ...] = ()) -> Any:
        decision = super().decide(obs, recent_prices)
        _OnChain(self.arena).swap("stable", obs.reserve_stable * 15 // 1000)
        return decision


def test_a_swap_whose_market_moved_past_its_bound_is_refused_before_any_approval(
    arena: LocalArena, tmp_path: Path
):
    """The pool moved 3 % against a buy while it was decided (the bound is 1 %): at act time
    the fresh quote is below the decided minimum, so the tick records a `market_moved` veto and
    the agent's key sends nothing — no approval, no swap (its nonce read with `cast`)."""
    info = arena.info
    assert info is not None
    agent, address = make_agent(arena, tmp_path, MovesTheMarket(arena), paid_periods=1)
    record = agent.tick()
    assert record is not None and record.decision.action == "buy_risk"
    assert record.veto is not None and record.veto.rule == "market_moved", record.outcome
    assert record.outcome.status == "vetoed" and record.outcome.tx_hashes == ()
    assert int(cast("nonce", address, "--rpc-url", info.rpc_url)) == 0
    with Store.read(tmp_path / "data") as store:
        assert store.swap_tally() == {"landed": 0, "refused": 1, "failed": 0, "failed_gas": 0}
