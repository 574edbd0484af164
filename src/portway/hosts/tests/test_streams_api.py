"""/api/nginx/streams through Django's test client.

Wire format (NPM's stream object), every verb, NPM's list order and query, expansions,
the audit log, and bad input for every field: each a 400 naming the field, nothing saved,
no port claimed, no audit entry. Real nginx with TCP/UDP echo servers is in
test_streams_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from portway.hosts.models import HostName, Stream
from portway.nginx.models import AuditLogEntry
from portway.testing.api import api_client, expect_error, make_admin, make_user, send

pytestmark = pytest.mark.django_db

STREAMS = "/api/nginx/streams"
STREAM_KEYS = {
    "id",
    "created_on",
    "modified_on",
    "owner_user_id",
    "incoming_port",
    "forwarding_host",
    "forwarding_port",
    "tcp_forwarding",
    "udp_forwarding",
    "certificate_id",
    "enabled",
    "meta",
}


def stream(**fields: Any) -> dict[str, Any]:
    return {"incoming_port": 15000, "forwarding_host": "127.0.0.1", "forwarding_port": 7, **fields}


@pytest.fixture
def api():
    return api_client(make_admin())


def test_stream_wire_verbs_and_audit(api):
    response = send(api, "POST", STREAMS, stream(incoming_port="15001", meta={"mine": 1}))
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) == STREAM_KEYS
    assert created["incoming_port"] == 15001
    # NPM's defaults: TCP on, UDP off
    assert created["tcp_forwarding"] is True and created["udp_forwarding"] is False
    assert created["meta"]["mine"] == 1 and created["meta"]["nginx_err"] is None
    assert created["certificate_id"] == 0 and created["enabled"] is True
    path = f"{STREAMS}/{created['id']}"

    got = send(api, "GET", f"{path}?expand=owner,certificate").json()
    assert got["owner"]["id"] == created["owner_user_id"] and got["certificate"] is None
    changed = send(api, "PUT", path, {"udp_forwarding": 1, "forwarding_host": "Backend.LAN"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["udp_forwarding"] is True
    assert changed.json()["forwarding_host"] == "backend.lan"
    assert sorted(HostName.objects.filter(kind="stream").values_list("claim", flat=True)) == [
        "tcp:15001",
        "udp:15001",
    ]
    assert send(api, "POST", f"{path}/disable").json() is True
    assert "already disabled" in expect_error(send(api, "POST", f"{path}/disable"), 400)
    # a disabled stream claims no port
    assert not HostName.objects.filter(claim__isnull=False).exists()
    assert send(api, "POST", f"{path}/enable").json() is True
    assert send(api, "DELETE", path).json() is True
    expect_error(send(api, "GET", path), 404)
    assert not HostName.objects.exists()
    entries = AuditLogEntry.objects.filter(object_type="stream", object_id=created["id"])
    assert list(entries.order_by("id").values_list("action", flat=True)) == [
        "created",
        "updated",
        "disabled",
        "enabled",
        "deleted",
    ]
    assert entries.first().meta["incoming_port"] == 15001


def test_list_order_query_and_report(api):
    for port in (15020, 15003, 15100):
        send(api, "POST", STREAMS, stream(incoming_port=port, forwarding_host=f"h{port}.lan"))
    listed = send(api, "GET", STREAMS).json()
    assert [s["incoming_port"] for s in listed] == [15003, 15020, 15100]  # NPM: by port
    assert [s["incoming_port"] for s in send(api, "GET", f"{STREAMS}?query=1510").json()] == [15100]
    assert [s["incoming_port"] for s in send(api, "GET", f"{STREAMS}?query=h15003").json()] == [
        15003
    ]
    assert send(api, "GET", "/api/reports/hosts").json()["stream"] == 3
    hidden = make_user(email="h@example.com", streams="hidden")
    assert send(api_client(hidden), "GET", "/api/reports/hosts").json()["stream"] == 0
    expect_error(send(api_client(hidden), "GET", STREAMS), 403)


def test_port_claimed_per_protocol(api):
    tcp = send(api, "POST", STREAMS, stream(incoming_port=15010)).json()
    # the same port for UDP is another stream's business
    udp = send(
        api, "POST", STREAMS, stream(incoming_port=15010, tcp_forwarding=False, udp_forwarding=True)
    )
    assert udp.status_code == 201, udp.content
    message = expect_error(send(api, "POST", STREAMS, stream(incoming_port=15010)), 400)
    assert "incoming_port" in message and "15010" in message
    assert f"stream {tcp['id']}" in message and "TCP" in message
    both = stream(incoming_port=15010, tcp_forwarding=False, udp_forwarding=True)
    message = expect_error(send(api, "POST", STREAMS, both), 400)
    assert f"stream {udp.json()['id']}" in message and "UDP" in message
    # moving a stream onto a taken port is refused and changes nothing
    other = send(api, "POST", STREAMS, stream(incoming_port=15011)).json()
    message = expect_error(
        send(api, "PUT", f"{STREAMS}/{other['id']}", {"incoming_port": 15010}), 400
    )
    assert "incoming_port" in message
    assert Stream.objects.get(pk=other["id"]).incoming_port == 15011
    # a disabled stream frees its port; enabling it again while taken is refused
    send(api, "POST", f"{STREAMS}/{tcp['id']}/disable")
    assert send(api, "PUT", f"{STREAMS}/{other['id']}", {"incoming_port": 15010}).status_code == 200
    message = expect_error(send(api, "POST", f"{STREAMS}/{tcp['id']}/enable"), 400)
    assert "incoming_port" in message and f"stream {other['id']}" in message
    assert Stream.objects.get(pk=tcp["id"]).enabled is False


def test_taken_port_holder_hidden_from_others(api):
    send(api, "POST", STREAMS, stream(incoming_port=15030))
    member = make_user(email="m@example.com", visibility="user", streams="manage")
    message = expect_error(
        send(api_client(member), "POST", STREAMS, stream(incoming_port=15030)), 400
    )
    assert "cannot see" in message and "127.0.0.1" not in message


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("incoming_port", stream(incoming_port=0)),
        ("incoming_port", stream(incoming_port=65536)),
        ("incoming_port", stream(incoming_port=-1)),
        ("incoming_port", stream(incoming_port="abc")),
        ("incoming_port", stream(incoming_port=True)),
        ("incoming_port", stream(incoming_port=80)),  # Portway's HTTP port
        ("incoming_port", stream(incoming_port=443)),  # HTTPS
        ("incoming_port", stream(incoming_port=81)),  # the admin UI and API
        ("forwarding_port", stream(forwarding_port=0)),
        ("forwarding_port", stream(forwarding_port=65536)),
        ("forwarding_host", stream(forwarding_host="db.lan;")),
        ("forwarding_host", stream(forwarding_host="db.lan; return 1")),
        ("forwarding_host", stream(forwarding_host="db lan")),
        ("forwarding_host", stream(forwarding_host="tcp://db.lan")),
        ("forwarding_host", stream(forwarding_host="http://db.lan")),
        ("forwarding_host", stream(forwarding_host="db.lan:5432")),
        ("forwarding_host", stream(forwarding_host="$host")),
        ("forwarding_host", stream(forwarding_host="")),
        ("forwarding_host", stream(forwarding_host="a\nb")),
        ("tcp_forwarding", stream(tcp_forwarding=False)),
        ("tcp_forwarding", stream(tcp_forwarding=False, udp_forwarding=False)),
        ("tcp_forwarding", stream(tcp_forwarding="maybe")),
        ("certificate_id", stream(certificate_id=99)),
        ("certificate_id", stream(certificate_id="new")),
        ("certificate_id", stream(certificate_id="new", domain_names=["db.example.com"])),
        ("domain_names/0", stream(domain_names=["a;b.example.com"])),
        ("domain_names", stream(domain_names="a.example.com")),
        ("incoming_port", stream(domain_names=["a.example.com"], incoming_port=0)),
        ("incoming_port", {"forwarding_host": "a.lan", "forwarding_port": 1}),
    ],
)
def test_bad_input_is_400_naming_the_field(api, field, body):
    message = expect_error(send(api, "POST", STREAMS, body), 400)
    assert field in message, message
    assert not Stream.objects.exists()
    assert not HostName.objects.exists()
    assert not AuditLogEntry.objects.filter(object_type="stream").exists()


def test_npm_domain_names_accepted_but_not_stored(api):
    """NPM's POST body may carry domain_names (for a "new" certificate); they are
    validated, and no certificate is requested for a stream."""
    created = send(api, "POST", STREAMS, stream(domain_names=["db.example.com"]))
    assert created.status_code == 201, created.content
    assert "domain_names" not in created.json()
    message = expect_error(
        send(api, "PUT", f"{STREAMS}/{created.json()['id']}", {"domain_names": ["x.example"]}),
        400,
    )
    assert "domain_names" in message


def test_messages_say_what_to_do(api):
    message = expect_error(send(api, "POST", STREAMS, stream(forwarding_host="db.lan:5432")), 400)
    assert "forwarding_port" in message and "forward_port" not in message.replace(
        "forwarding_port", ""
    )
    message = expect_error(send(api, "POST", STREAMS, stream(incoming_port=80)), 400)
    assert "80" in message and "HTTP port" in message


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("incoming_port", {"incoming_port": 0}),
        ("incoming_port", {"incoming_port": None}),
        ("incoming_port", {"incoming_port": 443}),
        ("forwarding_host", {"forwarding_host": "https://x.lan"}),
        ("forwarding_host", {"forwarding_host": None}),
        ("tcp_forwarding", {"tcp_forwarding": False}),
        ("tcp_forwarding", {"tcp_forwarding": None}),
    ],
)
def test_bad_update_changes_nothing(api, field, change):
    created = send(api, "POST", STREAMS, stream()).json()
    message = expect_error(send(api, "PUT", f"{STREAMS}/{created['id']}", change), 400)
    assert field in message, message
    assert send(api, "GET", f"{STREAMS}/{created['id']}").json() == created
    assert AuditLogEntry.objects.filter(object_type="stream").count() == 1


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "localhost",
        "db.localhost",
        "::1",
        "[::1]",
        "0.0.0.0",
        "::ffff:127.0.0.1",
    ],
)
def test_a_stream_forwarded_to_its_own_port_is_refused(api, host):
    """Attack: a stream forwarding to its own port on this machine made nginx connect to
    itself until its worker_connections ran out (every host failed meanwhile)."""
    body = stream(incoming_port=15010, forwarding_host=host, forwarding_port=15010)
    message = expect_error(send(api, "POST", STREAMS, body), 400)
    assert "forwarding_port" in message and "own port" in message, message
    assert not Stream.objects.exists() and not HostName.objects.exists()
    # the same over UDP, and as an edit of a good stream
    body = stream(incoming_port=15010, forwarding_host=host, forwarding_port=15010)
    body.update(tcp_forwarding=False, udp_forwarding=True)
    assert "forwarding_port" in expect_error(send(api, "POST", STREAMS, body), 400)
    created = send(api, "POST", STREAMS, stream(incoming_port=15010)).json()
    change = {"forwarding_host": host, "forwarding_port": 15010}
    assert "own port" in expect_error(send(api, "PUT", f"{STREAMS}/{created['id']}", change), 400)
    assert send(api, "GET", f"{STREAMS}/{created['id']}").json() == created


def test_a_loop_through_other_streams_is_refused(api):
    """15020 -> 15021 -> 15020 on this machine: the second stream closing the circle is a
    400; enabling a disabled stream that would close it is too. Another machine or a
    protocol the next stream does not carry is no loop."""
    first = send(api, "POST", STREAMS, stream(incoming_port=15020, forwarding_port=15021))
    assert first.status_code == 201, first.content
    body = stream(incoming_port=15021, forwarding_port=15020)
    message = expect_error(send(api, "POST", STREAMS, body), 400)
    assert "forwarding_port" in message and "through stream" in message, message
    assert Stream.objects.count() == 1
    second = send(api, "POST", STREAMS, {**body, "enabled": False})
    assert second.status_code == 201, second.content  # disabled: carries nothing
    enable = send(api, "POST", f"{STREAMS}/{second.json()['id']}/enable")
    assert "forwarding_port" in expect_error(enable, 400)
    assert Stream.objects.get(pk=second.json()["id"]).enabled is False
    assert not HostName.objects.filter(host_id=second.json()["id"], claim__isnull=False).exists()
    elsewhere = stream(incoming_port=15022, forwarding_host="10.0.0.5", forwarding_port=15022)
    assert send(api, "POST", STREAMS, elsewhere).status_code == 201
    udp = stream(incoming_port=15023, forwarding_port=15020, tcp_forwarding=False)
    assert send(api, "POST", STREAMS, {**udp, "udp_forwarding": True}).status_code == 201
