"""Prompt building and decision parsing. Pure functions.

The prompt puts everything stable (role, rules, answer format) first and the per-tick
observation last, so llama.cpp can reuse the cached prefix from one tick to the next.
Only numbers from the observation enter the prompt; no string read from the chain does.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any

from agent.core.records import Decision, Observation, RentStatus, TickRecord
from agent.core.survival import lp_worth, net_worth, runway

ACTIONS = ("hold", "buy_risk", "sell_risk", "pay_rent", "add_liquidity", "remove_liquidity")
# A few sizes rather than any integer: a small model given 0..100 mostly answers 0.
AMOUNTS = (10, 25, 50, 100)
MAX_REASON_CHARS = 160
WELL_OFF = 0.02  # a price this far from its recent median is "well" below or above it
RECENT_TICKS = 5  # the prices (and actions) of the last ticks that an observation shows
_SHOWN_ACTIONS = 3

DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "amount_pct": {"type": "integer", "enum": list(AMOUNTS)},
        "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
    },
    # What acts comes first. The reason stays required: with it optional, llama-cpp-python's
    # grammar made a decision 5 to 90 s instead of about 1 s (measured December 2026).
    "required": ["action", "amount_pct", "reason"],
}

# Only what acts: the answer the plain prompt asks for and the answers labels score. About a
# third of the tokens of an answer with a reason, so a decision costs a third of the time.
BARE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": DECISION_SCHEMA["properties"]["action"],
        "amount_pct": DECISION_SCHEMA["properties"]["amount_pct"],
    },
    "required": ["action", "amount_pct"],
}

SYSTEM_PROMPT = """You are an autonomous trading agent living on a blockchain.
You hold two tokens: STABLE (a dollar) and RISK (its price in STABLE moves every block).
You must pay rent in STABLE every period. If you cannot pay before the grace period ends, you die.
Your goal: stay alive as long as possible and grow your net worth in STABLE.

Each turn you see the market and your wallet, then choose one action:
- hold: do nothing.
- buy_risk: spend amount_pct percent of your STABLE to buy RISK.
- sell_risk: sell amount_pct percent of your RISK for STABLE.
- pay_rent: pay the rent that is owed now.
- add_liquidity: put amount_pct percent of your STABLE, with RISK of equal value, into the pool.
  The pool earns the 0.3% fee on every trade; your share of it moves with the price.
- remove_liquidity: take amount_pct percent of your pool share back as STABLE and RISK.
Trades pay a 0.3% fee and gas. A guard may refuse unsafe actions.

How this market moves:
- RISK has a fair value that wanders slowly; in storms it moves faster, and now and then it jumps.
- Traders push the pool's price away from the fair value and an arbitrageur pulls it back, a
  little every block. So a price well below its recent prices tends to rise back, and a price
  well above them tends to fall back. Chasing a move usually loses.
- A move smaller than about 1% is not worth a trade: the fee eats it.
- Liquidity in the pool earns a share of every trade's fee, but loses value when the price
  moves far. Keep enough STABLE for the rent: RISK and pool shares do not pay it.

Examples of good answers:
Price 1.950, recent prices 2.010, 2.000, 2.020: 3% below them.
{"action": "buy_risk", "amount_pct": 25, "reason": "3% below recent prices; it tends to revert"}
Price 2.060, recent prices 2.000, 2.010, 1.990, holding RISK: 3% above them.
{"action": "sell_risk", "amount_pct": 25, "reason": "3% above recent prices; take the gain"}
Price 2.010, recent prices 2.000, 2.020, 1.990: inside the usual range.
{"action": "hold", "amount_pct": 10, "reason": "no clear gap; a trade would only pay fees"}
Rent owed now, enough STABLE in the wallet.
{"action": "pay_rent", "amount_pct": 100, "reason": "rent is owed"}

Answer with one JSON object:
{"action": ..., "amount_pct": 10, 25, 50 or 100, "reason": short text}."""

# The same world and actions with no trading advice and no examples: what a model does with it
# is what its weights know. The thesis compares the trained generation on this prompt with
# generation 0 on the advice above.
PLAIN_PROMPT = """You are an autonomous agent living on a blockchain.
You hold two tokens: STABLE (a dollar) and RISK (its price in STABLE moves every block).
You must pay rent in STABLE every period. If you cannot pay before the grace period ends, you die.
Your goal: stay alive as long as possible.

Each turn you see the market and your wallet, then choose one action:
- hold: do nothing.
- buy_risk: spend amount_pct percent of your STABLE to buy RISK.
- sell_risk: sell amount_pct percent of your RISK for STABLE.
- pay_rent: pay the rent that is owed now.
- add_liquidity: put amount_pct percent of your STABLE, with RISK of equal value, into the pool.
- remove_liquidity: take amount_pct percent of your pool share back as STABLE and RISK.
Trades pay a 0.3% fee. A guard may refuse unsafe actions.

Answer with one JSON object: {"action": ..., "amount_pct": 10, 25, 50 or 100}."""

# The plain prompt with the observation cut to what acts, what changes least first: about 25
# tokens a tick are new where the plain observation has about 190 (SmolLM2 spends a token per
# digit, and the plain one shows eight recent prices). The fastest decision this model makes.
_RULES, _ANSWER_LINE = PLAIN_PROMPT.rsplit("\n", 1)
COMPACT_PROMPT = (
    f"{_RULES}\nEach turn says your wallet, the rent, and how far the price is from its recent "
    f"median.\n{_ANSWER_LINE}"
)

PROMPTS = {"advice": SYSTEM_PROMPT, "plain": PLAIN_PROMPT, "compact": COMPACT_PROMPT}
# Each prompt's answer format: the advice asks for a reason, the plain and compact ones do not.
ANSWER_SCHEMAS = {"advice": DECISION_SCHEMA, "plain": BARE_SCHEMA, "compact": BARE_SCHEMA}


@dataclass(frozen=True)
class ParsedDecision:
    """A decider's answer after parsing and validation."""

    action: str
    amount_pct: int
    reason: str
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


def _units(amount: int, decimals: int) -> float:
    return float(amount / 10**decimals)


def describe(obs: Observation, recent_prices: tuple[float, ...] = ()) -> str:
    """The per-tick part of the prompt: the observation as short numeric lines."""
    sd = obs.stable_decimals
    worth = net_worth(obs.balances, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
    rent = obs.rent
    # What never changes comes first, what changes every tick last: llama.cpp reuses the
    # cached prefix up to the first token that differs from the previous tick's prompt.
    lines = [
        f"Rent: {_units(rent.amount, sd):.2f} STABLE every {rent.period_ticks} ticks.",
        f"Tick {obs.tick}. RISK price: {obs.price:.3f} STABLE.",
    ]
    if recent_prices:
        lines.append("Recent prices: " + ", ".join(f"{p:.3f}" for p in recent_prices) + ".")
        # The one number a reader of recent prices needs, so a small model need not compute it.
        gap = price_gap(obs.price, recent_prices)
        lines.append(f"Price vs recent median: {gap:+.1%} ({gap_words(gap)}).")
    lines += _holdings(obs)
    lines += [
        f"Net worth: {_units(worth, sd):.2f} STABLE, {runway(worth, rent.amount):.0f} rents.",
        f"Rent status: {_rent_due(rent, sd)}",
    ]
    if obs.recent:
        # Every token that changes each tick is prompt work: the last three are enough.
        lines.append("Last actions: " + "; ".join(obs.recent[-_SHOWN_ACTIONS:]) + ".")
    lines.append("Choose your action.")
    return "\n".join(lines)


def describe_compact(obs: Observation, recent_prices: tuple[float, ...] = ()) -> str:
    """The compact prompt's per-tick part: the wallet, the rent and the price's gap to its
    recent median, in that order (what changes least first, so the cached prefix runs up to the
    rent's countdown); no tick number, no list of prices, no past actions."""
    sd, rd, rent = obs.stable_decimals, obs.risk_decimals, obs.rent
    stable = obs.balances.stable
    lines = [
        f"Rent {_units(rent.amount, sd):.2f} STABLE every {rent.period_ticks} ticks.",
        f"Wallet {_units(stable, sd):.0f} STABLE ({runway(stable, rent.amount):.0f} rents), "
        f"{_units(obs.balances.risk, rd):.1f} RISK.",
    ]
    if obs.balances.lp:
        pooled = lp_worth(obs.balances, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
        lines.append(f"Pool share worth {_units(pooled, sd):.0f} STABLE.")
    if rent.arrears:
        lines.append(f"Rent OWED NOW, {rent.overdue_ticks} ticks late.")
    else:
        lines.append(f"Rent due in {rent.ticks_until_due} ticks.")
    if recent_prices:
        gap = price_gap(obs.price, recent_prices)
        lines.append(f"Price {gap:+.1%} vs recent median ({gap_words(gap)}).")
    else:
        lines.append("Price: no recent prices yet.")
    return "\n".join(lines)


def price_gap(price: float, recent_prices: tuple[float, ...]) -> float:
    """How far the price is from the median of the recent ones, as a fraction (+0.02: 2 % above)."""
    return price / statistics.median(recent_prices) - 1


def gap_words(gap: float) -> str:
    """The gap as words, read from the figure the prompt shows (so the text decides, not the
    digits it hides): the sign as a word a small model reads at once, "well" from `WELL_OFF`."""
    shown = round(gap * 100, 1)
    if shown == 0:
        return "at it"
    side = "below" if shown < 0 else "above"
    return f"well {side}" if abs(shown) >= WELL_OFF * 100 else side


def _holdings(obs: Observation) -> list[str]:
    """The wallet line, and the pool position's when there is one."""
    sd, rd = obs.stable_decimals, obs.risk_decimals
    lines = [
        f"Wallet: {_units(obs.balances.stable, sd):.2f} STABLE, "
        f"{_units(obs.balances.risk, rd):.3f} RISK, gas {_units(obs.balances.native, 18):.2f} ETH."
    ]
    if obs.balances.lp:
        pooled = lp_worth(obs.balances, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
        share = obs.balances.lp / obs.lp_supply if obs.lp_supply else 0.0
        lines.append(f"Pool share: {share:.3%}, worth {_units(pooled, sd):.2f} STABLE.")
    return lines


def _rent_due(rent: RentStatus, sd: int) -> str:
    if rent.arrears:
        return (
            f"OWED NOW: {_units(rent.amount_due, sd):.2f} STABLE, overdue {rent.overdue_ticks} "
            "ticks."
        )
    return f"next due in {rent.ticks_until_due} ticks."


PERSONAS: dict[str, str] = {
    "cautious": "Your temperament: cautious. Keep most of your wealth in STABLE, trade small, "
    "and never risk the rent.",
    "momentum": "Your temperament: a trend follower. Buy RISK while its price rises, sell it "
    "while it falls.",
    "contrarian": "Your temperament: a contrarian. Buy RISK after it falls, sell it after it "
    "rises.",
    "frugal": "Your temperament: frugal. Trades cost fees and gas; act only when a move is "
    "large, otherwise hold.",
}


def system_prompt(persona: str | None = None, style: str = "advice") -> str:
    """The stable part of the prompt: the rules (with trading advice, or `plain`), then the
    persona's temperament if any."""
    rules = PROMPTS[style]
    if persona is None:
        return rules
    return f"{rules}\n{PERSONAS[persona]}"


def answer_schema(style: str = "advice") -> dict[str, Any]:
    """The grammar a decider answers in under the prompt `style`."""
    return ANSWER_SCHEMAS[style]


def build_messages(
    obs: Observation,
    system_prompt: str = SYSTEM_PROMPT,
    recent_prices: tuple[float, ...] = (),
    style: str = "advice",
) -> list[dict[str, str]]:
    """The chat messages of one decision: the system prompt, then the observation written as
    the prompt `style` writes it (the compact style its own way, the others in full)."""
    observe = describe_compact if style == "compact" else describe
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": observe(obs, recent_prices)},
    ]


def parse_decision(raw: str) -> ParsedDecision:
    """Parse and validate a decider's raw JSON; anything wrong becomes `hold` with the reason.

    The grammar only guarantees the shape; ranges and lengths are checked here.
    """
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return _hold(f"not JSON: {exc.msg} at char {exc.pos}")
    if not isinstance(data, dict):
        return _hold(f"expected a JSON object, got {type(data).__name__}")
    action, pct, reason = data.get("action"), data.get("amount_pct"), data.get("reason", "")
    if action not in ACTIONS:
        return _hold(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if not isinstance(pct, int) or isinstance(pct, bool):
        return _hold(f"amount_pct {pct!r} is not an integer")
    if not 0 <= pct <= 100:
        return _hold(f"amount_pct {pct} is outside 0..100")
    if not isinstance(reason, str):
        return _hold(f"reason {reason!r} is not a string")
    return ParsedDecision(action, pct, reason[:MAX_REASON_CHARS])


def _hold(error: str) -> ParsedDecision:
    return ParsedDecision("hold", 0, "", error=error)


def decision_from_text(
    raw: str, model: str, obs: Observation, recent_prices: tuple[float, ...] = ()
) -> Decision:
    """A decision from an answer that did not come from the model (a rule, a script): parsed
    and validated like the model's, and recorded with the prompt the model would have seen."""
    parsed = parse_decision(raw)
    return Decision(
        action=parsed.action,
        amount_pct=parsed.amount_pct,
        reason=parsed.reason,
        valid=parsed.valid,
        error=parsed.error,
        raw=raw,
        model=model,
        prompt=tuple(build_messages(obs, recent_prices=recent_prices)),
    )


# -- memory: the model reads its last ticks as short lines in our own words -------------------

_STATUSES = frozenset({"ok", "failed", "vetoed", "held", "skipped", "interrupted"})
_MAX_RULE_CHARS = 32


def summary_of(record: TickRecord) -> str:
    """A short, model-readable line about one past tick (our own words, never chain strings)."""
    rule = None if record.veto is None else record.veto.rule
    return summarize(record.tick, record.decision.action, record.outcome.status, rule)


def summary_from_store(past: dict[str, Any]) -> str:
    """The same line rebuilt from stored memory, which is data and is checked as such."""
    veto = past.get("veto")
    return summarize(
        past.get("tick"),
        past.get("decision", {}).get("action"),
        past.get("outcome", {}).get("status"),
        veto.get("rule") if isinstance(veto, dict) else None,
    )


def summarize(tick: object, action: object, status: object, rule: object) -> str:
    """Only known words and integers pass; anything else becomes '?'."""
    n = tick if isinstance(tick, int) and not isinstance(tick, bool) else "?"
    act = action if action in ACTIONS else "?"
    if rule is not None:
        known = isinstance(rule, str) and rule.isidentifier() and len(rule) <= _MAX_RULE_CHARS
        return f"tick {n}: {act} refused ({rule if known else '?'})"
    return f"tick {n}: {act} {status if status in _STATUSES else '?'}"
