"""Signals other apps listen to, so ``tickets`` never imports them."""

from django.dispatch import Signal

# Sent after the intake transaction commits. Arguments: ticket_id, correlation_id.
ticket_received = Signal()

# Sent by the intake task once a ticket has entered triage (stage "classifier").
# The agents pipeline listens to this. Arguments: ticket_id.
ticket_ready_for_triage = Signal()

# Sent after a customer's follow-up (not an auto-reply) is stored: a new turn of the
# conversation for the agents. Arguments: ticket_id, message_id.
customer_wrote = Signal()

# Sent when a reply to the customer has been delivered (the SMTP server accepted it; on other
# channels, when it was written), inside the transaction that records it. Arguments:
# message (a Message of kind "external"), delivered_at.
reply_delivered = Signal()

# Sent when a ticket is resolved (ticket_resolve, or ticket_close of an unresolved ticket),
# inside the resolving transaction: what a receiver writes commits or rolls back with the
# resolution. Arguments: ticket (saved, with resolved_by / resolver set).
ticket_resolved = Signal()
