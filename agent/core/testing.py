"""Test doubles for the runtime's ports (used by tests and benchmarks, never by the daemon)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from agent.core.prompt import decision_from_text
from agent.core.records import Decision, Observation


class FakeDecider:
    """Answers with queued raw texts, in order, through the real parser; then holds."""

    def __init__(self, answers: Iterable[str] = ()) -> None:
        self._answers = deque(answers)
        self.seen: list[Observation] = []

    @property
    def name(self) -> str:
        return "fake"

    def close(self) -> None:
        """Nothing to free."""

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        self.seen.append(obs)
        raw = (
            self._answers.popleft()
            if self._answers
            else '{"action": "hold", "amount_pct": 0, "reason": "queue empty"}'
        )
        return decision_from_text(raw, "fake", obs, recent_prices)
