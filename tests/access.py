"""Who may do what: one table for every URL the product serves.

tests/csai/test_access_matrix.py walks the URL resolver and sends each route's methods as
each of four users; the answer's class must be the one written here, and a route that is
not in the table fails the test. A new view therefore comes with its line in this table.

Users: ANONYMOUS (no login), OUTSIDER (logged in, in no group), REVIEWER, SUPERVISOR
(tickets.roles). Path arguments are objects that do not exist (id 999999, the name
"no-such-thing"), so a user who passes the gate gets MISSING and nothing is changed:
the table is about the gate, not about what the action does. A POST sends the JSON body {}.

Classes of answer:
  OK       2xx, or a redirect that is the page's own answer (not one to a login page)
  LOGIN    sent to log in: a redirect to a login page, or 401
  DENIED   403: logged in, but the role does not include this
  MISSING  404: through the gate, the object does not exist
  INVALID  400: through the gate, the (empty) input is refused
"""

OK, LOGIN, DENIED, MISSING, INVALID = "ok", "login", "denied", "missing", "invalid"
USERS = ("anonymous", "outsider", "reviewer", "supervisor")


def row(anonymous: str, outsider: str, reviewer: str, supervisor: str) -> dict[str, str]:
    return dict(zip(USERS, (anonymous, outsider, reviewer, supervisor), strict=True))


EVERYONE = row(OK, OK, OK, OK)
QUEUE = row(LOGIN, DENIED, OK, OK)  # review.roles.WORK_QUEUE
QUEUE_OBJECT = row(LOGIN, DENIED, MISSING, MISSING)
SUPERVISE = row(LOGIN, DENIED, DENIED, OK)  # autonomy change_phase
SUPERVISE_OBJECT = row(LOGIN, DENIED, DENIED, MISSING)
API = row(LOGIN, DENIED, OK, OK)  # tickets.view_ticket, by token
API_OBJECT = row(LOGIN, DENIED, MISSING, MISSING)
API_SUPERVISE = row(LOGIN, DENIED, DENIED, OK)
API_SUPERVISE_OBJECT = row(LOGIN, DENIED, DENIED, MISSING)
STAFF = row(LOGIN, LOGIN, LOGIN, LOGIN)  # Django admin: staff only, none of the four is

# route name (or, for unnamed routes, the route) -> {method: row}
ACCESS: dict[str, dict[str, dict[str, str]]] = {
    "home": {"GET": EVERYONE},
    "health-live": {"GET": EVERYONE},
    "health-ready": {"GET": EVERYONE},
    "metrics": {"GET": row(DENIED, DENIED, DENIED, DENIED)},  # a bearer token or staff
    "login": {"GET": row(OK, OK, OK, OK), "POST": row(OK, OK, OK, OK)},  # the form again
    "logout": {"POST": row(LOGIN, LOGIN, LOGIN, LOGIN)},  # logged out, back to the login page
    # the review console
    "review-queue": {"GET": QUEUE},
    "review-counts": {"GET": QUEUE},
    "review-next": {"GET": QUEUE},
    "review-ticket": {"GET": QUEUE_OBJECT},
    "review-ticket-next": {"GET": QUEUE_OBJECT},
    "review-ticket-previous": {"GET": QUEUE_OBJECT},
    "review-answer": {"POST": QUEUE_OBJECT},
    "review-escalate": {"POST": QUEUE_OBJECT},
    "review-request-info": {"POST": QUEUE_OBJECT},
    "review-note": {"POST": QUEUE_OBJECT},
    "review-release": {"POST": QUEUE_OBJECT},
    "review-item": {"GET": QUEUE_OBJECT},
    "review-item-rate": {"POST": QUEUE_OBJECT},
    "ticket-search": {"GET": QUEUE},
    "ticket-detail": {"GET": QUEUE_OBJECT},
    "ticket-resolve": {"POST": QUEUE_OBJECT},
    "ticket-close": {"POST": QUEUE_OBJECT},
    "ticket-reopen": {"POST": QUEUE_OBJECT},
    "ticket-assign-to-me": {"POST": QUEUE_OBJECT},
    "ticket-release": {"POST": QUEUE_OBJECT},
    "ticket-reply": {"POST": QUEUE_OBJECT},
    "ticket-reassign": {"POST": row(LOGIN, DENIED, DENIED, MISSING)},  # tickets.change_ticket
    "ticket-message-mail": {"GET": QUEUE_OBJECT},  # the .eml of a reply (make run's SMTP sink)
    # the customers' pages: public, the signed token is the permission (a forged one: 404)
    "resolution-confirm": {
        "GET": row(MISSING, MISSING, MISSING, MISSING),
        "POST": row(MISSING, MISSING, MISSING, MISSING),
    },
    "csat-survey": {
        "GET": row(MISSING, MISSING, MISSING, MISSING),
        "POST": row(MISSING, MISSING, MISSING, MISSING),
    },
    # the supervisor pages
    "supervisor-autonomy": {"GET": SUPERVISE},
    "supervisor-promote": {"POST": SUPERVISE_OBJECT},
    "supervisor-demote": {"POST": SUPERVISE_OBJECT},
    "supervisor-restore": {"POST": SUPERVISE_OBJECT},
    "supervisor-alerts": {"GET": SUPERVISE},
    "supervisor-alert-acknowledge": {"POST": SUPERVISE_OBJECT},
    "supervisor-calibration": {"GET": SUPERVISE},
    "supervisor-dashboard": {"GET": SUPERVISE},
    # the team page (review.manage_team: supervisors)
    "supervisor-team": {"GET": SUPERVISE},
    "supervisor-team-add": {"POST": row(LOGIN, DENIED, DENIED, INVALID)},  # {}: no username
    "supervisor-team-role": {"POST": SUPERVISE_OBJECT},
    "supervisor-team-deactivate": {"POST": SUPERVISE_OBJECT},
    "supervisor-team-reactivate": {"POST": SUPERVISE_OBJECT},
    "supervisor-team-password": {"POST": SUPERVISE_OBJECT},
    "supervisor-team-token": {"POST": SUPERVISE_OBJECT},
    "supervisor-team-token-revoke": {"POST": SUPERVISE_OBJECT},
    # the API (a user's token; the webhook's signature is its only authentication)
    "webhook-tickets": {"POST": row(LOGIN, LOGIN, LOGIN, LOGIN)},
    "webhook-messages": {"POST": row(LOGIN, LOGIN, LOGIN, LOGIN)},
    "api-ticket-list": {"GET": API},
    "api-ticket-detail": {"GET": API_OBJECT},
    "api-ticket-decisions": {"GET": API_OBJECT},
    # the human side over REST (review.roles.WORK_QUEUE; assigning: tickets.change_ticket)
    "api-review-queue": {"GET": API},
    "api-review-claim": {"POST": API_OBJECT},
    "api-review-release": {"POST": API_OBJECT},
    "api-review-answer": {"POST": API_OBJECT},
    "api-ticket-reply": {"POST": API_OBJECT},
    "api-ticket-note": {"POST": API_OBJECT},
    "api-ticket-resolve": {"POST": API_OBJECT},
    "api-ticket-reopen": {"POST": API_OBJECT},
    "api-ticket-assign": {"POST": API_SUPERVISE_OBJECT},
    "api-policy-list": {"GET": API},
    # These check their input ({} here: no reason) before they look the object up.
    "api-policy-promote": {"POST": row(LOGIN, DENIED, DENIED, INVALID)},
    "api-policy-demote": {"POST": row(LOGIN, DENIED, DENIED, INVALID)},
    "api-policy-readiness": {"GET": API_SUPERVISE_OBJECT},
    "api-alert-list": {"GET": API_SUPERVISE},
    "api-alert-acknowledge": {"POST": API_SUPERVISE_OBJECT},
    "api-rollback-points": {"GET": API_SUPERVISE_OBJECT},
    "api-rollback-restore": {"POST": row(LOGIN, DENIED, DENIED, INVALID)},
    # webhook endpoints (events.change_endpoint: supervisors and admins)
    "api-endpoint-list": {"GET": API_SUPERVISE, "POST": row(LOGIN, DENIED, DENIED, INVALID)},  # {}: no url
    "api-endpoint-detail": {
        "GET": API_SUPERVISE_OBJECT,
        "PATCH": API_SUPERVISE_OBJECT,
        "DELETE": API_SUPERVISE_OBJECT,
    },
    "api-endpoint-deliveries": {"GET": API_SUPERVISE_OBJECT},
    "api-endpoint-replay": {"POST": row(LOGIN, DENIED, DENIED, INVALID)},  # {}: no since
    "api-event-replay": {"POST": API_SUPERVISE_OBJECT},
    "api-schema": {"GET": EVERYONE},
    "api-docs": {"GET": EVERYONE},
}

# Django's admin guards every view of its own (admin_view: staff only). Its login page is
# open to all; everything else under /admin/ sends a non-staff user to it.
ADMIN_PREFIX = "admin/"
ADMIN_OPEN = {
    "admin:login": {"GET": EVERYONE},
    "admin:logout": {"GET": EVERYONE},  # a non-staff user is sent to the admin index
}
ADMIN_DEFAULT = {"GET": STAFF}
