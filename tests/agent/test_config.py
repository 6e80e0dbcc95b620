"""Settings: one object, environment and TOML sources, clear errors that name the input."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings, settings_env
from agent.errors import ConfigError


def test_defaults_run_on_the_arena():
    """With no chain configured the agent uses the local arena."""
    settings = load_settings()
    assert settings.uses_arena and settings.http.port == 8080
    assert settings.rent.period_ticks > 0 and settings.rent.amount > 0


def test_environment_overrides_nested_sections(monkeypatch: pytest.MonkeyPatch):
    """FORAGER_SECTION__KEY sets nested settings."""
    monkeypatch.setenv("FORAGER_RENT__AMOUNT", "7.5")
    monkeypatch.setenv("FORAGER_POLICY__MAX_SWAP_PCT", "20")
    settings = load_settings()
    assert str(settings.rent.amount) == "7.5" and settings.policy.max_swap_pct == 20


def test_bad_value_names_the_variable_and_not_the_value(monkeypatch: pytest.MonkeyPatch):
    """A bad value is reported by its variable name and the rule, without echoing it."""
    monkeypatch.setenv("FORAGER_POLICY__MAX_SWAP_PCT", "250")
    with pytest.raises(ConfigError, match="FORAGER_POLICY__MAX_SWAP_PCT") as info:
        load_settings()
    assert "250" not in str(info.value).split(":", 1)[0]


def test_live_chain_needs_its_addresses(monkeypatch: pytest.MonkeyPatch):
    """Setting an RPC URL without the market's addresses lists what is missing."""
    monkeypatch.setenv("FORAGER_CHAIN__RPC_URL", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="FORAGER_CHAIN__ROUTER"):
        load_settings()


def test_toml_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """FORAGER_CONFIG names a TOML file whose sections fill the settings."""
    config = tmp_path / "agent.toml"
    config.write_text("interval_s = 2.5\n[rent]\ngrace_ticks = 9\n")
    monkeypatch.setenv("FORAGER_CONFIG", str(config))
    settings = load_settings()
    assert settings.interval_s == 2.5 and settings.rent.grace_ticks == 9
    monkeypatch.setenv("FORAGER_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_settings()


def test_unknown_setting_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A misspelt key in the TOML file is an error, not silently ignored."""
    config = tmp_path / "agent.toml"
    config.write_text("intreval_s = 2\n")
    monkeypatch.setenv("FORAGER_CONFIG", str(config))
    with pytest.raises(ConfigError, match="INTREVAL_S"):
        load_settings()


def test_fallback_rpc_urls_are_a_json_list(monkeypatch: pytest.MonkeyPatch):
    """FORAGER_CHAIN__RPC_URLS takes a JSON list of fallback endpoints."""
    monkeypatch.setenv("FORAGER_CHAIN__RPC_URLS", '["http://127.0.0.1:1", "http://127.0.0.1:2"]')
    chain = load_settings().chain
    assert [url.get_secret_value() for url in chain.rpc_urls] == [
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
    ]


def test_settings_env_carries_the_agent_and_a_live_chain_but_no_other_secret(
    monkeypatch: pytest.MonkeyPatch,
):
    """settings_env: the container's FORAGER_* env; chain fields only for a live chain (whose
    RPC URL the operator agreed to share), never the Console API key."""
    assert "FORAGER_CHAIN__RPC_URL" not in settings_env(load_settings())
    monkeypatch.setenv("FORAGER_AKASH__SHARE_RPC_URL", "true")
    monkeypatch.setenv("FORAGER_CHAIN__RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("FORAGER_CHAIN__CHAIN_ID", "8453")
    for name in ("STABLE_TOKEN", "RISK_TOKEN", "POOL", "ROUTER", "LANDLORD"):
        monkeypatch.setenv(f"FORAGER_CHAIN__{name}", "0x" + "11" * 20)
    monkeypatch.setenv("FORAGER_AKASH__API_KEY", "console-key-never-shipped")
    env = settings_env(load_settings(strategy="hold"))
    assert env["FORAGER_STRATEGY"] == "hold" and env["FORAGER_CHAIN__CHAIN_ID"] == "8453"
    assert env["FORAGER_CHAIN__LANDLORD"] == "0x" + "11" * 20
    assert "console-key-never-shipped" not in env.values()
