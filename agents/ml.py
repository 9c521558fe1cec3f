"""The local text classifier: one model per decision type (e.g. ticket category).

Features: two TF-IDF views of the lower-cased text with sublinear term frequency, word
1-2-grams and ``char_wb`` 2-5-grams (character n-grams inside word boundaries, which are
robust to typos and inflections; weighted 1.5), stacked and L2-normalised. Model: multinomial logistic
regression. On banking77 this is as good as anything linear we tried (see the evaluate
command), and one ticket is classified in about a millisecond.

Out of scope. A classifier spreads all its probability over the labels it knows, so a text
about something else entirely can still come out with a confident, made-up label. Each
prediction therefore carries a ``scope`` factor in 0..1 that says how much the text looks
like the training texts of the label it was given:

* every label has a centroid, the normalised mean of its training vectors;
* ``similarity`` is the cosine between the text's vector and the centroid of its top label;
* at training time we measure the same similarity for every training text against its own
  label's centroid *leaving that text out*, and keep two quantiles of that distribution:
  ``high`` (the 10th percentile: 90% of the training texts are at least this typical) and
  ``low`` (a quarter of the way from 0 to ``high``);
* ``scope = clip((similarity - low) / (high - low), 0, 1)``, so a typical text has scope 1
  and one that shares little more than stop words and common letter runs with the label's
  texts has scope near 0.

``confidence = probability * scope``, and 0 for a text out of scope (scope below
``OUT_OF_SCOPE_BELOW``): a person decides those. Scope only ever lowers the confidence, it never
changes the label; the ranking of confidences stays monotone with correctness in practice
(a text far from its label's centroid is also more often wrong), which keeps the confidence
usable for calibration and thresholds.

The metric helpers at the bottom score predictions against the truth; rows whose true label
is out of scope (unknown to the model, or e.g. ``oos``) have one right answer, "to a human",
so every label predicted for them counts as wrong.
"""

import math
import pickle
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.preprocessing import normalize

TOP_K = 3
CHAR_WEIGHT = 1.5
SCOPE_QUANTILE = 10  # percent of training texts allowed below full scope
SCOPE_LOW_FRACTION = 0.25  # low = this fraction of high
# Below this scope a text is out of scope: confidence 0, whatever the probability.
OUT_OF_SCOPE_BELOW = 0.5


@dataclass(frozen=True)
class Prediction:
    label: str  # the top label
    confidence: float  # probability * scope; low for texts unlike anything trained on
    probability: float  # the classifier's own top-class probability, before the scope factor
    scope: float  # 0..1 how much the text resembles the training data of its label (1 = typical)
    top: tuple[tuple[str, float], ...]  # best 3 (label, probability)

    @property
    def out_of_scope(self) -> bool:
        return self.scope < OUT_OF_SCOPE_BELOW


def _normalise(text: str) -> str:
    return text.lower().replace("\u2019", "'")


def _stack(words: sp.spmatrix, chars: sp.spmatrix) -> sp.csr_matrix:
    """One L2-normalised row per text; the character view weighs a little more than the words."""
    return normalize(sp.hstack([words, CHAR_WEIGHT * chars], format="csr"))


class TextClassifier:
    ALGORITHM: ClassVar[str] = "tfidf-word-char-lr/1"

    labels: list[str]

    def __init__(
        self,
        *,
        words: TfidfVectorizer,
        chars: TfidfVectorizer,
        model: LogisticRegression,
        centroids: sp.csr_matrix,
        scope_low: float,
        scope_high: float,
    ) -> None:
        self.words = words
        self.chars = chars
        self.labels = [str(label) for label in model.classes_]
        # The fitted weights, kept as plain arrays so predicting is a sparse-dense product and a
        # softmax, without the per-call input validation of predict_proba.
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:  # two labels: one logit for the second, i.e. a softmax over (0, logit)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        self.coef_t = np.ascontiguousarray(coef.T, dtype=np.float32)  # features x labels
        self.intercept = intercept.astype(np.float32)
        self.centroids_t = centroids.T.tocsr()  # features x labels, normalised label centroids
        self.scope_low = scope_low
        self.scope_high = scope_high

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0) -> "TextClassifier":
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if len(set(labels)) < 2:
            raise ValueError("need at least two different labels to train a classifier")
        words = TfidfVectorizer(preprocessor=_normalise, ngram_range=(1, 2), sublinear_tf=True)
        chars = TfidfVectorizer(
            preprocessor=_normalise,
            analyzer="char_wb",
            ngram_range=(2, 5),
            min_df=2 if len(texts) >= 1000 else 1,
            sublinear_tf=True,
        )
        documents = [str(text) for text in texts]
        x = _stack(words.fit_transform(documents), chars.fit_transform(documents))
        model = LogisticRegression(C=30.0, max_iter=3000, random_state=seed)
        y = [str(label) for label in labels]
        with warnings.catch_warnings():
            # Early in a team's life there are few labels per class; sklearn warns that the
            # labels look like a regression target. They are not.
            warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
            model.fit(x, y)
        centroids, scope_low, scope_high = _scope_reference(x, np.searchsorted(model.classes_, y))
        return cls(
            words=words,
            chars=chars,
            model=model,
            centroids=centroids,
            scope_low=scope_low,
            scope_high=scope_high,
        )

    def _vectors(self, texts: Sequence[str]) -> sp.csr_matrix:
        documents = [str(text) for text in texts]
        return _stack(self.words.transform(documents), self.chars.transform(documents))

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        if not len(texts):
            return []
        x = self._vectors(texts)
        scores = x.astype(np.float32) @ self.coef_t + self.intercept  # same dtype: no copy of coef_t
        scores -= scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = np.argsort(-probabilities, axis=1)[:, :TOP_K]
        similarities = (x @ self.centroids_t).toarray()[np.arange(len(best)), best[:, 0]]
        scopes = np.clip((similarities - self.scope_low) / (self.scope_high - self.scope_low), 0.0, 1.0)
        predictions = []
        for row, order, scope in zip(probabilities, best, scopes, strict=True):
            probability = float(row[order[0]])
            predictions.append(
                Prediction(
                    label=self.labels[order[0]],
                    confidence=probability * float(scope) if scope >= OUT_OF_SCOPE_BELOW else 0.0,
                    probability=probability,
                    scope=float(scope),
                    top=tuple((self.labels[i], float(row[i])) for i in order),
                )
            )
        return predictions

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> "TextClassifier":
        # Unpickling runs code. Model bytes are trusted: only our own training writes them
        # (to our own database); never load bytes from a request or an upload.
        model = pickle.loads(data)  # noqa: S301
        if not isinstance(model, cls):
            raise TypeError(f"expected a pickled {cls.__name__}, got {type(model).__name__}")
        return model


def _scope_reference(x: sp.csr_matrix, y: np.ndarray) -> tuple[sp.csr_matrix, float, float]:
    """Label centroids, and the (low, high) similarities the scope factor maps to 0 and 1.

    The reference similarities are leave-one-out: each training text against the centroid of
    the other texts of its label, so a label with few examples does not look too tight.
    """
    n_labels = int(y.max()) + 1
    membership = sp.csr_matrix((np.ones(len(y)), (y, np.arange(len(y)))), shape=(n_labels, len(y)))
    sums = (membership @ x).tocsr()  # one row per label
    counts = np.bincount(y, minlength=n_labels)
    centroids = normalize(sums).astype(np.float32)
    # <x, sum - x> / |sum - x|, with |x| = 1: the cosine between x and its leave-one-out centroid.
    dot_sum = (x @ sums.T).toarray()[np.arange(len(y)), y]
    norm_sum_sq = np.asarray(sums.multiply(sums).sum(axis=1)).ravel()[y]
    rest_norm = np.sqrt(np.maximum(norm_sum_sq - 2 * dot_sum + 1, 1e-12))
    loo = np.where(counts[y] > 1, (dot_sum - 1) / rest_norm, np.nan)
    loo = loo[~np.isnan(loo)]
    high = float(np.percentile(loo, SCOPE_QUANTILE)) if len(loo) else 0.5
    high = max(high, 0.05)
    return centroids, SCOPE_LOW_FRACTION * high, high


# --- metrics -------------------------------------------------------------------------------


def correctness(predictions: Sequence[Prediction], truth: Sequence[str]) -> np.ndarray:
    """1 where the top label is the true label, else 0 (always 0 for out-of-scope truth)."""
    return np.array([p.label == t for p, t in zip(predictions, truth, strict=True)], dtype=float)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[float], *, bins: int = 15
) -> float:
    """ECE: sum over equal-width confidence bins of (bin share) * |accuracy - mean confidence|."""
    return sum(
        row["n"] / len(confidences) * abs(row["accuracy"] - row["confidence"])
        for row in reliability_bins(confidences, correct, bins=bins)
    )


def brier(confidences: Sequence[float], correct: Sequence[float]) -> float:
    """Top-label Brier score: mean((confidence - correct)^2)."""
    c, y = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    return float(np.mean((c - y) ** 2)) if len(c) else math.nan


def reliability_bins(confidences: Sequence[float], correct: Sequence[float], *, bins: int = 15) -> list[dict]:
    """Non-empty equal-width bins over 0..1: range, count, mean confidence and accuracy."""
    c, y = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    index = np.minimum((c * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "n": int(mask.sum()),
                    "confidence": float(c[mask].mean()),
                    "accuracy": float(y[mask].mean()),
                }
            )
    return rows


def metrics(
    predictions: Sequence[Prediction], truth: Sequence[str], *, out_of_scope: Collection[str] = frozenset()
) -> dict:
    """Score predictions against the true labels.

    Rows whose true label is in ``out_of_scope`` should go to a human. ``accuracy`` and
    ``macro_f1`` are over the in-scope rows; ``ece``, ``brier`` and ``reliability`` are over
    all rows, with every out-of-scope row counted as a wrong answer, because that is what an
    automatic action on it would be.
    """
    truth = [str(t) for t in truth]
    in_scope = np.array([t not in out_of_scope for t in truth], dtype=bool)
    correct = correctness(predictions, truth) * in_scope
    confidences = np.array([p.confidence for p in predictions], dtype=float)
    in_truth = [t for t, keep in zip(truth, in_scope, strict=True) if keep]
    in_predicted = [p.label for p, keep in zip(predictions, in_scope, strict=True) if keep]
    oos_confidences = confidences[~in_scope]
    return {
        "n": len(truth),
        "n_in_scope": int(in_scope.sum()),
        "accuracy": float(correct[in_scope].mean()) if in_scope.any() else math.nan,
        "macro_f1": (
            float(
                f1_score(
                    in_truth, in_predicted, labels=sorted(set(in_truth)), average="macro", zero_division=0
                )
            )
            if in_truth
            else math.nan
        ),
        "ece": expected_calibration_error(confidences, correct) if len(truth) else math.nan,
        "brier": brier(confidences, correct),
        "reliability": reliability_bins(confidences, correct),
        "out_of_scope": {
            "n": int((~in_scope).sum()),
            "confidence_above_0_5": int((oos_confidences > 0.5).sum()),
            "mean_confidence": float(oos_confidences.mean()) if len(oos_confidences) else None,
        },
    }
