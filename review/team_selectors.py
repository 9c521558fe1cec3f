"""Reads behind the team page (review.team): the people who may log in, their role and their
API token. Writes are review.team_services."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404

from review.roles import TEAM_ROLES
from tickets.roles import ADMIN

# How much of an API token the page shows once it has been handed over: enough to tell
# two apart, far too little to use.
TOKEN_PREFIX_LENGTH = 8


def managed_in_admin(*, is_staff: bool, is_superuser: bool, roles: set[str]) -> bool:
    """Staff, superusers and the admin group are managed in the Django admin; a supervisor
    can neither change nor deactivate them (nor issue their tokens) on the team page."""
    return is_staff or is_superuser or ADMIN in roles


@dataclass(frozen=True)
class Member:
    pk: int
    username: str
    name: str
    email: str
    role: str  # a key of TEAM_ROLES, "admin", or "" (no role: can log in, may see nothing)
    is_active: bool
    last_login: datetime | None
    date_joined: datetime
    token_prefix: str  # "" when the person has no API token
    token_created: datetime | None
    admin_managed: bool

    @property
    def role_label(self) -> str:
        return TEAM_ROLES.get(self.role) or ("Admin" if self.role == ADMIN else "No role")

    @property
    def tokens(self) -> int:
        return 1 if self.token_prefix else 0


def _role(roles: set[str]) -> str:
    if ADMIN in roles:
        return ADMIN
    # The higher of the two when someone was given both in the admin.
    return next((role for role in reversed(TEAM_ROLES) if role in roles), "")


def member_from_user(user) -> Member:
    roles = {group.name for group in user.groups.all()}
    token = getattr(user, "auth_token", None)  # DRF: at most one per user
    return Member(
        pk=user.pk,
        username=user.get_username(),
        name=user.get_full_name(),
        email=user.email,
        role=_role(roles),
        is_active=user.is_active,
        last_login=user.last_login,
        date_joined=user.date_joined,
        token_prefix=token.key[:TOKEN_PREFIX_LENGTH] if token else "",
        token_created=token.created if token else None,
        admin_managed=managed_in_admin(is_staff=user.is_staff, is_superuser=user.is_superuser, roles=roles),
    )


def team_members() -> list[Member]:
    """Everyone with an account, active people first, then by username. Two queries, however
    many people (their groups prefetched, their token joined)."""
    users = (
        get_user_model()
        .objects.select_related("auth_token")
        .prefetch_related("groups")
        .order_by("-is_active", "username")
    )
    return [member_from_user(user) for user in users]


def get_member_user(user_id: int):
    """The account behind a row of the team page, for a service to change; 404 when unknown."""
    return get_object_or_404(get_user_model().objects.prefetch_related("groups"), pk=user_id)
