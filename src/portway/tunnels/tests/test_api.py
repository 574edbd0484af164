"""/api/portway/tunnels in-process: the wire, validation naming the field (nothing saved),
keys answered once and stored hashed, the state file the tunnel service reads, and
permissions (the streams section)."""

from __future__ import annotations

import hashlib
import json

import pytest

from portway.nginx.models import AuditLogEntry
from portway.testing.api import api_client, expect_error, make_admin, make_user, send
from portway.tunnels import services
from portway.tunnels.models import Tunnel, TunnelKey

pytestmark = pytest.mark.django_db
TUNNELS = "/api/portway/tunnels"


def body(**fields):  # noqa: ANN003, ANN201
    return {
        "domain_names": ["db.example.com"],
        "forward_host": "127.0.0.1",
        "forward_port": 3306,
        **fields,
    }


@pytest.fixture
def api():
    return api_client(make_admin())


def state() -> dict:
    return json.loads((services.paths().tunnels / "state.json").read_text())


def test_tunnel_wire_keys_and_state(api):
    response = send(api, "POST", TUNNELS, body(meta={"team": "db"}))
    assert response.status_code == 201, response.content
    tunnel = response.json()
    assert tunnel["domain_names"] == ["db.example.com"] and tunnel["max_connections"] == 100
    assert tunnel["meta"]["team"] == "db" and tunnel["meta"]["nginx_online"] is True
    assert tunnel["certificate_id"] == 0 and tunnel["user_ids"] == []

    created = send(api, "POST", f"{TUNNELS}/{tunnel['id']}/keys", {"name": "laptop"})
    assert created.status_code == 201, created.content
    key = created.json()
    assert key["key"].startswith(f"ptk_{key['key_id']}_") and key["expires_on"] is None
    stored = TunnelKey.objects.get()
    secret = key["key"].removeprefix(f"ptk_{key['key_id']}_")
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(state())
    entry = state()["tunnels"][str(tunnel["id"])]
    assert entry["target"] == ["127.0.0.1", 3306] and entry["enabled"] is True
    assert entry["keys"][key["key_id"]]["hash"] == stored.secret_hash

    listed = send(api, "GET", f"{TUNNELS}/{tunnel['id']}/keys").json()
    assert [k["key"] for k in listed] == [None]

    send(api, "PUT", f"{TUNNELS}/{tunnel['id']}", {"forward_port": 3307, "max_connections": 5})
    assert state()["tunnels"][str(tunnel["id"])]["target"] == ["127.0.0.1", 3307]
    assert send(api, "POST", f"{TUNNELS}/{tunnel['id']}/disable").json() is True
    assert state()["tunnels"][str(tunnel["id"])]["enabled"] is False
    assert send(api, "DELETE", f"{TUNNELS}/{tunnel['id']}/keys/{key['id']}").json() is True
    assert state()["tunnels"][str(tunnel["id"])]["keys"] == {}
    assert send(api, "DELETE", f"{TUNNELS}/{tunnel['id']}").json() is True
    assert state()["tunnels"] == {}
    actions = list(
        AuditLogEntry.objects.filter(object_type="tunnel-host").values_list("action", flat=True)
    )
    assert {"created", "key-created", "key-revoked", "disabled", "deleted"} <= set(actions)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"forward_port": 0}, "forward_port"),
        ({"forward_host": "http://x/"}, "forward_host"),
        ({"domain_names": []}, "domain_names"),
        ({"max_connections": 0}, "max_connections"),
        ({"user_ids": [999]}, "user_ids/0"),
        ({"certificate_id": 42}, "certificate_id"),
        ({"target": "10.0.0.1"}, "target"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_saves_nothing(api, fields, named):
    message = expect_error(send(api, "POST", TUNNELS, body(**fields)), 400)
    assert named in message
    assert not Tunnel.objects.exists()


def test_bad_keys_are_400(api):
    tunnel = send(api, "POST", TUNNELS, body()).json()
    for data, named in (
        ({"name": ""}, "name"),
        ({"name": "x", "expires_on": "2001-01-01T00:00:00Z"}, "expires_on"),
        ({"name": "x", "expires_on": "soon"}, "expires_on"),
        ({"name": "x", "secret": "mine"}, "secret"),
    ):
        message = expect_error(send(api, "POST", f"{TUNNELS}/{tunnel['id']}/keys", data), 400)
        assert named in message
    assert not TunnelKey.objects.exists()


def test_permissions_follow_the_streams_section():
    owner = make_admin()
    tunnel = send(api_client(owner), "POST", TUNNELS, body()).json()
    hidden = make_user("hidden@example.com", streams="hidden")
    expect_error(send(api_client(hidden), "GET", TUNNELS), 403)
    viewer = make_user("viewer@example.com", streams="view", visibility="all")
    assert [t["id"] for t in send(api_client(viewer), "GET", TUNNELS).json()] == [tunnel["id"]]
    expect_error(
        send(api_client(viewer), "POST", f"{TUNNELS}/{tunnel['id']}/keys", {"name": "k"}), 403
    )
    own = make_user("own@example.com", streams="manage", visibility="user")
    expect_error(send(api_client(own), "GET", f"{TUNNELS}/{tunnel['id']}"), 404)
