from django.conf import settings
from django.db import models
from django.db.models import Q


class Tier(models.TextChoices):
    PREMIUM = "PREMIUM"
    STANDARD = "STANDARD"
    BASIC = "BASIC"


class Priority(models.TextChoices):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Category(models.TextChoices):
    TECHNICAL_ISSUE = "TECHNICAL_ISSUE"
    BILLING_INQUIRY = "BILLING_INQUIRY"
    FEATURE_REQUEST = "FEATURE_REQUEST"
    BUG_REPORT = "BUG_REPORT"
    ACCOUNT_MANAGEMENT = "ACCOUNT_MANAGEMENT"
    GENERAL_SUPPORT = "GENERAL_SUPPORT"


class Channel(models.TextChoices):
    EMAIL = "email"
    WEB_CHAT = "web_chat"
    PHONE = "phone"
    API = "api"
    SOCIAL = "social"


class Customer(models.Model):
    external_id = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    company = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    is_vip = models.BooleanField(default=False)
    # A BASIC plan may come without support entitlement.
    has_support_entitlement = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class SLAPolicy(models.Model):
    """How fast a ticket of a priority from a customer tier must be answered and resolved."""

    priority = models.CharField(max_length=16, choices=Priority.choices)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        ordering = ["priority", "tier"]
        constraints = [
            models.UniqueConstraint(fields=["priority", "tier"], name="slapolicy_priority_tier_unique"),
            models.CheckConstraint(
                condition=Q(resolution_minutes__gte=models.F("first_response_minutes")),
                name="slapolicy_resolution_after_first_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.priority} × {self.tier}"


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new"
        OPEN = "open"
        PENDING_CUSTOMER = "pending_customer"
        ESCALATED = "escalated"
        RESOLVED = "resolved"
        CLOSED = "closed"

    class Stage(models.TextChoices):
        TRIGGER = "trigger"
        CLASSIFIER = "classifier"
        SELECTION = "selection"
        ACTION = "action"
        END = "end"

    class SLAState(models.TextChoices):
        ON_TIME = "on_time"
        AT_RISK = "at_risk"
        BREACHED = "breached"

    class Resolver(models.TextChoices):
        AI = "ai", "AI"
        PERSON = "person", "Person"

    source = models.CharField(max_length=64)
    external_id = models.CharField(max_length=128)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.NEW)
    # Empty until the classifier's decision is applied (by a person or the autonomy controller).
    # Default taxonomy in Category; a team trained on its own labels may use any up to 64 characters.
    category = models.CharField(max_length=64, choices=Category.choices, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, blank=True)
    team = models.CharField(max_length=64, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.TRIGGER)
    first_response_due = models.DateTimeField()
    resolution_due = models.DateTimeField()
    sla_state = models.CharField(max_length=16, choices=SLAState.choices, default=SLAState.ON_TIME)
    correlation_id = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Who resolved it: empty while open, and when not known (imported, closed by a sweep).
    resolved_by = models.CharField(max_length=8, choices=Resolver.choices, blank=True)
    resolver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resolved_tickets",
    )
    # An AI reply that may solve the problem was delivered: unless the customer writes
    # again, the AI resolved the ticket at this time (CSAI_ASSUMED_RESOLUTION_HOURS later).
    assumed_resolution_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveIntegerField(default=0)  # times opened again once resolved
    closed_at = models.DateTimeField(null=True, blank=True)
    # First escalation: the dashboard's escalation rate counts tickets escalated at any time,
    # also those resolved since.
    escalated_at = models.DateTimeField(null=True, blank=True)
    # The closed (or long resolved) ticket a customer wrote again on: this one continues it.
    follows = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="followed_by"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Intake is idempotent: a repeated delivery finds the ticket through this.
            models.UniqueConstraint(fields=["source", "external_id"], name="ticket_source_external_unique"),
            models.CheckConstraint(
                condition=Q(resolution_due__gte=models.F("first_response_due")),
                name="ticket_resolution_due_after_first_response_due",
            ),
        ]
        indexes = [
            # API list: newest first, optionally filtered by status / category / priority.
            models.Index(fields=["-created_at", "-id"], name="ticket_created_idx"),
            models.Index(fields=["status", "-created_at"], name="ticket_status_created_idx"),
            models.Index(fields=["category", "-created_at"], name="ticket_category_created_idx"),
            models.Index(fields=["priority", "-created_at"], name="ticket_priority_created_idx"),
            # sla_refresh: open tickets whose deadlines approach.
            models.Index(
                fields=["first_response_due"],
                name="ticket_open_frdue_idx",
                condition=Q(first_response_at__isnull=True, resolved_at__isnull=True),
            ),
            models.Index(
                fields=["resolution_due"],
                name="ticket_open_resdue_idx",
                condition=Q(resolved_at__isnull=True),
            ),
            # Supervisor dashboard: tickets still open at the end of each day of the period
            # (resolved_at null or after its start; review.reports._open_at_end_of).
            models.Index(fields=["resolved_at"], name="ticket_resolved_idx"),
            # intake_sweep: tickets still waiting for their intake task.
            models.Index(
                fields=["created_at"], name="ticket_awaiting_intake_idx", condition=Q(stage="trigger")
            ),
            # resolution_sweep: tickets an AI reply may have resolved.
            models.Index(
                fields=["assumed_resolution_at"],
                name="ticket_assumed_resolution_idx",
                condition=Q(assumed_resolution_at__isnull=False),
            ),
            # API list with updated_since: what changed since an integrator last polled.
            models.Index(fields=["updated_at"], name="ticket_updated_idx"),
            # pipeline_sweep: tickets in triage whose pipeline never started.
            models.Index(fields=["updated_at"], name="ticket_in_triage_idx", condition=Q(stage="classifier")),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject[:60]}"


# A message to the customer: an external message not written by the customer, or a notice.
OUTGOING = Q(kind__in=["external", "notice"]) & ~Q(sender_kind="customer")


class Delivery(models.TextChoices):
    """Where a message to the customer is on its way (tickets.delivery). Other messages have
    none (the empty value)."""

    QUEUED = "queued"
    RETRYING = "retrying"  # the last attempt failed for a reason that may pass; another is due
    SENT = "sent"  # handed to the channel (for email: the SMTP server accepted it)
    FAILED = "failed"  # given up: a permanent refusal, or the retries ran out

    @property
    def pending(self) -> bool:
        """Still to be attempted (by its task, or the delivery sweep)."""
        return self in (Delivery.QUEUED, Delivery.RETRYING)


PENDING_DELIVERY = [state for state in Delivery if state.pending]

# A customer's message no turn of the agents answers: an auto-reply, or one saying the problem
# is solved (tickets.conversation: it resolved the ticket, or thanked on a resolved one).
NOT_ANSWERED = Q(metadata__has_key="auto_reply") | Q(metadata__has_key="says_solved")


class Message(models.Model):
    class Kind(models.TextChoices):
        EXTERNAL = "external"  # customer <-> support
        INTERNAL = "internal"  # team notes, agent analyses, escalations
        # A mail to the customer outside the conversation (the satisfaction survey): delivered
        # like a reply, but not a reply — no first response, no turn, no confirm link.
        NOTICE = "notice"

    class SenderKind(models.TextChoices):
        CUSTOMER = "customer"
        CS_AGENT = "cs_agent"
        TECHNICAL = "technical"
        AI_AGENT = "ai_agent"
        SYSTEM = "system"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sender_kind = models.CharField(max_length=16, choices=SenderKind.choices)
    sender_id = models.CharField(max_length=128, blank=True)
    content = models.TextField()
    # The sender's id for a message they delivered (a follow-up): a redelivery finds it.
    external_id = models.CharField(max_length=128, blank=True)
    # The email Message-ID of the mail this message came in or went out as: a customer's
    # emailed answer names it in In-Reply-To / References, which leads back to the ticket.
    email_message_id = models.CharField(max_length=300, blank=True)
    # Per-message annotations: intent, sentiment (-1..1), suggested actions, source metadata;
    # for a follow-up, its email headers and whether it was an auto-reply.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    # Messages to the customer only (tickets.delivery): their way out through the channel.
    delivery = models.CharField(max_length=16, choices=Delivery.choices, blank=True, default="")
    delivery_error = models.TextField(blank=True)  # why the last attempt failed
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    # When the next attempt may start: creation, a retry's time, or the end of the lease of
    # an attempt under way (nobody else sends it before). Null once sent or failed.
    delivery_due_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Exactly the messages to the customer have a delivery state.
            models.CheckConstraint(
                condition=(OUTGOING & ~Q(delivery="")) | (~OUTGOING & Q(delivery="")),
                name="message_delivery_iff_outgoing",
            ),
            # Follow-ups are idempotent: a redelivered message is found through this.
            models.UniqueConstraint(
                fields=["ticket", "external_id"],
                condition=~Q(external_id=""),
                name="message_ticket_external_unique",
            ),
        ]
        indexes = [
            # Ticket timeline: a ticket's messages in order.
            models.Index(fields=["ticket", "created_at", "id"], name="message_ticket_timeline_idx"),
            # outcomes.day_figures.changed_days: messages written or delivered since it looked.
            models.Index(fields=["created_at"], name="message_created_idx"),
            models.Index(fields=["delivered_at"], name="message_delivered_idx"),
            # agents.tasks.pipeline_sweep: customers' recent follow-ups whose turn never started.
            models.Index(
                fields=["created_at"],
                name="message_customer_created_idx",
                condition=Q(sender_kind="customer"),
            ),
            # tickets.delivery.deliveries_sweep: pending deliveries whose attempt is overdue.
            models.Index(
                fields=["delivery_due_at"],
                name="message_delivery_due_idx",
                condition=Q(delivery__in=["queued", "retrying"]),
            ),
            # tickets.conversation.ticket_for_mail: the message an emailed answer replies to.
            models.Index(
                fields=["email_message_id"], name="message_email_id_idx", condition=~Q(email_message_id="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.sender_kind} on #{self.ticket_id}"
