"""An adapter's prompt: the one it was trained with, unless the operator sets another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import ModelSettings
from agent.daemon.wiring import prompt_style
from agent.errors import ConfigError
from agent.model.adapter import adapter_prompt


def test_an_agent_runs_an_adapter_with_the_prompt_it_was_trained_with(tmp_path: Path):
    """The manifest beside the adapter names its prompt; FORAGER_MODEL__PROMPT still wins, and
    an adapter with no manifest, or none at all, keeps the default."""
    adapter = tmp_path / "gen1" / "adapter.gguf"
    adapter.parent.mkdir()
    adapter.write_bytes(b"GGUF")
    assert adapter_prompt(adapter) is None and prompt_style(ModelSettings(lora=adapter)) == "advice"
    (adapter.parent / "manifest.json").write_text(json.dumps({"prompt": "plain"}))
    assert adapter_prompt(adapter) == "plain"
    assert prompt_style(ModelSettings(lora=adapter)) == "plain"
    assert prompt_style(ModelSettings(lora=adapter, prompt="advice")) == "advice"
    assert prompt_style(ModelSettings()) == "advice"
    (adapter.parent / "manifest.json").write_text("[")
    with pytest.raises(ConfigError, match=r"manifest\.json is not a readable adapter manifest"):
        adapter_prompt(adapter)
