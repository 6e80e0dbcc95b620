"""Stored lives read back as training experience: what `forager dataset export` and evolve read.

Each data dir's store is opened read-only and its tick records handed to
`telemetry.experience`, one life at a time. Data dirs are read in sorted order and ticks in
order, so the same dirs always give the same experience.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from agent.runtime.store import Store
from telemetry.experience import Experience, experience


def read_experience(data_dir: Path, gamma: float = 0.9) -> Experience | None:
    """The life stored in `data_dir`, with discounted returns; None if it has no ticks.

    Raises StoreError when the folder holds no agent, DatasetError for a record of a schema
    version telemetry cannot read.
    """
    with Store.read(data_dir) as store:
        return experience(store.tick_records(), gamma, source=str(store.path))


def select_lives(
    data_dirs: Sequence[Path],
    *,
    gamma: float = 0.9,
    top_k: int | None = None,
    min_return: float | None = None,
    generation: int | None = None,
    strategy: str | None = None,
) -> Iterator[Experience]:
    """Lives in sorted order, filtered; `top_k` keeps the longest-lived, then the richest."""
    dirs = sorted(set(data_dirs))
    if top_k is not None:
        dirs = sorted(sorted(dirs, key=_rank, reverse=True)[:top_k])
    for data_dir in dirs:
        life = read_experience(data_dir, gamma)
        if life is None:
            continue
        if generation is not None and life.generation != generation:
            continue
        if strategy is not None and life.strategy != strategy:
            continue
        if min_return is not None and life.total_return < min_return:
            continue
        yield life


def _rank(data_dir: Path) -> tuple[int, int]:
    """Ticks lived, then the final net worth: read without reading the whole life."""
    with Store.read(data_dir) as store:
        last = store.last_record()
        return store.tick_count(), int(last["net_worth_after"]) if last else 0
