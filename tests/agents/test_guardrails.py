import re

from hypothesis import given
from hypothesis import strategies as st

from agents.guardrails import (
    DEFAULT_FORBIDDEN_PHRASES,
    DEFAULT_MAX_LENGTH,
    GuardrailResult,
    check_text,
    luhn_valid,
    redact,
)

CLEAN_REPLY = """Hi Maria,

thanks for the details. I can see that order ORD-2024-004512 was charged $1,249.50 twice on
account ACC-483920. I have asked our billing team to look into the duplicate transaction and
they will get back to you at finance@harborlight.example within one business day.

You can follow the status at https://status.example.com/incidents/812. If it's urgent, call us
on +44 20 7946 0958.

Best regards,
Support team"""


def check(text: str, **kwargs) -> GuardrailResult:
    kwargs.setdefault("max_length", DEFAULT_MAX_LENGTH)
    kwargs.setdefault("forbidden_phrases", DEFAULT_FORBIDDEN_PHRASES)
    return check_text(text, **kwargs)


def kinds(result: GuardrailResult) -> list[str]:
    return [v.kind for v in result.violations]


def test_a_clean_reply_with_ids_amounts_and_a_phone_number_passes():
    result = check(CLEAN_REPLY)

    assert result.ok
    assert result.violations == ()
    assert result.as_dict() == {"ok": True, "violations": []}


def test_a_luhn_valid_card_number_is_blocked_without_repeating_it():
    reply = "Hi Dana, I have updated the card on file to 4111 1111 1111 1111 as you asked. Best, Support"

    result = check(reply)

    assert not result.ok
    assert kinds(result) == ["card_number"]
    detail = result.violations[0].detail
    assert detail == "card number ending 1111 (Luhn-valid)"
    assert "4111 1111" not in detail and "41111111" not in detail


def test_a_card_number_with_dashes_or_no_separators_is_blocked():
    assert kinds(check("Card: 5555-5555-5555-4444, exp 12/27")) == ["card_number"]
    assert kinds(check("card=378282246310005")) == ["card_number"]  # Amex, 15 digits


def test_a_luhn_invalid_sixteen_digit_number_passes():
    assert not luhn_valid("4111111111111112")

    assert check("Your reference is 4111 1111 1111 1112, keep it for your records.").ok


def test_order_ids_phone_numbers_and_timestamps_are_not_cards():
    text = (
        "Order ORD-2024-004512 and ORD-2025-000001, invoice INV-2024-00012, tracking 1718000000000, "
        "call +1 415 555 0132 or +44 20 7946 0958."
    )

    assert check(text).ok


def test_a_us_social_security_number_is_blocked():
    result = check("For verification my SSN is 123-45-6789, please update the account.")

    assert kinds(result) == ["national_id"]
    assert result.violations[0].detail == "US SSN-style number"
    assert "6789" not in result.violations[0].detail


def test_invalid_ssn_areas_are_not_flagged():
    assert check("Ticket refs 000-12-3456, 666-12-3456 and 912-34-5678.").ok


def test_a_uk_national_insurance_number_and_an_iban_are_blocked():
    result = check("My NI number is AB 12 34 56 C and my IBAN is GB82 WEST 1234 5698 7654 32.")

    assert kinds(result) == ["national_id", "bank_account"]
    assert result.violations[1].detail == "bank account number (IBAN, country GB, checksum-valid)"


def test_an_iban_with_a_bad_checksum_passes():
    assert check("Reference GB00 WEST 1234 5698 7654 32").ok


def test_an_aws_access_key_is_blocked():
    result = check("Sure, here is the key our integration uses: AKIAIOSFODNN7EXAMPLE. Let me know.")

    assert kinds(result) == ["secret"]
    assert result.violations[0].detail == "AWS access key pattern (AKIA…)"
    assert "IOSFODNN7" not in result.violations[0].detail


def test_an_anthropic_key_is_named_as_such():
    key = "sk-ant-api03-" + "Xy7_" * 10
    result = check(f"Config dump:\nANTHROPIC_API_KEY={key}\n")

    assert kinds(result) == ["secret"]
    assert result.violations[0].detail == "Anthropic API key pattern (sk-ant-…)"
    assert key not in str(result.as_dict())


def test_tokens_private_keys_and_passwords_are_blocked():
    text = (
        "GitHub: ghp_" + "a1B2" * 9 + "\nSlack: xoxb-2048-abcdefghijkl\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
        "Temporary password: Winter2025!"
    )

    details = [v.detail for v in check(text).violations]

    assert details == [
        "GitHub token pattern (ghp_…)",
        "Slack token pattern (xox…-)",
        "private key block",
        "password value in the text",
    ]


def test_talking_about_passwords_is_not_a_leak():
    reply = "Your password: please use the reset link we sent. The token is expired, so log in again."

    assert check(reply).ok


def test_forbidden_phrases_match_across_odd_spacing_and_case():
    reply = "We're sorry.  We   GUARANTEE it is fixed, you will get a FULL\nRefund. It was our\u200b fault."

    result = check(reply)

    assert [v.detail for v in result.violations] == [
        'forbidden phrase "full refund"',
        'forbidden phrase "we guarantee"',
        'forbidden phrase "our fault"',
    ]


def test_a_forbidden_phrase_inside_a_longer_word_does_not_match():
    result = check("Details are in our fault-tolerance guide.", forbidden_phrases=["fault"])

    assert [v.detail for v in result.violations] == ['forbidden phrase "fault"']
    assert check("We sent the refundable deposit back.", forbidden_phrases=["refund"]).ok


def test_custom_phrases_and_length_limits_apply():
    result = check(CLEAN_REPLY, max_length=200, forbidden_phrases=["billing team", "  "])

    assert not result.ok
    assert result.as_dict()["violations"] == [
        {"kind": "max_length", "detail": f"text is {len(CLEAN_REPLY)} characters, the limit is 200"},
        {"kind": "forbidden_phrase", "detail": 'forbidden phrase "billing team"'},
    ]


def test_redact_replaces_only_the_sensitive_parts():
    note = (
        "Customer sent card 4111 1111 1111 1111 and SSN 123-45-6789 by mistake; "
        "api_key=live_5f2b8c9d1e7a. Order ORD-2024-004512, phone +44 20 7946 0958."
    )

    assert redact(note) == (
        "Customer sent card [redacted card] and SSN [redacted SSN] by mistake; "
        "api_key=[redacted secret]. Order ORD-2024-004512, phone +44 20 7946 0958."
    )
    assert redact(CLEAN_REPLY) == CLEAN_REPLY


def _with_luhn_digit(prefix: str) -> str:
    for last in "0123456789":
        if luhn_valid(prefix + last):
            return prefix + last
    raise AssertionError  # pragma: no cover


cards = st.builds(
    _with_luhn_digit, st.from_regex(r"[3-6][0-9]{14}", fullmatch=True)
)  # 16-digit Luhn-valid numbers


@given(st.text(max_size=200), cards, st.text(max_size=200))
def test_a_card_anywhere_is_found_and_never_echoed(before, card, after):
    text = f"{before} {card} {after}"

    result = check(text)

    assert "card_number" in kinds(result)
    for violation in result.violations:
        assert card not in violation.detail
        assert not re.search(r"\d{5,}", violation.detail)
    assert card not in redact(text)


@given(st.text(max_size=400), st.lists(st.text(max_size=20), max_size=4), st.integers(0, 500))
def test_check_text_never_raises_and_never_puts_long_digit_runs_in_details(text, phrases, max_length):
    result = check_text(text, max_length=max_length, forbidden_phrases=phrases)

    assert result.ok == (not result.violations)
    for violation in result.violations:
        if violation.kind != "forbidden_phrase":
            assert not re.search(
                r"\d{5,}", violation.detail.replace(str(len(text)), "").replace(str(max_length), "")
            )
