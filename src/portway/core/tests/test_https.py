"""Secure cookies when the admin UI is reached over HTTPS, and only then."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from django.test import Client

from portway import conf
from portway.testing.api import PASSWORD, make_admin

pytestmark = pytest.mark.django_db

LOOPBACK = "127.0.0.1"  # the proxy in front of the admin: this machine's own nginx
LAN_CLIENT = "192.168.1.50"
ADMIN = "ada@example.com"


@pytest.fixture(autouse=True)
def _admin(settings: Any) -> None:
    """Pages answer (rather than send everyone to /setup) once an admin exists."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_admin(ADMIN, PASSWORD)


def _configure(settings: Any, **changes: Any) -> None:
    settings.PORTWAY = dataclasses.replace(settings.PORTWAY, **changes)


def _log_in(client: Client, **extra: str):
    """GET the form (CSRF cookie), then POST it as a browser would; the POST's response."""
    client.get("/login", **extra)
    form = {
        "email": ADMIN,
        "password": PASSWORD,
        "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
    }
    return client.post("/login", form, **extra)


def _secure_flags(response) -> dict[str, bool]:
    return {name: bool(morsel["secure"]) for name, morsel in response.cookies.items()}


def test_plain_http_cookies_are_not_secure() -> None:
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=LAN_CLIENT)
    response = _log_in(client)
    assert response.status_code == 302
    flags = _secure_flags(response)
    assert "sessionid" in flags and not any(flags.values()), flags


def test_https_from_a_trusted_proxy_makes_every_cookie_secure() -> None:
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=LOOPBACK)
    https = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_ORIGIN": "https://portway.example"}
    client.defaults["HTTP_HOST"] = "portway.example"
    first = client.get("/login", HTTP_X_FORWARDED_PROTO="https")
    assert first.cookies["csrftoken"]["secure"] is True
    response = _log_in(client, **https)
    # the CSRF check accepted the browser's https:// Origin: the scheme is known
    assert response.status_code == 302, response.content
    flags = _secure_flags(response)
    assert flags.get("sessionid") is True and all(flags.values()), flags
    assert response["Location"] == "/"


def test_https_claim_from_an_untrusted_peer_is_ignored() -> None:
    client = Client(REMOTE_ADDR=LAN_CLIENT)
    response = client.get("/login", HTTP_X_FORWARDED_PROTO="https")
    assert response.cookies["csrftoken"]["secure"] == ""


def test_untrusted_proxy_with_https_origin_is_refused_by_csrf() -> None:
    """Without trust the scheme stays http, so an https Origin does not match: 403."""
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=LAN_CLIENT)
    client.defaults["HTTP_HOST"] = "portway.example"
    response = _log_in(
        client, HTTP_X_FORWARDED_PROTO="https", HTTP_ORIGIN="https://portway.example"
    )
    assert response.status_code == 403


def test_trusted_proxies_setting_names_other_peers(settings: Any) -> None:
    _configure(settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    assert (
        Client(REMOTE_ADDR="10.1.2.3")
        .get("/login", HTTP_X_FORWARDED_PROTO="https")
        .cookies["csrftoken"]["secure"]
    )
    assert (
        not Client(REMOTE_ADDR=LOOPBACK)
        .get("/login", HTTP_X_FORWARDED_PROTO="https")
        .cookies["csrftoken"]["secure"]
    )


def test_admin_https_setting_makes_cookies_secure_without_a_header(settings: Any) -> None:
    _configure(settings, admin_https=True)
    response = Client(REMOTE_ADDR=LAN_CLIENT).get("/login")
    assert response.cookies["csrftoken"]["secure"] is True


def test_direct_https_is_secure() -> None:
    response = Client(REMOTE_ADDR=LAN_CLIENT).get("/login", secure=True)
    assert response.cookies["csrftoken"]["secure"] is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["127.0.0.1/32", "::1/128"]),
        ("10.0.0.1, 192.168.0.0/16", ["10.0.0.1/32", "192.168.0.0/16"]),
        ("none", []),
    ],
)
def test_trusted_proxies_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: list[str]
) -> None:
    if value is None:
        monkeypatch.delenv("PORTWAY_TRUSTED_PROXIES", raising=False)
    else:
        monkeypatch.setenv("PORTWAY_TRUSTED_PROXIES", value)
    assert [str(n) for n in conf.load().trusted_proxies] == expected


def test_a_bad_trusted_proxy_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWAY_TRUSTED_PROXIES", "10.0.0.1 nginx.local")
    with pytest.raises(conf.ConfigError, match="PORTWAY_TRUSTED_PROXIES.*nginx.local"):
        conf.load()


def test_public_plain_http_admin_is_warned_about() -> None:
    """PORTWAY_ADMIN_BIND on a public address: the warning serve, status and the
    installer print; loopback and private addresses are not warned about."""
    from dataclasses import replace

    from portway import conf

    base = conf.load()
    warning = conf.admin_exposure_warning(replace(base, admin_bind="8.8.8.8", admin_port=81))
    assert warning is not None
    assert "public address 8.8.8.8 port 81" in warning
    assert "PORTWAY_ADMIN_BIND=127.0.0.1" in warning
    for private in ("127.0.0.1", "10.1.2.3", "192.168.1.10", "fd00::1", "::1"):
        assert conf.admin_exposure_warning(replace(base, admin_bind=private)) is None
