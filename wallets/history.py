"""What the chain itself remembers of an agent's swaps, for when its data dir is lost.

Swapped value is read back from ERC-20 `Transfer` logs: what the agent sent to the pool, valued
in the stable token (stable sent as is; risk sent at the stable the pool paid back in the same
transaction).
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from wallets.chain import Chain, checksum, rpc_errors

TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix(
    "0x"
)


@dataclass(frozen=True)
class PastSwap:
    """One swap found on chain."""

    tx_hash: str
    timestamp: int
    value_stable: int


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + checksum(address)[2:].lower()


def first_block_since(chain: Chain, since_ts: int) -> int:
    """The first block with a timestamp at or after `since_ts` (binary search)."""
    low, high = 0, chain.head().number
    with rpc_errors("eth_getBlockByNumber"):
        while low < high:
            mid = (low + high) // 2
            if int(chain.w3.eth.get_block(mid)["timestamp"]) < since_ts:
                low = mid + 1
            else:
                high = mid
    return low


def swaps_since(
    chain: Chain, owner: str, pool: str, stable: str, risk: str, since_ts: int
) -> list[PastSwap]:
    """Swaps `owner` made through `pool` since `since_ts`, valued in stable base units."""
    start = first_block_since(chain, since_ts)
    sent = _transfers(chain, [stable, risk], start, owner, pool)
    paid_back = {h: amount for h, _, amount, _ in _transfers(chain, [stable], start, pool, owner)}
    found = []
    for tx_hash, token, amount, block in sent:
        value = amount if token == checksum(stable) else paid_back.get(tx_hash, 0)
        with rpc_errors("eth_getBlockByNumber"):
            timestamp = int(chain.w3.eth.get_block(block)["timestamp"])
        found.append(PastSwap(tx_hash, timestamp, value))
    return found


def _transfers(
    chain: Chain, tokens: list[str], start: int, sender: str, receiver: str
) -> list[tuple[str, str, int, int]]:
    query = {
        "fromBlock": start,
        "toBlock": "latest",
        "address": [checksum(t) for t in tokens],
        "topics": [TRANSFER_TOPIC, _topic(sender), _topic(receiver)],
    }
    with rpc_errors("eth_getLogs"):
        logs = chain.w3.eth.get_logs(query)  # type: ignore[arg-type]
    return [
        (
            "0x" + bytes(entry["transactionHash"]).hex().removeprefix("0x"),
            checksum(entry["address"]),
            int.from_bytes(bytes(entry["data"]), "big"),
            int(entry["blockNumber"]),
        )
        for entry in logs
    ]
