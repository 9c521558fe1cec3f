"""Login with a failed-login throttle per username and client address (review.services)."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from review import services


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class ThrottledAuthenticationForm(AuthenticationForm):
    throttled = False

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if services.login_locked(username=username, address=address):
            self.throttled = True
            minutes = settings.CSAI_LOGIN_FAILURES[1] // 60
            raise ValidationError(
                f"Too many failed logins for this account from your address. Try again in up to "
                f"{minutes} minutes, or ask an admin to reset your password.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            services.login_failure_record(username=username, address=address)
            raise
        services.login_failures_clear(username=username, address=address)
        return cleaned


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response
