"""A book of lives measured: one JSON line per life, written as each life ends.

A held-out life of a model takes minutes, and an evaluation or an evolution hours: what was
measured before an interruption (a session that ends, a machine that restarts, a Ctrl-C) is
not measured again. A life is found by who lived it (name, strategy, prompt, the adapter's
SHA-256, the model's sampling) and where (the seed, and every parameter of the world and the
life's length): a changed adapter file or world is a different life.

Only whole lines count: a line cut by a crash is skipped when the book is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from agent.core.lives import Life

_TUPLES = tuple(f.name for f in dataclasses.fields(Life) if str(f.type).startswith("tuple"))


def who(
    name: str, strategy: str, prompt: str | None, adapter: Path | None, **model: Any
) -> dict[str, Any]:
    """A contestant as the book knows it; `model`: what else shapes its answers."""
    digest = hashlib.sha256(adapter.read_bytes()).hexdigest() if adapter else None
    return {"name": name, "strategy": strategy, "prompt": prompt, "adapter_sha256": digest, **model}


class LifeBook:
    """The lives in `path` (a JSON-lines file, created on the first life)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lives: dict[str, Life] = {}
        self._torn = False  # the file ends inside a line: the next one starts on its own
        if path.is_file():
            text = path.read_text()
            self._torn = bool(text) and not text.endswith("\n")
            for line in text.splitlines():
                try:
                    row = json.loads(line)
                    self._lives[row["key"]] = _life(row["life"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: that life is lived again

    def __len__(self) -> int:
        return len(self._lives)

    def get(self, contestant: dict[str, Any], seed: int, world: dict[str, Any]) -> Life | None:
        return self._lives.get(_key(contestant, seed, world))

    def add(self, contestant: dict[str, Any], seed: int, world: dict[str, Any], life: Life) -> None:
        key = _key(contestant, seed, world)
        self._lives[key] = life
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            line = json.dumps({"key": key, "life": dataclasses.asdict(life)}) + "\n"
            out.write("\n" + line if self._torn else line)
            out.flush()
        self._torn = False


def _key(contestant: dict[str, Any], seed: int, world: dict[str, Any]) -> str:
    return json.dumps({"who": contestant, "seed": seed, "world": world}, sort_keys=True)


def _life(data: dict[str, Any]) -> Life:
    fields: dict[str, Any] = {k: tuple(v) if k in _TUPLES else v for k, v in data.items()}
    return Life(**fields)
