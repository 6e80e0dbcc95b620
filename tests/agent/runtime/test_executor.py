"""Act: swaps and rent as real transactions, and what a failure leaves behind."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from agent.core.records import Action
from agent.runtime.executor import Executor
from arena.local import LocalArena
from wallets.chain import Chain, Receipt
from wallets.dex import UniswapV2
from wallets.journal import Journal, JournalEntry
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


class RecordingSender:
    """The real sender, with every destination and calldata written down."""

    def __init__(self, real: TxSender) -> None:
        self.real = real
        self.sent: list[tuple[str, bytes]] = []

    @property
    def address(self) -> str:
        return self.real.address

    def send(self, to: str, data: bytes, purpose: str, value: int = 0) -> Receipt:
        self.sent.append((to, data))
        return self.real.send(to, data, purpose, value)

    def next_nonce(self) -> int:
        return self.real.next_nonce()

    def sent_from(self, nonce: int) -> list[JournalEntry]:
        return self.real.sent_from(nonce)


SELECTORS = {
    bytes.fromhex("a9059cbb"): "transfer",
    bytes.fromhex("095ea7b3"): "approve",
    bytes.fromhex("38ed1739"): "swapExactTokensForTokens",
}


def word_address(data: bytes, index: int) -> str:
    word = data[4 + 32 * index : 4 + 32 * (index + 1)]
    return Web3.to_checksum_address(word[12:])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["swap_buy", "swap_sell", "pay_rent", "hold"]),
            st.integers(min_value=1, max_value=3 * 10**6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_money_only_goes_to_configured_addresses(
    arena: LocalArena, tmp_path: Path, steps: list[tuple[str, int]]
):
    """Whatever actions run, every tx goes to a configured contract and every payee is ours."""
    info = arena.info
    assert info is not None
    account = Account.create()
    arena.fund(account.address, native_wei=10**18, stable=100 * 10**6, risk=10**18)
    chain = Chain(info.rpc_url)
    journal = Journal(tmp_path / f"j-{account.address}.sqlite")
    recorder = RecordingSender(TxSender(chain, account, journal, info.chain_id))
    stable, risk = Erc20(chain, info.stable_token), Erc20(chain, info.risk_token)
    dex = UniswapV2(chain, info.router, info.pool)
    executor = Executor(recorder, dex, {"stable": stable, "risk": risk}, info.landlord)
    for kind, amount in steps:
        if kind == "swap_buy":
            action = Action("swap", "stable", "risk", amount, 1, 2**40)
        elif kind == "swap_sell":
            action = Action("swap", "risk", "stable", amount * 10**9, 1, 2**40)
        elif kind == "pay_rent":
            action = Action("pay_rent", amount_in=amount)
        else:
            action = Action("hold")
        executor.execute(action)
    allowed_to = {stable.address, risk.address, dex.router}
    for to, data in recorder.sent:
        assert to in allowed_to
        name = SELECTORS[data[:4]]
        if name == "transfer":
            assert word_address(data, 0) == Web3.to_checksum_address(info.landlord)
        elif name == "approve":
            assert word_address(data, 0) == dex.router
        else:
            assert to == dex.router and word_address(data, 3) == account.address
    assert stable.allowance(account.address, dex.router) == 0
    assert risk.allowance(account.address, dex.router) == 0
