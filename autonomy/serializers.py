from rest_framework import serializers

from agents.models import AgentDecision
from autonomy.models import Alert, AutomationPolicy, PhaseTransition, RollbackPoint


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = AutomationPolicy
        fields = [
            "decision_type",
            "phase",
            "criticality",
            "target_precision",
            "min_samples",
            "review_rate_phase3",
            "review_rate_phase4",
            "review_rate_phase5",
            "calibration",
            "threshold",
            "class_thresholds",
            "updated_at",
        ]
        read_only_fields = fields


class TransitionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = PhaseTransition
        fields = [
            "id",
            "direction",
            "from_phase",
            "to_phase",
            "actor",
            "reason",
            "metrics",
            "rollback_point",
            "created_at",
        ]
        read_only_fields = fields


class RollbackPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = RollbackPoint
        fields = ["id", "snapshot", "created_at"]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DemoteSerializer(ReasonSerializer):
    to_phase = serializers.IntegerField(min_value=1, max_value=4, required=False)


class ReadinessSerializer(serializers.Serializer):
    """Where a decision type stands: autonomy.selectors.policy_readiness."""

    phase = serializers.IntegerField()
    decisions = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    agreement_rate = serializers.FloatField(allow_null=True)
    projected_accuracy = serializers.DictField()
    autonomous_rate = serializers.FloatField(allow_null=True)
    autonomous_accuracy = serializers.DictField(help_text="value, 95 % interval (low, high) and n")
    ece = serializers.FloatField(allow_null=True)
    critical_errors = serializers.IntegerField()
    threshold = serializers.FloatField(allow_null=True)
    csat = serializers.DictField(
        allow_null=True,
        help_text="types that answer customers (the reply): CSAT of AI- and person-resolved tickets "
        "({n, mean} each) and the difference AI − person with its 95 % interval; null for the others",
    )
    criteria = serializers.DictField()
    blockers = serializers.ListField(child=serializers.CharField())
    ready = serializers.BooleanField()
    readiness_score = serializers.FloatField()


class AlertSerializer(serializers.ModelSerializer):
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "decision_type",
            "type",
            "severity",
            "metric",
            "value",
            "threshold",
            "samples",
            "recommendation",
            "proposed_phase",
            "demotion",
            "created_at",
            "acknowledged_by",
            "acknowledged_at",
            "note",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


# What a decision hidden in phase 1 does not show until a person answered it.
HIDDEN_FIELDS = (
    "value", "label", "raw_confidence", "calibrated_confidence", "out_of_scope", "guardrail_violations",
    "reasoning", "evidence",
)  # fmt: skip


class AgentDecisionSerializer(serializers.ModelSerializer):
    """A decision as the audit trail shows it; one whose answer phase 1 still hides (a person
    has not answered it yet) comes with ``hidden`` true and its answer fields null."""

    run = serializers.IntegerField(source="run.number", read_only=True)
    hidden = serializers.SerializerMethodField()
    disposition = serializers.CharField(source="disposition.kind", default=None, read_only=True)

    def get_hidden(self, decision: AgentDecision) -> bool:
        item = getattr(decision, "review_item", None)
        return bool(item and item.hides_answer)

    def to_representation(self, decision: AgentDecision) -> dict:
        data = super().to_representation(decision)
        if data["hidden"]:
            data.update(dict.fromkeys(HIDDEN_FIELDS))
        return data

    class Meta:
        model = AgentDecision
        fields = [
            "id",
            "run",
            "agent",
            "decision_type",
            "value",
            "label",
            "raw_confidence",
            "calibrated_confidence",
            "out_of_scope",
            "guardrail_violations",
            "reasoning",
            "evidence",
            "provider",
            "model_name",
            "prompt_version",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "correlation_id",
            "created_at",
            "disposition",
            "hidden",
        ]
        read_only_fields = fields
