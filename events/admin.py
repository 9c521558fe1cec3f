"""Endpoints, events and deliveries in the admin (supervisors and admins): add and edit
endpoints; read events, deliveries and every attempt; replay one event, the selected
deliveries, or an endpoint's failed deliveries since a time."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils import timezone

from events import addresses, services, signing
from events.models import Attempt, Delivery, Endpoint, Event, EventType
from events.roles import MANAGE_PERMISSION


class ReplayPermission:
    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE_PERMISSION)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every type.",
    )

    class Meta:
        model = Endpoint
        fields = ["url", "description", "event_types", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            addresses.url_check(url)
        except addresses.AddressRefused as refused:
            raise forms.ValidationError(f"Webhooks cannot go to this URL: {refused}") from None
        return url


class ReplaySinceForm(forms.Form):
    since = forms.DateTimeField(help_text="Failed deliveries made since then are sent again.")


@admin.register(Endpoint)
class EndpointAdmin(ReplayPermission, admin.ModelAdmin):
    form = EndpointForm
    list_display = ["id", "url", "active", "types", "failing_since", "disabled_reason", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret", "disabled_reason", "failing_since", "created_at", "updated_at"]
    actions = ["replay_failed"]

    @admin.display(description="event types")
    def types(self, endpoint: Endpoint) -> str:
        return ", ".join(endpoint.event_types) or "every type"

    def save_model(self, request, obj, form, change):
        if change:  # through the service: turning it off fails its pending deliveries
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            services.endpoint_update(endpoint=Endpoint.objects.get(pk=obj.pk), **changes)
            obj.refresh_from_db()
        else:
            obj.secret = signing.secret_generate()
            super().save_model(request, obj, form, change)

    @admin.action(description="Send again the failed deliveries since a time", permissions=["replay"])
    def replay_failed(self, request, queryset):
        form = ReplaySinceForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            replayed = sum(
                services.deliveries_replay_failed(since=form.cleaned_data["since"], endpoint=endpoint)
                for endpoint in queryset.filter(active=True)
            )
            skipped = queryset.filter(active=False).count()
            note = f" ({skipped} disabled endpoint(s) skipped: turn them on first)" if skipped else ""
            self.message_user(request, f"{replayed} deliveries queued again{note}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Send failed deliveries again",
            "form": form,
            "endpoints": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
            "now": timezone.now(),
        }
        return TemplateResponse(request, "admin/events/replay_since.html", context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """What was announced and sent: read, never edited through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["endpoint", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReplayPermission, ReadOnlyAdmin):
    list_display = ["id", "type", "subject_kind", "subject_id", "sequence", "created_at", "fanned_out_at"]
    list_filter = ["type", "subject_kind"]
    search_fields = ["subject_id", "=uid"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "webhook_id",
        "type",
        "subject_kind",
        "subject_id",
        "sequence",
        "payload",
        "created_at",
    ]
    fields = readonly_fields + ["fanned_out_at"]
    inlines = [DeliveryInline]
    actions = ["replay"]

    @admin.display(description="webhook-id")
    def webhook_id(self, event: Event) -> str:
        return event.webhook_id

    @admin.action(description="Send the selected events again", permissions=["replay"])
    def replay(self, request, queryset):
        replayed = sum(services.event_replay(event=event) for event in queryset)
        self.message_user(request, f"{replayed} deliveries queued again.", messages.SUCCESS)


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["number", "attempted_at", "status_code", "error", "duration_ms", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReplayPermission, ReadOnlyAdmin):
    list_display = [
        "id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "endpoint", "created_at"]
    list_select_related = ["event", "endpoint"]
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    actions = ["replay"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    @admin.action(description="Send the selected deliveries again", permissions=["replay"])
    def replay(self, request, queryset):
        replayed = services.deliveries_replay(deliveries=queryset)
        self.message_user(
            request,
            f"{replayed} deliveries queued again "
            "(delivered ones and those of disabled endpoints are left alone).",
            messages.SUCCESS,
        )
