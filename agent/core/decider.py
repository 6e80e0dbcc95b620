"""The Decider port: what turns an Observation into a Decision (a model, a rule, a fake)."""

from __future__ import annotations

from typing import Protocol

from agent.core.records import Decision, Observation


class Decider(Protocol):
    """Proposes a decision for an observation. It holds no authority: the policy decides."""

    @property
    def name(self) -> str: ...

    def decide(self, obs: Observation, recent_prices: tuple[float, ...]) -> Decision: ...

    def close(self) -> None: ...
