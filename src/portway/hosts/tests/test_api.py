"""/api/nginx/proxy-hosts through Django's test client: real tokens, real `nginx -t` preflight.

Endpoints, wire format, permissions, certificate linking and the audit log. Bad input for
every field is in test_api_validation.py, which shares `ProxyHostAPI` and the helpers here.

`ProxyHostAPI` is the base of every test class (as NetBox's APIViewTestCases): each test
gets a fresh admin with a token (`self.admin`, `self.api`), its own DATA_DIR for
certificate files, and the helpers `create`, `rejected`, `make_host`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from portway.accounts.models import User
from portway.certificates import services as cert_services
from portway.certificates.models import Certificate
from portway.core.validation import has_raw_phrase
from portway.hosts.models import ProxyHost
from portway.nginx.models import AuditLogEntry
from portway.testing import certs
from portway.testing.api import api_client, expect_error, make_admin, make_user, send
from portway.testing.wire import CERTIFICATE_KEYS, USER_KEYS

# Portway adds these beside NPM's nginx_online / nginx_err: a rejected edit whose previous
# config is still served, and why browsers would refuse the host's certificate
LIVE = {"nginx_serving_previous": False, "certificate_warnings": []}

pytestmark = pytest.mark.django_db

BASE = "/api/nginx/proxy-hosts"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
BOOL_FIELDS = (
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "http2_support",
    "block_exploits",
    "caching_enabled",
    "allow_websocket_upgrade",
    "trust_forwarded_proto",
    "cloudflare_only",
    "enabled",
)
# Booleans no NPM rule ties to a certificate or another option.
FREE_BOOL_FIELDS = (
    "block_exploits",
    "caching_enabled",
    "allow_websocket_upgrade",
    "trust_forwarded_proto",
    "enabled",
)
HOST_KEYS = {
    "id",
    "created_on",
    "modified_on",
    "owner_user_id",
    "domain_names",
    "forward_scheme",
    "forward_host",
    "forward_port",
    "access_list_id",
    "certificate_id",
    "advanced_config",
    "locations",
    "meta",
    *BOOL_FIELDS,
}
VALID = {
    "domain_names": ["app.example.com"],
    "forward_scheme": "http",
    "forward_host": "10.0.0.10",
    "forward_port": 8080,
}
CERT_NAMES = ["club.example", "*.club.example"]


def url(host_id: int | str, action: str = "") -> str:
    return f"{BASE}/{host_id}" + (f"/{action}" if action else "")


def snapshot() -> tuple[list[dict[str, Any]], list[int]]:
    """Every proxy-host row and audit entry: a rejected request must leave both as they were."""
    hosts = list(ProxyHost.objects.order_by("id").values())
    audit = list(AuditLogEntry.objects.order_by("id").values_list("id", flat=True))
    return hosts, audit


def assert_names_field(message: str, field: str) -> None:
    """NPM style: `data/<field> <reason>` (several errors are joined by "; ")."""
    assert re.search(rf"(^|; )data/{re.escape(field)} \S", message), (field, message)


def audit_entries(client: Client, host_id: int) -> list[dict[str, Any]]:
    response = client.get("/api/audit-log")
    assert response.status_code == 200, response.content
    return [
        e for e in response.json() if e["object_type"] == "proxy-host" and e["object_id"] == host_id
    ]


class ProxyHostAPI:
    """Shared setup and helpers; subclasses named Test* hold the tests."""

    admin: User
    api: Client

    @pytest.fixture(autouse=True)
    def _setup(self, db: None, settings: Any, tmp_path: Any) -> None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        settings.DATA_DIR = tmp_path  # certificate files of this test only
        self.admin = make_admin()
        self.api = api_client(self.admin)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def body(**fields: Any) -> dict[str, Any]:
        return {**VALID, **fields}

    def create(self, client: Client | None = None, **fields: Any) -> dict[str, Any]:
        """POST a valid host (fields override VALID); asserts 201, returns the object."""
        response = send(client or self.api, "post", BASE, self.body(**fields))
        assert response.status_code == 201, response.content
        return response.json()

    def get(self, host_id: int, client: Client | None = None, **params: str) -> dict[str, Any]:
        response = (client or self.api).get(url(host_id), params)
        assert response.status_code == 200, response.content
        return response.json()

    def make_host(self, owner: User | None = None, **fields: Any) -> ProxyHost:
        """A row straight in the database (no preflight): setup for tests that change it."""
        values = {**VALID, **fields}
        return ProxyHost.objects.create(owner=owner or self.admin, **values)

    def rejected(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 400,
        field: str | None = None,
        client: Client | None = None,
    ) -> str:
        """Send; assert NPM's error with `status`, naming `field`, and that nothing changed."""
        before = snapshot()
        response = send(client or self.api, method, path, body)
        message = expect_error(response, status)
        if field is not None:
            assert_names_field(message, field)
        assert has_raw_phrase(message) is None, f"pydantic's wording reached the client: {message}"
        assert snapshot() == before, "a rejected request changed the database"
        return message

    def upload_certificate(
        self, owner: User | None = None, names: list[str] = CERT_NAMES
    ) -> Certificate:
        """A custom certificate with real PEM files (root → intermediate → leaf for names)."""
        owner = owner or self.admin
        leaf = certs.make_chain(names)
        cert = cert_services.create_custom(owner, "Club " + names[0])
        return cert_services.upload(owner, cert, leaf.cert_pem, leaf.key_pem(), leaf.chain_pem)


# ====================================================================== create / get


class TestCreate(ProxyHostAPI):
    FULL = {
        "domain_names": ["App.Example.com", "www.app.example.com"],
        "forward_scheme": "https",
        "forward_host": "10.0.0.10",
        "forward_port": 8443,
        "access_list_id": 0,
        "certificate_id": 0,
        "ssl_forced": False,
        "hsts_enabled": False,
        "hsts_subdomains": False,
        "http2_support": False,
        "block_exploits": True,
        "caching_enabled": True,
        "allow_websocket_upgrade": True,
        "trust_forwarded_proto": True,
        "cloudflare_only": False,  # needs a certificate
        "advanced_config": "client_max_body_size 10m;",
        "locations": [
            {
                "path": "/api",
                "forward_scheme": "http",
                "forward_host": "10.0.0.11",
                "forward_port": 9000,
                "forward_path": "/v1",
            }
        ],
        "enabled": True,
        "meta": {
            "letsencrypt_agree": False,
            "dns_challenge": False,
            "managed_by": "terraform",
            "mark": {"team": "ops", "ids": [1, 2, 3], "ratio": 0.5, "none": None},
        },
    }

    def test_returns_201_with_the_full_npm_object(self) -> None:
        response = send(self.api, "post", BASE, self.FULL)
        assert response.status_code == 201, response.content
        host = response.json()
        assert set(host) == HOST_KEYS
        assert isinstance(host["id"], int)
        assert ISO_Z.match(host["created_on"]) and ISO_Z.match(host["modified_on"])
        assert host["owner_user_id"] == self.admin.pk
        assert host["domain_names"] == ["app.example.com", "www.app.example.com"]
        assert host["forward_scheme"] == "https"
        assert host["forward_host"] == "10.0.0.10"
        assert host["forward_port"] == 8443
        assert host["access_list_id"] == 0
        assert host["certificate_id"] == 0
        assert host["advanced_config"] == "client_max_body_size 10m;"
        assert host["locations"] == [
            {
                "path": "/api",
                "forward_scheme": "http",
                "forward_host": "10.0.0.11",
                "forward_port": 9000,
                "forward_path": "/v1",
                "advanced_config": "",
            }
        ]
        for name in BOOL_FIELDS:
            assert host[name] is self.FULL[name], name
        assert host["meta"] == {
            **self.FULL["meta"],
            "nginx_online": True,
            "nginx_err": None,
            **LIVE,
        }

    def test_minimal_body_gets_npm_defaults(self) -> None:
        host = self.create()
        assert host["certificate_id"] == 0 and host["access_list_id"] == 0
        assert host["advanced_config"] == "" and host["locations"] == []
        assert host["enabled"] is True
        for name in set(BOOL_FIELDS) - {"enabled"}:
            assert host[name] is False, name
        assert host["meta"] == {"nginx_online": True, "nginx_err": None, **LIVE}

    def test_stored_meta_holds_only_the_clients_keys(self) -> None:
        meta = {"owner_tool": "ansible", "nginx_online": False, "nginx_err": "forged"}
        host = self.create(meta=meta)
        assert host["meta"] == {
            "owner_tool": "ansible",
            "nginx_online": True,
            "nginx_err": None,
            **LIVE,
        }
        assert ProxyHost.objects.get(pk=host["id"]).meta == {"owner_tool": "ansible"}

    def test_created_disabled_is_stored_disabled(self) -> None:
        host = self.create(enabled=False)
        assert host["enabled"] is False
        assert ProxyHost.objects.get(pk=host["id"]).enabled is False

    def test_config_nginx_rejects_is_saved_with_nginx_online_false(self) -> None:
        # Balanced, so validation lets it through; nginx itself refuses a nested server.
        host = self.create(advanced_config="server {\n    listen 8081;\n}")
        assert host["meta"]["nginx_online"] is False
        assert "server" in host["meta"]["nginx_err"]
        assert "directive is not allowed here" in host["meta"]["nginx_err"]
        assert self.get(host["id"])["meta"]["nginx_online"] is False
        # Fixing it brings the host back online.
        response = send(self.api, "put", url(host["id"]), {"advanced_config": ""})
        assert response.status_code == 200, response.content
        assert response.json()["meta"] == {"nginx_online": True, "nginx_err": None, **LIVE}

    def test_get_returns_what_create_returned(self) -> None:
        created = send(self.api, "post", BASE, self.FULL).json()
        assert self.get(created["id"]) == created

    def test_get_missing_is_404(self) -> None:
        assert "not found" in expect_error(self.api.get(url(999999)), 404).lower()

    def test_get_expand(self) -> None:
        host = self.create()
        got = self.get(host["id"], expand="owner,certificate,access_list")
        assert set(got) == HOST_KEYS | {"owner", "certificate", "access_list"}
        assert set(got["owner"]) == USER_KEYS
        assert got["owner"]["id"] == self.admin.pk
        assert got["certificate"] is None and got["access_list"] is None


# ====================================================================== list


class TestList(ProxyHostAPI):
    def names(self, response: Any) -> list[str]:
        assert response.status_code == 200, response.content
        return [h["domain_names"][0] for h in response.json()]

    def test_empty(self) -> None:
        response = self.api.get(BASE)
        assert response.status_code == 200 and response.json() == []

    def test_ordered_by_first_domain_name(self) -> None:
        for names in (["charlie.example"], ["alpha.example", "zulu.example"], ["bravo.example"]):
            self.make_host(domain_names=names)
        # a later name does not move a host: "zulu" is second
        assert self.names(self.api.get(BASE)) == [
            "alpha.example",
            "bravo.example",
            "charlie.example",
        ]

    def test_list_items_are_full_objects(self) -> None:
        created = self.create()
        assert self.api.get(BASE).json() == [created]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("bravo", ["bravo.example"]),
            ("BRAVO", ["bravo.example"]),
            ("ravo.ex", ["bravo.example"]),
            ("extra", ["alpha.example"]),  # matches a name that is not the first
            ("example", ["alpha.example", "bravo.example", "charlie.example"]),
            ("nomatch", []),
        ],
    )
    def test_query_filters_by_domain_substring(self, query: str, expected: list[str]) -> None:
        self.make_host(domain_names=["charlie.example"])
        self.make_host(domain_names=["alpha.example", "extra.example"])
        self.make_host(domain_names=["bravo.example"])
        assert self.names(self.api.get(BASE, {"query": query})) == expected

    def test_expand_owner_certificate_access_list(self) -> None:
        self.create()
        response = self.api.get(BASE, {"expand": "owner,certificate,access_list"})
        (host,) = response.json()
        assert set(host) == HOST_KEYS | {"owner", "certificate", "access_list"}
        assert set(host["owner"]) == USER_KEYS
        assert host["owner"]["email"] == self.admin.email
        assert host["owner"]["roles"] == ["admin"]
        assert ISO_Z.match(host["owner"]["created_on"])
        assert host["certificate"] is None and host["access_list"] is None

    def test_without_expand_no_related_objects(self) -> None:
        self.create()
        (host,) = self.api.get(BASE).json()
        assert set(host) == HOST_KEYS


# ====================================================================== update


class TestUpdate(ProxyHostAPI):
    def test_put_one_field_changes_only_that_field(self) -> None:
        before = self.create(block_exploits=True, meta={"k": "v"})
        response = send(self.api, "put", url(before["id"]), {"forward_port": 9090})
        assert response.status_code == 200, response.content
        after = response.json()
        assert after["forward_port"] == 9090
        assert ISO_Z.match(after["modified_on"])
        unchanged = HOST_KEYS - {"forward_port", "modified_on"}
        assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
        assert self.get(before["id"]) == after

    def test_put_every_field(self) -> None:
        host = self.create()
        change = {
            "domain_names": ["New.Example.org."],
            "forward_scheme": "https",
            "forward_host": "[2001:db8::5]",
            "forward_port": "8443",
            "access_list_id": "0",
            "certificate_id": 0,
            "block_exploits": 1,
            "caching_enabled": True,
            "allow_websocket_upgrade": 1,
            "trust_forwarded_proto": True,
            "advanced_config": "proxy_read_timeout 90s;",
            "locations": [{"path": "/ws", "forward_host": "ws.internal", "forward_port": 7000}],
            "meta": {"note": "moved"},
        }
        response = send(self.api, "put", url(host["id"]), change)
        assert response.status_code == 200, response.content
        got = response.json()
        assert got["domain_names"] == ["new.example.org"]
        assert got["forward_scheme"] == "https"
        assert got["forward_host"] == "2001:db8::5"
        assert got["forward_port"] == 8443
        assert got["access_list_id"] == 0 and got["certificate_id"] == 0
        for name in ("block_exploits", "caching_enabled", "allow_websocket_upgrade"):
            assert got[name] is True
        assert got["advanced_config"] == "proxy_read_timeout 90s;"
        assert got["locations"][0]["path"] == "/ws"
        assert got["locations"][0]["forward_scheme"] == "http"
        assert got["meta"] == {"note": "moved", "nginx_online": True, "nginx_err": None, **LIVE}

    def test_put_meta_replaces_the_clients_meta(self) -> None:
        host = self.create(meta={"a": 1, "b": 2})
        response = send(self.api, "put", url(host["id"]), {"meta": {"c": 3}})
        assert response.json()["meta"] == {"c": 3, "nginx_online": True, "nginx_err": None, **LIVE}

    def test_put_empty_body_is_400(self) -> None:
        host = self.create()
        message = self.rejected("put", url(host["id"]), {})
        assert "at least one" in message

    def test_put_without_body_is_400(self) -> None:
        host = self.create()
        self.rejected("put", url(host["id"]))

    def test_put_missing_is_404(self) -> None:
        self.rejected("put", url(999999), {"forward_port": 81}, status=404)

    def test_put_can_disable_and_reenable(self) -> None:
        host = self.create()
        assert send(self.api, "put", url(host["id"]), {"enabled": False}).json()["enabled"] is False
        assert send(self.api, "put", url(host["id"]), {"enabled": 1}).json()["enabled"] is True


# ====================================================================== delete, enable, disable


class TestDeleteEnableDisable(ProxyHostAPI):
    def test_delete_returns_true_and_removes_the_host(self) -> None:
        host = self.create()
        response = self.api.delete(url(host["id"]))
        assert response.status_code == 200 and response.json() is True
        assert not ProxyHost.objects.filter(pk=host["id"]).exists()
        expect_error(self.api.get(url(host["id"])), 404)
        self.rejected("delete", url(host["id"]), status=404)

    def test_delete_missing_is_404(self) -> None:
        self.rejected("delete", url(999999), status=404)

    def test_disable_then_enable(self) -> None:
        host = self.create()
        response = self.api.post(url(host["id"], "disable"))
        assert response.status_code == 200 and response.json() is True
        assert self.get(host["id"])["enabled"] is False
        response = self.api.post(url(host["id"], "enable"))
        assert response.status_code == 200 and response.json() is True
        got = self.get(host["id"])
        assert got["enabled"] is True and got["meta"]["nginx_online"] is True

    def test_disable_when_disabled_is_400(self) -> None:
        host = self.create(enabled=False)
        message = self.rejected("post", url(host["id"], "disable"))
        assert "already disabled" in message

    def test_enable_when_enabled_is_400(self) -> None:
        host = self.create()
        message = self.rejected("post", url(host["id"], "enable"))
        assert "already enabled" in message

    @pytest.mark.parametrize("action", ["enable", "disable"])
    def test_missing_is_404(self, action: str) -> None:
        self.rejected("post", url(999999, action), status=404)


# ====================================================================== authentication, permissions


ENDPOINTS = [
    ("get", BASE, None),
    ("post", BASE, VALID),
    ("get", url(1), None),
    ("put", url(1), {"forward_port": 81}),
    ("delete", url(1), None),
    ("post", url(1, "enable"), None),
    ("post", url(1, "disable"), None),
]
WRITES = [e for e in ENDPOINTS if (e[0], e[1]) not in {("get", BASE), ("get", url(1))}]


class TestAuthentication(ProxyHostAPI):
    @pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
    def test_no_token_is_401(self, method: str, path: str, body: Any) -> None:
        self.make_host(id=1)
        self.rejected(method, path, body, status=401, client=Client())

    @pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
    def test_bad_token_is_401(self, method: str, path: str, body: Any) -> None:
        self.make_host(id=1)
        self.rejected(method, path, body, status=401, client=api_client(token="not.a.token"))

    def test_disabled_users_token_is_401(self) -> None:
        user = make_user("gone@example.com")
        client = api_client(user)
        user.is_disabled = True
        user.save()
        self.rejected("get", BASE, status=401, client=client)
        self.rejected("post", BASE, VALID, status=401, client=client)


class TestPermissions(ProxyHostAPI):
    def user_client(self, email: str = "user@example.com", **permissions: str) -> Client:
        self.user = make_user(email, **permissions)
        return api_client(self.user)

    @staticmethod
    def rewrite(path: str, host_id: int) -> str:
        """An ENDPOINTS path with host id 1 pointed at `host_id`."""
        return path.replace(url(1), url(host_id))

    def test_view_permission_reads(self) -> None:
        host = self.create()
        client = self.user_client(proxy_hosts="view", visibility="all")
        assert [h["id"] for h in client.get(BASE).json()] == [host["id"]]
        assert self.get(host["id"], client) == host

    @pytest.mark.parametrize(("method", "path", "body"), WRITES)
    def test_view_permission_cannot_write(self, method: str, path: str, body: Any) -> None:
        host = self.make_host(domain_names=["other.example"])
        client = self.user_client(proxy_hosts="view", visibility="all")
        self.rejected(method, self.rewrite(path, host.pk), body, status=403, client=client)

    @pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
    def test_hidden_permission_is_403_everywhere(self, method: str, path: str, body: Any) -> None:
        host = self.make_host(domain_names=["other.example"])
        client = self.user_client(proxy_hosts="hidden", visibility="all")
        message = self.rejected(
            method, self.rewrite(path, host.pk), body, status=403, client=client
        )
        assert "proxy hosts" in message

    def test_visibility_user_sees_only_own_hosts(self) -> None:
        theirs = self.create(domain_names=["admin.example"])
        client = self.user_client(proxy_hosts="manage", visibility="user")
        mine = self.create(client, domain_names=["mine.example"])
        assert mine["owner_user_id"] == self.user.pk
        assert [h["id"] for h in client.get(BASE).json()] == [mine["id"]]
        assert [h["id"] for h in client.get(BASE, {"query": "admin"}).json()] == []
        expect_error(client.get(url(theirs["id"])), 404)
        # the admin sees both
        assert {h["id"] for h in self.api.get(BASE).json()} == {theirs["id"], mine["id"]}

    @pytest.mark.parametrize(("method", "path", "body"), WRITES[1:])
    def test_visibility_user_cannot_touch_others_hosts(
        self, method: str, path: str, body: Any
    ) -> None:
        host = self.make_host(domain_names=["admin.example"])
        client = self.user_client(proxy_hosts="manage", visibility="user")
        self.rejected(method, self.rewrite(path, host.pk), body, status=404, client=client)

    def test_a_name_clash_names_only_hosts_the_member_may_see(self) -> None:
        theirs = self.create(domain_names=["taken.example"])
        client = self.user_client(proxy_hosts="manage", visibility="user")
        message = self.rejected(
            "post", BASE, {**VALID, "domain_names": ["taken.example"]}, client=client
        )
        assert message.startswith("data/domain_names/0 ")
        assert "one you cannot see" in message and str(theirs["id"]) not in message
        mine = self.create(client, domain_names=["mine.example"])
        message = self.rejected(
            "post", BASE, {**VALID, "domain_names": ["mine.example"]}, client=client
        )
        assert f"proxy host {mine['id']}" in message

    def test_visibility_all_manager_can_edit_others_hosts(self) -> None:
        host = self.create()
        client = self.user_client(proxy_hosts="manage", visibility="all")
        response = send(client, "put", url(host["id"]), {"forward_port": 81})
        assert response.status_code == 200 and response.json()["forward_port"] == 81


class TestAdvancedConfigIsAdminOnly(ProxyHostAPI):
    LOCATION = {"path": "/x", "forward_host": "10.0.0.2", "forward_port": 80}

    @pytest.fixture(autouse=True)
    def _manager(self, _setup: None) -> None:
        self.user = make_user("manager@example.com", proxy_hosts="manage", visibility="all")
        self.client = api_client(self.user)

    def test_non_admin_create_with_advanced_config_is_403(self) -> None:
        message = self.rejected(
            "post", BASE, self.body(advanced_config="return 200;"), status=403, client=self.client
        )
        assert "advanced_config" in message

    def test_non_admin_update_of_advanced_config_is_403(self) -> None:
        host = self.make_host(owner=self.user)
        self.rejected(
            "put", url(host.pk), {"advanced_config": "return 200;"}, status=403, client=self.client
        )

    @pytest.mark.parametrize("cleared", ["", None, "  "])
    def test_non_admin_cannot_clear_the_admins_advanced_config(self, cleared: Any) -> None:
        host = self.make_host(advanced_config="proxy_read_timeout 90s;")
        self.rejected(
            "put",
            url(host.pk),
            {"advanced_config": cleared},
            status=403,
            field="advanced_config",
            client=self.client,
        )

    def test_non_admin_may_send_the_existing_text_back_or_leave_it_out(self) -> None:
        host = self.make_host(advanced_config="proxy_read_timeout 90s;")
        for change in ({"forward_port": 81}, {"advanced_config": "proxy_read_timeout 90s;"}):
            response = send(self.client, "put", url(host.pk), change)
            assert response.status_code == 200, response.content
            assert response.json()["advanced_config"] == "proxy_read_timeout 90s;"

    def test_non_admin_location_advanced_config_is_403(self) -> None:
        location = {**self.LOCATION, "advanced_config": "return 200;"}
        message = self.rejected(
            "post", BASE, self.body(locations=[location]), status=403, client=self.client
        )
        assert "locations/0/advanced_config" in message

    def test_non_admin_keeps_an_admins_location_advanced_config(self) -> None:
        location = {**self.LOCATION, "advanced_config": "proxy_buffering off;"}
        host = self.create(locations=[location])
        response = send(
            self.client,
            "put",
            url(host["id"]),
            {"locations": host["locations"], "forward_port": 82},
        )
        assert response.status_code == 200, response.content
        assert response.json()["locations"][0]["advanced_config"] == "proxy_buffering off;"
        changed = [{**host["locations"][0], "advanced_config": "return 200;"}]
        self.rejected(
            "put", url(host["id"]), {"locations": changed}, status=403, client=self.client
        )

    def _host_with_admin_locations(self) -> dict[str, Any]:
        """A host the admin gave two locations, one carrying advanced_config, plus one."""
        return self.create(
            locations=[
                {**self.LOCATION, "advanced_config": "allow 10.0.0.0/8;\ndeny all;"},
                {**self.LOCATION, "path": "/plain"},
            ]
        )

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"advanced_config": ""}, "locations/0/advanced_config"),
            ({"advanced_config": None}, "locations/0/advanced_config"),
            ({"advanced_config": "allow all;"}, "locations/0/advanced_config"),
            ({"path": "/elsewhere"}, "locations/0/advanced_config"),
        ],
    )
    def test_non_admin_cannot_change_or_clear_a_location_advanced_config(
        self, change: dict[str, Any], field: str
    ) -> None:
        host = self._host_with_admin_locations()
        locations = [{**host["locations"][0], **change}, host["locations"][1]]
        self.rejected(
            "put",
            url(host["id"]),
            {"locations": locations},
            status=403,
            field=field,
            client=self.client,
        )
        assert self.get(host["id"])["locations"] == host["locations"]

    @pytest.mark.parametrize("locations", [[], None, "only-the-plain-one"])
    def test_non_admin_cannot_remove_the_location_carrying_advanced_config(
        self, locations: Any
    ) -> None:
        host = self._host_with_admin_locations()
        if locations == "only-the-plain-one":
            locations = [host["locations"][1]]
        message = self.rejected(
            "put", url(host["id"]), {"locations": locations}, status=403, client=self.client
        )
        assert "data/locations" in message and "/x" in message and "advanced_config" in message
        assert self.get(host["id"])["locations"] == host["locations"]

    def test_non_admin_cannot_copy_an_admins_text_to_another_location(self) -> None:
        host = self._host_with_admin_locations()
        copied = {
            **host["locations"][1],
            "advanced_config": host["locations"][0]["advanced_config"],
        }
        self.rejected(
            "put",
            url(host["id"]),
            {"locations": [host["locations"][0], copied]},
            status=403,
            field="locations/1/advanced_config",
            client=self.client,
        )

    def test_non_admin_may_edit_and_reorder_around_an_admins_location_text(self) -> None:
        host = self._host_with_admin_locations()
        carrying, plain = host["locations"]
        # the UI's textarea sends the text back with CRLF line ends: still the same text
        sent_back = {
            **carrying,
            "forward_port": 8080,
            "advanced_config": "allow 10.0.0.0/8;\r\ndeny all;",
        }
        new = {**self.LOCATION, "path": "/new"}
        response = send(self.client, "put", url(host["id"]), {"locations": [plain, new, sent_back]})
        assert response.status_code == 200, response.content
        got = {loc["path"]: loc for loc in response.json()["locations"]}
        assert got["/x"]["forward_port"] == 8080
        assert got["/x"]["advanced_config"] == "allow 10.0.0.0/8;\ndeny all;"
        assert got["/new"]["advanced_config"] == ""
        # and the plain location may go
        response = send(self.client, "put", url(host["id"]), {"locations": [sent_back]})
        assert response.status_code == 200, response.content
        assert [loc["path"] for loc in response.json()["locations"]] == ["/x"]

    def test_admin_may_clear_and_remove_location_advanced_config(self) -> None:
        host = self._host_with_admin_locations()
        response = send(self.api, "put", url(host["id"]), {"locations": []})
        assert response.status_code == 200, response.content
        assert response.json()["locations"] == []

    def test_admin_may_set_both(self) -> None:
        location = {**self.LOCATION, "advanced_config": "proxy_buffering off;"}
        host = self.create(advanced_config="proxy_read_timeout 90s;", locations=[location])
        assert host["meta"]["nginx_online"] is True


# ====================================================================== certificates


class TestCertificateLinking(ProxyHostAPI):
    SSL = {
        "ssl_forced": True,
        "http2_support": True,
        "hsts_enabled": True,
        "hsts_subdomains": True,
    }

    @pytest.fixture(autouse=True)
    def _certificate(self, _setup: None) -> None:
        self.cert = self.upload_certificate()

    def test_create_with_certificate(self) -> None:
        host = self.create(domain_names=["club.example"], certificate_id=self.cert.pk, **self.SSL)
        assert host["certificate_id"] == self.cert.pk
        for name, value in self.SSL.items():
            assert host[name] is value, name
        # nginx -t loaded the certificate and key
        assert host["meta"] == {"nginx_online": True, "nginx_err": None, **LIVE}

    def test_certificate_id_as_numeric_string(self) -> None:
        host = self.create(domain_names=["club.example"], certificate_id=str(self.cert.pk))
        assert host["certificate_id"] == self.cert.pk

    def test_expand_certificate_shows_it_without_key_material(self) -> None:
        host = self.create(domain_names=["club.example"], certificate_id=self.cert.pk)
        for response in (
            self.api.get(url(host["id"]), {"expand": "certificate"}),
            self.api.get(BASE, {"expand": "certificate"}),
        ):
            assert response.status_code == 200, response.content
            text = response.content.decode()
            assert "PRIVATE KEY" not in text and "BEGIN" not in text
            assert "privkey" not in text
            body = response.json()
            got = body[0] if isinstance(body, list) else body
            assert set(got["certificate"]) == CERTIFICATE_KEYS
            assert got["certificate"]["id"] == self.cert.pk
            assert got["certificate"]["provider"] == "other"
            assert got["certificate"]["domain_names"] == CERT_NAMES
            assert ISO_Z.match(got["certificate"]["expires_on"])

    def test_deleting_a_certificate_in_use_is_409_naming_the_host(self) -> None:
        host = self.create(domain_names=["club.example"], certificate_id=self.cert.pk)
        path = f"/api/nginx/certificates/{self.cert.pk}"
        message = expect_error(self.api.delete(path), 409)
        assert "club.example" in message
        assert Certificate.objects.filter(pk=self.cert.pk).exists()
        # once the host is gone the certificate may go
        assert self.api.delete(url(host["id"])).json() is True
        response = self.api.delete(path)
        assert response.status_code == 200 and response.json() is True

    def test_removing_the_certificate_turns_ssl_options_off(self) -> None:
        host = self.create(domain_names=["club.example"], certificate_id=self.cert.pk, **self.SSL)
        response = send(self.api, "put", url(host["id"]), {"certificate_id": 0})
        got = response.json()
        assert got["certificate_id"] == 0
        for name in self.SSL:
            assert got[name] is False, name

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            # without ssl_forced HSTS is off; without HSTS its subdomains flag is off
            (
                {"ssl_forced": False, "hsts_enabled": True, "hsts_subdomains": True},
                {"ssl_forced": False, "hsts_enabled": False, "hsts_subdomains": False},
            ),
            (
                {"ssl_forced": True, "hsts_enabled": False, "hsts_subdomains": True},
                {"ssl_forced": True, "hsts_enabled": False, "hsts_subdomains": False},
            ),
            (
                {"ssl_forced": True, "hsts_enabled": True, "hsts_subdomains": False},
                {"ssl_forced": True, "hsts_enabled": True, "hsts_subdomains": False},
            ),
        ],
    )
    def test_npm_option_rules_with_a_certificate(
        self, given: dict[str, bool], expected: dict[str, bool]
    ) -> None:
        host = self.create(domain_names=["club.example"], certificate_id=self.cert.pk, **given)
        assert {k: host[k] for k in expected} == expected

    def test_others_certificate_is_not_linkable_for_visibility_user(self) -> None:
        user = make_user("own@example.com", visibility="user")
        client = api_client(user)
        message = self.rejected(
            "post",
            BASE,
            self.body(domain_names=["club.example"], certificate_id=self.cert.pk),
            field="certificate_id",
            client=client,
        )
        assert "does not exist" in message
        # their own certificate works
        own = self.upload_certificate(owner=user, names=["own.example"])
        host = self.create(client, domain_names=["own.example"], certificate_id=own.pk)
        assert host["certificate_id"] == own.pk

    def test_visibility_all_user_may_link_any_certificate(self) -> None:
        client = api_client(make_user("all@example.com", visibility="all"))
        host = self.create(client, domain_names=["club.example"], certificate_id=self.cert.pk)
        assert host["certificate_id"] == self.cert.pk

    def test_no_certificate_means_no_ssl_options(self) -> None:
        host = self.create(**self.SSL)
        for name in self.SSL:
            assert host[name] is False, name


# ====================================================================== audit log


class TestAuditLog(ProxyHostAPI):
    def test_every_change_is_logged(self) -> None:
        host = self.create()
        host_id = host["id"]
        assert send(self.api, "put", url(host_id), {"forward_port": 81}).status_code == 200
        assert self.api.post(url(host_id, "disable")).status_code == 200
        assert self.api.post(url(host_id, "enable")).status_code == 200
        assert self.api.delete(url(host_id)).status_code == 200
        entries = audit_entries(self.api, host_id)
        assert [e["action"] for e in entries] == [
            "deleted",
            "enabled",
            "disabled",
            "updated",
            "created",
        ]
        for entry in entries:
            assert entry["user_id"] == self.admin.pk
            assert entry["meta"]["domain_names"] == ["app.example.com"]
            assert ISO_Z.match(entry["created_on"])

    def test_entry_names_the_acting_user(self) -> None:
        user = make_user("manager@example.com")
        host = self.create(api_client(user))
        (entry,) = audit_entries(self.api, host["id"])
        assert entry["action"] == "created" and entry["user_id"] == user.pk

    def test_rejected_requests_are_not_logged(self) -> None:
        host = self.create()
        send(self.api, "put", url(host["id"]), {"forward_port": 0})
        send(self.api, "post", url(host["id"], "enable"))
        assert [e["action"] for e in audit_entries(self.api, host["id"])] == ["created"]
