"""The ticket page (timeline for any ticket), search, its lifecycle (resolve, close, reopen,
take) and supervisors' reassign."""

import re

import pytest

from tests.factories import CustomerFactory, MessageFactory, TicketFactory
from tests.review.conftest import make_item
from tickets.models import Message, Ticket


def test_it_shows_the_merged_timeline_of_messages_notes_and_decisions(reviewer_client, reviewer):
    ticket = TicketFactory(subject="Charged twice")
    MessageFactory(ticket=ticket, content="I was charged twice.")
    MessageFactory(
        ticket=ticket, kind="internal", sender_kind="cs_agent", sender_id=str(reviewer.pk),
        content="Checking with billing.",
    )  # fmt: skip
    item = make_item(ticket=ticket)
    reviewer_client.get(f"/review/tickets/{ticket.pk}/")
    reviewer_client.post(f"/review/tickets/{ticket.pk}/answer/", {f"answer-{item.pk}": "BUG_REPORT"})

    html = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    assert "I was charged twice." in html and "Checking with billing." in html
    assert "Proposed <strong>Billing Inquiry</strong>" in html
    assert "Suggested in phase 2" in html
    assert "Overridden</span> by reviewer: Bug Report" in html
    assert html.index("I was charged twice.") < html.index("Proposed <strong>")
    assert 'who-cs_agent">reviewer</span>' in html  # a person's note says whose it is


def test_it_shows_the_customer_and_their_recent_tickets(reviewer_client):
    customer = CustomerFactory(
        name="Maria Lindqvist", tier="PREMIUM", is_vip=True, has_support_entitlement=False
    )
    older = TicketFactory(customer=customer, subject="Earlier problem")
    ticket = TicketFactory(customer=customer)
    html = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "Maria Lindqvist" in html and "<dd>Premium</dd>" in html
    assert "VIP" in html and "no entitlement" in html
    assert f'href="/tickets/{older.pk}/"' in html


@pytest.mark.parametrize("query", ["{id}", "#{id}", "Lindqvist", "ACME-9", "frozen screen"])
def test_it_finds_tickets_by_id_customer_and_text(reviewer_client, query):
    ticket = TicketFactory(
        customer=CustomerFactory(name="Maria Lindqvist", external_id="ACME-9"),
        subject="Login trouble", body="The app shows a frozen screen after login.",
    )  # fmt: skip
    TicketFactory(subject="Unrelated", body="Nothing to see.")
    html = reviewer_client.get("/tickets/", {"q": query.format(id=ticket.pk)}).content.decode()
    assert f'href="/tickets/{ticket.pk}/"' in html
    assert re.findall(r'href="/tickets/\d+/"', html) == [f'href="/tickets/{ticket.pk}/"']


def test_it_returns_search_results_as_a_partial_to_htmx(reviewer_client):
    TicketFactory()
    partial = reviewer_client.get("/tickets/", {"q": "x" * 30}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'id="results"' in partial and "No ticket matches." in partial


def test_it_lets_a_supervisor_reopen_and_reassign(supervisor_client, reviewer):
    ticket = TicketFactory(status=Ticket.Status.RESOLVED)
    html = supervisor_client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert ">Reopen</button>" in html and ">Resolve</button>" not in html
    response = supervisor_client.post(f"/tickets/{ticket.pk}/reopen/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Ticket reopened." in response.content.decode()
    supervisor_client.post(f"/tickets/{ticket.pk}/reassign/", {"team": "billing", "assignee": reviewer.pk})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.team, ticket.assignee) == ("open", "billing", reviewer)
    notes = list(ticket.messages.filter(kind=Message.Kind.INTERNAL).values_list("content", flat=True))
    assert notes == ["Reopened by supervisor.", "Reassigned by supervisor to billing, reviewer."]


def test_a_reviewer_resolves_closes_reopens_and_takes_a_ticket(reviewer_client, reviewer):
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    item = make_item(ticket=ticket)
    assert ">Resolve</button>" in reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    reviewer_client.post(f"/tickets/{ticket.pk}/assign-to-me/")
    reviewer_client.post(f"/tickets/{ticket.pk}/resolve/")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("resolved", reviewer) and ticket.resolved_at
    item.refresh_from_db()
    assert item.status == "expired"  # nobody reviews a resolved ticket
    assert reviewer_client.post(f"/tickets/{ticket.pk}/resolve/").status_code == 400

    reviewer_client.post(f"/tickets/{ticket.pk}/close/")
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    reviewer_client.post(f"/tickets/{ticket.pk}/reopen/")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_at) == ("open", None)


def test_it_refuses_to_reopen_an_open_ticket(supervisor_client):
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    html = supervisor_client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert ">Reopen</button>" not in html
    response = supervisor_client.post(f"/tickets/{ticket.pk}/reopen/")
    assert response.status_code == 400 and "Only a resolved or closed ticket" in response.content.decode()


def test_it_refuses_an_assignee_outside_the_team(supervisor_client, outsider):
    ticket = TicketFactory()
    response = supervisor_client.post(
        f"/tickets/{ticket.pk}/reassign/", {"team": "billing", "assignee": outsider.pk}
    )
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_it_forbids_reviewers_to_reassign(reviewer_client):
    ticket = TicketFactory(status=Ticket.Status.RESOLVED)
    assert ">Reassign</button>" not in reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert reviewer_client.post(f"/tickets/{ticket.pk}/reassign/", {"team": "billing"}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.team == ""


def test_it_returns_the_ticket_partial_to_htmx(reviewer_client):
    ticket = TicketFactory()
    full = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()
    partial = reviewer_client.get(f"/tickets/{ticket.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and "<html" not in partial and 'id="ticket-main"' in partial


PAGES = [("get", "/tickets/"), ("get", "/tickets/{id}/"), ("post", "/tickets/{id}/reopen/"),
         ("post", "/tickets/{id}/resolve/"), ("post", "/tickets/{id}/close/"),
         ("post", "/tickets/{id}/assign-to-me/"), ("post", "/tickets/{id}/reassign/")]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_it_sends_anonymous_users_to_log_in(client, db, method, path):
    response = getattr(client, method)(path.format(id=TicketFactory().pk))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_it_refuses_users_without_a_role(client, outsider, method, path):
    client.force_login(outsider)
    assert getattr(client, method)(path.format(id=TicketFactory().pk)).status_code == 403


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_it_answers_wrong_methods_with_405(supervisor_client, method, path):
    other = "post" if method == "get" else "get"
    assert getattr(supervisor_client, other)(path.format(id=TicketFactory().pk)).status_code == 405


@pytest.mark.parametrize(("method", "path"), PAGES[1:])
def test_it_answers_404_for_a_ticket_that_does_not_exist(supervisor_client, method, path):
    assert getattr(supervisor_client, method)(path.format(id=999999)).status_code == 404


def test_it_tells_htmx_a_refusal_in_the_flash_area(reviewer_client):
    ticket = TicketFactory(status=Ticket.Status.RESOLVED)
    response = reviewer_client.post(f"/tickets/{ticket.pk}/reassign/", HTTP_HX_REQUEST="true")
    assert response.status_code == 403 and response["HX-Retarget"] == "#flash"
    assert "<html" not in response.content.decode()


# --- replies on their way out --------------------------------------------------------------


def test_the_timeline_shows_where_each_reply_is_on_its_way_out(reviewer_client):
    ticket = TicketFactory()
    MessageFactory(ticket=ticket, content="Where is my refund?")
    for state, error in [
        ("queued", ""),
        ("retrying", "The mail server could not be reached: [Errno 111] Connection refused"),
        ("failed", "The mail server answered 550 5.1.1 No such user here"),
        ("sent", ""),
    ]:
        MessageFactory(
            ticket=ticket, sender_kind="ai_agent", content=f"Reply {state}.", delivery=state,
            delivery_error=error, delivery_attempts=2,
        )  # fmt: skip

    html = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    assert html.count('class="delivery delivery-') == 4  # the customer's own message has none
    assert 'delivery-queued"' in html and ">queued</span>" in html
    assert ">retrying (attempt 2 failed)</span>" in html and "Connection refused" in html
    assert ">not delivered</span>" in html and "550 5.1.1 No such user here" in html
    assert 'delivery-sent"' in html and ">sent</span>" in html


def test_a_persons_reply_goes_out_by_mail_and_the_ticket_page_links_to_it(
    reviewer_client, tmp_path, mail_to, settings
):
    from csai.mailsink import serve
    from tests.conftest import SMTPServer
    from tickets.delivery import message_deliver

    sink = SMTPServer()  # only for its free port and mail settings
    mail_to(sink)
    settings.CSAI_MAIL_SINK_DIR = str(tmp_path)
    controller = serve(host="127.0.0.1", port=sink.port, folder=tmp_path)
    try:
        ticket = TicketFactory(customer=CustomerFactory(email="dana@acme.example"))
        reviewer_client.post(f"/review/tickets/{ticket.pk}/request-info/", {"text": "Which order number?"})
        reply = ticket.messages.get(sender_kind="cs_agent")
        assert reply.delivery == "queued"
        assert message_deliver(message_id=reply.pk) == "sent"
    finally:
        controller.stop()

    html = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()
    link = f"/tickets/{ticket.pk}/messages/{reply.pk}/mail/"
    assert f'href="{link}"' in html
    mail = reviewer_client.get(link)
    assert mail.status_code == 200 and mail["Content-Type"] == "text/plain; charset=utf-8"
    text = b"".join(mail.streaming_content).decode()
    reply.refresh_from_db()
    assert f"Message-ID: {reply.email_message_id}" in text and "To: dana@acme.example" in text
    assert "Which order number?" in text and "text/html" in text
    # No copy for a message that was not mailed; nothing for another ticket's message.
    note = ticket.messages.exclude(pk=reply.pk).first() or MessageFactory(ticket=ticket)
    assert reviewer_client.get(f"/tickets/{ticket.pk}/messages/{note.pk}/mail/").status_code == 404
    assert reviewer_client.get(f"/tickets/{TicketFactory().pk}/messages/{reply.pk}/mail/").status_code == 404


def test_a_person_replies_from_the_ticket_page_and_owns_the_ticket(reviewer_client, reviewer):
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    assert "Send reply" in reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    response = reviewer_client.post(f"/tickets/{ticket.pk}/reply/", {"text": "Hi, I have fixed the invoice."})

    assert response.status_code == 302
    sent = ticket.messages.get(kind="external")
    assert (sent.content, sent.sender_kind, sent.sender_id) == (
        "Hi, I have fixed the invoice.", "cs_agent", str(reviewer.pk),
    )  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.assignee == reviewer
    assert "owned by reviewer" in reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    reviewer_client.post(f"/tickets/{ticket.pk}/release/")
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_a_reply_that_breaks_a_guardrail_is_refused(reviewer_client):
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    response = reviewer_client.post(f"/tickets/{ticket.pk}/reply/", {"text": "We will refund you in full."})
    assert response.status_code == 422 and not ticket.messages.exists()


def test_the_timeline_shows_the_conversation_turn_by_turn_the_latest_marked(reviewer_client):
    ticket = TicketFactory(subject="Charged twice")
    MessageFactory(ticket=ticket, content="I was charged twice.")
    MessageFactory(ticket=ticket, sender_kind="ai_agent", content="We are looking into it.")
    MessageFactory(ticket=ticket, content="Any news?")

    html = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    assert "Turn 2 · latest" in html and "Turn 1" not in html
    assert html.index("We are looking into it.") < html.index("Turn 2 · latest") < html.index("Any news?")
    assert html.count("in-latest-turn") == 1
