"""Reads of endpoints, events and deliveries."""

from django.db.models import QuerySet
from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from events.models import Delivery, Endpoint, Event
from events.roles import MANAGE_PERMISSION


def get_endpoint_for_user(user, endpoint_id: int) -> Endpoint:
    """The endpoint, if ``user`` manages endpoints: 403 otherwise, 404 when there is none."""
    if not user.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied("Only supervisors and admins manage webhook endpoints.")
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def get_event_for_user(user, webhook_id: str) -> Event:
    """The event with this webhook-id (``evt_…``): 403 or 404 like ``get_endpoint_for_user``."""
    if not user.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied("Only supervisors and admins replay events.")
    uid = Event.uid_from_webhook_id(webhook_id)
    event = Event.objects.filter(uid=uid).first() if uid is not None else None
    if event is None:
        raise Http404("No such event.")
    return event


def endpoint_deliveries(*, endpoint: Endpoint, status: str | None = None) -> QuerySet[Delivery]:
    """An endpoint's deliveries, newest first, each with its event and its attempts."""
    deliveries = (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-id")
    )
    return deliveries.filter(status=status) if status else deliveries
