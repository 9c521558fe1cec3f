"""Reviewing a ticket: one claim and one pass for every decision waiting on it; phase 1 hides
the AI until the reviewer answered, then reveals it; escalate, ask, note, give back."""

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


def url(ticket_or_item, action=""):
    ticket_id = getattr(ticket_or_item, "ticket_id", None) or ticket_or_item.pk
    return f"/review/tickets/{ticket_id}/{action + '/' if action else ''}"


def answer(client, *answers, **headers):
    """Post one pass: ``answers`` are (item, label) or (item, label, reply)."""
    data = {}
    for item, label, *reply in answers:
        data[f"answer-{item.pk}"] = label
        if reply:
            data[f"reply-{item.pk}"] = reply[0]
    return client.post(url(answers[0][0], "answer"), data, **headers)


def test_it_claims_the_whole_ticket_for_whoever_opens_it(reviewer_client, reviewer):
    item = make_item()
    other = make_item(decision_type="priority", ticket=item.ticket)
    page = reviewer_client.get(url(item))
    assert page.status_code == 200
    for each in (item, other):
        each.refresh_from_db()
        assert each.claimed_by == reviewer and each.claimed_until > timezone.now()
    html = page.content.decode()
    assert "Answer 2 decisions" in html and '<option value="BILLING_INQUIRY" selected>' in html


def test_the_old_item_address_leads_to_its_tickets_review(reviewer_client):
    item = make_item()
    response = reviewer_client.get(f"/review/items/{item.pk}/")
    assert response.status_code == 302 and response["Location"] == url(item)


def test_it_shows_someone_elses_claim_and_refuses_their_answers(client, reviewer):
    item = make_item()
    other = UserFactory(username="other", groups=[roles.REVIEWER])
    services.ticket_review_claim(ticket=item.ticket, user=other)
    client.force_login(reviewer)

    page = client.get(url(item)).content.decode()
    assert "other is working on this ticket" in page
    assert f'name="answer-{item.pk}"' not in page  # no form without the claim

    response = answer(client, (item, "BILLING_INQUIRY"))
    assert response.status_code == 409
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING and item.claimed_by == other


def test_it_lets_an_expired_claim_be_taken_over(client, reviewer):
    item = make_item()
    services.ticket_review_claim(
        ticket=item.ticket, user=UserFactory(username="other", groups=[roles.REVIEWER])
    )
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    client.force_login(reviewer)
    client.get(url(item))
    item.refresh_from_db()
    assert item.claimed_by == reviewer


def test_it_claims_one_ticket_per_reviewer_at_a_time(reviewer_client, reviewer):
    first, second = make_item(), make_item()
    reviewer_client.get(url(first))
    reviewer_client.get(url(second))
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.claimed_by is None and second.claimed_by == reviewer


def test_one_pass_answers_every_decision_each_with_its_own_outcome_and_time(reviewer_client, reviewer):
    category = make_item()
    ticket = category.ticket
    priority = make_item(decision_type="priority", ticket=ticket)
    escalation = make_item(decision_type="escalation", ticket=ticket)
    reply = make_item(decision_type="reply", ticket=ticket)
    reviewer_client.get(url(ticket))

    response = answer(
        reviewer_client,
        (category, "BILLING_INQUIRY"),
        (priority, "LOW"),
        (escalation, "none"),
        (reply, "draft", "Hi Ana, we are looking at your invoice now."),
    )

    assert response.status_code == 302 and response["Location"] == "/review/"
    outcomes = {
        i.decision_type: (i.status, i.outcome, i.human_label, i.decided_by)
        for i in ReviewItem.objects.filter(ticket=ticket)
    }
    assert outcomes == {
        "category": ("done", "confirmed", "BILLING_INQUIRY", reviewer),
        "priority": ("done", "overridden", "LOW", reviewer),
        "escalation": ("done", "overridden", "none", reviewer),
        "reply": ("done", "confirmed", "draft", reviewer),
    }
    assert all(i.seconds_to_decide >= 0 for i in ReviewItem.objects.filter(ticket=ticket))
    ticket.refresh_from_db()
    assert (ticket.category, ticket.priority, ticket.status) == ("BILLING_INQUIRY", "LOW", "open")
    sent = ticket.messages.get(kind="external", sender_kind="cs_agent")
    assert sent.sender_id == str(reviewer.pk)  # a person sent it: theirs, not the AI's


def test_it_refuses_a_pass_that_leaves_a_decision_unanswered_and_applies_nothing(reviewer_client):
    category = make_item()
    make_item(decision_type="priority", ticket=category.ticket)
    reviewer_client.get(url(category))
    response = answer(reviewer_client, (category, "BILLING_INQUIRY"))
    assert response.status_code == 400 and "priority still open" in response.content.decode()
    category.refresh_from_db()
    assert category.status == ReviewItem.Status.PENDING
    assert Ticket.objects.get(pk=category.ticket_id).category == ""


def test_one_refused_answer_applies_none_of_the_pass(reviewer_client):
    category = make_item()
    priority = make_item(decision_type="priority", ticket=category.ticket)
    reviewer_client.get(url(category))
    response = answer(reviewer_client, (category, "TECHNICAL_ISSUE"), (priority, "CRITICAL-ISH"))
    assert response.status_code == 400
    assert "is not an answer for priority" in response.content.decode()
    assert not ReviewItem.objects.filter(status=ReviewItem.Status.DONE).exists()
    assert Ticket.objects.get(pk=category.ticket_id).category == ""


def test_it_refuses_a_second_pass(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    answer(reviewer_client, (item, "BILLING_INQUIRY"))
    response = answer(reviewer_client, (item, "BUG_REPORT"))
    assert response.status_code == 409
    assert Ticket.objects.get(pk=item.ticket_id).category == "BILLING_INQUIRY"


def test_it_loads_the_next_ticket_in_place_after_a_pass(reviewer_client):
    item, following = make_item(), make_item()
    reviewer_client.get(url(item))
    response = answer(reviewer_client, (item, "BILLING_INQUIRY"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Push-Url"] == url(following)
    assert response["HX-Trigger"] == "review-decided"
    html = response.content.decode()
    assert "<html" not in html and f'data-ticket="{following.ticket_id}"' in html
    assert "Saved 1 answers" in html and f"<title>#{following.ticket_id} " in html


def test_it_sends_htmx_to_the_queue_when_nothing_is_left(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    response = answer(reviewer_client, (item, "BILLING_INQUIRY"), HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/review/"


def test_it_shows_the_suggestion_with_confidence_and_reasoning_in_phase_2(reviewer_client):
    item = make_item(phase=2, reasoning="Mentions an invoice twice.", evidence={"entities": "INV-1"})
    html = reviewer_client.get(url(item)).content.decode()
    assert "AI suggests" in html and "Mentions an invoice twice." in html and "INV-1" in html
    assert "0.70" in html


def test_it_confirms_or_corrects_a_delayed_review_and_the_ticket_follows(reviewer_client):
    applied = make_item(phase=3, confidence=0.95)
    assert applied.kind == ReviewItem.Kind.DELAYED_REVIEW
    assert Ticket.objects.get(pk=applied.ticket_id).category == "BILLING_INQUIRY"
    html = reviewer_client.get(url(applied)).content.decode()
    assert "applied: check it" in html and "Confirm or correct" in html
    answer(reviewer_client, (applied, "ACCOUNT_MANAGEMENT"))
    applied.refresh_from_db()
    assert applied.outcome == "overridden"
    assert Ticket.objects.get(pk=applied.ticket_id).category == "ACCOUNT_MANAGEMENT"


def test_it_sends_an_edited_reply_as_the_persons_after_the_guardrails_pass_it(reviewer_client, reviewer):
    item = make_item(decision_type="reply")
    reviewer_client.get(url(item))
    answer(reviewer_client, (item, "draft", "Hi Ana, the invoice is fixed."))  # "send", with a changed text
    sent = Message.objects.get(ticket_id=item.ticket_id, kind=Message.Kind.EXTERNAL)
    assert (sent.content, sent.sender_kind, sent.sender_id) == (
        "Hi Ana, the invoice is fixed.", "cs_agent", str(reviewer.pk),
    )  # fmt: skip
    item.refresh_from_db()
    assert (item.outcome, item.human_label) == ("overridden", "edited")
    timeline = reviewer_client.get(f"/tickets/{item.ticket_id}/").content.decode()
    assert re.search(r'who-cs_agent">reviewer</span>', timeline)


def test_it_refuses_an_edited_reply_that_breaks_a_guardrail(reviewer_client):
    item = make_item(decision_type="reply")
    reviewer_client.get(url(item))
    response = answer(reviewer_client, (item, "edited", "Sorry! We will refund you in full today."))
    assert response.status_code == 422
    assert "refund you in full" in response.content.decode()
    assert not Message.objects.filter(ticket_id=item.ticket_id, kind="external").exists()
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


def test_sending_nothing_sends_nothing(reviewer_client):
    item = make_item(decision_type="reply")
    reviewer_client.get(url(item))
    answer(reviewer_client, (item, "not_sent", "Hi Ana, we are looking at your invoice now."))
    assert not Message.objects.filter(ticket_id=item.ticket_id, kind="external").exists()
    item.refresh_from_db()
    assert (item.outcome, item.human_label) == ("overridden", "not_sent")


# --- phase 1: nothing of a hidden answer reaches the reviewer before they answered -----------

SECRET_REASONING = "Secret reasoning about money."


@pytest.fixture
def phase_1_ticket(db):
    ticket = TicketFactory(subject="Invoice question", body="Why was I charged twice?")
    items = [
        make_item(phase=1, ticket=ticket, reasoning=SECRET_REASONING, evidence={"kb": "Art-77"}),
        make_item(decision_type="priority", phase=1, ticket=ticket, reasoning=SECRET_REASONING),
        make_item(decision_type="reply", phase=1, ticket=ticket, reasoning=SECRET_REASONING),
    ]
    return ticket, items


def _without_selects(html: str) -> str:
    return re.sub(r"<select .*?</select>", "", html, flags=re.S)


def test_phase_1_pages_partials_and_api_never_show_a_hidden_answer(reviewer_client, reviewer, phase_1_ticket):
    from tests.conftest import token_client

    ticket, items = phase_1_ticket
    assert not any(item.show_suggestion for item in items)
    pages = [
        reviewer_client.get(url(ticket)).content.decode(),
        reviewer_client.get(url(ticket), HTTP_HX_REQUEST="true").content.decode(),
        reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode(),
        reviewer_client.get(f"/tickets/{ticket.pk}/", HTTP_HX_REQUEST="true").content.decode(),
        reviewer_client.get("/review/").content.decode(),
        token_client(reviewer).get(f"/api/v1/tickets/{ticket.pk}/decisions/").content.decode(),
        token_client(reviewer).get(f"/api/v1/tickets/{ticket.pk}/").content.decode(),
    ]
    for html in pages:
        # The answers are options among all, none chosen; nothing else names them.
        for leak in (
            "BILLING_INQUIRY",
            "Billing Inquiry",
            "Hi Ana, we are looking",
            SECRET_REASONING,
            "Art-77",
            "selected>",
        ):
            assert leak not in _without_selects(html), leak
    assert "answer on your own" in pages[0]
    decisions = token_client(reviewer).get(f"/api/v1/tickets/{ticket.pk}/decisions/").json()
    assert all(d["hidden"] and d["label"] is None and d["value"] is None for d in decisions)
    assert (
        "/admin/" not in pages[0] and reviewer_client.get("/admin/agents/agentdecision/").status_code == 302
    )


def test_phase_1_reveals_after_the_pass_and_the_rated_draft_is_the_replys_agreement(
    reviewer_client, reviewer, phase_1_ticket
):
    ticket, (category, priority, reply) = phase_1_ticket
    reviewer_client.get(url(ticket))

    response = answer(
        reviewer_client,
        (category, "BILLING_INQUIRY"),
        (priority, "LOW"),
        (reply, "edited", "Hi Ana, I am checking the double charge now."),
    )

    assert response.status_code == 302 and response["Location"] == url(ticket)  # stays: the reveal
    html = reviewer_client.get(url(ticket)).content.decode()
    assert "What the AI had answered" in html
    assert "the AI said <strong>Billing Inquiry</strong>, you said <strong>Billing Inquiry</strong>" in html
    assert "Hi Ana, we are looking at your invoice now." in html  # the hidden draft, to be rated
    reply.refresh_from_db()
    assert reply.outcome == "overridden"  # until rated

    reviewer_client.post(f"/review/items/{reply.pk}/rate/", {"rating": "fine"})

    reply.refresh_from_db()
    assert (reply.draft_rating, reply.outcome) == ("fine", "confirmed")  # the shadow agreement moves
    again = reviewer_client.post(f"/review/items/{reply.pk}/rate/", {"rating": "wrong"})
    assert again.status_code == 409
    sent = ticket.messages.get(kind="external")
    assert sent.content == "Hi Ana, I am checking the double charge now." and sent.sender_kind == "cs_agent"


def test_only_the_person_who_answered_rates_the_draft(client, reviewer, phase_1_ticket):
    ticket, (category, priority, reply) = phase_1_ticket
    client.force_login(reviewer)
    client.get(url(ticket))
    answer(client, (category, "BILLING_INQUIRY"), (priority, "LOW"), (reply, "not_sent"))
    client.force_login(UserFactory(username="other", groups=[roles.REVIEWER]))
    assert client.post(f"/review/items/{reply.pk}/rate/", {"rating": "fine"}).status_code == 409


# --- the ticket ------------------------------------------------------------------------------


def test_escalating_closes_the_pending_items_and_moves_on(reviewer_client):
    item, following = make_item(), make_item()
    priority = make_item(decision_type="priority", ticket=item.ticket)
    reviewer_client.get(url(item))
    response = reviewer_client.post(url(item, "escalate"), {"path": "technical", "note": "Looks like a bug."})
    assert response.status_code == 302 and response["Location"] == url(following)
    ticket = Ticket.objects.get(pk=item.ticket_id)
    assert (ticket.status, ticket.team) == ("escalated", "technical")
    note = ticket.messages.get(kind=Message.Kind.INTERNAL)
    assert "senior engineer" in note.content and "Looks like a bug." in note.content
    for each in (item, priority):
        each.refresh_from_db()
        assert each.status == ReviewItem.Status.EXPIRED and each.claimed_by is None


def test_resolving_from_the_review_closes_its_items_and_stops_the_sla(reviewer_client):
    item = make_item()
    reviewer_client.get(url(item))
    response = reviewer_client.post(f"/tickets/{item.ticket_id}/resolve/", {"next": "/review/next/"})
    assert response.status_code == 302 and response["Location"] == "/review/next/"
    ticket = Ticket.objects.get(pk=item.ticket_id)
    assert ticket.status == "resolved" and ticket.resolved_at is not None
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.EXPIRED


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


def test_it_gives_the_ticket_back(reviewer_client):
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


def test_it_returns_the_workspace_partial_to_htmx_with_its_address(reviewer_client):
    item = make_item()
    full = reviewer_client.get(url(item)).content.decode()
    partial = reviewer_client.get(url(item), HTTP_HX_REQUEST="true")
    assert "<html" in full and "<html" not in partial.content.decode()
    assert 'id="workspace"' in partial.content.decode() and partial["HX-Push-Url"] == url(item)


# --- access --------------------------------------------------------------------------------

ACTIONS = ["answer", "escalate", "request-info", "notes", "release"]
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
def test_it_allows_only_get_for_the_review_pages(reviewer_client, page):
    assert reviewer_client.post(url(make_item(), page)).status_code == 405


@pytest.mark.parametrize("action", [*PAGES, *ACTIONS])
def test_it_answers_404_for_a_ticket_that_does_not_exist(reviewer_client, action):
    method = reviewer_client.get if action in PAGES else reviewer_client.post
    assert method(f"/review/tickets/999999/{action + '/' if action else ''}").status_code == 404


def test_it_lets_supervisors_work_the_queue_too(supervisor_client):
    assert supervisor_client.get(url(make_item())).status_code == 200


def test_it_steps_to_the_next_and_previous_ticket_in_queue_order(reviewer_client):
    first, second = make_item(), make_item()
    assert reviewer_client.get(url(first, "next"))["Location"] == url(second)
    assert reviewer_client.get(url(second, "previous"))["Location"] == url(first)
    assert reviewer_client.get(url(second, "next"))["Location"] == "/review/"
    assert reviewer_client.get(url(second, "next"), HTTP_HX_REQUEST="true")["HX-Redirect"] == "/review/"
    assert reviewer_client.get("/review/next/")["Location"] == url(first)


def test_it_skips_tickets_someone_else_holds_when_stepping(client, reviewer):
    first, held, third = make_item(), make_item(), make_item()
    services.ticket_review_claim(
        ticket=held.ticket, user=UserFactory(username="other", groups=[roles.REVIEWER])
    )
    client.force_login(reviewer)
    assert client.get(url(first, "next"))["Location"] == url(third)


def test_it_reads_a_review_page_in_the_same_number_of_queries_however_long_the_timeline(reviewer_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import MessageFactory

    short, long = make_item(), make_item()
    make_item(decision_type="priority", ticket=short.ticket)
    for n in range(12):
        MessageFactory(ticket=long.ticket, kind="internal" if n % 2 else "external")
    make_item(decision_type="priority", ticket=long.ticket)
    reviewer_client.get(url(short))  # warm-up: the session's first request reads a little more

    def queries_for(item) -> int:
        reviewer_client.get(url(item), HTTP_HX_REQUEST="true")  # claims it; the measured visit finds it ours
        with CaptureQueriesContext(connection) as queries:
            assert reviewer_client.get(url(item), HTTP_HX_REQUEST="true").status_code == 200
        return len(queries)

    assert queries_for(short) == queries_for(long)
