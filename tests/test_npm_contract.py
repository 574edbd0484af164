"""NPM's contract, strictly: an NPM client's walk through the API, every response checked
against NPM's own OpenAPI document (portway.testing.npm_contract, a copy of NPM's
backend/schema with its source and licence in NOTICE).

The walk is the one an NPM client (NPM's own UI, its API test suite, scripts) makes: health,
the first user created without a token, a token, then for each object create / read / list
with every expansion NPM documents / update / disable / enable / delete. Every response on
an NPM path, including errors, must validate; `NpmClient.call` fails naming the field.

Adding an object (redirection hosts, 404 hosts, streams, access lists): write a
`walk_<object>(npm)` function below with its steps and add it to `OBJECT_WALKS`; it then
runs on its own (`test_object_walk[<object>]`) and as part of the audit-log walk.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portway.testing import certs
from portway.testing.npm_contract import _operations, assert_npm_response, npm_template

PASSWORD = "changeme123"
ADMIN = {"name": "Club Admin", "nickname": "admin", "email": "admin@club.example"}
NAMES = ["club.example", "*.club.example"]
AUTH = {"type": "password", "secret": PASSWORD}

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e_db]


class NpmClient:
    """Django's test client speaking JSON with a bearer token, as NPM clients do; every
    answer from an NPM path is validated against NPM's OpenAPI document."""

    def __init__(self) -> None:
        self.client = Client()
        self.token: str | None = None
        self.calls: list[tuple[str, str, int]] = []

    def call(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        status: int = 200,
        files: dict[str, bytes] | None = None,
        token: bool = True,
    ) -> Any:
        """Send one request and return its parsed JSON body.

        Args:
            body: sent as JSON; `files`: sent instead as multipart PEM parts.
            status: the status the step expects.
            token: False sends no Authorization header (first user, login).

        Raises:
            AssertionError: another status, or a body NPM's document does not allow.
        """
        assert npm_template(url) is not None, f"{method} {url} is not one of NPM's endpoints"
        headers = {"Authorization": f"Bearer {self.token}"} if token and self.token else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if files is not None:
            kwargs["data"] = {
                name: SimpleUploadedFile(f"{name}.pem", data, "application/x-pem-file")
                for name, data in files.items()
            }
        elif body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        response = getattr(self.client, method.lower())(url, **kwargs)
        assert response.status_code == status, (method, url, response.status_code, response.content)
        data = response.json()
        assert_npm_response(method, url, status, data)
        self.calls.append((method.upper(), npm_template(url) or url, status))
        return data


# --------------------------------------------------------------------------- the start


def start(npm: NpmClient) -> dict[str, Any]:
    """Health, the first user without a token, a token, a refreshed token; → the admin."""
    assert npm.call("GET", "/api/", token=False)["setup"] is False
    admin = npm.call(
        "POST",
        "/api/users",
        {**ADMIN, "roles": ["admin"], "is_disabled": False, "auth": AUTH},
        status=201,
        token=False,
    )
    login = {"identity": ADMIN["email"], "secret": PASSWORD}
    npm.call("POST", "/api/tokens", {**login, "secret": "wrong-password"}, status=401, token=False)
    npm.token = npm.call("POST", "/api/tokens", login, token=False)["token"]
    npm.token = npm.call("GET", "/api/tokens")["token"]
    assert npm.call("GET", "/api/", token=False)["setup"] is True
    assert npm.call("GET", "/api/schema", token=False)["openapi"].startswith("3.")
    return admin


# --------------------------------------------------------------------------- objects


def walk_users(npm: NpmClient) -> None:
    """Users: create, read (expand permissions), list, update, password, permissions,
    log in as, disable, enable, delete; unknown id → NPM's error body."""
    user = npm.call(
        "POST",
        "/api/users",
        {
            "name": "Member",
            "nickname": "member",
            "email": "member@club.example",
            "roles": [],
            "is_disabled": False,
            "auth": {"type": "password", "secret": PASSWORD},
        },
        status=201,
    )
    path = f"/api/users/{user['id']}"
    npm.call("GET", path)
    npm.call("GET", f"{path}?expand=permissions")
    npm.call("GET", "/api/users")
    npm.call("GET", "/api/users?expand=permissions")
    npm.call("GET", "/api/users/me?expand=permissions")
    npm.call("PUT", path, {"name": "Member Two", "nickname": "m2"})
    npm.call("PUT", f"{path}/auth", {"type": "password", "secret": "another-password1"})
    permissions = {
        "visibility": "user",
        "proxy_hosts": "manage",
        "redirection_hosts": "view",
        "dead_hosts": "hidden",
        "streams": "hidden",
        "access_lists": "hidden",
        "certificates": "view",
    }
    npm.call("PUT", f"{path}/permissions", permissions)
    member = NpmClient()
    member.token = npm.call("POST", f"{path}/login")["token"]
    walk_as_member(member)
    npm.call("PUT", path, {"is_disabled": True})
    npm.call("PUT", path, {"is_disabled": False})
    npm.call("DELETE", path)
    npm.call("GET", path, status=404)


def walk_as_member(member: NpmClient) -> None:
    """What a user who is not an administrator reads, and NPM's error body where they
    may not look."""
    member.call("GET", "/api/users/me?expand=permissions")
    member.call("GET", "/api/nginx/proxy-hosts?expand=owner,certificate,access_list")
    member.call("GET", "/api/nginx/certificates")
    member.call("GET", "/api/reports/hosts")
    member.call("GET", "/api/settings", status=403)
    member.call("GET", "/api/audit-log", status=403)
    member.call("POST", "/api/nginx/certificates", {"provider": "other"}, status=403)


def walk_two_factor(npm: NpmClient) -> None:
    """2FA as NPM v2.13 does it: set up, enable, status, log in with a challenge, new backup
    codes, disable."""
    me = npm.call("GET", "/api/users/me")
    path = f"/api/users/{me['id']}/2fa"
    setup = npm.call("POST", path)
    totp = pyotp.TOTP(setup["secret"])
    wrong = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
    npm.call("POST", f"{path}/enable", {"code": wrong}, status=400)
    npm.call("POST", f"{path}/enable", {"code": totp.now()})
    npm.call("GET", path)
    # each code is accepted once: the enrolment used this step's code, so the next step's
    codes = npm.call("POST", f"{path}/backup-codes", {"code": totp.at(time.time() + 30)})
    login = {"identity": me["email"], "secret": PASSWORD}
    challenge = npm.call("POST", "/api/tokens", login, token=False)
    assert challenge["requires_2fa"] is True
    npm.token = npm.call(
        "POST",
        "/api/tokens/2fa",
        {"challenge_token": challenge["challenge_token"], "code": codes["backup_codes"][0]},
        token=False,
    )["token"]
    npm.call("DELETE", f"{path}?code={codes['backup_codes'][1]}")
    npm.call("GET", path)


def walk_certificates(npm: NpmClient) -> None:
    """Certificates: DNS providers, create a custom one, validate and upload its files,
    read, list (expand owner), delete."""
    issued = certs.make_chain(NAMES, key_type="rsa")
    npm.call("GET", "/api/nginx/certificates/dns-providers")
    cert = npm.call(
        "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": "Club"}, status=201
    )
    path = f"/api/nginx/certificates/{cert['id']}"
    npm.call("GET", path)
    pem_files = {"certificate": issued.cert_pem, "certificate_key": issued.key_pem()}
    npm.call(
        "POST",
        "/api/nginx/certificates/validate",
        files={**pem_files, "intermediate_certificate": issued.chain_pem},
    )
    npm.call("POST", f"{path}/upload", files=pem_files)
    npm.call(
        "POST",
        f"{path}/upload",
        files={**pem_files, "intermediate_certificate": issued.chain_pem},
    )
    npm.call("GET", path)
    npm.call("GET", f"{path}?expand=owner")
    npm.call("POST", f"{path}/renew", status=400)  # custom: new files are uploaded instead
    npm.call("GET", "/api/nginx/certificates")
    npm.call("GET", "/api/nginx/certificates?expand=owner")
    npm.call("DELETE", path)
    npm.call("GET", path, status=404)


def walk_proxy_hosts(npm: NpmClient) -> None:
    """Proxy hosts with a certificate: create, read and list with NPM's expansions, update,
    disable, enable, delete."""
    issued = certs.make_chain(["app.club.example"], key_type="ec", ca_key_type="ec")
    cert = npm.call(
        "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": "App"}, status=201
    )
    npm.call(
        "POST",
        f"/api/nginx/certificates/{cert['id']}/upload",
        files={"certificate": issued.fullchain_pem, "certificate_key": issued.key_pem()},
    )
    host = npm.call(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["app.club.example"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 8080,
            "certificate_id": cert["id"],
            "ssl_forced": True,
            "locations": [
                {
                    "path": "/api",
                    "forward_scheme": "http",
                    "forward_host": "127.0.0.1",
                    "forward_port": 8081,
                }
            ],
            "meta": {},
        },
        status=201,
    )
    path = f"/api/nginx/proxy-hosts/{host['id']}"
    expand = "owner,access_list,certificate"
    npm.call("GET", path)
    npm.call("GET", f"{path}?expand={expand}")
    # the certificate with every expansion NPM clients send (NPM's object keeps `owner`)
    hosts = "proxy_hosts,redirection_hosts,dead_hosts,streams"
    npm.call("GET", f"/api/nginx/certificates/{cert['id']}?expand=owner,{hosts}")
    npm.call("GET", f"/api/nginx/certificates?expand=owner,{hosts}")
    npm.call("GET", "/api/nginx/proxy-hosts")
    npm.call("GET", f"/api/nginx/proxy-hosts?expand={expand}")
    npm.call("PUT", path, {"forward_port": 8082, "hsts_enabled": True})
    npm.call("POST", f"{path}/disable")
    npm.call("POST", f"{path}/enable")
    npm.call("GET", "/api/reports/hosts")
    npm.call("DELETE", path)
    npm.call("GET", path, status=404)
    npm.call("DELETE", f"/api/nginx/certificates/{cert['id']}")


def _walk_site(npm: NpmClient, base: str, body: dict[str, Any], change: dict[str, Any]) -> None:
    """One redirection or 404 host with a certificate through NPM's verbs."""
    name = body["domain_names"][0]
    issued = certs.make_chain([name], key_type="ec", ca_key_type="ec")
    cert = npm.call(
        "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": name}, status=201
    )
    npm.call(
        "POST",
        f"/api/nginx/certificates/{cert['id']}/upload",
        files={"certificate": issued.fullchain_pem, "certificate_key": issued.key_pem()},
    )
    host = npm.call(
        "POST", base, {**body, "certificate_id": cert["id"], "ssl_forced": True}, status=201
    )
    path = f"{base}/{host['id']}"
    npm.call("GET", path)
    npm.call("GET", f"{path}?expand=owner")
    npm.call("GET", f"{path}?expand=certificate")
    npm.call("GET", f"{path}?expand=owner,certificate")
    npm.call("GET", base)
    npm.call("GET", f"{base}?expand=owner")
    npm.call("PUT", path, change)
    npm.call("POST", f"{path}/disable")
    npm.call("POST", f"{path}/enable")
    npm.call("GET", "/api/reports/hosts")
    npm.call("DELETE", path)
    npm.call("GET", path, status=404)


def walk_redirection_hosts(npm: NpmClient) -> None:
    """Redirection hosts with a certificate: create, read, list, update, disable, enable,
    delete."""
    _walk_site(
        npm,
        "/api/nginx/redirection-hosts",
        {
            "domain_names": ["old.club.example"],
            "forward_scheme": "auto",
            "forward_domain_name": "new.club.example",
            "forward_http_code": 301,
            "preserve_path": True,
            "meta": {},
        },
        {"forward_http_code": 308, "hsts_enabled": True},
    )


def walk_dead_hosts(npm: NpmClient) -> None:
    """404 hosts with a certificate: create, read, list, update, disable, enable, delete."""
    _walk_site(
        npm,
        "/api/nginx/dead-hosts",
        {"domain_names": ["gone.club.example"], "meta": {}},
        {"http2_support": True},
    )


def walk_access_lists(npm: NpmClient) -> None:
    """Access lists: create with users and address rules, read with each expansion, list,
    use from a proxy host and a redirection host, 409 while in use, update with an empty
    password (the old one is kept), delete."""
    from portway.access.models import AccessListItem

    body = {
        "name": "Staff",
        "satisfy_any": True,
        "pass_auth": False,
        "items": [{"username": "alice", "password": "wonderland1"}],
        "clients": [
            {"address": "10.0.0.0/8", "directive": "allow"},
            {"address": "2001:db8::/32", "directive": "allow"},
            {"address": "all", "directive": "deny"},
        ],
    }
    made = npm.call("POST", "/api/nginx/access-lists", body, status=201)
    path = f"/api/nginx/access-lists/{made['id']}"
    for expand in ("owner", "items", "clients", "proxy_hosts", "owner,items,clients,proxy_hosts"):
        npm.call("GET", f"{path}?expand={expand}")
    npm.call("GET", path)
    npm.call("GET", "/api/nginx/access-lists")
    npm.call("GET", "/api/nginx/access-lists?expand=owner,items,clients,proxy_hosts")
    proxy = npm.call(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["staff.club.example"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 8080,
            "access_list_id": made["id"],
        },
        status=201,
    )
    npm.call("GET", f"/api/nginx/proxy-hosts/{proxy['id']}?expand=access_list,owner")
    redirect = npm.call(
        "POST",
        "/api/nginx/redirection-hosts",
        {
            "domain_names": ["go.club.example"],
            "forward_scheme": "https",
            "forward_domain_name": "staff.club.example",
            "forward_http_code": 302,
            "access_list_id": made["id"],
        },
        status=201,
    )
    npm.call("GET", f"{path}?expand=proxy_hosts")
    npm.call("DELETE", path, status=409)
    stored = AccessListItem.objects.get(username="alice").password_hash
    body = {**body, "name": "Staff 2", "items": [{"username": "alice", "password": ""}]}
    npm.call("PUT", path, body)
    assert AccessListItem.objects.get(username="alice").password_hash == stored
    npm.call("PUT", path, {"satisfy_any": False})
    npm.call("DELETE", f"/api/nginx/proxy-hosts/{proxy['id']}")
    npm.call("DELETE", f"/api/nginx/redirection-hosts/{redirect['id']}")
    npm.call("DELETE", path)
    npm.call("GET", path, status=404)


def walk_streams(npm: NpmClient) -> None:
    """Streams, one with TLS termination: create, read and list with NPM's expansions,
    update, disable, enable, delete; NPM's error body for a taken port."""
    issued = certs.make_chain(["tcp.club.example"], key_type="ec", ca_key_type="ec")
    cert = npm.call(
        "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": "TCP"}, status=201
    )
    npm.call(
        "POST",
        f"/api/nginx/certificates/{cert['id']}/upload",
        files={"certificate": issued.fullchain_pem, "certificate_key": issued.key_pem()},
    )
    body = {
        "incoming_port": 47001,
        "forwarding_host": "127.0.0.1",
        "forwarding_port": 8080,
        "tcp_forwarding": True,
        "udp_forwarding": False,
        "certificate_id": 0,
        "meta": {},
    }
    plain = npm.call("POST", "/api/nginx/streams", body, status=201)
    tls = npm.call(
        "POST",
        "/api/nginx/streams",
        {
            **body,
            "incoming_port": 47002,
            "certificate_id": cert["id"],
            "domain_names": ["tcp.club.example"],
        },
        status=201,
    )
    npm.call("POST", "/api/nginx/streams", body, status=400)  # port 47001/TCP is taken
    for stream in (plain, tls):
        path = f"/api/nginx/streams/{stream['id']}"
        npm.call("GET", path)
        npm.call("GET", f"{path}?expand=owner")
        npm.call("GET", f"{path}?expand=certificate")
        npm.call("GET", f"{path}?expand=owner,certificate")
    npm.call("GET", "/api/nginx/streams")
    npm.call("GET", "/api/nginx/streams?expand=owner,certificate")
    path = f"/api/nginx/streams/{plain['id']}"
    npm.call("PUT", path, {"udp_forwarding": True, "forwarding_host": "backend.club.example"})
    npm.call("POST", f"{path}/disable")
    npm.call("POST", f"{path}/disable", status=400)
    npm.call("POST", f"{path}/enable")
    npm.call("GET", "/api/reports/hosts")
    for stream in (plain, tls):
        npm.call("DELETE", f"/api/nginx/streams/{stream['id']}")
    npm.call("GET", path, status=404)
    npm.call("DELETE", f"/api/nginx/certificates/{cert['id']}")


def walk_settings(npm: NpmClient) -> None:
    """Settings: list, read, change the default site and back."""
    npm.call("GET", "/api/settings")
    npm.call("GET", "/api/settings/default-site")
    npm.call("PUT", "/api/settings/default-site", {"value": "404", "meta": {}})
    npm.call(
        "PUT",
        "/api/settings/default-site",
        {"value": "html", "meta": {"html": "<h1>Nothing here</h1>"}},
    )
    npm.call("PUT", "/api/settings/default-site", {"value": "congratulations", "meta": {}})


def walk_reports(npm: NpmClient) -> None:
    """Reports: the host counts; the update check (public)."""
    npm.call("GET", "/api/reports/hosts")
    check = npm.call("GET", "/api/version/check", token=False)
    assert check["update_available"] is False and check["current"].startswith("v")


OBJECT_WALKS: dict[str, Callable[[NpmClient], None]] = {
    "users": walk_users,
    "two_factor": walk_two_factor,
    "certificates": walk_certificates,
    "proxy_hosts": walk_proxy_hosts,
    "redirection_hosts": walk_redirection_hosts,
    "dead_hosts": walk_dead_hosts,
    "access_lists": walk_access_lists,
    "streams": walk_streams,
    "settings": walk_settings,
    "reports": walk_reports,
}


# --------------------------------------------------------------------------- tests


@pytest.fixture
def npm() -> NpmClient:
    client = NpmClient()
    start(client)
    return client


def test_first_user_and_token(npm: NpmClient) -> None:
    assert [c[1] for c in npm.calls] == [
        "/",
        "/users",
        "/tokens",
        "/tokens",
        "/tokens",
        "/",
        "/schema",
    ]


@pytest.mark.parametrize("name", list(OBJECT_WALKS))
def test_object_walk(npm: NpmClient, name: str) -> None:
    OBJECT_WALKS[name](npm)


def test_audit_log_after_every_walk(npm: NpmClient) -> None:
    """The audit log, once every walk (and a failed sign-in) has written to it."""
    for walk in OBJECT_WALKS.values():
        walk(npm)
    entries = npm.call("GET", "/api/audit-log")
    assert entries, "the walks wrote no audit log"
    npm.call("GET", "/api/audit-log?expand=user")
    npm.call("GET", "/api/audit-log?limit=5&offset=5")
    for entry in entries:
        npm.call("GET", f"/api/audit-log/{entry['id']}?expand=user")


def _shape(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", template)


@pytest.mark.django_db(transaction=False)
def test_api_schema_describes_every_npm_route() -> None:
    """GET /api/schema lists every operation of NPM's document (path parameters may be
    named differently), each with a summary; only the document itself is not listed."""
    schema = Client().get("/api/schema").json()
    ours = {
        (method.upper(), _shape(path)): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert all(operation.get("summary") for operation in ours.values())
    missing = sorted(
        (method, template)
        for method, template in _operations()
        if (method, _shape(template)) not in ours and template != "/schema"
    )
    assert missing == []


@pytest.mark.parametrize(
    ("method", "url", "status", "body", "complaint"),
    [
        (
            "POST",
            "/api/nginx/certificates",
            201,
            {"expires_on": None},
            "at expires_on: None is not of type 'string'",
        ),
        (
            "GET",
            "/api/nginx/certificates/7",
            200,
            {"meta": {"fingerprint": "AB:CD"}},
            "'fingerprint' was unexpected",
        ),
        (
            "GET",
            "/api/nginx/certificates/dns-providers",
            200,
            [{"id": "x", "name": "X", "credentials": "", "propagation_seconds": 10}],
            "'propagation_seconds' was unexpected",
        ),
        (
            "GET",
            "/api/audit-log",
            200,
            [{"object_id": 0}],
            "at 0/object_id: 0 is less than the minimum of 1",
        ),
        (
            "GET",
            "/api/nginx/access-lists",
            200,
            {"id": 1, "name": "x"},
            "is not of type 'array'",
        ),
        (
            "GET",
            "/api/nginx/access-lists",
            200,
            [{"id": 1, "name": ""}],
            "at 0/name: '' should be non-empty",
        ),
        (
            "GET",
            "/api/nginx/certificates/7",
            200,
            {"proxy_hosts": []},
            "'proxy_hosts' was unexpected",
        ),
        (
            "GET",
            "/api/nginx/redirection-hosts/7",
            200,
            {"access_list_id": 3},
            "'access_list_id' was unexpected",
        ),
        (
            "GET",
            "/api/users/3",
            404,
            {"error": {"code": 404, "message": "gone", "field": "id"}},
            "'field' was unexpected",
        ),
    ],
)
@pytest.mark.django_db(transaction=False)
def test_npm_document_catches_what_it_forbids(
    method: str, url: str, status: int, body: Any, complaint: str
) -> None:
    """The checks above are not vacuous: the shapes the contract forbids fail, naming why."""
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        assert_npm_response(method, url, status, body)
