"""/api/nginx/access-lists: NPM's wire format, hashes only, bad input, use by hosts."""

from __future__ import annotations

from typing import Any

import pytest

from portway.access.htpasswd import verify_password
from portway.access.models import AccessList, AccessListClient, AccessListItem
from portway.hosts.models import ProxyHost
from portway.nginx.models import AuditLogEntry
from portway.testing.api import api_client, expect_error, make_admin, make_user, send

pytestmark = pytest.mark.django_db

BASE = "/api/nginx/access-lists"
HOSTS = "/api/nginx/proxy-hosts"
LIST_KEYS = {
    "id",
    "created_on",
    "modified_on",
    "owner_user_id",
    "name",
    "meta",
    "satisfy_any",
    "pass_auth",
    "proxy_host_count",
}
VALID: dict[str, Any] = {
    "name": "Staff",
    "satisfy_any": True,
    "pass_auth": False,
    "items": [{"username": "alice", "password": "wonderland1"}],
    "clients": [
        {"address": "127.0.0.2", "directive": "allow"},
        {"address": "2001:db8::/32", "directive": "allow"},
        {"address": "all", "directive": "deny"},
    ],
}

# (id, field named in the message, body fragment)
BAD_INPUT = [
    ("name-empty", "name", {"name": ""}),
    ("name-newline", "name", {"name": "a\nb"}),
    ("name-long", "name", {"name": "n" * 256}),
    ("satisfy-word", "satisfy_any", {"satisfy_any": "maybe"}),
    ("pass-auth-word", "pass_auth", {"pass_auth": "yes please"}),
    ("items-not-list", "items", {"items": "alice"}),
    ("username-colon", "items/0/username", {"items": [{"username": "a:b", "password": "x1"}]}),
    ("username-newline", "items/0/username", {"items": [{"username": "a\nb", "password": "x1"}]}),
    ("username-empty", "items/0/username", {"items": [{"username": "", "password": "x1"}]}),
    ("username-space", "items/0/username", {"items": [{"username": " a", "password": "x1"}]}),
    ("username-long", "items/0/username", {"items": [{"username": "u" * 256, "password": "x"}]}),
    (
        "username-twice",
        "items",
        {"items": [{"username": "a", "password": "x"}, {"username": "a", "password": "y"}]},
    ),
    ("password-newline", "items/0/password", {"items": [{"username": "a", "password": "x\ny"}]}),
    ("password-long", "items/0/password", {"items": [{"username": "a", "password": "p" * 73}]}),
    ("item-extra", "items/0/role", {"items": [{"username": "a", "password": "x", "role": 1}]}),
    ("cidr-word", "clients/0/address", {"clients": [{"address": "lan", "directive": "allow"}]}),
    (
        "cidr-prefix",
        "clients/0/address",
        {"clients": [{"address": "10.0.0.0/33", "directive": "allow"}]},
    ),
    (
        "cidr-octet",
        "clients/0/address",
        {"clients": [{"address": "10.0.0.256", "directive": "allow"}]},
    ),
    (
        "cidr-v6",
        "clients/0/address",
        {"clients": [{"address": "2001:db8::/129", "directive": "deny"}]},
    ),
    (
        "cidr-injection",
        "clients/0/address",
        {"clients": [{"address": "1.2.3.4; deny all", "directive": "allow"}]},
    ),
    (
        "directive-word",
        "clients/0/directive",
        {"clients": [{"address": "all", "directive": "permit"}]},
    ),
    ("meta-not-object", "meta", {"meta": [1]}),
    ("unknown-field", "colour", {"colour": "red"}),
]


@pytest.fixture
def admin():
    return make_admin()


@pytest.fixture
def client(admin):
    return api_client(admin)


def create(client, **fields: Any) -> dict:
    response = send(client, "post", BASE, {**VALID, **fields})
    assert response.status_code == 201, response.content
    return response.json()


def test_create_answers_npm_object_without_secrets(client) -> None:
    body = create(client)
    assert set(body) == LIST_KEYS | {"items", "clients"}
    assert body["satisfy_any"] is True and body["pass_auth"] is False
    assert body["proxy_host_count"] == 0
    [item] = body["items"]
    assert item["username"] == "alice" and item["password"] == "" and item["hint"]
    assert [c["address"] for c in body["clients"]] == ["127.0.0.2", "2001:db8::/32", "all"]
    stored = AccessListItem.objects.get()
    assert "wonderland1" not in stored.password_hash
    assert stored.password_hash.startswith("$2b$")
    assert verify_password("wonderland1", stored.password_hash)
    # no response anywhere carries the password or its hash
    for path in (BASE, f"{BASE}/{body['id']}"):
        text = client.get(path, {"expand": "owner,items,clients,proxy_hosts"}).content.decode()
        assert "wonderland1" not in text and stored.password_hash not in text


def test_list_and_expand(client) -> None:
    create(client, name="B list")
    create(client, name="a list")
    listed = client.get(BASE).json()
    assert [a["name"] for a in listed] == ["B list", "a list"] or [
        a["name"].lower() for a in listed
    ] == ["a list", "b list"]
    assert set(listed[0]) == LIST_KEYS
    expanded = client.get(BASE, {"expand": "owner,items,clients,proxy_hosts"}).json()[0]
    assert set(expanded) == LIST_KEYS | {"owner", "items", "clients", "proxy_hosts"}
    assert client.get(BASE, {"query": "a li"}).json()[0]["name"] == "a list"


def test_empty_password_keeps_the_old_one(client) -> None:
    body = create(client)
    old = AccessListItem.objects.get().password_hash
    items = [{"username": "alice", "password": ""}, {"username": "bob", "password": "builder9"}]
    response = send(client, "put", f"{BASE}/{body['id']}", {"name": body["name"], "items": items})
    assert response.status_code == 200, response.content
    stored = dict(AccessListItem.objects.values_list("username", "password_hash"))
    assert stored["alice"] == old and verify_password("builder9", stored["bob"])
    # a new user without a password: 400, nothing changed
    items = [{"username": "carol", "password": ""}]
    message = expect_error(send(client, "put", f"{BASE}/{body['id']}", {"items": items}), 400)
    assert "items/0/password" in message
    assert set(AccessListItem.objects.values_list("username", flat=True)) == {"alice", "bob"}


@pytest.mark.parametrize(("case", "field", "fragment"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_400_naming_the_field(client, case: str, field: str, fragment: dict) -> None:
    existing = create(client)
    before = (
        list(AccessList.objects.values()),
        list(AccessListItem.objects.values()),
        list(AccessListClient.objects.values()),
        AuditLogEntry.objects.count(),
    )
    for method, path, body in (
        ("post", BASE, {**VALID, **fragment}),
        ("put", f"{BASE}/{existing['id']}", fragment),
    ):
        message = expect_error(send(client, method, path, body), 400)
        assert f"data/{field}" in message or field in message, (method, message)
        after = (
            list(AccessList.objects.values()),
            list(AccessListItem.objects.values()),
            list(AccessListClient.objects.values()),
            AuditLogEntry.objects.count(),
        )
        assert after == before, method


def test_cidr_normalised(client) -> None:
    clients = [{"address": "10.1.2.3/8", "directive": "allow"}]
    body = create(client, clients=clients)
    assert body["clients"][0]["address"] == "10.0.0.0/8"


def test_hosts_refer_to_lists_and_delete_in_use_is_409(client) -> None:
    listed = create(client)
    host = {"domain_names": ["a.example.test"], "forward_host": "127.0.0.1", "forward_port": 80}
    host["forward_scheme"] = "http"
    message = expect_error(send(client, "post", HOSTS, {**host, "access_list_id": 999}), 400)
    assert "access_list_id" in message
    assert not ProxyHost.objects.exists()
    response = send(client, "post", HOSTS, {**host, "access_list_id": listed["id"]})
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["access_list_id"] == listed["id"]
    got = client.get(f"{HOSTS}/{made['id']}", {"expand": "access_list"}).json()
    assert got["access_list"]["id"] == listed["id"]
    assert client.get(f"{BASE}/{listed['id']}").json()["proxy_host_count"] == 1
    message = expect_error(client.delete(f"{BASE}/{listed['id']}"), 409)
    assert "a.example.test" in message and f"proxy host {made['id']}" in message
    assert AccessList.objects.filter(pk=listed["id"]).exists()
    send(client, "put", f"{HOSTS}/{made['id']}", {"access_list_id": 0})
    assert client.delete(f"{BASE}/{listed['id']}").json() is True
    assert not AccessList.objects.exists() and not AccessListItem.objects.exists()


def test_permissions(admin) -> None:
    body = create(api_client(admin))
    hidden = api_client(make_user("h@example.com", access_lists="hidden"))
    expect_error(hidden.get(BASE), 403)
    viewer = api_client(make_user("v@example.com", access_lists="view", visibility="all"))
    assert viewer.get(f"{BASE}/{body['id']}").status_code == 200
    expect_error(send(viewer, "post", BASE, VALID), 403)
    # a user who sees only their own lists cannot put someone else's on a host
    own = make_user("o@example.com", visibility="user", proxy_hosts="manage")
    host = {
        "domain_names": ["o.example.test"],
        "forward_scheme": "http",
        "forward_host": "127.0.0.1",
        "forward_port": 80,
        "access_list_id": body["id"],
    }
    expect_error(send(api_client(own), "post", HOSTS, host), 400)
