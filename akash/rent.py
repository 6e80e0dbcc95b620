"""Rent from the real price of compute (pure arithmetic, no I/O).

An agent's rent per period, in the stable token's base units:

    blocks per period = period_ticks * interval_s / block_s            (6 s blocks by default)
    lease per period  = price per block * blocks per period            (uact or uakt)
    USD per period    = lease per period / 1 000 000 * USD per ACT (or AKT)
    stable per period = USD per period * stable per USD * 10^decimals * (1 + margin), rounded up

Which price: the agent's terms are fixed at deployment, from the SDL's price cap — the most
per block the operator bids — and rendered into the SDL's env as `FORAGER_RENT__AMOUNT`. The
accepted bid is not known when the SDL is written and is at most the cap, so rent at the cap
always covers the lease; publishing the bid to the agent afterwards would need a channel the
provider cannot tamper with and a second, mutable source of the agent's terms. The landlord
records the accepted bid's price beside the terms, so the margin actually earned is visible
(`Rent.earned_margin`). Every figure is exact (`Fraction`) until the one rounding, upward, at
the end: the landlord never asks for less than the lease costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

MICRO = 1_000_000  # uact per ACT, uakt per AKT
DEFAULT_BLOCK_S = Fraction(6)
DENOMS = ("uact", "uakt")


@dataclass(frozen=True)
class Rent:
    """One rent quote with every intermediate figure, so the arithmetic can be shown."""

    price_per_block: Fraction  # in `denom`
    denom: str
    period_ticks: int
    interval_s: Fraction
    block_s: Fraction
    usd_per_token: Fraction  # USD per whole ACT (≈ 1) or AKT
    stable_per_usd: Fraction
    decimals: int
    margin: Fraction
    period_s: Fraction
    blocks_per_period: Fraction
    lease_per_period: Fraction  # in `denom`
    usd_per_period: Fraction
    cost_base: Fraction  # the lease's cost per period, in stable base units, before the margin
    amount_base: int  # the rent per period, stable base units, rounded up

    @property
    def amount(self) -> Decimal:
        """The rent in whole stable units (what `FORAGER_RENT__AMOUNT` holds)."""
        return Decimal(self.amount_base).scaleb(-self.decimals)

    def earned_margin(self, bid_per_block: Fraction | Decimal | int) -> Fraction:
        """The margin this rent earns over a lease at `bid_per_block` (same denom), e.g. 1/4."""
        bid_usd = _exact(bid_per_block) * self.blocks_per_period / MICRO * self.usd_per_token
        bid_base: Fraction = bid_usd * self.stable_per_usd * _scale(self.decimals)
        if bid_base <= 0:
            raise ValueError("a bid of 0 per block has no margin to speak of")
        return Fraction(self.amount_base) / bid_base - 1

    def lines(self) -> list[str]:
        """The arithmetic, one step a line, for the README and `forager akash status`."""
        return [
            f"period           = {self.period_ticks} ticks * {_d(self.interval_s)} s "
            f"= {_d(self.period_s)} s",
            f"blocks / period  = {_d(self.period_s)} s / {_d(self.block_s)} s "
            f"= {_d(self.blocks_per_period)}",
            f"lease / period   = {_d(self.price_per_block)} {self.denom}/block * "
            f"{_d(self.blocks_per_period)} = {_d(self.lease_per_period)} {self.denom}",
            f"USD / period     = {_d(self.lease_per_period)} / {MICRO} * "
            f"{_d(self.usd_per_token)} USD = {_d(self.usd_per_period)} USD",
            f"stable / period  = {_d(self.usd_per_period)} USD * {_d(self.stable_per_usd)} "
            f"* 10^{self.decimals} * (1 + {_d(self.margin)}) = {self.amount_base} base units "
            f"(rounded up) = {self.amount} stable",
        ]


def rent_from_price(
    price_per_block: Fraction | Decimal | int,
    *,
    period_ticks: int,
    interval_s: Fraction | Decimal | float,
    decimals: int,
    margin: Fraction | Decimal | float = Fraction(0),
    denom: str = "uact",
    block_s: Fraction | Decimal | float = DEFAULT_BLOCK_S,
    usd_per_token: Fraction | Decimal | float = Fraction(1),
    stable_per_usd: Fraction | Decimal | float = Fraction(1),
) -> Rent:
    """The rent per period for a lease at `price_per_block` (see the module docstring)."""
    price, interval, block = _exact(price_per_block), _exact(interval_s), _exact(block_s)
    usd_token, per_usd, extra = _exact(usd_per_token), _exact(stable_per_usd), _exact(margin)
    _check(denom, period_ticks, decimals, price, interval, block, usd_token, per_usd, extra)
    period_s = period_ticks * interval
    blocks = period_s / block
    lease = price * blocks
    usd = lease / MICRO * usd_token
    cost = usd * per_usd * _scale(decimals)
    amount = _ceil(cost * (1 + extra))
    return Rent(
        price_per_block=price,
        denom=denom,
        period_ticks=period_ticks,
        interval_s=interval,
        block_s=block,
        usd_per_token=usd_token,
        stable_per_usd=per_usd,
        decimals=decimals,
        margin=extra,
        period_s=period_s,
        blocks_per_period=blocks,
        lease_per_period=lease,
        usd_per_period=usd,
        cost_base=cost,
        amount_base=amount,
    )


def blocks_in(seconds: Fraction | Decimal | float, block_s: Fraction = DEFAULT_BLOCK_S) -> Fraction:
    """How many blocks pass in `seconds` (an escrow's hours of runway, in blocks)."""
    return _exact(seconds) / block_s


def _check(
    denom: str,
    period_ticks: int,
    decimals: int,
    price: Fraction,
    interval: Fraction,
    block: Fraction,
    usd_token: Fraction,
    per_usd: Fraction,
    extra: Fraction,
) -> None:
    if denom not in DENOMS:
        raise ValueError(f"denom {denom!r}: expected one of {', '.join(DENOMS)}")
    if period_ticks < 1 or decimals < 0:
        raise ValueError("period_ticks must be at least 1 and decimals at least 0")
    if price < 0 or extra < 0:
        raise ValueError("the price per block and the margin must not be negative")
    if min(interval, block, usd_token, per_usd) <= 0:
        raise ValueError("interval_s, block_s and the exchange rates must be positive")


def _exact(value: Fraction | Decimal | float | int) -> Fraction:
    # A float goes through its shortest repr, so 0.2 means one fifth, not its binary neighbour.
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _scale(decimals: int) -> int:
    return int(10**decimals)


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def _d(value: Fraction) -> str:
    """A figure for people: exact when it is, else eight significant digits."""
    if value.denominator == 1:
        return str(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return f"{exact:.8g}" if len(str(exact)) > 12 else str(exact.normalize())
