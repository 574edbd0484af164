"""/api/users: list, create, read, update, delete, password, permissions, act-as."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from portway.accounts.models import Permission, User
from portway.accounts.permissions import SECTIONS
from portway.accounts.tests.helpers import ISO_Z, USER_KEYS, snapshot
from portway.certificates.models import Certificate
from portway.hosts.models import ProxyHost
from portway.nginx.models import AuditLogEntry
from portway.testing.api import PASSWORD, api_client, expect_error, make_admin, make_user, send

pytestmark = pytest.mark.django_db

PERMISSION_KEYS = {
    "id",
    "created_on",
    "modified_on",
    "user_id",
    "visibility",
    "proxy_hosts",
    "redirection_hosts",
    "dead_hosts",
    "streams",
    "access_lists",
    "certificates",
}


def _login(email: str, secret: str) -> int:
    body = {"identity": email, "secret": secret}
    return send(Client(), "post", "/api/tokens", body).status_code


# --- list -------------------------------------------------------------------------------


def test_list_users_ordered_by_name(admin, admin_client):
    make_user("zed@example.com", name="zed")
    make_user("bob@example.com", name="Bob")
    make_user("amy@example.com", name="amy")
    response = admin_client.get("/api/users")
    assert response.status_code == 200
    body = response.json()
    assert [u["name"] for u in body] == ["Admin", "amy", "Bob", "zed"]
    for item in body:
        assert set(item) == USER_KEYS
        assert re.match(ISO_Z, item["created_on"]) and re.match(ISO_Z, item["modified_on"])


def test_list_users_query_matches_name_or_email(admin, admin_client):
    make_user("carol@corp.test", name="Carol")
    make_user("dave@example.com", name="Dave Corpsman")
    make_user("erin@example.com", name="Erin")
    names = [u["name"] for u in admin_client.get("/api/users?query=CORP").json()]
    assert names == ["Carol", "Dave Corpsman"]
    assert admin_client.get("/api/users?query=nobody").json() == []


def test_list_users_expand_permissions(admin, admin_client, user):
    body = admin_client.get("/api/users?expand=permissions").json()
    assert all(set(u) == USER_KEYS | {"permissions"} for u in body)
    by_email = {u["email"]: u["permissions"] for u in body}
    assert set(by_email[user.email]) == PERMISSION_KEYS
    assert by_email[user.email]["visibility"] == "user"
    assert by_email[user.email]["user_id"] == user.pk


def test_list_users_unknown_expand_is_400(admin_client):
    assert "data/expand " in expect_error(admin_client.get("/api/users?expand=owner"), 400)


def test_list_users_needs_admin(user_client):
    expect_error(user_client.get("/api/users"), 403)
    expect_error(Client().get("/api/users"), 401)


# --- create -------------------------------------------------------------------------------


def test_admin_creates_user(admin, admin_client):
    body = {
        "name": "New Person",
        "nickname": "newbie",
        "email": "New@Example.COM",
        "roles": [],
        "is_disabled": 0,
        "auth": {"type": "password", "secret": "s3cret-pass"},
    }
    response = send(admin_client, "post", "/api/users", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == USER_KEYS
    assert data["email"] == "new@example.com"
    assert data["name"] == "New Person" and data["nickname"] == "newbie"
    assert data["roles"] == [] and data["is_disabled"] is False
    assert _login("new@example.com", "s3cret-pass") == 200
    created = User.objects.get(pk=data["id"])
    assert created.permission.visibility == "user"
    entry = AuditLogEntry.objects.get(action="created", object_id=created.pk)
    assert entry.user_id == admin.pk and entry.object_type == "user"
    assert entry.meta["email"] == "new@example.com"


def test_admin_creates_admin_and_disabled_user(admin_client):
    body = {"name": "Co Admin", "email": "co@example.com", "roles": ["admin"]}
    created = send(admin_client, "post", "/api/users", body).json()
    assert created["roles"] == ["admin"]
    assert User.objects.get(pk=created["id"]).permission.visibility == "all"
    body = {"name": "Off", "email": "off@example.com", "is_disabled": True}
    assert send(admin_client, "post", "/api/users", body).json()["is_disabled"] is True


def test_create_without_auth_has_no_usable_password(admin_client):
    body = {"name": "No Login", "email": "nologin@example.com"}
    assert send(admin_client, "post", "/api/users", body).status_code == 201
    assert not User.objects.get(email="nologin@example.com").has_usable_password()


def test_create_expand_permissions_least_privilege(admin_client):
    """A new non-admin sees nothing until an admin grants sections."""
    body = {"name": "X", "email": "x@example.com"}
    data = send(admin_client, "post", "/api/users?expand=permissions", body).json()
    assert data["permissions"]["visibility"] == "user"
    assert {data["permissions"][s] for s in SECTIONS} == {"hidden"}


@pytest.mark.parametrize("email", ["admin@example.com", "ADMIN@example.com", " Admin@Example.com"])
def test_create_duplicate_email_is_400(admin_client, email):
    before = snapshot()
    body = {"name": "Dup", "email": email}
    message = expect_error(send(admin_client, "post", "/api/users", body), 400)
    assert message.startswith("data/email ")
    assert snapshot() == before


def test_create_needs_admin(user_client):
    before = snapshot()
    body = {"name": "Nope", "email": "nope@example.com"}
    expect_error(send(user_client, "post", "/api/users", body), 403)
    assert snapshot() == before


# --- read -------------------------------------------------------------------------------------


def test_get_user_by_id_and_me(admin, admin_client, user, user_client):
    data = admin_client.get(f"/api/users/{user.pk}").json()
    assert set(data) == USER_KEYS
    assert data == {
        "id": user.pk,
        "created_on": data["created_on"],
        "modified_on": data["modified_on"],
        "is_disabled": False,
        "email": "user@example.com",
        "name": "Ursula User",
        "nickname": "",
        "avatar": "",
        "roles": [],
    }
    assert user_client.get("/api/users/me").json() == data
    assert user_client.get(f"/api/users/{user.pk}").json() == data
    assert admin_client.get("/api/users/me").json()["id"] == admin.pk


def test_get_me_expand_permissions(user_client, user):
    data = user_client.get("/api/users/me?expand=permissions").json()
    assert set(data) == USER_KEYS | {"permissions"}
    assert set(data["permissions"]) == PERMISSION_KEYS


def test_non_admin_cannot_read_others(admin, user_client):
    expect_error(user_client.get(f"/api/users/{admin.pk}"), 403)
    expect_error(user_client.get("/api/users/999999"), 403)  # no probing which ids exist


def test_get_missing_user_is_404(admin_client):
    expect_error(admin_client.get("/api/users/999999"), 404)
    expect_error(admin_client.get("/api/users/abc"), 404)
    expect_error(admin_client.get("/api/users/99999999999999999999999"), 404)


def test_users_need_a_token(user):
    expect_error(Client().get(f"/api/users/{user.pk}"), 401)
    expect_error(Client().get("/api/users/me"), 401)


# --- update -------------------------------------------------------------------------------------


def test_admin_updates_user(admin, admin_client, user):
    body = {"name": " Renamed ", "nickname": "ren", "email": "Renamed@Example.com"}
    response = send(admin_client, "put", f"/api/users/{user.pk}", body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == USER_KEYS
    assert (data["name"], data["nickname"], data["email"]) == (
        "Renamed",
        "ren",
        "renamed@example.com",
    )
    user.refresh_from_db()
    assert user.email == "renamed@example.com"
    entry = AuditLogEntry.objects.get(action="updated", object_id=user.pk)
    assert entry.user_id == admin.pk and entry.meta["changed"] == ["email", "name", "nickname"]


def test_user_updates_self(user, user_client):
    data = send(user_client, "put", "/api/users/me", {"name": "Me Myself"}).json()
    assert data["name"] == "Me Myself"
    # sending the unchanged role and state is fine
    body = {"roles": [], "is_disabled": False}
    assert send(user_client, "put", "/api/users/me", body).status_code == 200


def test_update_keeps_own_email_case_insensitive(admin_client, user):
    body = {"email": "USER@example.com"}
    assert send(admin_client, "put", f"/api/users/{user.pk}", body).status_code == 200


def test_update_to_taken_email_is_400(admin, admin_client, user):
    before = snapshot()
    body = {"email": "ADMIN@example.com"}
    assert expect_error(send(admin_client, "put", f"/api/users/{user.pk}", body), 400).startswith(
        "data/email "
    )
    assert snapshot() == before


def test_admin_promotes_and_demotes(admin_client, user):
    assert send(admin_client, "put", f"/api/users/{user.pk}", {"roles": ["admin"]}).json()[
        "roles"
    ] == ["admin"]
    assert send(admin_client, "put", f"/api/users/{user.pk}", {"roles": []}).json()["roles"] == []


def test_non_admin_cannot_make_itself_admin(user, user_client):
    before = snapshot()
    message = expect_error(send(user_client, "put", "/api/users/me", {"roles": ["admin"]}), 403)
    assert "roles" in message
    assert snapshot() == before


def test_non_admin_cannot_update_others(admin, user_client):
    before = snapshot()
    expect_error(send(user_client, "put", f"/api/users/{admin.pk}", {"name": "Hacked"}), 403)
    assert snapshot() == before


def test_nobody_disables_themselves(admin, admin_client, user, user_client):
    before = snapshot()
    message = expect_error(send(admin_client, "put", "/api/users/me", {"is_disabled": True}), 403)
    assert "is_disabled" in message
    expect_error(send(user_client, "put", "/api/users/me", {"is_disabled": 1}), 403)
    assert snapshot() == before


def test_disabled_user_cannot_reenable_itself(admin_client, user):
    client = api_client(user)
    send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": True})
    expect_error(send(client, "put", "/api/users/me", {"is_disabled": False}), 401)
    assert User.objects.get(pk=user.pk).is_disabled


def test_last_admin_keeps_admin_role(admin, admin_client):
    before = snapshot()
    expect_error(send(admin_client, "put", "/api/users/me", {"roles": []}), 403)
    assert snapshot() == before
    make_admin("second@example.com", name="Second")
    assert send(admin_client, "put", "/api/users/me", {"roles": []}).json()["roles"] == []


def test_update_unknown_user_is_404(admin_client):
    expect_error(send(admin_client, "put", "/api/users/424242", {"name": "x"}), 404)


# --- delete -----------------------------------------------------------------------------------


def test_admin_deletes_user_and_takes_over_objects(admin, admin_client, user):
    host = ProxyHost.objects.create(
        owner=user, domain_names=["a.example.com"], forward_host="app", forward_port=80
    )
    cert = Certificate.objects.create(owner=user, provider="other", nice_name="mine")
    kept = ProxyHost.objects.create(
        owner=admin, domain_names=["b.example.com"], forward_host="app", forward_port=80
    )
    response = admin_client.delete(f"/api/users/{user.pk}")
    assert response.status_code == 200
    assert response.json() is True
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Permission.objects.filter(user_id=user.pk).exists()
    host.refresh_from_db()
    cert.refresh_from_db()
    kept.refresh_from_db()
    assert host.owner_id == cert.owner_id == kept.owner_id == admin.pk
    entry = AuditLogEntry.objects.get(action="deleted")
    assert (entry.user_id, entry.object_type, entry.object_id) == (admin.pk, "user", user.pk)
    assert entry.meta["email"] == "user@example.com"
    assert entry.meta["reassigned"] == {"hosts.proxyhost": 1, "certificates.certificate": 1}


def test_nobody_deletes_themselves(admin_client, user_client):
    before = snapshot()
    expect_error(admin_client.delete("/api/users/me"), 403)
    expect_error(user_client.delete("/api/users/me"), 403)
    assert snapshot() == before


def test_non_admin_cannot_delete_others(admin, user_client):
    expect_error(user_client.delete(f"/api/users/{admin.pk}"), 403)
    assert User.objects.filter(pk=admin.pk).exists()


def test_delete_missing_user_is_404(admin_client):
    expect_error(admin_client.delete("/api/users/424242"), 404)


# --- password -----------------------------------------------------------------------------------


def test_change_own_password_needs_current(user, user_client):
    before = snapshot()
    body = {"type": "password", "secret": "brand-new-pass"}
    assert "data/current " in expect_error(
        send(user_client, "put", "/api/users/me/auth", body), 400
    )
    body["current"] = "not-my-password"
    assert "data/current " in expect_error(
        send(user_client, "put", "/api/users/me/auth", body), 400
    )
    assert snapshot() == before
    body["current"] = PASSWORD
    response = send(user_client, "put", "/api/users/me/auth", body)
    assert response.status_code == 200 and response.json() is True
    assert _login("user@example.com", PASSWORD) == 401
    assert _login("user@example.com", "brand-new-pass") == 200


def test_password_change_revokes_tokens(admin, user):
    old_client = api_client(user)
    other_old = api_client(user)
    body = {"type": "password", "current": PASSWORD, "secret": "brand-new-pass"}
    assert send(old_client, "put", "/api/users/me/auth", body).status_code == 200
    assert "revoked" in expect_error(old_client.get("/api/users/me"), 401)
    expect_error(other_old.get("/api/tokens"), 401)
    assert api_client(User.objects.get(pk=user.pk)).get("/api/users/me").status_code == 200


def test_admin_sets_others_password_without_current(admin, admin_client, user):
    user_token_client = api_client(user)
    body = {"type": "password", "secret": "set-by-admin"}
    response = send(admin_client, "put", f"/api/users/{user.pk}/auth", body)
    assert response.status_code == 200 and response.json() is True
    assert _login("user@example.com", "set-by-admin") == 200
    expect_error(user_token_client.get("/api/users/me"), 401)
    assert admin_client.get("/api/users/me").status_code == 200  # admin's own token lives
    entry = AuditLogEntry.objects.get(action="updated", object_id=user.pk)
    assert entry.meta["changed"] == ["auth"]
    assert "set-by-admin" not in str(entry.meta)


def test_admin_own_password_needs_current(admin_client):
    body = {"type": "password", "secret": "brand-new-pass"}
    assert "data/current " in expect_error(
        send(admin_client, "put", "/api/users/me/auth", body), 400
    )


def test_non_admin_cannot_set_others_password(admin, user_client):
    before = snapshot()
    body = {"type": "password", "current": PASSWORD, "secret": "brand-new-pass"}
    expect_error(send(user_client, "put", f"/api/users/{admin.pk}/auth", body), 403)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "password", "current": PASSWORD, "secret": "short"}, "secret"),
        ({"type": "password", "current": PASSWORD, "secret": "x" * 65}, "secret"),
        ({"type": "password", "current": PASSWORD}, "secret"),
        ({"type": "password", "current": PASSWORD, "secret": 12345678}, "secret"),
        ({"type": "pin", "current": PASSWORD, "secret": "long-enough"}, "type"),
        ({"current": PASSWORD, "secret": "long-enough"}, "type"),
        ({"type": "password", "current": PASSWORD, "secret": "long-enough", "x": 1}, "x"),
    ],
)
def test_change_password_bad_input(user_client, body, field):
    before = snapshot()
    message = expect_error(send(user_client, "put", "/api/users/me/auth", body), 400)
    assert f"data/{field} " in message
    assert snapshot() == before


def test_password_boundaries(admin_client, user):
    for secret in ("k7#pQ2!z", "y" * 63 + "Z"):
        body = {"type": "password", "secret": secret}
        assert send(admin_client, "put", f"/api/users/{user.pk}/auth", body).status_code == 200
        assert _login("user@example.com", secret) == 200


# --- permissions --------------------------------------------------------------------------------


def test_admin_sets_permissions(admin, admin_client, user):
    body = {"visibility": "all", "proxy_hosts": "view", "certificates": "hidden"}
    response = send(admin_client, "put", f"/api/users/{user.pk}/permissions", body)
    assert response.status_code == 200 and response.json() is True
    perms = admin_client.get(f"/api/users/{user.pk}?expand=permissions").json()["permissions"]
    assert perms["visibility"] == "all"
    assert perms["proxy_hosts"] == "view"
    assert perms["certificates"] == "hidden"
    assert perms["streams"] == "manage"  # untouched
    entry = AuditLogEntry.objects.get(action="updated", object_id=user.pk)
    assert entry.user_id == admin.pk and entry.meta["permissions"]["proxy_hosts"] == "view"


def test_permissions_for_user_without_row(admin_client):
    legacy = User.objects.create_user("legacy@example.com", PASSWORD, name="Legacy")
    assert not Permission.objects.filter(user=legacy).exists()
    body = {"streams": "view"}
    assert send(admin_client, "put", f"/api/users/{legacy.pk}/permissions", body).json() is True
    assert Permission.objects.get(user=legacy).streams == "view"


def test_non_admin_cannot_set_permissions(user, user_client):
    before = snapshot()
    body = {"proxy_hosts": "manage"}
    expect_error(send(user_client, "put", "/api/users/me/permissions", body), 403)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"visibility": "everyone"}, "visibility"),
        ({"proxy_hosts": "admin"}, "proxy_hosts"),
        ({"streams": 1}, "streams"),
        ({"certificates": None}, "certificates"),
        ({"settings": "manage"}, "settings"),
    ],
)
def test_permissions_bad_input(admin_client, user, body, field):
    before = snapshot()
    response = send(admin_client, "put", f"/api/users/{user.pk}/permissions", body)
    assert f"data/{field} " in expect_error(response, 400)
    assert snapshot() == before


# --- act as ------------------------------------------------------------------------------------


def test_admin_logs_in_as_user(admin, admin_client, user):
    response = admin_client.post(f"/api/users/{user.pk}/login")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"token", "expires", "user"}
    assert re.match(ISO_Z, data["expires"])
    assert set(data["user"]) == USER_KEYS and data["user"]["id"] == user.pk
    assert api_client(token=data["token"]).get("/api/users/me").json()["id"] == user.pk
    entry = AuditLogEntry.objects.get(action="login", object_id=user.pk)
    assert entry.user_id == admin.pk


def test_login_as_needs_admin_and_enabled_target(admin, admin_client, user, user_client):
    expect_error(user_client.post(f"/api/users/{admin.pk}/login"), 403)
    expect_error(user_client.post("/api/users/me/login"), 403)
    off = make_user("off@example.com", is_disabled=True)
    expect_error(admin_client.post(f"/api/users/{off.pk}/login"), 400)
