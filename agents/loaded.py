"""Trained local models and the knowledge-base index, each loaded once per worker process.

A cheap query per use tells whether the active version changed (a new model was trained,
or the knowledge base was edited); only then is the artifact loaded or the index rebuilt.
"""

from dataclasses import dataclass
from threading import Lock

from django.db.models import Count, Max

from agents.ml import TextClassifier
from agents.models import KnowledgeArticle, ModelVersion
from agents.retrieval import KnowledgeIndex


@dataclass(frozen=True)
class LoadedModel:
    id: int
    version: int
    decision_type: str
    classifier: TextClassifier

    @property
    def name(self) -> str:
        return f"{self.decision_type} v{self.version} ({self.classifier.ALGORITHM})"


_models: dict[str, LoadedModel] = {}
_lock = Lock()


def active_model(decision_type: str) -> LoadedModel | None:
    row = (
        ModelVersion.objects.filter(decision_type=decision_type, is_active=True)
        .values_list("id", "version")
        .first()
    )
    if row is None:
        return None
    loaded = _models.get(decision_type)
    if loaded is not None and loaded.id == row[0]:
        return loaded
    with _lock:
        artifact = ModelVersion.objects.values_list("artifact", flat=True).get(pk=row[0])
        loaded = LoadedModel(
            id=row[0],
            version=row[1],
            decision_type=decision_type,
            classifier=TextClassifier.from_bytes(bytes(artifact)),
        )
        _models[decision_type] = loaded
    return loaded


@dataclass(frozen=True)
class KnowledgeItem:
    id: int
    kind: str
    title: str
    body: str
    category: str


@dataclass
class _KnowledgeCache:
    stamp: tuple | None = None
    items: dict[int, KnowledgeItem] | None = None
    indexes: dict[str, KnowledgeIndex] | None = None  # one per kind: articles, templates


_knowledge = _KnowledgeCache()


def knowledge_search(
    text: str,
    *,
    kind: str,
    k: int = 3,
    min_score: float = 0.1,
    category: str = "",
    category_bonus: float = 0.0,
) -> list[tuple[KnowledgeItem, float]]:
    """Active articles or templates most similar to ``text``, best first, with their score.

    Items written for ``category`` score ``category_bonus`` more, so they count even when
    the customer's words share little with them.
    """
    active = KnowledgeArticle.objects.filter(is_active=True)
    stamp = tuple(active.aggregate(n=Count("id"), changed=Max("updated_at")).values())
    if stamp != _knowledge.stamp:
        with _lock:
            items = {
                a.pk: KnowledgeItem(a.pk, a.kind, a.title, a.body, a.category)
                for a in active.only("id", "kind", "title", "body", "category")
            }
            documents = {each: [] for each in KnowledgeArticle.Kind.values}
            for pk, item in items.items():
                documents[item.kind].append((pk, f"{item.title}\n{item.body}"))
            _knowledge.indexes = {each: KnowledgeIndex(docs) for each, docs in documents.items()}
            _knowledge.items = items
            _knowledge.stamp = stamp
    index = _knowledge.indexes[kind]
    similarity = dict(index.search(text, k=len(index), min_score=0.0))
    scored = [
        (item, similarity.get(pk, 0.0) + (category_bonus if category and item.category == category else 0.0))
        for pk, item in _knowledge.items.items()
        if item.kind == kind
    ]
    return sorted((pair for pair in scored if pair[1] >= min_score), key=lambda pair: -pair[1])[:k]


def forget_loaded() -> None:
    """Drop every cached model and index (tests; after a restore)."""
    _models.clear()
    _knowledge.stamp = _knowledge.items = _knowledge.indexes = None
