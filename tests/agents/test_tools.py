import json
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from agents.retrieval import KnowledgeIndex
from agents.tools import Amount, Entities, extract_entities, outage_matches, priority_score
from lab.demo import generate_tickets
from tickets.models import Priority, Tier

CHECKOUT_EMAIL = """Hi team,

since this morning our checkout returns ERR_PAYMENT_402 for every customer. Order ORD-2024-004512
for $1,249.50 failed twice, and the status page at https://status.example.com/incidents/812 says
nothing. Our account is ACC-483920, invoice INV-2024-00012 is attached.

Please reply to finance@harborlight.example as well.

Thanks,
Maria Okafor
Head of Finance, Harborlight Logistics"""

CHAT_TRANSCRIPT = """[9:41] Tomasz: hi
[9:42] Tomasz: api calls keep failing with HTTP 502 Bad Gateway, sometimes error 504
[9:43] Tomasz: acct #1234-5678, order #88231, we were charged EUR 80 and then 80 € again
[9:44] Tomasz: also saw 0x80070005 in the desktop client"""


def score(text: str, *, tier: str = Tier.STANDARD, **kwargs):
    kwargs = {"is_vip": False, "has_entitlement": True, "outage_matches": 0} | kwargs
    return priority_score(text=text, tier=tier, **kwargs)


@dataclass
class Outage:
    title: str
    keywords: list[str]


# --- extract_entities ---------------------------------------------------------------------


def test_it_extracts_every_entity_of_a_realistic_email():
    entities = extract_entities(CHECKOUT_EMAIL)

    assert entities.accounts == ("ACC-483920",)
    assert entities.orders == ("ORD-2024-004512",)
    assert entities.invoices == ("INV-2024-00012",)
    assert entities.error_codes == ("ERR_PAYMENT_402",)
    assert entities.emails == ("finance@harborlight.example",)
    assert entities.amounts == (Amount(currency="USD", value=Decimal("1249.50")),)
    assert entities.urls == ("https://status.example.com/incidents/812",)
    assert entities.count == 7
    assert entities


def test_it_reads_ids_quoted_in_words_and_http_errors_in_chat():
    entities = extract_entities(CHAT_TRANSCRIPT)

    assert entities.accounts == ("1234-5678",)
    assert entities.orders == ("88231",)
    assert entities.error_codes == ("HTTP 502", "HTTP 504", "0x80070005")
    # "EUR 80" and "80 €" are the same amount: kept once.
    assert entities.amounts == (Amount(currency="EUR", value=Decimal("80")),)


def test_it_reads_amounts_in_several_currencies_and_number_formats():
    text = "We paid £12 in May, 1.249,50 € in June, USD 2,000 in July and $49.00 for the add-on."

    amounts = extract_entities(text).amounts

    assert [(a.currency, a.value) for a in amounts] == [
        ("GBP", Decimal("12")),
        ("EUR", Decimal("1249.50")),
        ("USD", Decimal("2000")),
        ("USD", Decimal("49.00")),
    ]


def test_it_keeps_first_seen_order_and_drops_repeats():
    text = "Order ORD-2025-000002, then ORD-2025-000001, then again ord-2025-000002. E1043, E1043, E2210."

    entities = extract_entities(text)

    assert entities.orders == ("ORD-2025-000002", "ORD-2025-000001")
    assert entities.error_codes == ("E1043", "E2210")


def test_it_does_not_mistake_phones_cards_or_email_domains_for_entities():
    text = (
        "Call me on +44 20 7946 0958 or 555-123-4567. My card number 4242 4242 4242 4242 was charged "
        "and the account number 4111-1111-1111-1111 is on file. Write to e1043@brightwave.example "
        "(our site brightwave.example is fine). Meeting at 10:30, room 404, 25 seats."
    )

    entities = extract_entities(text)

    assert entities.accounts == ()
    assert entities.orders == ()
    assert entities.error_codes == ()  # not "E1043" from the address, not "room 404"
    assert entities.urls == ()  # a bare domain or an email's domain is not a URL
    assert entities.emails == ("e1043@brightwave.example",)
    assert entities.amounts == ()


def test_it_does_not_read_codes_out_of_urls():
    text = "See (https://help.example.com/errors/E1043?code=ERR_SYNC_TIMEOUT_504&amount=$12)."

    entities = extract_entities(text)

    assert entities.urls == ("https://help.example.com/errors/E1043?code=ERR_SYNC_TIMEOUT_504&amount=$12",)
    assert entities.error_codes == ()
    assert entities.amounts == ()


def test_an_address_inside_a_link_is_part_of_the_link_only():
    text = "Log in at https://app.example.com/login?user=dana@acme.example or mail ops@www.acme.example."

    entities = extract_entities(text)

    assert entities.urls == ("https://app.example.com/login?user=dana@acme.example",)
    assert entities.emails == ("ops@www.acme.example",)


def test_it_serialises_to_json_with_decimals_as_strings():
    as_dict = extract_entities(CHECKOUT_EMAIL).as_dict()

    assert json.loads(json.dumps(as_dict))["amounts"] == [{"currency": "USD", "value": "1249.50"}]
    assert set(as_dict) == {"accounts", "orders", "invoices", "error_codes", "emails", "amounts", "urls"}


def test_a_text_without_entities_is_falsy():
    entities = extract_entities("Hello, is support open over the holidays? Thanks!")

    assert entities == Entities()
    assert not entities
    assert entities.count == 0


def test_it_finds_the_entities_the_demo_generator_writes():
    for ticket in generate_tickets(count=60, seed=11):
        body = ticket["body"]
        entities = extract_entities(f"{ticket['subject']}\n{body}")
        for account in entities.accounts:
            assert account in body
        for token in body.replace(",", " ").replace("(", " ").replace(")", " ").split():
            if token.startswith("ORD-"):
                assert token.rstrip(".") in entities.orders
            if token.startswith("INV-"):
                assert token.rstrip(".") in entities.invoices


@given(st.text(max_size=300))
def test_extraction_never_raises_and_returns_substrings(text):
    entities = extract_entities(text)

    for value in entities.emails + entities.urls:
        assert value in text
    assert entities.count == len(entities.as_dict()["amounts"]) + sum(
        len(v) for k, v in entities.as_dict().items() if k != "amounts"
    )


# --- priority_score -----------------------------------------------------------------------


def test_a_production_outage_for_a_premium_customer_is_critical():
    text = (
        "URGENT: production is down for all users since 09:40 CET. Checkout returns ERR_PAYMENT_402 "
        "and we are losing money every minute. Please escalate immediately."
    )
    outage = Outage(title="EU payments degraded", keywords=["checkout", "payments"])

    result = score(text, tier=Tier.PREMIUM, outage_matches=[outage])

    assert result.level == Priority.CRITICAL
    assert 'matches active outage "EU payments degraded" (+3.0)' in result.reasons
    assert "PREMIUM tier (+0.5)" in result.reasons
    assert any(r.startswith("urgency words:") and '"immediately"' in r for r in result.reasons)
    assert any(r.startswith("impact words:") and '"down"' in r for r in result.reasons)


def test_a_polite_feature_idea_from_a_basic_customer_is_low():
    text = (
        "Hi there, several people on my team asked whether a dark mode for the reports page is planned. "
        "It would be nice for late shifts. No rush at all, just wanted to flag it. Cheers, Grace"
    )

    result = score(text, tier=Tier.BASIC)

    assert result.level == Priority.LOW
    assert "BASIC tier (-0.25)" in result.reasons


def test_an_ordinary_question_is_medium_and_says_why():
    result = score("How do I import contacts from a spreadsheet?")

    assert result.level == Priority.MEDIUM
    assert result.score == 0
    assert result.reasons == ("no urgency or impact signals: an ordinary request",)


def test_not_urgent_does_not_raise_the_priority():
    plain = "The CSV export shifts dates by one day, see order ORD-2024-000231."
    calm = plain + " Not urgent, whenever you have a moment."

    base = score(plain)
    result = score(calm)

    assert result.score < base.score
    assert result.level == Priority.LOW
    assert not any(r.startswith("urgency words") for r in result.reasons)
    assert 'negated, not counted: "urgent"' in result.reasons


def test_a_negated_impact_word_is_not_counted():
    text = "The sync is slow but nothing is down and there is no outage, we can wait."

    result = score(text)

    assert not any(r.startswith("impact words") for r in result.reasons)
    assert result.level == Priority.MEDIUM


def test_every_contribution_has_a_reason_and_they_add_up():
    text = "Hi, we were charged €2,400 twice. Payment failed with ERR_CARD_DECLINED_051, please fix asap."

    result = score(text, tier=Tier.BASIC, is_vip=True, has_entitlement=False, outage_matches=2)

    assert "VIP customer (+1.0)" in result.reasons
    assert "no support entitlement (-0.5)" in result.reasons
    assert "matches 2 active outages (+4.0)" in result.reasons
    assert "error codes: ERR_CARD_DECLINED_051 (+0.5)" in result.reasons
    assert "amount EUR 2400 at or above the threshold (+0.5)" in result.reasons
    total = sum(float(r.rsplit("(", 1)[1].rstrip(")")) for r in result.reasons)
    assert result.score == total


def test_the_margin_is_small_near_a_cut_off():
    close = score("This is blocking us today.")
    clear = score("Just curious, no rush.")

    assert close.level == Priority.HIGH
    assert close.margin <= 0.25
    assert clear.margin > close.margin


def test_it_mostly_agrees_with_the_priority_the_demo_tickets_were_written_for():
    tickets = generate_tickets(count=400, seed=3)

    agree = sum(
        priority_score(
            text=f"{t['subject']}\n{t['body']}",
            tier=t["customer"]["tier"],
            is_vip=False,
            has_entitlement=True,
            outage_matches=0,
        ).level
        == t["metadata"]["demo_truth"]["priority"]
        for t in tickets
    )

    assert agree / len(tickets) >= 0.9


# --- outage_matches -----------------------------------------------------------------------


def test_it_matches_outages_by_whole_word_or_phrase_in_any_case():
    payments = Outage(title="EU payments degraded", keywords=["payment", "3-D Secure"])
    sync = Outage(title="Inventory sync delays", keywords=["inventory sync"])
    login = Outage(title="SSO login failures", keywords=["sso"])
    text = (
        "Hi, our PAYMENT keeps failing at the 3-d secure step. Inventory   Sync looks fine. Lessons learned."
    )

    assert outage_matches(text, [payments, sync, login]) == [payments, sync]


def test_it_does_not_match_a_keyword_inside_another_word():
    sso = Outage(title="SSO login failures", keywords=["sso", "  "])

    assert outage_matches("Lessons learned from the last release", [sso]) == []
    assert outage_matches("anything", []) == []


# --- KnowledgeIndex -----------------------------------------------------------------------

ARTICLES = [
    (1, "Resetting two-factor authentication: if you changed your phone, an admin can reset 2FA codes."),
    (2, "Duplicate charges: why a card can show two identical transactions and how refunds of a duplicate "
        "charge work."),
    (3, "Exporting to CSV: filters, date formats and time zones in the CSV export."),
    (4, "Inventory sync troubleshooting: what to do when the sync is stuck or stock levels do not update."),
]  # fmt: skip


def test_the_relevant_article_ranks_first():
    index = KnowledgeIndex(ARTICLES)

    hits = index.search(
        "We were charged $99.00 twice this month, our card statement shows a duplicate charge.", k=3
    )

    assert hits[0][0] == 2
    assert all(0.1 <= score <= 1 for _, score in hits)
    assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)


def test_search_respects_k_and_min_score():
    index = KnowledgeIndex(ARTICLES)

    assert len(index.search("sync stuck, stock levels wrong in the CSV export", k=1)) == 1
    assert index.search("sync stuck", min_score=0.99) == []
    assert index.search("quantum chromodynamics") == []


def test_an_empty_knowledge_base_finds_nothing():
    assert KnowledgeIndex([]).search("anything at all") == []
    assert KnowledgeIndex([(1, "the and of")]).search("the") == []
