from django.contrib import admin, messages

from tickets.delivery import message_redeliver
from tickets.models import Customer, Delivery, Message, SLAPolicy, Ticket


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "external_id",
        "company",
        "tier",
        "is_vip",
        "has_support_entitlement",
        "created_at",
    ]
    list_filter = ["tier", "is_vip", "has_support_entitlement"]
    search_fields = ["name", "external_id", "company", "email"]


@admin.register(SLAPolicy)
class SLAPolicyAdmin(admin.ModelAdmin):
    list_display = ["priority", "tier", "first_response_minutes", "resolution_minutes"]
    list_filter = ["priority", "tier"]
    list_editable = ["first_response_minutes", "resolution_minutes"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["created_at", "kind", "sender_kind", "sender_id", "content", "delivery", "delivery_error"]
    readonly_fields = fields
    can_delete = False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "subject",
        "customer",
        "channel",
        "status",
        "category",
        "priority",
        "stage",
        "sla_state",
        "first_response_due",
        "created_at",
    ]
    list_filter = [
        "status",
        "category",
        "priority",
        "stage",
        "sla_state",
        "channel",
        "customer__tier",
    ]
    search_fields = [
        "=id",
        "external_id",
        "subject",
        "customer__name",
        "customer__external_id",
        "correlation_id",
    ]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    raw_id_fields = ["assignee"]
    # What the customer sent is the record of the conversation: shown, never edited.
    readonly_fields = [
        "source",
        "external_id",
        "customer",
        "subject",
        "body",
        "channel",
        "correlation_id",
        "metadata",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["customer", "subject", "body", "channel"]}),
        ("Triage", {"fields": ["status", "category", "priority", "team", "assignee", "stage"]}),
        (
            "SLA",
            {
                "fields": [
                    "sla_state",
                    "first_response_due",
                    "resolution_due",
                    "first_response_at",
                    "resolved_at",
                ]
            },
        ),
        (
            "Origin",
            {"fields": ["source", "external_id", "correlation_id", "metadata", "created_at", "updated_at"]},
        ),
    ]
    inlines = [MessageInline]
    show_full_result_count = False  # a COUNT(*) over every ticket on each page view is slow


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "kind", "sender_kind", "sender_id", "created_at", "delivery"]
    list_filter = ["kind", "sender_kind", "delivery"]
    search_fields = ["content", "ticket__subject", "=ticket__id", "=email_message_id"]
    raw_id_fields = ["ticket"]
    list_select_related = ["ticket"]
    # The delivery is the product's record of what went out: shown, changed only by the action.
    readonly_fields = [
        "email_message_id",
        "delivery",
        "delivery_error",
        "delivery_attempts",
        "delivery_due_at",
        "delivered_at",
    ]
    actions = ["deliver_again"]

    @admin.action(description="Deliver the selected failed messages again")
    def deliver_again(self, request, queryset):
        again = sum(
            message_redeliver(message_id=pk)
            for pk in queryset.filter(delivery=Delivery.FAILED).values_list("pk", flat=True)
        )
        self.message_user(request, f"{again} message(s) queued for delivery again.", messages.SUCCESS)
