"""Where the CPU goes: CPU seconds of this process and of every process it starts, by role.

Linux only (it reads /proc). A thread walks this process's descendants every quarter second
and keeps each one's latest user + system time; a process that lives less than a quarter second
is missed, and one's last quarter second before it exits may be. This process's own time (the
arena, its weather, the fleet's supervision, in a bench) is read directly.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

ROLES = ("model server", "agents", "chain", "this process", "other")
_TICK = os.sysconf("SC_CLK_TCK")


def role(cmdline: str) -> str:
    """The role of a process from its command line."""
    if "llama-server" in cmdline or "model serve" in cmdline:
        return "model server"
    if "agent.cli run" in cmdline:
        return "agents"
    if "anvil" in cmdline.split(" ", 1)[0]:
        return "chain"
    return "other"


def _parents() -> dict[int, int]:
    """Every process's parent, by pid."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: fields start after the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def _cpu_s(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


class CpuByRole:
    """`with CpuByRole() as cpu: ...`, then `cpu.seconds` (by role) and `cpu.wall_s`."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.every_s = every_s
        self.seconds: dict[str, float] = {}
        self.wall_s = 0.0
        self._latest: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="cpu-by-role", daemon=True)

    def __enter__(self) -> CpuByRole:
        self._start_own = os.times()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        own = os.times()
        self.wall_s = own.elapsed - self._start_own.elapsed
        totals = dict.fromkeys(ROLES, 0.0)
        totals["this process"] = (own.user - self._start_own.user) + (
            own.system - self._start_own.system
        )
        for name, seconds in self._latest.values():
            totals[name] += seconds
        self.seconds = {k: round(v, 1) for k, v in totals.items()}

    def _poll(self) -> None:
        me = os.getpid()
        while True:
            self._sample(me)
            if self._stop.wait(self.every_s):
                self._sample(me)
                return

    def _sample(self, me: int) -> None:
        parents = _parents()
        family = {me}
        grew = True
        while grew:  # descendants, to any depth
            grew = False
            for pid, parent in parents.items():
                if parent in family and pid not in family:
                    family.add(pid)
                    grew = True
        for pid in family - {me}:
            seconds = _cpu_s(pid)
            if seconds is None:
                continue
            known = self._latest.get(pid)
            name = known[0] if known else role(_cmdline(pid))
            self._latest[pid] = (name, seconds)

    def shares(self) -> str:
        return shares(self.seconds, self.wall_s)


def shares(seconds: dict[str, float], wall_s: float) -> str:
    """'model server 61 s (61%), agents ...' of all CPU seconds, and cores busy on average."""
    total = sum(seconds.values()) or 1.0
    parts = ", ".join(
        f"{name} {used:.0f} s ({used / total:.0%})" for name, used in seconds.items() if used
    )
    busy = total / wall_s if wall_s else 0.0
    return f"{parts}; {busy:.2f} cores busy on average"
