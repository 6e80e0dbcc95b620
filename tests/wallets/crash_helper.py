"""Run one transfer through a real TxSender and die with SIGKILL at a chosen point.

Used by test_crash.py as a subprocess: `python -m tests.wallets.crash_helper POINT ARGS_JSON`.
The parts are the real ones; each wrapper only adds the kill at its step.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from eth_account import Account

from wallets.chain import Chain
from wallets.journal import Journal
from wallets.tokens import Erc20
from wallets.transactions import TxSender


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DyingSigner:
    def __init__(self, account: Any, point: str) -> None:
        self._account, self._point = account, point

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> Any:
        signed = self._account.sign_transaction(tx)
        if self._point == "after_sign":
            die()
        return signed


class DyingJournal(Journal):
    def __init__(self, path: Path, point: str) -> None:
        super().__init__(path)
        self._point = point

    def record(self, tx_hash: str, nonce: int, sender: str, purpose: str, raw: bytes) -> None:
        super().record(tx_hash, nonce, sender, purpose, raw)
        if self._point == "after_journal":
            die()


class DyingChain(Chain):
    def __init__(self, url: str, point: str) -> None:
        super().__init__(url)
        self._point = point

    def send_raw(self, raw: bytes) -> str:
        tx_hash = super().send_raw(raw)
        if self._point == "after_broadcast":
            die()
        return tx_hash


def main() -> None:
    point, args = sys.argv[1], json.loads(sys.argv[2])
    account = Account.from_key(args["key"])
    chain = DyingChain(args["rpc_url"], point)
    journal = DyingJournal(Path(args["journal"]), point)
    sender = TxSender(chain, DyingSigner(account, point), journal, args["chain_id"])
    sender.reconcile()
    token = Erc20(chain, args["token"])
    sender.send(token.address, token.transfer_data(args["to"], args["amount"]), "rent")
    print("survived", flush=True)


if __name__ == "__main__":
    main()
