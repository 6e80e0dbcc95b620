"""The local state store: tick records, actions and the agent's identity, in SQLite (WAL).

A restart with the same data dir finds the same agent: its id, its age, its rent account and
its history. Records are written before the tick is reported anywhere else.

A tick in progress has a row in `open_tick`, written at each stage before the next one acts
(what it saw, what it decided and the guard allowed, where its transactions start); the tick's
record replaces that row in one transaction. A row found at start is a tick the process died
in: the agent finishes it from this row and the transaction journal instead of deciding again.
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
CREATE TABLE IF NOT EXISTS open_tick (
    tick INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    stage TEXT NOT NULL,          -- sensed | decided | acted | rent
    detail TEXT NOT NULL
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
_INSERT_ACTION = "INSERT INTO actions (tick, at, kind, status, detail) VALUES (?, ?, ?, ?, ?)"
STATE_FILE = "state.sqlite"  # in an agent's data dir
_RENT_DETAIL: dict[str, Any] = {"veto": None, "value_stable": 0}  # a rent row's own detail


def holds_agent(data_dir: Path) -> bool:
    """Whether `data_dir` is an agent's data dir (it has a store)."""
    return (data_dir / STATE_FILE).is_file()


class Store:
    """One agent's durable memory."""

    def __init__(self, path: Path, *, read_only: bool = False, durable: bool = True) -> None:
        """`durable=False` (a paper life's store) skips the fsync per write: fast, and lost
        with a crash, which a simulated life can simply run again."""
        try:
            self._db = _connect_read_only(path) if read_only else _connect(path, durable)
        except sqlite3.Error as exc:
            raise StoreError(f"state store {path} cannot be opened: {exc}") from exc
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def read(cls, data_dir: Path) -> Store:
        """The store of an agent's data dir, read-only: to read a life back."""
        if not holds_agent(data_dir):
            raise StoreError(
                f"data dir {data_dir} has no {STATE_FILE} (expected an agent's data dir)"
            )
        return cls(data_dir / STATE_FILE, read_only=True)

    def copy(self) -> Store:
        """An in-memory copy of this store (the lab continues a life from it, many times)."""
        twin = Store(Path(":memory:"), durable=False)
        with self._lock:
            self._db.backup(twin._db)
        return twin

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

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
        tick = (record.tick, record.started_at, int(record.alive), json.dumps(record.to_dict()))
        actions = _action_rows(record)  # before the transaction: only SQLite may fail inside it
        meta = [("paid_periods", str(paid_periods))]
        if record.death_cause:
            meta.append(("death_cause", record.death_cause))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO ticks VALUES (?, ?, ?, ?)", tick)
                self._db.execute("DELETE FROM open_tick WHERE tick = ?", (record.tick,))
                self._supersede_rebuilt(_hashes(actions))
                self._db.executemany(_INSERT_ACTION, actions)
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"could not record tick {record.tick}: {exc}") from exc

    # the tick in progress ------------------------------------------------------------------

    def open_tick(self, tick: int, started_at: float, stage: str, detail: dict[str, Any]) -> None:
        """Journal the tick in progress at `stage`; `detail` is merged into what it had."""
        with self._lock:
            row = self._db.execute(
                "SELECT detail FROM open_tick WHERE tick = ?", (tick,)
            ).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **detail}
            self._db.execute(
                "INSERT OR REPLACE INTO open_tick VALUES (?, ?, ?, ?)",
                (tick, started_at, stage, json.dumps(merged)),
            )

    def interrupted(self) -> tuple[int, float, str, dict[str, Any]] | None:
        """The tick a previous process died in: (tick, started_at, stage, detail), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT tick, started_at, stage, detail FROM open_tick ORDER BY tick LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return int(row[0]), float(row[1]), str(row[2]), json.loads(row[3])

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

    def tick_records(self) -> list[dict[str, Any]]:
        """Every tick record of the life, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM ticks ORDER BY tick").fetchall()
        return [json.loads(row[0]) for row in rows]

    def tick_count(self) -> int:
        """How many ticks are recorded."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM ticks").fetchone()[0])

    def meta(self) -> dict[str, str]:
        """The store's identity and life facts (agent_id, parent_id, death_cause ...)."""
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return {str(key): str(value) for key, value in rows}

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
        row = (tick, time.time(), kind, outcome.status, json.dumps(detail))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._supersede_rebuilt(list(outcome.tx_hashes))
                self._db.execute(_INSERT_ACTION, row)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"could not record the {kind} of tick {tick}: {exc}") from exc

    def _supersede_rebuilt(self, hashes: list[str]) -> None:
        """Drop the rows `rebuild_spend` made for swaps now recorded by their own tick (a swap
        of an interrupted tick is found on chain at start, then its tick is finished)."""
        for tx_hash in hashes:
            self._db.execute(
                "DELETE FROM actions WHERE tick = -1 AND EXISTS (SELECT 1 FROM "
                "json_each(json_extract(detail, '$.tx_hashes')) WHERE value = ?)",
                (tx_hash,),
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

    def swap_tally(self) -> dict[str, int]:
        """The life's allowed swaps by fate — landed, refused at act time because the market
        moved past their bounds (nothing sent), failed (reverted, or refused by the chain after
        their approval) — and the gas the failures cost."""
        swap = "json_extract(record, '$.action.kind') = 'swap'"
        ok = "json_extract(record, '$.outcome.status') = 'ok'"
        with self._lock:
            row = self._db.execute(
                f"SELECT COALESCE(SUM({swap} AND {ok}), 0),"  # noqa: S608 (constant clauses)
                " COALESCE(SUM(json_extract(record, '$.veto.rule') = 'market_moved'"
                "  AND json_extract(record, '$.decision.action') IN ('buy_risk', 'sell_risk')), 0),"
                f" COALESCE(SUM({swap} AND NOT {ok}), 0),"
                f" COALESCE(SUM(CASE WHEN {swap} AND NOT {ok}"
                "  THEN json_extract(record, '$.outcome.gas_used') ELSE 0 END), 0)"
                " FROM ticks"
            ).fetchone()
        landed, refused, failed, gas = (int(v) for v in row)
        return {"landed": landed, "refused": refused, "failed": failed, "failed_gas": gas}

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

    def known_tx_hashes(self, rebuilt: bool = True) -> set[str]:
        """Every transaction hash the recorded actions mention (with `rebuilt=False`, only
        those recorded by the ticks themselves, not found on chain by `rebuild_spend`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT value FROM actions, json_each(json_extract(detail, '$.tx_hashes'))"
                " WHERE tick >= ?",
                (-1 if rebuilt else 0,),
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
            self._db.executemany(_INSERT_ACTION, rows)

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


def _connect(path: Path, durable: bool = True) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
    db.executescript(_SCHEMA)
    return db


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)


def _hashes(rows: list[tuple[int, float, str, str, str]]) -> list[str]:
    return [h for row in rows for h in json.loads(row[4])["tx_hashes"]]


def _action_rows(record: TickRecord) -> list[tuple[int, float, str, str, str]]:
    """The actions table's rows of one tick: its action (or veto) and its rent, if carried out."""
    rows: list[tuple[int, float, str, str, str]] = []
    for kind, outcome in (("action", record.outcome), ("rent", record.rent_outcome)):
        if outcome is None or outcome.status in ("held", "skipped"):
            continue
        detail = _detail(outcome, **(_action_detail(record) if kind == "action" else _RENT_DETAIL))
        name = _action_name(record) if kind == "action" else kind
        rows.append((record.tick, record.finished_at, name, outcome.status, json.dumps(detail)))
    return rows


def _action_name(record: TickRecord) -> str:
    """A vetoed action is named for what was proposed; otherwise for what was done."""
    if record.veto is not None:
        return record.decision.action
    return record.action.kind if record.action else "action"


def _action_detail(record: TickRecord) -> dict[str, Any]:
    return {
        "veto": None if record.veto is None else record.veto.rule,
        "value_stable": record.action.value_stable if record.action else 0,
    }
