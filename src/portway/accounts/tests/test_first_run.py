"""First run: the unauthenticated POST /api/users, INITIAL_ADMIN_*, the UI setup service."""

from __future__ import annotations

import pytest
from django.test import Client

from portway.accounts import services
from portway.accounts.models import User
from portway.accounts.tests.helpers import USER_KEYS, snapshot
from portway.conf import ConfigError
from portway.core.errors import Conflict, FieldError
from portway.nginx.models import AuditLogEntry
from portway.testing.api import PASSWORD, api_client, expect_error, make_admin, make_user, send

pytestmark = pytest.mark.django_db

FIRST = {
    "name": "First Admin",
    "nickname": "boss",
    "email": "First@Example.com",
    "auth": {"type": "password", "secret": PASSWORD},
}


def test_first_user_without_token_becomes_admin():
    assert Client().get("/api/").json()["setup"] is False
    # even asking for no role and a disabled account yields an enabled admin
    response = send(Client(), "post", "/api/users", {**FIRST, "roles": [], "is_disabled": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == USER_KEYS
    assert body["roles"] == ["admin"]
    assert body["is_disabled"] is False
    assert body["email"] == "first@example.com"
    assert Client().get("/api/").json()["setup"] is True
    login = send(
        Client(), "post", "/api/tokens", {"identity": "first@example.com", "secret": PASSWORD}
    )
    assert login.status_code == 200
    entry = AuditLogEntry.objects.get(action="created")
    assert (entry.user_id, entry.object_id, entry.object_type) == (body["id"], body["id"], "user")


def test_first_user_needs_a_password():
    message = expect_error(send(Client(), "post", "/api/users", {**FIRST, "auth": None}), 400)
    assert "data/auth/secret" in message
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "password", "secret": "short"}, "auth/secret"),
        ({"type": "password", "secret": "x" * 65}, "auth/secret"),
        ({"type": "totp", "secret": PASSWORD}, "auth/type"),
        ({"type": "password"}, "auth/secret"),
        ({"type": "password", "secret": PASSWORD, "extra": 1}, "auth/extra"),
    ],
)
def test_first_user_bad_auth_is_400(auth, field):
    message = expect_error(send(Client(), "post", "/api/users", {**FIRST, "auth": auth}), 400)
    assert f"data/{field} " in message
    assert not User.objects.exists()


def test_after_first_user_post_needs_admin_token():
    assert send(Client(), "post", "/api/users", FIRST).status_code == 201
    second = {**FIRST, "email": "second@example.com"}
    expect_error(send(Client(), "post", "/api/users", second), 401)
    user = make_user()
    expect_error(send(api_client(user), "post", "/api/users", second), 403)
    assert User.objects.filter(email="second@example.com").count() == 0


def test_first_run_with_a_bad_token_is_still_401():
    before = snapshot()
    client = Client(headers={"Authorization": "Bearer forged"})
    expect_error(send(client, "post", "/api/users", FIRST), 401)
    assert snapshot() == before


def test_create_first_admin_service():
    user = services.create_first_admin("Setup@Example.com", PASSWORD, "Setup")
    assert user.is_admin and user.email == "setup@example.com" and user.check_password(PASSWORD)
    with pytest.raises(Conflict):
        services.create_first_admin("other@example.com", PASSWORD, "Other")
    with pytest.raises(Conflict):  # setup over: no field complaints, just "sign in"
        services.create_first_admin("bad", "x", "")
    assert User.objects.count() == 1


def test_create_first_admin_validates():
    with pytest.raises(FieldError) as exc:
        services.create_first_admin("not-an-email", PASSWORD, "Setup")
    assert exc.value.field == "email"
    with pytest.raises(FieldError) as exc:
        services.create_first_admin("setup@example.com", "short", "Setup")
    assert exc.value.field == "auth/secret"
    assert not User.objects.exists()


def test_ensure_initial_admin_from_environment():
    env = {"INITIAL_ADMIN_EMAIL": " Boot@Example.com ", "INITIAL_ADMIN_PASSWORD": PASSWORD}
    user = services.ensure_initial_admin(env)
    assert user is not None and user.is_admin and user.email == "boot@example.com"
    assert user.check_password(PASSWORD)
    # idempotent, and never resets a password changed later
    user.set_password("changed-later")
    user.save()
    assert services.ensure_initial_admin(env) is None
    assert services.ensure_initial_admin({**env, "INITIAL_ADMIN_EMAIL": "x@example.com"}) is None
    assert User.objects.count() == 1
    user.refresh_from_db()
    assert user.check_password("changed-later")


def test_ensure_initial_admin_reads_os_environ(monkeypatch):
    monkeypatch.setenv("INITIAL_ADMIN_EMAIL", "envadmin@example.com")
    monkeypatch.setenv("INITIAL_ADMIN_PASSWORD", PASSWORD)
    assert services.ensure_initial_admin().email == "envadmin@example.com"


def test_ensure_initial_admin_unset_does_nothing():
    assert services.ensure_initial_admin({}) is None
    assert not User.objects.exists()


def test_ensure_initial_admin_skips_when_users_exist():
    make_admin("existing@example.com")
    env = {"INITIAL_ADMIN_EMAIL": "boot@example.com", "INITIAL_ADMIN_PASSWORD": PASSWORD}
    assert services.ensure_initial_admin(env) is None
    assert not User.objects.filter(email="boot@example.com").exists()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"INITIAL_ADMIN_EMAIL": "boot@example.com"}, "INITIAL_ADMIN_PASSWORD"),
        ({"INITIAL_ADMIN_PASSWORD": PASSWORD}, "INITIAL_ADMIN_EMAIL"),
        (
            {"INITIAL_ADMIN_EMAIL": "boot", "INITIAL_ADMIN_PASSWORD": PASSWORD},
            "INITIAL_ADMIN_EMAIL",
        ),
        (
            {"INITIAL_ADMIN_EMAIL": "boot@example.com", "INITIAL_ADMIN_PASSWORD": "short"},
            "INITIAL_ADMIN_PASSWORD",
        ),
    ],
)
def test_ensure_initial_admin_bad_config(env, variable):
    with pytest.raises(ConfigError, match=variable):
        services.ensure_initial_admin(env)
    assert not User.objects.exists()


def test_setup_flag_stays_true_with_existing_admin():
    make_admin()
    assert Client().get("/api/").json()["setup"] is True
