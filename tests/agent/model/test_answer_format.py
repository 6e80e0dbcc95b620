"""Each prompt's answer format, on the real model: the plain prompt is answered with only what
acts (no reason), so a decision costs fewer tokens than one under the advice prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.core.prompt import BARE_SCHEMA, DECISION_SCHEMA, PLAIN_PROMPT, answer_schema
from agent.daemon.wiring import build_decider
from agent.model.deciders import LlamaDecider
from tests.agent.core.test_prompt import observation
from tests.conftest import settings_for

RECENT = (2.06, 2.05, 2.07, 2.04, 2.06)  # the price (2.0) is 3 % below them


def test_each_prompt_has_its_answer_format():
    assert answer_schema("advice") is DECISION_SCHEMA and answer_schema("plain") is BARE_SCHEMA
    assert BARE_SCHEMA["required"] == ["action", "amount_pct"] == list(BARE_SCHEMA["properties"])
    assert "reason" in DECISION_SCHEMA["required"]


def test_the_plain_prompt_is_answered_with_only_what_acts(
    tmp_path: Path, decider: LlamaDecider, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FORAGER_MODEL__PROMPT", "plain")
    monkeypatch.setenv("FORAGER_MODEL__N_THREADS", "2")
    plain = build_decider(settings_for(tmp_path, strategy="llm"))
    try:
        assert isinstance(plain, LlamaDecider)
        assert plain.schema is BARE_SCHEMA and plain.system_prompt == PLAIN_PROMPT
        bare = plain.decide(observation(), RECENT)
    finally:
        plain.close()
    assert bare.valid, bare.error
    assert set(json.loads(bare.raw)) == {"action", "amount_pct"} and bare.reason == ""
    reasoned = decider.decide(observation(), RECENT)  # the advice prompt, the default
    assert reasoned.valid and set(json.loads(reasoned.raw)) == {"action", "amount_pct", "reason"}
    assert bare.completion_tokens < reasoned.completion_tokens
