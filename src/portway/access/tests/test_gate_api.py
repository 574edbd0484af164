"""The login gate's API fields and setting: validated at the edge (400 naming the field,
nothing saved), returned only with ?expand=portway (NPM's object stays NPM's)."""

from __future__ import annotations

import pytest

from portway.access.models import AccessList
from portway.testing.api import api_client, expect_error, make_admin, make_user, send
from portway.testing.npm_contract import assert_npm_response
from portway.testing.plugin import missing_prerequisite

pytestmark = pytest.mark.django_db
BASE = "/api/nginx/access-lists"


def test_gate_fields_are_portway_extras() -> None:
    api = api_client(make_admin())
    member = make_user("member@example.com")
    response = send(api, "POST", BASE, {"name": "gate", "portway_login": True})
    assert response.status_code == 201
    body = response.json()
    assert "portway_login" not in body  # NPM's object unless asked
    assert_npm_response("POST", BASE, 201, body)
    url = f"{BASE}/{body['id']}"
    response = send(api, "PUT", f"{url}?expand=portway", {"portway_users": [member.pk]})
    assert response.json()["portway_users"] == [member.pk]
    got = api.get(f"{url}?expand=portway").json()
    assert got["portway_login"] is True and got["portway_users"] == [member.pk]
    assert_npm_response("GET", url, 200, got)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"portway_login": "yes please"}, "portway_login"),
        ({"portway_users": [999999]}, "portway_users/0"),
        ({"portway_users": [0]}, "portway_users/0"),
        ({"portway_users": "all"}, "portway_users"),
    ],
)
def test_bad_gate_fields_are_refused_naming_them(body: dict, field: str) -> None:
    api = api_client(make_admin())
    message = expect_error(send(api, "POST", BASE, {"name": "gate", **body}), 400)
    assert field in message
    assert not AccessList.objects.exists()


def test_gate_setting_is_validated_and_admin_only() -> None:
    admin = api_client(make_admin())
    url = "/api/settings/gate"
    assert admin.get(url).json()["meta"] == {"cookie_domain": ""}
    for meta, field in (
        ({"cookie_domain": "exa mple"}, "meta/cookie_domain"),
        ({"cookie_domain": "localhost"}, "meta/cookie_domain"),
        ({"cookie_domain": 5}, "meta/cookie_domain"),
        ({"other": 1}, "meta/other"),
    ):
        message = expect_error(send(admin, "PUT", url, {"value": "default", "meta": meta}), 400)
        assert field in message
    response = send(
        admin, "PUT", url, {"value": "default", "meta": {"cookie_domain": "Club.Example"}}
    )
    assert (
        response.status_code == 200 and response.json()["meta"]["cookie_domain"] == "club.example"
    )
    user = api_client(make_user("someone@example.com"))
    expect_error(send(user, "PUT", url, {"value": "default", "meta": {}}), 403)


def test_gate_cookie_domain_is_a_name_a_browser_accepts() -> None:
    """Attack: a public suffix (co.uk, github.io, a `*.ck` wildcard) was accepted as the
    cookie domain; browsers drop such a cookie and nobody could sign in. An IDN is taken
    as the host names take it (punycode), an address is refused; nothing saved."""
    from portway.accounts import gate

    if not gate.PUBLIC_SUFFIX_LIST.exists():
        missing_prerequisite(f"{gate.PUBLIC_SUFFIX_LIST} (apt-get install publicsuffix)")
    admin = api_client(make_admin())
    url = "/api/settings/gate"
    for bad in (
        "co.uk",
        "github.io",
        "foo.ck",
        "com",
        "127.0.0.1",
        "*.club.example",
        "a;b.example",
    ):
        message = expect_error(
            send(admin, "PUT", url, {"value": "default", "meta": {"cookie_domain": bad}}), 400
        )
        assert "meta/cookie_domain" in message, (bad, message)
        assert admin.get(url).json()["meta"] == {"cookie_domain": ""}, bad
    assert "public suffix" in expect_error(
        send(admin, "PUT", url, {"value": "default", "meta": {"cookie_domain": "co.uk"}}), 400
    )
    for good, stored in (
        ("club.co.uk", "club.co.uk"),
        ("www.ck", "www.ck"),
        ("Bücher.Example", "xn--bcher-kva.example"),
    ):
        response = send(admin, "PUT", url, {"value": "default", "meta": {"cookie_domain": good}})
        assert response.status_code == 200, response.content
        assert response.json()["meta"]["cookie_domain"] == stored
