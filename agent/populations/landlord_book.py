"""The landlord's book: its tenants and an append-only journal, in one SQLite file (WAL).

A tenant is a deployed agent: its address, its deployment (dseq), the rent terms it was
deployed with, and where its tenancy started on its chain. The journal has one line per
step: an `intent` is written before a call that acts (close, deposit) and a `done` line,
naming the intent, after it; a `failed` line records a refused call and leaves the intent
open; `note` lines record what was observed (a provider-closed lease, a kept final state).
An intent with no `done` line is an open question the next pass answers by reading the
Console, so a landlord killed between any two lines neither acts twice nor forgets.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, StoreError

ACTIVE = "active"
CLOSED = "closed"  # closed by the landlord: fate says why (evicted, died)
PROVIDER_CLOSED = "provider_closed"
OVERDRAWN = "overdrawn"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    dseq TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    amount TEXT NOT NULL,
    period_ticks INTEGER NOT NULL,
    interval_s TEXT NOT NULL,
    grace_ticks INTEGER NOT NULL,
    start_block INTEGER NOT NULL,
    start_ts INTEGER NOT NULL,
    state_url TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    fate TEXT,
    died_tick INTEGER,
    closed_block INTEGER,
    bid_price TEXT,
    bid_denom TEXT,
    final TEXT,
    last_action TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    dseq TEXT NOT NULL,
    kind TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('intent', 'done', 'failed', 'note')),
    ref INTEGER,
    data TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Tenant:
    """One deployed agent and the terms it pays (`amount` in stable base units per period)."""

    dseq: str
    address: str
    amount: int
    period_ticks: int
    interval_s: str  # exact decimal text: the arithmetic of due periods stays exact
    grace_ticks: int
    start_block: int
    start_ts: int
    state_url: str | None = None
    status: str = ACTIVE
    fate: str | None = None
    died_tick: int | None = None
    closed_block: int | None = None
    bid_price: str | None = None
    bid_denom: str | None = None
    final: str | None = None
    last_action: str | None = None

    @property
    def period_s(self) -> Fraction:
        return self.period_ticks * Fraction(self.interval_s)

    @property
    def grace_s(self) -> Fraction:
        return self.grace_ticks * Fraction(self.interval_s)


@dataclass(frozen=True)
class Line:
    """One journal line."""

    id: int
    at: float
    dseq: str
    kind: str
    phase: str
    ref: int | None
    data: dict[str, Any]


_COLUMNS = tuple(f.name for f in fields(Tenant))


class Book:
    """The tenants and the journal. Thread-safe; every write is committed before it returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # an intent must outlive a power cut
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"landlord book {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def add(self, tenant: Tenant) -> None:
        """Add a tenant; a dseq already in the book is refused (its terms are fixed)."""
        values = [_column(getattr(tenant, name)) for name in _COLUMNS]
        marks = ", ".join("?" for _ in _COLUMNS)
        try:
            with self._lock:
                self._db.execute(
                    f"INSERT INTO tenants ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608 -- column names are ours
                    values,
                )
        except sqlite3.IntegrityError:
            raise ConfigError(f"dseq {tenant.dseq} is already in the book") from None
        self.note(tenant.dseq, "tenant_added", {"address": tenant.address})

    def tenants(self) -> list[Tenant]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM tenants ORDER BY CAST(dseq AS INTEGER)"  # noqa: S608 -- column names are ours
            ).fetchall()
        return [_tenant(row) for row in rows]

    def tenant(self, dseq: str) -> Tenant:
        found = [t for t in self.tenants() if t.dseq == dseq]
        if not found:
            raise ConfigError(f"dseq {dseq} is not in the book")
        return found[0]

    def update(self, dseq: str, **changes: Any) -> None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"not tenant fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._lock:
            self._db.execute(
                f"UPDATE tenants SET {assignments} WHERE dseq = ?",  # noqa: S608 -- names checked above
                [*(_column(v) for v in changes.values()), dseq],
            )

    def intent(self, dseq: str, kind: str, data: dict[str, Any]) -> int:
        """Journal that `kind` is about to be done; the id names it in its `done` line."""
        return self._write(dseq, kind, "intent", None, data)

    def done(self, intent: Line | int, data: dict[str, Any]) -> None:
        line = intent if isinstance(intent, Line) else self.line(intent)
        self._write(line.dseq, line.kind, "done", line.id, data)

    def failed(self, dseq: str, kind: str, error: str, ref: int | None = None) -> None:
        self._write(dseq, kind, "failed", ref, {"error": error})

    def note(self, dseq: str, kind: str, data: dict[str, Any]) -> None:
        self._write(dseq, kind, "note", None, data)

    def line(self, line_id: int) -> Line:
        return self._lines("WHERE id = ?", (line_id,))[0]

    def lines(self, dseq: str | None = None) -> list[Line]:
        if dseq is None:
            return self._lines("", ())
        return self._lines("WHERE dseq = ?", (dseq,))

    def open_intents(self) -> list[Line]:
        """Intents without a `done` line, oldest first."""
        return self._lines(
            "WHERE phase = 'intent' AND id NOT IN "
            "(SELECT ref FROM journal WHERE phase = 'done' AND ref IS NOT NULL)",
            (),
        )

    def _write(self, dseq: str, kind: str, phase: str, ref: int | None, data: Any) -> int:
        text = json.dumps(data, sort_keys=True, default=str)
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO journal (at, dseq, kind, phase, ref, data) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), dseq, kind, phase, ref, text),
            )
        return int(cursor.lastrowid or 0)

    def _lines(self, where: str, params: tuple[Any, ...]) -> list[Line]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, at, dseq, kind, phase, ref, data FROM journal {where} ORDER BY id",  # noqa: S608 -- fixed clauses
                params,
            ).fetchall()
        return [Line(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]


def fate_of(tenant: Tenant | None) -> str:
    """A tenant's fate as the landlord recorded it, in words (`fleet leaderboard`)."""
    if tenant is None:
        return "not in the landlord's book"
    if tenant.status == ACTIVE:
        return "alive"
    if tenant.status == PROVIDER_CLOSED:
        return "closed by the provider"
    if tenant.status == OVERDRAWN:
        return "closed by the provider, overdrawn"
    if tenant.fate == "died":
        why = "died" if tenant.died_tick is None else f"died on tick {tenant.died_tick}"
    else:
        why = "evicted: rent unpaid" if tenant.fate == "evicted" else "closed"
    return f"{why}, lease closed at block {tenant.closed_block}"


def _column(value: Any) -> Any:
    # Amounts in base units overflow SQLite's 64-bit integers: they are kept as text.
    return str(value) if isinstance(value, int) and abs(value) >= 2**63 else value


def _tenant(row: tuple[Any, ...]) -> Tenant:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["amount"] = int(values["amount"])
    values["interval_s"] = str(values["interval_s"])
    return Tenant(**values)
