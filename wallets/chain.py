"""The chain client: one place where web3 is called and its exceptions are translated.

Reads that an agent makes every tick (its balances, the pool's reserves) are `Call`s: encoded
once, sent as raw JSON-RPC through the same provider (failover, chain-id checks, retries), and
decoded with `eth_abi`. web3's contract machinery (argument binding, validators, formatter
middleware) cost about 85 % of a tick's state read in CPU, for the same bytes on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.types import RPCEndpoint

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


# JSON-RPC's error code for an execution that reverted (EIP-1474; geth, anvil and others)
_REVERTED = 3


@dataclass(frozen=True)
class Call:
    """A read-only contract call, encoded once: the contract, the calldata, the ABI types it
    returns, and what it is (for errors)."""

    to: ChecksumAddress
    data: bytes
    returns: tuple[str, ...]
    what: str

    @classmethod
    def of(cls, contract: Contract, function: str, *args: Any) -> Call:
        """`function(*args)` on `contract`, by its ABI."""
        entries: list[Any] = list(contract.abi)
        abi = next(e for e in entries if e.get("type") == "function" and e["name"] == function)
        returns = tuple(str(o["type"]) for o in abi.get("outputs", ()))
        data = calldata(contract.encode_abi(function, args=list(args)))
        return cls(contract.address, data, returns, f"{function} on {contract.address}")

    def request(self) -> tuple[RPCEndpoint, list[Any]]:
        """The eth_call request, at the latest block."""
        return RPCEndpoint("eth_call"), [{"to": self.to, "data": "0x" + self.data.hex()}, "latest"]

    def decode(self, result: object) -> tuple[Any, ...]:
        """The call's return values from the node's hex `result`."""
        try:
            raw = bytes.fromhex(str(result).removeprefix("0x"))
            return tuple(decode(list(self.returns), raw))
        except (ValueError, DecodingError) as exc:
            shown = str(result)[:80]
            raise ChainError(
                f"{self.what}: returned {shown!r}, not ({', '.join(self.returns)}): {exc}"
            ) from exc


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
        tag = hex(block_id) if isinstance(block_id, int) else block_id
        return _raw_head(self._request("eth_getBlockByNumber", [tag, False]))

    def _request(self, method: str, params: list[Any], what: str | None = None) -> Any:
        """One raw JSON-RPC request's result (web3's formatters skipped: the few fields read
        are decoded here)."""
        with rpc_errors(what or method):
            reply = self.provider.make_request(RPCEndpoint(method), params)
        return _results([reply], [what or method])[0]

    def read_state(
        self, owner: str, calls: Sequence[Call]
    ) -> tuple[Head, int, int, list[tuple[Any, ...]]]:
        """Head, gas price, `owner`'s native balance and `calls`' results in one round trip."""
        who = Web3.to_checksum_address(owner)
        batch = [
            (RPCEndpoint("eth_getBlockByNumber"), ["latest", False]),
            (RPCEndpoint("eth_gasPrice"), []),
            (RPCEndpoint("eth_getBalance"), [who, "latest"]),
            *(call.request() for call in calls),
        ]
        with rpc_errors("batched state read"):
            replies = self.provider.make_batch_request(batch)
        names = ["eth_getBlockByNumber", "eth_gasPrice", "eth_getBalance"]
        block, gas_price, native, *rest = _results(replies, [*names, *(c.what for c in calls)])
        decoded = [call.decode(result) for call, result in zip(calls, rest, strict=True)]
        return _raw_head(block), _quantity(gas_price), _quantity(native), decoded

    def read(self, call: Call) -> tuple[Any, ...]:
        """One call's return values, at the latest block."""
        method, params = call.request()
        with rpc_errors(call.what):
            reply = self.provider.make_request(method, params)
        (result,) = _results([reply], [call.what])
        return call.decode(result)

    def gas_price(self) -> int:
        return _quantity(self._request("eth_gasPrice", []))

    def native_balance(self, address: str) -> int:
        who = Web3.to_checksum_address(address)
        return _quantity(self._request("eth_getBalance", [who, "latest"]))

    def nonce_and_head(self, address: str) -> tuple[int, Head]:
        """`address`'s mined nonce and the latest block, in one round trip."""
        who = Web3.to_checksum_address(address)
        batch = [
            (RPCEndpoint("eth_getTransactionCount"), [who, "latest"]),
            (RPCEndpoint("eth_getBlockByNumber"), ["latest", False]),
        ]
        with rpc_errors("nonce and head"):
            replies = self.provider.make_batch_request(batch)
        nonce, block = _results(replies, ["eth_getTransactionCount", "eth_getBlockByNumber"])
        return _quantity(nonce), _raw_head(block)

    def nonce(self, address: str, block: str = "pending") -> int:
        who = Web3.to_checksum_address(address)
        return _quantity(self._request("eth_getTransactionCount", [who, block]))

    def contract(self, address: str, abi: Sequence[dict[str, Any]]) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        return _quantity(self._request("eth_estimateGas", [_rpc_transaction(tx)]))

    def send_raw(self, raw: bytes) -> str:
        """Broadcast signed bytes; return the hash the node reports."""
        tx_hash = self._request("eth_sendRawTransaction", ["0x" + raw.hex()])
        return "0x" + str(tx_hash).removeprefix("0x").lower()

    def transaction_known(self, tx_hash: str) -> bool:
        """True if the node has `tx_hash` in its pool or in a block."""
        return self._request("eth_getTransactionByHash", [tx_hash]) is not None

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of `tx_hash`, or None while it is not mined."""
        raw = self._request("eth_getTransactionReceipt", [tx_hash])
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise ChainError(f"eth_getTransactionReceipt: not a receipt: {str(raw)[:80]!r}")
        return Receipt(
            tx_hash=tx_hash,
            status=_quantity(raw.get("status")),
            gas_used=_quantity(raw.get("gasUsed")),
            effective_gas_price=_quantity(raw.get("effectiveGasPrice", "0x0")),
            block_number=_quantity(raw.get("blockNumber")),
        )


def _results(replies: object, whats: Sequence[str]) -> list[Any]:
    """The `result` of each raw JSON-RPC reply, in order; an error names the request."""
    if isinstance(replies, dict):  # a node that refuses a whole batch answers with one error
        raise ChainError(f"batch of {len(whats)} requests: {_error_text(replies)}")
    if not isinstance(replies, list) or len(replies) != len(whats):
        raise ChainError(f"expected {len(whats)} JSON-RPC replies, got {str(replies)[:120]!r}")
    results = []
    for what, reply in zip(whats, replies, strict=True):
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise ChainError(f"{what}: not a JSON-RPC reply: {str(reply)[:120]!r}")
        error = reply.get("error")
        if error is not None:
            text = _error_text(reply)
            if isinstance(error, dict) and error.get("code") == _REVERTED:
                raise TxReverted(f"{what}: reverted: {text}")
            raise ChainError(f"{what}: {text}")
        results.append(reply["result"])
    return results


def _error_text(reply: dict[str, Any]) -> str:
    error = reply.get("error")
    message = error.get("message", error) if isinstance(error, dict) else error
    return _clean(message)[:300]


def _rpc_transaction(tx: dict[str, Any]) -> dict[str, Any]:
    """A transaction as JSON-RPC writes one: quantities and bytes in hex."""
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if isinstance(value, bool) or not isinstance(value, int | bytes | str):
            raise ChainError(f"transaction field {key!r}: cannot send {type(value).__name__}")
        if isinstance(value, bytes):
            out[key] = "0x" + value.hex()
        elif isinstance(value, int):
            out[key] = hex(value)
        else:
            out[key] = value
    return out


def _quantity(value: object) -> int:
    """A JSON-RPC quantity ("0x..." hex) as an int."""
    try:
        return int(str(value), 16)
    except ValueError:
        raise ChainError(f"expected a hex quantity, got {str(value)[:80]!r}") from None


def _raw_head(block: object) -> Head:
    """The head from a raw eth_getBlockByNumber result (null for a block not there)."""
    if not isinstance(block, dict):
        raise ChainError(f"eth_getBlockByNumber: expected a block, got {str(block)[:80]!r}")
    return Head(
        number=_quantity(block.get("number")),
        timestamp=_quantity(block.get("timestamp")),
        base_fee=_quantity(block.get("baseFeePerGas", "0x0")),
    )


def checksum(address: str) -> ChecksumAddress:
    """Validate and checksum an address; a clear error names the bad value."""
    if not Web3.is_address(address):
        raise ValueError(f"{address!r} is not an EVM address (expected 0x and 40 hex digits)")
    return Web3.to_checksum_address(address)


def calldata(hex_data: str) -> bytes:
    """Turn web3's hex-encoded calldata into bytes."""
    return bytes.fromhex(hex_data.removeprefix("0x"))
