"""What a LoRA adapter says of itself: the `manifest.json` that `forager train` writes beside it.

An adapter trained on rows that carried one system prompt answers as trained only under that
prompt, so the prompt is part of the adapter: an agent that runs it uses it unless told
otherwise (`FORAGER_MODEL__PROMPT`).
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.errors import ConfigError


def adapter_prompt(adapter: Path | None) -> str | None:
    """The system prompt (`advice`, `plain`, `compact`) the adapter was trained with; None when
    there is no adapter, no manifest beside it, or it does not say."""
    manifest = adapter.parent / "manifest.json" if adapter else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        prompt = json.loads(manifest.read_text()).get("prompt")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{manifest} is not a readable adapter manifest (JSON object)") from exc
    return prompt if isinstance(prompt, str) else None
