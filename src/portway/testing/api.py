"""Helpers for API tests: real users, real tokens, Django's test client.

    from portway.testing.api import api_client, make_admin, make_user

    @pytest.mark.django_db
    def test_something():
        client = api_client(make_admin())
        response = client.get("/api/nginx/proxy-hosts")

Nothing is mocked: tokens are issued by `portway.accounts.tokens` and checked by the
API's BearerAuth exactly as for a real client.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from portway.accounts import tokens
from portway.accounts.models import User
from portway.accounts.permissions import permission_for

ADMIN_EMAIL = "admin@example.com"
PASSWORD = "changeme123"


def make_user(
    email: str = "user@example.com",
    password: str = PASSWORD,
    *,
    name: str | None = None,
    is_admin: bool = False,
    is_disabled: bool = False,
    **permissions: str,
) -> User:
    """Create and return a user with a Permission row.

    Args:
        name: display name; defaults to the part of `email` before "@".
        permissions: Permission fields to set, e.g. visibility="all", proxy_hosts="view".
    """
    user = User.objects.create_user(
        email,
        password,
        is_admin=is_admin,
        is_disabled=is_disabled,
        name=name or email.split("@")[0],
    )
    permission = permission_for(user)
    if permissions:
        for field, value in permissions.items():
            setattr(permission, field, value)
        permission.save()
    return user


def make_admin(email: str = ADMIN_EMAIL, password: str = PASSWORD, **kwargs: Any) -> User:
    """Create and return an admin user (name "Admin" unless given)."""
    kwargs.setdefault("name", "Admin")
    return make_user(email, password, is_admin=True, **kwargs)


def token_for(user: User, expiry: str | None = None) -> str:
    """A fresh bearer token for `user`."""
    token, _ = tokens.issue(user, expiry)
    return token


def api_client(user: User | None = None, *, token: str | None = None) -> Client:
    """A test client sending `Authorization: Bearer <token>` on every request.

    Args:
        user: the user to authenticate as; a token is issued for them.
        token: send this token instead (e.g. an expired or revoked one).
            With neither, the client sends no Authorization header.
    """
    if token is None and user is not None:
        token = token_for(user)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return Client(headers=headers)


def send(client: Client, method: str, path: str, body: Any = None) -> Any:
    """`client.<method>(path)` with `body` encoded as JSON (a str is sent unchanged).

    Returns Django's test response; `.json()` parses it.
    """
    kwargs: dict[str, Any] = {}
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        kwargs = {"data": data, "content_type": "application/json"}
    return getattr(client, method.lower())(path, **kwargs)


def expect_error(response: Any, status: int) -> str:
    """Assert NPM's error body `{"error": {"code", "message"}}` with `status`.

    Returns:
        The error message, for further asserts (e.g. that it names the field).
    """
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == status, body
    return body["error"]["message"]
