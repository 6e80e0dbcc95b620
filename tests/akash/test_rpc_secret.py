"""RPC URLs are secrets: an API key in one reaches an SDL only with the operator's consent, and
never a log line, an HTTP answer or an error message (shown as scheme, host and port)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import structlog
from ruamel.yaml import YAML

from agent.cli.main import EXIT_ERROR, main
from agent.config import SHARE_RPC_URL_VAR, load_settings, settings_env
from agent.errors import ConfigError
from akash.validate import load_schema, validate_document
from arena.anvil import free_port
from arena.local import LocalArena
from telemetry.redaction import redact_url, redact_urls
from tests.akash.console_mock import ConsoleMock
from tests.conftest import ForagerProcess
from tests.fault_proxy import FaultProxy
from tests.loopback import LoopbackServer
from wallets.chain import Chain
from wallets.errors import ChainError
from wallets.keystore import create_keystore

KEY = "alchemy-key-0123456789abcdef"
PASSWORD = "basic-auth-pw-7531"
QUERY_KEY = "query-key-fedcba9876543210"
RPC_URL = f"https://eth-mainnet.g.alchemy.com/v2/{KEY}"
FALLBACK_URL = f"https://forager:{PASSWORD}@rpc.example.org:8545/rpc?apikey={QUERY_KEY}"
SECRETS = (KEY, PASSWORD, QUERY_KEY)


def live_chain(monkeypatch: pytest.MonkeyPatch, *urls: str) -> None:
    """Settings for a complete live chain whose RPC URLs are `urls` (the first, then fallbacks)."""
    monkeypatch.setenv("FORAGER_CHAIN__RPC_URL", urls[0])
    monkeypatch.setenv("FORAGER_CHAIN__RPC_URLS", json.dumps(list(urls[1:])))
    monkeypatch.setenv("FORAGER_CHAIN__CHAIN_ID", "8453")
    for name in ("STABLE_TOKEN", "RISK_TOKEN", "POOL", "ROUTER", "LANDLORD"):
        monkeypatch.setenv(f"FORAGER_CHAIN__{name}", "0x" + "11" * 20)


def sdl_env(text: str) -> dict[str, str]:
    sdl = YAML(typ="safe").load(text)
    return dict(item.split("=", 1) for item in sdl["services"]["agent"]["env"])


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_a_live_chain_sdl_without_consent_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """`akash sdl` for a live chain stops, says the provider would see the URL and how to
    consent, and prints no SDL and no key."""
    live_chain(monkeypatch, RPC_URL, FALLBACK_URL)
    assert main(["akash", "sdl"]) == EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == ""
    assert "FORAGER_CHAIN__RPC_URL" in err and "provider" in err
    assert f"{SHARE_RPC_URL_VAR}=true" in err and "--share-rpc-url" in err
    assert_no_secret(err)


def test_settings_env_without_consent_raises_a_config_error_without_the_url(
    monkeypatch: pytest.MonkeyPatch,
):
    """The guard sits in `settings_env` itself, so every SDL it feeds is covered."""
    live_chain(monkeypatch, RPC_URL)
    with pytest.raises(ConfigError, match="FORAGER_CHAIN__RPC_URL") as info:
        settings_env(load_settings())
    assert_no_secret(str(info.value))
    assert "alchemy" not in str(info.value)


@pytest.mark.parametrize("consent", ["flag", "setting"])
def test_with_consent_the_urls_ship_and_read_back_as_they_were(
    consent: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """With --share-rpc-url or FORAGER_AKASH__SHARE_RPC_URL the SDL carries the RPC URL and its
    fallbacks (a JSON list), the SDL is valid, and the agent's settings parse them back."""
    live_chain(monkeypatch, RPC_URL, FALLBACK_URL)
    argv = ["akash", "sdl"]
    if consent == "flag":
        argv.append("--share-rpc-url")
    else:
        monkeypatch.setenv(SHARE_RPC_URL_VAR, "true")
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert validate_document(YAML(typ="safe").load(text), load_schema(None)) == []
    env = sdl_env(text)
    assert env["FORAGER_CHAIN__RPC_URL"] == RPC_URL
    for name, value in env.items():  # the container reads exactly these
        monkeypatch.setenv(name, value)
    assert load_settings().chain.urls() == [RPC_URL, FALLBACK_URL]


def test_an_arena_sdl_needs_no_consent(capsys: pytest.CaptureFixture[str]):
    """Without a live chain there is no RPC URL to share: the SDL renders as before."""
    assert main(["akash", "sdl"]) == 0
    assert "FORAGER_CHAIN__" not in capsys.readouterr().out


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`fleet` commands configure logging onto the captured stdout; put the defaults back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_fleet_deploy_without_consent_leases_nothing(
    console: ConsoleMock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
):
    """`fleet deploy` for a live chain stops before the first deployment; with the flag, the
    deployment's SDL carries the URL."""
    live_chain(monkeypatch, RPC_URL)
    monkeypatch.setenv("FORAGER_AKASH__API_KEY", console.api_key)
    monkeypatch.setenv("FORAGER_AKASH__CONSOLE_URL", console.url)
    argv = ["fleet", "deploy", "--agents", "1", "--strategies", "hold", "--dir", str(tmp_path)]
    assert main(argv) == EXIT_ERROR
    assert console.deployments == {}
    assert "--share-rpc-url" in capsys.readouterr().err
    console.bids_after_polls = 0
    assert main([*argv, "--share-rpc-url", "--bid-timeout", "30"]) == 0
    (deployment,) = console.deployments.values()
    assert sdl_env(deployment["sdl"])["FORAGER_CHAIN__RPC_URL"] == RPC_URL


@pytest.mark.parametrize("url", [f"wss://rpc.example.org/{KEY}", f"rpc.example.org/{KEY}"])
def test_an_rpc_url_that_is_not_http_is_named_and_not_echoed(
    url: str, monkeypatch: pytest.MonkeyPatch
):
    """A bad RPC URL names its setting and what was expected, and keeps the value to itself."""
    monkeypatch.setenv("FORAGER_CHAIN__RPC_URL", url)
    with pytest.raises(ConfigError, match=r"FORAGER_CHAIN__RPC_URL: .*http:// or https://") as info:
        load_settings()
    assert_no_secret(str(info.value))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (RPC_URL, "https://eth-mainnet.g.alchemy.com/…"),
        (f"https://mainnet.infura.io/v3/{KEY}", "https://mainnet.infura.io/…"),
        (f"https://rpc.example.org/rpc?apikey={QUERY_KEY}", "https://rpc.example.org/…"),
        (f"https://forager:{PASSWORD}@rpc.example.org", "https://…@rpc.example.org"),
        (FALLBACK_URL, "https://…@rpc.example.org:8545/…"),
        (f"https://{KEY}@rpc.example.org/", "https://…@rpc.example.org"),
        (f"https://rpc.example.org#{KEY}", "https://rpc.example.org/…"),
        ("https://rpc.example.org:8545", "https://rpc.example.org:8545"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
        (f"http://[::1]:8545/{KEY}", "http://[::1]:8545/…"),
        (KEY, "…"),
        (f"http://[::1/{KEY}", "…"),
    ],
)
def test_redact_url_keeps_scheme_host_and_port(url: str, shown: str):
    """Userinfo, path, query and fragment are replaced; not-a-URL shows nothing of itself."""
    assert redact_url(url) == shown


def test_redact_urls_cuts_every_url_in_a_message():
    """An upstream message keeps its words; each URL in it keeps only scheme, host and port."""
    message = f"401 Client Error: Unauthorized for url: {RPC_URL}. Retried '{FALLBACK_URL}', no"
    assert redact_urls(message) == (
        "401 Client Error: Unauthorized for url: https://eth-mainnet.g.alchemy.com/…. "
        "Retried 'https://…@rpc.example.org:8545/…', no"
    )


def test_a_refused_rpc_call_is_a_chain_error_without_the_url():
    """An endpoint answering 401 makes requests put the full URL in its error; the ChainError
    the caller sees shows the endpoint as scheme, host and port only."""

    class Refuses(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = LoopbackServer(Refuses)
    host = server.url.removeprefix("http://")
    keyed = f"http://forager:{PASSWORD}@{host}/v2/{KEY}?apikey={QUERY_KEY}"
    try:
        with pytest.raises(ChainError) as info:
            Chain([keyed]).head()
    finally:
        server.close()
    message = str(info.value)
    assert "401" in message and f"http://…@{host}/…" in message
    assert_no_secret(message)


def test_a_live_agent_shows_its_rpc_urls_nowhere(
    arena: LocalArena, tmp_path: Path, forager: list[ForagerProcess]
):
    """A live agent whose RPC URL and fallback carry keys logs them as scheme, host and port,
    and no log line or HTTP answer holds a key, through a chain outage and failover."""
    info = arena.info
    assert info is not None
    proxy = FaultProxy(arena.anvil.url)  # answers on any path, like a keyed provider URL
    keyed = f"{proxy.url}/v2/{KEY}"
    fallback = f"http://forager:{PASSWORD}@127.0.0.1:{free_port()}/rpc?apikey={QUERY_KEY}"
    keystore, password_file = tmp_path / "k.json", tmp_path / "pw"
    password_file.write_text("live-pass-1")
    account = create_keystore(keystore, "live-pass-1")
    arena.fund(account.address, native_wei=10**19, stable=500 * 10**6, risk=0)
    env = {
        "FORAGER_STRATEGY": "hold",
        "FORAGER_CHAIN__RPC_URL": keyed,
        "FORAGER_CHAIN__RPC_URLS": json.dumps([fallback]),
        "FORAGER_CHAIN__CHAIN_ID": str(info.chain_id),
        "FORAGER_CHAIN__STABLE_TOKEN": info.stable_token,
        "FORAGER_CHAIN__RISK_TOKEN": info.risk_token,
        "FORAGER_CHAIN__POOL": info.pool,
        "FORAGER_CHAIN__ROUTER": info.router,
        "FORAGER_CHAIN__LANDLORD": info.landlord,
        "FORAGER_WALLET__KEYSTORE": str(keystore),
        "FORAGER_WALLET__PASSWORD_FILE": str(password_file),
    }
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.3", env=env)
    forager.append(agent)
    answers: list[str] = []
    try:
        assert agent.wait_event("agent_started")["rpc_url"] == f"{proxy.url}/…"
        agent.wait_event("tick_finished", tick=1)
        proxy.mode = "drop"  # the fallback is down too: every endpoint fails
        assert "RPC unreachable" in agent.wait_event("tick_held")["error"]
        agent.wait_event("rpc_failed", url=f"{proxy.url}/…")
        answers = [agent.get(path).text for path in ("/readyz", "/healthz", "/state")]
        assert "unreachable" in answers[0]
        held = len([e for e in agent.events() if e["event"] == "tick_finished"])
        proxy.mode = "pass"
        agent.wait_event("tick_finished", tick=held)
    finally:
        proxy.close()
        agent.terminate()
    assert_no_secret("\n".join([*agent.lines, *answers]))
