"""Kill storms: `forager run` on a shared arena, killed -9 in the middle of its ticks and
restarted on the same data dir, a few rounds, with a scripted decider and with the model.

Afterwards, read back with independent tools: every transaction the agent's key put on the
chain (found by nonce with `cast`) belongs to exactly one tick record; tick numbers run from 0
with no gap and no repeat; the interrupted ticks were finished, not decided again; and
`dataset export` has one step per tick record.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.runtime.store import Store
from tests.conftest import REPO, ForagerProcess, cast, require_binary

# Where each round's kill lands: the stage the tick's journal row has reached; "swap" is a
# decided swap (its approvals and the swap itself are then on their way out). Rent paid by the
# runtime is killed mid-way in tests/agent/runtime/test_recovery.py: rule strategies pay it
# themselves when it falls due.
TARGETS = ("sensed", "swap", "acted", "swap", "decided")


@pytest.fixture
def shared_arena(tmp_path: Path) -> Iterator[Path]:
    """`forager arena up`, as an operator runs it beside agents: its connection file."""
    require_binary("anvil")
    out = tmp_path / "arena.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "arena", "up", "--out", str(out), "--seed", "11"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not out.exists():
            assert proc.poll() is None, "forager arena up exited"
            assert time.monotonic() < deadline, "forager arena up wrote no connection file"
            time.sleep(0.1)
        yield out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def open_stage(state: Path) -> tuple[str, dict[str, Any]] | None:
    """The stage the agent's tick in progress has journalled, read as another process would."""
    if not state.exists():
        return None
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT stage, detail FROM open_tick").fetchone()
    except sqlite3.Error:
        return None  # not created yet, or busy: look again
    return None if row is None else (str(row[0]), json.loads(row[1]))


def reached(target: str, stage: str, detail: dict[str, Any]) -> bool:
    if target == "swap":
        action = detail.get("verdict", {}).get("action") or {}
        return stage == "decided" and action.get("kind") == "swap"
    return stage == target


def kill_mid_tick(agent: ForagerProcess, state: Path, target: str, patience_s: float) -> str:
    """SIGKILL the agent as soon as its open tick reaches `target` (after `patience_s`, at
    whatever stage a tick is in); return the stage it was killed at."""
    deadline = time.monotonic() + patience_s
    while True:
        assert agent.proc.poll() is None, "\n".join(agent.lines[-30:])
        seen = open_stage(state)
        if seen is not None and (reached(target, *seen) or time.monotonic() > deadline):
            agent.proc.kill()
            agent.wait(timeout=30)
            return seen[0]
        time.sleep(0.001)


def storm(data_dir: Path, env: dict[str, str], rounds: int, patience_s: float) -> list[str]:
    """Kill the agent mid-tick `rounds` times, then let a last run finish cleanly."""
    args = ("--interval", "0.5")
    killed = []
    for target in TARGETS[:rounds]:
        agent = ForagerProcess(data_dir, *args, env=env)
        try:
            killed.append(kill_mid_tick(agent, data_dir / "state.sqlite", target, patience_s))
        finally:
            agent.kill()
    last = ForagerProcess(data_dir, *args, "--ticks", "3", env=env)
    assert last.wait(timeout=600) == 0, "\n".join(last.lines[-30:])
    return killed


def on_chain(rpc_url: str, address: str) -> list[str]:
    """Every transaction `address` sent, by nonce, from the chain itself (cast, not web3)."""
    count = int(cast("nonce", address, "--rpc-url", rpc_url))
    method = "ots_getTransactionBySenderAndNonce"
    return [
        json.loads(cast("rpc", method, address, str(n), "--rpc-url", rpc_url)) for n in range(count)
    ]


def recorded_hashes(store: Store, records: list[dict[str, Any]]) -> list[str]:
    """The hashes the life's records name: each tick's action and rent, and the rent sales
    and child fundings recorded beside them."""
    hashes = []
    for r in records:
        for outcome in (r["outcome"], r["rent_outcome"]):
            hashes += (outcome or {}).get("tx_hashes", [])
    for action in store.actions(limit=10_000):
        if action["kind"] in ("rent_sale", "replicate") and action["tick"] >= 0:
            hashes += action["tx_hashes"]
    return hashes


def check_life(data_dir: Path, arena_file: Path) -> list[dict[str, Any]]:
    """The storm's invariants; returns the life's records."""
    with Store.read(data_dir) as store:
        records = store.tick_records()
        hashes = recorded_hashes(store, records)
        assert store.interrupted() is None, "a tick was left unfinished"
    assert [r["tick"] for r in records] == list(range(len(records))), "gap or repeat"
    assert len(hashes) == len(set(hashes)), "a transaction is in two records"
    address = json.loads((data_dir / "keystore.json").read_text())["address"]
    rpc_url = json.loads(arena_file.read_text())["rpc_url"]
    chain = on_chain(rpc_url, "0x" + address.removeprefix("0x"))
    assert sorted(chain) == sorted(hashes), "the chain and the records disagree"
    out = data_dir.parent / "trajectories.jsonl"
    export = ["dataset", "export", "--data-dir", str(data_dir), "--format", "trajectories"]
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", *export, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (life,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(life["rewards"]) == len(records)
    return records


@pytest.mark.timeout(900)
def test_a_kill_storm_with_a_scripted_decider_loses_and_repeats_nothing(
    tmp_path: Path, shared_arena: Path
):
    """Five kills -9 mid-tick (random trading: swaps, liquidity, rent); every transaction on
    chain is in exactly one record, ticks have no gap or repeat, interrupted ticks are marked."""
    env = {"FORAGER_ARENA__FILE": str(shared_arena), "FORAGER_STRATEGY": "random"}
    data_dir = tmp_path / "agent"
    killed = storm(data_dir, env, rounds=5, patience_s=30)
    records = check_life(data_dir, shared_arena)
    interrupted = [r for r in records if r["interrupted_at"]]
    assert interrupted, f"no kill landed inside a tick (killed at {killed})"
    assert any(r["outcome"]["tx_hashes"] for r in interrupted), "no kill landed mid-transaction"
    assert len(interrupted) <= len(killed)
    sent = [h for r in records for h in r["outcome"]["tx_hashes"]]
    assert sent, "random trading sent nothing: the storm proves little"


@pytest.mark.timeout(900)
def test_a_kill_storm_with_the_model_loses_and_repeats_nothing(
    tmp_path: Path, shared_arena: Path, model_path: Path
):
    """Three kills -9 while the model decides, after it decided, and after it acted."""
    env = {
        "FORAGER_ARENA__FILE": str(shared_arena),
        "FORAGER_STRATEGY": "llm",
        "FORAGER_MODEL__PATH": str(model_path),
    }
    data_dir = tmp_path / "agent"
    killed = storm(data_dir, env, rounds=3, patience_s=90)
    records = check_life(data_dir, shared_arena)
    assert any(r["interrupted_at"] for r in records), f"no kill landed in a tick: {killed}"
