"""Webhook endpoints over REST (supervisors and admins): manage them, read their deliveries,
replay what failed."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from events import selectors, services
from events.models import Endpoint
from events.roles import MANAGE_PERMISSION
from events.serializers import (
    DeliveryFilterSerializer,
    DeliverySerializer,
    EndpointCreatedSerializer,
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    ReplayedSerializer,
    ReplaySinceSerializer,
)


class CanManageEndpoints(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(MANAGE_PERMISSION))


class EndpointListView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanManageEndpoints]

    @extend_schema(operation_id="webhook_endpoint_list", responses=EndpointSerializer(many=True))
    def get(self, request):
        return Response(EndpointSerializer(Endpoint.objects.order_by("id"), many=True).data)

    @extend_schema(
        operation_id="webhook_endpoint_create",
        request=EndpointCreateSerializer,
        responses={201: EndpointCreatedSerializer},
    )
    def post(self, request):
        data = EndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(**data.validated_data)
        return Response(EndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanManageEndpoints]

    @extend_schema(operation_id="webhook_endpoint_retrieve", responses=EndpointSerializer)
    def get(self, request, endpoint_id: int):
        endpoint = selectors.get_endpoint_for_user(request.user, endpoint_id)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoint_update", request=EndpointUpdateSerializer, responses=EndpointSerializer
    )
    def patch(self, request, endpoint_id: int):
        endpoint = selectors.get_endpoint_for_user(request.user, endpoint_id)
        data = EndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhook_endpoint_delete", responses={204: None})
    def delete(self, request, endpoint_id: int):
        endpoint = selectors.get_endpoint_for_user(request.user, endpoint_id)
        services.endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class EndpointDeliveryListView(APIView):
    """An endpoint's deliveries, newest first, each with every attempt it took."""

    permission_classes = [permissions.IsAuthenticated, CanManageEndpoints]
    pagination_class = DeliveryPagination

    @extend_schema(
        operation_id="webhook_endpoint_deliveries",
        parameters=[DeliveryFilterSerializer],
        responses=DeliverySerializer(many=True),
    )
    def get(self, request, endpoint_id: int):
        filters = DeliveryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        endpoint = selectors.get_endpoint_for_user(request.user, endpoint_id)
        deliveries = selectors.endpoint_deliveries(
            endpoint=endpoint, status=filters.validated_data.get("status")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class EndpointReplayView(APIView):
    """Send again every failed delivery of the endpoint made since a time."""

    permission_classes = [permissions.IsAuthenticated, CanManageEndpoints]

    @extend_schema(
        operation_id="webhook_endpoint_replay",
        request=ReplaySinceSerializer,
        responses={
            200: ReplayedSerializer,
            409: OpenApiResponse(description="The endpoint is disabled: turn it on first"),
        },
    )
    def post(self, request, endpoint_id: int):
        data = ReplaySinceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = selectors.get_endpoint_for_user(request.user, endpoint_id)
        replayed = services.deliveries_replay_failed(since=data.validated_data["since"], endpoint=endpoint)
        return Response(ReplayedSerializer({"replayed": replayed}).data)


class EventReplayView(APIView):
    """Send one event (by its webhook-id, ``evt_…``) again to every active endpoint that
    subscribes to it and has not answered it with a 2xx."""

    permission_classes = [permissions.IsAuthenticated, CanManageEndpoints]

    @extend_schema(operation_id="event_replay", request=None, responses=ReplayedSerializer)
    def post(self, request, webhook_id: str):
        event = selectors.get_event_for_user(request.user, webhook_id)
        return Response(ReplayedSerializer({"replayed": services.event_replay(event=event)}).data)
