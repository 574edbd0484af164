"""/api/settings/real-ip: bad input is a 400 naming the field, nothing saved or applied."""

from __future__ import annotations

import pytest

from portway.access import realip
from portway.nginx.models import AuditLogEntry, Setting
from portway.testing.api import api_client, expect_error, make_admin, make_user, send

pytestmark = pytest.mark.django_db
URL = "/api/settings/real-ip"

BAD = [
    ("value-word", "value", {"value": "on"}),
    ("meta-list", "meta", {"value": "off", "meta": [1]}),
    ("meta-unknown", "meta/colour", {"value": "off", "meta": {"colour": 1}}),
    ("cloudflare-word", "meta/cloudflare", {"value": "off", "meta": {"cloudflare": "yes"}}),
    ("proxies-string", "meta/trusted_proxies", {"value": "off", "meta": {"trusted_proxies": "x"}}),
    (
        "cidr-word",
        "meta/trusted_proxies/1",
        {"value": "X-Forwarded-For", "meta": {"trusted_proxies": ["10.0.0.0/8", "lan"]}},
    ),
    (
        "cidr-prefix",
        "meta/trusted_proxies/0",
        {"value": "X-Forwarded-For", "meta": {"trusted_proxies": ["10.0.0.0/33"]}},
    ),
    (
        "cidr-injection",
        "meta/trusted_proxies/0",
        {"value": "X-Forwarded-For", "meta": {"trusted_proxies": ["10.0.0.1; allow all"]}},
    ),
    ("header-without-source", "meta/trusted_proxies", {"value": "CF-Connecting-IP", "meta": {}}),
    # attack: trusting the whole internet lets any client pass for any address
    *(
        (
            f"whole-internet-{cidr}",
            "meta/trusted_proxies/1",
            {"value": "X-Forwarded-For", "meta": {"trusted_proxies": ["10.0.0.0/8", cidr]}},
        )
        for cidr in ("0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "2000::/3", "1.0.0.0/7")
    ),
]


@pytest.mark.parametrize(("case", "field", "body"), BAD, ids=[b[0] for b in BAD])
def test_bad_input(case: str, field: str, body: dict) -> None:
    client = api_client(make_admin())
    realip.get_setting()  # the default row, created on first read
    before = (list(Setting.objects.values()), AuditLogEntry.objects.count())
    message = expect_error(send(client, "put", URL, body), 400)
    assert f"data/{field} " in message, message
    if case.startswith("whole-internet"):
        assert "anyone on the internet" in message, message
    assert (list(Setting.objects.values()), AuditLogEntry.objects.count()) == before


def test_listed_read_and_changed() -> None:
    client = api_client(make_admin())
    assert URL.rsplit("/", 1)[1] in [s["id"] for s in client.get("/api/settings").json()]
    assert client.get(URL).json()["value"] == "off"
    wide_private = ["10.1.2.3/8", "::1", "fc00::/7", "1.2.3.0/8"]
    body = {"value": "X-Forwarded-For", "meta": {"trusted_proxies": wide_private}}
    answer = send(client, "put", URL, body).json()
    assert answer["meta"] == {
        "cloudflare": False,
        "trusted_proxies": ["10.0.0.0/8", "::1/128", "fc00::/7", "1.0.0.0/8"],
    }
    spec = realip.spec()
    assert spec is not None and spec.header == "X-Forwarded-For"
    body = {"value": "CF-Connecting-IP", "meta": {"cloudflare": True}}
    send(client, "put", URL, body)
    spec = realip.spec()
    assert (
        spec is not None and "173.245.48.0/20" in spec.trusted and "2400:cb00::/32" in spec.trusted
    )


def test_admins_only() -> None:
    client = api_client(make_user("u@example.com"))
    expect_error(send(client, "put", URL, {"value": "off"}), 403)
    expect_error(client.post(URL + "/refresh-cloudflare"), 403)
