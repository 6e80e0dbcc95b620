"""The guard: a deterministic, default-deny policy between the model and the wallet.

The model proposes; only this module builds an `Action`. Every amount is computed here from
the observation, in integer base units; caps clamp, and anything unsafe is vetoed with the
rule that refused it. Pure functions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from agent.core.records import Action, Decision, Observation, Token, Veto
from wallets.dex import FEE_BPS, amount_out, min_out, paired_amount, shares_value

_BPS = 10_000
# Actions whose terms depend on the pool's price: refused when it is far from the agent's own
# recent prices (a pool pushed there is one to stay away from).
_RENT_SALE_MARGIN_PCT = 110  # a sale to pay owed rent may raise the shortfall plus 10 %
_PRICED = frozenset({"buy_risk", "sell_risk", "add_liquidity", "remove_liquidity"})


@dataclass(frozen=True)
class Limits:
    """The policy's bounds, in base units where they are amounts."""

    max_swap_pct: int
    max_swap_stable: int
    reserve_stable: int
    max_slippage_bps: int
    deadline_s: int
    window_hour_stable: int = 2**255
    window_day_stable: int = 2**255
    max_deviation_bps: int = 500  # from the agent's own recent price history
    min_native: int = 10**15  # gas money below which no transaction is attempted


@dataclass(frozen=True)
class Spent:
    """Stable value already swapped in the rolling windows (from the durable store)."""

    hour: int = 0
    day: int = 0


def guard(
    decision: Decision,
    obs: Observation,
    limits: Limits,
    spent: Spent | None = None,
    reference_price: float | None = None,
) -> Action | Veto:
    """Turn a decision into a bounded Action, or refuse it.

    `reference_price` is what the agent itself saw recently (e.g. the median of its last
    observations); a pool priced too far from it is refused, and the minimum output is the
    stricter of the pool-based and the reference-based bounds.
    """
    if decision.action == "hold":
        return Action(kind="hold")
    if obs.balances.native < limits.min_native:
        return Veto(
            "gas_floor", f"native balance {obs.balances.native} wei is below {limits.min_native}"
        )
    if decision.action == "pay_rent":
        return _pay_rent(obs)
    deviation = _deviation_veto(decision.action, obs, limits, reference_price)
    if deviation is not None:
        return deviation
    return _trade(decision, obs, limits, spent or Spent(), reference_price)


def _deviation_veto(
    action: str, obs: Observation, limits: Limits, reference_price: float | None
) -> Veto | None:
    """A priced action is refused when the pool is far from the agent's own recent prices."""
    if action not in _PRICED or not reference_price:
        return None
    deviation_bps = int(abs(obs.price - reference_price) / reference_price * _BPS)
    if deviation_bps <= limits.max_deviation_bps:
        return None
    return Veto(
        "price_deviation",
        f"pool price {obs.price:.6f} is {deviation_bps} bps from the recent "
        f"reference {reference_price:.6f} (limit {limits.max_deviation_bps})",
    )


def reprice(
    decision: Decision,
    decided: Action,
    now: Observation,
    limits: Limits,
    spent: Spent | None = None,
    reference_price: float | None = None,
) -> Action | Veto:
    """The action the guard built at decision time, priced again on the pool as it is now.

    The pool moves while the model thinks, so a minimum output computed on the reserves it
    saw can be stale by the time the transaction is signed. Just before acting, a priced
    action is checked again on fresh reserves: the deviation from the agent's own prices, the
    price impact, and — for a swap — the quote now against the minimum allowed when decided.
    Past any bound it is refused (`market_moved`) before an approval is sent; otherwise a swap
    keeps its size and its minimum output becomes the stricter of what was allowed when decided
    and what the rules give now, and a deposit or a withdrawal is sized again at the pool's
    current ratio.
    """
    if decided.kind not in ("swap", "add_liquidity", "remove_liquidity"):
        return decided
    if decided.kind != "swap":
        again = guard(decision, now, limits, spent, reference_price)
        return _moved(again) if isinstance(again, Veto) else again
    assert decided.sell is not None, "a swap names what it sells"
    deviation = _deviation_veto(decision.action, now, limits, reference_price)
    if deviation is not None:
        return _moved(deviation)
    reserve_in, reserve_out = _reserves(now, decided.sell)
    quote = amount_out(decided.amount_in, reserve_in, reserve_out)
    if quote < decided.min_out:
        return Veto(
            "market_moved",
            f"selling {decided.amount_in} {decided.sell} now returns {quote}, below the "
            f"{decided.min_out} allowed when decided",
        )
    floor = _swap_floor(now, limits, decided.sell, decided.amount_in, reference_price)
    if isinstance(floor, Veto):
        return _moved(floor)
    return dataclasses.replace(decided, min_out=max(floor, decided.min_out))


def _moved(veto: Veto) -> Veto:
    return Veto("market_moved", f"at act time, {veto.rule}: {veto.detail}")


def _trade(
    decision: Decision,
    obs: Observation,
    limits: Limits,
    spent: Spent,
    reference_price: float | None,
) -> Action | Veto:
    pct = decision.amount_pct
    if decision.action == "buy_risk":
        return _swap(obs, limits, spent, "stable", "risk", pct, reference_price)
    if decision.action == "sell_risk":
        return _swap(obs, limits, spent, "risk", "stable", pct, reference_price)
    if decision.action == "add_liquidity":
        return _add_liquidity(obs, limits, spent, pct)
    if decision.action == "remove_liquidity":
        return _remove_liquidity(obs, limits, pct)
    return Veto("unknown_action", f"action {decision.action!r} is not allowed")


def rent_sale(
    obs: Observation, limits: Limits, spent: Spent, reference_price: float | None = None
) -> Action | Veto:
    """The sale of RISK that raises owed rent the wallet's STABLE cannot cover: the shortfall
    plus a margin, no more, with every other rule of a swap (floors, impact, minimum out)."""
    shortfall = obs.rent.amount_due - obs.balances.stable
    if shortfall <= 0:
        return Veto("no_shortfall", "the STABLE held covers the rent owed")
    need = shortfall * _RENT_SALE_MARGIN_PCT // 100
    sized = dataclasses.replace(limits, max_swap_stable=min(limits.max_swap_stable, need))
    sale = Decision(action="sell_risk", amount_pct=100, reason="rent is owed", valid=True)
    return guard(sale, obs, sized, spent, reference_price)


def _pay_rent(obs: Observation) -> Action | Veto:
    due = obs.rent.amount_due
    if due == 0:
        return Veto("no_rent_due", "no rent is owed now")
    if obs.balances.stable < due:
        return Veto("insufficient_stable", f"owe {due}, hold {obs.balances.stable}")
    return Action(kind="pay_rent", amount_in=due)


def _swap(
    obs: Observation,
    limits: Limits,
    spent: Spent,
    sell: Token,
    buy: Token,
    pct: int,
    reference_price: float | None = None,
) -> Action | Veto:
    cap_value = _swap_cap(obs, limits, spent, sell)
    if isinstance(cap_value, Veto):
        return cap_value
    amount = _swap_amount(obs, limits, sell, pct, cap_value)
    if isinstance(amount, Veto):
        return amount
    floor = _swap_floor(obs, limits, sell, amount, reference_price)
    if isinstance(floor, Veto):
        return floor
    reserve_in, reserve_out = _reserves(obs, sell)
    return Action(
        kind="swap",
        sell=sell,
        buy=buy,
        amount_in=amount,
        min_out=floor,
        deadline=obs.timestamp + limits.deadline_s,
        value_stable=amount if sell == "stable" else amount * reserve_out // reserve_in,
    )


def _swap_cap(obs: Observation, limits: Limits, spent: Spent, sell: Token) -> int | Veto:
    """The stable value a swap may move: the windows' cap, raised for a sale that pays rent."""
    shortfall = obs.rent.amount_due - obs.balances.stable
    cap_value = _window_cap(limits, spent)
    if sell == "risk" and shortfall > 0:
        # The windows slow trading down; they never stop the sale that pays the rent owed.
        raise_rent = min(limits.max_swap_stable, shortfall * _RENT_SALE_MARGIN_PCT // 100)
        cap_value = max(raise_rent, 0 if isinstance(cap_value, Veto) else cap_value)
    return cap_value


def _swap_amount(
    obs: Observation, limits: Limits, sell: Token, pct: int, cap_value: int
) -> int | Veto:
    """How much of `sell` to swap: `pct` within the caps, the rent reserve left in place."""
    balance = obs.balances.stable if sell == "stable" else obs.balances.risk
    amount = balance * min(pct, limits.max_swap_pct) // 100
    amount = min(amount, _stable_cap_in(sell, cap_value, obs))
    if sell == "stable":
        spendable = obs.balances.stable - limits.reserve_stable
        if spendable <= 0:
            return Veto(
                "reserve_floor",
                f"stable {obs.balances.stable} is at or below the reserve {limits.reserve_stable}",
            )
        amount = min(amount, spendable)
    if amount <= 0:
        return Veto("zero_amount", f"{pct}% of {balance} {sell} within caps is nothing")
    return amount


def _swap_floor(
    obs: Observation, limits: Limits, sell: Token, amount: int, reference_price: float | None
) -> int | Veto:
    """The least output a swap of `amount` accepts, or a veto for dust or a price impact."""
    reserve_in, reserve_out = _reserves(obs, sell)
    expected = amount_out(amount, reserve_in, reserve_out)
    fair = amount * reserve_out // reserve_in if reserve_in else 0
    if expected == 0 or fair == 0:
        return Veto("dust", f"selling {amount} {sell} would return nothing")
    impact_bps = (fair - expected) * _BPS // fair
    if impact_bps > limits.max_slippage_bps + FEE_BPS:
        return Veto(
            "price_impact",
            f"selling {amount} {sell} moves the price {impact_bps} bps "
            f"(limit {limits.max_slippage_bps} + fee {FEE_BPS})",
        )
    floor = min_out(expected, limits.max_slippage_bps)
    if reference_price:
        floor = max(floor, _reference_min_out(obs, limits, sell, amount, reference_price))
    return floor


def _reserves(obs: Observation, sell: Token) -> tuple[int, int]:
    """The pool's (reserve in, reserve out) for a sale of `sell`."""
    if sell == "stable":
        return obs.reserve_stable, obs.reserve_risk
    return obs.reserve_risk, obs.reserve_stable


def _window_cap(limits: Limits, spent: Spent) -> int | Veto:
    cap_value = min(
        limits.max_swap_stable,
        limits.window_hour_stable - spent.hour,
        limits.window_day_stable - spent.day,
    )
    if cap_value <= 0:
        return Veto(
            "window_cap",
            f"spent {spent.hour} in the last hour and {spent.day} in the last day "
            f"(caps {limits.window_hour_stable} and {limits.window_day_stable})",
        )
    return cap_value


def _add_liquidity(obs: Observation, limits: Limits, spent: Spent, pct: int) -> Action | Veto:
    """Deposit `pct` of the spendable stable and RISK of equal value into the pool.

    Like a swap it spends: the whole deposit (both halves, valued in stable) counts against
    the per-action cap and the rolling windows, and the rent reserve stays in the wallet.
    """
    cap_value = _window_cap(limits, spent)
    if isinstance(cap_value, Veto):
        return cap_value
    deposit = _deposit(obs, limits, pct, cap_value)
    if isinstance(deposit, Veto):
        return deposit
    stable, risk = deposit
    return Action(
        kind="add_liquidity",
        amount_in=stable,
        amount_risk=risk,
        min_out=min_out(stable, limits.max_slippage_bps),
        min_out_risk=min_out(risk, limits.max_slippage_bps),
        deadline=obs.timestamp + limits.deadline_s,
        value_stable=2 * stable,
    )


def _deposit(obs: Observation, limits: Limits, pct: int, cap_value: int) -> tuple[int, int] | Veto:
    """The (stable, RISK) of equal value to deposit, or why there is none."""
    if obs.reserve_stable <= 0 or obs.reserve_risk <= 0 or obs.lp_supply <= 0:
        return Veto("no_pool", "the pool has no liquidity to add to")
    spendable = obs.balances.stable - limits.reserve_stable
    if spendable <= 0:
        return Veto(
            "reserve_floor",
            f"stable {obs.balances.stable} is at or below the reserve {limits.reserve_stable}",
        )
    if obs.balances.risk <= 0:
        return Veto("no_risk", "adding liquidity takes RISK as well as STABLE: hold some first")
    stable = min(spendable * min(pct, limits.max_swap_pct) // 100, cap_value // 2)
    # As much as the RISK held can pair with (the router takes both at the pool's ratio).
    stable = min(stable, paired_amount(obs.balances.risk, obs.reserve_risk, obs.reserve_stable))
    risk = paired_amount(stable, obs.reserve_stable, obs.reserve_risk)
    if stable <= 0 or risk <= 0:
        return Veto("zero_amount", f"{pct}% of the spendable stable within caps is nothing")
    return stable, risk


def _remove_liquidity(obs: Observation, limits: Limits, pct: int) -> Action | Veto:
    """Burn `pct` of the agent's pool shares for at least its part of both reserves, less
    slippage. Not a spend: the value comes back to the wallet, so no cap but the floors."""
    if obs.balances.lp <= 0:
        return Veto("no_liquidity", "there is no pool position to remove")
    shares = obs.balances.lp * pct // 100
    stable, risk = shares_value(shares, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
    if stable <= 0 or risk <= 0:
        return Veto("dust", f"burning {shares} of {obs.lp_supply} pool shares returns nothing")
    return Action(
        kind="remove_liquidity",
        amount_in=shares,
        min_out=min_out(stable, limits.max_slippage_bps),
        min_out_risk=min_out(risk, limits.max_slippage_bps),
        deadline=obs.timestamp + limits.deadline_s,
    )


def _stable_cap_in(sell: Token, cap_stable: int, obs: Observation) -> int:
    """The per-action value cap expressed in units of the token sold."""
    if sell == "stable":
        return cap_stable
    if obs.reserve_stable == 0:
        return 0
    return cap_stable * obs.reserve_risk // obs.reserve_stable


def _reference_min_out(
    obs: Observation, limits: Limits, sell: Token, amount: int, reference_price: float
) -> int:
    """The least output acceptable at the agent's own reference price, after fee, slippage
    and the allowed deviation: a bound the pool's current state cannot move."""
    scale = 10 ** (obs.risk_decimals - obs.stable_decimals)
    ratio = reference_price / scale  # stable base units per risk base unit
    fair = amount / ratio if sell == "stable" else amount * ratio
    keep_bps = _BPS - FEE_BPS - limits.max_slippage_bps - limits.max_deviation_bps
    return max(0, int(fair * keep_bps / _BPS))


@dataclass(frozen=True)
class ReplicationLimits:
    """What a parent may give a child, in base units."""

    min_runway: float
    share_pct: int
    max_child_stable: int
    child_native: int
    max_children: int
    cooldown_ticks: int
    child_min_stable: int  # a child that cannot pay this much rent is not worth creating


def replication_guard(
    obs: Observation,
    runway: float,
    children: int,
    last_child_tick: int | None,
    limits: Limits,
    rules: ReplicationLimits,
) -> tuple[int, int] | Veto:
    """(stable, wei) a new child may get now, or why not. Pure; the rent reserve stays."""
    if children >= rules.max_children:
        return Veto("max_children", f"{children} children already (max {rules.max_children})")
    if last_child_tick is not None and obs.tick - last_child_tick < rules.cooldown_ticks:
        return Veto("cooldown", f"last child at tick {last_child_tick}")
    if obs.rent.arrears:
        return Veto("rent_owed", "rent is owed: no child before it is paid")
    if runway < rules.min_runway:
        return Veto("runway", f"runway {runway:.1f} is below {rules.min_runway}")
    spendable = obs.balances.stable - limits.reserve_stable
    stable = min(spendable * rules.share_pct // 100, rules.max_child_stable)
    if stable < rules.child_min_stable:
        return Veto("too_poor", f"a child would get {stable}, below {rules.child_min_stable}")
    if obs.balances.native < rules.child_native + 2 * limits.min_native:
        return Veto("gas_floor", f"native {obs.balances.native} cannot spare {rules.child_native}")
    return stable, rules.child_native
