import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from agents.ml import Prediction, TextClassifier, metrics
from lab.demo import generate_tickets

OUT_OF_SCOPE = [
    "Preheat the oven to 180 degrees, whisk three eggs with the sugar and fold in the flour.",
    "qwzx plorb vrenk dlaff sktoo mmbrr",
]


def _text(ticket: dict) -> str:
    return f"{ticket['subject']}\n{ticket['body']}"


def _category(ticket: dict) -> str:
    return ticket["metadata"]["demo_truth"]["category"]


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return generate_tickets(count=500, seed=11)


@pytest.fixture(scope="module")
def held_out() -> list[dict]:
    return generate_tickets(count=200, seed=12)


@pytest.fixture(scope="module")
def classifier(history) -> TextClassifier:
    return TextClassifier.fit([_text(t) for t in history], [_category(t) for t in history], seed=0)


def test_it_learns_the_demo_categories(classifier, held_out):
    predictions = classifier.predict_many([_text(t) for t in held_out])
    result = metrics(predictions, [_category(t) for t in held_out])
    assert len(classifier.labels) == 6
    assert result["accuracy"] > 0.85  # chance is 1/6; measured 0.99
    assert result["n_in_scope"] == 200


def test_a_prediction_carries_label_confidence_and_the_best_three(classifier, held_out):
    prediction = classifier.predict(_text(held_out[0]))
    assert isinstance(prediction, Prediction)
    assert prediction.label == prediction.top[0][0]
    assert len(prediction.top) == 3
    assert [p for _, p in prediction.top] == sorted((p for _, p in prediction.top), reverse=True)
    assert 0 <= prediction.confidence <= prediction.probability <= 1
    assert 0 <= prediction.scope <= 1
    # The confidence is the margin between the best two labels.
    assert prediction.confidence == pytest.approx(prediction.top[0][1] - prediction.top[1][1])


def test_it_predicts_the_same_one_at_a_time_and_in_bulk(classifier, held_out):
    texts = [_text(t) for t in held_out[:20]]
    one_by_one = [classifier.predict(text) for text in texts]
    in_bulk = classifier.predict_many(texts)
    for single, bulk in zip(one_by_one, in_bulk, strict=True):
        assert single.label == bulk.label
        assert single.confidence == pytest.approx(bulk.confidence)


def test_it_round_trips_through_bytes(classifier, held_out):
    data = classifier.to_bytes()
    assert isinstance(data, bytes)
    restored = TextClassifier.from_bytes(data)
    texts = [_text(t) for t in held_out[:50]]
    assert restored.predict_many(texts) == classifier.predict_many(texts)
    assert restored.labels == classifier.labels


def test_a_model_stored_by_the_previous_version_still_predicts(classifier, held_out):
    """Version 1 pickles (label centroids, no training vectors, no floor) load and predict."""
    old = pickle.loads(classifier.to_bytes())  # noqa: S301 - our own bytes
    membership = sp.csr_matrix((np.ones(len(old.y)), (np.arange(len(old.y)), old.y)))
    old.centroids_t = normalize(old.vectors_t @ membership, axis=0).tocsr()
    del old.vectors_t, old.y, old.__dict__["min_probability"]

    restored = TextClassifier.from_bytes(pickle.dumps(old))

    texts = [_text(t) for t in held_out[:50]]
    predictions = restored.predict_many(texts)
    assert [p.label for p in predictions] == [p.label for p in classifier.predict_many(texts)]
    assert restored.min_probability == 0.0 and all(0 <= p.scope <= 1 for p in predictions)
    assert restored.predict(OUT_OF_SCOPE[0]).out_of_scope


def test_it_refuses_bytes_that_are_not_a_classifier():
    with pytest.raises(TypeError):
        TextClassifier.from_bytes(pickle.dumps({"not": "a model"}))


def test_an_out_of_scope_text_goes_to_a_person_with_confidence_zero(classifier, held_out):
    in_scope = classifier.predict_many([_text(t) for t in held_out[:50]])
    assert not any(p.out_of_scope for p in in_scope)
    for text in OUT_OF_SCOPE:
        prediction = classifier.predict(text)
        assert prediction.out_of_scope
        assert prediction.confidence == 0.0
        assert prediction.scope < 0.5


def test_known_out_of_scope_examples_set_a_probability_floor(history, held_out):
    """Texts as unsure as most of the known out-of-scope examples are out of scope too."""
    texts, labels = [_text(t) for t in history], [_category(t) for t in history]
    # Known out of scope: short account notes unlike any ticket category, never trained on.
    examples = [f"note {i}: please file this under the {word} folder" for i, word in
                enumerate(["blue", "green", "red", "old", "new", "misc", "other", "spare"] * 5)]  # fmt: skip
    plain = TextClassifier.fit(texts, labels, seed=0)
    guarded = TextClassifier.fit(texts, labels, out_of_scope=examples, seed=0)
    assert plain.min_probability == 0.0
    known = sorted(p.probability for p in plain.predict_many(examples))
    assert guarded.min_probability == pytest.approx(known[int(0.95 * (len(known) - 1))], abs=0.05)
    assert sum(p.out_of_scope for p in guarded.predict_many(examples)) >= 0.95 * len(examples)
    # Ordinary tickets keep their answers.
    kept = guarded.predict_many([_text(t) for t in held_out])
    assert sum(not p.out_of_scope for p in kept) >= 0.9 * len(kept)


def test_it_is_deterministic_for_a_seed(history, held_out):
    texts, labels = [_text(t) for t in history[:200]], [_category(t) for t in history[:200]]
    first = TextClassifier.fit(texts, labels, seed=3)
    second = TextClassifier.fit(texts, labels, seed=3)
    probe = [_text(t) for t in held_out[:30]] + OUT_OF_SCOPE
    assert first.predict_many(probe) == second.predict_many(probe)


def test_it_trains_on_two_labels(history):
    texts = [_text(t) for t in history[:100]]
    labels = ["BILLING_INQUIRY" if _category(t) == "BILLING_INQUIRY" else "OTHER" for t in history[:100]]
    prediction = TextClassifier.fit(texts, labels).predict(texts[0])
    assert prediction.label == labels[0]
    assert len(prediction.top) == 2


def test_it_needs_two_labels():
    with pytest.raises(ValueError, match="two different labels"):
        TextClassifier.fit(["a ticket", "another ticket"], ["X", "X"])


def test_metrics_count_out_of_scope_rows_as_wrong_answers():
    def prediction(label: str, confidence: float) -> Prediction:
        return Prediction(label, confidence, confidence, 1.0, ((label, confidence),))

    predictions = [prediction("A", 0.9), prediction("B", 0.8), prediction("A", 0.6), prediction("A", 0.3)]
    result = metrics(predictions, ["A", "B", "B", "oos"], out_of_scope={"oos"})
    assert result["n"] == 4
    assert result["n_in_scope"] == 3
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["brier"] == pytest.approx((0.1**2 + 0.2**2 + 0.6**2 + 0.3**2) / 4)
    assert result["out_of_scope"] == {
        "n": 1,
        "confidence_above_0_5": 0,
        "mean_confidence": pytest.approx(0.3),
    }
    assert sum(row["n"] for row in result["reliability"]) == 4
