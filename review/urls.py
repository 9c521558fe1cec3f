from django.contrib.auth import views as auth_views
from django.urls import path

from review import supervisor, team, views
from review.accounts import LoginView

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("review/", views.queue, name="review-queue"),
    path("review/counts/", views.queue_counts, name="review-counts"),
    path("review/next/", views.review_next, name="review-next"),
    path("review/tickets/<int:ticket_id>/", views.review_ticket, name="review-ticket"),
    path(
        "review/tickets/<int:ticket_id>/next/",
        views.review_step,
        {"direction": "next"},
        name="review-ticket-next",
    ),
    path(
        "review/tickets/<int:ticket_id>/previous/",
        views.review_step,
        {"direction": "previous"},
        name="review-ticket-previous",
    ),
    path("review/tickets/<int:ticket_id>/answer/", views.review_answer, name="review-answer"),
    path("review/tickets/<int:ticket_id>/escalate/", views.review_escalate, name="review-escalate"),
    path(
        "review/tickets/<int:ticket_id>/request-info/", views.review_request_info, name="review-request-info"
    ),
    path("review/tickets/<int:ticket_id>/notes/", views.review_note, name="review-note"),
    path("review/tickets/<int:ticket_id>/release/", views.review_release, name="review-release"),
    path("review/items/<int:item_id>/", views.item_detail, name="review-item"),
    path("review/items/<int:item_id>/rate/", views.item_rate, name="review-item-rate"),
    path("tickets/", views.ticket_search, name="ticket-search"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket-detail"),
    *[
        path(
            f"tickets/<int:ticket_id>/{action}/",
            views.ticket_lifecycle,
            {"action": action},
            name=f"ticket-{action}",
        )
        for action in views.LIFECYCLE
    ],
    path("tickets/<int:ticket_id>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/reassign/", views.ticket_reassign, name="ticket-reassign"),
    path(
        "tickets/<int:ticket_id>/messages/<int:message_id>/mail/",
        views.message_mail,
        name="ticket-message-mail",
    ),
]

# The supervisor pages (review.supervisor).
urlpatterns += [
    path("supervisor/autonomy/", supervisor.autonomy_page, name="supervisor-autonomy"),
    path(
        "supervisor/autonomy/<str:decision_type>/promote/",
        supervisor.policy_change,
        {"direction": "promote"},
        name="supervisor-promote",
    ),
    path(
        "supervisor/autonomy/<str:decision_type>/demote/",
        supervisor.policy_change,
        {"direction": "demote"},
        name="supervisor-demote",
    ),
    path(
        "supervisor/rollback-points/<int:point_id>/restore/",
        supervisor.rollback_restore,
        name="supervisor-restore",
    ),
    path("supervisor/alerts/", supervisor.alerts_page, name="supervisor-alerts"),
    path(
        "supervisor/alerts/<int:alert_id>/acknowledge/",
        supervisor.alert_acknowledge,
        name="supervisor-alert-acknowledge",
    ),
    path("supervisor/calibration/", supervisor.calibration_page, name="supervisor-calibration"),
    path("supervisor/dashboard/", supervisor.dashboard_page, name="supervisor-dashboard"),
]

# The team page (review.team).
urlpatterns += [
    path("supervisor/team/", team.team_page, name="supervisor-team"),
    path("supervisor/team/add/", team.person_add, name="supervisor-team-add"),
    path("supervisor/team/<int:user_id>/role/", team.person_role, name="supervisor-team-role"),
    path(
        "supervisor/team/<int:user_id>/deactivate/", team.person_deactivate, name="supervisor-team-deactivate"
    ),
    path(
        "supervisor/team/<int:user_id>/reactivate/", team.person_reactivate, name="supervisor-team-reactivate"
    ),
    path("supervisor/team/<int:user_id>/password/", team.person_password, name="supervisor-team-password"),
    path("supervisor/team/<int:user_id>/token/", team.token_issue, name="supervisor-team-token"),
    path(
        "supervisor/team/<int:user_id>/token/revoke/", team.token_revoke, name="supervisor-team-token-revoke"
    ),
]
