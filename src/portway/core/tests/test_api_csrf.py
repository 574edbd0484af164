"""The API accepts a UI session only together with Django's CSRF token."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from portway.testing.api import api_client, make_admin

pytestmark = pytest.mark.django_db

NEW_USER = {
    "name": "Mallory",
    "nickname": "m",
    "email": "mallory@example.com",
    "roles": ["admin"],
    "auth": {"type": "password", "secret": "mallory-pass-1"},
}


def _session_client(admin) -> Client:  # noqa: ANN001
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    return client


def test_session_without_csrf_token_cannot_change_anything():
    admin = make_admin()
    client = _session_client(admin)
    response = client.post("/api/users", json.dumps(NEW_USER), content_type="text/plain")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert not type(admin).objects.filter(email="mallory@example.com").exists()


def test_session_with_csrf_token_works_and_reads_need_none():
    admin = make_admin()
    client = _session_client(admin)
    assert client.get("/api/users").status_code == 200
    client.get("/")  # a page with a form sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/users", json.dumps(NEW_USER), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_bearer_token_needs_no_csrf_token():
    response = api_client(make_admin()).post(
        "/api/users", json.dumps(NEW_USER), content_type="application/json"
    )
    assert response.status_code == 201
