"""The review queue: one row per ticket waiting for a person; order, filters, live counts,
paging with a fixed number of queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from autonomy.models import ReviewItem
from review import selectors
from tests.factories import TicketFactory, UserFactory
from tests.review.conftest import make_item
from tickets.models import Ticket


def _ticket(sla="on_time", priority="", due_in=timedelta(hours=8), **fields):
    now = timezone.now()
    return TicketFactory(
        sla_state=sla, priority=priority, created_at=now - timedelta(hours=1),
        first_response_due=now + due_in, resolution_due=now + due_in + timedelta(days=1), **fields,
    )  # fmt: skip


def test_it_orders_by_sla_risk_then_deadline_then_priority_then_uncertainty(db):
    on_time_critical = make_item(ticket=_ticket(priority="CRITICAL"))
    breached = make_item(ticket=_ticket(sla="breached", priority="LOW"))
    at_risk_late = make_item(ticket=_ticket(sla="at_risk", due_in=timedelta(hours=3)))
    at_risk_soon = make_item(ticket=_ticket(sla="at_risk", due_in=timedelta(hours=1)))
    same_due = timedelta(hours=5)
    low_sure = make_item(ticket=_ticket(priority="LOW", due_in=same_due), confidence=0.9)
    low_unsure = make_item(ticket=_ticket(priority="LOW", due_in=same_due), confidence=0.4)
    high = make_item(ticket=_ticket(priority="HIGH", due_in=same_due), confidence=0.9)
    # Same deadline: the priority decides, then the uncertainty.
    Ticket.objects.filter(pk__in=[low_sure.ticket_id, low_unsure.ticket_id, high.ticket_id]).update(
        first_response_due=timezone.now() + same_due
    )

    order = [row["ticket_id"] for row in selectors.queue_order()]

    def tickets(*items):
        return [item.ticket_id for item in items]

    assert order[:3] == tickets(breached, at_risk_soon, at_risk_late)
    assert order[3:6] == tickets(high, low_unsure, low_sure)
    assert order[6] == on_time_critical.ticket_id  # its deadline (8 h) is the furthest


def test_a_ticket_is_one_row_with_every_decision_waiting_on_it(reviewer_client):
    category = make_item(confidence=0.9)
    make_item(decision_type="priority", ticket=category.ticket, confidence=0.4)
    make_item(decision_type="reply", ticket=category.ticket)

    (row,) = [row for row in selectors.queue_order()]
    assert row["ticket_id"] == category.ticket_id and row["uncertainty"] == 0.6  # the least sure
    html = reviewer_client.get("/review/").content.decode()
    assert html.count(f'href="/review/tickets/{category.ticket_id}/"') == 1
    assert ">Category</span>" in html and ">Priority</span>" in html and ">Reply</span>" in html


def test_it_leaves_decided_items_out(reviewer_client, reviewer):
    item, other = make_item(), make_item()
    ReviewItem.objects.filter(pk=item.pk).update(status="done", decided_at=timezone.now())
    assert [row["ticket_id"] for row in selectors.queue_order()] == [other.ticket_id]


def test_it_filters_by_decision_type_category_priority_and_age(reviewer_client):
    category = make_item(ticket=_ticket(priority="HIGH", category="BILLING_INQUIRY"))
    priority = make_item(decision_type="priority", ticket=_ticket(category="BUG_REPORT"))
    ReviewItem.objects.filter(pk=priority.pk).update(created_at=timezone.now() - timedelta(days=2))

    def shown(**query):
        page = reviewer_client.get("/review/", query).content.decode()
        return {
            item.pk for item in (category, priority) if f'href="/review/tickets/{item.ticket_id}/"' in page
        }

    assert shown() == {category.pk, priority.pk}
    assert shown(decision_type="priority") == {priority.pk}
    assert shown(category="BILLING_INQUIRY") == {category.pk}
    assert shown(priority="HIGH") == {category.pk}
    assert shown(age="1d") == {priority.pk}


def test_it_answers_400_to_a_filter_that_does_not_exist(reviewer_client):
    response = reviewer_client.get("/review/", {"priority": "URGENT!"})
    assert response.status_code == 400 and "not valid" in response.content.decode()


def test_it_counts_pending_items_per_decision_type(reviewer_client):
    make_item()
    make_item()
    make_item(decision_type="reply")
    response = reviewer_client.get("/review/counts/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'hx-trigger="every 10s, review-decided from:body"' in html
    counts = dict(selectors.queue_counts())
    assert counts == {"category": 2, "priority": 0, "strategy": 0, "escalation": 0, "reply": 1}
    assert '<span class="n">2</span> Category' in html


def test_it_pages_with_a_fixed_number_of_queries(reviewer_client, django_assert_num_queries, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 3)
    items = [make_item() for _ in range(7)]
    reviewer_client.get("/review/")  # session and permissions warm-up is the same for every page

    def queries_for(page: int) -> str:
        # session, user, its permissions (2), the page's tickets in queue order, those tickets
        # with their customers, their pending items, the counts
        with django_assert_num_queries(8):
            return reviewer_client.get("/review/", {"page": page}).content.decode()

    pages = [queries_for(n) for n in (1, 2, 3)]
    shown = [[i.pk for i in items if f'href="/review/tickets/{i.ticket_id}/"' in html] for html in pages]
    assert [len(s) for s in shown] == [3, 3, 1]
    assert "Next →" in pages[0] and "Next →" not in pages[2] and "← Previous" in pages[2]


def test_it_returns_the_table_partial_to_htmx(reviewer_client):
    make_item()
    full = reviewer_client.get("/review/").content.decode()
    partial = reviewer_client.get("/review/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and 'id="queue-counts"' in full
    assert "<html" not in partial and partial.lstrip().startswith('<section id="queue-table"')


def test_it_shows_who_holds_a_claimed_ticket(client, reviewer, supervisor):
    item = make_item()
    client.force_login(supervisor)
    client.get(f"/review/tickets/{item.ticket_id}/")
    client.force_login(reviewer)
    assert '<span class="tag muted">supervisor</span>' in client.get("/review/").content.decode()


@pytest.mark.parametrize("path", ["/review/", "/review/counts/"])
def test_it_sends_anonymous_users_to_log_in(client, db, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize("path", ["/review/", "/review/counts/"])
def test_it_refuses_users_without_the_role(client, outsider, path):
    client.force_login(outsider)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/review/", "/review/counts/"])
def test_it_allows_only_get(reviewer_client, path):
    assert reviewer_client.post(path).status_code == 405


def test_it_pages_in_queue_order(db, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    for confidence in (0.9, 0.5, 0.7, 0.6, 0.8):
        make_item(ticket=_ticket(due_in=timedelta(hours=2)), confidence=confidence)
    reviewer = UserFactory()
    pages = [
        selectors.queue_page(filters=selectors.QueueFilters(), page=n, user=reviewer, now=timezone.now())
        for n in (1, 2, 3)
    ]
    assert [row.ticket.pk for rows, _ in pages for row in rows] == [
        row["ticket_id"] for row in selectors.queue_order()
    ]
    assert [len(rows) for rows, _ in pages] == [2, 2, 1]
    assert [more for _, more in pages] == [True, True, False]
