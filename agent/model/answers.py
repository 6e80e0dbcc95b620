"""Deciding by the answers' likelihoods: no generation when every answer is known in advance.

Under the plain prompt an answer is an action and a size, each from a short list: 24 possible
JSON objects. Generating one under a grammar costs a forward pass per token (about 20), most of
them forced (`{"action": "`, `", "amount_pct": `), and the grammar sets the pace. Here the
answers are tokenized once into a tree; a decision evaluates the prompt's new tokens with the
forced tokens that follow, reads the logits at the first branch (the action's first token),
picks one of the branch's tokens, and goes on the same way to the next branch (the size). Three
small evaluations instead of about twenty, and the pick is among the answers only, so nothing
outside the schema can come out.

The pick at each branch is drawn from the softmax of the branch tokens' logits over the
temperature (the arg max at temperature 0), with its own random generator seeded per decision:
the same distribution as sampling under the grammar, renormalized over the tokens it allows at
that point, without the top-k/top-p cuts or the repetition penalty of llama-cpp-python's
sampler. `AnswerTree.probabilities` gives every answer's probability under that rule.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ConfigError


def schema_answers(schema: dict[str, Any]) -> list[str] | None:
    """Every answer a schema allows, as the JSON text a trained adapter saw (`json.dumps`, the
    properties in the schema's order), or None when an answer is not a finite list: a
    property without an `enum` (a free-text reason), or one that is not required."""
    properties = schema.get("properties", {})
    if not properties or list(schema.get("required", ())) != list(properties):
        return None
    if not all("enum" in p for p in properties.values()):
        return None
    names = list(properties)
    values = [properties[n]["enum"] for n in names]
    return [json.dumps(dict(zip(names, v, strict=True))) for v in itertools.product(*values)]


@dataclass
class Node:
    """A point in the answers' tokens: the tokens that may follow, or the answer that ends here."""

    children: dict[int, Node] = field(default_factory=dict)
    answer: str | None = None


@dataclass(frozen=True)
class Walk:
    """One decision's way through the tree: the answer, the tokens it evaluated after the
    prompt's, and the answer's length in tokens."""

    answer: str
    evaluations: int  # forward passes (calls to `logits_after`)
    answer_tokens: int


class AnswerTree:
    """The answers' token sequences as a tree (a trie): shared prefixes once, a branch where
    answers part."""

    def __init__(self, answers: Sequence[Sequence[int]], texts: Sequence[str]) -> None:
        if len(answers) != len(texts) or not answers:
            raise ConfigError("an answer tree needs at least one answer, each with its text")
        self.root = Node()
        self.lengths = {t: len(a) for a, t in zip(answers, texts, strict=True)}
        for tokens, text in zip(answers, texts, strict=True):
            node = self.root
            for token in tokens:
                if node.answer is not None:
                    raise ConfigError(f"answer {node.answer!r} is a prefix of {text!r}")
                node = node.children.setdefault(token, Node())
            if node.children or node.answer is not None:
                raise ConfigError(f"answer {text!r} is a prefix of another, or repeated")
            node.answer = text

    def walk(
        self,
        prompt: list[int],
        logits_after: Callable[[list[int]], Sequence[float]],
        temperature: float,
        rng: random.Random,
    ) -> Walk:
        """Choose an answer. `logits_after(tokens)` appends `tokens` to what was evaluated
        before and returns the next-token logits; it is first called with `prompt` followed by
        the forced tokens up to the first branch, then with the pick and the forced tokens up
        to the next branch, and never for tokens after the last branch."""
        node, forced = self.forced(self.root)
        pending, calls = [*prompt, *forced], 0
        while node.answer is None:
            logits = logits_after(pending)
            calls += 1
            token, node = self.branch(node, logits, temperature, rng)
            node, forced = self.forced(node)
            pending = [token, *forced]
        return Walk(node.answer, calls, self.lengths[node.answer])

    @staticmethod
    def forced(node: Node) -> tuple[Node, list[int]]:
        """The tokens that must follow `node` up to the next branch or the answer's end, and
        the node there."""
        tokens = []
        while node.answer is None and len(node.children) == 1:
            token, node = next(iter(node.children.items()))
            tokens.append(token)
        return node, tokens

    @staticmethod
    def branch(
        node: Node, logits: Sequence[float], temperature: float, rng: random.Random
    ) -> tuple[int, Node]:
        """One of the branch's tokens, drawn by `pick` from their logits; the node it leads to."""
        tokens = list(node.children)
        token = tokens[pick([logits[t] for t in tokens], temperature, rng)]
        return token, node.children[token]

    def probabilities(
        self,
        prompt: list[int],
        logits_after_each: Callable[[list[int]], Sequence[float]],
        temperature: float = 1.0,
    ) -> dict[str, float]:
        """Every answer's probability of being chosen by `walk` at `temperature` (> 0).
        `logits_after_each(tokens)`: the next-token logits after the prompt and `tokens` (all
        of them: this visits every branch)."""
        out: dict[str, float] = {}

        def visit(node: Node, path: list[int], p: float) -> None:
            while node.answer is None and len(node.children) == 1:
                token, node = next(iter(node.children.items()))
                path = [*path, token]
            if node.answer is not None:
                out[node.answer] = p
                return
            logits = logits_after_each(path)
            tokens = list(node.children)
            for token, q in zip(
                tokens, softmax([logits[t] for t in tokens], temperature), strict=True
            ):
                visit(node.children[token], [*path, token], p * q)

        visit(self.root, list(prompt), 1.0)
        return out


def softmax(logits: Sequence[float], temperature: float) -> list[float]:
    top = max(logits)
    weights = [math.exp((x - top) / temperature) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def pick(logits: Sequence[float], temperature: float, rng: random.Random) -> int:
    """An index drawn from softmax(logits / temperature); the arg max at temperature 0."""
    if temperature <= 0:
        return max(range(len(logits)), key=lambda i: logits[i])
    weights = softmax(logits, temperature)
    return rng.choices(range(len(logits)), weights=weights)[0]
