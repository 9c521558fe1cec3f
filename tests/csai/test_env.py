import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from csai import embedded
from csai.env import env_bool, env_choice, env_durations, env_int, env_list, env_rate, env_str

REPO = Path(__file__).resolve().parents[2]


def test_it_reads_typed_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", " a.example, b.example ,,")

    assert env_bool("X_BOOL", False) is True
    assert env_int("X_INT", 0) == 42
    assert env_list("X_LIST", []) == ["a.example", "b.example"]
    assert env_str("X_MISSING", "fallback") == "fallback"
    assert env_rate("X_MISSING", "6000/min") == (6000, 60)
    assert env_choice("X_MISSING", "b", ("a", "b")) == "b"


def test_it_reads_durations_with_units(monkeypatch):
    monkeypatch.setenv("X_DURATIONS", "5s, 5m,2h,1d,0.25")

    assert env_durations("X_DURATIONS", []) == [5, 300, 7200, 86400, 0.25]
    assert env_durations("X_MISSING", [1.0]) == [1.0]


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("X_BOOL", "ture", lambda: env_bool("X_BOOL", False)),
        ("X_INT", "ten", lambda: env_int("X_INT", 1)),
        ("X_INT", "-1", lambda: env_int("X_INT", 1, minimum=0)),
        ("X_RATE", "lots", lambda: env_rate("X_RATE", "1/s")),
        ("X_RATE", "10/fortnight", lambda: env_rate("X_RATE", "1/s")),
        ("X_RATE", "0/min", lambda: env_rate("X_RATE", "1/s")),
        ("X_STEP", "clasify", lambda: env_choice("X_STEP", "update", ("classify", "update"))),
        ("X_DURATIONS", "5s,soon", lambda: env_durations("X_DURATIONS", [])),
        ("X_DURATIONS", "5s,-1m", lambda: env_durations("X_DURATIONS", [])),
        ("X_DURATIONS", "5w", lambda: env_durations("X_DURATIONS", [])),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(monkeypatch, name, value, read):
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        read()


def test_a_required_value_that_is_missing_fails_loudly(monkeypatch):
    monkeypatch.delenv("X_REQUIRED", raising=False)

    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED is required"):
        env_str("X_REQUIRED")


# Settings connect to nothing at import, so unreachable URLs put them in deployment mode
# (no embedded servers, no generated secrets) without starting anything.
DEPLOYMENT = {"DATABASE_URL": "postgresql://csai@127.0.0.1:9/csai", "REDIS_URL": "redis://127.0.0.1:9/0"}


def start_django(**env) -> subprocess.CompletedProcess:
    removed = {"PYTEST_VERSION", "SECRET_KEY", "DEBUG", "CSAI_WEBHOOK_SECRET"}
    clean = {k: v for k, v in os.environ.items() if k not in removed} | DEPLOYMENT
    return subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='csai.settings'; django.setup()",
        ],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_deployment_with_every_secret_set_starts():
    result = start_django(SECRET_KEY="k" * 50, CSAI_WEBHOOK_SECRET="w" * 32)

    assert result.returncode == 0, result.stderr


def test_local_mode_generates_its_secrets_once_and_keeps_them_private(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "VAR_DIR", tmp_path)

    first = embedded.local_secrets()
    again = embedded.local_secrets()

    assert first == again
    assert len(first["SECRET_KEY"]) >= 50 and len(first["CSAI_WEBHOOK_SECRET"]) >= 50
    assert first["SECRET_KEY"] != first["CSAI_WEBHOOK_SECRET"]
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    result = start_django(DEBUG="false", CSAI_WEBHOOK_SECRET="x")

    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_settings_refuse_to_start_without_webhook_secret_when_debug_is_off():
    result = start_django(DEBUG="false", SECRET_KEY="k" * 50, CSAI_WEBHOOK_SECRET="")

    assert result.returncode != 0
    assert "CSAI_WEBHOOK_SECRET is required" in result.stderr


def test_settings_refuse_a_misspelt_boolean():
    result = start_django(DEBUG="ture")

    assert result.returncode != 0
    assert "DEBUG='ture' is not a boolean" in result.stderr


def test_every_setting_read_from_the_environment_is_documented_in_env_example():
    sources = [*REPO.glob("csai/*.py"), *REPO.glob("tickets/**/*.py")]
    pattern = re.compile(
        r"""(?:env_(?:str|bool|int|float|list|rate|choice|durations|overrides)\(|environ\.get\(|getenv\()"""
        r"""\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    used = {name for path in sources for name in pattern.findall(path.read_text())}
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.M))

    assert used, "the scan found no settings at all"
    assert used <= documented, f"missing from .env.example: {sorted(used - documented)}"
