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
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

# Below this many samples isotonic regression overfits (scikit-learn's guidance is ~1,000).
ISOTONIC_MIN_SAMPLES = 1000
WILSON_Z = 1.959964  # 95 % two-sided


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


def calibration_fit(raw: Sequence[float], correct: Sequence[bool]) -> Calibration:
    """Fit the map from reviewed decisions: their raw confidence and whether they were right."""
    x = np.clip(np.asarray(raw, dtype=float), 0.0, 1.0)
    y = np.asarray(correct, dtype=float)
    if len(x) == 0 or len(set(y)) < 2:
        # Nothing to learn a curve from (no data, or all right / all wrong): the raw value.
        return Calibration(method="identity", n=len(x))
    if len(x) >= ISOTONIC_MIN_SAMPLES:
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return Calibration(
            method="isotonic",
            n=len(x),
            xs=tuple(float(v) for v in model.X_thresholds_),
            ys=tuple(float(v) for v in model.y_thresholds_),
        )
    model = LogisticRegression(C=1e4).fit(x.reshape(-1, 1), y)
    return Calibration(method="sigmoid", n=len(x), ys=(float(model.coef_[0][0]), float(model.intercept_[0])))


def wilson_lower_bound(successes: int, n: int, z: float = WILSON_Z) -> float:
    """Lower end of the Wilson score interval for a proportion (0 when n is 0)."""
    if n == 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def threshold_select(
    calibrated: Sequence[float], correct: Sequence[bool], *, target: float, min_samples: int
) -> float | None:
    """The lowest confidence whose decisions at or above it are precise enough, or None."""
    c = np.asarray(calibrated, dtype=float)
    y = np.asarray(correct, dtype=bool)
    order = np.argsort(-c, kind="stable")
    c, y = c[order], y[order]
    hits = np.cumsum(y)
    best = None
    for i in range(len(c)):
        # Only the last of equal confidences: "at or above t" includes all of them.
        if i + 1 < len(c) and c[i + 1] == c[i]:
            continue
        n = i + 1
        if n >= min_samples and wilson_lower_bound(int(hits[i]), n) >= target:
            best = float(c[i])
    return best


def thresholds_per_class(
    calibrated: Sequence[float],
    correct: Sequence[bool],
    labels: Sequence[str],
    *,
    target: float,
    min_samples: int,
) -> dict[str, float]:
    """A threshold for each predicted class with enough reviewed decisions to have one."""
    c = np.asarray(calibrated, dtype=float)
    y = np.asarray(correct, dtype=bool)
    names = np.asarray(labels)
    found = {}
    for label in sorted(set(labels)):
        mask = names == label
        if mask.sum() < min_samples:
            continue
        threshold = threshold_select(c[mask], y[mask], target=target, min_samples=min_samples)
        if threshold is not None:
            found[str(label)] = threshold
    return found


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
