"""Automation policies over REST: read for every role; readiness, promote / demote / restore
and alerts for supervisors."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from autonomy import selectors
from autonomy.models import Alert, AutomationPolicy, RollbackPoint
from autonomy.serializers import (
    AcknowledgeSerializer,
    AgentDecisionSerializer,
    AlertSerializer,
    DemoteSerializer,
    PolicySerializer,
    ReadinessSerializer,
    ReasonSerializer,
    RollbackPointSerializer,
    TransitionSerializer,
)
from autonomy.services import monitor, transitions
from tickets.api import CanViewTickets
from tickets.selectors import get_ticket_for_user


class CanChangePhases(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(transitions.PHASE_PERMISSION))


def _policy(decision_type: str) -> AutomationPolicy:
    return get_object_or_404(AutomationPolicy, decision_type=decision_type)


class PolicyListView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanViewTickets]

    @extend_schema(responses=PolicySerializer(many=True))
    def get(self, request):
        return Response(PolicySerializer(AutomationPolicy.objects.all(), many=True).data)


class PolicyPromoteView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanChangePhases]

    @extend_schema(request=ReasonSerializer, responses={201: TransitionSerializer})
    def post(self, request, decision_type: str):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transition = transitions.policy_promote(
            policy=_policy(decision_type), actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(TransitionSerializer(transition).data, status=status.HTTP_201_CREATED)


class PolicyDemoteView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanChangePhases]

    @extend_schema(request=DemoteSerializer, responses={201: TransitionSerializer})
    def post(self, request, decision_type: str):
        data = DemoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transition = transitions.policy_demote(
            policy=_policy(decision_type),
            actor=request.user,
            reason=data.validated_data["reason"],
            to_phase=data.validated_data.get("to_phase"),
        )
        return Response(TransitionSerializer(transition).data, status=status.HTTP_201_CREATED)


class RollbackPointListView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanChangePhases]

    @extend_schema(responses=RollbackPointSerializer(many=True))
    def get(self, request, decision_type: str):
        points = _policy(decision_type).rollback_points.all()[:100]
        return Response(RollbackPointSerializer(points, many=True).data)


class RollbackRestoreView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanChangePhases]

    @extend_schema(request=ReasonSerializer, responses={201: TransitionSerializer})
    def post(self, request, point_id: int):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        point = get_object_or_404(RollbackPoint.objects.select_related("policy"), pk=point_id)
        transition = transitions.rollback_restore(
            point=point, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(TransitionSerializer(transition).data, status=status.HTTP_201_CREATED)


class PolicyReadinessView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanChangePhases]

    @extend_schema(responses=ReadinessSerializer)
    def get(self, request, decision_type: str):
        readiness = selectors.policy_readiness(policy=_policy(decision_type))
        return Response(ReadinessSerializer(readiness.to_dict()).data)


class CanSeeAlerts(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("autonomy.view_alert"))


class AlertListView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanSeeAlerts]

    @extend_schema(responses=AlertSerializer(many=True))
    def get(self, request):
        alerts = Alert.objects.select_related("acknowledged_by").order_by("acknowledged_at", "-created_at")
        return Response(AlertSerializer(alerts[:200], many=True).data)


class AlertAcknowledgeView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanSeeAlerts]

    @extend_schema(request=AcknowledgeSerializer, responses=AlertSerializer)
    def post(self, request, alert_id: int):
        data = AcknowledgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = get_object_or_404(Alert, pk=alert_id)
        if not monitor.alert_acknowledge(alert=alert, actor=request.user, note=data.validated_data["note"]):
            return Response(
                {"detail": "This alert was already acknowledged."}, status=status.HTTP_409_CONFLICT
            )
        alert.refresh_from_db()
        return Response(AlertSerializer(alert).data)


class TicketDecisionListView(APIView):
    """The agents' decisions on one ticket, oldest first, with confidence, reasoning and
    disposition; a phase-1 decision nobody answered yet is listed with its answer hidden."""

    permission_classes = [permissions.IsAuthenticated, CanViewTickets]

    @extend_schema(responses=AgentDecisionSerializer(many=True))
    def get(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        decisions = selectors.ticket_decisions(ticket=ticket)
        return Response(AgentDecisionSerializer(decisions, many=True).data)
