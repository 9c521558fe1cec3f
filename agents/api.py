from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors
from agents.serializers import AgentDecisionSerializer
from tickets.api import CanViewTickets
from tickets.selectors import get_ticket_for_user


class TicketDecisionListView(APIView):
    """The agents' decisions on one ticket, oldest first, with confidence and reasoning."""

    permission_classes = [permissions.IsAuthenticated, CanViewTickets]

    @extend_schema(responses=AgentDecisionSerializer(many=True))
    def get(self, request, ticket_id: int):
        ticket = get_ticket_for_user(request.user, ticket_id)
        decisions = selectors.ticket_decisions(ticket=ticket)
        return Response(AgentDecisionSerializer(decisions, many=True).data)
