"""What an operator relies on in docker-compose.yml and the Dockerfile.

No Docker engine is needed: the files are parsed. When a Docker Compose client is on the
machine, ``docker compose config`` also validates the file (it needs no daemon).
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from django.conf import settings

REPO_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_DIR / "docker-compose.yml"
DOCKERFILE = REPO_DIR / "Dockerfile"
ENV_EXAMPLE = REPO_DIR / ".env.example"

APP_SERVICES = ["migrate", "web", "worker", "beat"]
LONG_RUNNING = ["postgres", "redis", "web", "worker", "beat"]
REQUIRED_APP_ENV = ["DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CSAI_WEBHOOK_SECRET"]
REQUIRED_SECRETS = {"POSTGRES_PASSWORD": "pw", "SECRET_KEY": "sk", "CSAI_WEBHOOK_SECRET": "ws"}
# "${NAME}", "${NAME:?message}", "${NAME:-default}", ...
INTERPOLATION = re.compile(r"\$\{[A-Z_][A-Z0-9_]*(?::?[?-][^}]*)?\}")
DATABASE_PASSWORD = re.compile(r"postgres(?:ql)?://[^:/]+:(.+)@postgres:\d+/\w+")


@pytest.fixture(scope="module")
def services():
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def _command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def _option(command: list[str], *names: str) -> str:
    """The value of ``-Q x``, ``--queues x`` or ``--queues=x`` in a command line."""
    for index, arg in enumerate(command):
        if arg in names:
            return command[index + 1]
        name, _, value = arg.partition("=")
        if name in names and value:
            return value
    raise AssertionError(f"none of {names} in {command}")


def _resolved(value: str) -> str:
    """A value with every ${...} interpolation replaced by a placeholder."""
    return INTERPOLATION.sub("placeholder", value)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _compose_client() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(  # noqa: S603 - fixed command
            [docker, "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    docker_compose = shutil.which("docker-compose")
    if docker_compose:
        return [docker_compose]
    pytest.skip("no Docker Compose client on PATH (neither `docker compose` nor docker-compose)")


def _compose_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    # An empty --env-file: a developer's own .env must not fill in the secrets.
    env_file = tmp_path / "empty.env"
    env_file.touch()
    command = [*_compose_client(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"]
    return subprocess.run(  # noqa: S603 - fixed command
        command, env=env, capture_output=True, text=True, check=False, timeout=60
    )


def _env_without_secrets() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in REQUIRED_SECRETS}


# --- services ---------------------------------------------------------------------------


def test_it_defines_every_service(services):
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)


def test_it_pins_the_postgres_and_redis_major_versions(services):
    assert re.fullmatch(r"postgres:16([.-][\w.-]+)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7([.-][\w.-]+)?", services["redis"]["image"])


def test_it_keeps_postgres_and_redis_data_in_volumes(services):
    assert any(":/var/lib/postgresql/data" in volume for volume in services["postgres"]["volumes"])
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])
    assert _option(_command(services["redis"]), "--appendonly") == "yes"


def test_it_health_checks_every_long_running_service(services):
    for name, service in services.items():
        if name == "migrate":
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_it_restarts_long_running_services_and_runs_migrate_once(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", name
    assert services["migrate"].get("restart", "no") == "no"
    assert _command(services["migrate"])[-3:] == ["manage.py", "migrate", "--noinput"]


def test_it_serves_the_web_app_with_gunicorn_on_port_8000(services):
    web = services["web"]
    command = _command(web)
    assert command[0] == "gunicorn"
    assert "csai.wsgi:application" in command
    assert _option(command, "--bind", "-b") == "0.0.0.0:8000"
    assert any(str(port).endswith(":8000") for port in web["ports"])
    assert "/health/ready/" in " ".join(web["healthcheck"]["test"])


def test_it_runs_a_worker_on_every_queue_in_settings(services):
    command = _command(services["worker"])
    assert command[:4] == ["celery", "-A", "csai", "worker"]
    consumed = set(_option(command, "-Q", "--queues").split(","))
    expected = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    expected.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    assert expected <= consumed, f"worker does not consume {sorted(expected - consumed)}"


def test_it_gives_the_worker_time_to_finish_late_acked_tasks(services):
    assert services["worker"].get("stop_grace_period")


def test_it_runs_beat_with_its_schedule_on_a_volume(services):
    beat = services["beat"]
    command = _command(beat)
    assert command[:4] == ["celery", "-A", "csai", "beat"]
    schedule_dir = os.path.dirname(_option(command, "--schedule", "-s"))
    assert any(volume.endswith(f":{schedule_dir}") for volume in beat["volumes"])


def test_it_waits_for_healthy_dependencies(services):
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, condition in depends_on.items():
            expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
    for name in ["migrate", "web", "worker"]:
        assert "postgres" in services[name]["depends_on"], name
    for name in ["web", "worker", "beat"]:
        assert "redis" in services[name]["depends_on"], name
    for name in ["web", "worker"]:
        assert "migrate" in services[name]["depends_on"], name


# --- environment ------------------------------------------------------------------------


def test_it_points_every_app_service_at_the_compose_postgres_and_redis(services):
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert isinstance(env, dict), f"{name}: environment should be a mapping"
        for variable in REQUIRED_APP_ENV:
            assert env.get(variable), f"{name} lacks {variable}"
        database = urlparse(_resolved(env["DATABASE_URL"]))
        redis = urlparse(_resolved(env["REDIS_URL"]))
        assert database.scheme.startswith("postgres"), name
        assert database.hostname == "postgres" and database.hostname in services, name
        assert redis.scheme == "redis", name
        assert redis.hostname == "redis" and redis.hostname in services, name


def test_it_hard_codes_no_secret(services):
    secrets = [services["postgres"]["environment"]["POSTGRES_PASSWORD"]]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        secrets += [env["SECRET_KEY"], env["CSAI_WEBHOOK_SECRET"]]
        password = DATABASE_PASSWORD.fullmatch(env["DATABASE_URL"])
        assert password, f"{name}: DATABASE_URL carries no password"
        secrets.append(password.group(1))
    for secret in secrets:
        assert INTERPOLATION.fullmatch(secret), f"{secret!r} is not a ${{...}} interpolation"


def test_it_documents_every_app_env_var_in_env_example(services):
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    used = {variable for name in APP_SERVICES for variable in services[name]["environment"]}
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"


# --- Dockerfile -------------------------------------------------------------------------


def test_it_builds_an_image_that_runs_gunicorn_as_a_non_root_user():
    instructions = _dockerfile_instructions()
    starts = [rest for keyword, rest in instructions if keyword in ("CMD", "ENTRYPOINT")]
    assert starts and "gunicorn" in starts[-1]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")


# --- docker compose config --------------------------------------------------------------


def test_it_is_a_valid_compose_file(tmp_path):
    result = _compose_config({**_env_without_secrets(), **REQUIRED_SECRETS}, tmp_path)
    assert result.returncode == 0, result.stderr


def test_it_refuses_to_start_without_the_secrets(tmp_path):
    result = _compose_config(_env_without_secrets(), tmp_path)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "SECRET" in result.stderr
