"""Realistic demo support tickets, deterministic for a seed.

``generate_tickets`` and ``iter_tickets`` return webhook payloads in exactly the
``WebhookTicketSerializer`` shape. The category and priority the text was written for are
in ``metadata["demo_truth"]`` so an evaluation can score the classifier against them;
agents must never read that key.

The customer pool does not depend on the seed: the same people and companies come back in
every batch and every run, so customers build up a ticket history. All email addresses and
URLs use the reserved ``.example`` / ``example.com`` names, so nothing can reach a real
person.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import islice

from tickets.models import Category, Channel, Priority, Tier

CRITICAL, HIGH, MEDIUM, LOW = Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW

# --- customers ----------------------------------------------------------------------------

_POOL_SEED = 20240611

_COMPANIES = [
    ("Harborlight Logistics", "harborlight.example", Tier.PREMIUM),
    ("Brightwave Analytics", "brightwave.example", Tier.PREMIUM),
    ("Summit Ridge Insurance", "summitridge.example", Tier.PREMIUM),
    ("Kestrel Robotics", "kestrel-robotics.example", Tier.STANDARD),
    ("Copperleaf Dental Group", "copperleafdental.example", Tier.STANDARD),
    ("Northfield Outdoor Supply", "northfield-outdoor.example", Tier.STANDARD),
    ("Orchard & Vine Events", "orchardvine.example", Tier.STANDARD),
    ("Mapleton City Library", "mapleton-library.example", Tier.BASIC),
    ("Tidewater Coffee Roasters", "tidewatercoffee.example", Tier.BASIC),
]
_FIRST_NAMES = [
    "Maria", "James", "Aisha", "Tomasz", "Priya", "Daniel", "Chen", "Sofia", "Kwame", "Laura",
    "Mateo", "Hannah", "Yuki", "Oliver", "Fatima", "Lucas", "Ingrid", "Samuel", "Nadia", "Ethan",
    "Elena", "Ravi", "Grace", "Jonas", "Amara", "Connor", "Leila", "Marcus", "Zoe", "Viktor",
]  # fmt: skip
_LAST_NAMES = [
    "Okafor", "Lindqvist", "Patel", "Nowak", "Garcia", "Brennan", "Wei", "Rossi", "Mensah",
    "Fischer", "Alvarez", "Kim", "Tanaka", "Hughes", "Haddad", "Moreau", "Berg", "Adeyemi",
    "Novak", "Walsh", "Costa", "Iyer", "Murphy", "Schmidt", "Diallo", "Reyes", "Sato", "Quinn",
]  # fmt: skip
_TITLES = [
    "Operations Manager", "IT Administrator", "Head of Finance", "Office Manager", "CTO",
    "Customer Success Lead", "Accountant", "Founder", "Product Manager", "Support Lead",
]  # fmt: skip
_PERSONAL_DOMAINS = ["mail.example", "inbox.example", "post.example"]


@dataclass(frozen=True)
class _Customer:
    external_id: str
    name: str
    email: str
    company: str
    tier: str
    account: str  # the customer's account number, quoted in their tickets
    domain: str
    title: str

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def payload(self) -> dict:
        return {
            "external_id": self.external_id,
            "name": self.name,
            "email": self.email,
            "company": self.company,
            "tier": self.tier,
        }


@cache
def _customer_pool() -> tuple[_Customer, ...]:
    rng = random.Random(_POOL_SEED)
    firsts = rng.sample(_FIRST_NAMES, k=len(_FIRST_NAMES))
    lasts = rng.sample(_LAST_NAMES, k=len(_LAST_NAMES))
    people = [(first, lasts[i % len(lasts)]) for i, first in enumerate(firsts)]
    customers: list[_Customer] = []

    def add(name: tuple[str, str], company: str, domain: str, tier: str, account: str) -> None:
        first, last = name
        local = f"{first}.{last}" if company else f"{first}{last[0]}{rng.randint(1, 99)}"
        customers.append(
            _Customer(
                external_id=f"demo-cust-{len(customers) + 1:03d}",
                name=f"{first} {last}",
                email=f"{local.lower()}@{domain}",
                company=company,
                tier=str(tier),
                account=account,
                domain=domain,
                title=rng.choice(_TITLES),
            )
        )

    for company, domain, tier in _COMPANIES:
        account = f"ACC-{rng.randint(100000, 999999)}"  # contacts of one company share it
        for _ in range(rng.randint(2, 3)):
            add(people.pop(), company, domain, tier, account)
    while people:  # individuals and freelancers
        tier = rng.choices([Tier.STANDARD, Tier.BASIC, Tier.PREMIUM], weights=[4, 5, 1])[0]
        add(people.pop(), "", rng.choice(_PERSONAL_DOMAINS), tier, f"ACC-{rng.randint(100000, 999999)}")
    return tuple(customers)


@cache
def _customer_weights() -> list[float]:
    """A few customers write far more often than the rest, as in real life."""
    ranks = list(range(len(_customer_pool())))
    random.Random(_POOL_SEED).shuffle(ranks)
    return [1 / (rank + 1) ** 0.6 for rank in ranks]


def customer_pool() -> list[dict]:
    """The demo customers (webhook ``customer`` objects), the same for every seed."""
    return [customer.payload() for customer in _customer_pool()]


# --- ticket texts -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    priorities: tuple[str, ...]  # the priorities this story can plausibly have
    subject: str
    text: str  # first person, email register
    chat: str  # the same story typed into a chat window


_TEMPLATES: dict[str, list[_Template]] = {
    Category.TECHNICAL_ISSUE: [
        _Template(
            (CRITICAL, HIGH, MEDIUM),
            "Can't log in to the dashboard - {error}",
            "None of us have been able to sign in to the dashboard {when}. After entering the password the "
            'page spins for a while and then shows "{error}". We tried {browser} and cleared '
            "cookies, same result. Our account is {acc}.",
            "cant log in, getting {error} right after the password screen. tried {browser} too",
        ),
        _Template(
            (CRITICAL, HIGH, MEDIUM),
            "API returning {error} on /v2/orders",
            "Our integration has been getting {error} from https://api.example.com/v2/orders {when}. "
            "Roughly one call in three fails and retries only sometimes go through. Nothing changed "
            "on our side, our last deploy was a week ago.",
            "api calls to /v2/orders failing with {error} {when}. acct {acc}",
        ),
        _Template(
            (CRITICAL, HIGH, MEDIUM),
            "Inventory sync stuck",
            'The inventory sync has been stuck {when}. The status page says "last synced 3h ago" '
            "and the sync log shows {error}. Order {order} was sold twice because the stock level "
            "never updated.",
            "sync is stuck again?? log says {error}. order {order} got oversold",
        ),
        _Template(
            (HIGH, MEDIUM, LOW),
            "Order confirmation emails not arriving",
            "Our customers have not been receiving order confirmation emails {when}. We checked spam "
            "folders, nothing there. Example: order {order}, the buyer ({other_email}) never got "
            "anything. Is there a problem with outgoing mail?",
            "confirmation emails arent going out {when}, e.g. order {order}",
        ),
        _Template(
            (HIGH, MEDIUM, LOW),
            "Reports page extremely slow",
            "The reports page now takes over a minute to load and often ends with {error}. It used "
            "to open instantly. This happens on {browser} and for my colleagues as well.",
            "reports page takes forever then {error}. anyone else seeing this?",
        ),
    ],
    Category.BILLING_INQUIRY: [
        _Template(
            (HIGH, MEDIUM, LOW),
            "Charged twice for invoice {invoice}",
            "We were charged {amount} twice this month for invoice {invoice} on account {acc}. Our "
            "card statement shows two identical transactions on the same day. Please look into the "
            "duplicate charge.",
            "why was I charged {amount} twice?? invoice {invoice}, acct {acc}",
        ),
        _Template(
            (CRITICAL, HIGH, MEDIUM),
            "Payment failed with {error} - account suspension warning",
            "Our renewal payment failed with {error} although the card is valid and has funds. The "
            "banner in the app says account {acc} will be suspended. Can you retry the charge or "
            "tell us what is wrong?",
            "payment keeps failing with {error} and now it says our account will be suspended",
        ),
        _Template(
            (MEDIUM, LOW),
            "Question about invoice {invoice}",
            "Invoice {invoice} shows {amount}, but our plan ({plan}, {seats} seats) should come to "
            "{amount2}. Could someone explain the difference? Is there a proration I'm missing?",
            "question on invoice {invoice} - {amount} looks wrong, we're on {plan}",
        ),
        _Template(
            (MEDIUM, LOW),
            "VAT number missing on invoices",
            "Could you add our VAT number to future invoices and reissue {invoice} ({amount})? Our "
            "finance team ({other_email}) cannot book it otherwise.",
            "need our VAT number on invoice {invoice} please, finance won't accept it",
        ),
        _Template(
            (HIGH, MEDIUM, LOW),
            "Billed after cancelling order {order}",
            "I cancelled order {order} within the trial period but was still billed {amount}. I'd "
            "like that charge reversed, please.",
            "cancelled {order} during the trial and still got billed {amount}",
        ),
    ],
    Category.FEATURE_REQUEST: [
        _Template(
            (MEDIUM, LOW),
            "Feature request: keep filters in CSV export",
            "It would be great if the CSV export kept the filters we set on the {area}. Right now "
            "we export everything and filter in a spreadsheet, which costs our team about an hour "
            "every week.",
            "would be nice if the export kept my filters",
        ),
        _Template(
            (MEDIUM, LOW),
            "Single sign-on with Okta?",
            "We are rolling out Okta across the company and would love SAML single sign-on for our "
            "{seats} users. Is this on your roadmap? It would make onboarding much easier.",
            "is SSO (okta / saml) on the roadmap? we have {seats} users",
        ),
        _Template(
            (LOW,),
            "Dark mode for the {area}",
            "Several people on my team asked whether a dark mode for the {area} is planned. Our "
            "agents work late shifts and the bright screen is tiring.",
            "any plans for dark mode?",
        ),
        _Template(
            (MEDIUM, LOW),
            "Webhook event for refunds",
            "We'd like a webhook event when a refund is issued, similar to order.created. Today we "
            "poll https://api.example.com/v2/refunds every five minutes, which feels wasteful.",
            "feature idea: send a webhook when a refund is issued, polling is meh",
        ),
        _Template(
            (MEDIUM, LOW),
            "More than 5 custom fields",
            "The limit of 5 custom fields per record is too low for us. We would happily move to "
            "{plan} if it included more. Account {acc}.",
            "can we get more than 5 custom fields? would upgrade to {plan} for that",
        ),
    ],
    Category.BUG_REPORT: [
        _Template(
            (HIGH, MEDIUM, LOW),
            "Totals don't add up on the revenue report",
            "The totals on the revenue report are wrong: the daily rows add up to {amount} but the "
            "total line shows {amount2}. Steps: open Reports > Revenue, pick last month, group by "
            "day.",
            "revenue report total is {amount2} but rows add up to {amount}. bug?",
        ),
        _Template(
            (CRITICAL, HIGH, MEDIUM),
            "Save button does nothing ({error})",
            "When I edit a customer record and click Save, nothing happens and my changes are lost. "
            "The browser console shows {error}. I can reproduce it every time on {browser}.",
            "save button does nothing, console says {error}",
        ),
        _Template(
            (MEDIUM, LOW),
            "Dates shifted by one day in CSV export",
            "In the CSV export every date is one day earlier than in the app. Order {order} shows "
            "14 March in the app and 13 March in the file. Looks like a time zone issue.",
            "export dates are off by one day, see order {order}",
        ),
        _Template(
            (HIGH, MEDIUM),
            "Mobile app crashes when attaching a photo",
            "The app ({browser}) closes as soon as I attach a photo. Error {error} flashes right "
            "before it crashes. It worked fine before last week's update.",
            "app crashes when i attach a photo, saw {error} for a second",
        ),
        _Template(
            (HIGH, MEDIUM, LOW),
            "Every notification arrives twice",
            "Since the last update every notification arrives twice, in the app and by email to "
            "{email}. This happens for all users on account {acc}.",
            "getting every notification twice since the update. acct {acc}",
        ),
    ],
    Category.ACCOUNT_MANAGEMENT: [
        _Template(
            (CRITICAL, HIGH),
            "Locked out after changing phone (2FA)",
            "I changed my phone and now I can't get past two-factor authentication. My login is "
            "{email}, account {acc}. I'm the only admin, so nobody else can reset it.",
            "locked out, 2fa codes go to my old phone. acct {acc}",
        ),
        _Template(
            (CRITICAL, HIGH, MEDIUM),
            "Remove access for a former employee",
            "One of our admins left the company last Friday. Please remove their access and "
            "transfer ownership of account {acc} to {other_email}.",
            "pls remove access for an ex-employee and make {other_email} the owner",
        ),
        _Template(
            (MEDIUM, LOW),
            "Upgrade to {plan}",
            "We'd like to move to the {plan} plan with {seats} seats starting next month. What do "
            "I need to do? Account {acc}.",
            "how do I upgrade to {plan}? need {seats} seats",
        ),
        _Template(
            (MEDIUM, LOW),
            "Change the account email address",
            "Please change the primary email on account {acc} from {email} to {other_email}. Our "
            "domain is changing at the end of the month.",
            "need to change my login email to {other_email}",
        ),
        _Template(
            (MEDIUM, LOW),
            "Closing our account",
            "We are winding down the project and would like to close account {acc} at the end of "
            "the billing period. Please confirm what happens to our data.",
            "we want to close account {acc} end of month, what happens to our data?",
        ),
    ],
    Category.GENERAL_SUPPORT: [
        _Template(
            (MEDIUM, LOW),
            "How do I import contacts?",
            "Is there a way to import our existing contacts from a spreadsheet? I looked in the "
            "help center (https://help.example.com/import) but couldn't find it.",
            "hi, how do I import contacts from a spreadsheet?",
        ),
        _Template(
            (MEDIUM, LOW),
            "Support availability over the holidays",
            "Will your support team be available over the holidays? We have a big launch planned "
            "and want to know whom to contact if something comes up.",
            "are you open over the holidays? we have a launch coming",
        ),
        _Template(
            (MEDIUM, LOW),
            "Training for new team members",
            "We have {seats} new people starting next month. Do you offer onboarding sessions or "
            "recorded training we could use?",
            "do you have training for new users?",
        ),
        _Template(
            (MEDIUM, LOW),
            "Where are the API docs?",
            "Where can I find the documentation for the API? The link in the welcome email "
            "(https://docs.example.com/v1) seems to be outdated.",
            "where are the api docs? link in the welcome mail is dead",
        ),
        _Template(
            (MEDIUM, LOW),
            "Where is our data stored?",
            "Our legal team asks where customer data is stored (EU or US) and whether you have a "
            "data processing agreement we can sign. Please reply to {other_email} as well.",
            "quick q - is our data stored in the EU or US?",
        ),
    ],
}

# How often each category and, within it, each priority occurs.
_CATEGORY_WEIGHTS = {
    Category.TECHNICAL_ISSUE: 22,
    Category.BILLING_INQUIRY: 20,
    Category.FEATURE_REQUEST: 12,
    Category.BUG_REPORT: 16,
    Category.ACCOUNT_MANAGEMENT: 15,
    Category.GENERAL_SUPPORT: 15,
}
_PRIORITY_WEIGHTS = {CRITICAL: 1, HIGH: 3, MEDIUM: 4, LOW: 3}

# The urgency and impact wording that signals the priority.
_IMPACT = {
    CRITICAL: [
        "This is critical: our whole team of {users} is blocked and it is costing us money every "
        "hour. Please escalate immediately.",
        "URGENT - our own customers are affected right now. We need someone on this within the hour.",
        "This is an emergency for us, nothing works and our CEO is asking for updates every 15 "
        "minutes. Please call me back as soon as possible.",
    ],
    HIGH: [
        "This is blocking a good part of our team today, so we'd appreciate a quick response.",
        "We need this sorted before month-end close on Friday, please treat it as high priority.",
        "Several colleagues are affected and there is no workaround. Please look at it as soon as possible.",
    ],
    MEDIUM: [
        "Not blocking us, but we'd like to get it sorted soon.",
        "We'd appreciate an answer this week if possible.",
        "Could you look into it when you get a chance?",
    ],
    LOW: [
        "No rush at all, just wanted to flag it.",
        "Not urgent, whenever you have a moment.",
        "Low priority for us, but it would be nice to know.",
    ],
}
_CHAT_IMPACT = {
    CRITICAL: ["URGENT everything is down!!", "this is critical, whole team blocked", "need help NOW pls"],
    HIGH: ["pretty urgent pls", "this is blocking us today", "need this fixed asap"],
    MEDIUM: ["not blocking us but would be good to sort soon", "when you get a chance", ""],
    LOW: ["no rush", "not urgent", "just curious"],
}

_ERRORS = {
    Category.TECHNICAL_ISSUE: [
        "HTTP 503",
        "HTTP 502 Bad Gateway",
        "HTTP 504",
        "E1043",
        "ERR_SYNC_TIMEOUT_504",
        "ERR_AUTH_TOKEN_401",
    ],
    Category.BILLING_INQUIRY: ["ERR_PAYMENT_402", "ERR_CARD_DECLINED_051", "ERR_3DS_FAILED_403"],
    Category.BUG_REPORT: [
        "E2210",
        "E0917",
        "HTTP 500",
        "TypeError: Cannot read properties of undefined (reading 'id')",
    ],
}
_WHEN = [
    "since this morning",
    "since about 9:40 CET",
    "since yesterday evening",
    "since last night's maintenance",
    "since Monday",
    "since the update on Tuesday",
]
_BROWSERS = [
    "Chrome 126 on Windows 11",
    "Safari on macOS",
    "Firefox 128",
    "the iOS app v4.12.1",
    "the Android app v4.11.0",
]
_AREAS = ["dashboard", "reports page", "orders list", "mobile app", "customer list"]
_PLANS = ["Starter", "Growth", "Business", "Enterprise"]
_PLAN_PRICES = [49.0, 99.0, 149.0, 299.0, 499.0, 1299.0, 2388.0, 4999.0]

_GREETINGS = ["Hi,", "Hello,", "Hi team,", "Hello support,", "Dear Support Team,", "Hi there,"]
_OPENINGS = [
    "I hope you're well.",
    "Hope you can help with this.",
    "We've been customers for a few years and this is the first time I have to write in.",
    "Following up on what my colleague mentioned on the phone.",
]
_CLOSINGS = ["Thanks,", "Thanks in advance,", "Best regards,", "Kind regards,", "Cheers,", "Many thanks,"]
_CHAT_OPENERS = ["hi", "hello", "hey there", "hi, quick one", ""]


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _amount(rng: random.Random) -> float:
    if rng.random() < 0.5:
        return rng.choice(_PLAN_PRICES)
    return round(rng.uniform(19, 15000), 2)


def _context(rng: random.Random, *, customer: _Customer, category: str) -> dict:
    year = rng.choice([2024, 2024, 2025])
    amount = _amount(rng)
    other = rng.choice(["finance", "accounts", "it", "admin", "ops"])
    return {
        "acc": customer.account,
        "email": customer.email,
        "other_email": f"{other}@{customer.domain}",
        "order": f"ORD-{year}-{rng.randint(1, 999999):06d}",
        "invoice": f"INV-{year}-{rng.randint(1, 99999):05d}",
        "amount": _money(amount),
        "amount2": _money(round(amount * rng.choice([0.5, 0.8, 1.2, 2.0]), 2)),
        "error": rng.choice(_ERRORS.get(category, _ERRORS[Category.TECHNICAL_ISSUE])),
        "when": rng.choice(_WHEN),
        "browser": rng.choice(_BROWSERS),
        "area": rng.choice(_AREAS),
        "plan": rng.choice(_PLANS),
        "seats": rng.choice([5, 12, 25, 40, 80, 150]),
        "users": rng.choice([12, 25, 40, 80, 150, 300]),
    }


def _signature(rng: random.Random, customer: _Customer) -> str:
    lines = [customer.name]
    if customer.company:
        lines.append(f"{customer.title}, {customer.company}")
    if rng.random() < 0.5:
        lines.append(f"Account: {customer.account}")
    return "\n".join(lines)


def _email_body(rng: random.Random, *, customer: _Customer, text: str, impact: str) -> str:
    opening = rng.choice(_OPENINGS) + " " if rng.random() < 0.35 else ""
    return (
        f"{rng.choice(_GREETINGS)}\n\n{opening}{text}\n\n{impact}\n\n"
        f"{rng.choice(_CLOSINGS)}\n{_signature(rng, customer)}"
    )


def _chat_body(rng: random.Random, *, customer: _Customer, lines: list[str]) -> str:
    hour, minute = rng.randint(8, 19), rng.randint(0, 50)
    said = [line for line in lines if line]
    return "\n".join(
        f"[{hour}:{minute + i:02d}] {customer.first_name}: {line}" for i, line in enumerate(said)
    )


def _render(
    rng: random.Random, *, customer: _Customer, category: str, priority: str, channel: str
) -> tuple[str, str]:
    """(subject, body) in the style of the channel: email, chat transcript, call notes, ..."""
    template = rng.choice([t for t in _TEMPLATES[category] if priority in t.priorities])
    ctx = _context(rng, customer=customer, category=category)
    subject = template.subject.format(**ctx)
    text = template.text.format(**ctx)
    impact = rng.choice(_IMPACT[priority]).format(**ctx)
    chat_impact = rng.choice(_CHAT_IMPACT[priority])
    if channel == Channel.WEB_CHAT:
        opener = rng.choice(_CHAT_OPENERS)
        body = _chat_body(rng, customer=customer, lines=[opener, template.chat.format(**ctx), chat_impact])
        return f"Chat with {customer.name}", body
    if channel == Channel.SOCIAL:
        handle = customer.name.replace(" ", "_").lower()
        body = " ".join(part for part in ["@support", template.chat.format(**ctx), chat_impact] if part)
        return f"Message from @{handle}", body
    if channel == Channel.PHONE:
        company = f" ({customer.company})" if customer.company else ""
        body = (
            f"Call notes: {customer.name}{company} called in.\n"
            f'In the caller\'s words: "{text}"\n'
            f'Caller added: "{impact}"\n'
            f"Account on file: {customer.account}"
        )
        return f"Phone: {subject}", body
    if channel == Channel.API:
        body = f"{text}\n\n{impact}\n\n-- Submitted via customer portal by {customer.name} <{customer.email}>"
        return subject, body
    return subject, _email_body(rng, customer=customer, text=text, impact=impact)


def _choose(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ticket(rng: random.Random, *, seed: int, index: int, source: str) -> dict:
    customer = rng.choices(_customer_pool(), weights=_customer_weights())[0]
    category = _choose(rng, _CATEGORY_WEIGHTS)
    possible = {p for template in _TEMPLATES[category] for p in template.priorities}
    priority = _choose(rng, {p: w for p, w in _PRIORITY_WEIGHTS.items() if p in possible})
    channel = _choose(
        rng,
        {Channel.EMAIL: 40, Channel.WEB_CHAT: 28, Channel.PHONE: 10, Channel.API: 10, Channel.SOCIAL: 12},
    )
    subject, body = _render(rng, customer=customer, category=category, priority=priority, channel=channel)
    return {
        "source": source,
        "external_id": f"demo-{seed}-{index}",
        "subject": subject,
        "body": body,
        "channel": str(channel),
        "customer": customer.payload(),
        "metadata": {"demo_truth": {"category": str(category), "priority": str(priority)}},
    }


def iter_tickets(*, seed: int = 7, source: str = "demo") -> Iterator[dict]:
    """Endless webhook payloads; the same seed always yields the same sequence."""
    rng = random.Random(seed)
    index = 0
    while True:
        yield _ticket(rng, seed=seed, index=index, source=source)
        index += 1


def generate_tickets(*, count: int, seed: int = 7, source: str = "demo") -> list[dict]:
    """The first ``count`` payloads of ``iter_tickets`` for this seed."""
    return list(islice(iter_tickets(seed=seed, source=source), count))


# --- traffic: new tickets, and customers writing again -------------------------------------

FOLLOW_UP_SHARE = 0.25  # of the traffic, once a few tickets have been sent
_FOLLOW_UP_AFTER = 3  # tickets sent before anyone writes again
_RECENT = 20  # a follow-up continues one of the latest tickets of the run

_FOLLOW_UP_TEXTS = [
    "Thanks for the quick answer. I tried that, but it still happens this morning.",
    "That worked, thank you! One more question: does this also apply to our second workspace?",
    "Sorry, I should have added: it only happens for some of our users, not all of them.",
    "Any news on this? We are still blocked and our team is waiting.",
    "I checked again and the problem is back since yesterday evening.",
    "Thanks. Could you also send me the steps in writing so I can share them with my team?",
]
_CHAT_FOLLOW_UPS = ["still there?", "it's happening again", "ok thanks, that fixed it", "one more thing"]
_OUT_OF_OFFICE_TEXT = (
    "I am out of the office until {day} with limited access to email. For urgent matters please "
    "contact my colleagues.\n\n{name}"
)
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


@dataclass(frozen=True)
class FollowUp:
    """A customer writing again on a ticket of the same run. ``kind`` says how: an ``email``
    answer from their mail client (posted with mail headers, as an inbound-mail relay does), an
    ``auto_reply`` (an out-of-office mail, ``Auto-Submitted``), or a ``message`` on the
    ticket's own channel. ``headers`` are the mail's own; the sender adds ``In-Reply-To`` and
    ``References`` once it knows which of our mails the customer answers."""

    ticket: dict  # the ticket's webhook payload
    external_id: str
    kind: str
    content: str
    headers: dict[str, str]

    def payload(self, *, in_reply_to: str = "", references: list[str] | None = None) -> dict:
        """The messages webhook's body: by the ticket's id, or — for a mail answering one of
        ours — by its threading headers alone."""
        body = {"source": self.ticket["source"], "external_id": self.external_id, "content": self.content}
        headers = dict(self.headers)
        if in_reply_to:
            headers["In-Reply-To"] = in_reply_to
            headers["References"] = " ".join(references or [in_reply_to])
        else:
            body["ticket_external_id"] = self.ticket["external_id"]
        if headers:
            body["headers"] = headers
        return body


def _follow_up(rng: random.Random, ticket: dict, number: int) -> FollowUp:
    customer = ticket["customer"]
    external_id = f"{ticket['external_id']}-m{number}"
    if ticket["channel"] != Channel.EMAIL:
        content = rng.choice(_CHAT_FOLLOW_UPS if ticket["channel"] == Channel.WEB_CHAT else _FOLLOW_UP_TEXTS)
        return FollowUp(ticket, external_id, "message", content, {})
    domain = customer["email"].split("@")[-1]
    headers = {
        "Message-ID": f"<{external_id}@{domain}>",
        "From": f"{customer['name']} <{customer['email']}>",
        "Subject": f"Re: {ticket['subject']}",
    }
    if rng.random() < 0.15:
        headers |= {"Auto-Submitted": "auto-replied", "Subject": f"Out of office: Re: {ticket['subject']}"}
        content = _OUT_OF_OFFICE_TEXT.format(day=rng.choice(_DAYS), name=customer["name"])
        return FollowUp(ticket, external_id, "auto_reply", content, headers)
    first_name = customer["name"].split()[0]
    content = f"Hi,\n\n{rng.choice(_FOLLOW_UP_TEXTS)}\n\n{rng.choice(_CLOSINGS)}\n{first_name}"
    return FollowUp(ticket, external_id, "email", content, headers)


def iter_traffic(
    *, seed: int = 7, source: str = "demo", follow_up_share: float = FOLLOW_UP_SHARE
) -> Iterator[dict | FollowUp]:
    """Endless demo traffic: new tickets (webhook payloads, the same as ``iter_tickets`` for the
    seed) and now and then a ``FollowUp`` on one of the run's recent tickets. The same seed
    always yields the same sequence."""
    rng = random.Random(f"traffic-{seed}")
    tickets = iter_tickets(seed=seed, source=source)
    recent: list[dict] = []
    written: dict[str, int] = {}
    while True:
        if len(recent) >= _FOLLOW_UP_AFTER and rng.random() < follow_up_share:
            ticket = rng.choice(recent[-_RECENT:])
            written[ticket["external_id"]] = written.get(ticket["external_id"], 1) + 1
            yield _follow_up(rng, ticket, written[ticket["external_id"]])
        else:
            ticket = next(tickets)
            recent.append(ticket)
            yield ticket
