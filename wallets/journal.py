"""The transaction journal: signed bytes are written durably before they are broadcast.

SQLite with `synchronous=FULL`: once `record` returns, the signed transaction survives a crash,
so a restart re-sends the same bytes instead of deciding again.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (
    tx_hash TEXT PRIMARY KEY,
    nonce INTEGER NOT NULL,
    sender TEXT NOT NULL,
    purpose TEXT NOT NULL,
    raw BLOB NOT NULL,
    status TEXT NOT NULL,          -- signed | mined | reverted | replaced | dropped
    gas_used INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_by_nonce ON txs (sender, nonce);
"""


@dataclass(frozen=True)
class JournalEntry:
    """One signed transaction and what became of it."""

    tx_hash: str
    nonce: int
    sender: str
    purpose: str
    raw: bytes
    status: str
    gas_used: int | None


class Journal:
    """Durable record of every transaction this signer produced."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def record(self, tx_hash: str, nonce: int, sender: str, purpose: str, raw: bytes) -> None:
        """Persist a signed transaction before it is broadcast."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?, ?, 'signed', NULL, ?, ?)",
                (tx_hash, nonce, sender.lower(), purpose, raw, now, now),
            )

    def settle(self, tx_hash: str, status: str, gas_used: int) -> None:
        """Record the final status of a mined transaction."""
        with self._lock:
            self._db.execute(
                "UPDATE txs SET status = ?, gas_used = ?, updated_at = ? WHERE tx_hash = ?",
                (status, gas_used, time.time(), tx_hash),
            )

    def mark_replaced(self, sender: str, nonce: int, keep: str) -> None:
        """Mark every other transaction signed for `nonce` as replaced by `keep`."""
        with self._lock:
            self._db.execute(
                "UPDATE txs SET status = 'replaced', updated_at = ? "
                "WHERE sender = ? AND nonce = ? AND tx_hash != ?",
                (time.time(), sender.lower(), nonce, keep),
            )

    def has_unsettled(self, sender: str) -> bool:
        """True while a signed transaction has no known outcome."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM txs WHERE sender = ? AND status = 'signed' LIMIT 1",
                (sender.lower(),),
            ).fetchone()
        return row is not None

    def drop(self, sender: str, nonce: int) -> None:
        """Mark a nonce's signed transactions as never accepted by any node."""
        with self._lock:
            self._db.execute(
                "UPDATE txs SET status = 'dropped', updated_at = ? "
                "WHERE sender = ? AND nonce = ? AND status = 'signed'",
                (time.time(), sender.lower(), nonce),
            )

    def next_nonce(self, sender: str) -> int | None:
        """One past the highest nonce we signed, or None if we never signed."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(nonce) FROM txs WHERE sender = ? AND status != 'dropped'",
                (sender.lower(),),
            ).fetchone()
        return None if row[0] is None else int(row[0]) + 1

    def entries(self, sender: str) -> list[JournalEntry]:
        return self._select("WHERE sender = ? ORDER BY nonce", sender)

    def _select(self, where: str, sender: str) -> list[JournalEntry]:
        with self._lock:
            rows = self._db.execute(
                # `where` is one of this module's constant clauses; values are bound parameters.
                "SELECT tx_hash, nonce, sender, purpose, raw, status, gas_used FROM txs " + where,  # noqa: S608
                (sender.lower(),),
            ).fetchall()
        return [JournalEntry(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
