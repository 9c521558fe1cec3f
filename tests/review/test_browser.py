"""The console in a real browser: Playwright driving Debian's Chromium against a live server.

``make test`` installs Chromium when it can (root with apt-get); without it these tests are
skipped with the reason, except on CI, where a missing browser is a failure.
"""

import os
import random
import re
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from autonomy.models import ReviewItem
from tests.factories import CustomerFactory, MessageFactory, TicketFactory, UserFactory
from tests.review.conftest import make_item
from tickets import roles
from tickets.models import Ticket

CHROMIUM = Path(os.environ.get("CSAI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "artifacts" / "screenshots"

if not CHROMIUM.exists() and os.environ.get("CI"):
    pytest.fail(f"{CHROMIUM} is missing on CI: `make test` should have installed it", pytrace=False)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: `make test` as root installs it"),
]


@pytest.fixture
def browser(monkeypatch, settings):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are still
    # plain synchronous code, so Django's guard against ORM calls from async code must step aside.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server speaks plain http.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # The ORM calls made while Playwright's loop ran opened connections of their own:
        # close them here, in that context, or the test database cannot be dropped.
        connections.close_all()


@pytest.fixture
def open_page(browser, live_server):
    """A new browser context (its own cookies) with a logged-in user, at ``live_server``."""
    pages = []

    def open_as(username: str):
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/review/$"))
        pages.append(context)
        return page

    yield open_as
    for context in pages:
        context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _users():
    UserFactory(username="rita", first_name="Rita", groups=[roles.REVIEWER])
    UserFactory(username="omar", groups=[roles.REVIEWER])


def _queue_of_work():
    """A realistic queue: mixed SLA states, priorities, customers and decision types."""
    now = timezone.now()
    acme = CustomerFactory(name="Dana Whitfield", company="Acme Corp", tier="PREMIUM", is_vip=True)
    rows = [
        ("Card payment declined at checkout with ERR_PAYMENT_402", "breached", "CRITICAL", acme, "category"),
        ("Invoice INV-2024-76687 shows twice the plan price", "at_risk", "HIGH", None, "category"),
        ("Export to CSV times out for large projects", "at_risk", "MEDIUM", None, "priority"),
        ("How do I add a second admin to our workspace?", "on_time", "LOW", None, "category"),
        ("App crashes when uploading a 2 GB file", "on_time", "HIGH", None, "escalation"),
        ("Please confirm my plan renewal date", "on_time", "LOW", None, "reply"),
    ]
    items = []
    for hours, (subject, sla, priority, customer, decision_type) in enumerate(rows, start=1):
        ticket = TicketFactory(
            subject=subject, sla_state=sla, priority=priority, customer=customer or CustomerFactory(),
            body=f"Hello,\n\n{subject}. This started this morning and blocks our team.\n\nThanks",
            first_response_due=now + (hours - 3) * timezone.timedelta(hours=1),
            resolution_due=now + timezone.timedelta(days=2),
        )  # fmt: skip
        MessageFactory(ticket=ticket, content=ticket.body, created_at=ticket.created_at)
        item = make_item(ticket=ticket, decision_type=decision_type, confidence=0.55 + hours * 0.05)
        ReviewItem.objects.filter(pk=item.pk).update(
            created_at=now - timezone.timedelta(minutes=50 - 7 * hours)
        )
        items.append(item)
    TicketFactory(customer=acme, subject="Cannot download last month's invoice", status="resolved",
                  created_at=now - timezone.timedelta(days=12))  # fmt: skip
    MessageFactory(
        ticket=items[0].ticket, kind="internal", sender_kind="cs_agent", sender_id="rita",
        content="Customer called too: three card attempts failed in the last hour.",
    )  # fmt: skip
    return items


def test_a_reviewer_answers_each_ticket_once_accepting_or_changing_suggestions(transactional_db, open_page):
    _users()
    items = _queue_of_work()
    first, second = items[0], items[1]
    priority = make_item(decision_type="priority", ticket=first.ticket, confidence=0.8)
    reply = make_item(decision_type="reply", ticket=first.ticket, confidence=0.7)
    page = open_page("rita")
    page.get_by_role("table").wait_for()
    shot(page, "queue")
    assert page.get_by_role("link", name=re.compile(r"Card payment declined")).count() == 1  # one row

    page.get_by_role("link", name=re.compile(r"Card payment declined")).click()
    page.wait_for_url(f"**/review/tickets/{first.ticket_id}/")
    page.get_by_role("heading", name="Answer 3 decisions").wait_for()
    shot(page, "review-one-pass")
    page.evaluate("window.__sameDocument = true")

    page.keyboard.press("a")  # every suggestion as shown, the draft sent: one submit
    page.wait_for_url(f"**/review/tickets/{second.ticket_id}/")
    page.get_by_text(f"Saved 3 answers on #{first.ticket_id}").wait_for()
    assert page.title().startswith(f"#{second.ticket_id} ")  # the tab follows the ticket

    page.keyboard.press("o")  # the first answer gets the focus
    assert page.evaluate("document.activeElement.id") == f"answer-{second.pk}"
    page.locator(f"#answer-{second.pk}").select_option("TECHNICAL_ISSUE")
    page.get_by_role("button", name=re.compile("Submit all answers")).click()
    page.get_by_text(f"Saved 1 answers on #{second.ticket_id}: 0 agreed").wait_for()

    assert page.evaluate("window.__sameDocument") is True  # htmx swapped; no full reload
    assert Ticket.objects.get(pk=first.ticket_id).category == "BILLING_INQUIRY"
    assert Ticket.objects.get(pk=second.ticket_id).category == "TECHNICAL_ISSUE"
    decided = ReviewItem.objects.filter(pk__in=[first.pk, priority.pk, reply.pk, second.pk], status="done")
    assert {i.decided_by.username for i in decided} == {"rita"} and decided.count() == 4
    assert all(i.seconds_to_decide is not None for i in decided)


PHASE_1 = ["category", "priority", "strategy", "escalation", "reply"]


def test_a_phase_1_ticket_is_answered_blind_in_one_pass_then_revealed_and_rated(transactional_db, open_page):
    _users()
    ticket = TicketFactory(subject="Charged twice for March", body="Why was I charged twice this month?")
    items = {
        t: make_item(decision_type=t, phase=1, ticket=ticket, reasoning="Secret reasoning.") for t in PHASE_1
    }
    page = open_page("rita")
    page.goto(f"/review/tickets/{ticket.pk}/")
    page.get_by_role("heading", name="Answer 5 decisions").wait_for()
    shot(page, "review-phase-1")

    def shown_without_choices() -> str:
        html = page.content()
        return re.sub(r"<select .*?</select>", "", html, flags=re.S)

    api = page.request.get(f"/api/v1/tickets/{ticket.pk}/decisions/").text()
    for leak in ("BILLING_INQUIRY", "Billing Inquiry", "TEMPLATE_RESPONSE", "Hi Ana", "Secret reasoning"):
        assert leak not in shown_without_choices() and leak not in api, leak
    page.keyboard.press("?")
    page.get_by_role("dialog").get_by_text("next / previous ticket").wait_for()
    page.keyboard.press("Escape")

    page.locator(f"#answer-{items['category'].pk}").select_option("BILLING_INQUIRY")
    page.locator(f"#answer-{items['priority'].pk}").select_option("MEDIUM")
    page.locator(f"#answer-{items['strategy'].pk}").select_option("TEMPLATE_RESPONSE")
    page.locator(f"#answer-{items['escalation'].pk}").select_option("none")
    page.locator(f"#reply-{items['reply'].pk}").fill("Hi, I see two charges and am refunding the duplicate.")
    page.get_by_role("button", name=re.compile("Submit all answers")).click()

    page.get_by_role("heading", name="What the AI had answered").wait_for()
    page.get_by_text("Hi Ana, we are looking at your invoice now.").wait_for()  # the draft, revealed
    shot(page, "review-phase-1-revealed")
    page.keyboard.press("1")  # its draft would have been fine
    page.get_by_text("you rated its draft").wait_for()

    outcomes = {i.decision_type: i.outcome for i in ReviewItem.objects.filter(ticket=ticket)}
    assert outcomes == {
        "category": "confirmed", "priority": "overridden", "strategy": "confirmed",
        "escalation": "overridden", "reply": "confirmed",
    }  # fmt: skip
    # The reply a person wrote is theirs: on the timeline and in the API.
    page.get_by_role("link", name=f"ticket #{ticket.pk}").click()
    page.locator(".who-cs_agent", has_text="rita").first.wait_for()
    sent = page.request.get(f"/api/v1/tickets/{ticket.pk}/").json()["messages"]
    (reply,) = [m for m in sent if m["kind"] == "external" and m["sender_kind"] != "customer"]
    rita = UserFactory._meta.model.objects.get(username="rita")
    assert (reply["sender_kind"], reply["sender_id"]) == ("cs_agent", str(rita.pk))


def test_it_keeps_a_ticket_with_whoever_claimed_it_first(transactional_db, open_page):
    _users()
    item = make_item()
    rita, omar = open_page("rita"), open_page("omar")
    rita.goto(f"/review/tickets/{item.ticket_id}/")
    rita.get_by_role("button", name=re.compile("Submit all answers")).wait_for()
    omar.goto(f"/review/tickets/{item.ticket_id}/")
    omar.get_by_text("rita is working on this ticket").wait_for()
    assert omar.get_by_role("button", name=re.compile("Submit all answers")).count() == 0
    item.refresh_from_db()
    assert item.claimed_by.username == "rita"


def test_it_answers_403_when_a_reviewer_tries_a_supervisor_action(transactional_db, open_page):
    _users()
    ticket = TicketFactory(status=Ticket.Status.RESOLVED)
    page = open_page("rita")
    page.goto(f"/tickets/{ticket.pk}/")
    assert page.get_by_role("button", name="Reassign").count() == 0
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"/tickets/{ticket.pk}/reassign/", headers={"X-CSRFToken": token}, form={"team": "billing"}
    )
    assert response.status == 403  # refused for the role, not for a missing CSRF token:
    assert "Your role does not include this page" in response.text()
    assert Ticket.objects.get(pk=ticket.pk).team == ""


def test_it_shows_a_script_in_a_ticket_as_text(transactional_db, open_page):
    _users()
    body = '<script>window.__xss = 1; alert("xss")</script><img src=x onerror="window.__xss = 2">'
    ticket = TicketFactory(subject="<b>Bold</b> subject", body=body)
    make_item(ticket=ticket)
    page = open_page("rita")
    page.goto(f"/review/tickets/{ticket.pk}/")
    page.locator(".ticket-text").get_by_text('<script>window.__xss = 1; alert("xss")</script>').wait_for()
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []
    assert page.locator("h1").inner_text() == "<b>Bold</b> subject"
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "review-narrow")


def test_it_shows_why_an_edited_reply_was_refused(transactional_db, open_page):
    _users()
    item = make_item(decision_type="reply")
    page = open_page("rita")
    page.goto(f"/review/tickets/{item.ticket_id}/")
    page.keyboard.press("o")
    page.keyboard.press("Control+a")
    page.keyboard.type("Sorry about that, we will refund you in full.")
    page.get_by_role("button", name=re.compile("Submit all answers")).click()
    page.locator("#flash").get_by_text('forbidden phrase "refund you in full"').wait_for()
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


# --- the supervisor pages ----------------------------------------------------------------------

CATEGORIES = ["BILLING_INQUIRY", "TECHNICAL_ISSUE", "BUG_REPORT", "ACCOUNT_MANAGEMENT", "FEATURE_REQUEST"]


def _supervision_history():
    """A month of a small team's work: reviewed category decisions (phase 2), applied and
    sampled priority decisions (phase 3), tickets answered and resolved on most days, alerts."""
    from autonomy.models import Alert, Disposition
    from autonomy.services import controller

    rng = random.Random(7)
    sam = UserFactory(username="sam", groups=[roles.SUPERVISOR])
    now = timezone.now()
    for n in range(150):
        truth = rng.choice(CATEGORIES)
        confidence = rng.uniform(0.35, 0.99)
        label = truth if rng.random() < confidence else rng.choice(CATEGORIES)
        item = make_item(phase=2, confidence=confidence, label=label, value={"category": label})
        controller.review_item_answer(item=item, actor=sam, label=truth)
        if n % 3 == 0:
            applied = make_item(
                decision_type="priority", phase=3, confidence=rng.uniform(0.85, 0.99), ticket=item.ticket
            )
            controller.review_item_answer(
                item=applied, actor=sam, label="HIGH" if rng.random() < 0.93 else "LOW"
            )
        age = timezone.timedelta(days=rng.uniform(0, 29.5))
        created = now - age
        responded = created + timezone.timedelta(minutes=rng.uniform(10, 600))
        resolved = responded + timezone.timedelta(hours=rng.uniform(1, 60)) if rng.random() < 0.8 else None
        Ticket.objects.filter(pk=item.ticket_id).update(
            created_at=created, first_response_at=min(responded, now),
            resolved_at=resolved if resolved and resolved < now else None,
            status="resolved" if resolved and resolved < now else ("escalated" if n % 11 == 0 else "open"),
            escalated_at=created + timezone.timedelta(hours=1) if n % 11 == 0 else None,
            first_response_due=created + timezone.timedelta(hours=4),
            resolution_due=created + timezone.timedelta(hours=48),
        )  # fmt: skip
        Disposition.objects.filter(decision__ticket_id=item.ticket_id).update(created_at=created)
        ReviewItem.objects.filter(ticket_id=item.ticket_id).update(
            created_at=created, decided_at=created + timezone.timedelta(hours=2)
        )
    make_item(decision_type="escalation", phase=1)
    Alert.objects.create(
        decision_type="priority", type=Alert.Type.ACCURACY_DEGRADATION, severity="high",
        metric="autonomous_accuracy", value=0.83, threshold=0.85, samples=48,
        recommendation="Sampled accuracy of applied priority decisions fell below 0.85: consider phase 2.",
        proposed_phase=2, created_at=now - timezone.timedelta(hours=3),
    )  # fmt: skip
    Alert.objects.create(
        decision_type="category", type=Alert.Type.INPUT_DRIFT, severity="high", metric="label_mix_psi",
        value=0.61, threshold=0.5, samples=150,
        recommendation="The label mix moved away from the calibration's.",
        created_at=now - timezone.timedelta(days=2), acknowledged_at=now - timezone.timedelta(days=1),
        acknowledged_by=sam, note="New product launch; expected.",
    )  # fmt: skip
    return sam


def test_a_supervisor_promotes_through_the_confirm_step_and_restores_it(transactional_db, open_page):
    from autonomy.models import Alert, AutomationPolicy, PhaseTransition, RollbackPoint

    _supervision_history()
    page = open_page("sam")
    page.get_by_role("link", name="Autonomy").click()
    page.wait_for_url("**/supervisor/autonomy/")
    policy = page.locator("#policy-category")
    policy.get_by_text("Phase 2 · assisted").wait_for()

    policy.get_by_label("Reason to promote to phase 3").fill("Agreement 88 % on the last 150 reviews")
    page.evaluate("window.__sameDocument = true")
    policy.get_by_role("button", name="Promote…").click()
    page.get_by_role("heading", name="Promote category from phase 2 to 3?").wait_for()
    shot(page, "supervisor-confirm")
    assert AutomationPolicy.objects.get(decision_type="category").phase == 2
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("Promoted category from phase 2 to 3.").wait_for()
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped it in

    transition = PhaseTransition.objects.get(policy__decision_type="category")
    assert (transition.direction, transition.from_phase, transition.to_phase) == ("promote", 2, 3)
    assert (
        transition.actor.username == "sam" and transition.reason == "Agreement 88 % on the last 150 reviews"
    )
    point = RollbackPoint.objects.get(pk=transition.rollback_point_id)
    assert point.snapshot["phase"] == 2
    assert AutomationPolicy.objects.get(decision_type="category").phase == 3
    page.locator("#autonomy-main").get_by_text("Agreement 88 % on the last 150 reviews").wait_for()

    page.get_by_label(f"Reason to restore rollback point #{point.pk}").fill(
        "Too early: wait for the new model"
    )
    page.get_by_role("button", name="Restore…").click()
    page.get_by_role("heading", name=re.compile(f"Restore category to rollback point #{point.pk}")).wait_for()
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text(f"Restored category to rollback point #{point.pk} (phase 2).").wait_for()
    assert AutomationPolicy.objects.get(decision_type="category").phase == 2
    assert PhaseTransition.objects.filter(direction="rollback", actor__username="sam").count() == 1
    shot(page, "supervisor-autonomy")

    page.get_by_role("link", name="Calibration").click()
    page.get_by_role("heading", name="Reliability diagram").wait_for()
    page.get_by_role("spinbutton", name="Target precision").fill("0.9")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("heading", name=re.compile("target precision of 90.0 %")).wait_for()
    shot(page, "supervisor-calibration")

    page.get_by_role("link", name="Dashboard").click()
    page.get_by_text("Autonomous accuracy").first.wait_for()
    shot(page, "supervisor-dashboard")

    page.get_by_role("link", name="Alerts").click()
    open_alert = Alert.objects.get(acknowledged_at__isnull=True)
    row = page.locator(f"#alert-{open_alert.pk}")
    row.get_by_label(re.compile("Note on alert")).fill("Looking at the new priority model")
    row.get_by_role("button", name="Acknowledge").click()
    page.locator(f"#alert-{open_alert.pk}").get_by_text("Alert acknowledged.").wait_for()
    shot(page, "supervisor-alerts")
    open_alert.refresh_from_db()
    assert (
        open_alert.acknowledged_by.username == "sam"
        and open_alert.note == "Looking at the new priority model"
    )


def test_a_reviewer_gets_403_on_the_supervisor_pages(transactional_db, open_page):
    _users()
    page = open_page("rita")
    assert page.get_by_role("link", name="Autonomy").count() == 0
    response = page.goto("/supervisor/autonomy/")
    assert response.status == 403
    page.get_by_role("heading", name="Not allowed").wait_for()


@pytest.mark.worker
def test_a_persons_reply_from_the_ticket_page_reaches_the_smtp_server(
    transactional_db, open_page, settings, tmp_path
):
    """The newcomer's path: a reply typed on the ticket page, delivered by a real worker to
    `make run`'s SMTP sink, its state on the timeline and the mail one click away."""
    from csai.mailsink import serve
    from tests.conftest import SMTPServer, purge_queues, start_worker

    _users()
    dana = CustomerFactory(name="Dana Whitfield", email="dana@acme.example")
    ticket = TicketFactory(subject="Invoice shows twice the plan price", customer=dana, status="open")
    MessageFactory(ticket=ticket, content=ticket.body, created_at=ticket.created_at)
    folder, mail = tmp_path / "mail", SMTPServer()  # the sink listens on this one's port
    settings.CSAI_MAIL_SINK_DIR = str(folder)
    sink = serve(host="127.0.0.1", port=mail.port, folder=folder)
    purge_queues()
    worker = start_worker(tmp_path / "worker.log", **mail.env())
    try:
        page = open_page("rita")
        page.goto(f"/tickets/{ticket.pk}/")
        page.get_by_label("Your reply").fill("Hi Dana, I have corrected the invoice.")
        page.get_by_role("button", name="Send reply").click()
        page.locator(".entry-external .delivery").wait_for()  # queued, or already sent

        assert worker.wait_for(lambda: any(folder.glob("*.eml"))), worker.output()
        page.reload()
        page.locator(".delivery-sent").wait_for()
        shot(page, "ticket-reply-delivered")
        page.get_by_role("link", name="the mail (.eml)").click()
        text = page.locator("body").inner_text()
        assert "To: dana@acme.example" in text and "Subject: Re: Invoice shows twice the plan price" in text
        assert "Hi Dana, I have corrected the invoice." in text
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=30)
        sink.stop()


@pytest.mark.worker
def test_a_reviewer_answers_a_follow_up_turn_and_sees_the_reply_delivered(
    transactional_db, open_page, tmp_path
):
    """The customer wrote again after our first reply; the reviewer answers the second turn in
    one pass and the ticket's timeline shows that turn's reply going out."""
    from agents.models import PipelineRun
    from tests.conftest import SMTPServer, purge_queues, start_worker

    _users()
    now = timezone.now()
    minutes = lambda n: now - timezone.timedelta(minutes=n)  # noqa: E731
    dana = CustomerFactory(name="Dana Whitfield", email="dana@acme.example")
    ticket = TicketFactory(
        subject="Invoice shows twice the plan price", customer=dana, status="open",
        body="Hello, invoice INV-2024-76687 shows twice our plan price. Can you check it?\n\nDana",
    )  # fmt: skip
    first = MessageFactory(ticket=ticket, content=ticket.body, created_at=minutes(30))
    PipelineRun.objects.create(
        ticket=ticket, number=1, message=first, status="done", correlation_id="c", started_at=minutes(30)
    )
    MessageFactory(
        ticket=ticket, sender_kind="ai_agent", sender_id="ai", created_at=minutes(20),
        content="Hi Dana, we are checking your invoice.", email_message_id="<reply-1@csai.example>",
    )  # fmt: skip
    again = MessageFactory(
        ticket=ticket, created_at=minutes(5), email_message_id="<dana-2@acme.example>",
        content="Thanks. It is still wrong on the new invoice INV-2024-76690.",
    )  # fmt: skip
    item = make_item(decision_type="reply", ticket=ticket, confidence=0.7)  # the second turn's draft
    PipelineRun.objects.filter(pk=item.decision.run_id).update(message=again)

    smtp = SMTPServer().start()
    purge_queues()
    worker = start_worker(tmp_path / "worker.log", **smtp.env())
    try:
        page = open_page("rita")
        page.goto(f"/review/tickets/{ticket.pk}/")
        page.get_by_label("Turn 2").wait_for()  # the follow-up opens the latest turn
        page.locator(".in-latest-turn").get_by_text("still wrong on the new invoice").wait_for()
        shot(page, "review-follow-up-turn")
        page.keyboard.press("a")  # the draft, as shown: one submit
        page.wait_for_url(re.compile(r"/review/$"))  # nothing else waits: back to the queue

        reply = ticket.messages.filter(sender_kind="cs_agent")
        assert worker.wait_for(lambda: reply.filter(delivery="sent").exists(), 120), worker.output()
        page.goto(f"/tickets/{ticket.pk}/")
        latest = page.locator(".entry-external.in-latest-turn").filter(
            has_text="we are looking at your invoice"
        )
        latest.locator(".delivery-sent").wait_for()
        shot(page, "ticket-follow-up-reply-delivered")
        assert smtp.wait_for_mail(1)
        (mail,) = smtp.messages
        assert mail["To"] == "dana@acme.example" and mail["In-Reply-To"] == "<dana-2@acme.example>"
        assert mail["References"].split() == ["<reply-1@csai.example>", "<dana-2@acme.example>"]
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=30)
        smtp.stop()
        purge_queues()
