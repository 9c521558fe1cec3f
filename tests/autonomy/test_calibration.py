"""Calibration maps raw confidence to how often decisions are right; thresholds hold a target."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autonomy.calibration import (
    ISOTONIC_MIN_SAMPLES,
    OTHER,
    Calibration,
    calibration_fit,
    confidence_histogram,
    coverage_at,
    label_mix,
    population_stability,
    proportion_estimate,
    threshold_select,
    thresholds_per_class,
    wilson_interval,
    wilson_lower_bound,
)


def overconfident(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A model that says p but is right only p² of the time."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0, 1, n)
    return raw, rng.uniform(0, 1, n) < raw**2


@pytest.mark.parametrize(("n", "method"), [(300, "sigmoid"), (ISOTONIC_MIN_SAMPLES * 3, "isotonic")])
def test_it_learns_that_an_overconfident_model_is_right_less_often_than_it_says(n, method):
    raw, correct = overconfident(n)
    calibration = calibration_fit(raw, correct)

    assert calibration.method == method
    fresh_raw, fresh_correct = overconfident(20_000, seed=1)
    calibrated = calibration.apply(fresh_raw)
    high = fresh_raw > 0.8
    # Raw says ~0.9 there; the truth is ~0.81, and calibration gets close to it.
    assert abs(calibrated[high].mean() - fresh_correct[high].mean()) < 0.05
    assert abs(fresh_raw[high].mean() - fresh_correct[high].mean()) > 0.07


def test_a_calibration_survives_json_and_stays_monotone():
    raw, correct = overconfident(5000)
    calibration = Calibration.from_dict(calibration_fit(raw, correct).to_dict())
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(calibration.apply(grid)) >= 0)
    assert calibration.apply([1.5, -1])[0] <= 1 and calibration.apply([1.5, -1])[1] >= 0


def test_with_nothing_to_learn_from_it_keeps_the_raw_value():
    assert calibration_fit([], []).method == "identity"
    assert calibration_fit([0.2, 0.9], [True, True]).apply([0.3])[0] == pytest.approx(0.3)


def test_wilson_bounds_match_known_values():
    assert wilson_lower_bound(0, 0) == 0
    # One-sided 95 % lower bounds (z = 1.645) …
    assert wilson_lower_bound(95, 100) == pytest.approx(0.9008, abs=1e-3)
    assert wilson_lower_bound(950, 1000) == pytest.approx(0.9374, abs=1e-3)
    # … and the two-sided 95 % interval of the reports (z = 1.96).
    assert wilson_interval(0.95, 100) == pytest.approx((0.8882, 0.9785), abs=1e-3)


def test_a_sampled_review_counts_for_every_decision_it_stands_for():
    # 10 low-confidence decisions reviewed in full (2 wrong), 10 sampled at 10 % (all right):
    # the sampled ones stand for 100, so the estimate is close to their accuracy.
    correct = [True] * 8 + [False] * 2 + [True] * 10
    weights = [1.0] * 10 + [10.0] * 10
    estimate = proportion_estimate(correct, weights)
    assert estimate.value == pytest.approx(108 / 110)
    assert estimate.n == 20
    assert estimate.low < estimate.value < estimate.high
    # Unweighted, the sampled decisions are drowned by the ones people decided anyway.
    assert proportion_estimate(correct).value == pytest.approx(0.9)


def test_population_stability_is_zero_for_the_same_mix_and_large_for_a_new_one():
    before = label_mix(["a"] * 50 + ["b"] * 50)
    assert population_stability(list(before.values()), list(before.values())) == 0
    after = label_mix(["a"] * 5 + ["c"] * 95, keep=[k for k in before if k not in (OTHER, "(none)")])
    assert after[OTHER] == pytest.approx(0.95)
    assert label_mix(["a", ""])["(none)"] == 0.5
    assert population_stability(list(before.values()), list(after.values())) > 1
    assert confidence_histogram([0.05, 0.95, 1.0, 0.5]) == [0.25, 0, 0, 0, 0, 0.25, 0, 0, 0, 0.5]


def test_the_threshold_is_the_lowest_confidence_whose_lower_bound_meets_the_target():
    # 200 decisions at 0.95 all right, 200 at 0.6 right half the time.
    calibrated = [0.95] * 200 + [0.6] * 200
    correct = [True] * 200 + [True, False] * 100
    assert threshold_select(calibrated, correct, target=0.9, min_samples=50) == 0.95
    assert threshold_select(calibrated, correct, target=0.7, min_samples=50) == 0.6
    # Too few samples to trust anything: no threshold, everything to a person.
    assert threshold_select(calibrated, correct, target=0.9, min_samples=500) is None


def test_equal_confidences_are_taken_together():
    # The first two alone would pass (2 of 2: lower bound 0.34), but all four share the
    # confidence, and 2 of 4 has a lower bound of 0.15.
    calibrated, correct = [0.8, 0.8, 0.8, 0.8], [True, True, False, False]
    assert threshold_select(calibrated, correct, target=0.3, min_samples=2) is None
    assert threshold_select(calibrated, correct, target=0.1, min_samples=2) == 0.8


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), max_size=300), st.floats(0.5, 0.99))
def test_decisions_at_or_above_a_chosen_threshold_meet_the_target_by_their_lower_bound(pairs, target):
    calibrated = [c for c, _ in pairs]
    correct = [y for _, y in pairs]
    threshold = threshold_select(calibrated, correct, target=target, min_samples=20)
    if threshold is not None:
        share, precision, n = coverage_at(calibrated, correct, threshold)
        assert n >= 20
        assert wilson_lower_bound(round(precision * n), n) >= target - 1e-9


def test_classes_without_enough_data_get_no_threshold_of_their_own():
    labels = ["billing"] * 300 + ["rare"] * 10
    calibrated = [0.9] * 310
    correct = [True] * 310
    assert thresholds_per_class(calibrated, correct, labels, target=0.9, min_samples=50) == {"billing": 0.9}


def test_a_class_the_global_threshold_does_not_hold_for_goes_to_people():
    labels = ["billing"] * 200 + ["tricky"] * 200 + ["fine"] * 60
    calibrated = [0.9] * 460
    correct = [True] * 200 + [True, False] * 100 + [True] * 54 + [False] * 6
    found = thresholds_per_class(calibrated, correct, labels, target=0.9, min_samples=50, fallback=0.9)
    # "tricky" is right half the time at the global threshold: people decide it. "fine" is
    # 90 % right there: too few for a threshold of its own, not clearly worse than the
    # target either, so the global one applies.
    assert found == {"billing": 0.9, "tricky": None}


def test_a_class_clearly_short_at_the_global_threshold_gets_a_stricter_one_where_it_holds():
    # "tricky" is right half the time at 0.9, every time at 0.97: its own threshold is 0.97.
    labels = ["billing"] * 200 + ["tricky"] * 260
    calibrated = [0.9] * 400 + [0.97] * 60
    correct = [True] * 200 + [True, False] * 100 + [True] * 60
    found = thresholds_per_class(calibrated, correct, labels, target=0.9, min_samples=50, fallback=0.9)
    assert found == {"billing": 0.9, "tricky": 0.97}


def test_coverage_without_a_threshold_is_zero():
    assert coverage_at([0.9, 0.8], [True, False], None) == (0.0, None, 0)
    assert coverage_at([0.9, 0.8], [True, False], 0.85) == (0.5, 1.0, 1)


def test_a_class_threshold_only_ever_relaxes_the_global_one_on_its_own_evidence():
    # "strong" is right from 0.6 up; "average" needs 0.95 on its own (small sample), but
    # is not clearly worse than the target at the global 0.8: it keeps the global one.
    labels = ["strong"] * 200 + ["average"] * 100
    calibrated = [0.6] * 200 + [0.8] * 50 + [0.95] * 50
    correct = [True] * 200 + [True] * 44 + [False] * 6 + [True] * 50
    found = thresholds_per_class(calibrated, correct, labels, target=0.9, min_samples=50, fallback=0.8)
    assert found == {"strong": 0.6}
