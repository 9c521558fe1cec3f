"""The CSAT difference and its interval, on answers whose statistics are known."""

import statistics

import pytest

from outcomes.stats import ScoreSummary, mean_difference


def summary(scores: list[int]) -> ScoreSummary:
    return ScoreSummary.from_sums(n=len(scores), total=sum(scores), squares=sum(s * s for s in scores))


def test_sums_give_the_mean_and_sample_variance_of_the_scores():
    scores = [5, 4, 4, 3, 5, 1]

    got = summary(scores)

    assert got.mean == pytest.approx(statistics.mean(scores))
    assert got.variance == pytest.approx(statistics.variance(scores))


def test_the_difference_interval_is_welch_at_95_percent():
    ai, people = summary([5, 4, 4, 3] * 25), summary([5, 5, 4, 4] * 25)

    got = mean_difference(ai, people)

    se = (ai.variance / ai.n + people.variance / people.n) ** 0.5
    assert got.value == pytest.approx(-0.5)
    assert (got.low, got.high) == pytest.approx((-0.5 - 1.959964 * se, -0.5 + 1.959964 * se))


def test_no_difference_is_claimed_on_fewer_than_two_answers_a_side():
    assert mean_difference(summary([5]), summary([4, 5, 3])).value is None
    assert summary([]).mean is None
