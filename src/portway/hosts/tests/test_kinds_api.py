"""/api/nginx/redirection-hosts and /api/nginx/dead-hosts through Django's test client.

Wire format (NPM's objects), every verb, bad input for every new field (each a 400 naming
the field, nothing saved, no name claimed, no audit entry), one name index across kinds,
and the reports endpoint. Real nginx is in test_kinds_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from portway.hosts.models import DeadHost, HostName, RedirectionHost
from portway.nginx.models import AuditLogEntry
from portway.testing.api import api_client, expect_error, make_admin, make_user, send
from portway.testing.npm_contract import assert_npm_response

pytestmark = pytest.mark.django_db

REDIRECTS = "/api/nginx/redirection-hosts"
DEAD = "/api/nginx/dead-hosts"
SITE_KEYS = {
    "id",
    "created_on",
    "modified_on",
    "owner_user_id",
    "domain_names",
    "certificate_id",
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "http2_support",
    "advanced_config",
    "enabled",
    "meta",
}
REDIRECT_KEYS = SITE_KEYS | {
    "block_exploits",
    "forward_http_code",
    "forward_scheme",
    "forward_domain_name",
    "preserve_path",
}


def redirect(**fields: Any) -> dict[str, Any]:
    return {
        "domain_names": ["r.example.com"],
        "forward_scheme": "auto",
        "forward_domain_name": "target.example.org",
        **fields,
    }


@pytest.fixture
def api():
    return api_client(make_admin())


def test_redirection_host_wire_and_verbs(api):
    response = send(api, "POST", REDIRECTS, redirect(forward_http_code="301", preserve_path=1))
    assert response.status_code == 201, response.content
    host = response.json()
    assert set(host) == REDIRECT_KEYS
    assert host["forward_http_code"] == 301 and host["preserve_path"] is True
    assert host["forward_scheme"] == "auto" and host["certificate_id"] == 0
    assert host["meta"]["nginx_online"] is True and host["meta"]["nginx_err"] is None
    assert host["created_on"].endswith("Z")

    default = send(api, "POST", REDIRECTS, redirect(domain_names=["d.example.com"])).json()
    assert default["forward_http_code"] == 302  # NPM's default

    listed = send(api, "GET", f"{REDIRECTS}?query=r.example&expand=owner,certificate").json()
    assert [h["id"] for h in listed] == [host["id"]]
    assert listed[0]["owner"]["id"] == host["owner_user_id"] and listed[0]["certificate"] is None

    changed = send(api, "PUT", f"{REDIRECTS}/{host['id']}", {"forward_scheme": "https"}).json()
    assert changed["forward_scheme"] == "https" and changed["forward_http_code"] == 301
    assert send(api, "POST", f"{REDIRECTS}/{host['id']}/disable").json() is True
    expect_error(send(api, "POST", f"{REDIRECTS}/{host['id']}/disable"), 400)
    assert send(api, "POST", f"{REDIRECTS}/{host['id']}/enable").json() is True
    assert send(api, "DELETE", f"{REDIRECTS}/{host['id']}").json() is True
    expect_error(send(api, "GET", f"{REDIRECTS}/{host['id']}"), 404)
    assert not HostName.objects.filter(kind="redirection", host_id=host["id"]).exists()
    actions = list(
        AuditLogEntry.objects.filter(object_type="redirection-host", object_id=host["id"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["created", "updated", "disabled", "enabled", "deleted"]


def test_redirection_host_access_list(api):
    """Portway's addition: an access list on a redirection host (NPM's object has no room
    for it, so Portway's own endpoint answers it); a list in use is not deleted."""
    made = send(
        api,
        "POST",
        "/api/nginx/access-lists",
        {"name": "Staff", "items": [{"username": "alice", "password": "wonderland1"}]},
    ).json()
    response = send(api, "POST", REDIRECTS, redirect(access_list_id=str(made["id"])))
    assert response.status_code == 201, response.content
    host = response.json()
    assert set(host) == REDIRECT_KEYS
    assert RedirectionHost.objects.get().access_list_id == made["id"]
    mine = f"/api/portway/redirection-hosts/{host['id']}"
    got = send(api, "GET", f"{mine}?expand=access_list,owner").json()
    assert got["access_list_id"] == made["id"] and got["access_list"]["name"] == "Staff"
    assert got["owner"]["id"] == host["owner_user_id"]
    assert {k: v for k, v in got.items() if k in REDIRECT_KEYS} == host
    listed = send(api, "GET", "/api/portway/redirection-hosts?query=r.example").json()
    assert [(h["id"], h["access_list_id"]) for h in listed] == [(host["id"], made["id"])]
    assert "access_list" not in listed[0]

    message = expect_error(send(api, "DELETE", f"/api/nginx/access-lists/{made['id']}"), 409)
    assert f"redirection host {host['id']}" in message and "r.example.com" in message
    changed = send(api, "PUT", f"{REDIRECTS}/{host['id']}", {"access_list_id": 0})
    assert changed.status_code == 200 and set(changed.json()) == REDIRECT_KEYS
    assert send(api, "GET", mine).json()["access_list_id"] == 0
    assert send(api, "DELETE", f"/api/nginx/access-lists/{made['id']}").json() is True
    expect_error(send(api, "GET", "/api/portway/redirection-hosts/999"), 404)


def test_dead_host_wire_and_tls_rules(api):
    response = send(api, "POST", DEAD, {"domain_names": ["gone.example.com"], "ssl_forced": True})
    assert response.status_code == 201, response.content
    host = response.json()
    assert set(host) == SITE_KEYS
    # NPM's rule: without a certificate there is no Force SSL
    assert host["ssl_forced"] is False
    unknown = {"domain_names": ["x.example.com"], "forward_host": "a"}
    assert "forward_host" in expect_error(send(api, "POST", DEAD, unknown), 400)


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("forward_http_code", redirect(forward_http_code=299)),
        ("forward_http_code", redirect(forward_http_code=309)),
        ("forward_http_code", redirect(forward_http_code=200)),
        ("forward_http_code", redirect(forward_http_code="abc")),
        ("forward_http_code", redirect(forward_http_code=True)),
        ("forward_http_code", redirect(forward_http_code=301.5)),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org;")),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org; return 200 x")),
        ("forward_domain_name", redirect(forward_domain_name="a example.org")),
        ("forward_domain_name", redirect(forward_domain_name="https://a.example.org")),
        ("forward_domain_name", redirect(forward_domain_name="http://a.example.org/x")),
        ("forward_domain_name", redirect(forward_domain_name="ftp://a.example.org")),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org/$host")),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org/x\ny")),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org/{x}")),
        ("forward_domain_name", redirect(forward_domain_name='a.example.org/"x')),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org:0")),
        ("forward_domain_name", redirect(forward_domain_name="a.example.org:99999")),
        ("forward_domain_name", redirect(forward_domain_name="a..example.org")),
        ("forward_domain_name", redirect(forward_domain_name="")),
        ("forward_domain_name", redirect(forward_domain_name=5)),
        ("forward_domain_name", redirect(forward_domain_name="fd00::5")),
        ("forward_scheme", redirect(forward_scheme="ftp")),
        ("forward_scheme", redirect(forward_scheme="")),
        ("preserve_path", redirect(preserve_path="maybe")),
        ("domain_names/0", redirect(domain_names=["a b.example.com"])),
        ("forward_domain_name", {"domain_names": ["r.example.com"], "forward_scheme": "http"}),
        ("forward_scheme", {"domain_names": ["r.example.com"], "forward_domain_name": "a.org"}),
        ("certificate_id", redirect(certificate_id=99)),
        ("advanced_config", redirect(advanced_config="return 200 {")),
        ("access_list_id", redirect(access_list_id=999)),
        ("access_list_id", redirect(access_list_id=-1)),
        ("access_list_id", redirect(access_list_id="abc")),
        ("access_list_id", redirect(access_list_id=True)),
    ],
)
def test_redirection_bad_input_is_400_naming_the_field(api, field, body):
    message = expect_error(send(api, "POST", REDIRECTS, body), 400)
    assert field in message, message
    assert not RedirectionHost.objects.exists()
    assert not HostName.objects.exists()
    assert not AuditLogEntry.objects.filter(object_type="redirection-host").exists()


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("forward_http_code", {"forward_http_code": 310}),
        ("forward_http_code", {"forward_http_code": None}),
        ("forward_domain_name", {"forward_domain_name": "https://b.example.org"}),
        ("forward_domain_name", {"forward_domain_name": "b.example.org;"}),
        ("forward_domain_name", {"forward_domain_name": "b .example.org"}),
        ("forward_domain_name", {"forward_domain_name": None}),
    ],
)
def test_redirection_bad_update_changes_nothing(api, field, change):
    host = send(api, "POST", REDIRECTS, redirect()).json()
    message = expect_error(send(api, "PUT", f"{REDIRECTS}/{host['id']}", change), 400)
    assert field in message, message
    stored = send(api, "GET", f"{REDIRECTS}/{host['id']}").json()
    assert stored == host


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Example.ORG", "example.org"),
        (" example.org:8443 ", "example.org:8443"),
        ("example.org/base/path", "example.org/base/path"),
        ("10.0.0.5:8080/x", "10.0.0.5:8080/x"),
        ("[fd00::5]:8443", "[fd00::5]:8443"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_redirect_target_forms(api, sent, stored):
    response = send(api, "POST", REDIRECTS, redirect(forward_domain_name=sent))
    assert response.status_code == 201, response.content
    assert response.json()["forward_domain_name"] == stored


def test_codes_300_to_308_accepted(api):
    for code in range(300, 309):
        body = redirect(domain_names=[f"c{code}.example.com"], forward_http_code=code)
        assert send(api, "POST", REDIRECTS, body).json()["forward_http_code"] == code


def test_one_name_index_across_kinds(api):
    dead = send(api, "POST", DEAD, {"domain_names": ["taken.example.com"]}).json()
    both = redirect(domain_names=["ok.example.com", "Taken.example.com"])
    message = expect_error(send(api, "POST", REDIRECTS, both), 400)
    assert "domain_names/1" in message and f"404 host {dead['id']}" in message
    assert not RedirectionHost.objects.exists()
    proxy = send(
        api,
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["p.example.com"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 80,
        },
    ).json()
    message = expect_error(
        send(api, "PUT", f"{DEAD}/{dead['id']}", {"domain_names": ["p.example.com"]}), 400
    )
    assert "domain_names/0" in message and f"proxy host {proxy['id']}" in message
    assert DeadHost.objects.get().domain_names == ["taken.example.com"]
    # a disabled host holds no name; a name may appear on several disabled hosts
    send(api, "POST", f"{DEAD}/{dead['id']}/disable")
    again = send(api, "POST", REDIRECTS, redirect(domain_names=["taken.example.com"]))
    assert again.status_code == 201
    message = expect_error(send(api, "POST", f"{DEAD}/{dead['id']}/enable"), 400)
    assert "redirection host" in message
    disabled = send(api, "POST", DEAD, {"domain_names": ["taken.example.com"], "enabled": False})
    assert disabled.status_code == 201


def test_report_counts_every_kind(api):
    send(api, "POST", REDIRECTS, redirect())
    send(api, "POST", DEAD, {"domain_names": ["a.example.com"]})
    send(api, "POST", DEAD, {"domain_names": ["b.example.com"]})
    report = send(api, "GET", "/api/reports/hosts").json()
    assert report == {"proxy": 0, "redirection": 1, "stream": 0, "dead": 2}
    # a user who sees only their own objects counts only those
    viewer = make_user(email="v@example.com")
    assert send(api_client(viewer), "GET", "/api/reports/hosts").json() == {
        "proxy": 0,
        "redirection": 0,
        "stream": 0,
        "dead": 0,
    }
    assert send(api_client(viewer), "GET", REDIRECTS).json() == []


def test_certificate_expands_every_kind(tmp_path, settings):
    from portway.certificates import services as cert_services
    from portway.testing import certs

    settings.DATA_DIR = tmp_path  # certificate files of this test only
    admin = make_admin()
    api = api_client(admin)
    leaf = certs.make_chain(["r.example.com", "d.example.com"])
    cert = cert_services.create_custom(admin, "Club")
    cert = cert_services.upload(admin, cert, leaf.cert_pem, leaf.key_pem(), leaf.chain_pem)
    created = send(api, "POST", REDIRECTS, redirect(certificate_id=cert.pk))
    assert created.status_code == 201, created.content
    send(api, "POST", DEAD, {"domain_names": ["d.example.com"], "certificate_id": cert.pk})
    # NPM's certificate object has no room for hosts: NPM's endpoint answers its own object
    npm_path = f"/api/nginx/certificates/{cert.pk}?expand=owner,proxy_hosts,redirection_hosts"
    npm_object = send(api, "GET", npm_path).json()
    assert "redirection_hosts" not in npm_object and npm_object["owner"]["id"] == admin.pk
    assert_npm_response("GET", npm_path, 200, npm_object)
    listed = send(api, "GET", "/api/nginx/certificates?expand=owner,dead_hosts").json()
    assert_npm_response("GET", "/api/nginx/certificates", 200, listed)
    # Portway's endpoint embeds them
    path = f"/api/portway/certificates/{cert.pk}?expand=redirection_hosts,dead_hosts,owner"
    expanded = send(api, "GET", path).json()
    assert expanded["owner"]["id"] == admin.pk and "proxy_hosts" not in expanded
    everything = send(api, "GET", "/api/portway/certificates?expand=proxy_hosts,dead_hosts").json()
    assert everything[0]["proxy_hosts"] == [] and len(everything[0]["dead_hosts"]) == 1
    targets = [h["forward_domain_name"] for h in expanded["redirection_hosts"]]
    assert targets == ["target.example.org"]
    assert [h["domain_names"] for h in expanded["dead_hosts"]] == [["d.example.com"]]
    # a certificate in use by any kind is not deleted
    message = expect_error(send(api, "DELETE", f"/api/nginx/certificates/{cert.pk}"), 409)
    assert "redirection host" in message.lower() or "404 host" in message.lower(), message
