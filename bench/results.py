"""Where benchmark figures go: `bench/results/latest.json`, one section per benchmark, with a
description of the machine that produced them (figures from different machines do not mix)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

LATEST = Path(__file__).parent / "results" / "latest.json"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def record(section: str, figures: dict[str, Any], path: Path = LATEST) -> Path:
    """Put one benchmark's figures in the results file (other sections are kept)."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    if data.get("machine") != machine():
        data = {}  # another machine's figures are not comparable: start afresh
    data["machine"] = machine()
    data.setdefault("sections", {})[section] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path
