"""`forager akash logs`: the Console finds the lease and mints a JWT, the provider streams."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from akash.console import ConsoleClient
from akash.deploy import deploy
from akash.errors import LeaseLogError
from akash.leaselogs import LogLine, logs_url, stream
from tests.akash.console_mock import ConsoleMock
from tests.akash.provider_mock import ProviderMock

SDL = "---\nversion: '2.0'\n"
TOKEN = "jwt-1-secret"  # the first token the Console mock mints: jwt-<n>-secret
LINES = [
    json.dumps({"event": "agent_started", "level": "info", "timestamp": "2026-11-25T10:00:00.1Z"}),
    json.dumps(
        {
            "event": "decision_made",
            "level": "info",
            "action": "buy_risk",
            "amount_pct": 10,
            "timestamp": "2026-11-25T10:00:01.2Z",
        }
    ),
    json.dumps(
        {
            "event": "rent_unpaid",
            "level": "warning",
            "owed": 5000000,
            "timestamp": "2026-11-25T10:00:02.3Z",
        }
    ),
    json.dumps(
        {
            "event": "tick_finished",
            "level": "info",
            "tick": 0,
            "outcome": "ok",
            "timestamp": "2026-11-25T10:00:03.4Z",
        }
    ),
]


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ProviderMock]:
    made = ProviderMock(tmp_path, lambda token: re.fullmatch(r"jwt-\d+-secret", token) is not None)
    made.lines = list(LINES)
    yield made
    made.close()


@pytest.fixture
def dseq(console: ConsoleMock, provider: ProviderMock, tmp_path: Path) -> str:
    client = ConsoleClient("test-key", base_url=console.url)
    done = deploy(client, SDL, tmp_path / "kept", bid_timeout_s=30, poll_s=0.01)
    console.provider_hosts[done.provider] = provider.host_uri
    return done.dseq


def cli(console: ConsoleMock, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FORAGER_AKASH__API_KEY": "test-key",
        "FORAGER_AKASH__CONSOLE_URL": console.url,
    }
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "akash", "logs", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_logs_come_from_the_provider_with_a_logs_scoped_token(
    console: ConsoleMock, provider: ProviderMock, dseq: str
):
    """Deployment -> lease -> provider hostUri -> JWT (scope logs) -> WSS stream, pretty-printed."""
    done = cli(console, dseq, "--tail", "3")
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert [line.split()[2] for line in shown] == ["decision_made", "rent_unpaid", "tick_finished"]
    assert "WARNING" in shown[1] and "owed=5000000" in shown[1]
    assert console.tokens == [{"ttl": 1800, "leases": {"access": "scoped", "scope": ["logs"]}}]
    assert provider.requests == [f"/lease/{dseq}/1/1/logs?follow=false&tail=3"]
    assert TOKEN not in done.stdout + done.stderr and "test-key" not in done.stdout + done.stderr


def test_logs_filter_by_event_and_level(console: ConsoleMock, provider: ProviderMock, dseq: str):
    assert cli(console, dseq, "--event", "tick_finished").stdout.count("\n") == 1
    warnings = cli(console, dseq, "--level", "warning").stdout.splitlines()
    assert len(warnings) == 1 and "rent_unpaid" in warnings[0]


def test_a_refused_token_is_a_clear_error_without_the_token(
    console: ConsoleMock, provider: ProviderMock, dseq: str
):
    provider.status = 403
    done = cli(console, dseq)
    assert done.returncode == 2
    assert "403" in done.stderr and "'logs' scope" in done.stderr
    assert "-secret" not in done.stderr and "Traceback" not in done.stderr


def test_no_active_lease_is_said(console: ConsoleMock, provider: ProviderMock, dseq: str):
    ConsoleClient("test-key", base_url=console.url).close(dseq)
    console.deployments[dseq]["leases"][0]["state"] = "closed"
    done = cli(console, dseq)
    assert done.returncode == 2 and "no active lease" in done.stderr


def test_follow_streams_until_the_provider_closes(provider: ProviderMock):
    """With follow the stream stays open for new lines; a normal close ends it quietly."""
    url = logs_url(provider.host_uri, "42", 1, 1, follow=True, tail=2, service="agent")
    assert url.startswith("wss://127.0.0.1:") and url.endswith("follow=true&tail=2&service=agent")
    lines = stream(url, TOKEN)
    assert next(lines) == LogLine("agent-5d9f-abcde", LINES[2])
    assert next(lines).message == LINES[3]
    provider.release.set()
    assert list(lines) == []


def test_unreachable_provider_and_bad_host_uri():
    with pytest.raises(LeaseLogError, match="unreachable"):
        list(stream("wss://127.0.0.1:9/lease/1/1/1/logs?tail=1", TOKEN, open_timeout_s=5))
    with pytest.raises(LeaseLogError, match="expected https://host"):
        logs_url("ftp://x", "1", 1, 1, follow=False, tail=1, service=None)
