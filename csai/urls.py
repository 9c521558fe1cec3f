from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from autonomy import api as autonomy_api
from csai import health, metrics
from events import api as events_api
from review import api as review_api
from tickets import api as tickets_api

# JSON under /api/ (a client there parses JSON), the site's pages elsewhere (csai.errors).
handler400 = "csai.errors.bad_request"
handler403 = "csai.errors.permission_denied"
handler404 = "csai.errors.not_found"
handler500 = "csai.errors.server_error"

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("health/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # The review console and its login: /accounts/, /review/, /tickets/.
    path("", include("review.urls")),
    # The customers' pages, public behind signed links: /solved/<token>/, /csat/<token>/.
    path("", include("tickets.urls")),
    path("", include("outcomes.urls")),
    path("api/v1/webhooks/tickets", tickets_api.TicketWebhookView.as_view(), name="webhook-tickets"),
    path("api/v1/webhooks/messages", tickets_api.MessageWebhookView.as_view(), name="webhook-messages"),
    # The human side: the review queue, one pass over a ticket, a person's reply, note, lifecycle.
    path("api/v1/review/", review_api.ReviewQueueView.as_view(), name="api-review-queue"),
    path(
        "api/v1/review/tickets/<int:ticket_id>/claim/",
        review_api.ReviewClaimView.as_view(),
        name="api-review-claim",
    ),
    path(
        "api/v1/review/tickets/<int:ticket_id>/answer/",
        review_api.ReviewAnswerView.as_view(),
        name="api-review-answer",
    ),
    path(
        "api/v1/review/tickets/<int:ticket_id>/release/",
        review_api.ReviewReleaseView.as_view(),
        name="api-review-release",
    ),
    path(
        "api/v1/tickets/<int:ticket_id>/reply/", review_api.TicketReplyView.as_view(), name="api-ticket-reply"
    ),
    path(
        "api/v1/tickets/<int:ticket_id>/notes/", review_api.TicketNoteView.as_view(), name="api-ticket-note"
    ),
    path(
        "api/v1/tickets/<int:ticket_id>/resolve/",
        review_api.TicketLifecycleView.as_view(action="resolve"),
        name="api-ticket-resolve",
    ),
    path(
        "api/v1/tickets/<int:ticket_id>/reopen/",
        review_api.TicketLifecycleView.as_view(action="reopen"),
        name="api-ticket-reopen",
    ),
    path(
        "api/v1/tickets/<int:ticket_id>/assign/",
        review_api.TicketAssignView.as_view(),
        name="api-ticket-assign",
    ),
    path("api/v1/tickets/", tickets_api.TicketListView.as_view(), name="api-ticket-list"),
    path(
        "api/v1/tickets/<int:ticket_id>/",
        tickets_api.TicketDetailView.as_view(),
        name="api-ticket-detail",
    ),
    path(
        "api/v1/tickets/<int:ticket_id>/decisions/",
        autonomy_api.TicketDecisionListView.as_view(),
        name="api-ticket-decisions",
    ),
    path("api/v1/policies/", autonomy_api.PolicyListView.as_view(), name="api-policy-list"),
    path(
        "api/v1/policies/<str:decision_type>/promote/",
        autonomy_api.PolicyPromoteView.as_view(),
        name="api-policy-promote",
    ),
    path(
        "api/v1/policies/<str:decision_type>/demote/",
        autonomy_api.PolicyDemoteView.as_view(),
        name="api-policy-demote",
    ),
    path(
        "api/v1/policies/<str:decision_type>/readiness/",
        autonomy_api.PolicyReadinessView.as_view(),
        name="api-policy-readiness",
    ),
    path("api/v1/alerts/", autonomy_api.AlertListView.as_view(), name="api-alert-list"),
    path(
        "api/v1/alerts/<int:alert_id>/acknowledge/",
        autonomy_api.AlertAcknowledgeView.as_view(),
        name="api-alert-acknowledge",
    ),
    path(
        "api/v1/policies/<str:decision_type>/rollback-points/",
        autonomy_api.RollbackPointListView.as_view(),
        name="api-rollback-points",
    ),
    path(
        "api/v1/rollback-points/<int:point_id>/restore/",
        autonomy_api.RollbackRestoreView.as_view(),
        name="api-rollback-restore",
    ),
    # Outbound events: webhook endpoints and their deliveries (supervisors and admins).
    path("api/v1/webhook-endpoints/", events_api.EndpointListView.as_view(), name="api-endpoint-list"),
    path(
        "api/v1/webhook-endpoints/<int:endpoint_id>/",
        events_api.EndpointDetailView.as_view(),
        name="api-endpoint-detail",
    ),
    path(
        "api/v1/webhook-endpoints/<int:endpoint_id>/deliveries/",
        events_api.EndpointDeliveryListView.as_view(),
        name="api-endpoint-deliveries",
    ),
    path(
        "api/v1/webhook-endpoints/<int:endpoint_id>/replay/",
        events_api.EndpointReplayView.as_view(),
        name="api-endpoint-replay",
    ),
    path(
        "api/v1/events/<str:webhook_id>/replay/",
        events_api.EventReplayView.as_view(),
        name="api-event-replay",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
