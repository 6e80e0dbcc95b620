"""Training: a few steps of LoRA on real exported lives, converted to GGUF, loaded by llama.cpp.

Slow (the base model is dequantized by transformers, ~30 s), so marked; it runs in `make test`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import structlog

from agent.cli.main import main
from agent.config import Settings
from agent.errors import ModelError
from agent.lab.calibrate import calibrate
from agent.model.deciders import LlamaDecider
from bench.decision import observations

pytest.importorskip("peft", reason="the train extra is not installed")

# Generous: on a 2-core machine at load 16, six training steps alone took 1 638 s.
TRAIN_TIMEOUT_S = 1800


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _logits(decider: LlamaDecider, text: bytes) -> np.ndarray:
    import llama_cpp

    llm = decider._llm
    tokens = llm.tokenize(text)
    llm.reset()
    llm.eval(tokens)
    pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy()


@pytest.mark.slow
@pytest.mark.timeout(TRAIN_TIMEOUT_S)
def test_train_makes_an_adapter_llama_cpp_loads_and_that_changes_the_model(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
):
    lives = tmp_path / "lives"
    calibrate(Settings(), [7], 30, strategies=("mean_reversion",), keep=lives)
    dataset = tmp_path / "sft.jsonl"
    export = ["dataset", "export", "--data-dir", str(lives / "mean_reversion-seed7")]
    assert main([*export, "--format", "sft", "--out", str(dataset)]) == 0
    rows = dataset.read_text().splitlines()
    assert len(rows) == 30
    out = tmp_path / "gen1"
    argv = ["train", "--dataset", str(dataset), "--out", str(out), "--steps", "3", "--batch", "2"]
    assert main(argv) == 0
    assert "generation 1" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    adapter = out / "adapter.gguf"
    assert manifest["adapter_sha256"] == hashlib.sha256(adapter.read_bytes()).hexdigest()
    assert manifest["base_model_sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert manifest["dataset_sha256"] == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert manifest["generation"] == 1 and manifest["rows"] == 30
    assert len(manifest["losses"]) == 3 and all(loss > 0 for loss in manifest["losses"])
    assert manifest["settings"]["seed"] == 0 and manifest["device"] in ("cpu", "cuda")

    base = LlamaDecider(model_path, n_threads=2)
    tuned = LlamaDecider(model_path, n_threads=2, lora_path=adapter)
    try:
        assert tuned.adapter == "adapter.gguf" and base.adapter is None
        text = b"Rent: 5.00 STABLE every 10 ticks. Choose your action."
        assert float(np.abs(_logits(base, text) - _logits(tuned, text)).max()) > 1e-3
        obs, recent = observations(3)[-1]
        assert tuned.decide(obs, recent).model  # it still decides, through the same grammar
    finally:
        base.close()
        tuned.close()


def test_train_names_a_bad_dataset_and_a_missing_adapter(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": [], "completion": []}\nnot json\n')
    code = main(["train", "--dataset", str(bad), "--out", str(tmp_path / "o"), "--steps", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "SFT row" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ModelError, match="does not exist"):
        LlamaDecider(model_path, lora_path=tmp_path / "missing.gguf")
