"""The local state store: tick records, actions and the agent's identity, in SQLite (WAL).

A restart with the same data dir finds the same agent: its id, its age, its rent account and
its history. Records are written before the tick is reported anywhere else.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from agent.core.records import Outcome, TickRecord
from agent.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ticks (
    tick INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    alive INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tick INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class Store:
    """One agent's durable memory."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"state store {path} cannot be opened: {exc}") from exc
        self._lock = threading.Lock()

    # identity and life -------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def agent_id(self) -> str:
        """This agent's id, created on first use and kept for its whole life."""
        existing = self.get("agent_id")
        if existing:
            return existing
        new = "agent-" + uuid.uuid4().hex[:12]
        self.put("agent_id", new)
        self.put("born_at", str(time.time()))
        return new

    def paid_periods(self) -> int:
        return int(self.get("paid_periods") or 0)

    def death(self) -> str | None:
        return self.get("death_cause")

    # history -----------------------------------------------------------------------------

    def age(self) -> int:
        """Ticks lived so far (the next tick's number)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(tick) FROM ticks").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def append(self, record: TickRecord, paid_periods: int) -> None:
        """Write one tick, its actions and the rent account atomically."""
        rows = []
        for kind, outcome in (("action", record.outcome), ("rent", record.rent_outcome)):
            if outcome is None or outcome.status in ("held", "skipped"):
                continue
            name = record.action.kind if (kind == "action" and record.action) else kind
            if kind == "action" and record.veto is not None:
                name = record.decision.action
            detail = _detail(
                outcome,
                veto=None if kind != "action" or record.veto is None else record.veto.rule,
                value_stable=(
                    record.action.value_stable if kind == "action" and record.action else 0
                ),
            )
            rows.append((record.tick, record.finished_at, name, outcome.status, json.dumps(detail)))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO ticks VALUES (?, ?, ?, ?)",
                    (
                        record.tick,
                        record.started_at,
                        int(record.alive),
                        json.dumps(record.to_dict()),
                    ),
                )
                self._db.executemany(
                    "INSERT INTO actions (tick, at, kind, status, detail) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('paid_periods', ?)", (str(paid_periods),)
                )
                if record.death_cause:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('death_cause', ?)",
                        (record.death_cause,),
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"could not record tick {record.tick}: {exc}") from exc

    def last_record(self) -> dict[str, Any] | None:
        records = self.records(limit=1)
        return records[0] if records else None

    def records(self, limit: int = 50, since: int | None = None) -> list[dict[str, Any]]:
        """Tick records, newest first (or oldest first from `since`)."""
        with self._lock:
            if since is None:
                rows = self._db.execute(
                    "SELECT record FROM ticks ORDER BY tick DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT record FROM ticks WHERE tick >= ? ORDER BY tick LIMIT ?", (since, limit)
                ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def add_action(
        self,
        tick: int,
        kind: str,
        outcome: Outcome,
        extra: dict[str, Any] | None = None,
        value_stable: int | None = None,
    ) -> None:
        """Record an action taken outside the tick record (a child's funding, a rent sale)."""
        value = outcome.amount_in if value_stable is None else value_stable
        detail = _detail(outcome, veto=None, value_stable=value, **(extra or {}))
        with self._lock:
            self._db.execute(
                "INSERT INTO actions (tick, at, kind, status, detail) VALUES (?, ?, ?, ?, ?)",
                (tick, time.time(), kind, outcome.status, json.dumps(detail)),
            )

    def series(self, since: int = 0, limit: int = 1000) -> list[tuple[Any, ...]]:
        """(tick, price, net worth, runway, action, status, stable decimals) from `since`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tick, json_extract(record, '$.observation.price'),"
                " json_extract(record, '$.net_worth_after'),"
                " json_extract(record, '$.runway_after'),"
                " json_extract(record, '$.decision.action'),"
                " json_extract(record, '$.outcome.status'),"
                " json_extract(record, '$.observation.stable_decimals')"
                " FROM ticks WHERE tick >= ? ORDER BY tick LIMIT ?",
                (since, limit),
            ).fetchall()
        return [tuple(row) for row in rows]

    def actions(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent actions (swaps, rent, vetoes), newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tick, at, kind, status, detail FROM actions ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {"tick": t, "at": at, "kind": k, "status": s, **json.loads(d)}
            for t, at, k, s, d in rows
        ]

    def known_tx_hashes(self) -> set[str]:
        """Every transaction hash the recorded actions mention."""
        with self._lock:
            rows = self._db.execute(
                "SELECT value FROM actions, json_each(json_extract(detail, '$.tx_hashes'))"
            ).fetchall()
        return {str(row[0]) for row in rows}

    def add_rebuilt_swaps(self, swaps: list[tuple[str, float, int]]) -> None:
        """Record swaps found on chain (tx hash, time, stable value) into the spend windows."""
        rows = [
            (
                -1,
                at,
                "swap",
                "ok",
                json.dumps({"tx_hashes": [h], "value_stable": v, "rebuilt": True}),
            )
            for h, at, v in swaps
        ]
        with self._lock:
            self._db.executemany(
                "INSERT INTO actions (tick, at, kind, status, detail) VALUES (?, ?, ?, ?, ?)", rows
            )

    def spent_since(self, since: float) -> int:
        """Stable value spent by swaps and deposits that went through since `since`."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(json_extract(detail, '$.value_stable')), 0) FROM actions "
                "WHERE kind IN ('swap', 'add_liquidity') AND status = 'ok' AND at >= ?",
                (since,),
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _detail(outcome: Outcome, **more: Any) -> dict[str, Any]:
    """An action row's JSON detail: what the chain said, plus what the caller adds."""
    return {
        "tx_hashes": list(outcome.tx_hashes),
        "gas_used": outcome.gas_used,
        "amount_in": outcome.amount_in,
        "amount_out": outcome.amount_out,
        "error": outcome.error,
        **more,
    }
