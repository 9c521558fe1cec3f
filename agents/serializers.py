from rest_framework import serializers

from agents.models import AgentDecision


class AgentDecisionSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="run.number", read_only=True)

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
        ]
        read_only_fields = fields
