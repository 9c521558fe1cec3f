"""Every write of the team page (review.team): people, their role, deactivation, passwords
and API tokens. Reads are review.team_selectors.

Each is done by a supervisor (``actor``) and recorded twice: a log line, and an entry in the
person's history in the Django admin (``LogEntry``), which answers "who made rita a
supervisor, and when". A supervisor never changes their own role or deactivates themselves
(so a team always keeps the supervisor who acted), and never touches an account managed in
the admin (staff, superusers, the admin group).

DRF's ``Token`` is one per person and keeps its key in the database: issuing replaces the
old one (it stops working at once), revoking deletes it. The page shows a key in full only
in the answer to the request that issued it.
"""

import logging
import secrets

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from csai.errors import ApplicationError
from review.roles import TEAM_ROLES
from review.team_selectors import TOKEN_PREFIX_LENGTH, managed_in_admin

logger = logging.getLogger(__name__)

# Generated passwords: no 0/O, 1/l/I, so they can be read out or typed from a note.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def password_generate() -> str:
    """Four groups of four (about 93 bits), e.g. ``k7Wm-pQ3x-…``."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


def password_check(password: str, *, user) -> None:
    """Django's password validators (settings.AUTH_PASSWORD_VALIDATORS) for ``user``, who may
    be unsaved; their messages as one ``ApplicationError``."""
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ApplicationError(" ".join(error.messages)) from None


def _record(*, actor, person, action: str, message: str, flag: int = CHANGE) -> None:
    LogEntry.objects.log_actions(
        user_id=actor.pk, queryset=[person], action_flag=flag, change_message=message, single_object=True
    )
    logger.info(
        "team: %s: %s",
        person.get_username(),
        message,
        extra={"action": action, "actor": actor.get_username(), "person": person.get_username()},
    )


def person_check(*, actor, person, what: str, yourself: bool = False) -> None:
    """Refuse (403) when ``person`` is managed in the admin, or is ``actor`` and the action
    (``what``, e.g. "deactivate") is not one a supervisor may do to themselves. Every service
    here calls it; a view calls it too before it asks for a confirmation."""
    roles = {group.name for group in person.groups.all()}
    if managed_in_admin(is_staff=person.is_staff, is_superuser=person.is_superuser, roles=roles):
        raise ApplicationError(f"{person.get_username()} is managed in the admin.", status_code=403)
    if person.pk == actor.pk and not yourself:
        raise ApplicationError(f"You cannot {what} yourself: ask another supervisor.", status_code=403)


def _role_check(role: str) -> Group:
    if role not in TEAM_ROLES:
        raise ApplicationError(f"Choose a role: {', '.join(TEAM_ROLES.values())}.")
    return Group.objects.get(name=role)


def _lock(person):
    """The person's row, locked for the rest of the transaction: two supervisors changing one
    person take turns."""
    return get_user_model().objects.select_for_update().get(pk=person.pk)


# --- people ------------------------------------------------------------------------------


@transaction.atomic
def person_add(
    *,
    actor,
    username: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    password: str = "",
):
    """A new, active account with ``role``. Without ``password`` one is generated; returns
    ``(user, generated_password)`` — the latter "" when the supervisor chose the password."""
    User = get_user_model()
    group = _role_check(role)
    username = User.normalize_username(username.strip())
    if not username:
        raise ApplicationError("A username is required.")
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(f"The username {username} is taken.", status_code=409)
    user = User(username=username, first_name=first_name.strip(), last_name=last_name.strip())
    user.email = User.objects.normalize_email(email.strip())
    generated = "" if password else password_generate()
    password_check(password or generated, user=user)
    user.set_password(password or generated)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # added by someone else since the check above
        raise ApplicationError(f"The username {username} is taken.", status_code=409) from None
    user.groups.add(group)
    _record(
        actor=actor,
        person=user,
        action="add",
        message=f"Added as {TEAM_ROLES[role].lower()} by {actor.get_username()} on the team page.",
        flag=ADDITION,
    )
    return user, generated


@transaction.atomic
def person_role_set(*, actor, person, role: str) -> bool:
    """Give ``person`` ``role`` instead of the team role they had; False when they had it."""
    group = _role_check(role)
    person_check(actor=actor, person=person, what="change the role of")
    person = _lock(person)
    had = set(person.groups.filter(name__in=TEAM_ROLES).values_list("name", flat=True))
    if had == {role}:
        return False
    person.groups.remove(*Group.objects.filter(name__in=set(TEAM_ROLES) - {role}))
    person.groups.add(group)
    before = ", ".join(TEAM_ROLES[name].lower() for name in sorted(had)) or "no role"
    _record(
        actor=actor,
        person=person,
        action="role",
        message=f"Role changed from {before} to {TEAM_ROLES[role].lower()} by {actor.get_username()}.",
    )
    return True


@transaction.atomic
def person_deactivate(*, actor, person) -> None:
    """``person`` can no longer log in and their API token is deleted. Their open sessions end
    with their next request: the authentication backend refuses inactive users."""
    person_check(actor=actor, person=person, what="deactivate")
    person = _lock(person)
    if not person.is_active:
        raise ApplicationError(f"{person.get_username()} is already deactivated.", status_code=409)
    person.is_active = False
    person.save(update_fields=["is_active"])
    revoked, _ = Token.objects.filter(user=person).delete()
    _record(
        actor=actor,
        person=person,
        action="deactivate",
        message=f"Deactivated by {actor.get_username()}" + (", API token revoked." if revoked else "."),
    )


@transaction.atomic
def person_reactivate(*, actor, person) -> None:
    """``person`` may log in again, with their old password; API tokens are issued anew."""
    person_check(actor=actor, person=person, what="reactivate")
    person = _lock(person)
    if person.is_active:
        raise ApplicationError(f"{person.get_username()} is active.", status_code=409)
    person.is_active = True
    person.save(update_fields=["is_active"])
    _record(
        actor=actor, person=person, action="reactivate", message=f"Reactivated by {actor.get_username()}."
    )


@transaction.atomic
def person_password_reset(*, actor, person) -> str:
    """A new generated password for ``person`` (returned, to be handed over once); the old one
    and every session it opened stop working."""
    person_check(actor=actor, person=person, what="reset the password of")
    person = _lock(person)
    password = password_generate()
    password_check(password, user=person)
    person.set_password(password)
    person.save(update_fields=["password"])
    _record(
        actor=actor,
        person=person,
        action="password",
        message=f"Password reset by {actor.get_username()}.",
    )
    return password


# --- API tokens --------------------------------------------------------------------------


@transaction.atomic
def api_token_issue(*, actor, person) -> str:
    """A new API token for ``person`` (its key returned, to be shown once); a token they had
    stops working. A supervisor may issue their own."""
    person_check(actor=actor, person=person, what="issue a token for", yourself=True)
    person = _lock(person)
    if not person.is_active:
        raise ApplicationError(f"{person.get_username()} is deactivated: reactivate them first.")
    replaced, _ = Token.objects.filter(user=person).delete()
    token = Token.objects.create(user=person)
    _record(
        actor=actor,
        person=person,
        action="token-issue",
        message=f"API token {token.key[:TOKEN_PREFIX_LENGTH]}… issued by {actor.get_username()}"
        + (", replacing the previous one." if replaced else "."),
    )
    return token.key


@transaction.atomic
def api_token_revoke(*, actor, person) -> bool:
    """Delete ``person``'s API token; False when they had none."""
    person_check(actor=actor, person=person, what="revoke a token of", yourself=True)
    person = _lock(person)
    token = Token.objects.filter(user=person).first()
    if token is None:
        return False
    prefix = token.key[:TOKEN_PREFIX_LENGTH]
    token.delete()
    _record(
        actor=actor,
        person=person,
        action="token-revoke",
        message=f"API token {prefix}… revoked by {actor.get_username()}.",
    )
    return True
