"""Supervision of a local fleet's agent processes: start, watch, restart, stop.

Each member is a `forager run --arena FILE` process with its own data dir (its wallet, store and
`agent.log`). A member that crashed is restarted from that data dir, up to a limit, and lives
out only the ticks it has left; one that died (exit 0 after its death) or that a setting stops
(exit 2) is never restarted: restarting would not help.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.populations.leaderboard import lifetime
from agent.populations.processes import interrupt, reap, start_process
from agent.reports.progress import Progress

log = structlog.get_logger()

_EXIT_DEAD_OR_DONE = 0
_EXIT_CONFIG = 2  # a setting an operator must fix: restarting would not help
_MAX_RESTARTS = 3


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


class Supervisor:
    """Starts, watches and stops the members' processes, all on one arena.

    `env` is added to every member's environment (the fleet adds the model server's URL).
    Founding members' ends are steps on `progress`; crashes, failures and children's ends are
    lines.
    """

    def __init__(
        self,
        arena_file: Path,
        *,
        ticks: int,
        interval_s: float,
        env: dict[str, str],
        progress: Progress,
    ) -> None:
        self.arena_file = arena_file
        self.ticks = ticks
        self.interval_s = interval_s
        self.env = env
        self.progress = progress

    def launch(self, member: Member) -> None:
        env = dict(self.env)
        if member.parent_id:
            env["FORAGER_PARENT_ID"] = member.parent_id
        command = self._command(member)
        member.data_dir.mkdir(parents=True, exist_ok=True)
        member.proc = start_process(command, member.data_dir / "agent.log", env)
        log.info(
            "fleet_member_started",
            member=member.name,
            strategy=member.strategy,
            pid=member.proc.pid,
            restarts=member.restarts,
        )

    def _command(self, member: Member) -> list[str]:
        # A restarted member lives out its life, not a new one: only the ticks it has left.
        remaining = max(1, self.ticks - lifetime(member.data_dir))
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
        return cmd

    def check(self, member: Member) -> bool:
        """Whether `member` is still running; restarts one that crashed (not one that died)."""
        if member.proc is None or member.exit_code is not None:
            return False
        code = member.proc.poll()
        if code is None:
            return True
        if code not in (_EXIT_DEAD_OR_DONE, _EXIT_CONFIG) and member.restarts < _MAX_RESTARTS:
            self._restart(member, code)
            return True
        member.exit_code = code
        self._ended(member, code)
        return False

    def _restart(self, member: Member, code: int) -> None:
        member.restarts += 1
        log.warning("fleet_member_crashed", member=member.name, code=code)
        self.progress.say(
            f"{member.name} crashed (exit {code}): restart {member.restarts} of {_MAX_RESTARTS}"
        )
        self.launch(member)  # same data dir: same wallet, age and history

    def _ended(self, member: Member, code: int) -> None:
        done = code == _EXIT_DEAD_OR_DONE
        if done:
            log.info("fleet_member_finished", member=member.name)
        else:
            log.error("fleet_member_failed", member=member.name, code=code)
        note = f"{member.name} finished" if done else f"{member.name} failed (exit {code})"
        if not done or member.parent_id is not None:  # a failure, or a child (not a step)
            self.progress.say(note)
        if member.parent_id is None:
            self.progress.step(note)

    def stop(self, members: Sequence[Member]) -> None:
        """Stop every member that was started: all asked at once, then each awaited."""
        started = [(m, m.proc) for m in members if m.proc is not None]
        for _, proc in started:
            interrupt(proc)
        for member, proc in started:
            code = reap(proc)
            if member.exit_code is None:
                member.exit_code = code
