"""Providing liquidity end to end: the agent's loop adds and removes it through the router on a
real anvil; `cast` (an independent client) reads what happened on-chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from agent.core.records import Action
from agent.core.testing import FakeDecider
from agent.daemon.state import from_record
from arena.local import LocalArena
from tests.agent.runtime.test_executor import executor_for
from tests.agent.runtime.test_loop import make_agent
from tests.conftest import cast, cast_balance
from wallets.chain import Chain
from wallets.dex import UniswapV2
from wallets.tokens import Erc20


def _answer(action: str, pct: int) -> str:
    return json.dumps({"action": action, "amount_pct": pct, "reason": "test"})


def _cast_uint(rpc_url: str, contract: str, signature: str, *args: str) -> list[int]:
    out = cast("call", contract, signature, *args, "--rpc-url", rpc_url)
    return [int(line.split()[0]) for line in out.splitlines()]


def test_the_loop_adds_and_removes_liquidity_on_chain(arena: LocalArena, tmp_path: Path):
    """buy RISK, add liquidity, remove it: each step's effect read back with cast; the tick
    record and the stored /state values count the pool position in the net worth."""
    info = arena.info
    assert info is not None and arena.weather is not None
    answers = [
        _answer("buy_risk", 50),
        _answer("add_liquidity", 100),
        _answer("hold", 10),
        _answer("remove_liquidity", 100),
    ]
    agent, address = make_agent(arena, tmp_path, FakeDecider(answers), paid_periods=10)
    rpc = info.rpc_url
    supply_before = _cast_uint(rpc, info.pool, "totalSupply()(uint256)")[0]

    bought = agent.tick()
    assert bought is not None and bought.outcome.status == "ok"
    risk_held = cast_balance(rpc, info.risk_token, address)
    assert risk_held > 0

    added = agent.tick()
    assert added is not None and added.action is not None
    assert added.action.kind == "add_liquidity" and added.outcome.status == "ok"
    shares = cast_balance(rpc, info.pool, address)
    supply = _cast_uint(rpc, info.pool, "totalSupply()(uint256)")[0]
    assert shares == added.outcome.amount_out > 0 and supply == supply_before + shares
    assert added.balances_after.lp == shares
    reserve_stable, reserve_risk = _cast_uint(
        rpc, info.pool, "getReserves()(uint256,uint256,uint256)"
    )[:2]
    # The deposit went in at the pool's ratio, both halves from the wallet, nothing approved left.
    assert cast_balance(rpc, info.risk_token, address) < risk_held
    for token in (info.stable_token, info.risk_token):
        left = _cast_uint(rpc, token, "allowance(address,address)(uint256)", address, info.router)
        assert left == [0]
    # The position is valued as what burning it returns now, and counted in the net worth.
    lp_stable, lp_risk = shares * reserve_stable // supply, shares * reserve_risk // supply
    assert added.lp_worth_after == lp_stable + lp_risk * reserve_stable // reserve_risk
    wallet = added.balances_after
    assert added.net_worth_after == (
        wallet.stable + lp_stable + (wallet.risk + lp_risk) * reserve_stable // reserve_risk
    )
    assert added.net_worth_after == pytest.approx(bought.net_worth_after, rel=0.01)
    shown = from_record(added)["balances"]  # what /state serves for this tick
    assert (
        shown["lp_shares"] == shares / 10**18 and shown["lp_value"] == added.lp_worth_after / 10**6
    )

    for _ in range(5):  # the weather trades through the pool: the position earns its fee share
        arena.weather.step()
    agent.tick()
    removed = agent.tick()
    assert removed is not None and removed.action is not None
    assert removed.action.kind == "remove_liquidity" and removed.outcome.status == "ok"
    assert cast_balance(rpc, info.pool, address) == 0
    assert _cast_uint(rpc, info.pool, "totalSupply()(uint256)")[0] == supply_before
    assert removed.balances_after.lp == 0 and removed.lp_worth_after == 0
    assert removed.outcome.amount_out > 0  # stable back in the wallet
    stored = agent._store.records(limit=5)
    assert [r["action"]["kind"] for r in reversed(stored) if r["action"]] == [
        "swap",
        "add_liquidity",
        "hold",
        "remove_liquidity",
    ]


def test_liquidity_earns_the_fee_on_trades_through_the_pool(arena: LocalArena, tmp_path: Path):
    """With the price back where it started, a position is worth more than was put in: the
    market's trades paid the 0.3 % fee into the pool."""
    executor, stable, owner = executor_for(arena, tmp_path)
    info = arena.info
    assert info is not None and arena.weather is not None
    arena.fund(owner, native_wei=0, stable=0, risk=50 * 10**18)
    chain = Chain(info.rpc_url)
    dex = UniswapV2(chain, info.router, info.pool)
    rs, rr = arena.weather.reserves()
    risk = 40 * 10**6 * rr // rs
    add = Action("add_liquidity", amount_in=40 * 10**6, amount_risk=risk, deadline=2**40)
    assert executor.execute(add).status == "ok"
    shares = dex.shares.balance_of(owner)
    start = arena.price()
    # Round trips by the weather's trader: the price ends near where it began, the fees stay.
    _push_and_return(arena, info.weather_trader)
    assert arena.price() == pytest.approx(start, rel=0.01)
    rs, rr = arena.weather.reserves()
    supply = dex.shares.total_supply()
    worth_now = shares * rs // supply + (shares * rr // supply) * rs // rr
    assert worth_now > 2 * 40 * 10**6  # deposited 40 stable and 40 stable of RISK
    remove = Action("remove_liquidity", amount_in=shares, deadline=2**40)
    before = stable.balance_of(owner)
    outcome = executor.execute(remove)
    assert outcome.status == "ok" and outcome.amount_out == stable.balance_of(owner) - before
    assert cast_balance(info.rpc_url, info.pool, owner) == 0


def _push_and_return(arena: LocalArena, trader: str) -> None:
    """Sell stable into the pool, then sell the RISK it bought back: a round trip of fees."""
    info = arena.info
    assert info is not None and arena.w3 is not None
    router = arena.w3.eth.contract(
        address=Web3.to_checksum_address(info.router), abi=arena.artefacts["Router"].abi
    )
    risk = Erc20(Chain(info.rpc_url), info.risk_token)
    for _ in range(5):
        before = risk.balance_of(trader)
        fn = router.functions.swapExactTokensForTokens(
            5_000 * 10**6, 0, [info.stable_token, info.risk_token], trader, 2**40
        )
        arena.w3.eth.wait_for_transaction_receipt(fn.transact({"from": trader}))
        got = risk.balance_of(trader) - before
        back = router.functions.swapExactTokensForTokens(
            got, 0, [info.risk_token, info.stable_token], trader, 2**40
        )
        arena.w3.eth.wait_for_transaction_receipt(back.transact({"from": trader}))


def test_a_failed_deposit_takes_both_approvals_back(arena: LocalArena, tmp_path: Path):
    """A deposit refused for its minimums fails cleanly: no shares, no allowance left."""
    executor, stable, owner = executor_for(arena, tmp_path)
    info = arena.info
    assert info is not None
    arena.fund(owner, native_wei=0, stable=0, risk=50 * 10**18)
    greedy = Action(
        "add_liquidity",
        amount_in=10 * 10**6,
        amount_risk=10**18,
        min_out=10 * 10**6,
        min_out_risk=10**30,
        deadline=2**40,
    )
    outcome = executor.execute(greedy)
    assert outcome.status == "failed" and outcome.error is not None
    assert "INSUFFICIENT" in outcome.error
    assert cast_balance(info.rpc_url, info.pool, owner) == 0
    assert stable.balance_of(owner) == 100 * 10**6
    for token in (info.stable_token, info.risk_token):
        left = _cast_uint(
            info.rpc_url, token, "allowance(address,address)(uint256)", owner, info.router
        )
        assert left == [0]
