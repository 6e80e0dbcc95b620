"""Training toward what each answer was worth: the model's answers fitted to counterfactual values.

`forager label` values every candidate answer at a visited state (the paper arena's fresh
futures, common random numbers). Here the model learns from those values rather than by
imitation: at each state whose best answer is significantly better than its worst, the target
is the softmax of the candidates' values over a temperature `tau` (in ticks of expected life),
and the model's own distribution over the same answers — the softmax of each answer's
log-likelihood after the prompt — is pulled toward it (cross-entropy, i.e. KL up to a
constant). Twins the guard turns into the same action are worth the same and share the mass.

`pooled` replaces each state's values by their mean over the labelled states in its situation
(the stand-in's key), so the target says what an answer is worth there, not at one state's few
futures.

A state costs one pass over the prompt and one over its candidate answers, run as the tree they
form (the tokens all of them start with, each action's stem, each size's tail) against the
prompt's cached keys and values. The prefix every state shares (the system prompt, the
template's head) runs without gradient, once per optimizer step; the state's own observation
and its answers run with it, so the adapter learns how the observation is read as well as how
the answer reads it (or, with `read_observation` off, the whole prompt runs without gradient).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.reports.progress import Progress


@dataclass(frozen=True)
class State:
    """One labelled state, tokenized: the prompt, every answer, and the target over them."""

    prompt: list[int]  # the chat up to the assistant's turn
    answers: list[list[int]]  # each candidate's tokens, end of turn included
    target: list[float]  # softmax of the values over `tau`
    values: list[float]  # each answer's value, ticks of expected life
    names: list[str]  # each answer as what acts ("buy_risk 25")
    situation: tuple[int, ...] | None = None  # the row's situation (`agent.lab.standin`), if any

    @property
    def gap_bin(self) -> int | None:
        """The situation's gap bin: where the price stood against its recent median."""
        return self.situation[0] if self.situation else None


def read_labels(path: Path) -> list[dict[str, Any]]:
    """`forager label` rows, checked; every row, significant or not."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"labels {path} cannot be read: {exc.strerror}") from exc
    rows = [_label_row(path, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise ConfigError(f"labels {path} have no rows")
    return rows


def _label_row(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
        assert isinstance(row["prompt"], list) and isinstance(row["significant"], bool)
        for c in row["candidates"]:
            assert isinstance(c["completion"], str) and math.isfinite(float(c["value"]))
        assert len(row["candidates"]) >= 2
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ConfigError(
            f"labels {path}, line {number}: expected a row of `forager label` "
            '({"prompt": [messages], "candidates": [{"completion", "value", ...}], '
            '"significant": ...})'
        ) from exc
    return dict(row)


def target(values: Sequence[float], tau: float) -> list[float]:
    """The softmax of `values` over `tau`: a better answer by `tau` ticks is e times likelier."""
    top = max(values)
    weights = [math.exp((v - top) / tau) for v in values]
    total = sum(weights)
    return [w / total for w in weights]


def encode_states(
    tokenizer: Any, rows: Sequence[dict[str, Any]], tau: float, max_tokens: int
) -> list[State]:
    """The significant states that fit in `max_tokens`, tokenized as the chat template lays
    them out (the answer as the assistant's message, its end of turn included)."""
    states = []
    for row in rows:
        if not row["significant"]:
            continue
        prompt = _ids(tokenizer, row["prompt"], generation_prompt=True)
        answers = []
        for c in row["candidates"]:
            full = _ids(tokenizer, [*row["prompt"], _assistant(c["completion"])])
            answers.append(full[len(prompt) :])
        if len(prompt) + max(map(len, answers)) > max_tokens:
            continue
        values = [float(c["value"]) for c in row["candidates"]]
        names = [_name(c) for c in row["candidates"]]
        where = row.get("situation")
        situation = tuple(int(x) for x in where) if where else None
        states.append(State(prompt, answers, target(values, tau), values, names, situation))
    return states


def pooled(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's candidate values replaced by their mean, answer by answer, over every
    labelled row in its situation (`agent.lab.standin`: where the price stands, what is held,
    whether rent is due), significant or not: the value of an answer in that situation rather
    than at one state's few futures, so the target's noise shrinks with the rows pooled. Which
    rows are significant stays as labelled; a row without a situation keeps its own values."""
    groups: dict[tuple[Any, ...], list[list[float]]] = {}
    for row in rows:
        if row.get("situation"):
            groups.setdefault(_pool_key(row), []).append(
                [float(c["value"]) for c in row["candidates"]]
            )
    means = {k: [sum(v) / len(g) for v in zip(*g, strict=True)] for k, g in groups.items()}
    out = []
    for row in rows:
        mean = means.get(_pool_key(row)) if row.get("situation") else None
        if mean is None:
            out.append(row)
            continue
        candidates = [{**c, "value": m} for c, m in zip(row["candidates"], mean, strict=True)]
        out.append({**row, "candidates": candidates})
    return out


def _pool_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (tuple(row["situation"]), tuple(c["completion"] for c in row["candidates"]))


def _name(candidate: dict[str, Any]) -> str:
    if "action" in candidate and "amount_pct" in candidate:
        return f"{candidate['action']} {candidate['amount_pct']}"
    return str(candidate["completion"])


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> Any:
    return list(
        tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True
        )["input_ids"]
    )


def answer_logprobs(
    model: Any,
    state: State,
    torch: Any,
    device: str,
    frozen: int | None = None,
    prefix: Any = None,
) -> Any:
    """The log-likelihood of each candidate answer after the prompt (a tensor, one per
    answer). The prompt's first `frozen` tokens (all of it when None) run without gradient;
    gradients flow through the rest of the prompt and through the answers. `prefix`: those
    first `frozen` tokens already run (`run_prefix`), shared by every state of a step; it is
    copied, not consumed."""
    fixed = len(state.prompt) if frozen is None else min(frozen, len(state.prompt) - 1)
    if prefix is not None and fixed == frozen:
        head = _Head(copy.deepcopy(prefix.cache), prefix.logits)
    else:
        head = run_prefix(model, state.prompt[:fixed], torch, device)
    if fixed < len(state.prompt):
        rest = torch.tensor([state.prompt[fixed:]], device=device)
        head = model(input_ids=rest, cache=head.cache, use_cache=True)
    return _answers_after(model, head, len(state.prompt), state.answers, torch, device)


def _answers_after(
    model: Any, head: Any, past: int, answers: list[list[int]], torch: Any, device: str
) -> Any:
    """Each answer's log-likelihood after a prompt of `past` tokens whose cache and logits
    `head` holds (the cache is consumed). The answers are run as the tree they form, not one
    by one: the tokens every answer starts with once, then each group of answers that begin
    alike (one action) its common stem once, then each answer's own tail on its stem's cache.
    The candidates' ~400 padded tokens become ~150 (`{"action": "buy_risk", "amount_pct": `
    is run once for four sizes)."""
    n = len(answers)
    # 1. the head every answer shares (at least one token of each answer left after it)
    h = _common(answers, min(map(len, answers)) - 1)
    lead = torch.log_softmax(head.logits[0, -1].float(), -1)  # predicts each answer's first
    shared = lead[answers[0][0]] if h else lead.new_zeros(())
    cache, before = head.cache, lead
    if h:
        ids = torch.tensor([answers[0][:h]], device=device)
        out = model(input_ids=ids, cache=cache, use_cache=True)
        logp = torch.log_softmax(out.logits[0].float(), -1)
        shared = shared + logp[torch.arange(h - 1), ids[0, 1:]].sum() if h > 1 else shared
        cache, before = out.cache, logp[h - 1]
    past += h
    # 2. each group's stem: the answers that begin with the same token after the head
    groups: dict[int, list[int]] = {}
    for i, a in enumerate(answers):
        groups.setdefault(a[h], []).append(i)
    members = list(groups.values())
    stems = [answers[g[0]][h : h + _common([answers[i][h:] for i in g])] for g in members]
    width = max(map(len, stems))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in stems], device=device)
    seen = [[1] * (past + len(s)) + [0] * (width - len(s)) for s in stems]
    cache.batch_repeat_interleave(len(stems))
    out = model(input_ids=ids, attention_mask=torch.tensor(seen, device=device), cache=cache)
    logp = torch.log_softmax(out.logits.float(), -1)
    real = torch.tensor(
        [[1.0] * (len(s) - 1) + [0.0] * (width - len(s)) for s in stems], device=device
    )
    stem = before[ids[:, 0]] + (logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] * real).sum(-1)
    # 3. each answer's own tail, on its stem's cache (pads in between masked, positions given)
    group_of = {i: k for k, g in enumerate(members) for i in g}
    tails = [answers[i][h + len(stems[group_of[i]]) :] for i in range(n)]
    total = [shared + stem[group_of[i]] for i in range(n)]
    rows = [i for i in range(n) if tails[i]]
    if rows:
        w = max(len(tails[i]) for i in rows)
        tids = torch.tensor([tails[i] + [0] * (w - len(tails[i])) for i in rows], device=device)
        mask = [seen[group_of[i]] + [1] * len(tails[i]) + [0] * (w - len(tails[i])) for i in rows]
        start = [past + len(stems[group_of[i]]) for i in rows]
        positions = torch.tensor([[s + k for k in range(w)] for s in start], device=device)
        out.cache.batch_select_indices(torch.tensor([group_of[i] for i in rows], device=device))
        tout = model(
            input_ids=tids,
            attention_mask=torch.tensor(mask, device=device),
            position_ids=positions,
            cache=out.cache,
        )
        tlogp = torch.log_softmax(tout.logits.float(), -1)
        for r, i in enumerate(rows):
            g, t = group_of[i], tails[i]
            first = logp[g, len(stems[g]) - 1, t[0]]
            rest = tlogp[r, torch.arange(len(t) - 1), tids[r, 1 : len(t)]].sum()
            total[i] = total[i] + first + rest
    return torch.stack(total)


def _common(seqs: Sequence[list[int]], limit: int | None = None) -> int:
    """How many leading tokens every sequence of `seqs` shares (at most `limit`)."""
    n = min(map(len, seqs)) if limit is None else limit
    for k in range(n):
        if any(s[k] != seqs[0][k] for s in seqs[1:]):
            return k
    return n


@dataclass
class _Head:
    cache: Any
    logits: Any


def run_prefix(model: Any, tokens: list[int], torch: Any, device: str) -> Any:
    """`tokens` run through `model` without gradient: its cache (keys and values) and logits."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([tokens], device=device), use_cache=True)


def answer_distributions(
    model: Any, states: Sequence[State], device: str, progress: Progress
) -> list[list[float]]:
    """`model`'s own distribution over each state's answers (no gradient)."""
    import torch

    model.eval()
    progress.phase("anchor", len(states))
    out: list[list[float]] = []
    if not states:
        return out
    with torch.no_grad():
        # The prefix every state shares, run once (each state continues from a copy of it).
        frozen = shared_prefix(states)
        prefix = run_prefix(model, states[0].prompt[:frozen], torch, device) if frozen else None
        for state in states:
            logps = answer_logprobs(model, state, torch, device, frozen or None, prefix)
            out.append(torch.softmax(logps, 0).tolist())
            progress.step()
    return out


def anchored(
    states: Sequence[State], parent: Sequence[Sequence[float]], share: float
) -> list[State]:
    """Each target mixed with the parent's distribution: (1 - share) x values' + share x
    parent's. The cross-entropy to it is the values' plus `share` times KL(parent || model),
    up to constants: a pull back toward the parent that the values must outweigh."""
    if not 0 <= share < 1:
        raise ConfigError(f"anchor {share} must be at least 0 and below 1")
    return [
        dataclasses.replace(
            s, target=[(1 - share) * t + share * q for t, q in zip(s.target, p, strict=True)]
        )
        for s, p in zip(states, parent, strict=True)
    ]


def shared_prefix(states: Sequence[State]) -> int:
    """How many leading prompt tokens every state shares (the system prompt and the template's
    head): the part that reads the same in every state, so it carries nothing to learn."""
    first = states[0].prompt
    n = len(first)
    for s in states[1:]:
        n = next(
            (i for i, (a, b) in enumerate(zip(first[:n], s.prompt, strict=False)) if a != b), n
        )
        n = min(n, len(s.prompt))
    return n


def fit_values(
    model: Any,
    states: Sequence[State],
    steps: int,
    batch: int,
    learning_rate: float,
    seed: int,
    device: str,
    progress: Progress,
    read_observation: bool = True,
) -> list[float]:
    """`steps` optimizer steps of `batch` states each (seeded order); the loss of each step:
    the cross-entropy of the model's answer distribution against the values' softmax.
    `read_observation`: the gradient also flows through each state's own part of the prompt
    (the observation), so the adapter learns how the observation is read as well as how the
    answer reads it; the prefix every state shares runs without gradient either way."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate
    )
    frozen = shared_prefix(states) if read_observation else None
    order = random.Random(seed)  # noqa: S311 -- batch order, not a secret
    progress.phase("train", steps)
    losses: list[float] = []
    for _ in range(steps):
        total = 0.0
        # The shared prefix, run once a step with the adapter as it stands (it changes each
        # step): every state of the step continues from a copy of it.
        prefix = run_prefix(model, states[0].prompt[:frozen], torch, device) if frozen else None
        for _ in range(batch):
            state = states[order.randrange(len(states))]
            logps = answer_logprobs(model, state, torch, device, frozen, prefix)
            log_q = torch.log_softmax(logps, 0)
            p = torch.tensor(state.target, device=device)
            loss: Any = -(p * log_q).sum() / batch
            loss.backward()
            total += float(loss.item())
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(total, 5))
        progress.step(f"loss {losses[-1]:.4f}")
    return losses
