"""What each tick record becomes outside the process: metrics and a snapshot event.

The record itself is already durable in the store; this only reports it. Nothing here may
block or fail a tick: instruments and the event logger are OpenTelemetry's non-blocking APIs.
"""

from __future__ import annotations

from typing import Any

import structlog
from opentelemetry import metrics

from agent.core.records import Action, Outcome, TickRecord, Veto
from telemetry import genai
from telemetry.events import emit_event

SNAPSHOT_EVENT = "forager.tick"
log = structlog.get_logger()


class Reporter:
    """Turns tick records into metrics and OTLP snapshot events."""

    def __init__(self, agent_id: str, provider: str = "llama_cpp") -> None:
        meter = metrics.get_meter("openforager.agent")
        self._agent = {"agent.id": agent_id}
        self._provider = provider
        self.net_worth = meter.create_gauge("forager.net_worth", unit="{stable}")
        self.balance = meter.create_gauge("forager.balance", unit="{token}")
        self.runway = meter.create_gauge("forager.runway", unit="{period}")
        self.price = meter.create_gauge("forager.price", unit="{stable}")
        self.ticks = meter.create_counter("forager.ticks", unit="{tick}")
        self.actions = meter.create_counter("forager.actions", unit="{action}")
        self.vetoes = meter.create_counter("forager.policy.vetoes", unit="{veto}")
        self.gas = meter.create_counter("forager.gas_used", unit="{gas}")
        self.swaps = meter.create_counter("forager.swaps", unit="{swap}")
        self.failed_gas = meter.create_counter("forager.swaps.failed_gas", unit="{gas}")
        self.rent = meter.create_counter("forager.rent_paid", unit="{stable}")
        self.decision = meter.create_histogram("forager.decision.duration", unit="s")
        self.speed = meter.create_histogram("forager.decision.tokens_per_second", unit="{token}/s")
        self.duration = meter.create_histogram(
            genai.CLIENT_OPERATION_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=list(genai.DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            genai.CLIENT_TOKEN_USAGE,
            unit="{token}",
            explicit_bucket_boundaries_advisory=list(genai.TOKEN_BUCKETS),
        )

    def report(self, record: TickRecord) -> None:
        """Report one tick; a failure here is logged and never reaches the loop."""
        try:
            self._metrics(record)
        except Exception as exc:
            log.warning("metrics_failed", error=str(exc))
        attributes = {**self._agent, "forager.tick": record.tick}
        emit_event(SNAPSHOT_EVENT, record.to_dict(), attributes)

    def _metrics(self, record: TickRecord) -> None:
        obs, agent = record.observation, self._agent
        sd, rd = 10**obs.stable_decimals, 10**obs.risk_decimals
        after = record.balances_after
        self.net_worth.set(record.net_worth_after / sd, agent)
        for token, amount in (("stable", after.stable / sd), ("risk", after.risk / rd)):
            self.balance.set(amount, {**agent, "token": token})
        self.balance.set(after.native / 10**18, {**agent, "token": "native"})
        self.runway.set(record.runway_after, agent)
        self.price.set(obs.price, agent)
        self.ticks.add(1, agent)
        kind = record.action.kind if record.action else record.decision.action
        self.actions.add(1, {**agent, "kind": kind, "outcome": record.outcome.status})
        if record.veto is not None:
            self.vetoes.add(1, {**agent, "rule": record.veto.rule})
        gas = record.outcome.gas_used + (record.rent_outcome.gas_used if record.rent_outcome else 0)
        self.gas.add(gas, agent)
        self._swap(record)
        rent = record.rent_outcome
        paid = rent.amount_in if rent is not None and rent.status == "ok" else 0
        if record.action and record.action.kind == "pay_rent" and record.outcome.status == "ok":
            paid += record.outcome.amount_in
        if paid:
            self.rent.add(paid / sd, agent)
        self._model(record)

    def _swap(self, record: TickRecord) -> None:
        """An allowed swap's fate: landed, refused at act time (the market moved), failed."""
        agent = self._agent
        if record.veto is not None and record.veto.rule == "market_moved":
            if record.decision.action in ("buy_risk", "sell_risk"):
                self.swaps.add(1, {**agent, "fate": "refused_at_act"})
            return
        if record.action is None or record.action.kind != "swap":
            return
        if record.outcome.status == "ok":
            self.swaps.add(1, {**agent, "fate": "landed"})
            return
        self.swaps.add(1, {**agent, "fate": "failed"})
        self.failed_gas.add(record.outcome.gas_used, agent)

    def _model(self, record: TickRecord) -> None:
        decision = record.decision
        if not decision.latency_s:
            return  # not a model decision (a rule-based decider)
        model = {
            genai.OPERATION_NAME: "chat",
            genai.PROVIDER_NAME: self._provider,
            genai.REQUEST_MODEL: decision.model,
        }
        self.decision.record(decision.latency_s, self._agent)
        self.duration.record(decision.latency_s, model)
        self.tokens.record(decision.prompt_tokens, {**model, genai.TOKEN_TYPE: "input"})
        self.tokens.record(decision.completion_tokens, {**model, genai.TOKEN_TYPE: "output"})
        if decision.completion_tokens:
            self.speed.record(decision.completion_tokens / decision.latency_s, self._agent)


def outcome_attributes(verdict: Action | Veto, outcome: Outcome) -> dict[str, Any]:
    """The act span's attributes: what was done and what the chain said."""
    attributes: dict[str, Any] = {
        "forager.outcome.status": outcome.status,
        "forager.outcome.tx_hashes": list(outcome.tx_hashes),
        "forager.outcome.gas_used": outcome.gas_used,
        "forager.outcome.amount_in": str(outcome.amount_in),
        "forager.outcome.amount_out": str(outcome.amount_out),
    }
    if isinstance(verdict, Veto):
        attributes["forager.veto.rule"] = verdict.rule
    else:
        attributes["forager.action.kind"] = verdict.kind
    if outcome.error:
        attributes["error.type"] = outcome.error[:200]
    return attributes
