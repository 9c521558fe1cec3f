from django.db import models


class ReviewConsole(models.Model):
    """No table: the anchor for the console's own permissions (groups get them in review.roles)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("work_queue", "Can work the review queue: claim, decide, add notes"),
            ("manage_team", "Can add people, set their roles, deactivate them and issue their API tokens"),
        ]

    def __str__(self) -> str:
        return "review console"
