"""sign → journal → broadcast → reconcile, against a real anvil."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from arena.local import LocalArena
from tests.conftest import cast_balance
from wallets.chain import Chain, Receipt
from wallets.errors import FeeCeilingReached, SigningHalted, TxReverted
from wallets.journal import Journal
from wallets.tokens import Erc20
from wallets.transactions import Signer, TxSender, bumped_fees


def funded_sender(
    arena: LocalArena, tmp_path: Path, chain_type: type[Chain] = Chain, **options: Any
) -> tuple[TxSender, Chain, Journal, Signer]:
    """A fresh funded key with its own journal and sender (`options` go to TxSender)."""
    info = arena.info
    assert info is not None
    account: Signer = Account.create()
    arena.fund(account.address, native_wei=10**18, stable=10**9, risk=0)
    chain = chain_type(info.rpc_url)
    journal = Journal(tmp_path / f"journal-{account.address}.sqlite")
    return TxSender(chain, account, journal, info.chain_id, **options), chain, journal, account


def pay(sender: TxSender, chain: Chain, arena: LocalArena, amount: int) -> Receipt:
    """Send `amount` of the stable token to the landlord."""
    info = arena.info
    assert info is not None
    token = Erc20(chain, info.stable_token)
    return sender.send(token.address, token.transfer_data(info.landlord, amount), "rent")


def test_sent_transaction_is_journalled_and_mined(arena: LocalArena, tmp_path: Path):
    """A transfer is journalled with its signed bytes and settles as mined."""
    sender, chain, journal, _ = funded_sender(arena, tmp_path)
    info = arena.info
    assert info is not None
    token = Erc20(chain, info.stable_token)
    receipt = sender.send(token.address, token.transfer_data(info.landlord, 1_000), "rent")
    assert receipt.status == 1
    entries = journal.entries(sender.address)
    assert [(e.tx_hash, e.status, e.nonce) for e in entries] == [(receipt.tx_hash, "mined", 0)]
    assert len(entries[0].raw) > 100
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == 1_000


def test_reconcile_resends_the_same_bytes_after_a_crash(arena: LocalArena, tmp_path: Path):
    """A transaction journalled but never broadcast is re-sent as the same hash, once."""
    sender, chain, journal, account = funded_sender(arena, tmp_path)
    info = arena.info
    assert info is not None
    token = Erc20(chain, info.stable_token)
    # Simulate a crash between journal and broadcast: sign and journal by hand.
    tx = {
        "chainId": info.chain_id,
        "to": token.address,
        "data": token.transfer_data(info.landlord, 2_000),
        "value": 0,
        "nonce": 0,
        "gas": 100_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "type": 2,
    }
    signed = account.sign_transaction(tx)
    tx_hash = "0x" + bytes(signed.hash).hex()
    journal.record(tx_hash, 0, sender.address, "rent", signed.raw_transaction)
    restarted = TxSender(chain, account, journal, info.chain_id)
    receipts = restarted.reconcile()
    assert [r.tx_hash for r in receipts] == [tx_hash]
    assert restarted.reconcile() == []  # settled: nothing is sent twice
    assert chain.nonce(sender.address, "latest") == 1
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == 2_000


def test_foreign_nonce_halts_signing(arena: LocalArena, tmp_path: Path):
    """A transaction from the same key that the journal does not know halts signing."""
    sender, chain, _journal, account = funded_sender(arena, tmp_path)
    info = arena.info
    assert info is not None
    token = Erc20(chain, info.stable_token)
    sender.send(token.address, token.transfer_data(info.landlord, 1), "rent")
    foreign = account.sign_transaction(
        {
            "chainId": info.chain_id,
            "to": info.landlord,
            "value": 1,
            "nonce": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
    )
    chain.send_raw(foreign.raw_transaction)
    with pytest.raises(SigningHalted, match="did not sign"):
        sender.send(token.address, token.transfer_data(info.landlord, 1), "rent")
    assert sender.halted is not None


def test_doomed_transaction_is_refused_before_signing(arena: LocalArena, tmp_path: Path):
    """A transfer of more than the balance fails at estimation: clear error, nothing signed."""
    sender, chain, journal, _ = funded_sender(arena, tmp_path)
    info = arena.info
    assert info is not None
    token = Erc20(chain, info.stable_token)
    with pytest.raises(TxReverted, match="insufficient balance"):
        sender.send(token.address, token.transfer_data(info.landlord, 10**12), "rent")
    assert journal.entries(sender.address) == []


def test_reconcile_resends_what_a_rolled_back_chain_forgot(arena: LocalArena, tmp_path: Path):
    """If the chain loses a mined transaction, restart re-sends the journal's bytes, same hash."""
    sender, chain, journal, account = funded_sender(arena, tmp_path)
    info = arena.info
    assert info is not None
    token = Erc20(chain, info.stable_token)
    snapshot = arena.anvil.rpc("evm_snapshot", [])
    receipt = sender.send(token.address, token.transfer_data(info.landlord, 3_000), "rent")
    arena.anvil.rpc("evm_revert", [snapshot])
    assert chain.receipt(receipt.tx_hash) is None  # the chain forgot it
    restarted = TxSender(chain, account, journal, info.chain_id)
    assert [r.tx_hash for r in restarted.reconcile()] == [receipt.tx_hash]
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == 3_000
    assert chain.nonce(sender.address, "latest") == 1


def test_bumped_fees_raise_both_by_at_least_ten_percent():
    """Replacement fees follow geth's rule: both fees up >= 10 %, capped by the ceiling."""
    new_max, new_tip = bumped_fees(100, 10, ceiling=10**6)
    assert new_max * 100 >= 100 * 110 and new_tip * 100 >= 10 * 110
    assert bumped_fees(1, 1, ceiling=10**6) == (2, 2)  # rounding up never stalls at tiny fees
    assert bumped_fees(100, 10, ceiling=111) == (111, 12)
    with pytest.raises(FeeCeilingReached, match="ceiling"):
        bumped_fees(100, 10, ceiling=105)


class Miner:
    """Mines a block every 0.1 s with the base fee pinned (automine off)."""

    def __init__(self, arena: LocalArena, base_fee: int | None = None) -> None:
        self.arena, self.base_fee = arena, base_fee
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.1):
            if self.base_fee is not None:
                self.arena.anvil.rpc("anvil_setNextBlockBaseFeePerGas", [hex(self.base_fee)])
            self.arena.anvil.rpc("evm_mine", [])

    def __enter__(self) -> Miner:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_stuck_transaction_is_replaced_until_it_mines(arena: LocalArena, tmp_path: Path):
    """A base-fee spike strands a tx; bumped replacements get exactly one of them mined."""
    info = arena.info
    assert info is not None
    sender, chain, journal, account = funded_sender(arena, tmp_path, receipt_timeout_s=0.6)
    first_max_fee = 2 * chain.head().base_fee + 10**9
    arena.anvil.rpc("evm_setAutomine", [False])
    with Miner(arena, base_fee=first_max_fee * 3 // 2):
        receipt = pay(sender, chain, arena, 7_000)
    arena.anvil.rpc("evm_setAutomine", [True])
    entries = journal.entries(account.address)
    assert receipt.status == 1 and len(entries) >= 2
    assert {e.nonce for e in entries} == {0}
    assert [e.status for e in entries].count("mined") == 1
    assert {e.status for e in entries} == {"mined", "replaced"}
    assert chain.nonce(account.address, "latest") == 1
    assert cast_balance(info.rpc_url, info.stable_token, info.landlord) == 7_000


def test_action_waits_for_its_confirmations(arena: LocalArena, tmp_path: Path):
    """With confirmations=3, send returns only once two more blocks sit on top."""
    sender, chain, _, _ = funded_sender(arena, tmp_path, receipt_timeout_s=5.0, confirmations=3)
    with Miner(arena):
        receipt = pay(sender, chain, arena, 1)
        assert chain.head().number >= receipt.block_number + 2
