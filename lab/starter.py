"""A starter knowledge base and labeled history, so a fresh ``make run`` has agents that work.

The history comes from the demo ticket generator with a seed of its own; its answer key
(``demo_truth``) plays the part of the labels a team would import from its old helpdesk.
The agents themselves never read that key.
"""

from collections.abc import Iterator

from agents.models import KnowledgeArticle
from agents.services import HistoryRow
from lab.demo import iter_tickets
from tickets.models import Category

ARTICLE, TEMPLATE = KnowledgeArticle.Kind.ARTICLE, KnowledgeArticle.Kind.TEMPLATE

KNOWLEDGE = [
    (ARTICLE, Category.ACCOUNT_MANAGEMENT, "Reset your password or unlock your account",
     "If you cannot log in, use 'Forgot password' on the sign-in page. After five failed attempts the "
     "account locks for 15 minutes. Admins can unlock a user under Settings > Users > Unlock."),
    (ARTICLE, Category.ACCOUNT_MANAGEMENT, "Add, remove or change the role of users",
     "Admins add seats and users under Settings > Users. Removing a user frees the seat at once; "
     "ownership of the account can be transferred by the current owner under Settings > Account."),
    (ARTICLE, Category.BILLING_INQUIRY, "Understanding your invoice, proration and billing cycle",
     "Invoices are issued on the first day of the billing cycle. Adding seats mid-cycle is prorated, so "
     "an invoice can differ from the plan price. Each invoice lists seats, plan and prorated amounts."),
    (ARTICLE, Category.BILLING_INQUIRY, "Update your payment method after a declined card",
     "When a card payment is declined (ERR_PAYMENT_402, ERR_CARD_DECLINED_051) update the card under "
     "Billing > Payment method and retry the charge. 3-D Secure failures need the card holder to approve."),
    (ARTICLE, Category.TECHNICAL_ISSUE, "Fix sync timeouts and stalled integrations",
     "ERR_SYNC_TIMEOUT_504 means the integration took too long. Reconnect the integration under "
     "Settings > Integrations, reduce the sync window, and retry. Check the status page for incidents."),
    (ARTICLE, Category.TECHNICAL_ISSUE, "Troubleshoot sign-in errors, SSO and error E1043",
     "E1043 and ERR_AUTH_TOKEN_401 mean the session token was rejected. Clear cookies, sign in again, "
     "and if you use SSO ask your identity-provider admin to check the certificate has not expired."),
    (ARTICLE, Category.TECHNICAL_ISSUE, "Emails not arriving: order confirmations and notifications",
     "If confirmation or notification emails do not arrive, check the sender domain is verified under "
     "Settings > Email, look in spam, and check the email log for bounces."),
    (ARTICLE, Category.GENERAL_SUPPORT, "Export your data to CSV",
     "Any list can be exported under the ... menu > Export CSV. Dates are exported in UTC; set the time "
     "zone under Settings > Locale to export in local time."),
    (ARTICLE, Category.FEATURE_REQUEST, "How we handle feature requests",
     "Every request is logged on our public roadmap board where customers vote. Product reviews the "
     "board monthly and updates each request's status."),
    (ARTICLE, Category.BUG_REPORT, "Reporting a bug: what helps us fix it fast",
     "Tell us the steps to reproduce, what you expected, what happened, the browser and version, and any "
     "error message or console output. Screenshots help."),
    (TEMPLATE, Category.BILLING_INQUIRY, "Billing question received",
     "Hi {customer_name},\n\nThanks for contacting us about your invoice. We have located {references} and "
     "our billing team is reviewing the charges; you will hear back within one business day.\n\n"
     "Reference: {ticket_ref}"),
    (TEMPLATE, Category.FEATURE_REQUEST, "Feature request logged",
     "Hi {customer_name},\n\nThank you for the suggestion. We have added it to our roadmap board, where "
     "the product team reviews requests every month.\n\nReference: {ticket_ref}"),
    (TEMPLATE, Category.BUG_REPORT, "Bug report received",
     "Hi {customer_name},\n\nThanks for the detailed report. We are reproducing the problem now and will "
     "update you as soon as we know more.\n\nReference: {ticket_ref}"),
    (TEMPLATE, Category.TECHNICAL_ISSUE, "Technical issue under investigation",
     "Hi {customer_name},\n\nThanks for letting us know. Our technical team is investigating "
     "{references}; we will update you as soon as we have news.\n\nReference: {ticket_ref}"),
    (TEMPLATE, Category.ACCOUNT_MANAGEMENT, "Account change request received",
     "Hi {customer_name},\n\nWe have received your account request for {references}. For your security "
     "an account admin must confirm the change; we will guide you through it.\n\nReference: {ticket_ref}"),
    (TEMPLATE, Category.GENERAL_SUPPORT, "General question received",
     "Hi {customer_name},\n\nThanks for your question; we are on it and will get back to you shortly."
     "\n\nReference: {ticket_ref}"),
]  # fmt: skip

HISTORY_SEED = 20260101


def knowledge_load() -> int:
    """Create the starter articles and templates once; returns how many were created."""
    if KnowledgeArticle.objects.exists():
        return 0
    KnowledgeArticle.objects.bulk_create(
        KnowledgeArticle(kind=kind, category=category, title=title, body=body)
        for kind, category, title, body in KNOWLEDGE
    )
    return len(KNOWLEDGE)


def history_rows(*, count: int) -> Iterator[HistoryRow]:
    for number, payload in enumerate(iter_tickets(seed=HISTORY_SEED), start=1):
        if number > count:
            return
        truth = payload["metadata"]["demo_truth"]
        yield HistoryRow(
            external_id=f"history-{number}",
            subject=payload["subject"],
            body=payload["body"],
            labels={"category": truth["category"], "priority": truth["priority"]},
        )
