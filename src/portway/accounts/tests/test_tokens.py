"""GET /api/, POST /api/tokens, GET /api/tokens and token enforcement."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.test import Client

from portway import __version__
from portway.accounts import tokens
from portway.accounts.models import User
from portway.accounts.tests.helpers import ISO_Z
from portway.nginx.models import AuditLogEntry
from portway.testing.api import PASSWORD, api_client, expect_error, make_admin, make_user, send
from portway.testing.process import wait_for

pytestmark = pytest.mark.django_db


def _expires(body: dict) -> datetime:
    assert re.match(ISO_Z, body["expires"]), body["expires"]
    return datetime.strptime(body["expires"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _login(identity: str, secret: str = PASSWORD, **extra) -> object:
    return send(Client(), "post", "/api/tokens", {"identity": identity, "secret": secret, **extra})


# --- GET /api/ --------------------------------------------------------------------------


def test_status_before_and_after_setup():
    response = Client().get("/api/")
    assert response.status_code == 200
    major, minor, revision = (int(p) for p in __version__.split(".")[:3])
    assert response.json() == {
        "status": "OK",
        "setup": False,
        "version": {"major": major, "minor": minor, "revision": revision},
    }
    make_user("plain@example.com")
    assert Client().get("/api/").json()["setup"] is False  # a non-admin is not setup
    make_admin()
    assert Client().get("/api/").json()["setup"] is True


def test_status_needs_no_token_even_with_a_bad_one():
    response = Client(headers={"Authorization": "Bearer nonsense"}).get("/api/")
    assert response.status_code == 200


# --- POST /api/tokens ------------------------------------------------------------------


def test_login_returns_token_that_works():
    admin = make_admin()
    response = _login("admin@example.com")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires"}
    expires = _expires(body)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    me = api_client(token=body["token"]).get("/api/users/me")
    assert me.status_code == 200
    assert me.json()["id"] == admin.pk


def test_login_identity_is_case_insensitive_and_trimmed():
    make_admin()
    assert _login("  Admin@Example.COM ").status_code == 200


def test_login_writes_audit_entry_and_last_login():
    admin = make_admin()
    _login("admin@example.com")
    entry = AuditLogEntry.objects.get(action="login")
    assert (entry.user_id, entry.object_type, entry.object_id) == (admin.pk, "user", admin.pk)
    admin.refresh_from_db()
    assert admin.last_login is not None


def test_login_with_expiry_in_body():
    make_admin()
    body = _login("admin@example.com", expiry="2h").json()
    remaining = _expires(body) - datetime.now(UTC)
    assert timedelta(minutes=119) < remaining <= timedelta(hours=2)


@pytest.mark.parametrize(
    ("identity", "secret"),
    [("admin@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)],
)
def test_bad_login_is_401(identity, secret):
    make_admin()
    message = expect_error(_login(identity, secret), 401)
    assert "Invalid email or password" in message
    assert not AuditLogEntry.objects.filter(action="login").exists()


def test_disabled_user_cannot_log_in():
    make_user("off@example.com", is_disabled=True)
    assert "disabled" in expect_error(_login("off@example.com"), 401)


def test_user_without_password_cannot_log_in():
    User.objects.create_user("nopass@example.com", None, name="No Pass")
    expect_error(_login("nopass@example.com", ""), 400)  # empty secret: schema minLength
    expect_error(_login("nopass@example.com", "anything"), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identity": "admin@example.com"}, "secret"),
        ({"secret": PASSWORD}, "identity"),
        ({"identity": 5, "secret": PASSWORD}, "identity"),
        ({"identity": "admin@example.com", "secret": ["x"]}, "secret"),
        ({"identity": "admin@example.com", "secret": PASSWORD, "scope": "admin"}, "scope"),
        ({"identity": "admin@example.com", "secret": PASSWORD, "remember": True}, "remember"),
        ({"identity": "admin@example.com", "secret": PASSWORD, "expiry": "forever"}, "expiry"),
        ({"identity": "admin@example.com", "secret": PASSWORD, "expiry": "2y"}, "expiry"),
    ],
)
def test_login_bad_input_is_400_naming_field(body, field):
    make_admin()
    message = expect_error(send(Client(), "post", "/api/tokens", body), 400)
    assert f"data/{field} " in message
    assert not AuditLogEntry.objects.exists()


def test_login_body_not_json_is_400():
    expect_error(send(Client(), "post", "/api/tokens", "{not json"), 400)


# --- GET /api/tokens ------------------------------------------------------------------


def test_refresh_token_default_one_day():
    admin = make_admin()
    response = api_client(admin).get("/api/tokens")
    assert response.status_code == 200
    remaining = _expires(response.json()) - datetime.now(UTC)
    assert timedelta(hours=23) < remaining <= timedelta(days=1)
    assert api_client(token=response.json()["token"]).get("/api/users/me").status_code == 200


@pytest.mark.parametrize(
    ("expiry", "seconds"),
    [("30m", 1800), ("1h", 3600), ("1w", 7 * 86400), ("1y", 365 * 86400), ("90s", 90)],
)
def test_refresh_token_with_expiry(expiry, seconds):
    admin = make_admin()
    body = api_client(admin).get(f"/api/tokens?expiry={expiry}").json()
    remaining = (_expires(body) - datetime.now(UTC)).total_seconds()
    assert seconds - 5 < remaining <= seconds


@pytest.mark.parametrize("expiry", ["1x", "d", "-1d", "1.5h", "2y", "13M", "0s", "1 d"])
def test_refresh_token_bad_expiry_is_400(expiry):
    admin = make_admin()
    response = api_client(admin).get("/api/tokens", {"expiry": expiry})
    assert "data/expiry " in expect_error(response, 400)


def test_refresh_needs_token():
    make_admin()
    expect_error(Client().get("/api/tokens"), 401)


# --- enforcement -------------------------------------------------------------------------


def _forged(user: User, *, exp: float, gen: int | None = None) -> str:
    """A correctly signed token with chosen claims, as tokens.issue would sign it."""
    payload = {
        "uid": user.pk,
        "gen": user.token_generation if gen is None else gen,
        "exp": int(exp),
        "scope": "user",
    }
    return signing.dumps(payload, salt=tokens.SALT, compress=True)


def test_expired_token_is_401():
    admin = make_admin()
    good = _forged(admin, exp=time.time() + 60)
    assert api_client(token=good).get("/api/users/me").status_code == 200
    expired = _forged(admin, exp=time.time() - 1)
    assert "expired" in expect_error(api_client(token=expired).get("/api/users/me"), 401)
    expect_error(api_client(token=expired).get("/api/tokens"), 401)


def test_short_lived_token_really_expires():
    admin = make_admin()
    token = api_client(admin).get("/api/tokens?expiry=1s").json()["token"]
    wait_for(lambda: api_client(token=token).get("/api/users/me").status_code == 401, timeout=10)
    expect_error(api_client(token=token).get("/api/users/me"), 401)


def test_tampered_and_garbage_tokens_are_401():
    admin = make_admin()
    token = api_client(admin).get("/api/tokens").json()["token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "garbage", ""):
        response = Client(headers={"Authorization": f"Bearer {bad}"}).get("/api/users/me")
        expect_error(response, 401)


def test_token_signed_with_other_salt_is_401():
    admin = make_admin()
    other = signing.dumps({"uid": admin.pk, "gen": 0, "exp": time.time() + 60, "scope": "user"})
    expect_error(api_client(token=other).get("/api/users/me"), 401)


def test_disabled_users_token_is_401():
    admin = make_admin()
    user = make_user()
    client = api_client(user)
    assert client.get("/api/users/me").status_code == 200
    response = send(api_client(admin), "put", f"/api/users/{user.pk}", {"is_disabled": True})
    assert response.status_code == 200
    expect_error(client.get("/api/users/me"), 401)
    # re-enabling does not revive tokens issued before the disable
    send(api_client(admin), "put", f"/api/users/{user.pk}", {"is_disabled": False})
    expect_error(client.get("/api/users/me"), 401)
    assert _login("user@example.com").status_code == 200


def test_disabled_in_database_token_is_401():
    user = make_user()
    client = api_client(user)
    User.objects.filter(pk=user.pk).update(is_disabled=True)
    expect_error(client.get("/api/users/me"), 401)


def test_deleted_users_token_is_401():
    admin = make_admin()
    user = make_user()
    client = api_client(user)
    assert api_client(admin).delete(f"/api/users/{user.pk}").status_code == 200
    expect_error(client.get("/api/users/me"), 401)
