"""A Uniswap-V2-style DEX: the pool's arithmetic, pair reserves, router quotes, calldata.

The arithmetic is the one copy of what `Pool.vy` and `Router.vy` compute, in the same integer
base units: `amount_out` (the constant-product swap after the fee), `deposit_amounts` (a deposit
taken at the pool's ratio), `shares_minted` and `shares_value` (the pair is its own ERC-20 of
pool shares). The agent's policy uses it to bound a swap's minimum output independently of the
router it is sent to; the paper arena (`arena.paper`) uses it to follow the chain to the unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isqrt
from typing import Any

from wallets.chain import Call, Chain, calldata, checksum, rpc_errors
from wallets.tokens import Erc20

# The pool fee, 0.3 %, written as the contracts write it (Router.vy: amountIn * 997 over
# reserveIn * 1000): the part of every input that reaches the curve. Pool.vy keeps its own
# copy (a contract cannot import Python); tests prove the two agree to the base unit.
FEE_NUMERATOR, FEE_DENOMINATOR = 997, 1000
BPS = 10_000  # basis points in a whole
FEE_BPS = BPS - BPS * FEE_NUMERATOR // FEE_DENOMINATOR  # the same fee in basis points: 30

ROUTER_ABI: list[dict[str, Any]] = [
    {
        "name": "getAmountsOut",
        "type": "function",
        "stateMutability": "view",
        "inputs": [
            {"name": "amountIn", "type": "uint256"},
            {"name": "path", "type": "address[]"},
        ],
        "outputs": [{"name": "amounts", "type": "uint256[]"}],
    },
    {
        "name": "swapExactTokensForTokens",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "amountIn", "type": "uint256"},
            {"name": "amountOutMin", "type": "uint256"},
            {"name": "path", "type": "address[]"},
            {"name": "to", "type": "address"},
            {"name": "deadline", "type": "uint256"},
        ],
        "outputs": [{"name": "amounts", "type": "uint256[]"}],
    },
]


def _uints(*names: str) -> list[dict[str, str]]:
    return [{"name": name, "type": "uint256"} for name in names]


_PAIR = [{"name": "tokenA", "type": "address"}, {"name": "tokenB", "type": "address"}]
# Both liquidity functions end alike: the least of each token, the recipient, the deadline.
_SETTLE = [*_uints("amountAMin", "amountBMin"), {"name": "to", "type": "address"}]
ROUTER_ABI += [
    {
        "name": name,
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [*_PAIR, *amounts, *_SETTLE, *_uints("deadline")],
        "outputs": outputs,
    }
    for name, amounts, outputs in (
        (
            "addLiquidity",
            _uints("amountADesired", "amountBDesired"),
            _uints("amountA", "amountB", "liquidity"),
        ),
        ("removeLiquidity", _uints("liquidity"), _uints("amountA", "amountB")),
    )
]

PAIR_ABI: list[dict[str, Any]] = [
    {
        "name": "getReserves",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "reserve0", "type": "uint112"},
            {"name": "reserve1", "type": "uint112"},
            {"name": "blockTimestampLast", "type": "uint32"},
        ],
    },
    {
        "name": "token0",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address"}],
    },
]


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Output of an exact-input constant-product swap after the pool fee (Router.vy's rule)."""
    if amount_in <= 0 or reserve_in <= 0 or reserve_out <= 0:
        return 0
    with_fee = amount_in * FEE_NUMERATOR
    return with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + with_fee)


def gross_of_fee(net: int) -> int:
    """What to pay in so that about `net` of it is left after the pool fee (rounded down)."""
    return net * FEE_DENOMINATOR // FEE_NUMERATOR


def paired_amount(amount_a: int, reserve_a: int, reserve_b: int) -> int:
    """How much of B goes with `amount_a` of A to add liquidity at the pool's ratio."""
    return amount_a * reserve_b // reserve_a if reserve_a > 0 else 0


def deposit_amounts(
    desired_a: int, desired_b: int, reserve_a: int, reserve_b: int
) -> tuple[int, int]:
    """(A, B) that addLiquidity takes of at most (`desired_a`, `desired_b`): the pool's ratio."""
    if reserve_a == 0 and reserve_b == 0:
        return desired_a, desired_b  # the first deposit sets the ratio
    optimal_b = paired_amount(desired_a, reserve_a, reserve_b)
    if optimal_b <= desired_b:
        return desired_a, optimal_b
    return paired_amount(desired_b, reserve_b, reserve_a), desired_b


def shares_minted(amount_a: int, amount_b: int, reserve_a: int, reserve_b: int, supply: int) -> int:
    """Pool shares a deposit mints (the pair's own rule: the geometric mean for the first
    deposit, then the smaller of the two ratios)."""
    if supply == 0:
        return isqrt(amount_a * amount_b)
    if reserve_a == 0 or reserve_b == 0:
        return 0
    return min(amount_a * supply // reserve_a, amount_b * supply // reserve_b)


def shares_value(shares: int, reserve_a: int, reserve_b: int, supply: int) -> tuple[int, int]:
    """(A, B) that burning `shares` returns now."""
    if supply <= 0 or shares <= 0:
        return 0, 0
    return shares * reserve_a // supply, shares * reserve_b // supply


def min_out(expected: int, slippage_bps: int) -> int:
    """The least output accepted when `expected` may slip by `slippage_bps`."""
    return expected * (BPS - slippage_bps) // BPS


@dataclass(frozen=True)
class Reserves:
    """Pool reserves keyed by token address (checksummed)."""

    by_token: dict[str, int]

    def of(self, token: str) -> int:
        return self.by_token[checksum(token)]


class UniswapV2:
    """A router and the one pair the agent trades."""

    def __init__(self, chain: Chain, router: str, pair: str) -> None:
        self.router = checksum(router)
        self.pair = checksum(pair)
        self._router = chain.contract(self.router, ROUTER_ABI)
        self._pair = chain.contract(self.pair, PAIR_ABI)
        self.shares = Erc20(chain, self.pair)  # the pair is its own liquidity token
        self._chain = chain
        self._token0: str | None = None

    def reserves(self, token_a: str, token_b: str) -> Reserves:
        """Current reserves of the pair, by token."""
        return self.decode_reserves(self._chain.read(self.reserves_call()), token_a, token_b)

    def reserves_call(self) -> Call:
        """The getReserves call, encoded (to send alone or batched with others)."""
        return Call.of(self._pair, "getReserves")

    def decode_reserves(self, raw: Sequence[int], token_a: str, token_b: str) -> Reserves:
        if self._token0 is None:
            self._token0 = checksum(self._chain.read(Call.of(self._pair, "token0"))[0])
        a, b = checksum(token_a), checksum(token_b)
        other = b if self._token0 == a else a
        return Reserves({self._token0: int(raw[0]), other: int(raw[1])})

    def quote(self, amount_in: int, sell: str, buy: str) -> int:
        """The router's own quote for an exact-input swap."""
        with rpc_errors(f"getAmountsOut on {self.router}"):
            amounts = self._router.functions.getAmountsOut(
                amount_in, [checksum(sell), checksum(buy)]
            ).call()
        return int(amounts[-1])

    def swap_data(
        self, amount_in: int, minimum_out: int, sell: str, buy: str, to: str, deadline: int
    ) -> bytes:
        return calldata(
            self._router.encode_abi(
                "swapExactTokensForTokens",
                args=[
                    amount_in,
                    minimum_out,
                    [checksum(sell), checksum(buy)],
                    checksum(to),
                    deadline,
                ],
            )
        )

    def add_liquidity_data(
        self,
        token_a: str,
        token_b: str,
        amounts: tuple[int, int],
        minimums: tuple[int, int],
        to: str,
        deadline: int,
    ) -> bytes:
        """addLiquidity: deposit up to `amounts` (A, B) at the pool's ratio, at least `minimums`."""
        args = [checksum(token_a), checksum(token_b), *amounts, *minimums, checksum(to), deadline]
        return calldata(self._router.encode_abi("addLiquidity", args=args))

    def remove_liquidity_data(
        self,
        token_a: str,
        token_b: str,
        shares: int,
        minimums: tuple[int, int],
        to: str,
        deadline: int,
    ) -> bytes:
        """removeLiquidity: burn `shares` of the pair for at least `minimums` (A, B)."""
        args = [checksum(token_a), checksum(token_b), shares, *minimums, checksum(to), deadline]
        return calldata(self._router.encode_abi("removeLiquidity", args=args))
