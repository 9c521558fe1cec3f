"""The agents pipeline: one Celery task per agent step, each enqueuing the next.

classify (stage classifier → selection) → select (→ action) → escalate → update (→ end).
A step reloads its run by id, checks the ticket's stage, and finds the decisions it
already stored, so a step delivered twice (``acks_late``, a worker killed mid-task)
writes nothing twice. Infrastructure errors retry with backoff for minutes
(csai.resilience); then a dead letter keeps the step. The sweep restarts runs whose next
message was lost, and retries runs that died of the infrastructure once it is back; a run
dead of a bug stays dead until a person retries it (the dead letter's admin action).
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from celery import Task, current_app, shared_task
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from agents import decision_types, selectors, services
from agents.context import TicketContext
from agents.decision_types import Step
from agents.models import AgentDecision, PipelineRun
from agents.proposers import Proposal
from csai.logging import TASK_HEADER
from csai.resilience import INFRASTRUCTURE_ERROR_NAMES, ResilientTask
from tickets.models import NOT_ANSWERED, Message, Ticket
from tickets.services import ticket_advance_stage

logger = logging.getLogger(__name__)

MAX_TRIES = ResilientTask.max_retries + 1


class PipelineTask(ResilientTask):
    """A step that fails for good becomes a dead letter; infrastructure errors retry first."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        try:
            services.dead_letter_record(
                task_name=self.name,
                run_id=args[0] if args else None,
                task_args=list(args),
                error=exc,
                attempts=self.request.retries + 1,
            )
        except DatabaseError:
            # The database is what failed: the run stays running, and the pipeline sweep
            # sends its step again once the database is back.
            logger.exception(
                "dead letter not written; the pipeline sweep will find the run",
                extra={"task": self.name, "run_id": args[0] if args else None},
            )


def send(task_name: str, args: list, correlation_id: str) -> None:
    current_app.tasks[task_name].apply_async(args, headers={TASK_HEADER: correlation_id})


@shared_task(base=PipelineTask)
def pipeline_start(ticket_id: int) -> str:
    run = services.pipeline_run_start(ticket_id=ticket_id)
    if run is None:
        return "nothing-to-answer"
    send(classify_step.name, [run.pk], run.correlation_id)
    return f"run:{run.pk}"


@dataclass(frozen=True)
class PipelineStep:
    step: Step  # its decision types are those the registry gives this step
    stage: str  # the stage the ticket must have reached
    next_stage: str
    next_task: str | None


def _proposal(decision: AgentDecision) -> Proposal:
    """An earlier step's stored decision, as the later agents read it."""
    return Proposal(
        agent=decision.agent,
        decision_type=decision.decision_type,
        value=decision.value,
        label=decision.label,
        confidence=decision.raw_confidence,
        reasoning=decision.reasoning,
        evidence=decision.evidence,
        out_of_scope=decision.out_of_scope,
    )


STAGE_ORDER = list(Ticket.Stage.values)


def _run_step(run_id: int, step: PipelineStep) -> str:
    run = PipelineRun.objects.select_related("ticket").filter(pk=run_id).first()
    if run is None:
        return "missing"
    if run.status != PipelineRun.Status.RUNNING:
        return f"run-{run.status}"
    if STAGE_ORDER.index(run.ticket.stage) < STAGE_ORDER.index(step.stage):
        logger.warning("step before its stage", extra={"run_id": run_id, "stage": run.ticket.stage})
        return "not-ready"
    decisions = {d.decision_type: d for d in run.decisions.all()}
    ctx = TicketContext.from_dict(run.context)
    kinds = [kind for kind in decision_types.of_step(step.step) if kind.proposed_on(ctx)]
    # The agents run before the transaction opens: a Claude call may take seconds. They read
    # this turn's decisions, and for what this turn does not decide again, the earlier turns'.
    earlier = {t: _proposal(d) for t, d in {**_standing(run), **decisions}.items()}
    timed = []
    for kind in kinds:
        if kind.name not in decisions:
            timed.append(_timed(kind.propose, ctx, earlier))
            earlier[kind.name] = timed[-1].proposal
    fresh: list[AgentDecision] = []
    last = step.next_task is None or step.step == settings.CSAI_PIPELINE_LAST_STEP
    next_stage = Ticket.Stage.END if last else step.next_stage
    with transaction.atomic():
        if timed:
            fresh = services.decisions_record(run=run, proposals=timed)
        if step.stage != next_stage:
            ticket_advance_stage(ticket_id=run.ticket_id, from_stage=step.stage, to_stage=next_stage)
        if last:
            services.pipeline_run_finish(run=run)
            if selectors.unanswered_messages(ticket=run.ticket).exists():
                # The customer wrote again while this turn ran: the next turn answers that.
                transaction.on_commit(lambda: send(pipeline_start.name, [run.ticket_id], run.correlation_id))
        else:
            services.pipeline_run_touch(run=run)
            transaction.on_commit(lambda: send(step.next_task, [run.pk], run.correlation_id))
    # Outside the transaction: the listener applies decisions in transactions of its own.
    services.decisions_submit(decisions=fresh or [decisions[k.name] for k in kinds if k.name in decisions])
    return "decided" if timed else "already-decided"


def _standing(run: PipelineRun) -> dict[str, AgentDecision]:
    """The latest decision of each type from the ticket's earlier turns."""
    earlier = AgentDecision.objects.filter(ticket_id=run.ticket_id, run__number__lt=run.number)
    return {d.decision_type: d for d in earlier.order_by("run__number", "id")}


def _timed(agent: decision_types.Propose, ctx: TicketContext, earlier: dict[str, Proposal]) -> services.Timed:
    started = time.perf_counter()
    proposal = agent(ctx, earlier)
    return services.Timed(proposal, (time.perf_counter() - started) * 1000)


CLASSIFY = PipelineStep(
    Step.CLASSIFY, Ticket.Stage.CLASSIFIER, Ticket.Stage.SELECTION, "agents.tasks.select_step"
)
SELECT = PipelineStep(Step.SELECT, Ticket.Stage.SELECTION, Ticket.Stage.ACTION, "agents.tasks.escalate_step")
ESCALATE = PipelineStep(Step.ESCALATE, Ticket.Stage.ACTION, Ticket.Stage.ACTION, "agents.tasks.update_step")
UPDATE = PipelineStep(Step.UPDATE, Ticket.Stage.ACTION, Ticket.Stage.END, None)


@shared_task(base=PipelineTask)
def classify_step(run_id: int) -> str:
    return _run_step(run_id, CLASSIFY)


@shared_task(base=PipelineTask)
def select_step(run_id: int) -> str:
    return _run_step(run_id, SELECT)


@shared_task(base=PipelineTask)
def escalate_step(run_id: int) -> str:
    return _run_step(run_id, ESCALATE)


@shared_task(base=PipelineTask)
def update_step(run_id: int) -> str:
    return _run_step(run_id, UPDATE)


STEPS = ((CLASSIFY, classify_step), (SELECT, select_step), (ESCALATE, escalate_step), (UPDATE, update_step))

# A step normally follows the previous one within seconds; a run quiet for this long lost
# its next message (broker restart, a crash between commit and send) and is nudged again.
# (Minutes by default: settings.CSAI_SWEEP_GRACE.)
RUN_GRACE = timedelta(seconds=settings.CSAI_SWEEP_GRACE["run"])
TRIAGE_GRACE = timedelta(seconds=settings.CSAI_SWEEP_GRACE["triage"])
# How far back the sweep looks for follow-ups whose turn never started.
FOLLOW_UP_WINDOW = timedelta(days=1)
SWEEP_BATCH = 200


def _step_for(run: PipelineRun) -> Task:
    """The step to send again for a quiet run: the first whose decisions are missing."""
    have = set(run.decisions.values_list("decision_type", flat=True))
    return next(
        (task for step, task in STEPS if not {k.name for k in decision_types.of_step(step.step)} <= have),
        update_step,
    )


# A run dead of the infrastructure is retried by the sweep this many times, then left to people.
SWEEP_RETRIES = 3


@shared_task
def pipeline_sweep() -> str:
    """Send again the next step of quiet runs, retry runs that died of the infrastructure,
    and start runs for tickets stuck in triage."""
    now = timezone.now()
    quiet = PipelineRun.objects.filter(status=PipelineRun.Status.RUNNING, updated_at__lt=now - RUN_GRACE)
    nudged = 0
    for run in quiet.order_by("updated_at")[:SWEEP_BATCH]:
        send(_step_for(run).name, [run.pk], run.correlation_id)
        nudged += 1
    retried = sum(
        services.dead_letter_retry(letter=letter, actor=None, enqueue=send)
        for letter in services.dead_letters_to_retry(
            error_types=INFRASTRUCTURE_ERROR_NAMES, max_retries=SWEEP_RETRIES, limit=SWEEP_BATCH
        )
    )
    waiting = (
        Ticket.objects.filter(stage=Ticket.Stage.CLASSIFIER, updated_at__lt=now - TRIAGE_GRACE)
        .exclude(pipeline_runs__status=PipelineRun.Status.RUNNING)
        .exclude(pipeline_runs__status=PipelineRun.Status.DEAD)
        .values_list("pk", "correlation_id")[:SWEEP_BATCH]
    )
    # Customers who wrote again on a ticket whose turns had ended, and whose turn never began
    # (its start was lost): a ticket answers its latest message, so one start each.
    follow_ups = (
        Message.objects.filter(
            kind=Message.Kind.EXTERNAL,
            sender_kind=Message.SenderKind.CUSTOMER,
            created_at__range=(now - FOLLOW_UP_WINDOW, now - TRIAGE_GRACE),
            pipeline_run__isnull=True,
            ticket__stage=Ticket.Stage.END,
        )
        .exclude(NOT_ANSWERED)
        .exclude(ticket__pipeline_runs__status=PipelineRun.Status.RUNNING)
        .values_list("ticket_id", "ticket__correlation_id")
        .distinct()[:SWEEP_BATCH]
    )
    started = 0
    for ticket_id, correlation_id in [*waiting, *follow_ups]:
        send(pipeline_start.name, [ticket_id], correlation_id)
        started += 1
    if nudged or started or retried:
        logger.warning("pipeline sweep", extra={"nudged": nudged, "started": started, "retried": retried})
    return f"nudged:{nudged} started:{started} retried:{retried}"
