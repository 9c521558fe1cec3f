from django.db import migrations

# (first response, resolution) in minutes, per priority and customer tier.
DEFAULTS = {
    "CRITICAL": {"PREMIUM": (15, 240), "STANDARD": (30, 480), "BASIC": (60, 1440)},
    "HIGH": {"PREMIUM": (60, 480), "STANDARD": (120, 1440), "BASIC": (240, 2880)},
    "MEDIUM": {"PREMIUM": (240, 1440), "STANDARD": (480, 2880), "BASIC": (1440, 5760)},
    "LOW": {"PREMIUM": (480, 2880), "STANDARD": (1440, 5760), "BASIC": (2880, 10080)},
}


def add_defaults(apps, schema_editor):
    SLAPolicy = apps.get_model("tickets", "SLAPolicy")
    for priority, tiers in DEFAULTS.items():
        for tier, (first, resolution) in tiers.items():
            SLAPolicy.objects.get_or_create(
                priority=priority,
                tier=tier,
                defaults={"first_response_minutes": first, "resolution_minutes": resolution},
            )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_customers_tickets_messages_sla")]
    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
