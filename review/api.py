"""The human side over REST, for teams working from their own tools: the review queue, one
pass over a ticket, and what a person does with a ticket. Same roles and the same services
as the console (review.services, autonomy.services.controller)."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import decision_types
from autonomy.models import ReviewItem
from autonomy.services import controller
from review import selectors, services
from review.roles import CHANGE_TICKET, WORK_QUEUE
from tickets.roles import REVIEWER, SUPERVISOR
from tickets.selectors import get_ticket_for_user
from tickets.serializers import MessageSerializer, TicketSerializer


class CanWorkQueue(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(WORK_QUEUE))


class CanReassign(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(CHANGE_TICKET))


# --- serializers ---------------------------------------------------------------------------


class ReviewItemSerializer(serializers.Serializer):
    """A decision waiting for a person. In phase 1 the AI's answer is withheld (null) until
    the item is answered."""

    id = serializers.IntegerField()
    decision_type = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=ReviewItem.Kind.choices, help_text="decide, or check what was applied"
    )
    labels = serializers.ListField(child=serializers.CharField(), help_text="What a person may answer")
    suggestion = serializers.CharField(allow_null=True, help_text="The AI's label; null in phase 1")
    draft = serializers.CharField(allow_null=True, help_text="For a drafted text: the draft; null in phase 1")
    confidence = serializers.FloatField(allow_null=True)
    reasoning = serializers.CharField(allow_null=True)
    claimed_by = serializers.CharField(allow_null=True)
    claimed_until = serializers.DateTimeField(allow_null=True)

    @staticmethod
    def row(item: ReviewItem) -> dict:
        kind = decision_types.get(item.decision_type)
        decision = item.decision
        shown = item.show_suggestion
        return {
            "id": item.pk,
            "decision_type": item.decision_type,
            "kind": item.kind,
            "labels": kind.labels(),
            "suggestion": decision.label if shown and not kind.drafts_text else None,
            "draft": decision.value.get("reply") if shown and kind.drafts_text else None,
            "confidence": (
                decision.calibrated_confidence
                if decision.calibrated_confidence is not None
                else decision.raw_confidence
            )
            if shown
            else None,
            "reasoning": decision.reasoning if shown else None,
            "claimed_by": item.claimed_by.get_username() if item.claimed_by else None,
            "claimed_until": item.claimed_until,
        }


class QueueTicketSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    subject = serializers.CharField()
    sla_state = serializers.CharField()
    priority = serializers.CharField(allow_blank=True)
    due = serializers.DateTimeField()
    waiting_since = serializers.DateTimeField()
    items = ReviewItemSerializer(many=True)


class QueuePageSerializer(serializers.Serializer):
    results = QueueTicketSerializer(many=True)
    next_page = serializers.IntegerField(allow_null=True)


class QueueFilterSerializer(serializers.Serializer):
    decision_type = serializers.CharField(required=False, default="", max_length=32)
    category = serializers.CharField(required=False, default="", max_length=64)
    priority = serializers.CharField(required=False, default="", max_length=16)
    age = serializers.ChoiceField(choices=[""] + list(selectors.AGES), required=False, default="")
    page = serializers.IntegerField(required=False, default=1, min_value=1, max_value=10_000)


class AnswerSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    label = serializers.CharField(
        max_length=64, help_text="One of the item's labels; for a reply: draft, edited or not_sent"
    )
    reply = serializers.CharField(required=False, allow_blank=True, max_length=20_000, trim_whitespace=False)


class PassSerializer(serializers.Serializer):
    answers = AnswerSerializer(many=True, allow_empty=False, max_length=50)


class PassResultSerializer(serializers.Serializer):
    outcomes = serializers.DictField(
        child=serializers.CharField(), help_text="item id → confirmed / overridden"
    )


class TextSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=20_000)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(allow_null=True, max_length=150, help_text="A username; null: nobody")


def _queue_row(row) -> dict:
    return {
        "ticket_id": row.ticket.pk,
        "subject": row.ticket.subject,
        "sla_state": row.ticket.sla_state,
        "priority": row.ticket.priority,
        "due": row.due,
        "waiting_since": row.waiting_since,
        "items": [ReviewItemSerializer.row(item) for item in row.items],
    }


ERRORS = {
    400: OpenApiResponse(description="Invalid input: {field: [messages]} or {detail}"),
    401: OpenApiResponse(description="No credentials"),
    403: OpenApiResponse(description="The role does not include this"),
    404: OpenApiResponse(description="No such ticket"),
    409: OpenApiResponse(description="Someone else holds the ticket, or it was answered already"),
}


# --- the queue and one pass ----------------------------------------------------------------


class ReviewQueueView(APIView):
    """Tickets waiting for a person, in the console's queue order, each with its decisions."""

    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]

    @extend_schema(parameters=[QueueFilterSerializer], responses={200: QueuePageSerializer, **ERRORS})
    def get(self, request):
        query = QueueFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = query.validated_data.pop("page")
        filters = selectors.QueueFilters(**query.validated_data)
        rows, has_next = selectors.queue_page(
            filters=filters, page=page, user=request.user, now=timezone.now()
        )
        data = {"results": [_queue_row(row) for row in rows], "next_page": page + 1 if has_next else None}
        return Response(QueuePageSerializer(data).data)


def _pending(ticket) -> list[dict]:
    return [ReviewItemSerializer.row(item) for item in selectors.review_pending(ticket=ticket)]


class ReviewClaimView(APIView):
    """Hold every pending decision of the ticket for 10 minutes (a reviewer holds one ticket)."""

    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]

    @extend_schema(request=None, responses={200: ReviewItemSerializer(many=True), **ERRORS})
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        services.ticket_review_claim(ticket=ticket, user=request.user)
        return Response(ReviewItemSerializer(_pending(ticket), many=True).data)


class ReviewReleaseView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]

    @extend_schema(request=None, responses={204: None, **ERRORS})
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        services.ticket_review_release(ticket=ticket, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewAnswerView(APIView):
    """One pass: an answer for every pending decision of the ticket, applied together or not
    at all (accept: the suggestion's label; override: another; a reply: draft, edited with
    ``reply``, or not_sent)."""

    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]

    @extend_schema(
        request=PassSerializer,
        responses={
            200: PassResultSerializer,
            422: OpenApiResponse(description="A text breaks a guardrail"),
            **ERRORS,
        },
    )
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        data = PassSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answers = {
            answer["item_id"]: controller.Answer(label=answer["label"], reply=answer.get("reply"))
            for answer in data.validated_data["answers"]
        }
        outcomes = controller.ticket_review_answer(ticket=ticket, actor=request.user, answers=answers)
        return Response(PassResultSerializer({"outcomes": {str(k): v for k, v in outcomes.items()}}).data)


# --- what a person does with a ticket --------------------------------------------------------


class TicketReplyView(APIView):
    """A person's reply to the customer (guardrails checked); they own the ticket from then on."""

    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]

    @extend_schema(
        request=TextSerializer,
        responses={201: MessageSerializer, 422: OpenApiResponse(description="A guardrail"), **ERRORS},
    )
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        data = TextSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.ticket_reply_by(ticket=ticket, user=request.user, text=data.validated_data["text"])
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class TicketNoteView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]

    @extend_schema(request=TextSerializer, responses={201: MessageSerializer, **ERRORS})
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        data = TextSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.note_add(ticket=ticket, user=request.user, text=data.validated_data["text"])
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class TicketLifecycleView(APIView):
    """Resolve or reopen a ticket; the answer is the ticket as it is now."""

    permission_classes = [permissions.IsAuthenticated, CanWorkQueue]
    action = ""
    CHANGES = {"resolve": services.ticket_resolve_by, "reopen": services.ticket_reopen_by}

    @extend_schema(request=None, responses={200: TicketSerializer, **ERRORS})
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        self.CHANGES[self.action](ticket=ticket, user=request.user)
        return Response(TicketSerializer(get_ticket_for_user(request.user, ticket_id)).data)


class TicketAssignView(APIView):
    """Assign the ticket to a person (supervisors), or to nobody."""

    permission_classes = [permissions.IsAuthenticated, CanReassign]

    @extend_schema(request=AssignSerializer, responses={200: TicketSerializer, **ERRORS})
    def post(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        data = AssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["assignee"]
        assignee = None
        if username is not None:
            team = get_user_model().objects.filter(is_active=True, groups__name__in=[REVIEWER, SUPERVISOR])
            assignee = get_object_or_404(team.distinct(), username=username)
        services.ticket_reassign_by(ticket=ticket, user=request.user, team=ticket.team, assignee=assignee)
        return Response(TicketSerializer(get_ticket_for_user(request.user, ticket_id)).data)
