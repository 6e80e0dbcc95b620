"""The loop: one tick is sense → decide → guard → act → survive → record.

Each stage takes the previous stage's value and returns a new one; the tick record carries
them all. The `Agent` owns the wallet for its whole life: ticks never overlap.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

import structlog
from opentelemetry import trace

from agent.core.decider import Decider
from agent.core.policy import (
    Limits,
    ReplicationLimits,
    Spent,
    guard,
    rent_sale,
    replication_guard,
    reprice,
)
from agent.core.prompt import RECENT_TICKS, build_messages, summary_from_store, summary_of
from agent.core.records import (
    Action,
    Balances,
    Decision,
    Observation,
    Outcome,
    RentStatus,
    SentTx,
    TickRecord,
    Veto,
    plain,
    verdict_dict,
)
from agent.core.survival import (
    death_cause,
    fitness_delta,
    is_past_grace,
    lp_worth,
    net_worth,
    runway,
)
from agent.runtime.lineage import LaunchRequest, Nursery, child_persona
from agent.runtime.recovery import finish
from agent.runtime.reporting import outcome_attributes
from agent.runtime.store import Store

log = structlog.get_logger()
tracer = trace.get_tracer("openforager.agent")

_RECENT = RECENT_TICKS
_HOUR_S = 3_600.0
_DAY_S = 86_400.0


class Senses(Protocol):
    """What sensing needs: the chain's `Sensor`, or a paper market."""

    def sense(self, tick: int, rent: RentStatus, recent: tuple[str, ...]) -> Observation: ...

    def thought_for(self, seconds: float) -> None:
        """The decision took `seconds` (the chain moves by itself; paper moves its weather)."""

    def balances(self) -> Balances: ...

    def snapshot(self) -> tuple[Balances, int, int, int]: ...


class Acts(Protocol):
    """What acting needs: the chain's `Executor`, or a paper market."""

    def execute(self, action: Action) -> Outcome: ...

    def fund_child(self, child: str, stable_amount: int, native: int) -> Outcome: ...

    def mark(self) -> int:
        """Where the next transaction starts: what `sent_since` reads from."""
        ...

    def sent_since(self, mark: int) -> list[SentTx]: ...


@dataclass(frozen=True)
class RentTerms:
    amount: int
    period_ticks: int
    grace_ticks: int
    sell_for_rent: bool = True  # the survival reflex: raise owed rent from RISK


@dataclass(frozen=True)
class Replication:
    """What an agent needs to make children: the policy's bounds and where children go."""

    rules: ReplicationLimits
    nursery: Nursery
    parent_address: str
    seed: int
    mutate_persona: float = 0.0


class Agent:
    """One living agent: its stages, its memory, and whether it is still alive."""

    def __init__(
        self,
        *,
        agent_id: str,
        generation: int,
        sensor: Senses,
        decider: Decider,
        limits: Limits,
        executor: Acts,
        rent: RentTerms,
        store: Store,
        on_record: Callable[[TickRecord], None] | None = None,
        strategy: str = "llm",
        adapter: str | None = None,
        persona: str | None = None,
        replication: Replication | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.agent_id, self.generation = agent_id, generation
        self._sensor, self._decider, self._executor = sensor, decider, executor
        self._limits, self._rent, self._store = limits, rent, store
        self.on_record = on_record
        self.strategy, self.adapter, self.persona = strategy, adapter, persona
        self.replication = replication
        self._clock = clock  # Unix time; a simulation passes its own
        self._lock = threading.Lock()
        self.last_record: TickRecord | None = None
        self.last_tick_at: float | None = None
        self._restore(store)

    def _restore(self, store: Store) -> None:
        """Pick up a life where the store left it: age, rent paid, death, the last ticks."""
        self.age = store.age()
        self.paid_periods = store.paid_periods()
        self.death_cause = store.death()
        self._recent: deque[str] = deque(maxlen=_RECENT)
        self._prices: deque[float] = deque(maxlen=_RECENT)
        for past in reversed(store.records(limit=_RECENT)):
            self._prices.append(float(past["observation"]["price"]))
            self._recent.append(summary_from_store(past))

    @property
    def alive(self) -> bool:
        return self.death_cause is None

    @property
    def model(self) -> str:
        return self._decider.name

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def recent_prices(self) -> tuple[float, ...]:
        return tuple(self._prices)

    def rent_status(self) -> RentStatus:
        return RentStatus(self._rent.amount, self._rent.period_ticks, self.age, self.paid_periods)

    def would_allow(self, decision: Decision) -> Action | Veto:
        """What the guard would make of `decision` now, acting on nothing (the lab asks this
        to know which answers lead to the same action)."""
        with self._lock:
            obs = self._sensor.sense(self.age, self.rent_status(), tuple(self._recent))
            return guard(decision, obs, self._limits, self._spent(), self._reference())

    def tick(self) -> TickRecord | None:
        """Live one tick; return its record, or None if the agent is dead.

        A tick a previous process died in is finished first, from its journal row and the
        transactions it sent (that is this call's record): it is never decided again."""
        with self._lock:
            if not self.alive:
                return None
            interrupted = self._store.interrupted()
            if interrupted is not None:
                return self._finish_interrupted(*interrupted)
            return self._tick()

    def _finish_interrupted(
        self, n: int, started: float, stage: str, detail: dict[str, Any]
    ) -> TickRecord:
        """Write the record of tick `n` as far as it got, its outcome read from the chain."""
        with tracer.start_as_current_span("recover", attributes={"agent.tick": n}):
            sent = self._executor.sent_since(int(detail.get("mark", 0)))
            done = finish(detail, sent, self._rent.amount, self._store.known_tx_hashes(False))
            decision = done.decision
            if not decision.prompt:  # undecided: keep the prompt it would have answered
                prompt = build_messages(done.observation, recent_prices=self.recent_prices)
                decision = dataclasses.replace(decision, prompt=tuple(prompt))
            for sale in done.rent_sales:
                self._store.add_action(n, "rent_sale", sale, value_stable=0)
            self.paid_periods += done.periods_paid
            log.warning(
                "tick_recovered",
                tick=n,
                stage=stage,
                transactions=len(sent),
                outcome=done.outcome.status,
                rent=None if done.rent is None else done.rent.status,
            )
            record = self._new_record(
                started, done.observation, decision, done.verdict, done.outcome, done.rent
            )
            return self._keep(dataclasses.replace(record, interrupted_at=stage))

    def _tick(self) -> TickRecord:
        started = self._clock()
        n = self.age
        attrs: dict[str, str | int] = {
            "agent.id": self.agent_id,
            "agent.generation": self.generation,
            "agent.tick": n,
        }
        with tracer.start_as_current_span("tick", attributes=attrs) as span:
            log.info("tick_started", tick=n)
            record = self._stages(started, n, span)
            if self.replication is not None and record.alive:
                with tracer.start_as_current_span("replicate"):
                    self._maybe_replicate(record)
        return record

    def _stages(self, started: float, n: int, span: trace.Span) -> TickRecord:
        """sense → decide → guard → act → survive → record, each in its own span.

        Each stage is journalled (the store's open tick) before the next one acts, so a
        process killed anywhere in between leaves what a restart needs to finish the tick."""
        with tracer.start_as_current_span("sense"):
            obs = self._sensor.sense(n, self.rent_status(), tuple(self._recent))
        span.set_attribute("chain.block", obs.block)
        opened = {"mark": self._executor.mark(), "observation": plain(obs)}
        self._store.open_tick(n, started, "sensed", opened)
        with tracer.start_as_current_span("decide"):
            decision = self._decide(obs)
        with tracer.start_as_current_span("guard"):
            verdict = guard(decision, obs, self._limits, self._spent(), self._reference())
            self._sensor.thought_for(decision.latency_s)
            verdict = self._at_act_time(decision, verdict)
            decided = {"decision": plain(decision), "verdict": verdict_dict(verdict)}
            self._store.open_tick(n, started, "decided", decided)
        with tracer.start_as_current_span("act") as act_span:
            outcome = self._act(verdict)
            act_span.set_attributes(outcome_attributes(verdict, outcome))
            self._store.open_tick(n, started, "acted", {"outcome": plain(outcome)})
        with tracer.start_as_current_span("survive"):
            rent_outcome = self._collect_rent(n, started)
        with tracer.start_as_current_span("record"):
            return self._record(started, obs, decision, verdict, outcome, rent_outcome)

    def _at_act_time(self, decision: Decision, verdict: Action | Veto) -> Action | Veto:
        """A priced action checked again on the pool as it is now (it moved while deciding)."""
        if isinstance(verdict, Veto) or verdict.kind in ("hold", "pay_rent"):
            return verdict
        now = self._sensor.sense(self.age, self.rent_status(), tuple(self._recent))
        again = reprice(decision, verdict, now, self._limits, self._spent(), self._reference())
        if isinstance(again, Veto):
            log.info("action_refused_at_act_time", rule=again.rule, detail=again.detail)
        return again

    def _maybe_replicate(self, record: TickRecord) -> None:
        """Make a child when the policy allows: its wallet, its money, its launch request."""
        rep = self.replication
        assert rep is not None, "replication is configured"
        requests = rep.nursery.requests()
        allowed = self._replication_allowed(record, rep, requests)
        if allowed is None:
            return
        request = self._launch_request(record, rep, len(requests), *allowed)
        # The request exists before any money moves: after a crash the child is still counted
        # (caps, cooldown), its wallet is known, and the journal finishes its funding.
        rep.nursery.request_launch(request)
        self._fund_child(record, rep, request)

    def _replication_allowed(
        self, record: TickRecord, rep: Replication, requests: list[LaunchRequest]
    ) -> tuple[int, int] | None:
        """The (stable, native) a child gets now, or None when the policy refuses one."""
        last = max((r.born_tick for r in requests), default=None)
        now = dataclasses.replace(
            record.observation, balances=record.balances_after, rent=self.rent_status()
        )
        allowed = replication_guard(
            now, record.runway_after, len(requests), last, self._limits, rep.rules
        )
        return None if isinstance(allowed, Veto) else allowed

    def _launch_request(
        self, record: TickRecord, rep: Replication, born: int, stable: int, native: int
    ) -> LaunchRequest:
        """A new child's launch request: a fresh wallet, this agent's strategy, a mutation."""
        name, child_dir, address = rep.nursery.new_child()
        persona = None
        if self.strategy == "llm":
            persona = child_persona(self.persona, rep.seed, born + 1, rep.mutate_persona)
        return LaunchRequest(
            name=name,
            data_dir=str(child_dir),
            address=address,
            parent_id=self.agent_id,
            parent_address=rep.parent_address,
            generation=self.generation + 1,
            strategy=self.strategy,
            seed=rep.seed + born + 1,  # a mutation: the child's own randomness
            born_tick=record.tick,
            stable=stable,
            native=native,
            persona=persona,
        )

    def _fund_child(self, record: TickRecord, rep: Replication, request: LaunchRequest) -> None:
        """Send the child its money and record how that went, in the store and the nursery."""
        outcome = self._executor.fund_child(request.address, request.stable, request.native)
        self._store.add_action(
            record.tick, "replicate", outcome, {"child": request.name, "to": request.address}
        )
        status = "funded" if outcome.status == "ok" else "failed"
        rep.nursery.request_launch(
            dataclasses.replace(request, tx_hashes=outcome.tx_hashes, status=status)
        )
        if outcome.status != "ok":
            log.warning("replication_failed", child=request.name, error=outcome.error)
            return
        log.info(
            "child_created",
            child=request.name,
            address=request.address,
            generation=request.generation,
            stable=request.stable,
            native=request.native,
            tx_hashes=list(outcome.tx_hashes),
        )

    def _reference(self) -> float | None:
        """The median of the prices this agent saw on its last ticks (None before any)."""
        return statistics.median(self._prices) if self._prices else None

    def _spent(self) -> Spent:
        now = self._clock()
        return Spent(
            hour=self._store.spent_since(now - _HOUR_S), day=self._store.spent_since(now - _DAY_S)
        )

    def _decide(self, obs: Observation) -> Decision:
        decision = self._decider.decide(obs, tuple(self._prices))
        log.info(
            "decision_made",
            action=decision.action,
            amount_pct=decision.amount_pct,
            valid=decision.valid,
            error=decision.error,
            reason=decision.reason,
            latency_s=round(decision.latency_s, 3),
            prompt_tokens=decision.prompt_tokens,
            evaluated_tokens=decision.prompt_tokens - decision.cached_tokens,
            new_tokens=decision.new_tokens,
            completion_tokens=decision.completion_tokens,
        )
        return decision

    def _act(self, verdict: Action | Veto) -> Outcome:
        if isinstance(verdict, Veto):
            log.info("action_vetoed", rule=verdict.rule, detail=verdict.detail)
            return Outcome(status="vetoed", error=f"{verdict.rule}: {verdict.detail}")
        outcome = self._executor.execute(verdict)
        if verdict.kind == "pay_rent" and outcome.status == "ok":
            self.paid_periods += outcome.amount_in // self._rent.amount
        return outcome

    def _collect_rent(self, n: int, started: float) -> Outcome | None:
        """Pay whatever rent is owed now; a shortfall starts (or continues) the grace period."""
        status = self.rent_status()
        if status.arrears == 0:
            return None
        rent = {"rent_mark": self._executor.mark(), "arrears": status.arrears}
        self._store.open_tick(n, started, "rent", rent)
        balance = self._sensor.balances().stable
        if balance < status.amount_due and self._rent.sell_for_rent:
            balance = self._sell_for_rent(status)
        if balance < status.amount_due:
            log.warning(
                "rent_missed",
                owed=status.amount_due,
                stable=balance,
                overdue_ticks=status.overdue_ticks,
                grace_ticks=self._rent.grace_ticks,
            )
            return Outcome(
                status="failed",
                error=f"insufficient stable: hold {balance}, owe {status.amount_due}",
            )
        outcome = self._executor.execute(Action(kind="pay_rent", amount_in=status.amount_due))
        if outcome.status == "ok":
            self.paid_periods += status.arrears
        return outcome

    def _sell_for_rent(self, status: RentStatus) -> int:
        """The survival reflex: rent is owed and STABLE is short, so sell RISK for it.

        Not the model's choice but the runtime's, like paying the rent itself: the policy
        sizes the sale (the shortfall plus a margin, past the spending windows), the chain
        executes it, and it is stored as a `rent_sale` action. Returns the STABLE held after.
        """
        obs = self._sensor.sense(self.age, status, tuple(self._recent))
        verdict = rent_sale(obs, self._limits, self._spent(), self._reference())
        if isinstance(verdict, Veto):
            log.warning("rent_sale_refused", rule=verdict.rule, detail=verdict.detail)
            return obs.balances.stable
        outcome = self._executor.execute(verdict)
        self._store.add_action(obs.tick, "rent_sale", outcome, value_stable=verdict.value_stable)
        log.info(
            "rent_sale",
            status=outcome.status,
            amount_in=outcome.amount_in,
            amount_out=outcome.amount_out,
            tx_hashes=list(outcome.tx_hashes),
        )
        return self._sensor.balances().stable

    def _record(
        self,
        started: float,
        obs: Observation,
        decision: Decision,
        verdict: Action | Veto,
        outcome: Outcome,
        rent_outcome: Outcome | None,
    ) -> TickRecord:
        """Freeze the tick into its record, store it, remember it, and say how it ended."""
        return self._keep(self._new_record(started, obs, decision, verdict, outcome, rent_outcome))

    def _keep(self, record: TickRecord) -> TickRecord:
        """Store the record (closing the tick's journal row), remember it, say how it ended."""
        self._store.append(record, self.paid_periods)
        self._remember(record)
        _log_finished(record)
        if not record.alive:
            self.death_cause = record.death_cause
            log.warning(
                "agent_died",
                tick=record.tick,
                cause=record.death_cause,
                net_worth=record.net_worth_after,
            )
        if self.on_record is not None:
            self.on_record(record)
        return record

    def _new_record(
        self,
        started: float,
        obs: Observation,
        decision: Decision,
        verdict: Action | Veto | None,
        outcome: Outcome,
        rent_outcome: Outcome | None,
    ) -> TickRecord:
        after = self._aftermath(obs)
        return TickRecord(
            agent_id=self.agent_id,
            generation=self.generation,
            tick=obs.tick,
            started_at=started,
            finished_at=self._clock(),
            observation=obs,
            decision=decision,
            action=verdict if isinstance(verdict, Action) else None,
            veto=verdict if isinstance(verdict, Veto) else None,
            outcome=outcome,
            rent_outcome=rent_outcome,
            model=self._decider.name,
            adapter=self.adapter,
            strategy=self.strategy,
            persona=self.persona,
            **after,
        )

    def _aftermath(self, obs: Observation) -> _Aftermath:
        """What the tick left: the wallet and pool now, the worth and runway, and death."""
        balances, reserve_stable, reserve_risk, supply = self._sensor.snapshot()
        worth_before = net_worth(obs.balances, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
        worth_after = net_worth(balances, reserve_stable, reserve_risk, supply)
        rent_after = self.rent_status()
        died = is_past_grace(rent_after, self._rent.grace_ticks)
        runway_before = runway(worth_before, self._rent.amount)
        runway_after = runway(worth_after, self._rent.amount)
        return _Aftermath(
            balances_after=balances,
            net_worth_before=worth_before,
            net_worth_after=worth_after,
            runway_before=runway_before,
            runway_after=runway_after,
            fitness_delta=fitness_delta(runway_before, runway_after, died),
            alive=not died,
            death_cause=death_cause(rent_after, self._rent.grace_ticks) if died else None,
            lp_worth_after=lp_worth(balances, reserve_stable, reserve_risk, supply),
        )

    def _remember(self, record: TickRecord) -> None:
        """The agent's memory of its last ticks, read by the next decisions and by HTTP."""
        self.age = record.tick + 1
        self.last_record = record
        self.last_tick_at = record.finished_at
        self._prices.append(record.observation.price)
        self._recent.append(summary_of(record))


class _Aftermath(TypedDict):
    """A tick record's fields measured after acting and paying rent."""

    balances_after: Balances
    net_worth_before: int
    net_worth_after: int
    runway_before: float
    runway_after: float
    fitness_delta: float
    alive: bool
    death_cause: str | None
    lp_worth_after: int


def _log_finished(record: TickRecord) -> None:
    obs, rent = record.observation, record.rent_outcome
    log.info(
        "tick_finished",
        tick=record.tick,
        block=obs.block,
        price=round(obs.price, 6),
        net_worth=record.net_worth_after,
        runway=round(record.runway_after, 2),
        outcome=record.outcome.status,
        rent=None if rent is None else rent.status,
    )
