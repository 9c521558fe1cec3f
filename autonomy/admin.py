from django.contrib import admin

from agents.admin import ReadOnlyAdmin
from autonomy.models import Alert, AutomationPolicy, CalibrationVersion, Disposition, ReviewItem


@admin.register(AutomationPolicy)
class AutomationPolicyAdmin(admin.ModelAdmin):
    """Targets and review rates are edited here; phases, calibration and thresholds change only
    through promotion, demotion and rollback, which keep an audit trail."""

    list_display = ["decision_type", "phase", "criticality", "target_precision", "threshold", "updated_at"]
    readonly_fields = ["decision_type", "phase", "calibration", "threshold", "class_thresholds", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CalibrationVersion)
class CalibrationVersionAdmin(ReadOnlyAdmin):
    list_display = [
        "decision_type",
        "version",
        "model_version",
        "source",
        "samples",
        "ece",
        "brier",
        "fitted_at",
    ]
    list_filter = ["decision_type"]


@admin.register(Disposition)
class DispositionAdmin(ReadOnlyAdmin):
    list_display = ["decision", "kind", "phase", "threshold", "applied", "reason", "created_at"]
    list_filter = ["kind", "phase", "applied"]
    list_select_related = ["decision"]


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "decision_type", "kind", "status", "outcome", "uncertainty", "created_at"]
    list_filter = ["decision_type", "kind", "status", "outcome"]
    list_select_related = ["ticket"]
    raw_id_fields = ["ticket", "decision"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Alerts are acknowledged on the console's alerts page, which records who did it."""

    list_display = [
        "type",
        "severity",
        "decision_type",
        "value",
        "threshold",
        "created_at",
        "acknowledged_by",
    ]
    list_filter = ["severity", "type", "decision_type"]
