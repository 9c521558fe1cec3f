from django.contrib import admin, messages

from agents.models import AgentDecision, DeadLetter, KnowledgeArticle, ModelVersion, Outage, PipelineRun


def confidence_text(decision: AgentDecision) -> str:
    if decision.out_of_scope:
        return "out of scope"
    calibrated = decision.calibrated_confidence
    return f"{decision.raw_confidence:.2f} / " + ("–" if calibrated is None else f"{calibrated:.2f}")


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit trail: visible to staff, never edited or deleted through the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AgentDecision)
class AgentDecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "decision_type", "label", "confidence", "provider", "created_at"]
    list_filter = ["decision_type", "agent", "provider", "out_of_scope"]
    search_fields = ["ticket__id", "label", "correlation_id"]
    list_select_related = ["ticket"]
    raw_id_fields = ["ticket", "run"]

    @admin.display(description="raw / calibrated confidence", ordering="raw_confidence")
    def confidence(self, decision: AgentDecision) -> str:
        return confidence_text(decision)


class DecisionInline(admin.TabularInline):
    model = AgentDecision
    fields = ["decision_type", "label", "confidence", "provider", "reasoning"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="raw / calibrated confidence")
    def confidence(self, decision: AgentDecision) -> str:
        return confidence_text(decision)


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "number", "status", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["ticket__id", "correlation_id"]
    list_select_related = ["ticket"]
    inlines = [DecisionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["decision_type", "version", "algorithm", "training_size", "is_active", "trained_at"]
    list_filter = ["decision_type", "is_active"]
    exclude = ["artifact"]


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    list_display = ["title", "starts_at", "ends_at"]
    search_fields = ["title", "description"]


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "category", "is_active", "updated_at"]
    list_filter = ["kind", "category", "is_active"]
    search_fields = ["title", "body"]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "task_name", "error_type", "attempts", "created_at", "retried_at"]
    list_filter = ["task_name", "error_type"]
    search_fields = ["ticket__id", "error_message"]
    actions = ["retry"]

    @admin.action(description="Retry the selected steps")
    def retry(self, request, queryset):
        from agents import services, tasks

        sent = sum(
            services.dead_letter_retry(letter=letter, actor=request.user, enqueue=tasks.send)
            for letter in queryset.select_related("run")
        )
        self.message_user(request, f"{sent} step(s) sent again.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # The retry action needs change permission; the form itself stays read-only.
        return request.user.has_perm("agents.change_deadletter")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
