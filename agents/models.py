from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from tickets.models import Ticket


class DecisionType(models.TextChoices):
    CATEGORY = "category"
    PRIORITY = "priority"
    STRATEGY = "strategy"
    ESCALATION = "escalation"
    REPLY = "reply"


class Strategy(models.TextChoices):
    """How the selector proposes to answer a ticket."""

    AUTOMATED_RESOLUTION = "AUTOMATED_RESOLUTION"
    TEMPLATE_RESPONSE = "TEMPLATE_RESPONSE"
    ESCALATE_TO_HUMAN = "ESCALATE_TO_HUMAN"
    ESCALATE_TO_TECHNICAL = "ESCALATE_TO_TECHNICAL"
    REQUEST_MORE_INFO = "REQUEST_MORE_INFO"


class EscalationPath(models.TextChoices):
    """Where an escalated ticket goes; each path is a ladder of who it reaches, level 0 first."""

    TECHNICAL = "technical"
    BILLING = "billing"
    URGENT = "urgent"

    @property
    def ladder(self) -> tuple[str, ...]:
        return ESCALATION_LADDERS[self]


ESCALATION_LADDERS = {
    EscalationPath.TECHNICAL: ("senior engineer", "team lead", "engineering manager"),
    EscalationPath.BILLING: ("billing specialist", "account manager", "finance director"),
    EscalationPath.URGENT: ("CS supervisor", "CS manager", "operations director"),
}
# The escalation decision's label when the ticket stays where it is.
NO_ESCALATION = "none"


def escalation_value(*, path: str, level: int, urgency: str) -> dict:
    """An escalation decision's value: ``path`` one of EscalationPath or NO_ESCALATION."""
    if path == NO_ESCALATION:
        return {"escalate": False, "path": None, "level": None, "to": None, "urgency": urgency}
    return {
        "escalate": True,
        "path": path,
        "level": level,
        "to": EscalationPath(path).ladder[level],
        "urgency": urgency,
    }


class AgentName(models.TextChoices):
    CLASSIFIER = "classifier"
    SELECTOR = "selector"
    ESCALATION = "escalation"
    UPDATES = "updates"


class Provider(models.TextChoices):
    LOCAL = "local"  # a trained scikit-learn model version
    RULES = "rules"  # the weighted scores and rules in agents/tools.py
    ANTHROPIC = "anthropic"
    NONE = "none"  # nothing could decide (no model trained yet): a human must


class PipelineRun(models.Model):
    """One turn of the agents on a ticket: their pass over one customer message. Its
    decisions are unique per run, so per (ticket, turn, decision type)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        DEAD = "dead"  # a step failed for good; see its DeadLetter

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="pipeline_runs")
    # The turn: run n answers the n-th customer message the agents took up on the ticket.
    number = models.PositiveIntegerField()
    # The customer message this run answers (null on runs from before conversations had turns).
    message = models.OneToOneField(
        "tickets.Message", null=True, blank=True, on_delete=models.PROTECT, related_name="pipeline_run"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # What the agents saw, built once when the run starts (agents.context.TicketContext).
    context = models.JSONField(default=dict)
    correlation_id = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "number"], name="pipelinerun_ticket_number_unique"),
            # At most one run of a ticket at a time.
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(status="running"), name="pipelinerun_one_running_per_ticket"
            ),
        ]
        indexes = [
            # pipeline_sweep: running runs that stopped moving.
            models.Index(
                fields=["updated_at"], name="pipelinerun_running_idx", condition=Q(status="running")
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.number} of #{self.ticket_id}"


class ModelVersion(models.Model):
    """A trained local classifier for one decision type; one version is active at a time."""

    decision_type = models.CharField(max_length=16, choices=DecisionType.choices)
    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=64)
    # Pickled agents.ml.TextClassifier. Trusted: only agents.services.model_candidate writes it.
    artifact = models.BinaryField()
    training_size = models.PositiveIntegerField()
    labels = models.JSONField(default=list)
    # Held-out metrics at training time: accuracy, macro_f1, ece, brier, n.
    metrics = models.JSONField(default=dict)
    is_active = models.BooleanField(default=False)
    trained_at = models.DateTimeField()

    class Meta:
        ordering = ["decision_type", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["decision_type", "version"], name="modelversion_type_version_unique"
            ),
            models.UniqueConstraint(
                fields=["decision_type"], condition=Q(is_active=True), name="modelversion_one_active_per_type"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision_type} v{self.version}"


class AgentDecision(models.Model):
    """What an agent proposed, with everything needed to audit it. Append-only.

    Only ``calibrated_confidence`` is ever written after creation (by the autonomy
    controller); what happened to the decision lives with the autonomy app.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="decisions")
    run = models.ForeignKey(PipelineRun, on_delete=models.PROTECT, related_name="decisions")
    agent = models.CharField(max_length=16, choices=AgentName.choices)
    decision_type = models.CharField(max_length=16, choices=DecisionType.choices)
    # The proposal, e.g. {"category": "BILLING_INQUIRY"}; its class is ``label``.
    value = models.JSONField()
    # The class calibration and per-class thresholds work on; empty when out of scope.
    label = models.CharField(max_length=64, blank=True)
    raw_confidence = models.FloatField()
    calibrated_confidence = models.FloatField(null=True, blank=True)
    out_of_scope = models.BooleanField(default=False)
    # Guardrail violations of an outgoing text; non-empty means the text is blocked.
    guardrail_violations = models.JSONField(default=list, blank=True)
    reasoning = models.TextField(blank=True)
    # Entities, KB articles, outages and customer facts the decision rests on.
    evidence = models.JSONField(default=dict, blank=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    model_name = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=32, blank=True)
    latency_ms = models.FloatField()
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    correlation_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    UPDATABLE_FIELDS = frozenset({"calibrated_confidence"})

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A retried step finds its decision instead of writing a second one.
            models.UniqueConstraint(fields=["run", "decision_type"], name="agentdecision_run_type_unique"),
            models.CheckConstraint(
                condition=Q(raw_confidence__gte=0, raw_confidence__lte=1),
                name="agentdecision_raw_confidence_0_1",
            ),
        ]
        indexes = [
            # Ticket timeline and ticket API: a ticket's decisions in order.
            models.Index(fields=["ticket", "created_at"], name="agentdecision_ticket_idx"),
            # Reports and calibration: one decision type over time.
            models.Index(fields=["decision_type", "-created_at"], name="agentdecision_type_created_idx"),
            # autonomy.selectors.decisions_without_disposition: decisions by creation time.
            models.Index(fields=["created_at"], name="agentdecision_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.decision_type}={self.label or '?'} on #{self.ticket_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            fields = set(kwargs.get("update_fields") or ())
            if not fields or not fields <= self.UPDATABLE_FIELDS:
                raise ValueError("agent decisions are append-only")
        super().save(*args, **kwargs)


class HumanLabel(models.Model):
    """The answer a person gave (or imported history holds) for a ticket's decision type.

    Training data for the local model: the latest human answer per ticket and type.
    """

    class Source(models.TextChoices):
        IMPORT = "import"
        REVIEW = "review"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="human_labels")
    decision_type = models.CharField(max_length=16, choices=DecisionType.choices)
    value = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source.choices)
    labeled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "decision_type"], name="humanlabel_ticket_type_unique"),
        ]
        indexes = [
            # model_candidate: every label of one decision type.
            models.Index(fields=["decision_type", "created_at"], name="humanlabel_type_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.decision_type}={self.value} on #{self.ticket_id}"


class Outage(models.Model):
    """A known service problem; tickets mentioning its keywords while it lasts match it."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    products = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    keywords = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="outage_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def match_terms(self) -> list[str]:
        return [*self.keywords, *self.products]


class KnowledgeArticle(models.Model):
    """Help-centre articles and response templates the selector and updates agents use.

    A template's body may hold ``{customer_name}``, ``{ticket_ref}`` and ``{entities}``.
    """

    class Kind(models.TextChoices):
        ARTICLE = "article"
        TEMPLATE = "template"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField()
    category = models.CharField(max_length=32, blank=True)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "title"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


class DeadLetter(models.Model):
    """A pipeline step that failed for good; a person retries it from the admin."""

    ticket = models.ForeignKey(Ticket, null=True, on_delete=models.SET_NULL, related_name="dead_letters")
    run = models.ForeignKey(PipelineRun, null=True, on_delete=models.SET_NULL, related_name="dead_letters")
    task_name = models.CharField(max_length=200)
    task_args = models.JSONField(default=list)
    error_type = models.CharField(max_length=200)
    error_message = models.TextField()
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    retried_at = models.DateTimeField(null=True, blank=True)
    retried_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Admin list and /metrics gauge: letters nobody has retried yet.
            models.Index(
                fields=["-created_at"], name="deadletter_open_idx", condition=Q(retried_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} for #{self.ticket_id}: {self.error_type}"
