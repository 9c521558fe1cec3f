"""What happened for the customer: their satisfaction (CSAT) with a resolution.

Resolution itself lives on the ticket (``resolved_at``, ``resolved_by``, ``reopened_count``);
human effort is computed from what the review console already records.
"""

from django.db import models
from django.db.models import Q

from tickets.models import Ticket


class Survey(models.Model):
    """The question "how did we do?" about one resolution of a ticket, and its answer.

    A ticket resolved, reopened and resolved again gets a survey per resolution. The link in
    the customer's mail names the survey (signed, expiring); a survey takes one answer.
    """

    class Source(models.TextChoices):
        SURVEY = "survey", "Answered through the link"
        IMPORT = "import", "Imported"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="surveys")
    # Who had resolved the ticket when the customer was asked (the AI or a person).
    resolved_by = models.CharField(max_length=8, choices=Ticket.Resolver.choices, blank=True)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    score = models.PositiveSmallIntegerField(null=True, blank=True)  # 1 (bad) … 5 (great)
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.SURVEY)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5), name="survey_score_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True, answered_at__isnull=True)
                | Q(score__isnull=False, answered_at__isnull=False),
                name="survey_answered_with_a_score",
            ),
            # csat_import is idempotent: an imported answer is found again by its ticket and time.
            models.UniqueConstraint(
                fields=["ticket", "answered_at"], condition=Q(source="import"), name="survey_import_unique"
            ),
        ]
        indexes = [
            # Dashboard: answers by day.
            models.Index(
                fields=["answered_at"], name="survey_answered_idx", condition=Q(answered_at__isnull=False)
            ),
            models.Index(fields=["sent_at"], name="survey_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"CSAT of #{self.ticket_id}: {self.score or 'unanswered'}"


class DayFigures(models.Model):
    """The outcome sums of one local day (``outcomes.report``: ``TICKET_SUMS`` by the day a
    ticket was created, ``SURVEY_SUMS`` by the day a survey was sent), kept so the dashboard
    reads a row per day instead of every ticket of the period (``outcomes.day_figures``).

    ``basis`` names what the sums depend on besides the rows: the time zone that cuts days and
    the effort estimates; a row of another basis is not read.
    """

    basis = models.CharField(max_length=100)
    day = models.DateField()
    sums = models.JSONField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["basis", "day"], name="dayfigures_basis_day_unique")]

    def __str__(self) -> str:
        return f"Outcomes of {self.day} ({self.basis})"


class DayFiguresMark(models.Model):
    """How far the refresh has seen changes, per basis: every change stamped at or after
    ``seen_until`` may not be in the stored days yet. Null: nothing seen, every day is
    computed again."""

    basis = models.CharField(max_length=100, unique=True)
    seen_until = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"Outcomes seen until {self.seen_until} ({self.basis})"
