"""The team page: supervisors add people, set their role, deactivate and reactivate them,
reset a password, issue and revoke API tokens — in the product, not the Django admin.

Thin views over review.team_selectors (reads) and review.team_services (writes), guarded by
``console_view`` with ``review.manage_team``. Every action answers with the page's
``team-main`` partial for htmx; without htmx, with a redirect to the page and a message.
What can't be undone quietly (deactivating, a new password, replacing or revoking a token)
first asks for a confirmation, whose button posts the same with ``confirm=1``.

A generated password or a new token is shown in the answer to the request that made it, and
never again: that answer is rendered, not redirected to (a message would carry the secret in
a cookie), and is marked ``Cache-Control: no-store``.
"""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers

from review import forms, team_selectors, team_services
from review.roles import MANAGE_TEAM, TEAM_ROLES
from review.views import console_view, page_or_partial


def _page(request, *, form=None, notice="", secret=None, confirm=None, status=200) -> HttpResponse:
    context = {
        "members": team_selectors.team_members(),
        "form": form or forms.PersonAddForm(),
        "roles": TEAM_ROLES,
        "notice": notice,
        "secret": secret,
        "confirm": confirm,
        "prefix_length": team_selectors.TOKEN_PREFIX_LENGTH,
    }
    response = page_or_partial(request, "supervisor/team.html", "team-main", context, status=status)
    if secret:
        add_never_cache_headers(response)
    return response


def _done(request, notice: str, *, secret: dict | None = None) -> HttpResponse:
    if request.htmx or secret:
        return _page(request, notice=notice, secret=secret)
    messages.success(request, notice)
    return redirect("supervisor-team")


def _confirmed(request, person, *, what: str, yourself: bool = False, question: str, button: str, detail=""):
    """None once confirmed; else the confirmation to show (after the same refusals as the action)."""
    team_services.person_check(actor=request.user, person=person, what=what, yourself=yourself)
    if request.POST.get("confirm") == "1":
        return None
    confirm = {"question": question, "detail": detail, "button": button, "action": request.path}
    return _page(request, confirm=confirm)


@console_view(permission=MANAGE_TEAM)
def team_page(request):
    return _page(request)


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def person_add(request):
    form = forms.PersonAddForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    person, generated = team_services.person_add(actor=request.user, **form.cleaned_data)
    name = person.get_username()
    notice = f"Added {name} as {TEAM_ROLES[form.cleaned_data['role']].lower()}."
    secret = {"kind": "password", "username": name, "value": generated} if generated else None
    return _done(request, notice, secret=secret)


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def person_role(request, user_id: int):
    person = team_selectors.get_member_user(user_id)
    role = request.POST.get("role", "")
    changed = team_services.person_role_set(actor=request.user, person=person, role=role)
    label = TEAM_ROLES[role].lower()
    notice = f"{person.get_username()} is {'now' if changed else 'already'} a {label}."
    return _done(request, notice)


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def person_deactivate(request, user_id: int):
    person = team_selectors.get_member_user(user_id)
    name = person.get_username()
    asking = _confirmed(
        request, person, what="deactivate", question=f"Deactivate {name}?", button="Deactivate",
        detail=f"{name} can no longer log in, is logged out and their API token is revoked. "
        "You can reactivate them later; a new token must then be issued.",
    )  # fmt: skip
    if asking:
        return asking
    team_services.person_deactivate(actor=request.user, person=person)
    return _done(request, f"Deactivated {name}.")


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def person_reactivate(request, user_id: int):
    person = team_selectors.get_member_user(user_id)
    team_services.person_reactivate(actor=request.user, person=person)
    return _done(request, f"Reactivated {person.get_username()}: they can log in with their password.")


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def person_password(request, user_id: int):
    person = team_selectors.get_member_user(user_id)
    name = person.get_username()
    asking = _confirmed(
        request, person, what="reset the password of", question=f"Reset the password of {name}?",
        button="Reset password", detail="Their current password stops working and they are logged out.",
    )  # fmt: skip
    if asking:
        return asking
    password = team_services.person_password_reset(actor=request.user, person=person)
    secret = {"kind": "password", "username": name, "value": password}
    return _done(request, f"New password for {name}.", secret=secret)


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def token_issue(request, user_id: int):
    person = team_selectors.get_member_user(user_id)
    name = person.get_username()
    if hasattr(person, "auth_token"):
        asking = _confirmed(
            request, person, what="issue a token for", yourself=True, button="Replace token",
            question=f"Replace the API token of {name}?",
            detail=f"The token {person.auth_token.key[: team_selectors.TOKEN_PREFIX_LENGTH]}… stops working "
            "at once: integrations using it must get the new one.",
        )  # fmt: skip
        if asking:
            return asking
    key = team_services.api_token_issue(actor=request.user, person=person)
    secret = {"kind": "token", "username": name, "value": key}
    return _done(request, f"Issued an API token for {name}.", secret=secret)


@console_view(methods=("POST",), permission=MANAGE_TEAM)
def token_revoke(request, user_id: int):
    person = team_selectors.get_member_user(user_id)
    name = person.get_username()
    asking = _confirmed(
        request, person, what="revoke a token of", yourself=True, button="Revoke token",
        question=f"Revoke the API token of {name}?",
        detail="Integrations using it get 401 from then on.",
    )  # fmt: skip
    if asking:
        return asking
    revoked = team_services.api_token_revoke(actor=request.user, person=person)
    return _done(request, f"Revoked the API token of {name}." if revoked else f"{name} had no API token.")
