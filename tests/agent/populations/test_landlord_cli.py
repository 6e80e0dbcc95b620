"""`forager landlord` from the command line, adopting a fleet's record, and `fleet deploy` and
`fleet supervise` booking the agents they lease, on a real anvil arena and the Console mock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from agent.config import load_settings
from agent.populations.landlord_book import Book, Tenant
from agent.populations.landlord_service import BOOK_FILE, adopt
from arena.local import LocalArena
from tests.agent.populations.landlord_helpers import API_KEY, AgentStandIn, Payer, place_of
from tests.akash.console_mock import ConsoleMock, sdl_env
from tests.conftest import REPO
from wallets.keystore import create_keystore, derive_child_key
from wallets.tokens import to_base


def test_adopt_adds_a_fleets_leased_agents_once_on_the_deployed_terms(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """From deployments.json: the address from the record or /state; none twice; errors skipped."""
    keyed, reachable = Payer(arena, tmp_path).address, Payer(arena, tmp_path).address
    agent.address = reachable
    record = tmp_path / "deployments.json"
    entries = [
        {"name": "agent-00", "dseq": "2001", "address": keyed, "state_url": None},
        {"name": "agent-01", "dseq": "2002", "state_url": agent.url + "/state"},
        {"name": "agent-02", "dseq": "2003", "state_url": "http://127.0.0.1:9/state"},
        {"name": "agent-03", "error": "no open bid"},
    ]
    record.write_text(json.dumps(entries))
    settings = load_settings(interval_s=2.0, rent={"amount": "0.5", "period_ticks": 7})
    book = Book(tmp_path / BOOK_FILE)
    done = dict(adopt(book, place_of(arena), record, settings))
    assert set(done) == {"2001", "2002", "2003"}
    assert done["2003"].startswith("skipped")
    assert {t.dseq: t.address for t in book.tenants()} == {"2001": keyed, "2002": reachable}
    tenant = book.tenant("2002")
    assert (tenant.amount, tenant.period_ticks, tenant.interval_s) == (
        500_000,
        7,
        "2.0",
    )  # 6 decimals
    assert dict(adopt(book, place_of(arena), record, settings)).keys() == {"2003"}


def _forager(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "landlord", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_the_cli_adds_a_tenant_runs_a_pass_and_serves_the_tenants(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """`landlord add`, `run --once`, `show`, then `run --port 0`: /healthz, /tenants and
    /metrics."""
    info = arena.info
    assert info is not None
    arena_file = tmp_path / "arena.json"
    info.dump(arena_file)
    dseq = console.lease(price="1000")
    env = {
        "FORAGER_LANDLORD__DIR": str(tmp_path / "landlord"),
        "FORAGER_AKASH__API_KEY": API_KEY,
        "FORAGER_AKASH__CONSOLE_URL": console.url,
    }
    where = ["--arena", str(arena_file)]
    added = _forager(
        "add", "--address", Payer(arena, tmp_path).address, "--dseq", dseq,
        "--rent-amount", "0.001", "--period-ticks", "10", "--interval", "5",
        "--grace-ticks", "5", *where, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    once = _forager("run", "--once", *where, env=env)
    assert once.returncode == 0, once.stderr
    events = [json.loads(line) for line in once.stdout.splitlines()]
    (finished,) = [e for e in events if e.get("event") == "landlord_pass_finished"]
    assert finished["tenants"] == 1
    assert finished["trace_id"]  # logged inside the pass's OpenTelemetry span
    shown = _forager("show", env=env)
    assert dseq in shown.stdout
    assert "1000 uact" in shown.stdout  # the accepted bid, recorded
    cmd = [sys.executable, "-m", "agent.cli", "landlord", "run", "--port", "0", *where]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    try:
        port = int(_wait_event(proc, "http_listening")["port"])
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        _wait_event(proc, "landlord_pass_finished")
        (row,) = httpx.get(f"http://127.0.0.1:{port}/tenants", timeout=10).json()
        assert (row["dseq"], row["status"], row["bid"]) == (dseq, "active", "1000 uact/block")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        samples = {
            (s.name, s.labels.get("status") or s.labels.get("dseq")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("forager_landlord_tenants", "active")] == 1, text
        assert samples[("forager_landlord_passes_total", None)] >= 1, text
        assert samples[("forager_landlord_escrow_hours", dseq)] > 0, text
        assert samples[("forager_landlord_periods_behind", dseq)] == 0, text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0


def _wait_event(proc: subprocess.Popen[str], name: str) -> dict[str, Any]:
    """Read the landlord's JSON lines until the event `name` (EOF fails the test)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        event: dict[str, Any] = json.loads(line)
        if event.get("event") == name:
            return event
    raise AssertionError(f"the landlord exited before {name}")


def _fleet(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`forager fleet ARGS` in `cwd`, with no landlord folder but the one `env` names."""
    base = {k: v for k, v in os.environ.items() if k != "FORAGER_LANDLORD__DIR"}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "fleet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**base, **env},
        check=False,
    )


def _live_chain(arena: LocalArena, console: ConsoleMock) -> dict[str, str]:
    """The arena as a live chain (what agents on Akash are given), and the Console mock."""
    info = arena.info
    assert info is not None
    env = {f"FORAGER_CHAIN__{name.upper()}": str(getattr(info, name)) for name in CHAIN_FIELDS}
    return env | {"FORAGER_AKASH__API_KEY": API_KEY, "FORAGER_AKASH__CONSOLE_URL": console.url}


CHAIN_FIELDS = ("rpc_url", "chain_id", "stable_token", "risk_token", "pool", "router", "landlord")


def _events(out: str, name: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
    return [event for event in lines if event.get("event") == name]


def _sdl_terms(console: ConsoleMock, dseq: str) -> tuple[int, int, int, Decimal]:
    """The rent terms a deployment's SDL gave its agent: base units, period, grace, interval."""
    env = sdl_env(console, dseq)
    amount = to_base(Decimal(env["FORAGER_RENT__AMOUNT"]), 6)
    period, grace = int(env["FORAGER_RENT__PERIOD_TICKS"]), int(env["FORAGER_RENT__GRACE_TICKS"])
    return amount, period, grace, Decimal(env["FORAGER_INTERVAL_S"])


def _terms(tenant: Tenant) -> tuple[int, int, int, Decimal]:
    return tenant.amount, tenant.period_ticks, tenant.grace_ticks, Decimal(tenant.interval_s)


def test_fleet_deploy_puts_each_leased_agent_in_a_configured_book_once(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """No book configured: one log line, nothing written. With --landlord-dir: every leased agent
    on its SDL's rent terms and its accepted bid; deploying again adds only the new ones."""
    console.bids_after_polls = 0
    env = _live_chain(arena, console)
    deploy = ("deploy", "--strategies", "hold", "--keys", "--share-rpc-url", "--bid-timeout", "30")
    priced = ("--price", "1000", "--rent-from-price")
    unbooked = _fleet(*deploy, "--agents", "1", "--dir", "plain", env=env, cwd=tmp_path)
    assert unbooked.returncode == 0, unbooked.stderr
    assert len(_events(unbooked.stdout, "landlord_book_not_configured")) == 1
    assert "landlord:" not in unbooked.stdout and not (tmp_path / "landlord").exists()
    book_dir = tmp_path / "books"
    booked = ("--landlord-dir", str(book_dir), *priced)
    first = _fleet(*deploy, "--agents", "2", "--dir", "a", *booked, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    entries = json.loads((tmp_path / "a" / "deployments.json").read_text())
    again = _fleet(*deploy, "--agents", "1", "--dir", "b", *booked, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    entries += json.loads((tmp_path / "b" / "deployments.json").read_text())
    assert again.stdout.count("landlord: dseq") == 1
    book = Book(book_dir / BOOK_FILE)
    tenants = {t.dseq: t for t in book.tenants()}
    assert {t.dseq: t.address for t in tenants.values()} == {
        e["dseq"]: e["address"] for e in entries
    }
    for dseq, tenant in tenants.items():
        assert _terms(tenant) == _sdl_terms(console, dseq)
        assert (tenant.bid_price, tenant.bid_denom) == ("900.5", "uact")  # the cheapest bid
    assert _sdl_terms(console, entries[0]["dseq"])[0] != to_base(Decimal(5), 6)  # from the cap
    book.close()


def test_fleet_supervise_books_the_children_it_leases_once_however_often_it_runs(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """A parent funds child 1; `supervise --once` leases it and books it (its derived wallet, its
    SDL's terms, its bid) and the parent on its recorded terms; a second pass adds nobody."""
    console.bids_after_polls = 0
    keystore, password_file = tmp_path / "keys" / "agent-00.json", tmp_path / "agent-00.password"
    keystore.parent.mkdir()
    password_file.write_text("parent-pass-123")
    parent = create_keystore(keystore, "parent-pass-123")
    agent.address = parent.address
    agent.extra = {"children": ["p.c1"], "strategy": "hold", "generation": 0, "agent_id": "p"}
    rent = {"amount": "0.25", "period_ticks": "3", "grace_ticks": "2", "interval_s": "7.5"}
    record = tmp_path / "deployments.json"
    record.write_text(json.dumps([{
        "name": "agent-00", "strategy": "hold", "dseq": console.lease(price="1000"),
        "price": "1000", "denom": "uact", "rent": rent, "address": parent.address,
        "state_url": agent.url + "/state", "keystore": str(keystore),
        "password_file": str(password_file),
    }]))  # fmt: skip
    env = _live_chain(arena, console) | {"FORAGER_LANDLORD__DIR": str(tmp_path / "landlord")}
    watch = ("supervise", "--deployments", str(record), "--once", "--share-rpc-url")
    first = _fleet(*watch, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    parent_entry, child_entry = json.loads(record.read_text())
    book = Book(tmp_path / "landlord" / BOOK_FILE)
    tenants = {t.dseq: t for t in book.tenants()}
    assert set(tenants) == {parent_entry["dseq"], child_entry["dseq"]}
    child = tenants[child_entry["dseq"]]
    derived = Account.from_key(derive_child_key(bytes(parent.key), 1)).address
    assert (child.address, child.bid_price) == (derived, "900.5")
    assert _terms(child) == _sdl_terms(console, child.dseq)
    assert _terms(tenants[parent_entry["dseq"]]) == (250_000, 3, 2, Decimal("7.5"))
    second = _fleet(*watch, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "landlord: dseq" not in second.stdout
    assert len(book.tenants()) == 2 and len(json.loads(record.read_text())) == 2
    book.close()
