import re

from rest_framework import serializers

from tickets.models import Category, Channel, Customer, Message, Priority, Ticket, Tier
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
    class Meta:
        model = Message
        fields = ["id", "kind", "sender_kind", "sender_id", "content", "metadata", "created_at"]


class TicketSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer()
    messages = MessageSerializer(many=True)
    # None while nobody is assigned.
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

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
            "customer",
            "messages",
        ]


class TicketFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
