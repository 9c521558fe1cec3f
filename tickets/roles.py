"""The standard groups and what each may do with tickets.

Kept in step with the code by a post_migrate receiver, so a fresh database and the test
database have them without a manual step.
"""

from django.contrib.auth.models import Group, Permission

from events import roles as events_roles

REVIEWER = "reviewer"
SUPERVISOR = "supervisor"
ADMIN = "admin"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWER: ["tickets.view_ticket", "tickets.view_customer", "tickets.view_message"],
    SUPERVISOR: [
        "tickets.view_ticket",
        "tickets.change_ticket",
        "tickets.view_customer",
        "tickets.view_message",
        "tickets.view_slapolicy",
        "tickets.change_slapolicy",
        *events_roles.MANAGE,  # webhook endpoints, their deliveries, replays
    ],
    ADMIN: [
        f"tickets.{action}_{model}"
        for model in ["ticket", "customer", "message", "slapolicy"]
        for action in ["view", "add", "change", "delete"]
    ]
    + events_roles.MANAGE,
}


def roles_ensure(role_permissions: dict[str, list[str]] = ROLE_PERMISSIONS) -> None:
    """Create the groups and grant them ``role_permissions``; other apps pass their own."""
    for role, names in role_permissions.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*wanted)
