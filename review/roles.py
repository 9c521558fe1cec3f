"""What each standard group (tickets.roles) may do in the review console, and API tokens."""

from tickets.roles import ADMIN, REVIEWER, SUPERVISOR, roles_ensure

WORK_QUEUE = "review.work_queue"
# Reopening and reassigning a ticket from its page.
CHANGE_TICKET = "tickets.change_ticket"
# Supervisor pages (autonomy, alerts, calibration, dashboard) are shown to holders of this.
SUPERVISE = "autonomy.change_phase"
# The team page (review.team): add people, set their role, deactivate them, their API tokens.
MANAGE_TEAM = "review.manage_team"

# The roles a supervisor may give on the team page, with their labels; admins (staff) are
# made in the Django admin.
TEAM_ROLES: dict[str, str] = {REVIEWER: "Reviewer", SUPERVISOR: "Supervisor"}

# Admins may also manage API tokens in the Django admin (DRF's TokenProxy); picking the
# token's user needs to see users. Supervisors do it on the team page.
_TOKENS = [f"authtoken.{action}_tokenproxy" for action in ("view", "add", "delete")]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWER: [WORK_QUEUE],
    SUPERVISOR: [WORK_QUEUE, MANAGE_TEAM],
    ADMIN: [WORK_QUEUE, MANAGE_TEAM, *_TOKENS, "auth.view_user"],
}


def ensure_roles(sender, **_):
    roles_ensure(ROLE_PERMISSIONS)
