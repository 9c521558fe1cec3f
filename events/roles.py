"""What managing outbound events takes. tickets.roles grants it to supervisors and admins
(this app sits below tickets and does not know the groups)."""

# Who may manage endpoints and replay deliveries, over REST and in the admin.
MANAGE_PERMISSION = "events.change_endpoint"

MANAGE: list[str] = [
    "events.view_endpoint",
    "events.add_endpoint",
    "events.change_endpoint",
    "events.delete_endpoint",
    "events.view_event",
    "events.view_delivery",
    "events.view_attempt",
]
