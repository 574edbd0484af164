"""The audit log's before/after of changed fields for hosts, certificates and access lists
(one mechanism: portway.core.audit.record), read back through GET /api/audit-log and the
audit page; secrets (passwords, hashes, keys, DNS credentials) never appear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portway.core.audit import changes
from portway.testing import certs
from portway.testing.api import PASSWORD, api_client, make_admin
from portway.testing.api import send as send_raw

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def send(api: Client, method: str, path: str, body: Any = None) -> Any:
    response = send_raw(api, method, path, body)
    assert response.status_code in (200, 201), (path, response.content)
    return response.json()


def entries(api: Client, object_type: str) -> list[dict[str, Any]]:
    response = api.get("/api/audit-log")
    assert response.status_code == 200, response.content
    assert b"wonderland" not in response.content and b"PRIVATE KEY" not in response.content
    return [e for e in response.json() if e["object_type"] == object_type]


def test_host_changes_are_recorded_before_and_after() -> None:
    admin = make_admin()
    api = api_client(admin)
    host = send(
        api,
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["audit.example"],
            "forward_scheme": "http",
            "forward_host": "10.0.0.1",
            "forward_port": 80,
        },
    )
    send(api, "PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"forward_port": 8080})
    send(api, "POST", f"/api/nginx/proxy-hosts/{host['id']}/disable")
    disabled, updated, created = entries(api, "proxy-host")
    assert created["meta"]["changes"]["forward_port"] == {"before": None, "after": 80}
    assert updated["meta"]["changes"] == {"forward_port": {"before": 80, "after": 8080}}
    assert disabled["meta"]["changes"] == {"enabled": {"before": True, "after": False}}

    redirect = send(
        api,
        "POST",
        "/api/nginx/redirection-hosts",
        {
            "domain_names": ["old.example"],
            "forward_scheme": "auto",
            "forward_domain_name": "new.example",
        },
    )
    send(api, "PUT", f"/api/nginx/redirection-hosts/{redirect['id']}", {"preserve_path": True})
    dead = send(api, "POST", "/api/nginx/dead-hosts", {"domain_names": ["gone.example"]})
    send(api, "DELETE", f"/api/nginx/dead-hosts/{dead['id']}")
    updated = entries(api, "redirection-host")[0]
    assert updated["meta"]["changes"] == {"preserve_path": {"before": False, "after": True}}
    deleted = entries(api, "dead-host")[0]
    assert deleted["action"] == "deleted"
    assert deleted["meta"]["changes"]["domain_names"] == {"before": ["gone.example"], "after": None}

    # the audit page shows the same
    client = Client()
    assert client.login(username=admin.email, password=PASSWORD)
    page = client.get("/audit-log?object_type=proxy-host").content.decode()
    assert "forward_port" in page and "8080" in page


def test_access_list_changes_never_show_passwords_or_hashes() -> None:
    api = api_client(make_admin())
    created = send(
        api,
        "POST",
        "/api/nginx/access-lists",
        {"name": "club", "items": [{"username": "alice", "password": "wonderland1"}]},
    )
    send(
        api,
        "PUT",
        f"/api/nginx/access-lists/{created['id']}",
        {
            "items": [{"username": "alice", "password": "wonderland2"}],
            "clients": [{"address": "10.0.0.0/8", "directive": "allow"}],
            "portway_login": True,
        },
    )
    updated = entries(api, "access-list")[0]
    assert updated["meta"]["changes"] == {
        "clients": {"before": [], "after": ["allow 10.0.0.0/8"]},
        "portway_login": {"before": False, "after": True},
    }
    text = json.dumps(entries(api, "access-list"))
    assert "$2b$" not in text and "wonderland" not in text


def test_certificate_upload_records_what_changed_without_key_material() -> None:
    api = api_client(make_admin())
    cert = send(api, "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": "c"})
    issued = certs.make_chain(["files.example"], key_type="ec", ca_key_type="ec")
    response = api.post(
        f"/api/nginx/certificates/{cert['id']}/upload",
        data={
            "certificate": SimpleUploadedFile("c.pem", issued.cert_pem, "application/x-pem-file"),
            "certificate_key": SimpleUploadedFile("k.pem", issued.key_pem(), "text/plain"),
        },
    )
    assert response.status_code == 200, response.content
    updated = entries(api, "certificate")[0]
    assert updated["action"] == "updated"
    assert updated["meta"]["changes"]["domain_names"] == {"before": [], "after": ["files.example"]}
    assert updated["meta"]["changes"]["expires_on"]["before"] is None


def test_secrets_inside_json_values_are_hidden_at_any_depth() -> None:
    before = {"meta": {"dns_provider_credentials": "token=abc", "dns_challenge": True}}
    after = {"meta": {"dns_provider_credentials": "token=xyz", "dns_challenge": True}}
    assert changes(before, after) == {
        "meta": {
            "before": {"dns_provider_credentials": "(hidden)", "dns_challenge": True},
            "after": {"dns_provider_credentials": "(changed)", "dns_challenge": True},
        }
    }
    assert changes({"password_hash": "x"}, {"password_hash": "y"}) == {
        "password_hash": {"before": "(hidden)", "after": "(changed)"}
    }
