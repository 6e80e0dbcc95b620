"""The package layout: our top-level names belong to us alone."""

from __future__ import annotations

import importlib.metadata

OURS = ("agent", "wallets", "telemetry", "akash", "arena")


def test_no_other_distribution_provides_our_top_level_names():
    """PyPI has packages named akash, agent, telemetry, deploy: none may be installed."""
    providers = importlib.metadata.packages_distributions()
    for name in (*OURS, "deploy"):
        others = [d for d in providers.get(name, []) if d.lower() != "openforager"]
        assert others == [], f"{others} also provide the top-level name {name!r}"


def test_our_packages_import_from_this_project():
    """Each top-level package is ours and documented."""
    for name in OURS:
        module = __import__(name)
        assert module.__doc__, f"{name} has no docstring"
        assert "site-packages" not in (module.__file__ or "") or "openforager" in (
            module.__file__ or ""
        )
