"""The human side over REST: the queue, one pass over a ticket, a person's reply, note and
lifecycle — the console's services behind a token, the same roles."""

from datetime import timedelta

from django.utils import timezone

from autonomy.models import ReviewItem
from tests.conftest import token_client
from tests.factories import TicketFactory, UserFactory
from tests.review.conftest import make_item
from tickets import roles
from tickets.models import Ticket


def test_the_queue_lists_tickets_with_their_decisions_and_hides_phase_1_answers(reviewer):
    shown = make_item(phase=2)
    hidden = make_item(phase=1)
    api = token_client(reviewer)

    page = api.get("/api/v1/review/").json()

    rows = {row["ticket_id"]: row for row in page["results"]}
    assert set(rows) == {shown.ticket_id, hidden.ticket_id} and page["next_page"] is None
    (item,) = rows[shown.ticket_id]["items"]
    assert (item["id"], item["suggestion"], item["confidence"]) == (shown.pk, "BILLING_INQUIRY", 0.7)
    assert "TECHNICAL_ISSUE" in item["labels"]
    (secret,) = rows[hidden.ticket_id]["items"]
    assert secret["suggestion"] is None and secret["confidence"] is None and secret["reasoning"] is None
    assert api.get("/api/v1/review/", {"decision_type": "priority"}).json()["results"] == []


def test_a_pass_over_rest_claims_answers_and_applies(reviewer):
    category = make_item()
    reply = make_item(decision_type="reply", ticket=category.ticket)
    api = token_client(reviewer)
    url = f"/api/v1/review/tickets/{category.ticket_id}/"

    claimed = api.post(url + "claim/")
    assert claimed.status_code == 200 and {i["id"] for i in claimed.json()} == {category.pk, reply.pk}
    answers = [
        {"item_id": category.pk, "label": "TECHNICAL_ISSUE"},
        {"item_id": reply.pk, "label": "edited", "reply": "Hi Ana, fixed."},
    ]
    response = api.post(url + "answer/", {"answers": answers}, format="json")

    assert response.status_code == 200
    assert response.json()["outcomes"] == {str(category.pk): "overridden", str(reply.pk): "overridden"}
    ticket = Ticket.objects.get(pk=category.ticket_id)
    assert ticket.category == "TECHNICAL_ISSUE" and ticket.assignee == reviewer
    assert ticket.messages.get(kind="external").sender_kind == "cs_agent"
    assert api.post(url + "answer/", {"answers": answers}, format="json").status_code == 409


def test_a_ticket_someone_else_holds_is_409(reviewer):
    item = make_item()
    other = UserFactory(username="other", groups=[roles.REVIEWER])
    token_client(other).post(f"/api/v1/review/tickets/{item.ticket_id}/claim/")
    response = token_client(reviewer).post(f"/api/v1/review/tickets/{item.ticket_id}/claim/")
    assert response.status_code == 409 and "other is working on this ticket" in response.json()["detail"]
    token_client(other).post(f"/api/v1/review/tickets/{item.ticket_id}/release/")
    assert token_client(reviewer).post(f"/api/v1/review/tickets/{item.ticket_id}/claim/").status_code == 200


def test_a_person_replies_notes_resolves_and_reopens(reviewer):
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    make_item(ticket=ticket)
    api = token_client(reviewer)
    base = f"/api/v1/tickets/{ticket.pk}/"

    reply = api.post(base + "reply/", {"text": "Hi, on it."})
    assert reply.status_code == 201 and (reply.json()["sender_kind"], reply.json()["sender_id"]) == (
        "cs_agent", str(reviewer.pk),
    )  # fmt: skip
    assert api.post(base + "reply/", {"text": "We will refund you in full."}).status_code == 422
    assert api.post(base + "notes/", {"text": "Called them."}).status_code == 201
    resolved = api.post(base + "resolve/")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert ReviewItem.objects.get(ticket=ticket).status == ReviewItem.Status.EXPIRED
    assert api.post(base + "resolve/").status_code == 400
    assert api.post(base + "reopen/").json()["status"] == "open"


def test_only_supervisors_assign_and_only_to_the_team(reviewer, supervisor, outsider):
    ticket = TicketFactory()
    url = f"/api/v1/tickets/{ticket.pk}/assign/"
    assert token_client(reviewer).post(url, {"assignee": "reviewer"}, format="json").status_code == 403
    assert (
        token_client(supervisor).post(url, {"assignee": outsider.username}, format="json").status_code == 404
    )
    assigned = token_client(supervisor).post(url, {"assignee": "reviewer"}, format="json")
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "reviewer"
    released = token_client(supervisor).post(url, {"assignee": None}, format="json")
    assert released.json()["assignee"] is None


def test_an_integrator_polls_what_changed_and_looks_a_ticket_up_by_its_ids(reviewer):
    old = TicketFactory(source="zendesk", external_id="ZD-1")
    new = TicketFactory(source="zendesk", external_id="ZD-2")
    Ticket.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    api = token_client(reviewer)
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    changed = api.get("/api/v1/tickets/", {"updated_since": since}).json()["results"]
    found = api.get("/api/v1/tickets/", {"source": "zendesk", "external_id": "ZD-1"}).json()["results"]

    assert [t["id"] for t in changed] == [new.pk]
    assert [t["id"] for t in found] == [old.pk]
    assert api.get("/api/v1/tickets/", {"updated_since": "yesterday"}).status_code == 400
