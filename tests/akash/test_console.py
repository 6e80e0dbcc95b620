"""The Console API client and the deploy flow, against a loopback mock checked by the OpenAPI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from akash.console import Bid, ConsoleClient, pick_bid
from akash.deploy import deploy
from akash.errors import ConsoleError, InsufficientFunds, NoBids, NotAuthorized
from tests.akash.console_mock import USER_ID, ConsoleMock, manifest_of

SDL = "---\nversion: '2.0'\n"


@pytest.fixture
def mock() -> Iterator[ConsoleMock]:
    made = ConsoleMock()
    yield made
    made.close()
    assert made.violations == []  # every request and answer matched the OpenAPI schemas


def client(mock: ConsoleMock, key: str = "test-key") -> ConsoleClient:
    return ConsoleClient(key, base_url=mock.url)


def test_deploy_waits_for_bids_leases_the_cheapest_and_keeps_the_manifest(
    mock: ConsoleMock, tmp_path: Path
):
    """create → bids (after a wait) → cheapest lease → status with the public URI."""
    done = deploy(client(mock), SDL, tmp_path, poll_s=0.01)
    assert done.provider == "akash1cheap" and done.price == Decimal("900.5")
    assert done.state_url == f"http://{done.dseq}.akash1cheap.example/state"
    assert manifest_of(done.manifest_file) == f'[{{"name":"{done.dseq}"}}]'
    assert stat.S_IMODE(done.manifest_file.stat().st_mode) == 0o600
    assert mock.calls.count("GET /v1/bids") == 2  # one empty poll, then the bids
    assert mock.deployments[done.dseq]["sdl"] == SDL


def test_gpu_deploy_takes_a_bid_offering_that_gpu(mock: ConsoleMock, tmp_path: Path):
    """With --gpu h100 only the bid that offers an H100 is acceptable."""
    done = deploy(client(mock), SDL, tmp_path, gpu="h100", poll_s=0.01)
    assert done.provider == "akash1dear"


def test_no_bids_in_time_closes_the_deployment(mock: ConsoleMock, tmp_path: Path):
    """No acceptable bid before the timeout: a clear error, and the deployment is closed."""
    mock.bids_after_polls = 10**6
    with pytest.raises(NoBids, match="within 0 s; the deployment was closed"):
        deploy(client(mock), SDL, tmp_path, bid_timeout_s=0.05, poll_s=0.01)
    (dseq,) = mock.deployments
    assert mock.deployments[dseq]["state"] == "closed"


def test_insufficient_funds_and_bad_key_are_clear(mock: ConsoleMock, tmp_path: Path):
    """A 400 about funds and a 401 become errors that say what to do; nothing is retried."""
    mock.fail["create"] = (400, "Insufficient balance to cover the deposit")
    with pytest.raises(InsufficientFunds, match="top up the managed wallet"):
        deploy(client(mock), SDL, tmp_path)
    assert mock.calls.count("POST /v1/deployments") == 1
    with pytest.raises(NotAuthorized, match="FORAGER_AKASH__API_KEY"):
        client(mock, key="wrong").deployment("1001")
    with pytest.raises(NotAuthorized):
        ConsoleClient("", base_url=mock.url)


def test_status_topup_and_close(mock: ConsoleMock, tmp_path: Path):
    """After a deploy: status shows the lease, a deposit is accepted, close succeeds."""
    api = client(mock)
    done = deploy(api, SDL, tmp_path, poll_s=0.01)
    status = api.deployment(done.dseq)
    assert status.state == "active" and status.leases[0].uris
    assert api.deposit(done.dseq, 5.5).dseq == done.dseq
    assert api.close(done.dseq) is True
    assert api.deployment(done.dseq).state == "closed"


def test_auto_top_up_is_created_then_switched_for_the_keys_user(mock: ConsoleMock):
    """No settings yet: None, then created on; switched off by PATCH; all for the API key's own
    user, never named (the mock flags any other user)."""
    dseq = mock.lease()
    console = client(mock)
    assert console.auto_top_up(dseq) is None
    assert console.set_auto_top_up(dseq, True) is True
    assert console.set_auto_top_up(dseq, True) is True  # idempotent
    assert console.set_auto_top_up(dseq, False) is False
    assert console.auto_top_up(dseq) is False
    assert mock.settings[dseq]["autoTopUpEnabled"] is False
    assert mock.calls.count("POST /v2/deployment-settings") == 1
    assert mock.calls.count(f"PATCH /v2/deployment-settings/{dseq}") == 2
    assert mock.settings[dseq]["userId"] == USER_ID and not mock.violations
    mock.fail["settings_get"] = (500, "down")
    with pytest.raises(ConsoleError, match="answered 500"):
        console.auto_top_up(dseq)


def test_unreachable_api_is_a_console_error():
    """A Console URL where nothing listens fails with the operation named."""
    api = ConsoleClient("k", base_url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(ConsoleError, match="GET /v1/deployments/1: Console API unreachable"):
        api.deployment("1")


def test_pick_bid_is_cheapest_open_within_price():
    """Closed bids never win; ties break by provider; a price cap filters."""
    bids = [
        Bid("p2", "1", 1, 1, "open", "uact", Decimal(5)),
        Bid("p1", "1", 1, 1, "open", "uact", Decimal(5)),
        Bid("p0", "1", 1, 1, "closed", "uact", Decimal(1)),
        Bid("p3", "1", 1, 1, "open", "uact", Decimal(9)),
    ]
    best = pick_bid(bids)
    assert best is not None and best.provider == "p1"
    assert pick_bid(bids, max_price=Decimal(4)) is None


def test_cli_deploy_status_topup_close(mock: ConsoleMock, tmp_path: Path):
    """`forager akash deploy|status|topup|close` against the mock, key from the environment."""
    sdl = tmp_path / "deploy.yaml"
    sdl.write_text(SDL)
    env = {
        **os.environ,
        "FORAGER_AKASH__API_KEY": "test-key",
        "FORAGER_AKASH__CONSOLE_URL": mock.url,
    }
    cli = [sys.executable, "-m", "agent.cli", "akash"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )

    done = run("deploy", "--sdl", str(sdl), "--bid-timeout", "30")
    assert done.returncode == 0, done.stderr
    dseq = done.stdout.split()[1]
    assert "leased from akash1cheap" in done.stdout and "/state" in done.stdout
    assert "test-key" not in done.stdout + done.stderr
    assert run("status", dseq).stdout.startswith(f"dseq {dseq}: active")
    assert run("topup", dseq, "--usd", "2.5").returncode == 0
    assert "closed: True" in run("close", dseq).stdout
    env["FORAGER_AKASH__API_KEY"] = "wrong"
    refused = run("status", dseq)
    assert refused.returncode == 2 and "401" in refused.stderr and "wrong" not in refused.stderr
