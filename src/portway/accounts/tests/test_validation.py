"""Bad input to POST and PUT /api/users: 400 naming the field, and nothing changes."""

from __future__ import annotations

import pytest

from portway.accounts.tests.helpers import snapshot
from portway.testing.api import expect_error, send

pytestmark = pytest.mark.django_db

VALID = {"name": "Valid Name", "email": "valid@example.com"}

# (changes to a valid body, field the message must name)
BAD_FIELDS = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "bad\nname"}, "name"),
    ({"name": "bell\x07"}, "name"),
    ({"name": "rtl\u202eoverride"}, "name"),
    ({"name": 42}, "name"),
    ({"name": None}, "name"),
    ({"name": ["a"]}, "name"),
    ({"nickname": "x" * 101}, "nickname"),
    ({"nickname": "tab\there"}, "nickname"),
    ({"nickname": 7}, "nickname"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "two@@example.com"}, "email"),
    ({"email": "a@b"}, "email"),
    ({"email": ""}, "email"),
    ({"email": "spaces in@example.com"}, "email"),
    ({"email": "x" * 250 + "@example.com"}, "email"),
    ({"email": 1}, "email"),
    ({"email": None}, "email"),
    ({"roles": ["root"]}, "roles/0"),
    ({"roles": ["admin", "x"]}, "roles/1"),
    ({"roles": "admin"}, "roles"),
    ({"roles": [1]}, "roles/0"),
    ({"roles": None}, "roles"),
    ({"is_disabled": 2}, "is_disabled"),
    ({"is_disabled": "yes"}, "is_disabled"),
    ({"is_disabled": None}, "is_disabled"),
    ({"is_disabled": [True]}, "is_disabled"),
    ({"is_admin": True}, "is_admin"),
    ({"avatar": "http://x"}, "avatar"),
    ({"id": 5}, "id"),
]


def _post_body(changes: dict) -> dict:
    return {**VALID, **changes}


@pytest.mark.parametrize(("changes", "field"), BAD_FIELDS)
def test_create_bad_field(admin_client, changes, field):
    before = snapshot()
    response = send(admin_client, "post", "/api/users", _post_body(changes))
    message = expect_error(response, 400)
    assert message.startswith(f"data/{field} "), message
    assert snapshot() == before


@pytest.mark.parametrize(("changes", "field"), BAD_FIELDS)
def test_update_bad_field(admin_client, user, changes, field):
    before = snapshot()
    response = send(admin_client, "put", f"/api/users/{user.pk}", changes)
    message = expect_error(response, 400)
    assert message.startswith(f"data/{field} "), message
    assert snapshot() == before


@pytest.mark.parametrize(("missing", "field"), [("name", "name"), ("email", "email")])
def test_create_missing_required(admin_client, missing, field):
    before = snapshot()
    body = {k: v for k, v in VALID.items() if k != missing}
    assert expect_error(send(admin_client, "post", "/api/users", body), 400).startswith(
        f"data/{field} "
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "password", "secret": "1234567"}, "auth/secret"),
        ({"type": "password", "secret": "x" * 65}, "auth/secret"),
        ({"type": "password", "secret": 12345678}, "auth/secret"),
        ({"type": "ldap", "secret": "long-enough"}, "auth/type"),
        ({"secret": "long-enough"}, "auth/type"),
        ("password", "auth"),
    ],
)
def test_create_bad_auth(admin_client, auth, field):
    before = snapshot()
    response = send(admin_client, "post", "/api/users", {**VALID, "auth": auth})
    assert expect_error(response, 400).startswith(f"data/{field} ")
    assert snapshot() == before


def test_update_empty_body_is_400(admin_client, user):
    before = snapshot()
    expect_error(send(admin_client, "put", f"/api/users/{user.pk}", {}), 400)
    assert snapshot() == before


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '"text"'])
def test_update_non_object_body_is_400(admin_client, user, body):
    before = snapshot()
    expect_error(send(admin_client, "put", f"/api/users/{user.pk}", body), 400)
    assert snapshot() == before


@pytest.mark.parametrize(("value", "expected"), [(1, True), (0, False), ("1", True), ("0", False)])
def test_booleans_accept_zero_and_one(admin_client, user, value, expected):
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": value})
    assert response.status_code == 200, response.content
    assert response.json()["is_disabled"] is expected


def test_name_boundaries_and_trimming(admin_client, user):
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"name": "n" * 100})
    assert response.json()["name"] == "n" * 100
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"name": "  Ünïcødé 名前 "})
    assert response.json()["name"] == "Ünïcødé 名前"


def test_nickname_blank_or_null_clears_it(admin_client, user):
    send(admin_client, "put", f"/api/users/{user.pk}", {"nickname": "nick"})
    assert (
        send(admin_client, "put", f"/api/users/{user.pk}", {"nickname": None}).json()["nickname"]
        == ""
    )


def test_several_bad_fields_name_the_first_rejected(admin_client):
    before = snapshot()
    body = {"name": 1, "email": 2}
    message = expect_error(send(admin_client, "post", "/api/users", body), 400)
    assert "data/name " in message and "data/email " in message
    assert snapshot() == before
