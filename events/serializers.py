"""Explicit input and output shapes of the webhook endpoints API."""

from rest_framework import serializers

from events.models import Attempt, Delivery, Endpoint, EventType


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint as listed; its secret is shown once, when it is created."""

    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        help_text="Event types sent to it; empty: every type.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "active",
            "disabled_reason",
            "failing_since",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointCreatedSerializer(EndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="whsec_<base64>: verify signatures with it. Shown only now."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class EndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, help_text="http(s) URL; not a private address")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        required=False,
        default=list,
        help_text="Event types to send; empty or left out: every type.",
    )

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http and https URLs.")
        return value


class EndpointUpdateSerializer(EndpointCreateSerializer):
    """Every field optional: only those sent change."""

    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), required=False
    )
    active = serializers.BooleanField(
        required=False, help_text="true turns a disabled endpoint on again and forgets why it was off"
    )


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "attempted_at", "status_code", "error", "duration_ms", "response_excerpt"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="event.webhook_id", read_only=True)
    event_type = serializers.ChoiceField(source="event.type", choices=EventType.choices, read_only=True)
    sequence = serializers.IntegerField(source="event.sequence", read_only=True)
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "sequence",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_duration_ms",
            "response_excerpt",
            "delivered_at",
            "created_at",
            "attempt_log",
        ]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)


class ReplaySinceSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Replay the failed deliveries made since then.")


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="Deliveries queued to be sent again.")
