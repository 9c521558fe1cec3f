"""The one settings module. Every value comes from the environment (see .env.example).

With no ``DATABASE_URL`` / ``REDIS_URL`` the product uses its embedded PostgreSQL and
Redis under ``var/`` (``csai.embedded``), starting them if needed.
"""

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from csai import embedded
from csai.env import (
    env_bool,
    env_choice,
    env_durations,
    env_float,
    env_int,
    env_list,
    env_overrides,
    env_rate,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# pytest sets PYTEST_VERSION: tests get their own Redis database so a running `make run`
# on the same embedded Redis never sees their queues, and vice versa.
TESTING = "PYTEST_VERSION" in os.environ

DEBUG = env_bool("DEBUG", False)

# Local mode: no DATABASE_URL, so this checkout runs on its embedded servers. Secrets not
# set in the environment are then generated once and kept in var/secrets.json (mode 600),
# so every manage.py command, `make run` and the tests share them. A deployment (with
# DATABASE_URL) must set them explicitly.
_local_secrets = {} if os.environ.get("DATABASE_URL") else embedded.local_secrets()


def _secret(name: str) -> str:
    value = env_str(name, "") or _local_secrets.get(name, "")
    if not value and not DEBUG:
        raise ImproperlyConfigured(f"{name} is required when DEBUG is off.")
    return value or f"insecure-debug-only-{name.lower()}"


SECRET_KEY = _secret("SECRET_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- services -----------------------------------------------------------------------

_database_url = env_str("DATABASE_URL", "")
_redis_url = env_str("REDIS_URL", "")
if not (_database_url and _redis_url):
    _endpoints = embedded.acquire(
        postgres=not _database_url, redis=not _redis_url, redis_db=1 if TESTING else 0
    )
    _database_url = _database_url or _endpoints.database_url
    _redis_url = _redis_url or _endpoints.redis_url
DATABASE_URL: str = _database_url
REDIS_URL: str = _redis_url

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "csai",
    }
}

# --- applications ---------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "events",  # the outbox: first, as every product app writes to it
    "tickets",
    "agents",
    "autonomy",
    "review",
    "outcomes",  # resolution, customer satisfaction, human effort
    "lab",  # simulation, offline evaluation and demo data; no product app imports it
]

MIDDLEWARE = [
    "csai.logging.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csai.security.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Before any view: a NUL PostgreSQL cannot store is a 400, never a DataError (500).
    "csai.errors.NulCharacterMiddleware",
    # Last: the first to see a view's exception (a database or broker outage answers 503).
    "csai.errors.OutageMiddleware",
]

ROOT_URLCONF = "csai.urls"
WSGI_APPLICATION = "csai.wsgi.application"
ASGI_APPLICATION = "csai.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lab.context_processors.demo_history",  # the notice while demo data is shown
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:  # hashing with the default work factor dominates a test suite's run time
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = embedded.VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/review/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Failed logins allowed per username and client address in a window; then login is refused
# until the window (from the first failure) has passed. Counted in the Redis cache.
CSAI_LOGIN_FAILURES = env_rate("CSAI_LOGIN_FAILURES", "5/hour")

# --- security -------------------------------------------------------------------------

# People reach the product over HTTPS (directly or through a TLS proxy): http:// redirects
# to https://, browsers are told to use nothing else (HSTS), cookies travel only over TLS.
CSAI_HTTPS = env_bool("CSAI_HTTPS", False)
_secure_cookies = env_bool("CSAI_SECURE_COOKIES", not DEBUG) or CSAI_HTTPS
SESSION_COOKIE_SECURE = _secure_cookies
CSRF_COOKIE_SECURE = _secure_cookies
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("CSAI_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if CSAI_HTTPS:
    SECURE_SSL_REDIRECT = True
    # Probes and Prometheus call these over plain http inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# HSTS preload is the domain owner's commitment (hstspreload.org), not the app's to make.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# csai.security.SecurityHeadersMiddleware. No 'unsafe-inline' and no 'unsafe-eval': every
# script and style is a static file (htmx from static/vendor/, Swagger UI from the sidecar).
CSAI_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# --- REST framework -------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "csai.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "csai.errors.exception_handler",
    "NUM_PROXIES": env_int("CSAI_NUM_PROXIES", 0, minimum=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CSAI API",
    "DESCRIPTION": "Ticket intake, tickets and their conversations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # A choice field that may be blank or null says so (e.g. a ticket not yet triaged has
    # category ""), as the answers do.
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": True,
    # One name for the automation phases, whichever field (phase, to_phase, …) carries them.
    "ENUM_NAME_OVERRIDES": {"Phase": "autonomy.models.Phase", "EventType": "events.models.EventType"},
}

# --- product --------------------------------------------------------------------------

CSAI_WEBHOOK_SECRET = _secret("CSAI_WEBHOOK_SECRET")
# Prometheus scrapes /metrics with "Authorization: Bearer <token>"; staff can also log in.
CSAI_METRICS_TOKEN = env_str("CSAI_METRICS_TOKEN", "")
CSAI_WEBHOOK_TOLERANCE_SECONDS = env_int("CSAI_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
CSAI_WEBHOOK_MAX_BYTES = env_int("CSAI_WEBHOOK_MAX_BYTES", 256 * 1024, minimum=1024)
# (deliveries, window seconds) per client address.
CSAI_WEBHOOK_RATE = env_rate("CSAI_WEBHOOK_RATE", "6000/min")
# SLA state turns at_risk when less than this share of a deadline's window is left.
CSAI_SLA_AT_RISK_FRACTION = 0.25
# A customer writing on a resolved ticket reopens it within this many days; later (or on a
# closed ticket) their message opens a new ticket that follows the old one.
CSAI_REOPEN_DAYS = env_int("CSAI_REOPEN_DAYS", 7, minimum=0)
# A reply the AI sent on its own under AUTOMATED_RESOLUTION or TEMPLATE_RESPONSE resolves the
# ticket (by the AI) when the customer has not written again this many hours after delivery.
CSAI_ASSUMED_RESOLUTION_HOURS = env_int("CSAI_ASSUMED_RESOLUTION_HOURS", 72, minimum=1)
# A resolved ticket is closed for good this many days after its resolution.
CSAI_CLOSE_AFTER_DAYS = env_int("CSAI_CLOSE_AFTER_DAYS", 7, minimum=1)
# The satisfaction survey's link in the customer's mail works for this many days.
CSAI_CSAT_LINK_DAYS = env_int("CSAI_CSAT_LINK_DAYS", 7, minimum=1)
# Where customers reach this site: the base of the links in mails (survey, "this solved my problem").
CSAI_PUBLIC_URL = env_str("CSAI_PUBLIC_URL", "http://localhost:8000").rstrip("/")

# --- outcomes: human effort (outcomes.effort) --------------------------------------------
# A review pass counts its claim-to-decision time, at most this many minutes: a claim left
# open over lunch is not an hour of work.
CSAI_EFFORT_REVIEW_CAP_MINUTES = env_int("CSAI_EFFORT_REVIEW_CAP_MINUTES", 30, minimum=1)
# Where no time is recorded, an estimate per event: a reply a person wrote outside a review
# pass (the ticket page, a request for information), and an escalated ticket (the team it
# goes to handles it).
CSAI_EFFORT_REPLY_MINUTES = env_int("CSAI_EFFORT_REPLY_MINUTES", 5, minimum=0)
CSAI_EFFORT_ESCALATION_MINUTES = env_int("CSAI_EFFORT_ESCALATION_MINUTES", 15, minimum=0)

# --- outbound events (Standard Webhooks) ---------------------------------------------------
# Endpoints on private, loopback or link-local addresses are refused unless this is set
# (tests and `make run`, whose receivers run on this machine).
CSAI_WEBHOOK_ALLOW_PRIVATE = env_bool("CSAI_WEBHOOK_ALLOW_PRIVATE", False)
# A delivery succeeds on a 2xx within this many seconds.
CSAI_EVENT_TIMEOUT_SECONDS = env_int("CSAI_EVENT_TIMEOUT_SECONDS", 15, minimum=1)
# Delays before each retry after a failed attempt (± 20 % jitter); then the delivery fails.
CSAI_EVENT_RETRY_SCHEDULE = env_durations(
    "CSAI_EVENT_RETRY_SCHEDULE", [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
)
# An endpoint whose attempts have all failed for this long is disabled; supervisors are emailed.
CSAI_EVENT_DISABLE_AFTER_DAYS = env_int("CSAI_EVENT_DISABLE_AFTER_DAYS", 5, minimum=1)

# --- Claude (optional) ----------------------------------------------------------------
# Empty key: every agent decides with the local model and nothing is sent to Anthropic.
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY", "")
# Empty: the SDK default (https://api.anthropic.com); point it at a local fake server in development.
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL", "")
CSAI_LLM_MODEL = env_str("CSAI_LLM_MODEL", "claude-sonnet-4-6")
CSAI_LLM_MAX_TOKENS = env_int("CSAI_LLM_MAX_TOKENS", 1024, minimum=1)
# Per attempt; the SDK retries timeouts, 408/409/429/5xx and connection errors with backoff.
CSAI_LLM_TIMEOUT_SECONDS = env_int("CSAI_LLM_TIMEOUT_SECONDS", 20, minimum=1)
CSAI_LLM_MAX_RETRIES = env_int("CSAI_LLM_MAX_RETRIES", 3, minimum=0)


def _usd(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not number.is_finite() or number < 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be a price of at least 0.")
    return number


# USD per million tokens for a model missing from agents.llm's price table.
CSAI_LLM_PRICE_IN_PER_MTOK = _usd("CSAI_LLM_PRICE_IN_PER_MTOK", env_str("CSAI_LLM_PRICE_IN_PER_MTOK", "3"))
CSAI_LLM_PRICE_OUT_PER_MTOK = _usd(
    "CSAI_LLM_PRICE_OUT_PER_MTOK", env_str("CSAI_LLM_PRICE_OUT_PER_MTOK", "15")
)

# With a key and no trained local model, a label's confidence is the share of this many
# independent samples that agree (agents.proposers explains every confidence source).
CSAI_LLM_SAMPLES = env_int("CSAI_LLM_SAMPLES", 3, minimum=1)

# --- mail: replies to customers, alerts to supervisors --------------------------------------

# Replies on email tickets go out through this backend (tickets.delivery), as do critical
# quality alerts. Default: printed to the log stream; `make run` points it at its local SMTP
# sink unless EMAIL_BACKEND or EMAIL_HOST is set.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds one SMTP operation may take; an attempt holds its message for ten times this.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
# The address replies come from (customers answer to it) and alerts are sent from.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "csai@localhost")
# Delays before each new attempt after a transient failure (connection refused, timeout,
# SMTP 4xx), ± 20 % jitter; then the reply is marked failed. A 5xx fails it at once.
CSAI_MAIL_RETRY_SCHEDULE = env_durations("CSAI_MAIL_RETRY_SCHEDULE", [60.0, 300.0, 1800.0, 7200.0])
# Folder where `make run`'s SMTP sink writes each mail as an .eml file (the ticket page
# links to them). Empty: no sink, no links.
CSAI_MAIL_SINK_DIR = env_str("CSAI_MAIL_SINK_DIR", "")

# --- agents ---------------------------------------------------------------------------
# Guardrails on every outgoing text; a violation blocks it. Empty list: the built-in
# phrases (agents.guardrails.DEFAULT_FORBIDDEN_PHRASES).
CSAI_GUARDRAIL_MAX_LENGTH = env_int("CSAI_GUARDRAIL_MAX_LENGTH", 4000, minimum=100)
CSAI_GUARDRAIL_FORBIDDEN_PHRASES = env_list("CSAI_GUARDRAIL_FORBIDDEN_PHRASES", [])
# Where a ticket's pipeline ends. "classify" is triage only (category and priority):
# strategy, escalation and reply stay with people.
CSAI_PIPELINE_LAST_STEP = env_choice(
    "CSAI_PIPELINE_LAST_STEP", "update", ("classify", "select", "escalate", "update")
)
# Seconds the sweeps wait before they take work as lost and send it again: a ticket stuck at
# intake, a ticket in triage with no run, a running run gone quiet, a decision without a
# disposition, an outbound event not fanned out or a webhook delivery due. CSAI_SWEEP_GRACE
# (JSON) overrides any; the fault bench's short run shortens them.
CSAI_SWEEP_GRACE = env_overrides(
    "CSAI_SWEEP_GRACE", {"intake": 120, "triage": 120, "run": 300, "disposition": 120, "events": 30}
)

# --- autonomy -------------------------------------------------------------------------

# Reviewed decisions a calibration is fitted on (the most recent ones).
CSAI_CALIBRATION_WINDOW = env_int("CSAI_CALIBRATION_WINDOW", 5000, minimum=100)
# Latest decisions of a phase its rates (autonomous rate, agreement) are measured on.
CSAI_RATE_WINDOW = env_int("CSAI_RATE_WINDOW", 500, minimum=10)
# A candidate model judged on fewer held-out reviewed tickets than this is not judged at all.
CSAI_RETRAIN_MIN_HELD_OUT = env_int("CSAI_RETRAIN_MIN_HELD_OUT", 50, minimum=1)
# Retrain when the human labels grew by this share since the model (or reach the first count).
CSAI_RETRAIN_GROWTH = env_float("CSAI_RETRAIN_GROWTH", 0.25, minimum=0.0)
CSAI_RETRAIN_FIRST = env_int("CSAI_RETRAIN_FIRST", 100, minimum=1)
# The bar for leaving each phase upward (SPEC "Phase criteria"), keyed by the phase left;
# CSAI_PHASE_CRITERIA (JSON) overrides any of them, and a policy's ``criteria`` field
# overrides those for its decision type. ``window``: latest decisions the rates use.
CSAI_PHASE_CRITERIA = env_overrides(
    "CSAI_PHASE_CRITERIA",
    {
        # 1 → 2: enough human decisions captured, and the hidden AI answer agreed with them.
        1: {"window": CSAI_RATE_WINDOW, "min_reviewed": 200, "min_accuracy": 0.80},
        # 2 → 3: people agree with the suggestions, and what a threshold would apply is accurate.
        2: {"window": CSAI_RATE_WINDOW, "min_reviewed": 200, "min_agreement": 0.75, "min_accuracy": 0.85},
        # 3 → 4: most decisions autonomous, accurately, without a critical error; and, for a
        # decision type that answers customers on its own (the reply), customers no less
        # satisfied with what the AI resolved than with what people resolved: the 95 %
        # interval of mean CSAT (AI − person) must not reach below −csat_max_drop, on at least
        # csat_min_answers answers on each side (0 switches the CSAT criterion off). Phases 1–2
        # have no such criterion: a person sends every reply there, so nothing is AI-resolved.
        3: {
            "window": CSAI_RATE_WINDOW,
            "min_decisions": 300,
            "min_reviewed": 100,
            "min_autonomous_rate": 0.60,
            "min_accuracy": 0.90,
            "max_critical_errors": 0,
            "csat_min_answers": 50,
            "csat_max_drop": 0.2,
        },
        # 4 → 5: even more autonomous, accuracy and customer satisfaction maintained.
        4: {
            "window": CSAI_RATE_WINDOW,
            "min_decisions": 500,
            "min_reviewed": 50,
            "min_autonomous_rate": 0.80,
            "min_accuracy": 0.90,
            "max_critical_errors": 0,
            "csat_min_answers": 50,
            "csat_max_drop": 0.2,
        },
    },
)
# Bounds of the quality monitor (SPEC "Quality monitor"); CSAI_MONITOR (JSON) overrides any.
CSAI_MONITOR = env_overrides(
    "CSAI_MONITOR",
    {
        "accuracy_window": 100,  # latest reviewed autonomous decisions the accuracy is measured on
        "min_reviewed": 30,  # fewer than this: no accuracy alert (too noisy)
        "accuracy_floor": 0.85,  # ACCURACY_DEGRADATION below (high)
        "overautomation_rate": 0.9,  # OVERAUTOMATION_RISK above this autonomous rate …
        "overautomation_accuracy": 0.9,  # … with accuracy below this (critical)
        "rate_window": 200,  # latest decisions the autonomous rate and input drift are measured on
        # INPUT_DRIFT above this population stability index. 0.25 is the textbook "large shift",
        # but a 200-decision window against a few hundred reference rows over ~12 buckets is
        # noisy enough to cross it by chance (seen in simulate); a real change of input crosses 1.
        "psi_bound": 0.5,
        "ece_window": 500,
        "ece_bound": 0.10,  # CALIBRATION_DRIFT above
        "override_recent": 100,  # OVERRIDE_SPIKE: override rate of the latest reviews …
        "override_baseline": 500,  # … against the reviews before them
        "override_jump": 0.15,  # alert when recent > baseline + jump and > 2 × baseline
        "safe_phase": 2,  # where a demotion takes an autonomous policy: people decide again
        # CSAT_DROP (types that answer customers, in phases 3–5): mean CSAT of the latest
        # csat_recent AI-resolved answers against the csat_baseline answers before them; alert
        # when the 95 % interval of the difference lies entirely below −csat_drop.
        "csat_recent": 100,
        "csat_baseline": 300,
        "csat_drop": 0.2,
    },
)

# --- Celery ---------------------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost Redis keeps trying to reconnect for as long as the outage lasts (the
# default gives up after 100 tries), and survives the loss with tasks in hand (csai.broker).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT = "csai.broker:Transport"
# A task unacknowledged this long (worker killed mid-task) is delivered again.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ROUTES = {
    "tickets.tasks.*": {"queue": "tickets"},
    "agents.tasks.*": {"queue": "agents"},
    # Webhook deliveries wait on other people's servers: a queue of their own, so a worker
    # can be given to them alone (`-Q events`).
    "events.tasks.*": {"queue": "events"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Workers log through Django's LOGGING (JSON, with correlation ids), straight to stderr.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False
# Every periodic schedule lives here.
CELERY_BEAT_SCHEDULE = {
    "sla-refresh": {"task": "tickets.tasks.sla_refresh", "schedule": 60.0},
    "intake-sweep": {"task": "tickets.tasks.intake_sweep", "schedule": 60.0},
    "pipeline-sweep": {"task": "agents.tasks.pipeline_sweep", "schedule": 60.0},
    "delivery-sweep": {"task": "tickets.tasks.delivery_sweep", "schedule": 60.0},
    "resolution-sweep": {"task": "tickets.tasks.resolution_sweep", "schedule": 60.0},
    "close-sweep": {"task": "tickets.tasks.close_sweep", "schedule": 3600.0},
    "events-sweep": {"task": "events.tasks.events_sweep", "schedule": 60.0},
    "disposition-sweep": {"task": "autonomy.tasks.disposition_sweep", "schedule": 60.0},
    "disposition-sweep-all": {
        "task": "autonomy.tasks.disposition_sweep",
        "schedule": 24 * 3600.0,
        "kwargs": {"everything": True},
    },
    "quality-monitor": {"task": "autonomy.tasks.quality_monitor", "schedule": 300.0},
    "calibration-refresh": {"task": "autonomy.tasks.calibration_refresh", "schedule": 3600.0},
    "model-retrain": {"task": "autonomy.tasks.model_retrain", "schedule": 6 * 3600.0},
    # The dashboard's stored days (outcomes.day_figures); today and yesterday are always live.
    "day-figures-refresh": {"task": "outcomes.tasks.day_figures_refresh", "schedule": 60.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(embedded.VAR_DIR / "celerybeat-schedule")

# --- logging --------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "correlation": {"()": "csai.logging.CorrelationIdFilter"},
        "client_errors": {"()": "csai.logging.ClientErrorFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["correlation"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        # A 4xx (an expected 403, a refused request) is a warning line, not a traceback.
        "django.request": {"filters": ["client_errors"]},
        "django.db.backends": {"level": "WARNING"},
        # The Anthropic SDK's DEBUG log dumps whole request bodies, i.e. ticket text.
        "anthropic": {"level": "INFO"},
    },
}
