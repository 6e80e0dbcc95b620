"""Deciding by the answers' likelihoods: the tree on its own (pure logic), then on the real
model, checked against an independent reading of every answer's token log-likelihoods."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from agent.core.prompt import (
    BARE_SCHEMA,
    COMPACT_PROMPT,
    DECISION_SCHEMA,
    PLAIN_PROMPT,
    build_messages,
)
from agent.errors import ConfigError
from agent.lab.counterfactual import CANDIDATES
from agent.model.answers import AnswerTree, schema_answers, softmax
from agent.model.deciders import LlamaDecider
from tests.agent.core.test_prompt import observation

RECENT = (2.06, 2.05, 2.07, 2.04, 2.06)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 -- reproducible picks, not a secret


def test_the_plain_schema_answers_are_the_labelled_answers_in_the_same_text():
    answers = schema_answers(BARE_SCHEMA)
    assert answers is not None and len(answers) == 6 * 4 == len(set(answers))
    assert {c.answer for c in CANDIDATES} <= set(answers)
    assert json.loads(answers[0]) == {"action": "hold", "amount_pct": 10}
    assert schema_answers(DECISION_SCHEMA) is None  # a free-text reason: not a finite list
    optional = {**BARE_SCHEMA, "required": ["action"]}
    assert schema_answers(optional) is None


# Three answers: "a x" and "a y" part after a forced token, "b" parts at the first token.
TOKENS = [[1, 5, 7], [1, 5, 8], [2, 9]]
TEXTS = ["a x", "a y", "b"]


class Scripted:
    """Logits by the last token evaluated, and every call recorded."""

    def __init__(self, by_last: dict[int, dict[int, float]]) -> None:
        self.by_last, self.calls = by_last, []  # type: ignore[var-annotated]

    def __call__(self, tokens: list[int]) -> Sequence[float]:
        self.calls.append(list(tokens))
        logits = [-50.0] * 10
        for token, value in self.by_last[tokens[-1]].items():
            logits[token] = value
        return logits


def test_a_walk_evaluates_the_forced_tokens_with_the_prompt_and_stops_at_the_last_branch():
    tree = AnswerTree(TOKENS, TEXTS)
    # After the prompt (last token 0) the model prefers 1; after 5 it prefers 8.
    model = Scripted({0: {1: 3.0, 2: 1.0}, 5: {7: 0.0, 8: 2.0}})
    walk = tree.walk([4, 0], model, 0.0, seeded(0))
    assert walk.answer == "a y" and walk.evaluations == 2 and walk.answer_tokens == 3
    # the prompt first, then the pick with the forced token after it; nothing after the last pick
    assert model.calls == [[4, 0], [1, 5]]
    other = Scripted({0: {1: 1.0, 2: 3.0}})
    assert tree.walk([0], other, 0.0, seeded(0)).answer == "b"
    assert other.calls == [[0]]  # "b" ends with a forced token: never evaluated


def test_probabilities_are_each_branchs_softmax_multiplied_along_the_answer():
    tree = AnswerTree(TOKENS, TEXTS)

    def after_each(tokens: list[int]) -> Sequence[float]:
        return Scripted({0: {1: 3.0, 2: 1.0}, 5: {7: 0.0, 8: 2.0}})(tokens)

    got = tree.probabilities([0], after_each, temperature=0.5)
    first = softmax([3.0, 1.0], 0.5)
    second = softmax([0.0, 2.0], 0.5)
    assert got == pytest.approx(
        {"a x": first[0] * second[0], "a y": first[0] * second[1], "b": first[1]}
    )
    assert sum(got.values()) == pytest.approx(1.0)


def test_sampled_walks_follow_the_probabilities():
    tree = AnswerTree(TOKENS, TEXTS)
    model = {0: {1: 0.5, 2: 0.0}, 5: {7: 0.0, 8: 1.0}}
    expected = tree.probabilities([0], Scripted(model), 1.0)
    rng, n = seeded(7), 4000
    counts = dict.fromkeys(TEXTS, 0)
    for _ in range(n):
        counts[tree.walk([0], Scripted(model), 1.0, rng).answer] += 1
    for text in TEXTS:  # five standard errors: a wrong sampler is far outside
        se = math.sqrt(expected[text] * (1 - expected[text]) / n)
        assert abs(counts[text] / n - expected[text]) < 5 * se


def test_answers_that_are_prefixes_of_each_other_are_refused():
    with pytest.raises(ConfigError, match="prefix"):
        AnswerTree([[1, 2], [1, 2, 3]], ["short", "long"])
    with pytest.raises(ConfigError, match="prefix"):
        AnswerTree([[1, 2, 3], [1, 2]], ["long", "short"])


@pytest.fixture(scope="module")
def plain(model_path: Path) -> Iterator[LlamaDecider]:
    model = LlamaDecider(
        model_path, n_threads=2, system_prompt=PLAIN_PROMPT, schema=BARE_SCHEMA, temperature=0.3
    )
    yield model
    model.close()


def test_the_plain_prompt_is_decided_among_its_answers_reusing_the_prompt(plain: LlamaDecider):
    assert plain.decode == "answers"
    answers = schema_answers(BARE_SCHEMA)
    assert answers is not None
    first = plain.decide(observation(tick=7), RECENT)
    assert first.valid and first.raw in answers and first.finish_reason == "stop"
    again = plain.decide(observation(tick=8), RECENT)
    # the system prompt was kept; only the observation (and what follows it) was evaluated
    assert 250 < again.cached_tokens < again.prompt_tokens
    same = plain.decide(observation(tick=8), RECENT)
    assert same.cached_tokens == same.prompt_tokens - 1  # the last token: its logits are needed
    assert same.raw == again.raw  # same prompt, same seed (seed + tick): the same pick
    assert same.completion_tokens == len(plain._llm.tokenize(same.raw.encode(), add_bos=False))
    assert same.new_tokens == 0  # the very prompt of the tick before


def test_a_steady_tick_evaluates_only_what_is_new_and_the_compact_observation_is_little(
    plain: LlamaDecider, model_path: Path
):
    """Tokens evaluated on a tick against tokens new since the previous prompt (from the first
    that differs): the plain observation, then the compact one, in the same real model."""
    plain.decide(observation(tick=20), RECENT)
    steady = plain.decide(observation(tick=21), (*RECENT[1:], 2.03))
    evaluated = steady.prompt_tokens - steady.cached_tokens
    assert steady.new_tokens >= 60 and evaluated <= steady.new_tokens + 1
    compact = LlamaDecider(
        model_path,
        n_threads=2,
        system_prompt=COMPACT_PROMPT,
        schema=BARE_SCHEMA,
        style="compact",
    )
    try:
        first = compact.decide(observation(tick=20), RECENT)
        assert first.new_tokens == first.prompt_tokens and first.valid
        again = compact.decide(observation(tick=21), (*RECENT[1:], 2.03))
        assert again.valid and again.raw in (schema_answers(BARE_SCHEMA) or [])
        assert again.prompt[-1]["content"].startswith("Rent 5.00 STABLE every 10 ticks.")
        assert 0 < again.new_tokens <= 40 and again.new_tokens * 2 < steady.new_tokens
        assert again.prompt_tokens - again.cached_tokens <= again.new_tokens + 1
    finally:
        compact.close()


def test_the_answer_probabilities_match_each_answers_own_token_likelihoods(
    plain: LlamaDecider, model_path: Path
):
    """Independently: a second Llama keeps the logits of every position of the prompt followed
    by each whole answer; at each position where answers part, the softmax over the tokens that
    continue some answer is multiplied in. The decider's tree must give the same numbers."""
    import llama_cpp

    got = plain.probabilities(observation(), RECENT, temperature=1.0)
    answers = schema_answers(BARE_SCHEMA)
    assert answers is not None and set(got) == set(answers)
    assert sum(got.values()) == pytest.approx(1.0)

    full = llama_cpp.Llama(
        model_path=str(model_path),
        n_ctx=1536,
        n_batch=256,
        flash_attn=True,
        n_threads=2,
        logits_all=True,
        verbose=False,
    )
    try:
        messages = build_messages(observation(), PLAIN_PROMPT, RECENT)
        prompt = plain._answers.prompt(messages)  # type: ignore[union-attr]
        tokens = {a: full.tokenize(a.encode(), add_bos=False, special=False) for a in answers}
        expected: dict[str, float] = {}
        for answer, own in tokens.items():
            full.reset()
            full.eval(prompt + own)
            rows = np.array(full.scores[len(prompt) - 1 : len(prompt) + len(own) - 1])
            p = 1.0
            for i, token in enumerate(own):
                allowed = sorted({t[i] for t in tokens.values() if t[:i] == own[:i]})
                if len(allowed) > 1:
                    p *= softmax([float(rows[i][t]) for t in allowed], 1.0)[allowed.index(token)]
            expected[answer] = p
    finally:
        full.close()
    # llama.cpp's numbers move a little with how tokens are batched (here up to 0.16 nats for
    # answers above 1 %, 0.55 below): a wrong row, branch or normalization moves them by far more
    likely = [a for a in answers if expected[a] >= 0.01]
    assert len(likely) >= 5
    for answer in likely:
        assert abs(math.log(got[answer] / expected[answer])) < 0.5, answer
    assert sum(abs(got[a] - expected[a]) for a in answers) / 2 < 0.1
