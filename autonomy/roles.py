"""What each standard group (tickets.roles) may do with the autonomy data in the admin."""

from tickets.roles import ADMIN, REVIEWER, SUPERVISOR, roles_ensure

_VIEW = [
    f"autonomy.view_{model}"
    for model in ["automationpolicy", "calibrationversion", "disposition", "reviewitem", "alert"]
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWER: ["autonomy.view_reviewitem"],
    # Supervisors tune targets and review rates; phases move only through promote / demote.
    SUPERVISOR: [
        *_VIEW,
        "autonomy.change_automationpolicy",
        "autonomy.change_phase",
        "autonomy.acknowledge_alert",
    ],
    ADMIN: [
        *_VIEW,
        "autonomy.change_automationpolicy",
        "autonomy.change_phase",
        "autonomy.acknowledge_alert",
    ],
}


def ensure_roles(sender, **_):
    roles_ensure(ROLE_PERMISSIONS)
