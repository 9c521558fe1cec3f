"""Working one review item: claim, decide, escalate, ask, notes; phase 1 hides the AI."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from autonomy.models import ReviewItem
from review import services
from tests.factories import TicketFactory, UserFactory
from tests.review.conftest import make_item
from tickets import roles
from tickets.models import Message, Ticket


def url(item, action=""):
    return f"/review/items/{item.pk}/{action + '/' if action else ''}"


def test_it_claims_the_item_for_whoever_opens_it(reviewer_client, reviewer):
    item = make_item()
    page = reviewer_client.get(url(item))
    assert page.status_code == 200
    item.refresh_from_db()
    assert item.claimed_by == reviewer and item.claimed_until > timezone.now()
    assert "Accept BILLING_INQUIRY" in page.content.decode()


def test_it_shows_someone_elses_claim_and_refuses_their_decision(client, reviewer):
    item = make_item()
    other = UserFactory(username="other", groups=[roles.REVIEWER])
    services.review_item_claim(item=item, user=other)
    client.force_login(reviewer)

    page = client.get(url(item)).content.decode()
    assert "other is working on this item" in page
    assert 'name="label"' not in page  # no decide form without the claim

    response = client.post(url(item, "decide"), {"label": "BILLING_INQUIRY"})
    assert response.status_code == 409
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING and item.claimed_by == other


def test_it_lets_an_expired_claim_be_taken_over(client, reviewer):
    item = make_item()
    other = UserFactory(username="other", groups=[roles.REVIEWER])
    services.review_item_claim(item=item, user=other)
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    client.force_login(reviewer)
    client.get(url(item))
    item.refresh_from_db()
    assert item.claimed_by == reviewer


def test_it_claims_one_item_per_reviewer_at_a_time(reviewer_client, reviewer):
    first, second = make_item(), make_item()
    reviewer_client.get(url(first))
    reviewer_client.get(url(second))
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.claimed_by is None and second.claimed_by == reviewer


def test_it_accepts_the_suggestion_onto_the_ticket_and_records_the_time(reviewer_client, reviewer):
    item = make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(url(item, "decide"), {"label": "BILLING_INQUIRY"})
    assert response.status_code == 302 and response["Location"] == "/review/"
    item.refresh_from_db()
    assert (item.status, item.outcome, item.decided_by) == ("done", "confirmed", reviewer)
    assert item.seconds_to_decide is not None and item.seconds_to_decide >= 0
    assert Ticket.objects.get(pk=item.ticket_id).category == "BILLING_INQUIRY"


def test_it_overrides_with_another_allowed_value(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    reviewer_client.post(url(item, "decide"), {"label": "TECHNICAL_ISSUE"})
    item.refresh_from_db()
    assert (item.outcome, item.human_label) == ("overridden", "TECHNICAL_ISSUE")
    assert Ticket.objects.get(pk=item.ticket_id).category == "TECHNICAL_ISSUE"


def test_it_refuses_a_value_the_decision_type_does_not_have(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(url(item, "decide"), {"label": "CRITICAL"})
    assert response.status_code == 400
    assert "is not an answer for category" in response.content.decode()
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


def test_it_refuses_a_second_decision(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    reviewer_client.post(url(item, "decide"), {"label": "BILLING_INQUIRY"})
    response = reviewer_client.post(url(item, "decide"), {"label": "BUG_REPORT"})
    assert response.status_code == 409
    assert Ticket.objects.get(pk=item.ticket_id).category == "BILLING_INQUIRY"


def test_it_loads_the_next_item_in_place_after_a_decision(reviewer_client):
    item, following = make_item(), make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(url(item, "decide"), {"label": "BILLING_INQUIRY"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Push-Url"] == url(following)
    assert response["HX-Trigger"] == "review-decided"
    html = response.content.decode()
    assert "<html" not in html and f'data-item="{following.pk}"' in html
    assert "Saved: confirmed" in html


def test_it_sends_htmx_to_the_queue_when_nothing_is_left(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(url(item, "decide"), {"label": "BILLING_INQUIRY"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/review/"


def _without_select(html: str) -> str:
    return re.sub(r"<select id=\"override-value\".*?</select>", "", html, flags=re.S)


def test_it_hides_the_ai_answer_in_phase_1(reviewer_client):
    ticket = TicketFactory(subject="Invoice question", body="Why was I charged twice?")
    item = make_item(
        phase=1, ticket=ticket, reasoning="Secret reasoning about money.", evidence={"kb": "Art-77"}
    )
    assert item.show_suggestion is False
    html = reviewer_client.get(url(item)).content.decode()
    assert "decide on your own" in html
    # The answer is only one option among all, none chosen; nothing else names it.
    assert "BILLING_INQUIRY" in html and "selected>BILLING" not in html
    assert "BILLING_INQUIRY" not in _without_select(html)
    for leak in ("Secret reasoning", "Art-77", "Accept", "confidence"):
        assert leak not in html
    # …not on the ticket page either, while the item waits.
    ticket_page = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "hidden until a person decides" in ticket_page
    assert "BILLING_INQUIRY" not in ticket_page and "Billing Inquiry" not in ticket_page  # code or label


def test_it_records_agreement_in_phase_1(reviewer_client):
    item = make_item(phase=1)
    reviewer_client.get(url(item))
    reviewer_client.post(url(item, "decide"), {"label": "BILLING_INQUIRY"})
    item.refresh_from_db()
    assert item.outcome == "confirmed"
    page = reviewer_client.get(f"/tickets/{item.ticket_id}/").content.decode()
    assert "Proposed <strong>Billing Inquiry</strong>" in page  # decided: no longer hidden


def test_it_shows_the_suggestion_with_confidence_and_reasoning_in_phase_2(reviewer_client):
    item = make_item(phase=2, reasoning="Mentions an invoice twice.", evidence={"entities": "INV-1"})
    html = reviewer_client.get(url(item)).content.decode()
    assert "AI suggests" in html and "Mentions an invoice twice." in html and "INV-1" in html
    assert "Calibrated confidence" in html and "0.70" in html


def test_it_confirms_or_corrects_a_delayed_review_and_the_ticket_follows(reviewer_client):
    applied = make_item(phase=3, confidence=0.95)
    assert applied.kind == ReviewItem.Kind.DELAYED_REVIEW
    assert Ticket.objects.get(pk=applied.ticket_id).category == "BILLING_INQUIRY"
    html = reviewer_client.get(url(applied)).content.decode()
    assert "Applied automatically" in html and "Confirm BILLING_INQUIRY" in html
    reviewer_client.post(url(applied, "decide"), {"label": "ACCOUNT_MANAGEMENT"})
    applied.refresh_from_db()
    assert applied.outcome == "overridden"
    assert Ticket.objects.get(pk=applied.ticket_id).category == "ACCOUNT_MANAGEMENT"


def test_it_sends_an_edited_reply_after_the_guardrails_pass_it(reviewer_client, reviewer):
    item = make_item(decision_type="reply")
    reviewer_client.get(url(item))
    reviewer_client.post(url(item, "decide"), {"label": "edited", "reply": "Hi Ana, the invoice is fixed."})
    sent = Message.objects.get(ticket_id=item.ticket_id, kind=Message.Kind.EXTERNAL, sender_kind="ai_agent")
    assert sent.content == "Hi Ana, the invoice is fixed." and sent.sender_id == str(reviewer.pk)
    item.refresh_from_db()
    assert (item.outcome, item.human_label) == ("overridden", "edited")


def test_it_refuses_an_edited_reply_that_breaks_a_guardrail(reviewer_client):
    item = make_item(decision_type="reply")
    reviewer_client.get(url(item))
    response = reviewer_client.post(
        url(item, "decide"), {"label": "edited", "reply": "Sorry! We will refund you in full today."}
    )
    assert response.status_code == 422
    assert "refund you in full" in response.content.decode()
    assert not Message.objects.filter(ticket_id=item.ticket_id, sender_kind="ai_agent").exists()
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


def test_it_sends_the_draft_as_it_is_on_accept(reviewer_client):
    item = make_item(decision_type="reply")
    reviewer_client.get(url(item))
    reviewer_client.post(url(item, "decide"), {"label": "draft"})
    sent = Message.objects.get(ticket_id=item.ticket_id, sender_kind="ai_agent", kind="external")
    assert sent.content.startswith("Hi Ana")


def test_it_escalates_the_ticket_with_a_note_and_gives_the_item_back(reviewer_client):
    item, following = make_item(), make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(url(item, "escalate"), {"path": "technical", "note": "Looks like a bug."})
    assert response.status_code == 302 and response["Location"] == url(following)
    ticket = Ticket.objects.get(pk=item.ticket_id)
    assert (ticket.status, ticket.team) == ("escalated", "technical")
    note = ticket.messages.get(kind=Message.Kind.INTERNAL)
    assert "senior engineer" in note.content and "Looks like a bug." in note.content
    item.refresh_from_db()
    assert item.status == "pending" and item.claimed_by is None


def test_it_asks_the_customer_for_more_information(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    reviewer_client.post(url(item, "request-info"), {"text": "Which order is it?"})
    ticket = Ticket.objects.get(pk=item.ticket_id)
    assert ticket.status == Ticket.Status.PENDING_CUSTOMER
    assert ticket.messages.get(sender_kind="cs_agent").content == "Which order is it?"


def test_it_adds_an_internal_note_shown_in_the_timeline(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(
        url(item, "notes"), {"text": "Called the customer."}, HTTP_HX_REQUEST="true"
    )
    assert "Called the customer." in response.content.decode()
    assert Message.objects.get(ticket_id=item.ticket_id, kind="internal").content == "Called the customer."


def test_it_gives_the_item_back(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    assert reviewer_client.post(url(item, "release")).status_code == 302
    item.refresh_from_db()
    assert item.claimed_by is None


def test_it_shows_ticket_text_escaped(reviewer_client):
    ticket = TicketFactory(
        subject="<b>hi</b>", body='<script>alert("x")</script><img src=x onerror=alert(1)>'
    )
    item = make_item(ticket=ticket)
    html = reviewer_client.get(url(item)).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_it_returns_the_workspace_partial_to_htmx(reviewer_client):
    item = make_item()
    full = reviewer_client.get(url(item)).content.decode()
    partial = reviewer_client.get(url(item), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and "<html" not in partial and 'id="workspace"' in partial


# --- access --------------------------------------------------------------------------------

ACTIONS = ["decide", "escalate", "request-info", "notes", "release"]
PAGES = ["", "next", "previous"]


@pytest.mark.parametrize("action", [*PAGES, *ACTIONS])
def test_it_sends_anonymous_users_to_log_in(client, db, action):
    item = make_item()
    method = client.get if action in PAGES else client.post
    response = method(url(item, action))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_it_answers_anonymous_htmx_with_401_and_a_redirect(client, db):
    response = client.get(
        url(make_item()), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/review/"
    )
    assert response.status_code == 401 and response["HX-Redirect"].startswith("/accounts/login/")


@pytest.mark.parametrize("action", [*PAGES, *ACTIONS])
def test_it_refuses_users_without_the_reviewer_role(client, outsider, action):
    item = make_item()
    client.force_login(outsider)
    method = client.get if action in PAGES else client.post
    assert method(url(item, action)).status_code == 403


@pytest.mark.parametrize("action", ACTIONS)
def test_it_allows_only_post_for_actions(reviewer_client, action):
    assert reviewer_client.get(url(make_item(), action)).status_code == 405


@pytest.mark.parametrize("page", PAGES)
def test_it_allows_only_get_for_the_item_pages(reviewer_client, page):
    assert reviewer_client.post(url(make_item(), page)).status_code == 405


@pytest.mark.parametrize("action", [*PAGES, *ACTIONS])
def test_it_answers_404_for_an_item_that_does_not_exist(reviewer_client, action):
    method = reviewer_client.get if action in PAGES else reviewer_client.post
    assert method(f"/review/items/999999/{action + '/' if action else ''}").status_code == 404


def test_it_lets_supervisors_work_the_queue_too(supervisor_client):
    assert supervisor_client.get(url(make_item())).status_code == 200


def test_it_steps_to_the_next_and_previous_item_in_queue_order(reviewer_client):
    first, second = make_item(), make_item()
    assert reviewer_client.get(url(first, "next"))["Location"] == url(second)
    assert reviewer_client.get(url(second, "previous"))["Location"] == url(first)
    assert reviewer_client.get(url(second, "next"))["Location"] == "/review/"
    assert reviewer_client.get(url(second, "next"), HTTP_HX_REQUEST="true")["HX-Redirect"] == "/review/"


def test_it_pushes_the_items_own_address_when_htmx_followed_a_step(reviewer_client):
    item = make_item()
    response = reviewer_client.get(url(item), HTTP_HX_REQUEST="true")
    assert response["HX-Push-Url"] == url(item)


def test_it_skips_items_someone_else_holds_when_stepping(client, reviewer):
    first, held, third = make_item(), make_item(), make_item()
    services.review_item_claim(item=held, user=UserFactory(username="other", groups=[roles.REVIEWER]))
    client.force_login(reviewer)
    assert client.get(url(first, "next"))["Location"] == url(third)


def test_it_reads_an_item_page_in_the_same_number_of_queries_however_long_the_timeline(reviewer_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import MessageFactory

    short, long = make_item(), make_item()
    for n in range(12):
        MessageFactory(ticket=long.ticket, kind="internal" if n % 2 else "external")
    make_item(decision_type="priority", ticket=long.ticket)
    make_item(decision_type="reply", ticket=long.ticket)
    reviewer_client.get(url(short))  # warm-up: the session's first request reads a little more

    def queries_for(item) -> int:
        reviewer_client.get(url(item), HTTP_HX_REQUEST="true")  # claims it; the measured visit finds it ours
        with CaptureQueriesContext(connection) as queries:
            assert reviewer_client.get(url(item), HTTP_HX_REQUEST="true").status_code == 200
        return len(queries)

    assert queries_for(short) == queries_for(long)
