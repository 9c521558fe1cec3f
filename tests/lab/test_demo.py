import re
from collections import Counter
from itertools import islice

import pytest
from django.core.management import call_command

from lab.demo import FollowUp, customer_pool, generate_tickets, iter_tickets, iter_traffic
from tests.conftest import WEBHOOK_SECRET, purge_queues
from tickets.conversation import auto_reply_reason
from tickets.models import Category, Channel, Customer, Message, Priority, Ticket, Tier
from tickets.serializers import WebhookMessageSerializer, WebhookTicketSerializer
from tickets.services import message_post

ENTITY = re.compile(r"ACC-\d{6}|ORD-\d{4}-\d{6}|ERR_[A-Z0-9_]+|\bE\d{4}\b|HTTP [45]\d\d")


@pytest.fixture(scope="module")
def batch() -> list[dict]:
    return generate_tickets(count=200, seed=7)


def test_it_generates_the_same_tickets_for_the_same_seed(batch):
    assert generate_tickets(count=200, seed=7) == batch
    assert generate_tickets(count=10, seed=7) == batch[:10]
    assert list(islice(iter_tickets(seed=7), 5)) == batch[:5]


def test_it_generates_other_tickets_for_another_seed(batch):
    other = generate_tickets(count=200, seed=8)
    assert [t["body"] for t in other] != [t["body"] for t in batch]
    assert {t["external_id"] for t in other}.isdisjoint(t["external_id"] for t in batch)


def test_every_ticket_is_a_valid_webhook_payload_with_a_unique_id(batch):
    for payload in batch:
        serializer = WebhookTicketSerializer(data=payload)
        assert serializer.is_valid(), (payload, serializer.errors)
        assert set(payload) == {"source", "external_id", "subject", "body", "channel", "customer", "metadata"}
    assert len({t["external_id"] for t in batch}) == len(batch)
    assert batch[0]["external_id"] == "demo-7-0"


def test_it_covers_every_category_priority_tier_and_channel(batch):
    truths = [t["metadata"]["demo_truth"] for t in batch]
    assert {t["category"] for t in truths} == set(Category.values)
    assert {t["priority"] for t in truths} == set(Priority.values)
    assert {t["customer"]["tier"] for t in batch} == set(Tier.values)
    assert {t["channel"] for t in batch} == set(Channel.values)


def test_tickets_mention_entities_a_classifier_can_extract(batch):
    with_entities = [t for t in batch if ENTITY.search(t["subject"] + t["body"])]
    assert len(with_entities) >= 0.6 * len(batch)
    text = " ".join(t["body"] for t in batch)
    assert re.search(r"ACC-\d{6}", text) and re.search(r"ORD-\d{4}-\d{6}", text)
    assert re.search(r"ERR_PAYMENT_402|ERR_CARD_DECLINED_\d+", text)
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d\d", text)
    assert "https://" in text and re.search(r"[\w.]+@[\w-]+\.example\b", text)


def test_urgent_wording_matches_the_intended_priority(batch):
    def bodies(priority: str) -> list[str]:
        return [t["body"] for t in batch if t["metadata"]["demo_truth"]["priority"] == priority]

    urgent = re.compile(r"(?i:urgent|critical|emergency|immediately)|\bNOW\b")
    calm = re.compile(r"(?i:no rush|not urgent|whenever|low priority|just curious)")
    assert all(urgent.search(body) and not calm.search(body) for body in bodies("CRITICAL"))
    assert all(calm.search(body) for body in bodies("LOW"))


def test_customers_come_back_with_more_tickets(batch):
    per_customer = Counter(t["customer"]["external_id"] for t in batch)
    assert per_customer.most_common(1)[0][1] >= 5
    assert len(per_customer) <= len(customer_pool())
    companies = {t["customer"]["company"] for t in batch} - {""}
    assert len(companies) >= 3


def test_traffic_is_the_seeds_tickets_with_customers_writing_again_on_them():
    traffic = list(islice(iter_traffic(seed=7), 300))
    assert list(islice(iter_traffic(seed=7), 300)) == traffic
    tickets = [item for item in traffic if not isinstance(item, FollowUp)]
    follow_ups = [item for item in traffic if isinstance(item, FollowUp)]
    assert tickets == generate_tickets(count=len(tickets), seed=7)  # the same tickets, in order
    assert 0.15 * len(traffic) < len(follow_ups) < 0.35 * len(traffic)
    assert not any(isinstance(item, FollowUp) for item in traffic[:3])

    seen = set()
    kinds = Counter(f.kind for f in follow_ups)
    assert kinds["email"] > kinds["auto_reply"] > 0 and kinds["message"] > 0
    for item in traffic:
        if not isinstance(item, FollowUp):
            seen.add(item["external_id"])
            continue
        assert item.ticket["external_id"] in seen  # a ticket sent earlier in the run
        for payload in (item.payload(), item.payload(in_reply_to="<ours@csai.example>")):
            serializer = WebhookMessageSerializer(data=payload)
            assert serializer.is_valid(), (payload, serializer.errors)
        auto = auto_reply_reason(headers=item.headers, content=item.content)
        assert bool(auto) == (item.kind == "auto_reply")
        if item.kind == "message":
            assert item.ticket["channel"] != Channel.EMAIL and item.headers == {}
        else:
            assert item.ticket["channel"] == Channel.EMAIL
            assert item.headers["Message-ID"].startswith(f"<{item.external_id}@")
    assert len({f.external_id for f in follow_ups}) == len(follow_ups)
    answer = next(f for f in follow_ups if f.kind == "email")
    threaded = answer.payload(
        in_reply_to="<b@csai.example>", references=["<a@csai.example>", "<b@csai.example>"]
    )
    assert "ticket_external_id" not in threaded
    assert threaded["headers"]["In-Reply-To"] == "<b@csai.example>"
    assert threaded["headers"]["References"] == "<a@csai.example> <b@csai.example>"


@pytest.mark.django_db
def test_load_demo_creates_tickets_once():
    call_command("load_demo", count=12, seed=3, verbosity=0)

    assert Ticket.objects.count() == 12
    assert Message.objects.filter(kind="external", sender_kind="customer").count() == 12
    assert Customer.objects.count() < 12  # some customers wrote more than one ticket
    ticket = Ticket.objects.get(external_id="demo-3-0")
    assert ticket.source == "demo" and ticket.metadata["demo_truth"]["category"] in Category.values

    call_command("load_demo", count=12, seed=3, verbosity=0)
    assert Ticket.objects.count() == 12


@pytest.mark.django_db
def test_load_demo_if_empty_leaves_existing_tickets_alone():
    call_command("load_demo", count=3, seed=1, verbosity=0)
    call_command("load_demo", count=5, seed=2, if_empty=True, verbosity=0)
    assert Ticket.objects.count() == 3

    Ticket.objects.all().delete()
    call_command("load_demo", count=5, seed=2, if_empty=True, verbosity=0)
    assert Ticket.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_demo_traffic_posts_signed_tickets_to_a_running_server(live_server, capsys):
    call_command("demo_traffic", rate=50, count=5, seed=11, url=live_server.url, secret=WEBHOOK_SECRET)

    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == [f"demo-11-{i}" for i in range(5)]
    assert "Sent 5: 5 created (201), 0 already there (200), 0 errors." in capsys.readouterr().out

    call_command("demo_traffic", rate=50, count=5, seed=11, url=live_server.url, secret=WEBHOOK_SECRET)
    assert Ticket.objects.count() == 5
    assert "0 created (201), 5 already there (200)" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_demo_traffic_customers_answer_our_delivered_mail_and_some_are_away(live_server, capsys):
    traffic = list(islice(iter_traffic(seed=11), 40))
    sent = [item for item in traffic if not isinstance(item, FollowUp)]
    follow_ups = [item for item in traffic if isinstance(item, FollowUp)]
    count = len(sent)
    call_command(
        "demo_traffic",
        rate=100,
        count=count,
        seed=11,
        url=live_server.url,
        secret=WEBHOOK_SECRET,
        follow_ups=0,
    )
    assert Ticket.objects.count() == count and not Message.objects.exclude(sender_kind="customer").exists()
    # We answered every email ticket, and the replies went out.
    ours = {}
    for ticket in Ticket.objects.filter(channel=Channel.EMAIL):
        reply = message_post(
            ticket=ticket, kind="external", sender_kind="ai_agent", sender_id="ai", content="Hi."
        )
        Message.objects.filter(pk=reply.pk).update(delivery="sent")
        ours[ticket.external_id] = reply.email_message_id
    purge_queues()
    capsys.readouterr()

    call_command("demo_traffic", rate=100, count=count, seed=11, url=live_server.url, secret=WEBHOOK_SECRET)

    out = capsys.readouterr().out
    by_mail = [f for f in follow_ups if f.kind != "message"]
    auto = [f for f in follow_ups if f.kind == "auto_reply"]
    assert by_mail and auto and len(by_mail) < len(follow_ups)  # seed 11: all three kinds
    assert f"0 created (201), {count} already there (200)" in out
    assert (
        f"Customers wrote again {len(follow_ups)} times: {len(by_mail)} by mail answering our reply, "
        f"{len(auto)} auto-replies, 0 errors."
    ) in out
    for follow_up in follow_ups:
        message = Message.objects.select_related("ticket").get(external_id=follow_up.external_id)
        assert (message.ticket.external_id, message.sender_kind) == (
            follow_up.ticket["external_id"],
            "customer",
        )
        headers = message.metadata.get("headers", {})
        if follow_up.kind == "message":
            assert headers == {}
        else:
            assert headers["In-Reply-To"] == ours[follow_up.ticket["external_id"]]
            assert message.email_message_id == follow_up.headers["Message-ID"]
        assert ("auto_reply" in message.metadata) == (follow_up.kind == "auto_reply")


@pytest.mark.django_db(transaction=True)
def test_demo_traffic_counts_refused_deliveries_as_errors(live_server, capsys):
    call_command("demo_traffic", rate=50, count=2, url=live_server.url, secret="wrong-secret")

    assert Ticket.objects.count() == 0
    assert "Sent 2: 0 created (201), 0 already there (200), 2 errors." in capsys.readouterr().out


def test_demo_traffic_keeps_going_when_the_server_is_down(capsys):
    # Port 9 on loopback (discard) has no listener: every connection is refused.
    call_command("demo_traffic", rate=50, count=3, url="http://127.0.0.1:9", secret=WEBHOOK_SECRET)

    assert "Sent 3: 0 created (201), 0 already there (200), 3 errors." in capsys.readouterr().out
