"""The review console: thin views over review.selectors (reads) and review.services (writes).

Every view goes through ``console_view``: allowed methods (405), login (a redirect, or 401
with HX-Redirect for htmx), the role's permission (403), and business errors
(``ApplicationError``) shown as a message with their status. With ``request.htmx`` a view
returns the named partial of its page instead of the whole page.
"""

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from agents import decision_types
from agents.models import EscalationPath
from autonomy.models import ReviewItem
from autonomy.services import controller
from csai.errors import ApplicationError
from review import forms, selectors, services
from review.roles import CHANGE_TICKET, WORK_QUEUE
from tickets.selectors import get_ticket_for_user, message_mail_file

DECIDED_EVENT = "review-decided"


def console_view(*, methods=("GET",), permission: str = WORK_QUEUE):
    # HEAD wherever GET: the same answer without its body (link checkers, monitors).
    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorate(view):
        @require_http_methods(allowed)
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if request.htmx:
                    response = HttpResponse(status=401)
                    back = request.htmx.current_url_abs_path or request.get_full_path()
                    response["HX-Redirect"] = f"{settings.LOGIN_URL}?{urlencode({'next': back})}"
                    return response
                return redirect_to_login(request.get_full_path())
            try:
                if not request.user.has_perm(permission):
                    raise PermissionDenied
                return view(request, *args, **kwargs)
            except ApplicationError as error:
                return _refusal(request, error.message, error.status_code)
            except PermissionDenied:
                if not request.htmx:
                    raise  # the site's 403 page
                return _refusal(request, "Your role does not include this action.", 403)

        return wrapper

    return decorate


def _refusal(request, message: str, status: int) -> HttpResponse:
    """A business refusal as a message; htmx shows it in #flash, whatever the request targeted.
    Without htmx (a plain form post) the message comes in the site's layout, with a way back."""
    if not request.htmx:
        back = request.headers.get("Referer", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = ""
        context = {"message": message, "back": back}
        return render(request, "review/refused.html", context, status=status)
    response = render(request, "review/_error.html", {"message": message}, status=status)
    response["HX-Retarget"], response["HX-Reswap"] = "#flash", "innerHTML"
    return response


def page_or_partial(request, template: str, partial: str, context: dict, **kwargs) -> HttpResponse:
    """The whole page, or for htmx the page's named partial."""
    return render(request, f"{template}#{partial}" if request.htmx else template, context, **kwargs)


# --- the queue -----------------------------------------------------------------------------


@console_view()
def queue(request):
    form = forms.QueueFilterForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "rows": []}
        return page_or_partial(request, "review/queue.html", "queue-table", context, status=400)
    page = form.cleaned_data["page"] or 1
    now = timezone.now()
    rows, has_next = selectors.queue_page(filters=form.filters(), page=page, user=request.user, now=now)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "rows": rows,
        "page": page,
        "has_next": has_next,
        "query": query.urlencode(),
        "counts": selectors.queue_counts(),
        "now": now,
    }
    return page_or_partial(request, "review/queue.html", "queue-table", context)


@console_view()
def queue_counts(request):
    return render(request, "review/queue.html#queue-counts", {"counts": selectors.queue_counts()})


# --- one ticket's review ---------------------------------------------------------------------


def _workspace(request, ticket, *, notice: str = "") -> dict:
    """Everything the review page shows; claims the ticket while something on it waits."""
    pending = selectors.review_pending(ticket=ticket)
    claim_error = ""
    if pending:
        try:
            services.ticket_review_claim(ticket=ticket, user=request.user)
            pending = selectors.review_pending(ticket=ticket)
        except ApplicationError as error:
            claim_error = error.message
    held = bool(pending) and all(item.claimed_by_id == request.user.pk for item in pending)
    return {
        "ticket": ticket,
        "pending": [(item, decision_types.get(item.decision_type)) for item in pending],
        "revealed": [
            (item, decision_types.get(item.decision_type))
            for item in selectors.review_revealed(ticket=ticket, user=request.user)
        ],
        "claimed_until": min((item.claimed_until for item in pending if item.claimed_until), default=None),
        "timeline": selectors.ticket_timeline(ticket=ticket),
        "recent": selectors.customer_recent_tickets(ticket=ticket),
        "paths": EscalationPath.choices,
        "held": held,
        "claim_error": claim_error,
        "notice": notice,
        "can_reassign": request.user.has_perm(CHANGE_TICKET),
    }


def _review_page(request, ticket, *, notice: str = "", status: int = 200) -> HttpResponse:
    context = _workspace(request, ticket, notice=notice)
    response = page_or_partial(request, "review/item.html", "workspace", context, status=status)
    if request.htmx:
        response["HX-Push-Url"] = reverse("review-ticket", args=[ticket.pk])
    return response


@console_view()
def review_ticket(request, ticket_id: int):
    return _review_page(request, selectors.get_review_ticket_for_user(request.user, ticket_id))


@console_view()
def item_detail(request, item_id: int):
    """An item's old address: its ticket's review."""
    item = selectors.get_review_item_for_user(request.user, item_id)
    return redirect("review-ticket", ticket_id=item.ticket_id)


@console_view()
def review_step(request, ticket_id: int, direction: str):
    """The next or previous ticket around this one in queue order (worked out only when asked,
    so a review page never pays for it); the queue when there is none."""
    ticket = selectors.get_review_ticket_for_user(request.user, ticket_id)
    previous_id, next_id = selectors.queue_neighbours(ticket=ticket, user=request.user)
    target = next_id if direction == "next" else previous_id
    if target:
        return redirect("review-ticket", ticket_id=target)
    return HttpResponseClientRedirect(reverse("review-queue")) if request.htmx else redirect("review-queue")


@console_view()
def review_next(request):
    """The ticket to review now: the top of the queue among those nobody else holds."""
    next_id = selectors.next_ticket_id(user=request.user)
    return redirect("review-ticket", ticket_id=next_id) if next_id else redirect("review-queue")


def _after_action(request, ticket, *, move_on: bool, notice: str) -> HttpResponse:
    """The next ticket (or the same one), swapped in by htmx with its address pushed; without
    htmx, a redirect there."""
    next_id = ticket.pk
    if move_on:
        next_id = selectors.next_ticket_id(user=request.user, after=ticket)
    url = reverse("review-ticket", args=[next_id]) if next_id else reverse("review-queue")
    if not request.htmx:
        return redirect(url)
    if next_id is None:
        response = HttpResponseClientRedirect(url)
    else:
        response = _review_page(
            request, selectors.get_review_ticket_for_user(request.user, next_id), notice=notice
        )
    response["HX-Trigger"] = DECIDED_EVENT
    return response


def _answers(post) -> dict[int, controller.Answer]:
    """The one-pass form: ``answer-<item id>`` (a label; for a drafted text ``draft``,
    ``edited`` or ``not_sent``) and ``reply-<item id>`` (the text to send)."""
    answers = {}
    for key, value in post.items():
        prefix, _, item_id = key.partition("-")
        if prefix == "answer" and item_id.isdigit() and value:
            answers[int(item_id)] = controller.Answer(label=value, reply=post.get(f"reply-{item_id}"))
    return answers


@console_view(methods=("POST",))
def review_answer(request, ticket_id: int):
    """Every pending decision of the ticket answered in one pass."""
    ticket = selectors.get_review_ticket_for_user(request.user, ticket_id)
    outcomes = controller.ticket_review_answer(
        ticket=ticket, actor=request.user, answers=_answers(request.POST)
    )
    confirmed = sum(outcome == ReviewItem.Outcome.CONFIRMED for outcome in outcomes.values())
    notice = f"Saved {len(outcomes)} answers on #{ticket.pk}: {confirmed} agreed with the AI."
    if selectors.review_revealed(ticket=ticket, user=request.user):
        return _after_action(request, ticket, move_on=False, notice=notice)  # phase 1: see what the AI said
    return _after_action(request, ticket, move_on=True, notice=notice)


@console_view(methods=("POST",))
def item_rate(request, item_id: int):
    """Rate a drafted text that was hidden while the reviewer answered (phase 1)."""
    item = selectors.get_review_item_for_user(request.user, item_id)
    controller.draft_rate(item=item, actor=request.user, rating=request.POST.get("rating", ""))
    return _after_action(request, item.ticket, move_on=False, notice="Thanks: the draft is rated.")


@console_view(methods=("POST",))
def review_escalate(request, ticket_id: int):
    ticket = selectors.get_review_ticket_for_user(request.user, ticket_id)
    path = request.POST.get("path", EscalationPath.URGENT)
    services.ticket_escalate_by(
        ticket=ticket, user=request.user, path=path, note=request.POST.get("note", "")
    )
    return _after_action(request, ticket, move_on=True, notice=f"Ticket #{ticket.pk} escalated ({path}).")


@console_view(methods=("POST",))
def review_request_info(request, ticket_id: int):
    ticket = selectors.get_review_ticket_for_user(request.user, ticket_id)
    services.ticket_request_info_by(ticket=ticket, user=request.user, text=request.POST.get("text", ""))
    return _after_action(request, ticket, move_on=False, notice="Asked the customer for more information.")


@console_view(methods=("POST",))
def review_note(request, ticket_id: int):
    ticket = selectors.get_review_ticket_for_user(request.user, ticket_id)
    services.note_add(ticket=ticket, user=request.user, text=request.POST.get("text", ""))
    return _after_action(request, ticket, move_on=False, notice="Note added.")


@console_view(methods=("POST",))
def review_release(request, ticket_id: int):
    ticket = selectors.get_review_ticket_for_user(request.user, ticket_id)
    services.ticket_review_release(ticket=ticket, user=request.user)
    return (
        redirect("review-queue") if not request.htmx else HttpResponseClientRedirect(reverse("review-queue"))
    )


# --- tickets -------------------------------------------------------------------------------


@console_view(permission="tickets.view_ticket")
def ticket_search(request):
    q = request.GET.get("q", "")[:200]
    context = {"q": q, "tickets": selectors.ticket_search(q=q)}
    return page_or_partial(request, "review/tickets.html", "results", context)


def _ticket_context(request, ticket, **extra) -> dict:
    return {
        "ticket": ticket,
        "timeline": selectors.ticket_timeline(ticket=ticket),
        "recent": selectors.customer_recent_tickets(ticket=ticket),
        "items": ticket.review_items.filter(status=ReviewItem.Status.PENDING).order_by("created_at"),
        "reassign": forms.ReassignForm(initial={"team": ticket.team, "assignee": ticket.assignee_id}),
        **extra,
    }


@console_view(permission="tickets.view_ticket")
def ticket_detail(request, ticket_id: int):
    ticket = get_ticket_for_user(request.user, ticket_id)
    return page_or_partial(request, "review/ticket.html", "ticket-main", _ticket_context(request, ticket))


@console_view(permission="tickets.view_ticket")
def message_mail(request, ticket_id: int, message_id: int):
    """The mail a reply went out as, from `make run`'s SMTP sink: shown as text (headers,
    plain and HTML parts); saved, it is an .eml file any mail program opens."""
    ticket = get_ticket_for_user(request.user, ticket_id)
    message = get_object_or_404(ticket.messages, pk=message_id)
    path = message_mail_file(message=message)
    if path is None:
        raise Http404("No copy of this mail was kept.")
    response = FileResponse(path.open("rb"), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{path.name}"'
    return response


# What a person does with a ticket: ``services`` function and what the page then says.
LIFECYCLE = {
    "resolve": (services.ticket_resolve_by, "Ticket resolved."),
    "close": (services.ticket_close_by, "Ticket closed."),
    "reopen": (services.ticket_reopen_by, "Ticket reopened."),
    "assign-to-me": (services.ticket_assign_to_me, "The ticket is yours now."),
    "release": (services.ticket_release_by, "Released: the AI may answer on its own again."),
}


@console_view(methods=("POST",))
def ticket_lifecycle(request, ticket_id: int, action: str):
    """Resolve, close, reopen or take a ticket, from its page or its review."""
    ticket = get_ticket_for_user(request.user, ticket_id)
    change, notice = LIFECYCLE[action]
    change(ticket=ticket, user=request.user)
    back = request.POST.get("next", "")
    if not request.htmx and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return _ticket_changed(request, ticket, notice)


@console_view(methods=("POST",))
def ticket_reply(request, ticket_id: int):
    """A person's reply to the customer from the ticket page."""
    ticket = get_ticket_for_user(request.user, ticket_id)
    services.ticket_reply_by(ticket=ticket, user=request.user, text=request.POST.get("text", ""))
    return _ticket_changed(request, ticket, "Reply written: its delivery shows on the timeline.")


@console_view(methods=("POST",), permission=CHANGE_TICKET)
def ticket_reassign(request, ticket_id: int):
    ticket = get_ticket_for_user(request.user, ticket_id)
    form = forms.ReassignForm(request.POST)
    if not form.is_valid():
        raise ApplicationError("Choose a team and a person from the lists.")
    services.ticket_reassign_by(ticket=ticket, user=request.user, **form.cleaned_data)
    return _ticket_changed(request, ticket, "Ticket reassigned.")


def _ticket_changed(request, ticket, notice: str) -> HttpResponse:
    if not request.htmx:
        return redirect("ticket-detail", ticket_id=ticket.pk)
    ticket = get_ticket_for_user(request.user, ticket.pk)
    return render(request, "review/ticket.html#ticket-main", _ticket_context(request, ticket, notice=notice))
