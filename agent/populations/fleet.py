"""Populations: a shared arena, a supervised fleet of agent processes, and their leaderboard.

`serve_arena` keeps one local world up for many agents and writes its connection file.
`run_fleet` starts N `forager run --arena FILE` processes (each with its own wallet, port and
data dir), staggers them, restarts one that crashed (from its data dir) but never one that died,
and stops them all at the end. `leaderboard` ranks the lives from their stored records.
"""

from __future__ import annotations

import dataclasses
import json
import secrets as pysecrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from eth_account import Account

from agent.config import Settings
from agent.daemon.wiring import arena_config
from agent.errors import ConfigError
from agent.reports.charts import line_chart
from agent.runtime.lineage import Nursery
from akash.console import ConsoleClient
from akash.deploy import deploy
from akash.errors import AkashError
from akash.sdl import SdlOptions, render_sdl
from arena.local import ArenaConfig, LocalArena
from telemetry.redaction import secrets
from wallets.keystore import (
    create_keystore,
    derive_child_key,
    load_keystore,
    read_password,
    write_keystore,
    write_private_file,
)

log = structlog.get_logger()

_EXIT_DEAD_OR_DONE = 0
_EXIT_CONFIG = 2  # a setting an operator must fix: restarting would not help
_MAX_RESTARTS = 3
_STOP_TIMEOUT_S = 60.0
_SERVER_START_S = 120.0
# Members that run the model share one `forager model serve` (one model in memory, their
# decisions batched) rather than loading it each: `python -m bench.density` measured 1.20x the
# decisions per second with 2 agents and 1.21x with 3 on 2 cores (README, Performance).
DEFAULT_MODEL_SERVER = True


def serve_arena(config: ArenaConfig, out: Path, stop: threading.Event) -> None:
    """Run a shared arena until `stop` is set; its connection file exists while it runs."""
    arena = LocalArena(config)
    try:
        info = arena.up()
        info.dump(out)
        arena.start_weather()
        log.info("arena_ready", file=str(out), rpc_url=info.rpc_url, seed=config.seed)
        stop.wait()
    finally:
        out.unlink(missing_ok=True)
        arena.down()
        log.info("arena_stopped")


@dataclass
class Member:
    """One agent of the fleet, as the supervisor sees it."""

    name: str
    strategy: str
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    exit_code: int | None = None
    generation: int = 0
    parent_id: str | None = None
    seed: int | None = None
    persona: str | None = None


class Fleet:
    """A population on one shared arena: its arena thread, its members and their processes."""

    def __init__(
        self,
        folder: Path,
        settings: Settings,
        *,
        ticks: int,
        interval_s: float,
        seed: int | None,
        generation: int,
        extra_env: dict[str, str] | None,
    ) -> None:
        self.folder = folder
        self._server: subprocess.Popen[bytes] | None = None
        self.ticks = ticks
        self.interval_s = interval_s
        self.generation = generation
        self.extra_env = extra_env
        self.arena_file = folder / "arena.json"
        self.config = arena_config(settings, seed=seed, state_dir=folder / "arena")
        self._arena_stop = threading.Event()
        self._arena_thread: threading.Thread | None = None
        self.members: list[Member] = []

    def start_arena(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._arena_thread = threading.Thread(
            target=serve_arena,
            args=(self.config, self.arena_file, self._arena_stop),
            name="arena",
            daemon=True,
        )
        self._arena_thread.start()
        deadline = time.monotonic() + 120
        while not self.arena_file.exists():
            if not self._arena_thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the fleet's arena did not start (see the log)")
            time.sleep(0.05)

    def start_model_server(self, slots: int) -> str:
        """One `forager model serve` for the members that run the model; returns its URL."""
        port = _free_port()
        cmd = [
            sys.executable, "-m", "agent.cli", "model", "serve",
            "--port", str(port), "--slots", str(max(1, slots)),
        ]  # fmt: skip
        env = dict(self.extra_env or {})
        env.pop("FORAGER_MODEL__N_THREADS", None)  # the server takes the cores the agents would
        with (self.folder / "model-server.log").open("ab") as log_file:
            self._server = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, env=_env(env)
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + _SERVER_START_S
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise ConfigError(
                    f"the fleet's model server exited with {self._server.returncode} "
                    f"(see {self.folder / 'model-server.log'})"
                )
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    self.extra_env = {**(self.extra_env or {}), "FORAGER_MODEL__SERVER_URL": url}
                    log.info("fleet_model_server_started", url=url, slots=slots)
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ConfigError(
            f"the fleet's model server did not answer at {url} in {_SERVER_START_S} s"
        )

    def write_manifest(self) -> None:
        members = [{"name": m.name, "strategy": m.strategy} for m in self.members]
        manifest = {
            "seed": self.config.seed,
            "generation": self.generation,
            "ticks": self.ticks,
            "members": members,
        }
        (self.folder / "fleet.json").write_text(json.dumps(manifest, indent=2))

    def launch(self, member: Member) -> None:
        # A restarted member lives out its life, not a new one: only the ticks it has left.
        remaining = max(1, self.ticks - _age(member.data_dir))
        cmd = [
            sys.executable, "-m", "agent.cli", "run",
            "--arena", str(self.arena_file),
            "--data-dir", str(member.data_dir),
            "--strategy", member.strategy,
            "--ticks", str(remaining),
            "--interval", str(self.interval_s),
            "--generation", str(member.generation),
            "--port", "0",
            "--linger", "0",
        ]  # fmt: skip
        if member.seed is not None:
            cmd += ["--seed", str(member.seed)]
        if member.persona is not None:
            cmd += ["--persona", member.persona]
        env = dict(self.extra_env or {})
        if member.parent_id:
            env["FORAGER_PARENT_ID"] = member.parent_id
        member.data_dir.mkdir(parents=True, exist_ok=True)
        with (member.data_dir / "agent.log").open("ab") as log_file:
            member.proc = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, env=_env(env)
            )
        log.info(
            "fleet_member_started",
            member=member.name,
            strategy=member.strategy,
            pid=member.proc.pid,
            restarts=member.restarts,
        )

    def check(self, member: Member) -> bool:
        """Whether `member` is still running; restarts one that crashed (not one that died)."""
        if member.proc is None or member.exit_code is not None:
            return False
        code = member.proc.poll()
        if code is None:
            return True
        if code == _EXIT_DEAD_OR_DONE:
            member.exit_code = code
            log.info("fleet_member_finished", member=member.name)
            return False
        if member.restarts < _MAX_RESTARTS and code != _EXIT_CONFIG:
            member.restarts += 1
            log.warning("fleet_member_crashed", member=member.name, code=code)
            self.launch(member)  # same data dir: same wallet, age and history
            return True
        member.exit_code = code
        log.error("fleet_member_failed", member=member.name, code=code)
        return False

    def adopt_children(self) -> None:
        """Launch the children that members asked for (their launch requests)."""
        known = {m.name for m in self.members}
        for parent in list(self.members):
            for request in Nursery(parent.data_dir).funded():
                if request.name in known:
                    continue
                child = Member(
                    request.name,
                    request.strategy,
                    Path(request.data_dir),
                    generation=request.generation,
                    parent_id=request.parent_id,
                    seed=request.seed,
                    persona=request.persona,
                )
                self.members.append(child)
                known.add(child.name)
                log.info("fleet_child_adopted", child=child.name, parent=parent.name)
                self.launch(child)

    def stop(self) -> None:
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.send_signal(signal.SIGTERM)
        for member in self.members:
            if member.proc is None:
                continue
            try:
                code = member.proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                member.proc.kill()
                code = member.proc.wait()
            if member.exit_code is None:
                member.exit_code = code
        if self._server is not None and self._server.poll() is None:
            self._server.send_signal(signal.SIGTERM)
            try:
                self._server.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        self._arena_stop.set()
        if self._arena_thread is not None:
            self._arena_thread.join(timeout=_STOP_TIMEOUT_S)


def run_fleet(
    folder: Path,
    *,
    agents: int,
    strategies: Sequence[str],
    ticks: int,
    settings: Settings,
    interval_s: float = 2.0,
    seed: int | None = None,
    generation: int = 0,
    stagger_s: float = 1.0,
    extra_env: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    poll_s: float = 0.5,
    model_server: bool = DEFAULT_MODEL_SERVER,
) -> list[Member]:
    """Launch, supervise and stop a population on one shared arena; return its members."""
    if agents < 1 or not strategies:
        raise ConfigError("a fleet needs --agents >= 1 and at least one strategy")
    stop = stop or threading.Event()
    fleet = Fleet(
        folder,
        settings,
        ticks=ticks,
        interval_s=interval_s,
        seed=seed,
        generation=generation,
        extra_env=extra_env,
    )
    fleet.members = [
        Member(
            f"agent-{i:02d}",
            strategies[i % len(strategies)],
            folder / f"agent-{i:02d}",
            generation=generation,
        )
        for i in range(agents)
    ]
    fleet.start_arena()
    try:
        model_agents = sum(m.strategy == "llm" for m in fleet.members)
        if model_server and model_agents:
            fleet.start_model_server(slots=model_agents)
        fleet.write_manifest()
        for member in fleet.members:
            if stop.is_set():
                break
            fleet.launch(member)
            stop.wait(stagger_s)
        while not stop.is_set():
            fleet.adopt_children()
            running = [fleet.check(member) for member in fleet.members]
            if not any(running):
                break
            stop.wait(poll_s)
    finally:
        fleet.stop()
    return fleet.members


def _age(data_dir: Path) -> int:
    """Ticks an agent has lived, from its store (0 for a new one)."""
    db_file = data_dir / "state.sqlite"
    if not db_file.is_file():
        return 0
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM ticks").fetchone()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    import os

    return {**os.environ, **(extra or {})}


# -- leaderboard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Life:
    name: str
    agent_id: str
    strategy: str
    generation: int
    lifetime: int
    net_worth: float
    rent_paid: float
    alive: bool
    death_cause: str | None
    parent_id: str | None
    worth_series: tuple[float, ...]

    def row(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("worth_series")
        return data


def read_life(data_dir: Path) -> Life | None:
    """A life from its state store, or None when the folder holds no agent."""
    db_file = data_dir / "state.sqlite"
    if not db_file.is_file():
        return None
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        rows = db.execute(
            "SELECT json_extract(record, '$.net_worth_after'),"
            " json_extract(record, '$.observation.stable_decimals'),"
            " json_extract(record, '$.strategy'), json_extract(record, '$.generation')"
            " FROM ticks ORDER BY tick"
        ).fetchall()
        rent = db.execute(
            "SELECT COALESCE(SUM(json_extract(detail, '$.amount_in')), 0) FROM actions"
            " WHERE kind IN ('rent', 'pay_rent') AND status = 'ok'"
        ).fetchone()[0]
    if not rows:
        return None
    decimals = int(rows[-1][1])
    worth = tuple(float(r[0]) / 10**decimals for r in rows)
    cause = meta.get("death_cause")
    return Life(
        name=data_dir.name,
        agent_id=str(meta.get("agent_id", "")),
        strategy=str(rows[-1][2]),
        generation=int(rows[-1][3]),
        lifetime=len(rows),
        net_worth=worth[-1],
        rent_paid=float(rent) / 10**decimals,
        alive=cause is None,
        death_cause=cause,
        parent_id=meta.get("parent_id"),
        worth_series=worth,
    )


def leaderboard(folder: Path) -> list[Life]:
    """Every life under `folder` (one data dir per agent), best first.

    Ranking: the longest life first; then the richest at the end; then the most rent paid.
    """
    lives = [life for d in sorted(folder.iterdir()) if d.is_dir() if (life := read_life(d))]
    if not lives:
        raise ConfigError(f"{folder} holds no agent data dirs (each with a state.sqlite)")
    return sorted(lives, key=lambda x: (-x.lifetime, -x.net_worth, -x.rent_paid, x.name))


def render_table(lives: Sequence[Life]) -> str:
    head = f"{'#':>2}  {'agent':12} {'strategy':15} {'gen':>3} {'ticks':>6} "
    head += f"{'net worth':>10} {'rent paid':>9}  fate"
    lines = [head]
    for rank, life in enumerate(lives, 1):
        fate = "alive" if life.alive else f"died: {life.death_cause}"
        lines.append(
            f"{rank:>2}  {life.name:12} {life.strategy:15} {life.generation:>3} "
            f"{life.lifetime:>6} {life.net_worth:>10.2f} {life.rent_paid:>9.2f}  {fate}"
        )
    return "\n".join(lines)


def write_chart(lives: Sequence[Life], out: Path) -> Path:
    """A PNG of net worth over ticks, one line per life (colours in the legend order)."""
    line_chart({f"{x.name} {x.strategy}": list(x.worth_series) for x in lives}, out)
    return out


def stop_on_signals(event: threading.Event) -> Callable[[], None]:
    """Set `event` on SIGINT/SIGTERM; returns a function that restores the old handlers."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in old:
        signal.signal(sig, lambda *_: event.set())

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


# -- on Akash ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """How the fleet deploys one agent: the Console, where manifests go, what bids it takes."""

    client: ConsoleClient
    manifests: Path
    bid_timeout_s: float
    max_price: Decimal | None
    poll_s: float

    def deploy(self, name: str, sdl: str) -> dict[str, Any]:
        """The record of one deployment: its lease, or the error that stopped it."""
        try:
            leased = deploy(
                self.client,
                sdl,
                self.manifests,
                max_price=self.max_price,
                bid_timeout_s=self.bid_timeout_s,
                poll_s=self.poll_s,
            )
        except AkashError as exc:
            log.error("fleet_deploy_failed", member=name, error=str(exc))
            return {"error": str(exc)}
        log.info("fleet_member_deployed", member=name, dseq=leased.dseq)
        return {
            "dseq": leased.dseq,
            "provider": leased.provider,
            "price": str(leased.price),
            "denom": leased.denom,
            "state_url": leased.state_url,
        }


def deploy_fleet(
    client: ConsoleClient,
    folder: Path,
    *,
    agents: int,
    strategies: Sequence[str],
    options: SdlOptions,
    base_env: dict[str, str],
    generation: int = 0,
    bid_timeout_s: float = 180.0,
    max_price: Decimal | None = None,
    poll_s: float = 5.0,
    with_keys: bool = False,
) -> list[dict[str, Any]]:
    """One Akash deployment per agent (its own SDL: strategy and generation in its env).

    With `with_keys` each agent gets a wallet made here (`folder/keys`, 0600), shipped in its
    SDL as secret settings (visible to the provider, like anything in a container); keeping the
    keystore here is what lets `supervise_remote` deploy the children it funds.

    Every outcome, deployed or not, is written to `folder/deployments.json` as it happens, so
    an interrupted run still knows what it leased.
    """
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "deployments.json"
    done: list[dict[str, Any]] = []
    for i in range(agents):
        name, strategy = f"agent-{i:02d}", strategies[i % len(strategies)]
        env = {
            **base_env,
            "FORAGER_STRATEGY": strategy,
            "FORAGER_GENERATION": str(generation),
        }
        entry: dict[str, Any] = {"name": name, "strategy": strategy, "generation": generation}
        if with_keys:
            keystore, password_file = (
                folder / "keys" / f"{name}.json",
                folder / "keys" / f"{name}.password",
            )
            password = pysecrets.token_urlsafe(24)
            write_private_file(password_file, password)
            secrets.register(password)
            account = create_keystore(keystore, password)
            env["FORAGER_WALLET__KEYSTORE_JSON"] = keystore.read_text()
            env["FORAGER_WALLET__PASSWORD"] = password
            entry.update(address=account.address, keystore=str(keystore),
                         password_file=str(password_file))  # fmt: skip
        lease = Lease(client, folder / "manifests", bid_timeout_s, max_price, poll_s)
        entry.update(lease.deploy(name, render_sdl(options, env)))
        done.append(entry)
        record.write_text(json.dumps(done, indent=2))
    return done


def read_remote_life(name: str, state_url: str, timeout_s: float = 10.0) -> Life:
    """A life from a running agent's own HTTP surface (`/state` and `/series`)."""
    base = state_url.removesuffix("/state").rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout_s) as http:
        state = http.get("/state").raise_for_status().json()
        worth: list[float] = []
        since: int | None = 0
        while since is not None:
            page = http.get("/series", params={"since": since}).raise_for_status().json()
            worth.extend(page["net_worth"])
            since = page["next_since"]
    rent = state["rent"]
    lifetime = int(state["age_ticks"] or 0)
    return Life(
        name=name,
        agent_id=str(state["agent_id"]),
        strategy=str(state["strategy"]),
        generation=int(state["generation"]),
        lifetime=lifetime,
        net_worth=float(state["net_worth"] or 0.0),
        rent_paid=float(Decimal(rent["amount"]) * int(rent.get("paid_periods") or 0)),
        alive=bool(state["alive"]),
        death_cause=state["death_cause"],
        parent_id=state.get("parent_id"),
        # A running agent may tick between the two reads: the series is cut at the state's age,
        # so the life is one consistent snapshot.
        worth_series=tuple(worth[:lifetime]),
    )


def remote_leaderboard(deployments: Path) -> list[Life]:
    """Rank the lives of deployed agents from their own answers; unreachable ones are named."""
    try:
        entries = json.loads(deployments.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"deployments file {deployments} cannot be read: {exc}") from None
    lives, missing = [], []
    for entry in entries:
        url = entry.get("state_url")
        if not url:
            missing.append(f"{entry.get('name')}: not deployed")
            continue
        try:
            lives.append(read_remote_life(str(entry["name"]), str(url)))
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            missing.append(f"{entry['name']}: {url} did not answer ({exc})")
    for line in missing:
        log.warning("fleet_member_unreachable", detail=line)
    if not lives:
        raise ConfigError(f"no agent in {deployments} answered: {'; '.join(missing)}")
    return sorted(lives, key=lambda x: (-x.lifetime, -x.net_worth, -x.rent_paid, x.name))


def supervise_remote(
    client: ConsoleClient,
    deployments: Path,
    options: SdlOptions,
    base_env: dict[str, str],
    *,
    bid_timeout_s: float = 180.0,
    max_price: Decimal | None = None,
    poll_s: float = 5.0,
) -> list[dict[str, Any]]:
    """Deploy the children that deployed agents have funded (one pass; returns the new ones).

    A parent on Akash publishes its funded children in `/state` (`children`). Child n's key is
    derived from the parent's, and the operator holds the parent's keystore (`keystore` and
    `password_file` in its entry): the child's wallet is recreated here, encrypted with a fresh
    password, and shipped in the child's SDL as secret settings. No key leaves any agent.
    """
    entries: list[dict[str, Any]] = json.loads(deployments.read_text())
    known = {str(e["name"]) for e in entries}
    keys_dir = deployments.parent / "keys"
    added: list[dict[str, Any]] = []
    for parent in list(entries):
        if not parent.get("state_url") or not parent.get("keystore"):
            continue
        base = str(parent["state_url"]).removesuffix("/state")
        try:
            state = httpx.get(base + "/state", timeout=10).raise_for_status().json()
        except httpx.HTTPError as exc:
            log.warning("fleet_parent_unreachable", member=parent["name"], error=str(exc))
            continue
        for child_name in state.get("children") or []:
            name = f"{parent['name']}.{str(child_name).rsplit('.', 1)[-1]}"
            if name in known:
                continue
            n = int(name.rsplit(".c", 1)[-1])
            parent_account = load_keystore(
                Path(parent["keystore"]), read_password(Path(parent["password_file"]))
            )
            child = Account.from_key(derive_child_key(bytes(parent_account.key), n))
            keystore, password_file = keys_dir / f"{name}.json", keys_dir / f"{name}.password"
            password = pysecrets.token_urlsafe(24)
            write_private_file(password_file, password)
            write_keystore(keystore, child, password)
            secrets.register(password)
            env = {
                **base_env,
                "FORAGER_STRATEGY": str(state["strategy"]),
                "FORAGER_GENERATION": str(int(state["generation"]) + 1),
                "FORAGER_PARENT_ID": str(state["agent_id"]),
                **({"FORAGER_PERSONA": str(state["persona"])} if state.get("persona") else {}),
                "FORAGER_WALLET__KEYSTORE_JSON": keystore.read_text(),
                "FORAGER_WALLET__PASSWORD": password,
            }
            entry: dict[str, Any] = {
                "name": name,
                "strategy": env["FORAGER_STRATEGY"],
                "generation": int(env["FORAGER_GENERATION"]),
                "parent": parent["name"],
                "address": child.address,
                "keystore": str(keystore),
                "password_file": str(password_file),
            }
            lease = Lease(
                client, deployments.parent / "manifests", bid_timeout_s, max_price, poll_s
            )
            entry.update(lease.deploy(name, render_sdl(options, env)))
            entries.append(entry)
            added.append(entry)
            known.add(name)
            deployments.write_text(json.dumps(entries, indent=2))
    return added
