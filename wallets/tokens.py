"""ERC-20 tokens: balances, allowances, and the calldata for transfers and approvals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from web3 import Web3

from wallets.chain import Call, Chain, calldata, checksum, rpc_errors

ERC20_ABI: list[dict[str, Any]] = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "allowance",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "totalSupply",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "decimals",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "name": "approve",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]


TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix(
    "0x"
)
LOG_CHUNK_BLOCKS = 10_000  # public RPCs refuse wider eth_getLogs ranges


def to_base(amount: Decimal, decimals: int) -> int:
    """Whole token units to integer base units."""
    return int(amount * (Decimal(10) ** decimals))


class Erc20:
    """One ERC-20 token contract."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.address = checksum(address)
        self._chain = chain
        self._contract = chain.contract(self.address, ERC20_ABI)

    def transferred(self, sender: str, to: str, from_block: int, to_block: int) -> int:
        """The sum of `Transfer(sender → to)` logs in blocks `from_block..to_block` (inclusive),
        read from the chain with eth_getLogs in chunks."""
        topics: list[Any] = [TRANSFER_TOPIC, _topic(sender), _topic(to)]
        total = 0
        for start in range(from_block, to_block + 1, LOG_CHUNK_BLOCKS):
            end = min(start + LOG_CHUNK_BLOCKS - 1, to_block)
            query: Any = {
                "address": self.address,
                "fromBlock": start,
                "toBlock": end,
                "topics": topics,
            }
            with rpc_errors(f"eth_getLogs Transfer on {self.address}"):
                logs = self._chain.w3.eth.get_logs(query)
            total += sum(int.from_bytes(bytes(log["data"]), "big") for log in logs)
        return total

    def balance_of(self, owner: str) -> int:
        return int(self._chain.read(self.balance_call(owner))[0])

    def balance_call(self, owner: str) -> Call:
        """The balanceOf call, encoded (to send alone or batched with others)."""
        return Call.of(self._contract, "balanceOf", checksum(owner))

    def supply_call(self) -> Call:
        """The totalSupply call, encoded (a pair's supply is its liquidity shares)."""
        return Call.of(self._contract, "totalSupply")

    def total_supply(self) -> int:
        return int(self._chain.read(self.supply_call())[0])

    def allowance(self, owner: str, spender: str) -> int:
        call = Call.of(self._contract, "allowance", checksum(owner), checksum(spender))
        return int(self._chain.read(call)[0])

    def decimals(self) -> int:
        return int(self._chain.read(Call.of(self._contract, "decimals"))[0])

    def transfer_data(self, to: str, amount: int) -> bytes:
        return calldata(self._contract.encode_abi("transfer", args=[checksum(to), amount]))

    def approve_data(self, spender: str, amount: int) -> bytes:
        return calldata(self._contract.encode_abi("approve", args=[checksum(spender), amount]))


def _topic(address: str) -> str:
    """An address as an indexed log topic: 32 bytes, left-padded."""
    return "0x" + checksum(address)[2:].lower().rjust(64, "0")
