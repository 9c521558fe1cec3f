import re

from rest_framework import serializers

from tickets.conversation import FollowUpData
from tickets.models import Category, Channel, Customer, Delivery, Message, Priority, Ticket, Tier
from tickets.services import CustomerData, TicketData

MAX_METADATA_DEPTH = 16
# A lone UTF-16 surrogate (JSON "\ud83d" without its pair): PostgreSQL's jsonb refuses it.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _metadata_problem(value) -> str | None:
    """Why ``value`` cannot be stored as metadata, or None. Iterative: depth is untrusted."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            return f"Nested deeper than {MAX_METADATA_DEPTH} levels."
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and "\x00" in item:
            return "Null characters are not allowed."  # PostgreSQL cannot store them
        elif isinstance(item, str) and _SURROGATE.search(item):
            return "Unpaired surrogate characters are not allowed."  # nor these
    return None


class WebhookCustomerSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128)
    name = serializers.CharField(max_length=200)
    # Left out: the stored value is kept (a new customer gets the model default).
    email = serializers.EmailField(required=False, allow_blank=True)
    company = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)


class WebhookTicketSerializer(serializers.Serializer):
    source = serializers.RegexField(r"^[A-Za-z0-9_.-]+$", max_length=64)
    external_id = serializers.CharField(max_length=128)
    # Email often has none: empty, null or left out, the intake derives one from the body.
    subject = serializers.CharField(max_length=300, allow_blank=True, allow_null=True, default="")
    body = serializers.CharField(max_length=100_000, trim_whitespace=False)
    channel = serializers.ChoiceField(choices=Channel.choices)
    customer = WebhookCustomerSerializer()
    metadata = serializers.DictField(required=False, default=dict)

    def validate_metadata(self, value: dict) -> dict:
        problem = _metadata_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_subject(self, value: str | None) -> str:
        return value or ""

    def validate_body(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def to_ticket_data(self) -> TicketData:
        """The validated payload as the intake service's input (call after is_valid)."""
        data = dict(self.validated_data)
        return TicketData(customer=CustomerData(**data.pop("customer")), **data)


class WebhookSenderSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class WebhookMessageSerializer(serializers.Serializer):
    """A customer's follow-up. ``ticket_external_id`` names the ticket; left out, the email
    headers (``In-Reply-To`` / ``References``) must lead to it, as an inbound-mail relay posts."""

    source = serializers.RegexField(r"^[A-Za-z0-9_.-]+$", max_length=64)
    ticket_external_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    external_id = serializers.CharField(max_length=128)
    content = serializers.CharField(max_length=100_000, trim_whitespace=False)
    sender = WebhookSenderSerializer(required=False, default=dict)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True, trim_whitespace=False),
        required=False,
        default=dict,
        help_text="Email headers, e.g. Message-ID, In-Reply-To, References, Auto-Submitted.",
    )

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
        return value

    def validate_headers(self, value: dict) -> dict:
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 headers.")
        problem = _metadata_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict) -> dict:
        names = {name.lower() for name in attrs["headers"]}
        if not attrs["ticket_external_id"] and not names & {"in-reply-to", "references"}:
            raise serializers.ValidationError(
                {"ticket_external_id": ["Name the ticket, or send the In-Reply-To / References headers."]}
            )
        return attrs

    def to_follow_up(self) -> FollowUpData:
        data = dict(self.validated_data)
        sender = data.pop("sender")
        return FollowUpData(sender_email=sender.get("email", ""), sender_name=sender.get("name", ""), **data)


class MessageAcceptedSerializer(serializers.Serializer):
    message_id = serializers.IntegerField()
    ticket_id = serializers.IntegerField()
    outcome = serializers.ChoiceField(
        choices=["continued", "reopened", "new_ticket", "auto_reply", "duplicate", "solved", "thanks"],
        help_text="What the message did: continued or reopened its ticket, opened a new one that "
        "follows it (closed or long resolved), was kept as an auto-reply, or was a redelivery; "
        "solved: it said the problem is solved and resolved the ticket; thanks: it said so on a "
        "ticket already resolved or closed (kept, nothing changes).",
    )


class WebhookAcceptedSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    status = serializers.CharField()


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "name",
            "company",
            "email",
            "tier",
            "is_vip",
            "has_support_entitlement",
        ]


class MessageSerializer(serializers.ModelSerializer):
    delivery = serializers.ChoiceField(
        choices=Delivery.choices,
        allow_blank=True,
        read_only=True,
        help_text="A message to the customer: queued, retrying (the last attempt failed for a "
        "reason that may pass), sent, or failed (see delivery_error). Empty for the customer's "
        "messages and internal notes.",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "kind",
            "sender_kind",
            "sender_id",
            "content",
            "metadata",
            "created_at",
            "email_message_id",
            "delivery",
            "delivery_error",
            "delivery_attempts",
            "delivered_at",
        ]

    def to_representation(self, instance: Message) -> dict:
        data = super().to_representation(instance)
        if instance.kind == Message.Kind.NOTICE and "link" in data["metadata"]:
            # A notice's link is the customer's own (the survey): not for the people reading the API.
            data["metadata"] = {k: v for k, v in data["metadata"].items() if k != "link"}
        return data


class TicketSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer()
    messages = MessageSerializer(many=True)
    # None while nobody is assigned.
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    resolved_by = serializers.ChoiceField(
        choices=Ticket.Resolver.choices,
        allow_blank=True,
        read_only=True,
        help_text="Who resolved it: ai, person (see resolver), or empty (open, or not known).",
    )
    resolver = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="The person who resolved it."
    )
    csat_score = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The customer's latest satisfaction answer, 1 (bad) to 5 (great); null: none yet.",
    )
    csat_comment = serializers.CharField(read_only=True, allow_null=True, default=None)
    csat_answered_at = serializers.DateTimeField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "source",
            "external_id",
            "subject",
            "body",
            "channel",
            "status",
            "category",
            "priority",
            "team",
            "assignee",
            "stage",
            "first_response_due",
            "resolution_due",
            "sla_state",
            "correlation_id",
            "metadata",
            "created_at",
            "first_response_at",
            "resolved_at",
            "resolved_by",
            "resolver",
            "assumed_resolution_at",
            "reopened_count",
            "closed_at",
            "csat_score",
            "csat_comment",
            "csat_answered_at",
            "customer",
            "messages",
        ]


class TicketFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    updated_since = serializers.DateTimeField(
        required=False,
        help_text="Only tickets changed at or after this moment: poll with the last answer's time.",
    )
    source = serializers.RegexField(r"^[A-Za-z0-9_.-]+$", max_length=64, required=False)
    external_id = serializers.CharField(max_length=128, required=False, help_text="With source: one ticket.")
