"""The satisfaction survey: on each resolution a mail with a signed, single-use, expiring link
to a public page; the answer stored once, shown on the ticket and announced (ticket.csat)."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from events.models import Event
from outcomes.links import SURVEY
from outcomes.models import Survey
from tests.conftest import token_client
from tests.factories import CustomerFactory, TicketFactory
from tests.outcomes.conftest import deliver, link_in, reply, strategy
from tickets import delivery
from tickets.links import CONFIRM
from tickets.models import Message, Ticket
from tickets.services import ticket_reopen, ticket_resolve, tickets_resolve_assumed


def resolve(ticket: Ticket, actor=None, by_ai=False) -> Survey:
    with transaction.atomic():
        ticket_resolve(ticket=ticket, actor=actor, by_ai=by_ai)
    return ticket.surveys.latest("id")


@pytest.fixture
def survey(ticket, reviewer) -> Survey:
    return resolve(ticket, actor=reviewer)


def url(survey: Survey) -> str:
    return f"/csat/{SURVEY.token(survey.pk)}/"


def test_an_ai_resolution_mails_the_survey_and_its_link_answers_it_once(ticket, mailed, client, smtp_server):
    strategy(ticket)
    deliver(reply(ticket))
    tickets_resolve_assumed(now=Ticket.objects.get(pk=ticket.pk).assumed_resolution_at)

    survey = ticket.surveys.get()
    notice = ticket.messages.get(kind=Message.Kind.NOTICE)
    assert (survey.resolved_by, notice.delivery, notice.sender_kind) == ("ai", "queued", "system")
    assert deliver(notice).delivery_attempts == 1
    assert delivery.message_deliver(message_id=notice.pk) == "already-sent"  # nothing sent twice

    reply_mail, survey_mail = smtp_server.messages
    assert survey_mail["Subject"] == f"How did we do? {ticket.subject}"
    assert survey_mail["To"] == "dana@acme.example"
    assert survey_mail["In-Reply-To"] == reply_mail["Message-ID"]  # in the conversation's thread
    assert "solved" not in survey_mail.get_body(("plain",)).get_content().split("http")[-1]  # no confirm link
    path = link_in(survey_mail, "csat")

    page = client.get(path)
    assert page.status_code == 200
    assert b"<legend>How satisfied are you with our help?</legend>" in page.content
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]

    thanks = client.post(path, {"score": "4", "comment": "  Quick and clear.  "})

    assert thanks.status_code == 200 and b"Thank you!" in thanks.content
    survey.refresh_from_db()
    assert (survey.score, survey.comment, survey.source) == (4, "Quick and clear.", "survey")
    assert survey.answered_at is not None
    again = client.post(path, {"score": "1"})
    assert again.status_code == 409 and b"You have answered already" in again.content
    assert client.get(path).status_code == 409
    survey.refresh_from_db()
    assert survey.score == 4


def test_the_answer_is_announced_as_ticket_csat(survey, client):
    client.post(url(survey), {"score": "5", "comment": "Great"})

    event = Event.objects.get(type="ticket.csat")
    assert event.subject_id == str(survey.ticket_id)
    assert event.payload == {
        "ticket_id": survey.ticket_id,
        "status": "resolved",
        "survey_id": survey.pk,
        "score": 5,
        "comment": "Great",
        "resolved_by": "person",
        "answered_at": event.payload["answered_at"],
    }


def test_the_survey_notice_is_no_reply(survey):
    """Not the first response, not a ticket.message.created, not in the agents' conversation."""
    notice = survey.ticket.messages.get(kind=Message.Kind.NOTICE)
    deliver(notice)

    assert Ticket.objects.get(pk=survey.ticket_id).first_response_at is None
    assert not Event.objects.filter(type="ticket.message.created", subject_id=str(survey.ticket_id)).exists()


@pytest.mark.parametrize("token", ["forged", "MQ:1tX:abc", "confirm"])
def test_a_forged_or_foreign_token_is_refused_with_a_clear_page(survey, client, token):
    if token == "confirm":
        token = CONFIRM.token(survey.pk)  # ours, for another purpose
    for response in (client.get(f"/csat/{token}/"), client.post(f"/csat/{token}/", {"score": "5"})):
        assert response.status_code == 404 and b"This link does not work" in response.content
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_an_expired_link_is_refused(survey, client):
    Survey.objects.filter(pk=survey.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    for response in (client.get(url(survey)), client.post(url(survey), {"score": "5"})):
        assert response.status_code == 410 and b"This survey has closed" in response.content
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_the_link_expires_after_the_configured_days(ticket, settings):
    settings.CSAI_CSAT_LINK_DAYS = 3
    survey = resolve(ticket, by_ai=True)
    assert survey.expires_at - survey.sent_at == timedelta(days=3)


@pytest.mark.parametrize("score", ["", "0", "6", "five"])
def test_a_missing_or_wrong_score_is_asked_again(survey, client, score):
    response = client.post(url(survey), {"score": score, "comment": "hm"})

    assert response.status_code == 400 and b"Choose a score from 1 to 5" in response.content
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_the_page_keeps_nothing_about_the_visitor(survey, client, settings):
    page = client.get(url(survey))
    answer = client.post(url(survey), {"score": "3"}, HTTP_USER_AGENT="Phone", REMOTE_ADDR="203.0.113.9")

    assert (
        settings.SESSION_COOKIE_NAME not in page.cookies
        and settings.SESSION_COOKIE_NAME not in answer.cookies
    )
    assert not Session.objects.exists()
    fields = {f.name for f in Survey._meta.get_fields()}
    assert fields == {
        "id",
        "ticket",
        "resolved_by",
        "sent_at",
        "expires_at",
        "score",
        "comment",
        "answered_at",
        "source",
    }


def test_each_resolution_gets_its_survey_and_a_customer_without_address_none(ticket, reviewer):
    resolve(ticket, actor=reviewer)
    with transaction.atomic():
        ticket_reopen(ticket=ticket, by_customer=True)
    resolve(ticket, by_ai=True)
    assert list(ticket.surveys.order_by("id").values_list("resolved_by", flat=True)) == ["person", "ai"]

    silent = TicketFactory(customer=CustomerFactory(email=""))
    with transaction.atomic():
        ticket_resolve(ticket=silent, actor=reviewer)
    assert not silent.surveys.exists()


def test_the_score_shows_on_the_ticket_page_and_in_the_api(survey, client, reviewer):
    client.post(url(survey), {"score": "2", "comment": "Took three tries."})
    Ticket.objects.filter(pk=survey.ticket_id).update(reopened_count=1)

    client.force_login(reviewer)
    page = client.get(f"/tickets/{survey.ticket_id}/").content.decode()
    assert "CSAT 2/5" in page and "Took three tries." in page
    assert "Resolved by reviewer" in page and "Reopened 1×" in page

    data = token_client(reviewer).get(f"/api/v1/tickets/{survey.ticket_id}/").json()
    assert (data["csat_score"], data["csat_comment"]) == (2, "Took three tries.")
    assert (data["resolved_by"], data["resolver"], data["reopened_count"]) == ("person", "reviewer", 1)
    notice = next(m for m in data["messages"] if m["kind"] == "notice")
    assert "link" not in notice["metadata"]  # the customer's link is not for API readers


def test_the_ticket_page_says_resolved_by_ai(ticket, client, reviewer):
    resolve(ticket, by_ai=True)
    client.force_login(reviewer)
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "Resolved by AI" in page and "mail to customer, not a reply" in page
