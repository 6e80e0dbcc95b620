"""The lab's statistics: 95 % intervals for means, proportions and any statistic of lives.

scipy.stats does the arithmetic (Student's t, the Wilson score interval, the percentile
bootstrap); this module fixes the level, the degenerate cases (no value, one value) and the
shape the reports use: an `Interval` of the statistic with its low and high ends.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy import stats

LEVEL = 0.95
T = TypeVar("T")


@dataclass(frozen=True)
class Interval:
    """A statistic and its 95 % interval."""

    value: float
    low: float
    high: float


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean (a point when there is one value or no spread)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, mean
    quantile = float(stats.t.ppf((1 + level) / 2, n - 1))
    half = quantile * statistics.stdev(values) / math.sqrt(n)
    return mean - half, mean + half


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion (sound at 0 % and 100 %)."""
    if n == 0:
        return 0.0, 1.0
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap(
    values: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    resamples: int,
    rng: np.random.Generator,
    level: float = LEVEL,
) -> Interval:
    """The statistic and its percentile bootstrap interval (resampling the values)."""
    if not values:
        return Interval(float("nan"), float("nan"), float("nan"))
    value = float(statistic(values))
    if len(values) == 1:  # every resample is the one value
        return Interval(value, value, value)

    def of_indices(indices: Any) -> float:
        # The values may be any objects (a life): resample their positions, not the values.
        return float(statistic([values[i] for i in indices]))

    result = stats.bootstrap(
        (np.arange(len(values)),),
        of_indices,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        vectorized=False,
        rng=rng,
    )
    ci = result.confidence_interval
    return Interval(value, float(ci.low), float(ci.high))


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
