"""Compiles the arena's Vyper contracts, caching the artefacts by source hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import vyper

from arena.errors import CompileError

CONTRACTS = ("Token", "Pool", "Router")


@dataclass(frozen=True)
class Artefact:
    """A compiled contract: its ABI and deployable bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def contract_source(name: str) -> str:
    return (resources.files("arena") / "contracts" / f"{name}.vy").read_text()


def compile_contract(name: str, cache_dir: Path | None = None) -> Artefact:
    """Compile `name`.vy, reusing a cached result for identical source and compiler."""
    source = contract_source(name)
    key = hashlib.sha256(f"{vyper.__version__}\n{source}".encode()).hexdigest()[:16]
    cached = cache_dir / f"{name}-{key}.json" if cache_dir else None
    if cached and cached.exists():
        data = json.loads(cached.read_text())
        return Artefact(name, data["abi"], data["bytecode"])
    try:
        out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    except Exception as exc:
        raise CompileError(f"contract {name}.vy failed to compile: {exc}") from exc
    artefact = Artefact(name, out["abi"], out["bytecode"])
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps({"abi": artefact.abi, "bytecode": artefact.bytecode}))
        tmp.replace(cached)
    return artefact


def compile_all(cache_dir: Path | None = None) -> dict[str, Artefact]:
    return {name: compile_contract(name, cache_dir) for name in CONTRACTS}
