"""The bundled model in another encoding: derived once from the verified file, checked, used."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_settings
from agent.core.prompt import answer_schema
from agent.daemon.wiring import build_decider, model_file, model_name
from agent.errors import ConfigError, ModelError
from agent.model.answers import schema_answers
from agent.model.cache import (
    DEFAULT_MODEL,
    cached_path,
    locate_default,
    rendition,
    sha256_of,
)
from bench.decision import observations


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A model cache of its own holding a copy of the bundled file."""
    folder = tmp_path_factory.mktemp("cache")
    target = cached_path(folder)
    target.parent.mkdir(parents=True)
    shutil.copyfile(model_path, target)
    return folder


def test_q8_0_is_derived_once_from_the_bundled_file_and_made_again_when_damaged(
    cache_dir: Path,
) -> None:
    derived = locate_default(cache_dir, weights="q8_0")
    assert derived == cache_dir / "models" / "SmolLM2-135M-Instruct.Q8_0.gguf"
    assert sha256_of(derived) == dict(DEFAULT_MODEL.renditions)["q8_0"]
    assert derived.stat().st_size > cached_path(cache_dir).stat().st_size  # 8 bits, not 4
    made = derived.stat().st_mtime_ns

    assert locate_default(cache_dir, weights="q8_0") == derived
    assert derived.stat().st_mtime_ns == made  # kept, not derived again

    with derived.open("r+b") as handle:  # damaged: its hash no longer matches
        handle.seek(1 << 20)
        handle.write(b"\0" * 64)
    assert locate_default(cache_dir, weights="q8_0") == derived
    assert sha256_of(derived) == dict(DEFAULT_MODEL.renditions)["q8_0"]
    assert locate_default(cache_dir, weights="q4_1") == cached_path(cache_dir)
    assert locate_default(cache_dir) == cached_path(cache_dir)
    assert [p.name for p in sorted((cache_dir / "models").iterdir())] == [
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct.Q8_0.gguf",
    ]  # no partial file left behind


def test_an_unknown_encoding_or_a_missing_bundled_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"default model .*Q4_1.gguf is missing"):
        locate_default(tmp_path, weights="q8_0")  # derived from the bundled file only
    with pytest.raises(ModelError, match=r"model weights 'q2_k': expected one of q4_1, q8_0"):
        rendition(tmp_path, "q2_k")


def test_the_settings_choose_the_encoding_and_refuse_it_with_a_file_of_their_own(
    cache_dir: Path,
) -> None:
    settings = load_settings(cache_dir=cache_dir, strategy="llm", model={"weights": "q8_0"})
    assert model_name(settings) == "SmolLM2-135M-Instruct.Q8_0.gguf"
    assert model_file(settings) == cache_dir / "models" / "SmolLM2-135M-Instruct.Q8_0.gguf"
    plain = load_settings(cache_dir=cache_dir, strategy="llm")
    assert model_name(plain) == DEFAULT_MODEL.filename == model_file(plain).name
    with pytest.raises(ConfigError, match=r"weights q8_0 \(FORAGER_MODEL__WEIGHTS\).*path"):
        load_settings(model={"weights": "q8_0", "path": "own.gguf"})
    with pytest.raises(ConfigError, match=r"FORAGER_MODEL__WEIGHTS: Input should be"):
        load_settings(model={"weights": "q5"})


def test_an_agent_decides_with_the_derived_file(cache_dir: Path) -> None:
    settings = load_settings(
        cache_dir=cache_dir,
        strategy="llm",
        model={"weights": "q8_0", "prompt": "compact", "n_threads": 2},
    )
    decider = build_decider(settings)
    try:
        assert decider.name == "SmolLM2-135M-Instruct.Q8_0.gguf"
        obs, recent = observations(1)[0]
        decision = decider.decide(obs, recent)
        assert decision.valid, decision.error
        assert decision.model == "SmolLM2-135M-Instruct.Q8_0.gguf"
        probabilities = decider.probabilities(obs, recent)  # type: ignore[attr-defined]
        assert sorted(probabilities) == sorted(schema_answers(answer_schema("compact")) or [])
        assert abs(sum(probabilities.values()) - 1) < 1e-6
    finally:
        decider.close()


def test_forager_model_path_prints_the_derived_file(cache_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORAGER_")}
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "model", "path", "--cache-dir", str(cache_dir),
         "--weights", "q8_0"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cache_dir / "models" / "SmolLM2-135M-Instruct.Q8_0.gguf")
