"""The arena's contracts: deploy them, seed liquidity, name a landlord, fund agents.

Uses anvil's unlocked development accounts: #0 deploys and mints (the faucet), #1 is the
landlord, #2 is the market-weather trader.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from arena.compiler import Artefact
from arena.errors import ArenaFileError, SetupReverted
from wallets.tokens import to_base

STABLE_DECIMALS = 6
RISK_DECIMALS = 18
_MAX_UINT = 2**256 - 1


@dataclass(frozen=True)
class ArenaInfo:
    """How to reach an arena: the connection file's contents."""

    rpc_url: str
    chain_id: int
    stable_token: str
    risk_token: str
    pool: str
    router: str
    landlord: str
    faucet: str
    weather_trader: str

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ArenaInfo:
        """Read a connection file; a missing file stays `FileNotFoundError` (callers say so)."""
        text = path.read_text()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ArenaFileError(f"arena file {path} is not JSON: {exc}") from exc
        return cls.from_dict(data, f"arena file {path}")

    @classmethod
    def from_dict(cls, data: object, source: str) -> ArenaInfo:
        """The info from parsed JSON; `source` names where it came from in the error."""
        if not isinstance(data, dict):
            raise ArenaFileError(f"{source} holds no JSON object")
        missing = [f for f in cls.__dataclass_fields__ if f not in data]
        if missing:
            raise ArenaFileError(f"{source} lacks {', '.join(missing)}")
        return cls(**{f: data[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Liquidity:
    """The pool's opening depth: stable units, and the opening price (stable per risk)."""

    stable: Decimal
    price: Decimal


def _send(w3: Web3, fn: Any, sender: str) -> Any:
    tx_hash = fn.transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02)
    if receipt["status"] != 1:
        raise SetupReverted(f"arena transaction {tx_hash.hex()} reverted")
    return receipt


def _deploy(w3: Web3, artefact: Artefact, sender: str, *args: Any) -> Contract:
    factory = w3.eth.contract(abi=artefact.abi, bytecode=artefact.bytecode)
    receipt = _send(w3, factory.constructor(*args), sender)
    deployed: Contract = w3.eth.contract(address=receipt["contractAddress"], abi=artefact.abi)
    return deployed


def deploy_world(
    w3: Web3, artefacts: dict[str, Artefact], liquidity: Liquidity, rpc_url: str
) -> ArenaInfo:
    """Deploy tokens, pool and router; seed the pool; return the connection info."""
    faucet, landlord, trader = list(w3.eth.accounts)[:3]
    token = artefacts["Token"]
    stable = _deploy(w3, token, faucet, "Arena Dollar", "aUSD", STABLE_DECIMALS)
    risk = _deploy(w3, token, faucet, "Arena Risk", "RISK", RISK_DECIMALS)
    pool = _deploy(w3, artefacts["Pool"], faucet, stable.address, risk.address)
    router = _deploy(w3, artefacts["Router"], faucet, pool.address)
    _seed(w3, (stable, risk), router, liquidity, (faucet, trader))
    return ArenaInfo(
        rpc_url=rpc_url,
        chain_id=int(w3.eth.chain_id),
        stable_token=stable.address,
        risk_token=risk.address,
        pool=pool.address,
        router=router.address,
        landlord=landlord,
        faucet=faucet,
        weather_trader=trader,
    )


def _seed(
    w3: Web3,
    tokens: tuple[Contract, Contract],
    router: Contract,
    liquidity: Liquidity,
    accounts: tuple[str, str],
) -> None:
    """Mint the opening liquidity to the faucet and add it; arm the weather trader."""
    (stable, risk), (faucet, trader) = tokens, accounts
    stable_in = to_base(liquidity.stable, STABLE_DECIMALS)
    risk_in = to_base(liquidity.stable / liquidity.price, RISK_DECIMALS)
    for contract, amount in ((stable, stable_in), (risk, risk_in)):
        _send(w3, contract.functions.mint(faucet, amount), faucet)
        _send(w3, contract.functions.approve(router.address, amount), faucet)
        # The weather trader gets deep pockets in both tokens to push the price around.
        _send(w3, contract.functions.mint(trader, amount * 10), faucet)
        _send(w3, contract.functions.approve(router.address, _MAX_UINT), trader)
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + 600
    add = router.functions.addLiquidity(
        stable.address, risk.address, stable_in, risk_in, 0, 0, faucet, deadline
    )
    _send(w3, add, faucet)


def fund(
    w3: Web3,
    info: ArenaInfo,
    artefacts: dict[str, Artefact],
    recipient: str,
    *,
    native_wei: int,
    stable: int,
    risk: int,
) -> None:
    """Give `recipient` gas money and tokens from the faucet (amounts in base units)."""
    to = Web3.to_checksum_address(recipient)
    if native_wei:
        tx_hash = w3.eth.send_transaction({"from": info.faucet, "to": to, "value": native_wei})  # type: ignore[typeddict-item]
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02)
    abi = artefacts["Token"].abi
    for address, amount in ((info.stable_token, stable), (info.risk_token, risk)):
        if amount:
            token = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
            _send(w3, token.functions.mint(to, amount), info.faucet)
