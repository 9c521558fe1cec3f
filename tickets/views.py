"""The customer's "Yes, this solved my problem" page: public, no login — the signed link in a
reply is the permission (tickets.links).

GET asks, POST resolves: mail scanners that open every link in a mail must not resolve
tickets by looking at them."""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tickets import conversation, links
from tickets.models import Message


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def resolution_confirm(request, token: str):
    message_id = links.CONFIRM.pk_from(token)
    reply = (
        Message.objects.select_related("ticket")
        .filter(pk=message_id, kind=Message.Kind.EXTERNAL)
        .exclude(sender_kind=Message.SenderKind.CUSTOMER)
        .first()
        if message_id
        else None
    )
    if reply is None:
        return render(request, "tickets/confirm_refused.html", status=404)
    outcome = ""
    if request.method == "POST":
        outcome = conversation.ticket_confirm_solved(message_id=reply.pk)
    elif reply.ticket.status in conversation.CLOSED:
        outcome = "already"
    return render(
        request, "tickets/confirm.html", {"reply": reply, "ticket": reply.ticket, "outcome": outcome}
    )
