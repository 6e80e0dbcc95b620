"""The values that flow through a tick, each frozen.

Observation → Decision → Action (or Veto) → Outcome → TickRecord. Amounts are integers in
base units; prices are floats in whole stable units per whole risk unit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from telemetry.experience import SCHEMA_VERSION  # a tick record is telemetry's experience record

ActionKind = Literal["hold", "swap", "pay_rent", "add_liquidity", "remove_liquidity"]
Token = Literal["stable", "risk"]


@dataclass(frozen=True)
class Balances:
    native: int
    stable: int
    risk: int
    lp: int = 0  # shares of the pool (its liquidity token)


@dataclass(frozen=True)
class RentStatus:
    """Where the agent stands with its landlord at a tick.

    Rent for period k falls due at tick k * period_ticks; `paid_periods` counts the periods
    paid so far, oldest first.
    """

    amount: int  # per period, stable base units
    period_ticks: int
    age: int  # ticks lived before this one
    paid_periods: int

    @property
    def due_periods(self) -> int:
        return self.age // self.period_ticks + 1

    @property
    def arrears(self) -> int:
        return max(0, self.due_periods - self.paid_periods)

    @property
    def amount_due(self) -> int:
        return self.arrears * self.amount

    @property
    def overdue_ticks(self) -> int:
        """How long the oldest unpaid period has been due (0 when nothing is owed)."""
        return self.age - self.paid_periods * self.period_ticks if self.arrears else 0

    @property
    def ticks_until_due(self) -> int:
        """Ticks until the next rent falls due (0 when something is owed now)."""
        return 0 if self.arrears else self.paid_periods * self.period_ticks - self.age

    def paid(self, periods: int) -> RentStatus:
        return dataclasses.replace(self, paid_periods=self.paid_periods + periods)


@dataclass(frozen=True)
class Observation:
    """What the agent sees at a tick: numbers only, never strings from the chain."""

    tick: int
    block: int
    timestamp: int
    balances: Balances
    reserve_stable: int
    reserve_risk: int
    price: float
    gas_price: int
    rent: RentStatus
    stable_decimals: int
    risk_decimals: int
    recent: tuple[str, ...] = ()
    lp_supply: int = 0  # all the pool's shares: the agent owns balances.lp of them


@dataclass(frozen=True)
class Decision:
    """What the decider proposed and how; `valid` is False when it became a forced hold."""

    action: str
    amount_pct: int
    reason: str
    valid: bool
    error: str | None = None
    raw: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens kept from before, not evaluated again
    new_tokens: int = 0  # prompt tokens from the first that differs from the previous prompt's
    finish_reason: str = ""
    latency_s: float = 0.0
    prompt: tuple[dict[str, str], ...] = ()  # the exact messages the model saw


@dataclass(frozen=True)
class Action:
    """A validated, bounded instruction, built only by the policy.

    A swap sells `amount_in` of `sell` for at least `min_out` of `buy`. Adding liquidity
    deposits `amount_in` stable and `amount_risk` risk for at least `min_out` stable and
    `min_out_risk` risk taken; removing it burns `amount_in` pool shares for at least those.
    """

    kind: ActionKind
    sell: Token | None = None
    buy: Token | None = None
    amount_in: int = 0
    min_out: int = 0
    deadline: int = 0
    value_stable: int = 0  # what it spends (a swap's sale, a deposit), in stable when decided
    amount_risk: int = 0
    min_out_risk: int = 0


@dataclass(frozen=True)
class Veto:
    """The policy's refusal: which rule, and why."""

    rule: str
    detail: str


@dataclass(frozen=True)
class Outcome:
    """What happened when an action (or the rent) was carried out."""

    status: Literal["ok", "failed", "vetoed", "held", "skipped", "interrupted"]
    tx_hashes: tuple[str, ...] = ()
    gas_used: int = 0
    amount_in: int = 0
    amount_out: int = 0
    error: str | None = None


@dataclass(frozen=True)
class SentTx:
    """One transaction the agent's key sent, as the journal and the chain settled it."""

    tx_hash: str
    nonce: int
    purpose: str  # approve | swap | revoke | rent | add_liquidity | ...
    mined: bool  # False: reverted (or, never settled, unknown)
    gas_used: int = 0


@dataclass(frozen=True)
class TickRecord:
    """One tick, whole: what it saw, wanted, was allowed, did, and what it cost."""

    agent_id: str
    generation: int
    tick: int
    started_at: float
    finished_at: float
    observation: Observation
    decision: Decision
    action: Action | None
    veto: Veto | None
    outcome: Outcome
    rent_outcome: Outcome | None
    balances_after: Balances
    net_worth_before: int
    net_worth_after: int
    runway_before: float
    runway_after: float
    fitness_delta: float
    alive: bool
    death_cause: str | None = None
    model: str = ""
    adapter: str | None = None  # a fine-tuned LoRA adapter on top of the model, if any
    strategy: str = "llm"
    persona: str | None = None  # the model's temperament in its system prompt, if any
    lp_worth_after: int = 0  # the pool position's part of net_worth_after
    # Set when the process died inside the tick and a restart finished it from the journal:
    # the stage it had reached ("sensed", "decided", "acted", "rent").
    interrupted_at: str | None = None
    schema_version: int = field(default=SCHEMA_VERSION)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(self)
        return out


# -- as plain values (what is journalled and stored) --------------------------------------------

_ATOMS = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """`dataclasses.asdict` for the records of a tick, without its cost: the same dicts, tuples
    and lists, but the immutable leaves (strings, numbers) are shared rather than deep-copied and
    each class's fields are looked up once. A labelling run makes millions of these; asdict was
    two fifths of its time. Anything else is left to `dataclasses.asdict`'s own rules."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:  # a tuple of numbers (recent prices) is common: as is
        if all(type(x) in _ATOMS for x in value):
            return value if kind is tuple else list(value)
        return kind(plain(x) for x in value)
    if kind is dict:
        return {plain(k): plain(v) for k, v in value.items()}
    return dataclasses.asdict(_Boxed(value))["value"]  # subclasses, namedtuples, the rest


@dataclass(frozen=True)
class _Boxed:
    value: Any


# -- reading the values back (an interrupted tick's journal row) -------------------------------


def observation_from(d: dict[str, Any]) -> Observation:
    """An Observation from its `dataclasses.asdict` form."""
    return Observation(
        **{
            **d,
            "balances": Balances(**d["balances"]),
            "rent": RentStatus(**d["rent"]),
            "recent": tuple(d.get("recent", ())),
        }
    )


def decision_from(d: dict[str, Any]) -> Decision:
    return Decision(**{**d, "prompt": tuple(d.get("prompt", ()))})


def verdict_from(d: dict[str, Any]) -> Action | Veto:
    """An Action or a Veto from `verdict_dict`'s form."""
    if "veto" in d:
        return Veto(**d["veto"])
    return Action(**d["action"])


def verdict_dict(verdict: Action | Veto) -> dict[str, Any]:
    key = "veto" if isinstance(verdict, Veto) else "action"
    return {key: plain(verdict)}


def outcome_from(d: dict[str, Any]) -> Outcome:
    return Outcome(**{**d, "tx_hashes": tuple(d.get("tx_hashes", ()))})
