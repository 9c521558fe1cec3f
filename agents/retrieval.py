"""A small TF-IDF index over knowledge-base articles: good enough for a few hundred articles,
rebuilt in milliseconds, no network and no model download.
"""

from collections.abc import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel


class KnowledgeIndex:
    """Cosine similarity between a ticket text and each (id, text) document, best first."""

    def __init__(self, documents: Sequence[tuple[int, str]]) -> None:
        self._ids = [doc_id for doc_id, _ in documents]
        self._vectorizer = TfidfVectorizer(
            stop_words="english", sublinear_tf=True, ngram_range=(1, 2), strip_accents="unicode"
        )
        try:
            self._matrix = self._vectorizer.fit_transform([text for _, text in documents])
        except ValueError:  # no documents, or nothing but stop words: nothing can match
            self._matrix = None

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, text: str, *, k: int = 3, min_score: float = 0.1) -> list[tuple[int, float]]:
        if self._matrix is None or k <= 0 or not text.strip():
            return []
        scores = linear_kernel(self._vectorizer.transform([text]), self._matrix)[0]  # rows are L2-normed
        ranked = sorted(
            ((doc_id, float(score)) for doc_id, score in zip(self._ids, scores, strict=True)),
            key=lambda hit: -hit[1],
        )
        return [(doc_id, round(score, 4)) for doc_id, score in ranked[:k] if score >= min_score and score > 0]
