"""Reads of tickets, shaped for the API and the console."""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from tickets.models import Ticket

VIEW_PERMISSION = "tickets.view_ticket"


def ticket_list(*, filters: dict) -> QuerySet[Ticket]:
    """Newest first, with customer and messages loaded in two extra queries per page."""
    return (
        Ticket.objects.filter(**filters)
        .select_related("customer", "assignee")
        .prefetch_related("messages")
        .order_by("-created_at", "-id")
    )


def get_ticket_for_user(user, ticket_id: int) -> Ticket:
    """The ticket if ``user`` may see it: 404 when it does not exist, 403 without the role."""
    if not user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    return get_object_or_404(ticket_list(filters={}), pk=ticket_id)
