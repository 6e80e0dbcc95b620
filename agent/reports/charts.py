"""Charts written as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def line_chart(
    series: Mapping[str, Sequence[float]],
    out: Path,
    *,
    title: str = "Net worth over the population's lives",
    x_label: str = "tick",
    y_label: str = "net worth (STABLE)",
) -> Path:
    """One line per named series against its index; legend in the given order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5.5), dpi=100)
    try:
        for name, values in series.items():
            axes.plot(range(len(values)), values, label=name, linewidth=1.6)
        axes.set_title(title)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(alpha=0.3)
        if series:
            axes.legend(loc="best", fontsize=8)
        figure.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, format="png")
    finally:
        plt.close(figure)
    return out
