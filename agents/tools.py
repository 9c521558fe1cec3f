"""Plain, deterministic tools the agents call: entity extraction, a rule-based priority score
and outage matching. No database, no models: the caller passes plain values in.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tickets.models import Priority, Tier

# --- entities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    currency: str  # ISO 4217 code: "$" is read as USD, "€" as EUR, "£" as GBP
    value: Decimal

    def __str__(self) -> str:
        return f"{self.currency} {self.value}"


@dataclass(frozen=True)
class Entities:
    accounts: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()
    invoices: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    amounts: tuple[Amount, ...] = ()
    urls: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return sum(
            len(values)
            for values in (
                self.accounts,
                self.orders,
                self.invoices,
                self.error_codes,
                self.emails,
                self.amounts,
                self.urls,
            )
        )

    def __bool__(self) -> bool:
        return self.count > 0

    def as_dict(self) -> dict[str, list]:
        return {
            "accounts": list(self.accounts),
            "orders": list(self.orders),
            "invoices": list(self.invoices),
            "error_codes": list(self.error_codes),
            "emails": list(self.emails),
            "amounts": [{"currency": a.currency, "value": str(a.value)} for a in self.amounts],
            "urls": list(self.urls),
        }


_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)

# Digits of an id quoted after a keyword: "1234-5678", not the start of a longer number
# (a card number "4242 4242 4242 4242" after "account number" is not an account).
_QUOTED_ID = r"(?P<id>\d(?:[\d-]*\d)?)(?![ -]?\d)(?!\w)"
_ID_KEYWORD_TAIL = r"\.?\s*+(?:(?P<qual>number|num\.?|no\.|no\b|id\b|#)\s*+)?[:#]?\s*+#?\s*+"

_ACCOUNT_RE = re.compile(r"(?<![\w-])ACC-\d{4,12}(?![\w-])", re.IGNORECASE)
_ACCOUNT_PHRASE_RE = re.compile(r"\b(?:account|acct|acc)" + _ID_KEYWORD_TAIL + _QUOTED_ID, re.IGNORECASE)
_ORDER_RE = re.compile(r"(?<![\w-])ORD-\d+(?:-\d+)*(?![\w-])", re.IGNORECASE)
_ORDER_PHRASE_RE = re.compile(r"\border" + _ID_KEYWORD_TAIL + _QUOTED_ID, re.IGNORECASE)
_INVOICE_RE = re.compile(r"(?<![\w-])INV-\d+(?:-\d+)*(?![\w-])", re.IGNORECASE)
_INVOICE_PHRASE_RE = re.compile(r"\binvoice" + _ID_KEYWORD_TAIL + _QUOTED_ID, re.IGNORECASE)

_HTTP_REASONS = (
    "Bad Request|Unauthorized|Payment Required|Forbidden|Not Found|Method Not Allowed|Conflict|"
    "Gone|Too Many Requests|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out"
)
_ERROR_CODE_RES = (
    (re.compile(r"(?<![\w-])E\d{3,5}(?![\w-])"), None),
    (re.compile(r"(?<![\w-])ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*(?![\w-])"), None),
    (re.compile(r"(?<![\w-])0x[0-9A-Fa-f]{4,16}(?![\w-])"), None),
    (re.compile(r"\bHTTP(?:/\d(?:\.\d)?)?\s*+:?\s*+(?P<status>[45]\d\d)(?!\w)", re.IGNORECASE), "HTTP"),
    (
        re.compile(
            r"\b(?:error|status(?:\s+code)?|response\s+code)\s*+(?:code\s*+)?:?\s*+(?P<status>[45]\d\d)(?!\w|[.,]\d)",
            re.IGNORECASE,
        ),
        "HTTP",
    ),
    (re.compile(r"(?<![\w.,-])(?P<status>[45]\d\d)\s+(?:" + _HTTP_REASONS + r")\b", re.IGNORECASE), "HTTP"),
    (
        re.compile(r"\b(?:an?|the)\s+(?P<status>[45]\d\d)\s+(?:error|response|status)\b", re.IGNORECASE),
        "HTTP",
    ),
)

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CODES = "USD|EUR|GBP|CHF|CAD|AUD|NZD|JPY|SEK|NOK|DKK|PLN|CZK|INR|SGD|ZAR|BRL|MXN"
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
_AMOUNT_RE = re.compile(
    r"(?:(?P<sym1>[$€£¥₹])|\b(?P<code1>" + _CODES + r"))\s?(?P<num1>" + _NUMBER + r")(?![\d.,]?\d)"
    r"|(?<![\w.,])(?P<num2>" + _NUMBER + r")\s?(?:(?P<sym2>[€$£¥₹])|(?P<code2>" + _CODES + r")\b)"
)


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """The text with the spans replaced by spaces, so later patterns cannot match inside them."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _inside(match: re.Match, others: list[re.Match]) -> bool:
    return any(other.start() < match.start() < other.end() for other in others)


def _strip_url(url: str) -> str:
    url = url.rstrip(".,;:!?'\"")
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(".,;:!?")
    return url


def _first_seen(found: list[tuple[int, object]], *, key=lambda value: value) -> tuple:
    seen: set = set()
    result = []
    for _, value in sorted(found, key=lambda item: item[0]):
        if key(value) not in seen:
            seen.add(key(value))
            result.append(value)
    return tuple(result)


def _parse_number(number: str) -> Decimal:
    """ "1,249.50", "1.249,50", "12,50" and "80": a separator followed by 1-2 final digits is decimal."""
    match = re.fullmatch(r"(.*?)[.,](\d{1,2})", number)
    if match:
        return Decimal(f"{re.sub(r'[.,]', '', match.group(1)) or '0'}.{match.group(2)}")
    return Decimal(re.sub(r"[.,]", "", number))


def _quoted_ids(regex: re.Pattern, text: str, *, min_digits: int, need_qualifier_below: int) -> list:
    found = []
    for match in regex.finditer(text):
        value = match.group("id")
        digits = sum(ch.isdigit() for ch in value)
        if not min_digits <= digits <= 12:
            continue
        if match.group("qual") is None and digits < need_qualifier_below:
            continue  # "account 2024" is a year, "account #2024" an id
        found.append((match.start("id"), value))
    return found


def extract_entities(text: str) -> Entities:
    """The ids, codes, addresses and amounts quoted in a ticket, deduplicated, first seen first."""
    url_matches, email_matches = list(_URL_RE.finditer(text)), list(_EMAIL_RE.finditer(text))
    # "https://x.example/?u=a@b.example" is a URL only; "ops@www.b.example" an email only.
    urls = [(m.start(), _strip_url(m.group())) for m in url_matches if not _inside(m, email_matches)]
    emails = [(m.start(), m.group()) for m in email_matches if not _inside(m, url_matches)]
    rest = _blank(text, [m.span() for m in url_matches + email_matches])

    accounts = [(m.start(), m.group().upper()) for m in _ACCOUNT_RE.finditer(rest)]
    orders = [(m.start(), m.group().upper()) for m in _ORDER_RE.finditer(rest)]
    invoices = [(m.start(), m.group().upper()) for m in _INVOICE_RE.finditer(rest)]
    ids_spans = [
        (m.start(), m.end()) for r in (_ACCOUNT_RE, _ORDER_RE, _INVOICE_RE) for m in r.finditer(rest)
    ]
    rest = _blank(rest, ids_spans)
    accounts += _quoted_ids(_ACCOUNT_PHRASE_RE, rest, min_digits=4, need_qualifier_below=6)
    orders += _quoted_ids(_ORDER_PHRASE_RE, rest, min_digits=3, need_qualifier_below=13)
    invoices += _quoted_ids(_INVOICE_PHRASE_RE, rest, min_digits=3, need_qualifier_below=13)

    errors = []
    for regex, prefix in _ERROR_CODE_RES:
        for match in regex.finditer(rest):
            if prefix:
                errors.append((match.start(), f"{prefix} {match.group('status')}"))
            else:
                errors.append((match.start(), match.group()))

    amounts = []
    for match in _AMOUNT_RE.finditer(rest):
        symbol = match.group("sym1") or match.group("sym2")
        currency = _SYMBOLS[symbol] if symbol else (match.group("code1") or match.group("code2"))
        value = _parse_number(match.group("num1") or match.group("num2"))
        amounts.append((match.start(), Amount(currency=currency, value=value)))

    return Entities(
        accounts=_first_seen(accounts),
        orders=_first_seen(orders),
        invoices=_first_seen(invoices),
        error_codes=_first_seen(errors),
        emails=_first_seen(emails, key=str.lower),
        amounts=_first_seen(amounts),
        urls=_first_seen(urls),
    )


# --- priority -----------------------------------------------------------------------------
#
# A transparent points system. Every contribution becomes one line in ``reasons``.
#
# Wording: each distinct term counts once with its own weight; a raising term preceded in
# the same clause by a negation ("not", "no", "isn't", ...) is ignored ("not urgent" does
# not raise). Calming terms ("no rush", "not urgent", "when you get a chance") lower.
# Urgency and impact are each capped so that a ticket listing every word cannot run away.

URGENCY_TERMS: dict[str, float] = {
    "emergency": 2.5,
    "critical": 2.5,
    "urgent": 2.0,
    "urgently": 2.0,
    "top priority": 2.0,
    "high priority": 1.5,
    "immediately": 1.5,
    "right now": 1.5,
    "right away": 1.5,
    "within the hour": 1.5,
    "asap": 1.5,
    "as soon as possible": 1.0,
    "escalate": 1.0,
    "time-sensitive": 1.0,
    "time sensitive": 1.0,
    "deadline": 0.5,
    "month-end": 0.5,
    "quick response": 0.5,
    "today": 0.5,
}
IMPACT_TERMS: dict[str, float] = {
    "breach": 2.0,
    "hacked": 2.0,
    "compromised": 2.0,
    "outage": 2.0,
    "data loss": 1.5,
    "nothing works": 1.5,
    "down": 1.5,  # "is down", "site down", ... (see _TERM_PATTERNS)
    "all users": 1.0,
    "all our users": 1.0,
    "every customer": 1.5,
    "all customers": 1.5,
    "customers are affected": 1.5,
    "security": 1.0,
    "production": 1.0,
    "whole team": 1.5,
    "entire team": 1.5,
    "blocked": 1.0,
    "blocking": 1.0,
    "no workaround": 1.0,
    "costing us money": 1.0,
    "losing money": 1.0,  # also revenue, sales, orders, customers, business
    "payment failed": 1.0,
    "suspended": 0.5,
    "cannot log in": 1.0,  # also "can't log in", "unable to sign in", ...
    "locked out": 1.0,
    "several colleagues": 0.5,
    "changes are lost": 0.5,
    "crashes": 0.5,
}
CALMING_TERMS: dict[str, float] = {
    "not urgent": -2.5,
    "no rush": -2.5,
    "no hurry": -2.5,
    "low priority": -2.5,
    "just curious": -2.0,
    "just wondering": -2.0,
    "not a big deal": -1.0,
    "no big deal": -1.0,
    "not critical": -1.5,
    "no impact": -1.5,
    "whenever you have": -1.0,
    "when you get a chance": -1.0,
    "when you have a moment": -1.0,
    "at your convenience": -1.0,
    "just wanted to flag": -1.0,
    "not blocking": -1.0,
    "nice to have": -0.5,
    "would be nice": -0.5,
    "feature request": -0.5,
    "feature idea": -0.5,
    "workaround for now": -0.5,
    "would be great": -0.25,
    "would love": -0.25,
    "roadmap": -0.25,
}
URGENCY_CAP = 4.0
IMPACT_CAP = 4.0
SHOUTING_WEIGHT = 1.5  # "URGENT", "NOW", "!!": the customer is shouting
TIER_WEIGHTS: dict[str, float] = {Tier.PREMIUM: 0.5, Tier.STANDARD: 0.0, Tier.BASIC: -0.25}
VIP_WEIGHT = 1.0
NO_ENTITLEMENT_WEIGHT = -0.5
OUTAGE_WEIGHT = 3.0  # the first matching active outage
OUTAGE_EXTRA_WEIGHT = 1.0  # each further one
ERROR_CODE_WEIGHT = 0.5  # once, however many codes are quoted
AMOUNT_WEIGHT = 0.5  # once, when any amount reaches the threshold of its currency
AMOUNT_THRESHOLD = Decimal(1000)
AMOUNT_THRESHOLDS: dict[str, Decimal] = {"JPY": Decimal(150_000), "INR": Decimal(80_000)}

# score >= cut-off → level, checked top down; below the last one → LOW.
# 0 (no signal at all) is MEDIUM: an ordinary request.
PRIORITY_CUTOFFS: tuple[tuple[float, str], ...] = (
    (5.0, Priority.CRITICAL),
    (1.25, Priority.HIGH),
    (-1.25, Priority.MEDIUM),
)

_TERM_PATTERNS: dict[str, str] = {
    "down": r"\b(?:is|are|was|were|went|been|be|all|completely|totally|everything|site|app|system|server|"
    r"service|production|prod|api|platform|website|checkout)\s+down\b",
    "cannot log in": r"\b(?:cannot|can'?t|can’t|unable\s+to|not\s+able\s+to)\s+(?:log|sign)\s*(?:in|on)\b",
    "payment failed": r"\bpayments?\s+(?:failed|fails|failing|keeps?\s+failing|(?:is|are)\s+failing)\b",
    "crashes": r"\bcrash(?:es|ed|ing)?\b",
    "security": r"\bsecurity\s+(?:issue|incident|problem|hole|vulnerability|breach)\b",
    "production": r"\b(?:in|on)\s+production\b|\bproduction\s+(?:is|system|environment|site|down)\b",
    "today": r"\b(?:by|before|for|until|due|blocking\s+\w+)\s+(?:[\w:]+\s+)?today\b"
    r"|\btoday\b(?=[^.!?\n]*\b(?:need|must|has to)\b)",
    "losing money": r"\blosing\s+(?:money|revenue|sales|orders|customers|business)\b",
    "whenever you have": r"\bwhenever\s+you\s+(?:have|get)\b",
    "all our users": r"\ball\s+(?:of\s+)?our\s+(?:users|customers|staff)\b",
    "customers are affected": r"\bcustomers\s+(?:are|were)\s+(?:\w+\s+)?affected\b",
}
_NEGATORS = frozenset(
    {"not", "no", "never", "without", "nothing", "none", "neither", "nor", "hardly"}
    | {"isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't"}
    | {"isnt", "arent", "wasnt", "dont", "doesnt", "didnt"}
)
_CLAUSE_BREAK = re.compile(r"[.!?;,:\n]|\bbut\b", re.IGNORECASE)
_SHOUT_RE = re.compile(r"\b(?:URGENT|ASAP|NOW|HELP|EMERGENCY|CRITICAL|DOWN|IMMEDIATELY)\b|!{2,}")


def _term_re(term: str) -> re.Pattern:
    pattern = _TERM_PATTERNS.get(term)
    if pattern is None:
        words = re.split(r"[\s-]+", term)
        pattern = r"(?<!\w)" + r"[\s-]+".join(re.escape(word) for word in words) + r"(?!\w)"
    return re.compile(pattern, re.IGNORECASE)


_URGENCY = [(term, weight, _term_re(term)) for term, weight in URGENCY_TERMS.items()]
_IMPACT = [(term, weight, _term_re(term)) for term, weight in IMPACT_TERMS.items()]
_CALMING = [(term, weight, _term_re(term)) for term, weight in CALMING_TERMS.items()]


@dataclass(frozen=True)
class PriorityScore:
    level: str  # a tickets.models.Priority value
    score: float
    reasons: tuple[str, ...]
    margin: float  # distance of the score to the nearest cut-off: small means a close call


class OutageLike(Protocol):
    title: str
    keywords: Sequence[str]


def _negated(text: str, start: int) -> bool:
    clause = _CLAUSE_BREAK.split(text[max(0, start - 60) : start])[-1]
    words = re.findall(r"[\w'’]+", clause.lower().replace("’", "'"))
    return any(word in _NEGATORS for word in words[-4:])


def _terms_found(text: str, terms: list, *, negatable: bool) -> tuple[list[tuple[str, float]], list[str]]:
    found, negated = [], []
    for term, weight, regex in terms:
        matches = list(regex.finditer(text))
        if not matches:
            continue
        if negatable and all(_negated(text, m.start()) for m in matches):
            negated.append(term)
        else:
            found.append((term, weight))
    return found, negated


def _quoted(terms: Iterable[str]) -> str:
    return ", ".join(f'"{term}"' for term in terms)


def _level(score: float) -> tuple[str, float]:
    margin = min(abs(score - cutoff) for cutoff, _ in PRIORITY_CUTOFFS)
    for cutoff, level in PRIORITY_CUTOFFS:
        if score >= cutoff:
            return str(level), margin
    return str(Priority.LOW), margin


def _signed(weight: float) -> str:
    return f"{weight:+.1f}" if round(weight, 1) == weight else f"{weight:+.2f}"


def _big_amount(entities: Entities) -> Amount | None:
    for amount in entities.amounts:
        if amount.value >= AMOUNT_THRESHOLDS.get(amount.currency, AMOUNT_THRESHOLD):
            return amount
    return None


def priority_score(
    *,
    text: str,
    tier: str,
    is_vip: bool,
    has_entitlement: bool,
    outage_matches: int | Sequence[OutageLike],
    entities: Entities | None = None,
) -> PriorityScore:
    """Score a ticket's urgency from its wording, its customer and the active outages.

    ``outage_matches`` is the number of matching active outages, or the outages themselves
    (then the reasons name them). ``entities`` is extracted from ``text`` when not given.
    """
    entities = extract_entities(text) if entities is None else entities
    parts: list[tuple[str, float]] = []

    urgency, negated_urgency = _terms_found(text, _URGENCY, negatable=True)
    impact, negated_impact = _terms_found(text, _IMPACT, negatable=True)
    calming, _ = _terms_found(text, _CALMING, negatable=False)
    if urgency:
        weight = min(URGENCY_CAP, sum(w for _, w in urgency))
        parts.append((f"urgency words: {_quoted(t for t, _ in urgency)}", weight))
    if impact:
        weight = min(IMPACT_CAP, sum(w for _, w in impact))
        parts.append((f"impact words: {_quoted(t for t, _ in impact)}", weight))
    shouts = list(dict.fromkeys(m.group() for m in _SHOUT_RE.finditer(text)))
    if shouts and (urgency or impact or any(s.isalpha() for s in shouts)):
        parts.append((f"shouting: {_quoted(shouts[:3])}", SHOUTING_WEIGHT))
    if calming:
        parts.append((f"calming words: {_quoted(t for t, _ in calming)}", sum(w for _, w in calming)))

    tier_weight = TIER_WEIGHTS.get(tier, 0.0)
    if tier_weight:
        parts.append((f"{tier} tier", tier_weight))
    if is_vip:
        parts.append(("VIP customer", VIP_WEIGHT))
    if not has_entitlement:
        parts.append(("no support entitlement", NO_ENTITLEMENT_WEIGHT))

    outages = outage_matches if not isinstance(outage_matches, int) else None
    n_outages = len(outages) if outages is not None else outage_matches
    if n_outages > 0:
        weight = OUTAGE_WEIGHT + OUTAGE_EXTRA_WEIGHT * (n_outages - 1)
        if outages is not None:
            parts.append((f"matches active outage {_quoted(o.title for o in outages)}", weight))
        else:
            parts.append((f"matches {n_outages} active outage{'s' if n_outages > 1 else ''}", weight))

    if entities.error_codes:
        parts.append((f"error codes: {', '.join(entities.error_codes[:3])}", ERROR_CODE_WEIGHT))
    if (amount := _big_amount(entities)) is not None:
        parts.append((f"amount {amount} at or above the threshold", AMOUNT_WEIGHT))

    score = round(sum(weight for _, weight in parts), 2)
    level, margin = _level(score)
    reasons = [f"{label} ({_signed(weight)})" for label, weight in parts]
    if negated_urgency or negated_impact:
        reasons.append(f"negated, not counted: {_quoted(negated_urgency + negated_impact)}")
    if not parts:
        reasons.append("no urgency or impact signals: an ordinary request")
    return PriorityScore(level=level, score=score, reasons=tuple(reasons), margin=round(margin, 2))


# --- outages ------------------------------------------------------------------------------


def _phrase_re(phrase: str) -> re.Pattern | None:
    words = phrase.split()
    if not words:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(word) for word in words) + r"(?!\w)", re.IGNORECASE)


def outage_matches(text: str, outages: Sequence[OutageLike]) -> list[OutageLike]:
    """The outages any of whose keywords (whole words or phrases, any case) appear in the text."""
    matched = []
    for outage in outages:
        patterns = [p for p in (_phrase_re(keyword) for keyword in outage.keywords) if p is not None]
        if any(p.search(text) for p in patterns):
            matched.append(outage)
    return matched
