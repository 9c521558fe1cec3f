"""Every write the agents app makes: runs, decisions, labels, model versions, dead letters."""

import hashlib
import logging
import traceback as traceback_module
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from agents import selectors, signals
from agents.context import context_build
from agents.ml import Prediction, TextClassifier, metrics
from agents.models import AgentDecision, DeadLetter, HumanLabel, ModelVersion, PipelineRun
from agents.proposers import Proposal
from tickets.models import Category, Channel, Customer, Priority, Ticket
from tickets.services import FALLBACK_SLA_MINUTES

logger = logging.getLogger(__name__)


def pipeline_run_start(*, ticket_id: int) -> PipelineRun | None:
    """Start the turn that answers the customer's latest unanswered message, or return the
    run already going (its turn ends first; the next starts when it finishes).

    The ticket row is locked while the turn's context is built, so two deliveries of the
    start task make one run; a message is answered by one run at most (a constraint). The
    messages that came in together are answered together, by one turn on the latest. None
    when the ticket is gone or nothing waits for an answer.
    """
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().select_related("customer").filter(pk=ticket_id).first()
        if ticket is None:
            return None
        running = PipelineRun.objects.filter(ticket=ticket, status=PipelineRun.Status.RUNNING).first()
        if running is not None:
            return running
        message = selectors.unanswered_messages(ticket=ticket).last()
        turn = (PipelineRun.objects.filter(ticket=ticket).aggregate(n=Max("number"))["n"] or 0) + 1
        if message is None and turn > 1:
            return None  # every message has its answer (the first turn answers the ticket itself)
        if turn > 1 and ticket.stage != Ticket.Stage.CLASSIFIER:
            ticket.stage = Ticket.Stage.CLASSIFIER  # the new turn goes through the steps again
            ticket.save(update_fields=["stage", "updated_at"])
        return PipelineRun.objects.create(
            ticket=ticket,
            number=turn,
            message=message,
            context=context_build(ticket=ticket, message=message, turn=turn).to_dict(),
            correlation_id=ticket.correlation_id,
            started_at=timezone.now(),
        )


@dataclass(frozen=True)
class Timed:
    proposal: Proposal
    latency_ms: float


def decisions_record(*, run: PipelineRun, proposals: Sequence[Timed]) -> list[AgentDecision]:
    """Store a step's proposals; a proposal already stored for this run is found, not doubled.

    One INSERT … ON CONFLICT DO NOTHING on (run, decision type), then one read back, so a
    step racing a duplicate of itself stores each decision once. Call inside the
    transaction that also advances the ticket's stage.
    """
    now = timezone.now()
    AgentDecision.objects.bulk_create(
        [
            AgentDecision(
                ticket_id=run.ticket_id,
                run=run,
                agent=t.proposal.agent,
                decision_type=t.proposal.decision_type,
                value=t.proposal.value,
                label=t.proposal.label,
                raw_confidence=min(1.0, max(0.0, t.proposal.confidence)),
                out_of_scope=t.proposal.out_of_scope,
                guardrail_violations=list(t.proposal.guardrail_violations),
                reasoning=t.proposal.reasoning,
                evidence=t.proposal.evidence,
                provider=t.proposal.provider,
                model_version_id=t.proposal.model_version_id,
                model_name=t.proposal.model_name[:100],
                prompt_version=t.proposal.prompt_version,
                latency_ms=t.latency_ms,
                input_tokens=t.proposal.input_tokens,
                output_tokens=t.proposal.output_tokens,
                cost_usd=t.proposal.cost_usd,
                correlation_id=run.correlation_id,
                created_at=now,
            )
            for t in proposals
        ],
        ignore_conflicts=True,
    )
    types = [t.proposal.decision_type for t in proposals]
    return list(AgentDecision.objects.filter(run=run, decision_type__in=types).order_by("id"))


def decisions_submit(*, decisions: Iterable[AgentDecision]) -> None:
    """Hand recorded decisions to whoever applies them (the autonomy controller listens)."""
    for decision in decisions:
        signals.decision_proposed.send(sender=AgentDecision, decision_id=decision.pk)


def pipeline_run_finish(*, run: PipelineRun) -> bool:
    updated = PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
        status=PipelineRun.Status.DONE, finished_at=timezone.now(), updated_at=timezone.now()
    )
    return updated == 1


def pipeline_run_touch(*, run: PipelineRun) -> None:
    """Show the sweep that the run is moving."""
    PipelineRun.objects.filter(pk=run.pk).update(updated_at=timezone.now())


# --- dead letters ------------------------------------------------------------------------


def dead_letter_record(
    *, task_name: str, run_id: int | None, task_args: list, error: BaseException, attempts: int
) -> DeadLetter:
    """Park a step that failed for good, and mark its run dead so the sweep leaves it."""
    run = PipelineRun.objects.filter(pk=run_id).first() if run_id is not None else None
    with transaction.atomic():
        letter = DeadLetter.objects.create(
            ticket_id=run.ticket_id if run else None,
            run=run,
            task_name=task_name,
            task_args=task_args,
            error_type=type(error).__name__,
            error_message=str(error)[:2000],
            traceback="".join(traceback_module.format_exception(error))[-8000:],
            attempts=attempts,
            created_at=timezone.now(),
        )
        if run is not None:
            PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
                status=PipelineRun.Status.DEAD, updated_at=timezone.now()
            )
    logger.error(
        "pipeline step dead-lettered",
        extra={"task": task_name, "run_id": run_id, "error_type": letter.error_type, "attempts": attempts},
    )
    return letter


def dead_letters_to_retry(*, error_types: tuple[str, ...], max_retries: int, limit: int) -> list[DeadLetter]:
    """Letters nobody retried yet, of dead runs, failed with one of ``error_types``, whose run
    has died of those errors at most ``max_retries`` times before: oldest first."""
    letters = (
        DeadLetter.objects.filter(
            retried_at__isnull=True, error_type__in=error_types, run__status=PipelineRun.Status.DEAD
        )
        .annotate(deaths=Count("run__dead_letters", filter=Q(run__dead_letters__error_type__in=error_types)))
        .filter(deaths__lte=max_retries)
        .select_related("run")
        .order_by("created_at")
    )
    return list(letters[:limit])


def dead_letter_retry(*, letter: DeadLetter, actor, enqueue: Callable[[str, list, str], None]) -> bool:
    """Send a dead-lettered step again (``actor`` None: the pipeline sweep); False when it
    was already retried.

    ``enqueue(task_name, args, correlation_id)`` runs after commit.
    """
    with transaction.atomic():
        updated = DeadLetter.objects.filter(pk=letter.pk, retried_at__isnull=True).update(
            retried_at=timezone.now(), retried_by=actor
        )
        if not updated:
            return False
        correlation_id = ""
        if letter.run_id is not None:
            PipelineRun.objects.filter(pk=letter.run_id, status=PipelineRun.Status.DEAD).update(
                status=PipelineRun.Status.RUNNING, updated_at=timezone.now()
            )
            correlation_id = letter.run.correlation_id
        # Broker down: the run is running again and quiet, so the pipeline sweep sends it later.
        transaction.on_commit(
            lambda: enqueue(letter.task_name, letter.task_args, correlation_id), robust=True
        )
    logger.info("dead letter retried", extra={"letter_id": letter.pk, "task": letter.task_name})
    return True


# --- labels, training, import ------------------------------------------------------------


def human_label_record(
    *, ticket: Ticket, decision_type: str, value: str, source: str, actor=None
) -> HumanLabel:
    """The latest human answer for a ticket's decision type (training data)."""
    label, _ = HumanLabel.objects.update_or_create(
        ticket=ticket,
        decision_type=decision_type,
        defaults={"value": value, "source": source, "labeled_by": actor, "created_at": timezone.now()},
    )
    return label


MIN_TRAINING_EXAMPLES = 20
HELD_OUT_SHARE = 0.2


def held_out(ticket_id: int) -> bool:
    """Whether a ticket belongs to the fixed held-out fifth that no model is trained on.

    Fixed per ticket (a hash, not a draw), so every model version is judged on the same
    tickets, none of which any version has seen.
    """
    digest = hashlib.sha256(f"held-out:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HELD_OUT_SHARE


@dataclass(frozen=True)
class Examples:
    ticket_ids: list[int]
    texts: list[str]
    labels: list[str]


def training_examples(*, decision_type: str) -> tuple[Examples, Examples]:
    """The human labels of a decision type with their tickets' text, in one read: those to
    train on, and the held-out fifth (``held_out``)."""
    rows = HumanLabel.objects.filter(decision_type=decision_type).order_by("id")
    rows = rows.values_list("ticket_id", "ticket__subject", "ticket__body", "value")
    train, held = Examples([], [], []), Examples([], [], [])
    for ticket_id, subject, body, value in rows.iterator(chunk_size=5000):
        examples = held if held_out(ticket_id) else train
        examples.ticket_ids.append(ticket_id)
        examples.texts.append(f"{subject}\n{body}")
        examples.labels.append(value)
    return train, held


@dataclass(frozen=True)
class Candidate:
    """A newly trained, registered (not yet active) model, with what it was judged on."""

    version: ModelVersion
    held: Examples
    predictions: list[Prediction]  # one per held-out example


def model_candidate(*, decision_type: str, seed: int = 0) -> Candidate | None:
    """Train a classifier on the human labels of one decision type and register it, inactive.

    Trained on every label outside the held-out fifth (``held_out``); the metrics stored
    with the version are measured on that fifth. None when there are too few labels or
    classes.
    """
    train, held = training_examples(decision_type=decision_type)
    if len(train.texts) < MIN_TRAINING_EXAMPLES or len(set(train.labels)) < 2:
        return None
    classifier = TextClassifier.fit(train.texts, train.labels, seed=seed)
    predictions = classifier.predict_many(held.texts)
    held_out_metrics = {}
    if held.texts:
        scores = metrics(predictions, held.labels)
        held_out_metrics = {key: scores[key] for key in ("n", "accuracy", "macro_f1", "ece", "brier")}
    with transaction.atomic():
        last = (
            ModelVersion.objects.select_for_update()
            .filter(decision_type=decision_type)
            .aggregate(n=Max("version"))["n"]
            or 0
        )
        version = ModelVersion.objects.create(
            decision_type=decision_type,
            version=last + 1,
            algorithm=classifier.ALGORITHM,
            artifact=classifier.to_bytes(),
            training_size=len(train.texts),
            labels=classifier.labels,
            metrics=held_out_metrics,
            is_active=False,
            trained_at=timezone.now(),
        )
    logger.info(
        "model trained",
        extra={"decision_type": decision_type, "version": version.version, **held_out_metrics},
    )
    return Candidate(version=version, held=held, predictions=predictions)


def model_train(*, decision_type: str, seed: int = 0) -> ModelVersion | None:
    """Train a model (``model_candidate``) and make it the active one."""
    candidate = model_candidate(decision_type=decision_type, seed=seed)
    if candidate is None:
        return None
    model_activate(version=candidate.version)
    return candidate.version


def model_activate(*, version: ModelVersion) -> None:
    """Make ``version`` the one model its decision type uses; the agents notice on next use."""
    with transaction.atomic():
        versions = ModelVersion.objects.select_for_update().filter(decision_type=version.decision_type)
        versions.exclude(pk=version.pk).filter(is_active=True).update(is_active=False)
        versions.filter(pk=version.pk).update(is_active=True)
    version.is_active = True


@dataclass(frozen=True)
class HistoryRow:
    external_id: str
    subject: str
    body: str
    labels: dict[str, str]  # decision type -> label


HISTORY_CUSTOMER = "imported-history"
IMPORT_BATCH = 1000


def history_import(
    *, rows: Iterable[HistoryRow], source: str, progress: Callable[[int], None] = lambda n: None
) -> int:
    """Store labeled history as resolved tickets with human labels; returns how many are new.

    Idempotent on (source, external id): importing a file twice adds nothing. Labels that
    are a ticket field's value (a default category, a priority) also set that field.
    """
    customer, _ = Customer.objects.get_or_create(
        external_id=HISTORY_CUSTOMER, defaults={"name": "Imported history"}
    )
    created = 0
    batch: list[HistoryRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == IMPORT_BATCH:
            created += _import_batch(batch, source=source, customer=customer)
            progress(len(batch))
            batch = []
    if batch:
        created += _import_batch(batch, source=source, customer=customer)
        progress(len(batch))
    return created


def _import_batch(batch: list[HistoryRow], *, source: str, customer: Customer) -> int:
    now = timezone.now()
    first_due = now + timedelta(minutes=FALLBACK_SLA_MINUTES[0])
    resolution_due = now + timedelta(minutes=FALLBACK_SLA_MINUTES[1])
    with transaction.atomic():
        known = set(
            Ticket.objects.filter(source=source, external_id__in=[r.external_id for r in batch]).values_list(
                "external_id", flat=True
            )
        )
        fresh = [r for r in batch if r.external_id not in known]
        tickets = Ticket.objects.bulk_create(
            [
                Ticket(
                    source=source,
                    external_id=r.external_id,
                    customer=customer,
                    subject=r.subject[:300],
                    body=r.body,
                    channel=Channel.API,
                    status=Ticket.Status.RESOLVED,
                    stage=Ticket.Stage.END,
                    category=r.labels.get("category", "")
                    if r.labels.get("category") in Category.values
                    else "",
                    priority=r.labels.get("priority", "")
                    if r.labels.get("priority") in Priority.values
                    else "",
                    first_response_due=first_due,
                    resolution_due=resolution_due,
                    correlation_id=f"import-{source}"[:64],
                    created_at=now,
                    resolved_at=now,
                )
                for r in fresh
            ]
        )
        HumanLabel.objects.bulk_create(
            [
                HumanLabel(
                    ticket=ticket,
                    decision_type=decision_type,
                    value=value[:64],
                    source=HumanLabel.Source.IMPORT,
                    created_at=now,
                )
                for ticket, row in zip(tickets, fresh, strict=True)
                for decision_type, value in row.labels.items()
                if value
            ]
        )
    return len(fresh)
