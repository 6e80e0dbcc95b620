"""One report writer for the lab: a result's JSON, its Markdown table and its PNG chart.

A calibration and an evaluation each say what they are (`stem`), give their data (`to_json`),
their table (`agent.reports.tables.Table`) and their chart's series; this module writes the
three files side by side and renders the table as the Markdown that is printed and quoted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.reports.charts import line_chart
from agent.reports.tables import Table, markdown


@dataclass(frozen=True)
class Chart:
    """A line chart's data: one series per contestant, against the tick."""

    series: Mapping[str, Sequence[float]]
    title: str


class Reportable(Protocol):
    """A lab result that can be written as a report."""

    @property
    def stem(self) -> str:
        """The reports' file name without suffix (`calibration`, `evaluation`)."""
        ...

    def to_json(self) -> dict[str, Any]: ...

    def table(self) -> Table: ...

    def chart(self) -> Chart: ...


def render_table(result: Reportable) -> str:
    """The result's table as Markdown (it goes in the docs as printed)."""
    return markdown(result.table())


def write_report(result: Reportable, out_dir: Path) -> tuple[Path, Path, Path]:
    """`<stem>.json`, `<stem>.md` and `<stem>.png` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    as_json = out_dir / f"{result.stem}.json"
    as_json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    table = out_dir / f"{result.stem}.md"
    table.write_text(render_table(result) + "\n")
    chart = result.chart()
    png = line_chart(chart.series, out_dir / f"{result.stem}.png", title=chart.title)
    return as_json, table, png
