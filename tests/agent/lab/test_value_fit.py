"""Training from counterfactual values: the target, the states kept, and a short real training
run whose answers, on states it never saw, are worth more than the base model's."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.cli.main import main
from agent.errors import ConfigError
from agent.lab.train import TrainSettings, started_from
from agent.lab.value_fit import (
    anchored,
    encode_states,
    pooled,
    read_labels,
    shared_prefix,
    target,
)

# Generous: labelling, loading the model twice and eight training steps on a busy 2-core machine.
FIT_TIMEOUT_S = 2400


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_a_better_answer_by_tau_ticks_is_e_times_likelier():
    """The target is the softmax of the values over tau: ratios follow the value gaps, twins
    (equal values) share alike, and it sums to one."""
    p = target([210.0, 208.0, 210.0, 200.0], tau=2.0)
    assert math.isclose(sum(p), 1.0)
    assert math.isclose(p[0] / p[1], math.e) and p[0] == p[2]
    assert math.isclose(p[0] / p[3], math.e**5)


class CharTokenizer:
    """A stand-in tokenizer for the pure bookkeeping: one id per character of the messages."""

    def apply_chat_template(
        self, messages: list[dict[str, str]], add_generation_prompt: bool = False, **_: Any
    ) -> dict[str, list[int]]:
        text = "".join(f"<{m['role']}>{m['content']}</>" for m in messages)
        return {
            "input_ids": [ord(c) for c in text + ("<assistant>" if add_generation_prompt else "")]
        }


def row(significant: bool, values: tuple[float, float]) -> dict[str, Any]:
    return {
        "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "candidates": [
            {"completion": '{"action": "hold"}', "value": values[0]},
            {"completion": '{"action": "buy_risk"}', "value": values[1]},
        ],
        "significant": significant,
    }


def test_only_significant_states_are_trained_on_and_answers_follow_the_prompt(tmp_path: Path):
    """A state whose best answer is not significantly better than its worst is dropped (its
    values are noise); each kept answer is the assistant turn after the prompt's tokens."""
    states = encode_states(CharTokenizer(), [row(False, (1, 9)), row(True, (3, 1))], 1.0, 999)
    assert len(states) == 1
    (state,) = states
    assert state.target[0] > state.target[1]
    assert "".join(map(chr, state.answers[1])) == '{"action": "buy_risk"}</>'
    assert "".join(map(chr, state.prompt)).endswith("<assistant>")
    assert encode_states(CharTokenizer(), [row(True, (3, 1))], 1.0, 20) == []  # too long


def test_the_prefix_every_state_shares_is_what_runs_without_gradient():
    """The shared prefix ends where the states' observations first differ (the system prompt
    and the template's head), and never covers a whole prompt."""
    other = row(True, (3, 1))
    other["prompt"] = [{"role": "system", "content": "s"}, {"role": "user", "content": "uv"}]
    states = encode_states(CharTokenizer(), [row(True, (3, 1)), other], 1.0, 999)
    head = "".join(map(chr, states[0].prompt[: shared_prefix(states)]))
    assert head == "<system>s</><user>u"
    assert shared_prefix(states[:1]) == len(states[0].prompt)


def test_an_anchor_mixes_the_parents_own_answers_into_the_target():
    """share 0 leaves the values' target; share s moves s of the mass to the parent's answers;
    a share of 1 (the values ignored) is refused."""
    states = encode_states(CharTokenizer(), [row(True, (3, 1))], 1.0, 999)
    parent = [[0.1, 0.9]]
    (same,) = anchored(states, parent, 0.0)
    assert same.target == states[0].target
    (half,) = anchored(states, parent, 0.5)
    assert math.isclose(half.target[1], 0.5 * states[0].target[1] + 0.5 * 0.9)
    assert math.isclose(sum(half.target), 1.0) and half.values == states[0].values
    with pytest.raises(ConfigError, match=r"anchor 1\.0 must be"):
        anchored(states, parent, 1.0)


def test_pooled_values_are_the_mean_over_the_states_in_one_situation():
    """Rows in one situation (significant or not) share each answer's mean value; another
    situation, another set of answers, or a row without a situation keep their own values;
    which rows are significant stays as labelled."""
    a = {**row(True, (3, 1)), "situation": [0, 1, 0, 0]}
    b = {**row(False, (1, 5)), "situation": [0, 1, 0, 0]}
    c = {**row(True, (9, 0)), "situation": [6, 1, 0, 0]}
    d = row(True, (4, 2))
    e = {**row(True, (7, 7)), "situation": [0, 1, 0, 0]}
    e["candidates"] = [{**x, "completion": x["completion"] + " "} for x in e["candidates"]]
    out = pooled([a, b, c, d, e])
    assert [[x["value"] for x in r["candidates"]] for r in out] == [
        [2.0, 3.0],
        [2.0, 3.0],
        [9.0, 0.0],
        [4.0, 2.0],
        [7.0, 7.0],
    ]
    assert [r["significant"] for r in out] == [True, False, True, True, True]
    assert a["candidates"][0]["value"] == 3  # the rows read are left as they were
    (state,) = encode_states(CharTokenizer(), out[:2], 1.0, 999)
    assert state.target[1] > state.target[0] and state.situation == (0, 1, 0, 0)


def test_training_further_keeps_the_started_adapters_rank(tmp_path: Path):
    """With --init-from the loaded adapter's rank and alpha are what train (and what the
    manifest records), not the command line's; an unreadable config is named."""
    (tmp_path / "peft").mkdir()
    (tmp_path / "peft" / "adapter_config.json").write_text('{"r": 4, "lora_alpha": 8}')
    settings = started_from(TrainSettings(rank=16, alpha=32, init_from=str(tmp_path)))
    assert (settings.rank, settings.alpha) == (4, 8)
    assert started_from(TrainSettings(rank=16)).rank == 16
    (tmp_path / "peft" / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"adapter_config\.json cannot be read"):
        started_from(TrainSettings(init_from=str(tmp_path)))


def test_an_anchor_and_a_start_need_values_and_a_trained_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps(row(True, (1, 2))) + "\n")
    out = tmp_path / "gen1"
    argv = ["train", "--out", str(out), "--steps", "1"]
    assert main([*argv, "--dataset", str(labels), "--anchor", "0.2"]) == 2
    assert "need --labels" in capsys.readouterr().err
    assert main([*argv, "--dataset", str(labels), "--pool-situations"]) == 2
    assert "need --labels" in capsys.readouterr().err
    assert main([*argv, "--labels", str(labels), "--anchor", "0.2", "--anchor-to", "nope"]) == 2
    assert "--anchor-to nope has no peft/ folder" in capsys.readouterr().err
    assert main([*argv, "--labels", str(labels), "--anchor", "1.5"]) == 2
    assert "--anchor 1.5 must be" in capsys.readouterr().err
    assert main([*argv, "--labels", str(labels), "--init-from", "nope"]) == 2
    assert "--init-from nope has no peft/ folder" in capsys.readouterr().err
    assert not out.exists()


def test_bad_labels_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A file that is not `forager label` output is refused with its line, nothing written."""
    bad = tmp_path / "labels.jsonl"
    bad.write_text(json.dumps(row(True, (1, 2))) + "\n" + '{"prompt": []}\n')
    with pytest.raises(ConfigError, match="line 2"):
        read_labels(bad)
    out = tmp_path / "gen1"
    assert main(["train", "--labels", str(bad), "--out", str(out), "--steps", "1"]) == 2
    assert "line 2" in capsys.readouterr().err and not out.exists()


def _expected_values(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[float]:
    """On each significant state, the value of the model's answer in expectation: the values
    weighted by the model's own distribution over the candidate answers."""
    import torch

    from agent.lab.value_fit import answer_logprobs

    out = []
    for state, r in zip(encode_states(tokenizer, rows, 1.0, 4096), _significant(rows), strict=True):
        with torch.no_grad():
            q = torch.softmax(answer_logprobs(model, state, torch, "cpu"), 0).tolist()
        out.append(sum(p * c["value"] for p, c in zip(q, r["candidates"], strict=True)))
    return out


def _reading_the_observation_changes_no_answer(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    """The observation run apart from the shared prefix (as training does, to let gradient
    through it) gives the same answer likelihoods as the whole prompt run at once, and so does
    a copy of the prefix run once for a step's states (the copy leaves it as it was)."""
    import torch

    from agent.lab.value_fit import answer_logprobs, run_prefix

    states = encode_states(tokenizer, rows, 1.0, 4096)
    prefix = shared_prefix(states)
    assert 0 < prefix < min(len(s.prompt) for s in states)
    with torch.no_grad():
        whole = answer_logprobs(model.eval(), states[0], torch, "cpu")
        split = answer_logprobs(model, states[0], torch, "cpu", prefix)
        shared = run_prefix(model, states[0].prompt[:prefix], torch, "cpu")
        copies = [answer_logprobs(model, s, torch, "cpu", prefix, shared) for s in states[:2]]
        own = answer_logprobs(model, states[1], torch, "cpu", prefix)
    assert torch.allclose(whole, split, atol=1e-3), (whole, split)
    assert torch.allclose(copies[0], split, atol=1e-5) and torch.allclose(copies[1], own, atol=1e-5)


def _each_answer_is_what_it_reads_run_whole(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    """The answers are run as the tree they form (their common head once, each action's stem
    once, each size's tail on it); here each answer is run whole after the prompt instead, one
    sequence at a time, and its tokens' log-likelihoods summed: the same figure."""
    import torch

    from agent.lab.value_fit import answer_logprobs

    state = encode_states(tokenizer, rows, 1.0, 4096)[0]
    assert len({a[0] for a in state.answers}) == 1 < len({a[4] for a in state.answers})
    with torch.no_grad():
        tree = answer_logprobs(model.eval(), state, torch, "cpu")
        whole = []
        for answer in state.answers:
            ids = torch.tensor([state.prompt + answer])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            at = len(state.prompt) - 1  # the position that predicts the answer's first token
            whole.append(sum(float(logp[at + k, t]) for k, t in enumerate(answer)))
    assert torch.allclose(tree, torch.tensor(whole), atol=1e-3), (tree, whole)


def _significant(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["significant"]]


@pytest.mark.slow
@pytest.mark.timeout(FIT_TIMEOUT_S)
def test_training_on_values_makes_answers_worth_more_on_held_out_states(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Labels from training seeds, a short training run, and states from a seed it never saw:
    the trained model's answers there are worth more, in expectation, than the base model's."""
    pytest.importorskip("peft", reason="the train extra is not installed")
    import peft
    import torch

    from agent.lab.train import library_notes_hidden, load_base

    small = ["--ticks", "90", "--every", "7", "--horizon", "30", "--futures", "6"]
    small += ["--continuation", "mean_reversion"]
    seen, unseen = tmp_path / "train.jsonl", tmp_path / "held_out.jsonl"
    assert main(["label", "--out", str(seen), "--seeds", "3", *small]) == 0
    assert main(["label", "--out", str(unseen), "--first-seed", "50", "--seeds", "2", *small]) == 0
    held_out = read_labels(unseen)
    assert len(_significant(held_out)) >= 10, "too few significant held-out states to judge"
    out = tmp_path / "gen1"
    argv = ["train", "--labels", str(seen), "--out", str(out), "--steps", "16", "--batch", "4"]
    assert main([*argv, "--learning-rate", "1e-3"]) == 0
    assert "states" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["objective"] == "values" and manifest["prompt"] == "plain"
    assert manifest["losses"][-1] < manifest["losses"][0]

    report = tmp_path / "regret.json"
    argv = ["regret", "--labels", str(unseen), "--adapter", str(out), "--json", str(report)]
    assert main(argv) == 0
    assert "| gen1 |" in capsys.readouterr().out
    base, tuned, uniform, best, per_situation = json.loads(report.read_text())
    assert [c["name"] for c in (base, tuned, uniform, best, per_situation)] == [
        "base", "gen1", "uniform answer", "best answer", "best answer per situation"
    ]  # fmt: skip
    assert base["states"] == len(_significant(held_out)) and best["regret"] == 0
    assert 0 <= per_situation["regret"] <= uniform["regret"]
    assert tuned["expected_value"] > base["expected_value"], (base, tuned)
    assert tuned["regret"] < base["regret"]

    torch.manual_seed(0)
    with library_notes_hidden():  # transformers' and peft's deprecation notes
        tokenizer, model = load_base(model_path)
        _reading_the_observation_changes_no_answer(model, tokenizer, held_out)
        _each_answer_is_what_it_reads_run_whole(model, tokenizer, held_out)
        before = _expected_values(model, tokenizer, held_out)
        after = _expected_values(
            peft.PeftModel.from_pretrained(model, str(out / "peft")), tokenizer, held_out
        )
    # the command's figures, recomputed here from the labels' own rows
    assert math.isclose(base["expected_value"], sum(before) / len(before), abs_tol=1e-3)
    assert math.isclose(tuned["expected_value"], sum(after) / len(after), abs_tol=1e-3)
    best_values = [max(c["value"] for c in r["candidates"]) for r in _significant(held_out)]
    assert math.isclose(best["expected_value"], sum(best_values) / len(best_values), abs_tol=1e-3)
