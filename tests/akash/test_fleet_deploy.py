"""`forager fleet deploy`: one Akash deployment per agent through the Console (mock checked
against the OpenAPI); the remote leaderboard asks each running agent for its life, and the
landlord's book for its fate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from agent.populations.akash_fleet import deploy_fleet, supervise_remote
from agent.populations.landlord import final_dir
from agent.populations.landlord_book import CLOSED, OVERDRAWN, PROVIDER_CLOSED, Book, Tenant
from agent.populations.landlord_service import BOOK_FILE
from agent.populations.leaderboard import landlord_fates, leaderboard, remote_leaderboard
from akash.console import ConsoleClient
from akash.sdl import SdlOptions
from akash.validate import load_schema, validate_document
from tests.akash.console_mock import ConsoleMock, sdl_env
from tests.conftest import REPO, ForagerProcess
from wallets.keystore import create_keystore, decrypt_keystore


def test_each_agent_gets_its_own_deployment_with_its_strategy(console: ConsoleMock, tmp_path: Path):
    done = deploy_fleet(
        ConsoleClient("test-key", base_url=console.url),
        tmp_path,
        agents=3,
        strategies=["llm", "momentum"],
        options=SdlOptions(image="you/openforager:cpu"),
        base_env={"FORAGER_INTERVAL_S": "5"},
        generation=2,
        bid_timeout_s=30,
        poll_s=0.01,
    )
    assert [d["strategy"] for d in done] == ["llm", "momentum", "llm"]
    assert len({d["dseq"] for d in done}) == 3 and all(d["state_url"] for d in done)
    schema = load_schema(None)
    for entry in done:
        sdl = YAML(typ="safe").load(console.deployments[entry["dseq"]]["sdl"])
        assert validate_document(sdl, schema) == []
        env = sdl["services"]["agent"]["env"]
        assert f"FORAGER_STRATEGY={entry['strategy']}" in env and "FORAGER_GENERATION=2" in env
    assert json.loads((tmp_path / "deployments.json").read_text()) == done
    assert len(list((tmp_path / "manifests").glob("deployment-*.json"))) == 3


def test_a_member_without_bids_is_recorded_and_the_rest_go_on(console: ConsoleMock, tmp_path: Path):
    console.bids = []
    done = deploy_fleet(
        ConsoleClient("test-key", base_url=console.url),
        tmp_path,
        agents=2,
        strategies=["hold"],
        options=SdlOptions(),
        base_env={},
        bid_timeout_s=0.05,
        poll_s=0.01,
    )
    assert all("no open bid" in d["error"] for d in done) and all("dseq" not in d for d in done)


def test_the_remote_leaderboard_reads_each_agent_over_http(
    tmp_path: Path, forager: list[ForagerProcess]
):
    agents = {}
    for name, strategy in (("agent-00", "hold"), ("agent-01", "random")):
        proc = ForagerProcess(
            tmp_path / "local" / name, "--strategy", strategy, "--interval", "0.1"
        )
        forager.append(proc)
        agents[name] = proc
    for proc in agents.values():
        proc.wait_event("tick_finished", tick=5)
    record = tmp_path / "deployments.json"
    entries = [{"name": n, "state_url": p.url + "/state"} for n, p in agents.items()]
    entries.append({"name": "agent-02", "error": "no open bid"})
    record.write_text(json.dumps(entries))
    remote = {life.name: life for life in remote_leaderboard(record)}
    assert set(remote) == {"agent-00", "agent-01"}
    for proc in agents.values():
        assert proc.terminate() == 0
    local = {life.name: life for life in leaderboard(tmp_path / "local")}
    for name, life in remote.items():
        assert life.strategy == local[name].strategy
        assert life.agent_id == local[name].agent_id
        assert life.ticks_lived <= local[name].ticks_lived  # it may have ticked once more
        assert len(life.worth) == life.ticks_lived


def test_deploy_with_keys_ships_each_agent_its_own_wallet(console: ConsoleMock, tmp_path: Path):
    done = deploy_fleet(
        ConsoleClient("test-key", base_url=console.url),
        tmp_path,
        agents=2,
        strategies=["hold"],
        options=SdlOptions(),
        base_env={},
        bid_timeout_s=30,
        poll_s=0.01,
        with_keys=True,
    )
    for entry in done:
        env = sdl_env(console, entry["dseq"])
        account = decrypt_keystore(
            env["FORAGER_WALLET__KEYSTORE_JSON"], env["FORAGER_WALLET__PASSWORD"], "sdl"
        )
        assert account.address == entry["address"]
        assert Path(entry["keystore"]).stat().st_mode & 0o777 == 0o600
    assert done[0]["address"] != done[1]["address"]


def test_children_funded_on_akash_are_deployed_with_the_derived_wallet(
    console: ConsoleMock, tmp_path: Path, forager: list[ForagerProcess]
):
    """A deployed parent (here a real agent on its own arena) funds child 1 and lists it in
    /state; `supervise_remote` derives the same wallet from the operator's copy of the parent's
    keystore and deploys the child as generation 1 with the parent's id."""
    keys = tmp_path / "keys"
    keystore, password_file = keys / "agent-00.json", keys / "agent-00.password"
    password_file.parent.mkdir()
    password_file.write_text("parent-pass-123")
    create_keystore(keystore, "parent-pass-123")
    parent = ForagerProcess(
        tmp_path / "data",
        "--strategy",
        "hold",
        "--interval",
        "0.3",
        "--keystore",
        str(keystore),
        "--password-file",
        str(password_file),
        env={
            "FORAGER_REPLICATION__ENABLED": "true",
            "FORAGER_REPLICATION__MIN_RUNWAY": "10",
            "FORAGER_REPLICATION__MAX_CHILDREN": "1",
        },
    )
    forager.append(parent)
    created = parent.wait_event("child_created")
    record = tmp_path / "deployments.json"
    record.write_text(
        json.dumps(
            [
                {
                    "name": "agent-00",
                    "strategy": "hold",
                    "state_url": parent.url + "/state",
                    "keystore": str(keystore),
                    "password_file": str(password_file),
                }
            ]
        )
    )
    client = ConsoleClient("test-key", base_url=console.url)
    added = supervise_remote(client, record, SdlOptions(), {}, bid_timeout_s=30, poll_s=0.01)
    assert [a["name"] for a in added] == ["agent-00.c1"]
    child = added[0]
    assert child["address"] == created["address"] and child["generation"] == 1
    env = sdl_env(console, child["dseq"])
    wallet = decrypt_keystore(
        env["FORAGER_WALLET__KEYSTORE_JSON"], env["FORAGER_WALLET__PASSWORD"], "sdl"
    )
    assert wallet.address == created["address"]  # the very wallet the parent funded
    assert env["FORAGER_PARENT_ID"] == parent.get("/state").json()["agent_id"]
    assert env["FORAGER_GENERATION"] == "1" and env["FORAGER_STRATEGY"] == "hold"
    assert supervise_remote(client, record, SdlOptions(), {}, poll_s=0.01) == []  # once only
    assert len(json.loads(record.read_text())) == 2
    assert parent.terminate() == 0


def _tenant(book: Book, dseq: str, **fate: Any) -> None:
    """Put a tenant in the book and record its fate as a landlord's pass would."""
    book.add(Tenant(dseq, "0x" + dseq.rjust(40, "0"), 1000, 10, "1", 5, 1, 0))
    if fate:
        book.update(dseq, **fate)


def _board(record: Path, out: Path, *flags: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """`forager fleet leaderboard --deployments` (plain table, JSON rows by name)."""
    env = {k: v for k, v in os.environ.items() if k != "FORAGER_LANDLORD__DIR"}
    cmd = [sys.executable, "-m", "agent.cli", "fleet", "leaderboard", "--deployments", str(record)]
    cmd += ["--json", str(out), "--chart", str(out.with_suffix(".png")), *flags]
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index(" #  agent") :]  # after the unreachable ones' warnings
    return table, {row["name"]: row for row in json.loads(out.read_text())}


def test_the_remote_leaderboard_shows_each_lifes_fate_from_the_landlords_book(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """With --landlord-dir: alive, died on tick N with the lease closed at block M (the life read
    from the final state the landlord kept, as the agent answers no more), provider-closed,
    overdrawn, evicted, or not in the book; without it the board is as before."""
    agents = {}
    for name in ("agent-00", "agent-01"):
        proc = ForagerProcess(tmp_path / "local" / name, "--strategy", "hold", "--interval", "0.1")
        forager.append(proc)
        agents[name] = proc
    for proc in agents.values():
        proc.wait_event("tick_finished", tick=5)
    landlord, gone = tmp_path / "landlord", "http://127.0.0.1:9/state"
    kept = final_dir(landlord, "3002")  # what the landlord kept when it closed agent-02's lease
    kept.mkdir(parents=True)
    (kept / "state.json").write_text(agents["agent-00"].get("/state").text)
    (kept / "series.json").write_text(agents["agent-00"].get("/series").text)
    book = Book(landlord / BOOK_FILE)
    _tenant(book, "3001")
    _tenant(book, "3002", status=CLOSED, fate="died", died_tick=7, closed_block=123)
    _tenant(book, "3004", status=PROVIDER_CLOSED, fate=PROVIDER_CLOSED)
    _tenant(book, "3005", status=OVERDRAWN, fate=OVERDRAWN)
    _tenant(book, "3006", status=CLOSED, fate="evicted", closed_block=200)
    record = tmp_path / "deployments.json"
    urls = {"3001": agents["agent-00"].url, "3003": agents["agent-01"].url}
    record.write_text(json.dumps([
        {"name": f"agent-0{i}", "dseq": dseq, "state_url": urls.get(dseq, gone)}
        for i, dseq in enumerate(("3001", "3003", "3002", "3004", "3005", "3006"))
    ] + [{"name": "agent-09", "error": "no open bid"}]))  # fmt: skip
    table, rows = _board(record, tmp_path / "board.json", "--landlord-dir", str(landlord))
    assert {name: row["landlord"] for name, row in rows.items()} == {
        "agent-00": "alive",
        "agent-01": "not in the landlord's book",
        "agent-02": "died on tick 7, lease closed at block 123",
    }
    assert table.splitlines()[0].split()[-2:] == ["fate", "landlord"]
    (line,) = [line for line in table.splitlines() if " agent-02 " in line]
    assert line.endswith("  died on tick 7, lease closed at block 123")
    assert landlord_fates(record, book) == {
        "agent-00": "alive",
        "agent-01": "not in the landlord's book",
        "agent-02": "died on tick 7, lease closed at block 123",
        "agent-03": "closed by the provider",
        "agent-04": "closed by the provider, overdrawn",
        "agent-05": "evicted: rent unpaid, lease closed at block 200",
    }
    book.close()
    table, rows = _board(record, tmp_path / "plain.json")
    assert set(rows) == {"agent-00", "agent-01"} and "landlord" not in rows["agent-00"]
    assert "landlord" not in table
    for proc in agents.values():
        assert proc.terminate() == 0
