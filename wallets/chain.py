"""The chain client: one place where web3 is called and its exceptions are translated."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3Exception

from telemetry.redaction import redact_urls, secrets
from wallets.errors import (
    ChainError,
    ChainUnavailable,
    ContractMissing,
    TxNotMined,
    TxReverted,
    WrongChain,
)
from wallets.rpc import FailoverProvider


@contextmanager
def rpc_errors(what: str) -> Iterator[None]:
    """Translate web3/requests exceptions raised while doing `what` into ours; their text is
    kept without the endpoint's URL (an API key may be in it) or any registered secret."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ChainUnavailable(f"{what}: RPC unreachable: {_clean(exc)[:300]}") from exc
    except ContractLogicError as exc:
        raise TxReverted(f"{what}: reverted: {_clean(exc.message or exc)}") from exc
    except TimeExhausted as exc:
        raise TxNotMined(f"{what}: no receipt in time") from exc
    except (Web3Exception, requests.RequestException, ValueError) as exc:
        raise ChainError(f"{what}: {_clean(exc)}") from exc


def _clean(problem: object) -> str:
    return secrets.scrub(redact_urls(str(problem)))


@dataclass(frozen=True)
class Head:
    """The latest block, as far as the loop cares."""

    number: int
    timestamp: int
    base_fee: int


@dataclass(frozen=True)
class Receipt:
    """What a mined transaction did."""

    tx_hash: str
    status: int
    gas_used: int
    effective_gas_price: int
    block_number: int


class Chain:
    """A JSON-RPC endpoint, with the calls the runtime needs and nothing else."""

    def __init__(
        self, rpc_urls: str | Sequence[str], timeout_s: float = 10.0, chain_id: int | None = None
    ) -> None:
        urls = [rpc_urls] if isinstance(rpc_urls, str) else list(rpc_urls)
        self.provider = FailoverProvider(urls, chain_id, timeout_s=timeout_s)
        self.w3 = Web3(self.provider)

    @property
    def rpc_url(self) -> str:
        """The endpoint in use now."""
        return self.provider.active_url

    def chain_id(self) -> int:
        with rpc_errors("eth_chainId"):
            return int(self.w3.eth.chain_id)

    def check_chain_id(self, expected: int) -> None:
        """Raise `WrongChain` unless the endpoints serve `expected`; pin it for every switch."""
        self.provider.expected_chain_id = expected
        try:
            actual = self.chain_id()
        except ChainUnavailable:
            wrong = self.provider.excluded
            if wrong and len(wrong) == len(self.provider.urls):
                raise WrongChain(expected, -1) from None
            raise
        if actual != expected:
            raise WrongChain(expected, actual)

    def require_code(self, name: str, address: str) -> None:
        """Raise `ContractMissing` if no contract lives at `address`."""
        with rpc_errors(f"eth_getCode {name}"):
            code = self.w3.eth.get_code(Web3.to_checksum_address(address))
        if len(code) == 0:
            raise ContractMissing(name, address)

    def head(self, block_id: int | str = "latest") -> Head:
        """The latest block, or the block numbered `block_id`."""
        with rpc_errors("eth_getBlockByNumber"):
            block = self.w3.eth.get_block(block_id)  # type: ignore[arg-type]
        return _head(block)

    def read_state(
        self, owner: str, calls: Sequence[ContractFunction]
    ) -> tuple[Head, int, int, list[Any]]:
        """Head, gas price, `owner`'s native balance and `calls`' results in one round trip."""
        who = Web3.to_checksum_address(owner)
        with rpc_errors("batched state read"), self.w3.batch_requests() as batch:
            batch.add(self.w3.eth.get_block("latest"))
            batch.add(self.w3.eth.gas_price)
            batch.add(self.w3.eth.get_balance(who))
            for call in calls:
                batch.add(call)
            results: list[Any] = list(batch.execute())
        block, gas_price, native, *rest = results
        return _head(block), int(gas_price), int(native), list(rest)

    def gas_price(self) -> int:
        with rpc_errors("eth_gasPrice"):
            return int(self.w3.eth.gas_price)

    def native_balance(self, address: str) -> int:
        with rpc_errors("eth_getBalance"):
            return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def nonce_and_head(self, address: str) -> tuple[int, Head]:
        """`address`'s mined nonce and the latest block, in one round trip."""
        who = Web3.to_checksum_address(address)
        with rpc_errors("nonce and head"), self.w3.batch_requests() as batch:
            batch.add(self.w3.eth.get_transaction_count(who, "latest"))
            batch.add(self.w3.eth.get_block("latest"))
            results: list[Any] = list(batch.execute())
        nonce, block = results
        return int(nonce), _head(block)

    def nonce(self, address: str, block: str = "pending") -> int:
        with rpc_errors("eth_getTransactionCount"):
            return int(
                self.w3.eth.get_transaction_count(Web3.to_checksum_address(address), block)  # type: ignore[arg-type]
            )

    def contract(self, address: str, abi: Sequence[dict[str, Any]]) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        with rpc_errors("eth_estimateGas"):
            return int(self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]

    def send_raw(self, raw: bytes) -> str:
        """Broadcast signed bytes; return the hash the node reports."""
        with rpc_errors("eth_sendRawTransaction"):
            return "0x" + bytes(self.w3.eth.send_raw_transaction(raw)).hex()

    def transaction_known(self, tx_hash: str) -> bool:
        """True if the node has `tx_hash` in its pool or in a block."""
        found = _unless_not_found("eth_getTransactionByHash", self.w3.eth.get_transaction, tx_hash)
        return found is not None

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of `tx_hash`, or None while it is not mined."""
        fetch = self.w3.eth.get_transaction_receipt
        raw = _unless_not_found("eth_getTransactionReceipt", fetch, tx_hash)
        return None if raw is None else _receipt(tx_hash, raw)

    def wait_receipt(self, tx_hash: str, timeout_s: float) -> Receipt:
        with rpc_errors(f"waiting for {tx_hash}"):
            raw = self.w3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                timeout=timeout_s,
                poll_latency=0.05,
            )
        return _receipt(tx_hash, raw)


def _unless_not_found(what: str, fetch: Any, tx_hash: str) -> Any:
    """`fetch(tx_hash)`, or None when the node does not know the transaction."""
    try:
        with rpc_errors(what):
            return fetch(tx_hash)
    except ChainError as exc:
        if isinstance(exc.__cause__, TransactionNotFound):
            return None
        raise


def _receipt(tx_hash: str, raw: Any) -> Receipt:
    return Receipt(
        tx_hash=tx_hash,
        status=int(raw["status"]),
        gas_used=int(raw["gasUsed"]),
        effective_gas_price=int(raw.get("effectiveGasPrice", 0)),
        block_number=int(raw["blockNumber"]),
    )


def checksum(address: str) -> ChecksumAddress:
    """Validate and checksum an address; a clear error names the bad value."""
    if not Web3.is_address(address):
        raise ValueError(f"{address!r} is not an EVM address (expected 0x and 40 hex digits)")
    return Web3.to_checksum_address(address)


def calldata(hex_data: str) -> bytes:
    """Turn web3's hex-encoded calldata into bytes."""
    return bytes.fromhex(hex_data.removeprefix("0x"))


def _head(block: Any) -> Head:
    return Head(
        number=int(block["number"]),
        timestamp=int(block["timestamp"]),
        base_fee=int(block.get("baseFeePerGas", 0)),
    )
