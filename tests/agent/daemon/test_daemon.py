"""`forager run` as a user runs it: a real process, real anvil, real model, real HTTP."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from eth_account import Account
from web3 import Web3

from agent.config import default_cache_dir
from agent.model.cache import locate_default
from arena.local import LocalArena
from tests.conftest import ForagerProcess, cast
from tests.fault_proxy import FaultProxy
from wallets.keystore import create_keystore

REQUIRED_STATE_KEYS = {
    "agent_id",
    "alive",
    "tick",
    "block",
    "balances",
    "price",
    "net_worth",
    "runway_periods",
    "last_decision",
    "last_outcome",
    "rent",
}


def stored_ticks(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "state.sqlite") as db:
        return [row[0] for row in db.execute("SELECT tick FROM ticks ORDER BY tick")]


def test_runs_serves_state_and_stops_on_sigterm(tmp_path: Path, forager: list[ForagerProcess]):
    """While running it serves health, readiness, state and actions; SIGTERM exits 0."""
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.5")
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    health = agent.get("/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    assert health.json()["seconds_since_last_tick"] is not None
    assert agent.get("/readyz").json()["ready"] is True
    state = agent.get("/state").json()
    assert state.keys() >= REQUIRED_STATE_KEYS
    assert state["alive"] is True and state["tick"] >= 1
    assert state["balances"]["stable"] > 0 and state["price"] > 0
    assert state["last_decision"]["action"] in {"hold", "buy_risk", "sell_risk", "pay_rent"}
    actions = agent.get("/actions?limit=5").json()["actions"]
    rent = [a for a in actions if a["kind"] == "rent"]
    assert rent and rent[-1]["status"] == "ok" and rent[-1]["tx_hashes"][0].startswith("0x")
    assert agent.terminate() == 0
    events = [e["event"] for e in agent.events()]
    assert events.count("tick_started") == events.count("tick_finished")
    assert events[-1] == "agent_stopped"
    assert all(line.startswith("{") for line in agent.lines if line.strip())


def test_ticks_flag_stops_cleanly_and_restart_resumes_same_agent(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """--ticks N exits 0 after N ticks; a restart on the data dir is the same agent, older."""
    data = tmp_path / "data"
    first = ForagerProcess(data, "--ticks", "2", "--interval", "0.2")
    forager.append(first)
    assert first.wait() == 0
    started = first.wait_event("agent_started")
    last = [e for e in first.events() if e["event"] == "tick_finished"][-1]
    second = ForagerProcess(data, "--ticks", "2", "--interval", "0.2")
    forager.append(second)
    assert second.wait() == 0
    again = second.wait_event("agent_started")
    assert (again["agent_id"], again["address"]) == (started["agent_id"], started["address"])
    assert again["age"] == 2
    assert second.wait_event("arena_started")["fresh"] is False
    assert [e["tick"] for e in second.events() if e["event"] == "tick_started"] == [2, 3]
    assert stored_ticks(data) == [0, 1, 2, 3]
    with sqlite3.connect(data / "state.sqlite") as db:
        rows = db.execute("SELECT record FROM ticks WHERE tick IN (1, 2) ORDER BY tick").fetchall()
    before, after = (json.loads(r[0]) for r in rows)
    # The world persisted: the money at the end of run 1 is there at the start of run 2.
    assert after["observation"]["balances"]["stable"] == before["balances_after"]["stable"]
    assert last["tick"] == 1


def test_agent_that_cannot_pay_dies_and_says_so(tmp_path: Path, forager: list[ForagerProcess]):
    """Underfunded, it misses rent, dies after grace, serves alive=false, then exits 0."""
    agent = ForagerProcess(
        tmp_path / "data",
        "--interval",
        "0.3",
        "--linger",
        "4",
        env={"FORAGER_ARENA__AGENT_STABLE": "1", "FORAGER_RENT__GRACE_TICKS": "2"},
    )
    forager.append(agent)
    died = agent.wait_event("agent_died")
    assert died["tick"] == 2 and "rent unpaid" in died["cause"]
    state = agent.get("/state").json()
    assert state["alive"] is False and "rent unpaid" in state["death_cause"]
    health = agent.get("/healthz")
    assert health.status_code == 503 and health.json()["agent_alive"] is False
    assert health.json()["checks"]["alive"]["detail"].startswith("died: rent unpaid")
    assert agent.wait(timeout=30) == 0
    assert stored_ticks(tmp_path / "data") == [0, 1, 2]


def test_private_key_never_leaves_the_process(tmp_path: Path, forager: list[ForagerProcess]):
    """Neither key nor password is in the logs, HTTP responses, or any file the run wrote."""
    data = tmp_path / "data"
    agent = ForagerProcess(data, "--interval", "0.3")
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    bodies = [agent.get(p).text for p in ("/state", "/healthz", "/readyz", "/actions")]
    assert agent.terminate() == 0
    password = (data / "keystore.password").read_text()
    key = Account.decrypt(json.loads((data / "keystore.json").read_text()), password).hex()
    produced = [
        p.read_bytes().decode("latin-1")
        for p in data.rglob("*")
        if p.is_file() and p.name not in ("keystore.json", "keystore.password")
    ]
    everything = "\n".join([*agent.lines, *bodies, *produced]).lower()
    assert key.lower().removeprefix("0x") not in everything
    assert password.lower() not in everything
    assert oct((data / "keystore.json").stat().st_mode)[-3:] == "600"
    assert oct((data / "keystore.password").stat().st_mode)[-3:] == "600"


def test_second_daemon_on_same_data_dir_refuses(tmp_path: Path, forager: list[ForagerProcess]):
    """One signer per key: a second process on the same data dir exits non-zero."""
    data = tmp_path / "data"
    first = ForagerProcess(data, "--interval", "1")
    forager.append(first)
    first.wait_event("agent_started")
    second = ForagerProcess(data, "--interval", "1")
    forager.append(second)
    assert second.wait(timeout=60) == 2
    assert "in use by another forager" in second.wait_event("agent_start_failed")["error"]
    assert first.terminate() == 0


def test_missing_model_keeps_serving_and_retries(tmp_path: Path, forager: list[ForagerProcess]):
    """A missing model does not crash the container: /readyz names it, and a retry recovers."""
    model = tmp_path / "later.gguf"
    agent = ForagerProcess(
        tmp_path / "data",
        "--model",
        str(model),
        "--interval",
        "0.3",
        env={"FORAGER_START_RETRY_S": "1"},
    )
    forager.append(agent)
    failure = agent.wait_event("agent_start_failed")
    assert str(model) in failure["error"] and "GGUF" in failure["error"]
    ready = agent.get("/readyz")
    assert ready.status_code == 503 and any(str(model) in r for r in ready.json()["reasons"])
    assert agent.get("/healthz").json()["ok"] is False
    assert agent.proc.poll() is None  # still up
    model.symlink_to(locate_default(default_cache_dir()))  # the volume is mounted at last
    agent.wait_event("tick_finished", tick=0)
    assert agent.get("/readyz").status_code == 200
    assert agent.terminate() == 0


def test_foreign_transaction_halts_signing_and_turns_health_red(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """A transaction from the agent's key that it did not sign makes /healthz 503."""
    data = tmp_path / "data"
    agent = ForagerProcess(
        data,
        "--interval",
        "0.3",
        env={"FORAGER_POLICY__MAX_SWAP_PCT": "0", "FORAGER_RENT__PERIOD_TICKS": "1000"},
    )
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    assert agent.get("/healthz").status_code == 200
    rpc_url = agent.wait_event("arena_started")["rpc_url"]
    password = (data / "keystore.password").read_text()
    key = Account.decrypt(json.loads((data / "keystore.json").read_text()), password)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    me = Account.from_key(key)
    foreign = me.sign_transaction(
        {
            "chainId": w3.eth.chain_id,
            "to": me.address,
            "value": 0,
            "nonce": w3.eth.get_transaction_count(me.address),
            "gas": 21_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
    )
    w3.eth.send_raw_transaction(foreign.raw_transaction)
    agent.wait_event("signing_halted")
    health = agent.get("/healthz")
    assert health.status_code == 503
    assert health.json()["signer_halted"] is True
    assert any("did not sign" in r for r in health.json()["reasons"])
    assert agent.terminate() == 0


def test_run_with_given_keystore_and_wrong_password_fails_closed(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """--keystore with the wrong --password-file exits 2 naming the file; no key is created."""
    keystore = tmp_path / "k.json"
    create_keystore(keystore, "the-right-one")
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-right-one\n")
    data = tmp_path / "data"
    agent = ForagerProcess(
        data, "--keystore", str(keystore), "--password-file", str(wrong), "--ticks", "1"
    )
    forager.append(agent)
    assert agent.wait(timeout=60) == 2
    failure = agent.wait_event("agent_start_failed")
    assert str(keystore) in failure["error"] and "wrong password" in failure["error"]
    assert not (data / "keystore.json").exists()


def test_run_uses_a_keystore_made_by_cast(tmp_path: Path, forager: list[ForagerProcess]):
    """A keystore from Foundry's `cast wallet new` runs an agent as is."""
    entry = json.loads(
        cast("wallet", "new", str(tmp_path), "--unsafe-password", "cast-pass-1", "--json")
    )[0]
    pw = tmp_path / "pw"
    pw.write_text("cast-pass-1")
    agent = ForagerProcess(
        tmp_path / "data",
        "--keystore",
        entry["path"],
        "--password-file",
        str(pw),
        "--ticks",
        "1",
        "--interval",
        "0.2",
    )
    forager.append(agent)
    assert agent.wait() == 0
    assert agent.wait_event("agent_started")["address"].lower() == entry["address"].lower()


def test_chain_outage_holds_ticks_and_recovers(
    arena: LocalArena, tmp_path: Path, forager: list[ForagerProcess]
):
    """Live mode through a fault proxy: an outage holds ticks, /readyz says why, then resumes."""
    info = arena.info
    assert info is not None
    proxy = FaultProxy(arena.anvil.url)
    keystore, pw = tmp_path / "k.json", tmp_path / "pw"
    pw.write_text("live-pass-1")
    account = create_keystore(keystore, "live-pass-1")
    arena.fund(account.address, native_wei=10**19, stable=500 * 10**6, risk=0)
    env = {
        "FORAGER_CHAIN__RPC_URL": proxy.url,
        "FORAGER_CHAIN__CHAIN_ID": str(info.chain_id),
        "FORAGER_CHAIN__STABLE_TOKEN": info.stable_token,
        "FORAGER_CHAIN__RISK_TOKEN": info.risk_token,
        "FORAGER_CHAIN__POOL": info.pool,
        "FORAGER_CHAIN__ROUTER": info.router,
        "FORAGER_CHAIN__LANDLORD": info.landlord,
        "FORAGER_WALLET__KEYSTORE": str(keystore),
        "FORAGER_WALLET__PASSWORD_FILE": str(pw),
    }
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.5", env=env)
    forager.append(agent)
    try:
        assert agent.wait_event("agent_started")["arena"] is False
        agent.wait_event("tick_finished", tick=1)
        proxy.mode = "drop"
        agent.wait_event("tick_held")
        ready = agent.get("/readyz")
        assert ready.status_code == 503
        assert any("unreachable" in r for r in ready.json()["reasons"])
        held = len([e for e in agent.events() if e["event"] == "tick_finished"])
        proxy.mode = "pass"
        resumed = agent.wait_event("tick_finished", tick=held)
        assert resumed["tick"] == held  # no tick was lost or skipped in the record
        assert agent.get("/readyz").status_code == 200
        assert agent.terminate() == 0
    finally:
        proxy.close()


def test_run_with_the_keystore_document_in_the_environment(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """In a container the encrypted keystore itself can come as a secret setting; it is used
    as is (no file written), and a wrong password fails closed naming the setting."""
    keystore = tmp_path / "k.json"
    account = create_keystore(keystore, "env-pass-123")
    document = keystore.read_text()
    data = tmp_path / "data"
    env = {"FORAGER_WALLET__KEYSTORE_JSON": document, "FORAGER_WALLET__PASSWORD": "env-pass-123"}
    agent = ForagerProcess(data, "--ticks", "1", env=env)
    forager.append(agent)
    assert agent.wait_event("agent_started")["address"] == account.address
    assert agent.wait(timeout=120) == 0
    assert not (data / "keystore.json").exists()
    assert json.loads(document)["crypto"]["ciphertext"] not in "\n".join(agent.lines)
    wrong = ForagerProcess(
        tmp_path / "data2",
        "--ticks",
        "1",
        env={**env, "FORAGER_WALLET__PASSWORD": "nope-nope-nope"},
    )
    forager.append(wrong)
    assert wrong.wait(timeout=60) == 2
    assert (
        "FORAGER_WALLET__KEYSTORE_JSON could not be decrypted"
        in (wrong.wait_event("agent_start_failed")["error"])
    )
