"""Delivery state of messages to the customer: added nullable, filled (what was stored before
counts as sent when it was stored), then constrained to exactly the outgoing messages."""

from django.db import migrations, models
from django.db.models import F, Q

OUTGOING = Q(kind="external") & ~Q(sender_kind="customer")
CHOICES = [("queued", "Queued"), ("retrying", "Retrying"), ("sent", "Sent"), ("failed", "Failed")]


def fill(apps, schema_editor):
    Message = apps.get_model("tickets", "Message")
    Message.objects.filter(OUTGOING).update(delivery="sent", delivered_at=F("created_at"))
    Message.objects.exclude(OUTGOING).update(delivery="")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0007_conversation_follow_ups"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="delivery",
            field=models.CharField(blank=True, choices=CHOICES, max_length=16, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="delivery_error",
            field=models.TextField(blank=True, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="message",
            name="delivery_attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="message",
            name="delivery_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="delivered_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="delivery",
            field=models.CharField(blank=True, choices=CHOICES, default="", max_length=16),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.CheckConstraint(
                condition=(OUTGOING & ~Q(delivery="")) | (~OUTGOING & Q(delivery="")),
                name="message_delivery_iff_outgoing",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=Q(delivery__in=["queued", "retrying"]),
                fields=["delivery_due_at"],
                name="message_delivery_due_idx",
            ),
        ),
    ]
