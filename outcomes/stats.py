"""The statistics of customer satisfaction, in one place: the dashboard, the readiness
criterion and the quality monitor compare AI-resolved with person-resolved CSAT the same way."""

import math
from dataclasses import dataclass
from statistics import NormalDist

INTERVAL_Z = NormalDist().inv_cdf(0.975)  # two-sided 95 %


@dataclass(frozen=True)
class ScoreSummary:
    """Answers on the 1–5 scale: how many, their mean and (sample) variance."""

    n: int
    mean: float | None
    variance: float | None

    @classmethod
    def from_sums(cls, *, n: int, total: float, squares: float) -> "ScoreSummary":
        """From SQL aggregates: count, sum of scores, sum of squared scores."""
        if n == 0:
            return cls(0, None, None)
        mean = total / n
        variance = (squares - n * mean * mean) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, max(variance, 0.0))

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean}


@dataclass(frozen=True)
class Difference:
    """mean(a) − mean(b) with its two-sided interval (normal approximation, Welch's standard
    error); None where either side has fewer than two answers."""

    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}


def mean_difference(a: ScoreSummary, b: ScoreSummary, *, z: float = INTERVAL_Z) -> Difference:
    if a.n < 2 or b.n < 2:
        return Difference(None, None, None)
    value = a.mean - b.mean
    margin = z * math.sqrt(a.variance / a.n + b.variance / b.n)
    return Difference(value, value - margin, value + margin)
