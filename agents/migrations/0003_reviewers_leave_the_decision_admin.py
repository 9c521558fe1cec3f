from django.db import migrations

REVIEWER = "reviewer"


def forwards(apps, schema_editor):
    """Reviewers no longer see decisions in the admin (it shows phase 1's hidden answers)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=REVIEWER).first()
    permission = Permission.objects.filter(
        content_type__app_label="agents", codename="view_agentdecision"
    ).first()
    if group is not None and permission is not None:
        group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0002_decision_created_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
