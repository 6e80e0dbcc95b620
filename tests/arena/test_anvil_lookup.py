"""Finding anvil: on PATH first, then beside the interpreter (where set-up links it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from arena.anvil import Anvil, locate
from arena.errors import AnvilMissing


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_anvil_beside_the_interpreter_is_found_without_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`.venv/bin/forager` finds the anvil linked into the venv's bin with PATH lacking it."""
    venv_anvil = _executable(tmp_path / "venv" / "bin" / "anvil")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert locate("anvil") == str(venv_anvil)
    on_path = _executable(tmp_path / "tools" / "anvil")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert locate("anvil") == str(on_path)  # PATH still wins


def test_a_missing_anvil_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Nowhere to be found: AnvilMissing names the binary and where it was looked for."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert locate("anvil") is None
    assert locate(str(tmp_path / "venv" / "bin" / "anvil")) is None  # a path is not searched for
    with pytest.raises(AnvilMissing, match=r"'anvil' not found on PATH nor in .*venv/bin"):
        Anvil("anvil").start()
