"""Faults on a real anvil: kill -9 at each step, lost answers, dropped and reorged txs.

After each: exactly one transaction per intent on chain, a contiguous nonce sequence, and the
spend counted once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from structlog.testing import capture_logs

from arena.local import LocalArena
from tests.conftest import REPO, cast_balance
from tests.wallets.test_transactions import Miner, funded_sender, pay
from wallets.chain import Chain, Receipt
from wallets.errors import ChainUnavailable
from wallets.journal import Journal
from wallets.tokens import Erc20
from wallets.transactions import TxSender

AMOUNT = 4_321


def crash_at(point: str, arena: LocalArena, key: str, journal: Path) -> int:
    info = arena.info
    assert info is not None
    args = {
        "key": key,
        "rpc_url": info.rpc_url,
        "chain_id": info.chain_id,
        "journal": str(journal),
        "token": info.stable_token,
        "to": info.landlord,
        "amount": AMOUNT,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.wallets.crash_helper", point, json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode


@pytest.mark.parametrize(
    ("point", "expected_txs"),
    [("after_sign", 0), ("after_journal", 1), ("after_broadcast", 1)],
)
def test_kill_9_then_restart_sends_each_intent_at_most_once(
    arena: LocalArena, tmp_path: Path, point: str, expected_txs: int
):
    """SIGKILL mid-send, restart, reconcile, send again: no duplicate, no nonce gap."""
    info = arena.info
    assert info is not None
    account = Account.create()
    arena.fund(account.address, native_wei=10**18, stable=10**9, risk=0)
    journal_path = tmp_path / "journal.sqlite"
    code = crash_at(point, arena, account.key.hex(), journal_path)
    assert code == -signal.SIGKILL
    chain = Chain(info.rpc_url)
    journal = Journal(journal_path)
    restarted = TxSender(chain, account, journal, info.chain_id)
    restarted.reconcile()
    landlord = cast_balance(info.rpc_url, info.stable_token, info.landlord)
    assert landlord == AMOUNT * expected_txs
    assert chain.nonce(account.address, "latest") == expected_txs
    # The next intent takes the next nonce: the sequence stays contiguous.
    token = Erc20(chain, info.stable_token)
    nxt = restarted.send(token.address, token.transfer_data(info.landlord, 1), "rent")
    assert nxt.status == 1
    assert chain.nonce(account.address, "latest") == expected_txs + 1
    mined = [e.nonce for e in journal.entries(account.address) if e.status == "mined"]
    assert mined == list(range(expected_txs + 1))


class LosingChain(Chain):
    """The node receives the transaction but the answer never comes back (once)."""

    lost = 0

    def send_raw(self, raw: bytes) -> str:
        super().send_raw(raw)
        if not self.lost:
            self.lost += 1
            raise ChainUnavailable("eth_sendRawTransaction: RPC unreachable (ReadTimeout)")
        return "unused"


def test_lost_broadcast_answer_is_not_a_second_transaction(arena: LocalArena, tmp_path: Path):
    """A broadcast whose response is lost is found on chain, not sent twice."""
    info = arena.info
    assert info is not None
    sender, chain, _, account = funded_sender(arena, tmp_path, chain_type=LosingChain)
    receipt = pay(sender, chain, arena, AMOUNT)
    assert receipt.status == 1 and isinstance(chain, LosingChain) and chain.lost == 1
    assert chain.nonce(account.address, "latest") == 1
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == AMOUNT


def pay_in_background(
    sender: TxSender, chain: Chain, arena: LocalArena, journal: Journal, account: Any
) -> tuple[threading.Thread, dict[str, Receipt], str]:
    """Start a payment on a thread; return it, its result box, and its first tx hash."""
    result: dict[str, Receipt] = {}
    worker = threading.Thread(target=lambda: result.update(r=pay(sender, chain, arena, AMOUNT)))
    worker.start()
    while not journal.entries(account.address):
        time.sleep(0.02)
    return worker, result, journal.entries(account.address)[0].tx_hash


def test_dropped_transaction_is_resent_with_the_same_bytes(arena: LocalArena, tmp_path: Path):
    """anvil_dropTransaction empties the pool; the journal's bytes go out again, same hash."""
    info = arena.info
    assert info is not None
    sender, chain, journal, account = funded_sender(arena, tmp_path, receipt_timeout_s=0.5)
    arena.anvil.rpc("evm_setAutomine", [False])
    worker, result, first = pay_in_background(sender, chain, arena, journal, account)
    time.sleep(0.1)
    arena.anvil.rpc("anvil_dropTransaction", [first])
    assert not chain.transaction_known(first)
    time.sleep(0.7)  # past the receipt timeout: the sender notices and re-sends
    with Miner(arena):
        worker.join(timeout=30)
    arena.anvil.rpc("evm_setAutomine", [True])
    assert result["r"].tx_hash == first
    assert [e.tx_hash for e in journal.entries(account.address)] == [first]
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == AMOUNT


def test_reorged_transaction_is_resent_before_it_counts(arena: LocalArena, tmp_path: Path):
    """anvil_reorg removes the mined tx before its confirmations; the same bytes are re-mined."""
    info = arena.info
    assert info is not None
    sender, chain, journal, account = funded_sender(
        arena, tmp_path, receipt_timeout_s=5.0, confirmations=4
    )
    arena.anvil.rpc("evm_setAutomine", [False])
    with capture_logs() as logs:
        worker, result, tx_hash = pay_in_background(sender, chain, arena, journal, account)
        arena.anvil.rpc("evm_mine", [])
        mined = chain.receipt(tx_hash)
        assert mined is not None
        time.sleep(0.3)  # the sender has seen the receipt and waits for confirmations
        arena.anvil.rpc("anvil_reorg", [1, []])  # replace the block that held it
        assert chain.receipt(tx_hash) is None
        with Miner(arena):
            worker.join(timeout=30)
    arena.anvil.rpc("evm_setAutomine", [True])
    assert "tx_reorged" in [entry["event"] for entry in logs]
    receipt = result["r"]
    assert receipt.tx_hash == tx_hash and receipt.block_number > mined.block_number
    assert chain.nonce(account.address, "latest") == 1
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == AMOUNT
