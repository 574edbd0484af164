"""UI sessions end with the account: disabling a user signs them out for good."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from portway.accounts.models import User
from portway.testing.api import PASSWORD, send

pytestmark = pytest.mark.django_db


def _signed_in(user: User) -> Client:
    """A browser-like client that signed in through the login form."""
    browser = Client()
    response = browser.post("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    assert browser.get("/").status_code == 200
    return browser


def _shows_login(browser: Client) -> bool:
    response = browser.get("/")
    return response.status_code == 302 and response["Location"] == "/login"


def test_disabling_a_user_ends_their_ui_session_and_enabling_does_not_revive_it(
    admin_client: Client, user: User
) -> None:
    browser = _signed_in(user)
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": True})
    assert response.status_code == 200, response.content
    assert _shows_login(browser)

    response = send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": False})
    assert response.status_code == 200, response.content
    assert _shows_login(browser)
    # the old session is gone from the store, not merely refused
    assert not any(
        s.get_decoded().get("_auth_user_id") == str(user.pk) for s in Session.objects.all()
    )
    # signing in again works
    _signed_in(user)


def test_a_password_change_by_an_admin_ends_the_users_sessions(
    admin_client: Client, user: User
) -> None:
    browser = _signed_in(user)
    response = send(
        admin_client, "put", f"/api/users/{user.pk}/auth", {"type": "password", "secret": "x" * 12}
    )
    assert response.status_code == 200, response.content
    assert _shows_login(browser)


def test_other_changes_keep_the_session(admin_client: Client, user: User) -> None:
    browser = _signed_in(user)
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"name": "Renamed"})
    assert response.status_code == 200, response.content
    assert browser.get("/").status_code == 200


def test_disabling_one_user_leaves_other_sessions_alone(
    admin_client: Client, admin: User, user: User
) -> None:
    admin_browser = _signed_in(admin)
    send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": True})
    assert admin_browser.get("/").status_code == 200
