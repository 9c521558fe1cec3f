"""Writes that only the lab and the ``make run`` demo need."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tickets import roles

DEMO_USERS = {"reviewer": roles.REVIEWER, "supervisor": roles.SUPERVISOR}


def demo_users_ensure(*, password: str | None) -> str | None:
    """Create the demo ``reviewer`` and ``supervisor`` logins if they are missing.

    With ``password`` given, both get it (also when they exist). Without it, new users get
    a generated password, which is returned so the caller can show it once; None when
    nothing new needed a password.
    """
    shown = None
    for username, role in DEMO_USERS.items():
        # Only supervisors use the admin: it shows every decision, phase 1's hidden ones too.
        staff = role == roles.SUPERVISOR
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": staff}
        )
        if created or password:
            if password is None:
                shown = shown or secrets.token_urlsafe(12)
            user.set_password(password or shown)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role))
    return shown


ADMIN_USERNAME = "admin"


def admin_user_ensure(*, password: str | None) -> str | None:
    """Create the ``admin`` superuser if it is missing (the Django admin's login).

    As ``demo_users_ensure``: with ``password`` it gets that one (also when it exists);
    without, a new admin gets a generated password, returned so it is shown once.
    """
    user, created = get_user_model().objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"is_staff": True, "is_superuser": True}
    )
    if not (created or password):
        return None
    shown = password or secrets.token_urlsafe(12)
    user.set_password(shown)
    user.save(update_fields=["password"])
    return None if password else shown
