from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from agents.models import AgentDecision, DecisionType, ModelVersion
from tickets.models import Ticket


class Criticality(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Higher criticality, higher target (SPEC "Threshold").
TARGET_PRECISION = {Criticality.LOW: 0.85, Criticality.MEDIUM: 0.9, Criticality.HIGH: 0.95}


class CalibrationVersion(models.Model):
    """A fitted raw → calibrated confidence map for one decision type, with its quality."""

    decision_type = models.CharField(max_length=16, choices=DecisionType.choices)
    version = models.PositiveIntegerField()
    # autonomy.calibration.Calibration.to_dict(): method, n, knots or slope/intercept.
    params = models.JSONField()
    # Reliability bins of the reviewed decisions it was fitted on (after calibration).
    bins = models.JSONField(default=list)
    ece = models.FloatField()
    brier = models.FloatField()
    samples = models.PositiveIntegerField()
    # The model whose confidences it maps: a calibration never carries over to another model.
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="calibrations"
    )
    # "holdout" (a new model's predictions on held-out reviewed tickets) or "reviews".
    source = models.CharField(max_length=16, default="reviews")
    # What the inputs looked like: confidence histogram and label mix, for the drift check.
    reference = models.JSONField(default=dict)
    fitted_at = models.DateTimeField()

    class Meta:
        ordering = ["decision_type", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["decision_type", "version"], name="calibration_type_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision_type} calibration v{self.version}"


class Phase(models.IntegerChoices):
    """How far the machine may act on a decision type (SPEC "Automation phases")."""

    FULL_OVERSIGHT = 1, "full human oversight"  # a person decides, the AI's answer hidden
    ASSISTED = 2, "assisted"  # a person decides, seeing the AI's suggestion
    SUPERVISED = 3, "supervised autonomy"  # confident decisions applied, every one reviewed after
    MONITORED = 4, "monitored autonomy"  # applied, a sample reviewed after
    FULL_AUTONOMY = 5, "full autonomy"  # applied, a small sample reviewed after

    @property
    def shows_suggestion(self) -> bool:
        """A person deciding sees the AI's answer (from phase 2; phase 1 hides it: no anchoring)."""
        return self != Phase.FULL_OVERSIGHT

    @property
    def applies_automatically(self) -> bool:
        """Confident decisions are applied without waiting for a person."""
        return self >= Phase.SUPERVISED

    @property
    def review_rate_field(self) -> str | None:
        """The policy field holding the share of applied decisions reviewed afterwards."""
        return f"review_rate_phase{self.value}" if self.applies_automatically else None

    @property
    def next(self) -> "Phase | None":
        return Phase(self + 1) if self < Phase.FULL_AUTONOMY else None

    @property
    def lower(self) -> list["Phase"]:
        """The phases a demotion may go to."""
        return [phase for phase in Phase if phase < self]


class AutomationPolicy(models.Model):
    """How far the machine may act on one decision type (SPEC "Autonomy")."""

    decision_type = models.CharField(max_length=16, choices=DecisionType.choices, unique=True)
    phase = models.PositiveSmallIntegerField(choices=Phase.choices, default=Phase.FULL_OVERSIGHT)
    criticality = models.CharField(max_length=8, choices=Criticality.choices, default=Criticality.MEDIUM)
    target_precision = models.FloatField(default=TARGET_PRECISION[Criticality.MEDIUM])
    # Reviewed decisions needed before a threshold (global or per class) may be set.
    min_samples = models.PositiveIntegerField(default=100)
    # Share of automatic decisions a person reviews afterwards, per phase.
    review_rate_phase3 = models.FloatField(default=1.0)
    review_rate_phase4 = models.FloatField(default=0.2)
    review_rate_phase5 = models.FloatField(default=0.05)
    calibration = models.ForeignKey(CalibrationVersion, null=True, blank=True, on_delete=models.PROTECT)
    # Lowest calibrated confidence applied automatically; null: nothing is.
    threshold = models.FloatField(null=True, blank=True)
    # label -> threshold, for classes with enough reviewed decisions of their own.
    class_thresholds = models.JSONField(default=dict, blank=True)
    # Overrides of autonomy.readiness.DEFAULT_CRITERIA, e.g. {"2": {"min_agreement": 0.8}}:
    # the bar for leaving the phase named by the key.
    criteria = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "automation policies"
        ordering = ["decision_type"]
        permissions = [("change_phase", "Can promote, demote and roll back automation phases")]
        constraints = [
            models.CheckConstraint(condition=Q(phase__gte=1, phase__lte=5), name="policy_phase_1_to_5"),
            models.CheckConstraint(
                condition=Q(target_precision__gt=0, target_precision__lt=1), name="policy_target_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision_type}: phase {self.phase}"

    @property
    def current_phase(self) -> Phase:
        return Phase(self.phase)

    def review_rate(self) -> float:
        """The share of automatically applied decisions a person reviews afterwards."""
        field = self.current_phase.review_rate_field
        return getattr(self, field) if field else 1.0

    def threshold_for(self, label: str) -> float | None:
        return self.class_thresholds.get(label, self.threshold)


class Disposition(models.Model):
    """What the controller did with one agent decision; written once, in one transaction
    with applying it or queueing it."""

    class Kind(models.TextChoices):
        SHADOW = "shadow"  # phase 1: recorded, a person decides without seeing it
        SUGGESTED = "suggested"  # phase 2: a person decides, seeing it
        AUTO_APPLIED = "auto_applied"
        AUTO_APPLIED_WITH_REVIEW = "auto_applied_with_review"  # applied, a person checks it later
        QUEUED_FOR_REVIEW = "queued_for_review"  # phase 3-5 but not confident: a person decides

    decision = models.OneToOneField(AgentDecision, on_delete=models.PROTECT, related_name="disposition")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    phase = models.PositiveSmallIntegerField(choices=Phase.choices)
    threshold = models.FloatField(null=True, blank=True)
    # Why it went to a person: below threshold, out of scope, guardrail, no calibration …
    reason = models.CharField(max_length=200, blank=True)
    applied = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Reports: dispositions of one phase over time.
            models.Index(fields=["kind", "created_at"], name="disposition_kind_created_idx"),
            # Supervisor dashboard: automation rate by day over every kind
            # (review.reports.dashboard_report).
            models.Index(fields=["created_at"], name="disposition_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.decision_id}"


# How long a reviewer's claim on a review item holds others off; its start is when their
# time to decide is counted from.
CLAIM_TTL = timedelta(minutes=10)


class ReviewItem(models.Model):
    """A decision waiting for a person: to decide it, or to check what was applied."""

    class Kind(models.TextChoices):
        DECIDE = "decide"
        DELAYED_REVIEW = "delayed_review"  # applied automatically; confirm or correct

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        EXPIRED = "expired"  # closed unanswered: the ticket was escalated or resolved meanwhile

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed"
        OVERRIDDEN = "overridden"

    class DraftRating(models.TextChoices):
        """A reviewer's verdict on a drafted text they could not see while answering (phase 1):
        the drafted type's agreement signal."""

        FINE = "fine", "would have been fine to send"
        NEEDED_EDITS = "needed_edits", "needed edits"
        WRONG = "wrong", "wrong"

    decision = models.OneToOneField(AgentDecision, on_delete=models.PROTECT, related_name="review_item")
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="review_items")
    decision_type = models.CharField(max_length=16, choices=DecisionType.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Phase 1 hides the AI's answer from the reviewer (no anchoring).
    show_suggestion = models.BooleanField()
    # 1 - calibrated (or raw) confidence: the queue can favour what the model learns most from.
    uncertainty = models.FloatField()
    # The chance this item was drawn for review: 1 for everything a person must decide,
    # the policy's review rate for delayed reviews. Accuracy estimates weight by 1 / rate.
    sampling_rate = models.FloatField(default=1.0)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    human_label = models.CharField(max_length=64, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    seconds_to_decide = models.FloatField(null=True, blank=True)
    # Phase 1, drafted text: the person's verdict on the hidden draft, once revealed.
    draft_rating = models.CharField(max_length=16, choices=DraftRating.choices, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Review queue: pending items of a decision type, oldest first.
            models.Index(
                fields=["decision_type", "created_at"],
                name="reviewitem_pending_idx",
                condition=Q(status="pending"),
            ),
            # Review console: the queue's age filter and oldest-first tie-break over pending
            # items (review.selectors.queue_items).
            models.Index(
                fields=["created_at"], name="reviewitem_pending_age_idx", condition=Q(status="pending")
            ),
            # Honest accuracy: done delayed reviews of one decision type.
            models.Index(fields=["decision_type", "kind", "decided_at"], name="reviewitem_done_idx"),
            # Supervisor dashboard: autonomous accuracy by day of review over every decision
            # type (review.reports.dashboard_report).
            models.Index(
                fields=["decided_at"],
                name="reviewitem_delayed_done_idx",
                condition=Q(kind="delayed_review", status="done"),
            ),
            # outcomes.day_figures.changed_days: items decided since it looked.
            models.Index(fields=["decided_at"], name="reviewitem_decided_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="done", decided_at__isnull=False) | ~Q(status="done"),
                name="reviewitem_done_has_decided_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.decision_type} on #{self.ticket_id}"

    @property
    def hides_answer(self) -> bool:
        """Phase 1 and nobody answered yet: the AI's answer must not reach a person."""
        return not self.show_suggestion and self.status == self.Status.PENDING


class RollbackPoint(models.Model):
    """A policy's settings at one moment, to return to: phase, targets, review rates,
    calibration, thresholds and the active model version."""

    policy = models.ForeignKey(AutomationPolicy, on_delete=models.PROTECT, related_name="rollback_points")
    snapshot = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"phase {self.snapshot.get('phase')} of {self.policy.decision_type}, {self.created_at:%x}"


class PhaseTransition(models.Model):
    """Every change of a policy's phase: who, why, the evidence then, and the way back."""

    class Direction(models.TextChoices):
        PROMOTE = "promote"
        DEMOTE = "demote"
        ROLLBACK = "rollback"

    policy = models.ForeignKey(AutomationPolicy, on_delete=models.PROTECT, related_name="transitions")
    direction = models.CharField(max_length=16, choices=Direction.choices)
    from_phase = models.PositiveSmallIntegerField(choices=Phase.choices)
    to_phase = models.PositiveSmallIntegerField(choices=Phase.choices)
    # null: the system itself (the quality monitor's emergency demotion).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    metrics = models.JSONField(default=dict)
    # The state before this transition: restoring it undoes the transition.
    rollback_point = models.OneToOneField(RollbackPoint, on_delete=models.PROTECT, related_name="transition")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="transition_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.policy.decision_type}: {self.from_phase} → {self.to_phase} ({self.direction})"


class Alert(models.Model):
    """Something the quality monitor saw that a person must look at and acknowledge."""

    class Type(models.TextChoices):
        ACCURACY_DEGRADATION = "ACCURACY_DEGRADATION"
        OVERAUTOMATION_RISK = "OVERAUTOMATION_RISK"
        CALIBRATION_DRIFT = "CALIBRATION_DRIFT"
        INPUT_DRIFT = "INPUT_DRIFT"
        OVERRIDE_SPIKE = "OVERRIDE_SPIKE"
        # Customers rate what the AI resolved lately clearly worse than before.
        CSAT_DROP = "CSAT_DROP"
        # Not a problem: the decision type meets every criterion of its next phase.
        PROMOTION_READY = "PROMOTION_READY"

    class Severity(models.TextChoices):
        INFO = "info"
        HIGH = "high"
        CRITICAL = "critical"

    decision_type = models.CharField(max_length=16, choices=DecisionType.choices)
    type = models.CharField(max_length=32, choices=Type.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    metric = models.CharField(max_length=64)
    value = models.FloatField()
    threshold = models.FloatField()
    # How many observations the value rests on (reviewed samples, decisions).
    samples = models.PositiveIntegerField(default=0)
    recommendation = models.TextField()
    # The phase the monitor proposes (info: a promotion; high: a demotion) or already moved
    # the policy to (critical).
    proposed_phase = models.PositiveSmallIntegerField(choices=Phase.choices, null=True, blank=True)
    demotion = models.ForeignKey(
        PhaseTransition, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    created_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("acknowledge_alert", "Can acknowledge quality alerts")]
        indexes = [
            # Alerts page: open alerts first, newest first.
            models.Index(fields=["acknowledged_at", "-created_at"], name="alert_open_created_idx"),
        ]
        constraints = [
            # One open alert per problem: the monitor updates it instead of piling up copies.
            models.UniqueConstraint(
                fields=["decision_type", "type"],
                condition=Q(acknowledged_at__isnull=True),
                name="alert_one_open_per_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.severity}) on {self.decision_type}"
