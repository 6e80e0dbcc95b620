"""Tables of results: Markdown for files and pipes, a rich table on a terminal.

A `Table` is data (a title, column names, rows of already formatted cells). The lab and the
leaderboard build one; `markdown` writes the form that goes into reports and the docs, and
`show` prints it where a person reads it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console
from rich.table import Table as RichTable


@dataclass(frozen=True)
class Table:
    """Formatted cells under named columns; `notes` are lines printed after the table."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table row {row!r} has {len(row)} cells, expected {len(self.columns)}"
                )


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str = "",
    notes: Sequence[str] = (),
) -> Table:
    """A `Table` from any sequences."""
    return Table(tuple(columns), tuple(tuple(r) for r in rows), title, tuple(notes))


def markdown(t: Table) -> str:
    """The table as Markdown, notes after a blank line."""
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    if t.notes:
        lines += ["", *t.notes]
    return "\n".join(lines)


def show(t: Table, out: IO[str] | None = None) -> None:
    """Print the table: rich on a terminal, Markdown otherwise (so it can be pasted or parsed)."""
    stream = out if out is not None else sys.stdout
    if not stream.isatty():
        print(markdown(t), file=stream)
        return
    rich = RichTable(title=t.title or None)
    for name in t.columns:
        rich.add_column(name)
    for row in t.rows:
        rich.add_row(*row)
    console = Console(file=stream)
    console.print(rich)
    for note in t.notes:
        console.print(note, markup=False, highlight=False)
