from rest_framework import serializers

from autonomy.models import AutomationPolicy, PhaseTransition, RollbackPoint


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
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

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
