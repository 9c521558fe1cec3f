"""Calibration and thresholds: from raw confidence to "how often is this right", and from
there to the lowest confidence at which the machine may act.

Plain functions over arrays, no database: the controller, the reports and the
``evaluate --target-precision`` command all use these.

* ``calibration_fit`` learns a monotone map raw → probability of being right from decisions
  whose correctness a person established: isotonic regression with enough samples,
  Platt scaling (a logistic curve) below that, where isotonic overfits.
* ``threshold_select`` returns the lowest calibrated confidence t such that, among the
  reviewed decisions at or above t, the **Wilson 95 % lower bound** of precision meets the
  target, with at least ``min_samples`` of them. None when no t qualifies: then every
  decision goes to a person.
* Reviewed decisions may carry weights, 1 / the chance they were drawn for review: in phases
  4 and 5 only a sample of the automatic decisions is reviewed, and unweighted they would
  count for too little next to the low-confidence ones people decide anyway. A weighted
  proportion's interval uses Kish's effective sample size.
* ``population_stability`` compares two distributions (confidence histogram, label mix):
  the input-drift signal of the quality monitor.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

# Below this many samples isotonic regression overfits (scikit-learn's guidance is ~1,000).
ISOTONIC_MIN_SAMPLES = 1000
# A 95 % *lower* confidence bound is one-sided: 5 % of the mass below it, z = 1.645.
# The two-sided 95 % interval the reports show uses 1.96.
WILSON_Z = 1.644854
INTERVAL_Z = 1.959964


@dataclass(frozen=True)
class Calibration:
    """A fitted map raw confidence → calibrated confidence, storable as JSON."""

    method: str  # "isotonic" | "sigmoid" | "identity"
    n: int
    # isotonic: the step function's knots; sigmoid: [slope, intercept]
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()

    def apply(self, raw: Sequence[float] | np.ndarray) -> np.ndarray:
        raw = np.clip(np.asarray(raw, dtype=float), 0.0, 1.0)
        if self.method == "isotonic":
            return np.interp(raw, self.xs, self.ys)
        if self.method == "sigmoid":
            slope, intercept = self.ys
            return 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
        return raw

    def to_dict(self) -> dict:
        return {"method": self.method, "n": self.n, "xs": list(self.xs), "ys": list(self.ys)}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(method=data["method"], n=data["n"], xs=tuple(data["xs"]), ys=tuple(data["ys"]))


def _weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    return np.ones(n) if weights is None else np.asarray(weights, dtype=float)


def calibration_fit(
    raw: Sequence[float], correct: Sequence[bool], weights: Sequence[float] | None = None
) -> Calibration:
    """Fit the map from reviewed decisions: their raw confidence and whether they were right."""
    x = np.clip(np.asarray(raw, dtype=float), 0.0, 1.0)
    y = np.asarray(correct, dtype=float)
    w = _weights(weights, len(x))
    if len(x) == 0 or len(set(y)) < 2:
        # Nothing to learn a curve from (no data, or all right / all wrong): the raw value.
        return Calibration(method="identity", n=len(x))
    if len(x) >= ISOTONIC_MIN_SAMPLES:
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y, sample_weight=w)
        return Calibration(
            method="isotonic",
            n=len(x),
            xs=tuple(float(v) for v in model.X_thresholds_),
            ys=tuple(float(v) for v in model.y_thresholds_),
        )
    model = LogisticRegression(C=1e4).fit(x.reshape(-1, 1), y, sample_weight=w)
    return Calibration(method="sigmoid", n=len(x), ys=(float(model.coef_[0][0]), float(model.intercept_[0])))


def wilson_interval(p: float, n: float, z: float = INTERVAL_Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed on ``n`` (maybe effective) samples."""
    if n <= 0:
        return 0.0, 1.0
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)


def wilson_lower_bound(successes: float, n: float, z: float = WILSON_Z) -> float:
    """One-sided lower confidence bound of a proportion (0 when n is 0)."""
    return wilson_interval(successes / n, n, z)[0] if n > 0 else 0.0


@dataclass(frozen=True)
class Estimate:
    """A proportion with its 95 % interval and what it rests on."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def review_weight(sampling_rate: float) -> float:
    """What one reviewed decision stands for: 1 / the chance it was drawn for review."""
    return 1.0 / max(sampling_rate, MIN_SAMPLING_RATE)


# A sampling rate is never taken below this, so a weight stays finite.
MIN_SAMPLING_RATE = 1e-6


def weighted_estimate(*, hits: float, total: float, squares: float, n: int) -> Estimate:
    """A weighted share from its sums (of weights where correct, of weights, of squared
    weights) with a Wilson interval on Kish's effective sample size."""
    if n == 0 or total <= 0:
        return Estimate(None, None, None, 0)
    p = hits / total
    low, high = wilson_interval(p, total**2 / squares)
    return Estimate(p, low, high, n)


def proportion_estimate(correct: Sequence[bool], weights: Sequence[float] | None = None) -> Estimate:
    """Weighted share of ``correct`` with a Wilson interval on Kish's effective sample size."""
    y = np.asarray(correct, dtype=float)
    if len(y) == 0:
        return Estimate(None, None, None, 0)
    w = _weights(weights, len(y))
    return weighted_estimate(
        hits=float((w * y).sum()), total=float(w.sum()), squares=float((w * w).sum()), n=len(y)
    )


def threshold_select(
    calibrated: Sequence[float],
    correct: Sequence[bool],
    *,
    target: float,
    min_samples: int,
    weights: Sequence[float] | None = None,
) -> float | None:
    """The lowest confidence whose decisions at or above it are precise enough, or None."""
    c = np.asarray(calibrated, dtype=float)
    y = np.asarray(correct, dtype=bool)
    w = _weights(weights, len(c))
    order = np.argsort(-c, kind="stable")
    c, y, w = c[order], y[order], w[order]
    hits, total, squares = np.cumsum(w * y), np.cumsum(w), np.cumsum(w * w)
    best = None
    for i in range(len(c)):
        # Only the last of equal confidences: "at or above t" includes all of them.
        if i + 1 < len(c) and c[i + 1] == c[i]:
            continue
        if i + 1 < min_samples:
            continue
        effective = total[i] ** 2 / squares[i]
        if wilson_lower_bound(hits[i] / total[i] * effective, effective) >= target:
            best = float(c[i])
    return best


def thresholds_per_class(
    calibrated: Sequence[float],
    correct: Sequence[bool],
    labels: Sequence[str],
    *,
    target: float,
    min_samples: int,
    weights: Sequence[float] | None = None,
    fallback: float | None = None,
) -> dict[str, float | None]:
    """Thresholds for predicted classes with ``min_samples`` reviewed decisions of their own.

    A class departs from the global ``fallback`` only on clear evidence of its own:

    * lower, where its decisions meet the target from a lower threshold on (the same
      Wilson-bound rule as the global threshold);
    * higher, where its decisions at or above the global threshold are clearly less precise
      than the target (even the upper end of their 95 % interval is below it): the lowest
      stricter threshold at which that is no longer clear; None — its decisions go to
      people — when no threshold clears it.

    Classes with less evidence are left out: the global threshold applies to them.
    """
    c = np.asarray(calibrated, dtype=float)
    y = np.asarray(correct, dtype=bool)
    w = _weights(weights, len(c))
    names = np.asarray(labels)
    found: dict[str, float | None] = {}
    for label in sorted(set(labels)):
        mask = names == label
        if mask.sum() < min_samples:
            continue
        threshold = threshold_select(
            c[mask], y[mask], target=target, min_samples=min_samples, weights=w[mask]
        )
        if threshold is not None and (fallback is None or threshold <= fallback):
            found[str(label)] = threshold
        elif fallback is not None and _clearly_short(c[mask], y[mask], w[mask], fallback, target):
            found[str(label)] = next(
                (
                    float(t)
                    for t in np.unique(c[mask & (c > fallback)])
                    if not _clearly_short(c[mask], y[mask], w[mask], t, target)
                ),
                None,
            )
    return found


def _clearly_short(c: np.ndarray, y: np.ndarray, w: np.ndarray, threshold: float, target: float) -> bool:
    """Whether the decisions at or above ``threshold`` are clearly less precise than ``target``."""
    above = c >= threshold
    return bool(above.any()) and proportion_estimate(y[above], w[above]).high < target


def coverage_at(
    confidences: Sequence[float], correct: Sequence[bool], threshold: float | None
) -> tuple[float, float | None, int]:
    """(share at or above the threshold, their precision, how many) — (0, None, 0) without one."""
    c = np.asarray(confidences, dtype=float)
    y = np.asarray(correct, dtype=bool)
    if threshold is None or len(c) == 0:
        return 0.0, None, 0
    chosen = c >= threshold
    n = int(chosen.sum())
    return n / len(c), (float(y[chosen].mean()) if n else None), n


# --- drift -----------------------------------------------------------------------------

CONFIDENCE_BINS = 10
# Labels beyond the most frequent ones are pooled, so a mix of 77 intents compared on a few
# hundred decisions is not all noise.
MIX_TOP_LABELS = 10
OTHER = "(other)"
NONE = "(none)"


def confidence_histogram(confidences: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """Shares of the confidences in ten equal-width bins over 0..1."""
    c = np.clip(np.asarray(confidences, dtype=float), 0.0, 1.0)
    w = _weights(weights, len(c))
    bins = np.minimum((c * CONFIDENCE_BINS).astype(int), CONFIDENCE_BINS - 1)
    counts = np.bincount(bins, weights=w, minlength=CONFIDENCE_BINS)
    return (counts / max(w.sum(), 1e-12)).tolist()


def label_mix(
    labels: Sequence[str], *, keep: Sequence[str] | None = None, weights: Sequence[float] | None = None
) -> dict[str, float]:
    """Shares of the labels; those not in ``keep`` (default: the most frequent) pooled as one.
    An empty label (no answer: out of scope) is a bucket of its own."""
    w = _weights(weights, len(labels))
    counts: dict[str, float] = {}
    for label, weight in zip(labels, w, strict=True):
        counts[label or NONE] = counts.get(label or NONE, 0.0) + float(weight)
    if keep is None:
        keep = sorted(counts, key=lambda k: (-counts[k], k))[:MIX_TOP_LABELS]
    keep = [*dict.fromkeys([*keep, NONE])]
    total = max(float(w.sum()), 1e-12)
    mix = {label: counts.get(label, 0.0) / total for label in keep}
    mix[OTHER] = max(0.0, 1.0 - sum(mix.values()))
    return mix


def population_stability(expected: Sequence[float], actual: Sequence[float], *, floor: float = 1e-3) -> float:
    """PSI = sum (a - e) ln(a / e) over matching buckets; about 0.1 is a shift, 0.25 a large one."""
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    return float(np.sum((a - e) * np.log(a / e)))
