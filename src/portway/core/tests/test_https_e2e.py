"""The admin UI behind Portway's own nginx over HTTPS: its cookies are Secure.

The usual way to put the admin UI on HTTPS is a proxy host forwarding to the admin port
on this machine; nginx then tells the admin server `X-Forwarded-Proto: https`, which it
believes from loopback (PORTWAY_TRUSTED_PROXIES' default).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from portway.testing import certs
from portway.testing.process import PortwayProcess, wait_for

ADMIN_NAME = "admin.example.test"


def _request(
    portway: PortwayProcess,
    method: str,
    path: str,
    *,
    https: bool,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> http.client.HTTPResponse:
    """One request through nginx to ADMIN_NAME (SNI and Host), plain or over TLS."""
    port = portway.https_port if https else portway.http_port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = context.wrap_socket(raw, server_hostname=ADMIN_NAME)
    conn = http.client.HTTPConnection(ADMIN_NAME, port, timeout=10)
    conn.sock = raw
    conn.request(method, path, body, {"Host": ADMIN_NAME, **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _cookies(response: http.client.HTTPResponse) -> dict[str, SimpleCookie]:
    jar: dict[str, SimpleCookie] = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        cookie = SimpleCookie(header)
        for name in cookie:
            jar[name] = cookie
    return jar


def test_admin_ui_over_https_through_nginx_sets_secure_cookies(
    portway: PortwayProcess,
) -> None:
    issued = certs.make_chain([ADMIN_NAME])
    cert = portway.upload_certificate("admin UI", issued.cert_pem, issued.key_pem())
    portway.create_proxy_host([ADMIN_NAME], portway.admin_port, certificate_id=cert["id"])
    portway.wait_applied()
    wait_for(lambda: _request(portway, "GET", "/login", https=True).status == 200)

    # over HTTPS: the CSRF cookie is Secure, and signing in gives a Secure session cookie
    page = _request(portway, "GET", "/login", https=True)
    csrf = _cookies(page)["csrftoken"]["csrftoken"]
    assert csrf["secure"] is True and csrf["httponly"] == ""
    form = urlencode(
        {
            "email": "admin@example.com",
            "password": "changeme123",
            "csrfmiddlewaretoken": csrf.value,
        }
    )
    signed_in = _request(
        portway,
        "POST",
        "/login",
        https=True,
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf.value}",
            # what a browser sends for the standard port 443 (nginx passes Host without
            # a port, so the test's high port stays out of the Origin)
            "Origin": f"https://{ADMIN_NAME}",
        },
    )
    assert signed_in.status == 302, signed_in.status
    session = _cookies(signed_in)["sessionid"]["sessionid"]
    assert session["secure"] is True and session["httponly"] is True

    # the same UI over plain HTTP: cookies a browser can keep there, so not Secure
    plain = _request(portway, "GET", "/login", https=False)
    assert plain.status == 200
    assert _cookies(plain)["csrftoken"]["csrftoken"]["secure"] == ""

    # the policy reaches the browser through nginx too
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
