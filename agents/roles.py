"""What each standard group (tickets.roles) may do with the agents' data in the admin."""

from tickets.roles import ADMIN, REVIEWER, SUPERVISOR, roles_ensure

# Supervisors audit decisions and runs, keep outages and the knowledge base current, and
# retry dead-lettered steps (the admin action needs change permission).
_SUPERVISE = [
    "agents.view_agentdecision",
    "agents.view_pipelinerun",
    "agents.view_modelversion",
    "agents.view_deadletter",
    "agents.change_deadletter",
    *[
        f"agents.{action}_{model}"
        for model in ["outage", "knowledgearticle"]
        for action in ["view", "add", "change", "delete"]
    ],
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # Reviewers see decisions in the console, where phase 1 hides what nobody answered yet;
    # the admin shows everything, so it is not theirs.
    REVIEWER: [],
    SUPERVISOR: _SUPERVISE,
    ADMIN: _SUPERVISE,
}


def ensure_roles(sender, **_):
    roles_ensure(ROLE_PERMISSIONS)
