"""Every exception the Akash tooling raises is an `AkashError`, drawn in akash/errors.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import akash
from akash import errors


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(akash.__path__, "akash."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            ours = inspect.isclass(value) and value.__module__.startswith("akash.")
            if ours and issubclass(value, BaseException):
                found[name] = value
    return found


def test_every_akash_exception_is_under_akash_error_and_drawn_in_the_tree():
    """A new error outside the tree, or missing from the drawing, fails here."""
    classes = _exception_classes()
    assert {"ConsoleError", "NoBids", "LeaseLogError", "SdlError"} <= set(classes)
    tree = errors.__doc__ or ""
    for name, cls in classes.items():
        assert issubclass(cls, errors.AkashError), name
        assert cls.__module__ == "akash.errors", f"{name} is defined outside akash/errors.py"
        assert f" {name} " in tree, f"{name} is not drawn in akash/errors.py"
