"""The local fleet: a population of agent processes on one shared arena, supervised.

`run_fleet` starts N `forager run --arena FILE` processes (each with its own wallet, port and
data dir), staggers them, restarts one that crashed (from its data dir) but never one that died,
launches the children its members fund, and stops them all at the end. Members that run the
model share one model server (`processes.ModelServer`). `agent.populations.leaderboard` ranks
their lives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import structlog

from agent.config import Settings
from agent.daemon.wiring import arena_config
from agent.errors import ConfigError
from agent.populations.arena_service import ArenaThread
from agent.populations.processes import ModelServer
from agent.populations.supervisor import Member, Supervisor
from agent.reports.progress import Progress, Silent
from agent.runtime.lineage import LaunchRequest, Nursery

log = structlog.get_logger()

# Members that run the model share one `forager model serve` (one model in memory, their
# decisions batched) rather than loading it each: `python -m bench.density` measured 1.20x the
# decisions per second with 2 agents and 1.21x with 3 on 2 cores (README, Performance).
DEFAULT_MODEL_SERVER = True
# The shared server's engine (`forager model serve --engine`).
DEFAULT_MODEL_ENGINE = "forager"


class Fleet:
    """A population on one shared arena: its arena, its model server, its members."""

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
        progress: Progress,
        model_engine: str = DEFAULT_MODEL_ENGINE,
    ) -> None:
        self.folder = folder
        self.ticks = ticks
        self.generation = generation
        self.progress = progress
        config = arena_config(settings, seed=seed, state_dir=folder / "arena")
        self.arena = ArenaThread(config, folder / "arena.json")
        self.model_server = ModelServer(folder / "model-server.log", model_engine)
        self.supervisor = Supervisor(
            self.arena.file,
            ticks=ticks,
            interval_s=interval_s,
            env=dict(extra_env or {}),
            progress=progress,
        )
        self.members: list[Member] = []

    def run(
        self, stop: threading.Event, *, stagger_s: float, poll_s: float, model_server: bool
    ) -> None:
        """The fleet's life: its arena up, its members launched and supervised, all stopped."""
        self.arena.start()
        try:
            model_agents = sum(m.strategy == "llm" for m in self.members)
            if model_server and model_agents:
                self.start_model_server(slots=model_agents)
            self.write_manifest()
            self.start_members(stop, stagger_s)
            self.supervise(stop, poll_s)
        finally:
            self.stop()

    def start_model_server(self, slots: int) -> str:
        """One model server for the members that run the model; they are told its URL."""
        url = self.model_server.start(slots, self.supervisor.env)
        self.supervisor.env["FORAGER_MODEL__SERVER_URL"] = url
        return url

    def write_manifest(self) -> None:
        members = [{"name": m.name, "strategy": m.strategy} for m in self.members]
        manifest = {
            "seed": self.arena.config.seed,
            "generation": self.generation,
            "ticks": self.ticks,
            "members": members,
        }
        (self.folder / "fleet.json").write_text(json.dumps(manifest, indent=2))

    def start_members(self, stop: threading.Event, stagger_s: float) -> None:
        """Launch the founding members one by one, `stagger_s` apart."""
        self.progress.phase("agents", len(self.members))
        for member in self.members:
            if stop.is_set():
                break
            self.supervisor.launch(member)
            self.progress.step(f"{member.name} {member.strategy}")
            stop.wait(stagger_s)

    def supervise(self, stop: threading.Event, poll_s: float) -> None:
        """Adopt children and restart crashes until every member has ended or `stop` is set."""
        self.progress.phase("lives", len(self.members))
        while not stop.is_set():
            self.adopt_children()
            running = [self.supervisor.check(member) for member in self.members]
            if not any(running):
                break
            stop.wait(poll_s)

    def adopt_children(self) -> None:
        """Launch the children that members asked for (their launch requests)."""
        known = {m.name for m in self.members}
        for parent in list(self.members):
            for request in Nursery(parent.data_dir).funded():
                if request.name not in known:
                    known.add(request.name)
                    self._adopt(parent, request)

    def _adopt(self, parent: Member, request: LaunchRequest) -> None:
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
        log.info("fleet_child_adopted", child=child.name, parent=parent.name)
        self.progress.say(f"{child.name} born to {parent.name} (generation {child.generation})")
        self.supervisor.launch(child)

    def stop(self) -> None:
        """Stop the members, then the model server, then the arena."""
        self.supervisor.stop(self.members)
        self.model_server.stop()
        self.arena.stop()


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
    model_engine: str = DEFAULT_MODEL_ENGINE,
    progress: Progress = Silent(),
) -> list[Member]:
    """Launch, supervise and stop a population on one shared arena; return its members.

    `progress` hears phase "agents" (a step per member launched), then phase "lives" (a step
    per founding member that finished or failed), and a line per crash, restart and child.
    """
    if agents < 1 or not strategies:
        raise ConfigError("a fleet needs --agents >= 1 and at least one strategy")
    fleet = Fleet(
        folder,
        settings,
        ticks=ticks,
        interval_s=interval_s,
        seed=seed,
        generation=generation,
        extra_env=extra_env,
        progress=progress,
        model_engine=model_engine,
    )
    fleet.members = _founders(folder, agents, strategies, generation)
    fleet.run(
        stop or threading.Event(), stagger_s=stagger_s, poll_s=poll_s, model_server=model_server
    )
    return fleet.members


def _founders(
    folder: Path, agents: int, strategies: Sequence[str], generation: int
) -> list[Member]:
    names = [f"agent-{i:02d}" for i in range(agents)]
    return [
        Member(name, strategies[i % len(strategies)], folder / name, generation=generation)
        for i, name in enumerate(names)
    ]
