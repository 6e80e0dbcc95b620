"""Act: swaps and rent as real transactions, and what a failure leaves behind."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from agent.executor import Executor
from agent.records import Action
from arena.local import LocalArena
from wallets.chain import Chain
from wallets.dex import UniswapV2
from wallets.journal import Journal
from wallets.tokens import Erc20
from wallets.transactions import TxSender


def executor_for(arena: LocalArena, tmp_path: Path) -> tuple[Executor, Erc20, str]:
    info = arena.info
    assert info is not None
    account = Account.create()
    arena.fund(account.address, native_wei=10**18, stable=100 * 10**6, risk=0)
    chain = Chain(info.rpc_url)
    sender = TxSender(chain, account, Journal(tmp_path / "j.sqlite"), info.chain_id)
    stable, risk = Erc20(chain, info.stable_token), Erc20(chain, info.risk_token)
    dex = UniswapV2(chain, info.router, info.pool)
    executor = Executor(sender, dex, {"stable": stable, "risk": risk}, info.landlord)
    return executor, stable, account.address


def test_swap_approves_exactly_and_receives_at_least_min_out(arena: LocalArena, tmp_path: Path):
    """A swap spends exactly amount_in, gets at least min_out, and leaves no allowance."""
    executor, stable, owner = executor_for(arena, tmp_path)
    info = arena.info
    assert info is not None
    action = Action("swap", "stable", "risk", amount_in=10 * 10**6, min_out=1, deadline=2**40)
    outcome = executor.execute(action)
    assert outcome.status == "ok" and len(outcome.tx_hashes) == 2
    assert outcome.amount_out > 0
    assert stable.balance_of(owner) == 90 * 10**6
    assert stable.allowance(owner, info.router) == 0


def test_failed_swap_revokes_its_approval(arena: LocalArena, tmp_path: Path):
    """A swap refused for its minimum output fails cleanly and takes its approval back."""
    executor, stable, owner = executor_for(arena, tmp_path)
    info = arena.info
    assert info is not None
    greedy = Action("swap", "stable", "risk", amount_in=10 * 10**6, min_out=10**30, deadline=2**40)
    outcome = executor.execute(greedy)
    assert outcome.status == "failed"
    assert outcome.error is not None and "INSUFFICIENT_OUTPUT_AMOUNT" in outcome.error
    assert stable.allowance(owner, info.router) == 0
    assert stable.balance_of(owner) == 100 * 10**6
    assert len(outcome.tx_hashes) == 2  # the approval and its revocation, both mined


def test_expired_deadline_is_refused(arena: LocalArena, tmp_path: Path):
    """A swap past its deadline reverts rather than executing late."""
    executor, stable, owner = executor_for(arena, tmp_path)
    stale = Action("swap", "stable", "risk", amount_in=10**6, min_out=1, deadline=1)
    outcome = executor.execute(stale)
    assert outcome.status == "failed" and "EXPIRED" in (outcome.error or "")
    assert stable.balance_of(owner) == 100 * 10**6
