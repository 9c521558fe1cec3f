"""Typed access to environment variables that fails loudly on bad values.

Every setting the product reads from the environment goes through these helpers, so a
typo such as ``DEBUG=ture`` stops start-up with a clear message instead of being read as
"off".
"""

import json
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING = object()


def env_str(name: str, default: str | None | object = _MISSING) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is _MISSING:
        raise ImproperlyConfigured(f"Environment variable {name} is required (see .env.example).")
    return default  # type: ignore[return-value]


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is none of {', '.join(choices)}.")
    return value


_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate such as ``6000/min`` or ``100/s`` as (requests, window seconds)."""
    value = os.environ.get(name) or default
    count, _, unit = value.partition("/")
    try:
        requests, seconds = int(count), _RATE_UNITS[unit.strip()[:1].lower()]
    except (ValueError, KeyError, IndexError):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 6000/min or 100/s.") from None
    if requests < 1:
        raise ImproperlyConfigured(f"{name}={value!r} must allow at least one request.")
    return requests, seconds


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}={number} must be between {minimum} and {maximum}.")
    return number


def env_overrides(name: str, defaults: dict) -> dict:
    """``defaults`` with the numbers a JSON object in ``name`` overrides, one level of nesting
    deep (``{"3": {"min_accuracy": 0.92}}``); an unknown key or a non-number is an error."""
    value = os.environ.get(name)
    if not value:
        return defaults
    try:
        overrides = json.loads(value)
    except json.JSONDecodeError:
        raise ImproperlyConfigured(f"{name} is not a JSON object.") from None
    return _merged(name, defaults, overrides)


def _merged(name: str, defaults: dict, overrides) -> dict:
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object.")
    merged = dict(defaults)
    by_text = {str(key): key for key in defaults}
    for key, override in overrides.items():
        if key not in by_text:
            raise ImproperlyConfigured(f"{name}: unknown key {key!r} (known: {', '.join(by_text)}).")
        known = by_text[key]
        if isinstance(defaults[known], dict):
            merged[known] = _merged(f"{name}[{key}]", defaults[known], override)
        elif isinstance(override, int | float) and not isinstance(override, bool):
            merged[known] = override
        else:
            raise ImproperlyConfigured(f"{name}: {key} must be a number, not {override!r}.")
    return merged


def env_durations(name: str, default: list[float]) -> list[float]:
    """Comma-separated durations in seconds, each a number with an optional unit s, m, h or d:
    ``5s,5m,30m,2h`` or ``0.2,0.2``. Empty: the default."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    durations = []
    for item in value.split(","):
        text = item.strip().lower()
        unit = _RATE_UNITS.get(text[-1:]) if text else None
        try:
            number = float(text[:-1] if unit else text)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}={value!r}: {item.strip()!r} is not a duration like 5s or 2h."
            ) from None
        if not number >= 0 or number == float("inf"):
            raise ImproperlyConfigured(f"{name}={value!r}: {item.strip()!r} must be 0 or more.")
        durations.append(number * (unit or 1))
    return durations
