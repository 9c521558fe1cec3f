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
from django.http import HttpResponse
from django.shortcuts import redirect, render
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
from tickets.selectors import get_ticket_for_user

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
        context = {"form": form, "items": []}
        return page_or_partial(request, "review/queue.html", "queue-table", context, status=400)
    page = form.cleaned_data["page"] or 1
    items, has_next = selectors.queue_page(filters=form.filters(), page=page)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "items": items,
        "page": page,
        "has_next": has_next,
        "query": query.urlencode(),
        "counts": selectors.queue_counts(),
        "user_id": request.user.pk,
        "now": timezone.now(),
    }
    return page_or_partial(request, "review/queue.html", "queue-table", context)


@console_view()
def queue_counts(request):
    return render(request, "review/queue.html#queue-counts", {"counts": selectors.queue_counts()})


# --- one item ------------------------------------------------------------------------------


def _workspace(request, item: ReviewItem, *, notice: str = "") -> dict:
    """Everything the item page shows; claims the item when it is still waiting."""
    claim_error = ""
    if item.status == ReviewItem.Status.PENDING:
        try:
            item = services.review_item_claim(item=item, user=request.user)
        except ApplicationError as error:
            claim_error = error.message
    ticket = item.ticket
    return {
        "item": item,
        "ticket": ticket,
        "decision": item.decision,
        "timeline": selectors.ticket_timeline(ticket=ticket),
        "recent": selectors.customer_recent_tickets(ticket=ticket),
        "kind": decision_types.get(item.decision_type),
        "paths": EscalationPath.values,
        "held": item.status == ReviewItem.Status.PENDING and item.claimed_by_id == request.user.pk,
        "claim_error": claim_error,
        "notice": notice,
    }


@console_view()
def item_detail(request, item_id: int):
    item = selectors.get_review_item_for_user(request.user, item_id)
    response = page_or_partial(request, "review/item.html", "workspace", _workspace(request, item))
    if request.htmx:  # also when htmx followed a redirect from item_step: the item's own address
        response["HX-Push-Url"] = reverse("review-item", args=[item.pk])
    return response


@console_view()
def item_step(request, item_id: int, direction: str):
    """The next or previous item around this one in queue order (worked out only when asked,
    so an item page never pays for it); the queue when there is none."""
    item = selectors.get_review_item_for_user(request.user, item_id)
    previous_id, next_id = selectors.queue_neighbours(item=item, user=request.user)
    target = next_id if direction == "next" else previous_id
    if target:
        return redirect("review-item", item_id=target)
    return HttpResponseClientRedirect(reverse("review-queue")) if request.htmx else redirect("review-queue")


def _after_action(request, item: ReviewItem, *, move_on: bool, notice: str) -> HttpResponse:
    """The next item (or the same one), swapped in by htmx with its address pushed; without
    htmx, a redirect there."""
    next_id = item.pk
    if move_on:
        item.refresh_from_db(fields=["status"])
        after = item if item.status == ReviewItem.Status.PENDING else None  # escalated: the one after it
        next_id = selectors.next_item_id(user=request.user, after=after)
    url = reverse("review-item", args=[next_id]) if next_id else reverse("review-queue")
    if not request.htmx:
        return redirect(url)
    if next_id is None:
        response = HttpResponseClientRedirect(url)
    else:
        target = selectors.get_review_item_for_user(request.user, next_id)
        response = render(request, "review/item.html#workspace", _workspace(request, target, notice=notice))
        response["HX-Push-Url"] = url
    response["HX-Trigger"] = DECIDED_EVENT
    return response


@console_view(methods=("POST",))
def item_decide(request, item_id: int):
    item = selectors.get_review_item_for_user(request.user, item_id)
    label = request.POST.get("label", "")
    outcome = controller.review_item_answer(
        item=item, actor=request.user, label=label, reply=request.POST.get("reply")
    )
    return _after_action(request, item, move_on=True, notice=f"Saved: {outcome} ({label}).")


@console_view(methods=("POST",))
def item_escalate(request, item_id: int):
    item = selectors.get_review_item_for_user(request.user, item_id)
    path = request.POST.get("path", "urgent")
    services.review_escalate(item=item, user=request.user, path=path, note=request.POST.get("note", ""))
    return _after_action(request, item, move_on=True, notice=f"Ticket #{item.ticket_id} escalated ({path}).")


@console_view(methods=("POST",))
def item_request_info(request, item_id: int):
    item = selectors.get_review_item_for_user(request.user, item_id)
    services.review_request_info(item=item, user=request.user, text=request.POST.get("text", ""))
    return _after_action(request, item, move_on=False, notice="Asked the customer for more information.")


@console_view(methods=("POST",))
def item_note(request, item_id: int):
    item = selectors.get_review_item_for_user(request.user, item_id)
    services.note_add(ticket=item.ticket, user=request.user, text=request.POST.get("text", ""))
    return _after_action(request, item, move_on=False, notice="Note added.")


@console_view(methods=("POST",))
def item_release(request, item_id: int):
    item = selectors.get_review_item_for_user(request.user, item_id)
    services.review_item_release(item=item, user=request.user)
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


@console_view(methods=("POST",), permission=CHANGE_TICKET)
def ticket_reopen(request, ticket_id: int):
    ticket = get_ticket_for_user(request.user, ticket_id)
    services.ticket_reopen_by(ticket=ticket, user=request.user)
    return _ticket_changed(request, ticket, "Ticket reopened.")


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
