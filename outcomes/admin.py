from django.contrib import admin

from outcomes.models import Survey


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    """The customers' answers, read-only: a score is theirs, not the team's to edit."""

    list_display = ["ticket", "resolved_by", "score", "sent_at", "answered_at", "source"]
    list_filter = ["resolved_by", "score", "source"]
    date_hierarchy = "sent_at"
    raw_id_fields = ["ticket"]
    readonly_fields = [f.name for f in Survey._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
