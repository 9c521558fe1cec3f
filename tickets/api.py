import json
import logging
import time

import redis
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from csai import metrics
from csai.errors import ApplicationError
from csai.logging import get_correlation_id
from csai.redis import redis_client
from tickets import conversation, selectors, services, webhooks
from tickets.serializers import (
    MessageAcceptedSerializer,
    TicketFilterSerializer,
    TicketSerializer,
    WebhookAcceptedSerializer,
    WebhookMessageSerializer,
    WebhookTicketSerializer,
)

logger = logging.getLogger(__name__)


class WebhookThrottle(BaseThrottle):
    """A fixed-window counter per client address in Redis, shared by every web worker.

    One round trip per request (INCR and EXPIRE in a pipeline). DRF's SimpleRateThrottle
    rewrites a list of every request time on each request, which grows with the rate.
    """

    def allow_request(self, request, view) -> bool:
        limit, window = settings.CSAI_WEBHOOK_RATE
        now = time.time()
        key = f"csai:throttle:webhook:{self.get_ident(request)}:{int(now // window)}"
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1)
        self.retry_after = window - now % window
        try:
            count, _ = pipe.execute()
        except redis.RedisError:
            # Fail open: refusing tickets because the counter is unreachable would lose them.
            logger.warning("webhook throttle unavailable: Redis unreachable")
            return True
        return count <= limit

    def wait(self) -> float:
        return self.retry_after


class CanViewTickets(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(selectors.VIEW_PERMISSION))


def _not_json(constant: str):
    """Python's json accepts NaN and Infinity; JSON (and PostgreSQL) do not."""
    raise ValueError(f"{constant} is not valid JSON")


def _signed_payload(request) -> dict:
    """The JSON object of a correctly signed delivery, or the 4xx that says what is wrong.

    Checks run cheapest first: size (413), media type (415), signature (401), JSON (400).
    """
    max_bytes = settings.CSAI_WEBHOOK_MAX_BYTES
    too_large = ApplicationError("Request body too large.", status_code=413, extra={"max_bytes": max_bytes})
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not (declared.isascii() and declared.isdigit()):  # gunicorn refuses these itself
        raise exceptions.ValidationError({"non_field_errors": ["Invalid Content-Length header."]})
    if int(declared) > max_bytes:
        raise too_large
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type != "application/json":
        raise exceptions.UnsupportedMediaType(media_type or "none")
    body = request.body
    if len(body) > max_bytes:
        raise too_large
    try:
        webhooks.verify(
            secret=settings.CSAI_WEBHOOK_SECRET,
            header=request.headers.get(webhooks.HEADER),
            body=body,
            tolerance=settings.CSAI_WEBHOOK_TOLERANCE_SECONDS,
        )
    except webhooks.SignatureError as error:
        logger.warning("webhook signature refused", extra={"reason": str(error)})
        raise exceptions.AuthenticationFailed(str(error)) from None
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise exceptions.ValidationError({"non_field_errors": [f"Invalid JSON: {error}"]}) from None
    if not isinstance(payload, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return payload


# What every signed delivery documents: its signature header and the answers it may get.
SIGNATURE_HEADER = OpenApiParameter(
    webhooks.HEADER,
    location=OpenApiParameter.HEADER,
    required=True,
    description='t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">',
)
SIGNED_ERRORS = {
    400: OpenApiResponse(description="Invalid JSON or fields: {field: [messages]}"),
    401: OpenApiResponse(description="Bad, missing or stale signature"),
    413: OpenApiResponse(description="Body larger than 256 KiB"),
    415: OpenApiResponse(description="Not application/json"),
    429: OpenApiResponse(description="Throttled"),
}


class TicketWebhookView(APIView):
    """Signed intake: the signature is the authentication, so no user is involved."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [WebhookThrottle]
    # The body is read raw (the signature covers its bytes) and must be JSON: this is what
    # the schema offers; any other media type is answered 415.
    parser_classes = [JSONParser]

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = super().dispatch(request, *args, **kwargs)
        metrics.record_webhook(status=response.status_code, seconds=time.perf_counter() - started)
        return response

    @extend_schema(
        operation_id="webhook_ticket_create",
        request=WebhookTicketSerializer,
        parameters=[SIGNATURE_HEADER],
        responses={
            201: WebhookAcceptedSerializer,
            200: OpenApiResponse(WebhookAcceptedSerializer, description="Repeated delivery"),
            **SIGNED_ERRORS,
        },
    )
    def post(self, request):
        serializer = WebhookTicketSerializer(data=_signed_payload(request))
        serializer.is_valid(raise_exception=True)
        ticket, created = services.ticket_create(
            data=serializer.to_ticket_data(),
            correlation_id=get_correlation_id(),
        )
        return Response(
            WebhookAcceptedSerializer({"ticket_id": ticket.pk, "status": ticket.status}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def get_authenticate_header(self, request) -> str:
        # A 401 must name the scheme; ours is the signature header.
        return webhooks.HEADER


class MessageWebhookView(TicketWebhookView):
    """A customer's follow-up on a ticket, signed like the ticket webhook."""

    @extend_schema(
        operation_id="webhook_message_create",
        request=WebhookMessageSerializer,
        parameters=[SIGNATURE_HEADER],
        responses={
            201: MessageAcceptedSerializer,
            200: OpenApiResponse(MessageAcceptedSerializer, description="Repeated delivery: nothing stored"),
            404: OpenApiResponse(description="No such ticket: nothing stored"),
            **SIGNED_ERRORS,
        },
    )
    def post(self, request):
        serializer = WebhookMessageSerializer(data=_signed_payload(request))
        serializer.is_valid(raise_exception=True)
        received = conversation.message_receive(data=serializer.to_follow_up())
        accepted = {
            "message_id": received.message.pk,
            "ticket_id": received.ticket.pk,
            "outcome": received.outcome,
        }
        return Response(
            MessageAcceptedSerializer(accepted).data,
            status=status.HTTP_201_CREATED if received.created else status.HTTP_200_OK,
        )


class TicketPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class TicketListView(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated, CanViewTickets]
    serializer_class = TicketSerializer
    pagination_class = TicketPagination

    @extend_schema(parameters=[TicketFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = TicketFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.ticket_list(filters=filters.validated_data)


class TicketDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanViewTickets]

    @extend_schema(responses=TicketSerializer)
    def get(self, request, ticket_id: int):
        ticket = selectors.get_ticket_for_user(request.user, ticket_id)
        return Response(TicketSerializer(ticket).data)
