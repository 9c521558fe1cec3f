import socket

import pytest

from csai.celery import app as celery_app


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_liveness_answers_without_touching_services(client):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_is_200_when_postgres_redis_and_broker_answer(client):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readiness_is_503_naming_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/health/ready/")

    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]


@pytest.mark.django_db
def test_readiness_is_503_naming_the_broker_when_it_is_unreachable(client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{closed_port()}/0")

    response = client.get("/health/ready/")

    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]


def test_readiness_is_503_naming_the_database_when_it_is_unreachable(client, settings, django_db_blocker):
    from django.db import connections

    with django_db_blocker.unblock():
        connections["default"].close()
        original = connections["default"].settings_dict.copy()
        connections["default"].settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
        try:
            response = client.get("/health/ready/")
        finally:
            connections["default"].close()
            connections["default"].settings_dict.update(original)

    assert response.status_code == 503
    assert response.json()["down"] == ["database"]


def test_health_endpoints_only_answer_get(client):
    assert client.post("/health/").status_code == 405
    assert client.post("/health/ready/").status_code == 405
