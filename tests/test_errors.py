"""Every exception lives in its package's errors.py, under its base, drawn in its docstring."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("agent", "wallets", "telemetry", "akash", "arena")
BASES = {"agent": "AgentError", "wallets": "WalletError", "telemetry": "TelemetryError"}
BASES |= {"akash": "AkashError", "arena": "ArenaError"}
_BUILTIN = {
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, Exception)
}


def _exception_classes(path: Path, known: set[str]) -> list[str]:
    """Classes in `path` whose bases name an exception (ours, a builtin, or *Error/*Exception)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            names = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
            if names & known or any(n.endswith(("Error", "Exception")) for n in names):
                found.append(node.name)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_exceptions_are_in_errors_py_under_the_base_and_drawn(package: str):
    """No exception class outside errors.py; each one there derives from the base and is drawn."""
    errors = importlib.import_module(f"{package}.errors")
    ours = {
        n: c
        for n, c in inspect.getmembers(errors, inspect.isclass)
        if c.__module__ == errors.__name__
    }
    known = _BUILTIN | set(ours)
    for path in sorted((REPO / package).rglob("*.py")):
        if path.name != "errors.py":
            assert _exception_classes(path, known) == [], f"{path} defines its own exception"
    base = ours[BASES[package]]
    for name, cls in ours.items():
        assert issubclass(cls, base), f"{package}.errors.{name} is not a {base.__name__}"
        assert name in (errors.__doc__ or ""), f"{name} is not drawn in {package}/errors.py"
