"""The Portway login gate through real nginx and a real upstream that echoes headers.

One Portway for the module. `gated.test` uses a list with `portway_login`, its users
limited to `member` and `totp`, `satisfy any` with an `allow 127.0.0.2` clause: that
address gets in directly, 127.0.0.3 must sign in. `open.test` has no list. Cookies are
carried by hand (the names are not resolvable), the browser test uses `*.localhost`,
which Chromium maps to loopback itself.
"""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import urlencode

import pyotp
import pytest

from portway.testing.network import UpstreamServer
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

PASSWORD = "gate-password-1"
OUTSIDE = "127.0.0.3"
LAN = "127.0.0.2"


@pytest.fixture(scope="module")
def site(shared_portway: PortwayProcess):  # noqa: ANN201
    portway = shared_portway
    upstream = UpstreamServer("app").__enter__()
    ids = {}
    for nick in ("member", "stranger", "totp"):
        status, body = portway.api(
            "POST",
            "/api/users",
            {
                "name": nick.title(),
                "nickname": nick,
                "email": f"{nick}@club.test",
                "roles": [],
                "is_disabled": False,
                "auth": {"type": "password", "secret": PASSWORD},
            },
        )
        assert status == 201, body
        ids[nick] = body["id"]
    status, gate_list = portway.api(
        "POST",
        "/api/nginx/access-lists?expand=portway",
        {
            "name": "club login",
            "satisfy_any": True,
            "clients": [{"address": LAN, "directive": "allow"}],
            "portway_login": True,
            "portway_users": [ids["member"], ids["totp"]],
        },
    )
    assert status == 201, gate_list
    assert gate_list["portway_login"] is True
    assert gate_list["portway_users"] == [ids["member"], ids["totp"]]
    for names, fields in (
        (
            ["gated.test", "gate.localhost"],
            {
                "access_list_id": gate_list["id"],
                "locations": [
                    {
                        "path": "/api",
                        "forward_scheme": "http",
                        "forward_host": "127.0.0.1",
                        "forward_port": upstream.port,
                        "forward_path": "/v2",
                    }
                ],
            },
        ),
        (["wiki.sso.test", "chat.sso.test"], {"access_list_id": gate_list["id"]}),
        (["open.test"], {}),
    ):
        portway.create_proxy_host(names, upstream.port, **fields)
    portway.wait_applied()
    wait_for(lambda: portway.http("gated.test", "/", source=LAN)[0] == 200)
    try:
        yield portway, ids, gate_list
    finally:
        upstream.__exit__(None, None, None)


def host(portway: PortwayProcess, name: str = "gated.test") -> str:
    return f"{name}:{portway.http_port}"


def get(portway: PortwayProcess, path: str = "/", cookie: str | None = None, **kwargs):  # noqa: ANN003, ANN201
    headers = dict(kwargs.pop("headers", {}))
    if cookie:
        headers["Cookie"] = f"portway_gate={cookie}"
    kwargs.setdefault("source", OUTSIDE)
    return portway.http(kwargs.pop("name", host(portway)), path, headers=headers, **kwargs)


def login(
    portway: PortwayProcess,
    email: str,
    next_url: str = "/",
    site: str = "gated.test",
    cookie: str | None = None,
    **fields: str,
):  # noqa: ANN201
    body = urlencode({"email": email, "password": PASSWORD, "next": next_url, **fields}).encode()
    extra = {"Cookie": cookie} if cookie else {}
    return portway.http(
        host(portway, site),
        "/.portway/login",
        method="POST",
        body=body,
        source=OUTSIDE,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"http://{host(portway, site)}",
            **extra,
        },
    )


def cookie_of(headers: dict[str, str]) -> str:
    for line in headers.get("set-cookie", "").split("\n"):
        if line.startswith("portway_gate=") and "Max-Age=0" not in line:
            return line.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"no gate cookie in {headers}")


def echoed(body: bytes) -> dict:
    return json.loads(body)


def test_without_a_session_the_browser_goes_to_the_sites_login_page(site) -> None:
    portway, _, _ = site
    status, headers, _ = get(portway, "/docs/a%20b?x=1&y=2")
    assert status == 302
    assert headers["location"] == (
        f"http://{host(portway)}/.portway/login?next=%2Fdocs%2Fa%2520b%3Fx%3D1%26y%3D2"
    )
    status, headers, body = get(portway, "/.portway/login?next=%2Fdocs")
    assert status == 200 and b'name="password"' in body
    csp = headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "default-src 'self'" in csp
    assert b"style=" not in body and b"<script" not in body
    assert get(portway, "/.portway/gate.css")[0] == 200


def test_an_allowed_address_gets_in_without_signing_in(site) -> None:
    portway, _, _ = site
    status, _, body = get(portway, "/p", source=LAN, headers={"Remote-User": "admin"})
    assert status == 200
    assert echoed(body)["remote_user"] is None  # let in by address, and forgery stripped


def test_http01_challenges_are_never_gated(site) -> None:
    portway, _, _ = site
    assert get(portway, "/.well-known/acme-challenge/token")[0] == 404  # no such file, no 302


def test_signed_in_member_reaches_the_upstream_as_themselves(site) -> None:
    portway, _, _ = site
    status, headers, _ = login(portway, "member@club.test", "/docs?x=1")
    assert status == 302 and headers["location"] == "/docs?x=1"
    set_cookie = headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    cookie = cookie_of(headers)
    forged = {"Remote-User": "admin@club.test", "Remote-Email": "admin@club.test"}
    status, _, body = get(portway, "/docs", cookie, headers=forged)
    assert status == 200
    assert echoed(body)["remote_user"] == "member@club.test"
    assert echoed(body)["remote_email"] == "member@club.test"
    # a custom location of the host is gated the same way
    assert get(portway, "/api/x")[0] == 302
    status, _, body = get(portway, "/api/x", cookie, headers=forged)
    assert status == 200 and echoed(body)["path"] == "/v2/x"
    assert echoed(body)["remote_user"] == "member@club.test"
    # a host without a gate strips the headers too
    status, _, body = get(portway, "/", name=host(portway, "open.test"), headers=forged)
    assert status == 200 and echoed(body)["remote_user"] is None
    assert echoed(body)["remote_email"] is None


def test_a_user_not_on_the_list_is_refused(site) -> None:
    portway, _, _ = site
    status, headers, _ = login(portway, "stranger@club.test")
    assert status == 302
    assert get(portway, "/", cookie_of(headers))[0] == 403


def test_tampered_cookies_and_foreign_redirect_targets_are_refused(site) -> None:
    portway, ids, _ = site
    status, headers, _ = login(portway, "member@club.test", "https://evil.example/steal")
    assert status == 302 and headers["location"] == "/"
    for target in ("//evil.example/", "/\\evil.example", "http://gated.test.evil.example/"):
        assert login(portway, "member@club.test", target)[1]["location"] == "/", target
    cookie = cookie_of(headers)
    value, signature = cookie.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert get(portway, "/", f"{value}:{flipped}")[0] == 302
    # another user's id in the payload breaks the signature as well
    payload, timestamp = value.split(":")
    forged = {"u": ids["totp"], "s": 0, "t": 0}
    other = base64.urlsafe_b64encode(json.dumps(forged, separators=(",", ":")).encode())
    assert other.decode().rstrip("=") != payload
    assert get(portway, "/", f"{other.decode().rstrip('=')}:{timestamp}:{signature}")[0] == 302
    assert get(portway, "/", "garbage")[0] == 302
    # a cross-site form post is refused
    status, _, _ = portway.http(
        host(portway),
        "/.portway/login",
        method="POST",
        body=b"email=member%40club.test&password=x",
        source=OUTSIDE,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "http://evil.example",
        },
    )
    assert status == 403


def test_failed_and_successful_gate_logins_are_audited_with_their_address(site) -> None:
    portway, _, _ = site
    status, _, body = login(portway, "member@club.test", password="wrong")
    assert status == 400 and b"Invalid e-mail address or password" in body
    status, entries = portway.api("GET", "/api/audit-log?expand=user")
    assert status == 200
    failed = [e for e in entries if e["action"] == "login-failed"]
    assert failed[0]["meta"]["via"] == "gate"
    assert failed[0]["meta"]["source_address"] == OUTSIDE
    logins = [e for e in entries if e["action"] == "login" and e["meta"].get("via") == "gate"]
    assert logins[0]["meta"]["site"] == "gated.test"
    assert logins[0]["meta"]["source_address"] == OUTSIDE


def test_signing_out_ends_gate_and_admin_sessions_everywhere(site) -> None:
    portway, _, _ = site
    first = cookie_of(login(portway, "member@club.test")[1])
    second = cookie_of(login(portway, "member@club.test")[1])
    admin_ui = portway.ui_session("member@club.test", PASSWORD)
    assert admin_ui.get(portway.admin_url + "/account", allow_redirects=False).status_code == 200
    assert get(portway, "/", second)[0] == 200
    status, headers, _ = portway.http(
        host(portway),
        "/.portway/logout",
        method="POST",
        body=b"",
        source=OUTSIDE,
        headers={"Cookie": f"portway_gate={first}", "Origin": f"http://{host(portway)}"},
    )
    assert status == 302 and headers["location"] == "/.portway/login"
    assert get(portway, "/", first)[0] == 302
    assert get(portway, "/", second)[0] == 302  # the other browser's session too
    response = admin_ui.get(portway.admin_url + "/account", allow_redirects=False)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_parent_cookie_domain_signs_in_once_for_its_subdomains(site) -> None:
    portway, _, _ = site
    wiki, chat = host(portway, "wiki.sso.test"), host(portway, "chat.sso.test")
    alone = cookie_of(login(portway, "member@club.test", site="wiki.sso.test")[1])
    assert get(portway, "/", alone, name=wiki)[0] == 200
    assert get(portway, "/", alone, name=chat)[0] == 302  # scoped to wiki.sso.test only
    sso = {"value": "default", "meta": {"cookie_domain": "sso.test"}}
    assert portway.api("PUT", "/api/settings/gate", sso)[0] == 200
    try:
        status, headers, _ = login(
            portway, "member@club.test", site="wiki.sso.test", cookie=f"portway_gate={alone}"
        )
        assert status == 302 and "Domain=sso.test" in headers["set-cookie"]
        # the site's own cookie is removed, so it cannot shadow the shared one
        assert 'portway_gate=""; Max-Age=0; Path=/; HttpOnly' in headers["set-cookie"]
        shared = cookie_of(headers)
        assert get(portway, "/", shared, name=chat)[0] == 200
        both = {"Cookie": f"portway_gate={alone}; portway_gate={shared}"}
        assert portway.http(chat, "/", headers=both, source=OUTSIDE)[0] == 200
        assert get(portway, "/", shared)[0] == 302  # gated.test is outside sso.test
    finally:
        portway.api("PUT", "/api/settings/gate", {"value": "default", "meta": {}})


def test_guessing_passwords_on_the_gate_is_throttled(site) -> None:
    portway, _, _ = site
    statuses = [login(portway, "nobody@club.test", password=f"guess-{i}")[0] for i in range(8)]
    assert statuses[:6] == [400] * 6
    assert statuses[-1] == 429
    status, headers, body = login(portway, "nobody@club.test")
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert b"Too many failed sign-in attempts" in body


def test_the_admin_port_does_not_serve_the_gate_pages(site) -> None:
    portway, _, _ = site
    import requests

    assert requests.get(portway.admin_url + "/.portway/login", timeout=10).status_code == 404


def test_signing_out_of_the_admin_ui_ends_gate_sessions(site) -> None:
    portway, _, _ = site
    cookie = cookie_of(login(portway, "member@club.test")[1])
    assert get(portway, "/", cookie)[0] == 200
    admin_ui = portway.ui_session("member@club.test", PASSWORD)
    account = admin_ui.get(portway.admin_url + "/account").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', account).group(1)
    response = admin_ui.post(
        portway.admin_url + "/logout",
        data={"csrfmiddlewaretoken": token},
        headers={"Referer": portway.admin_url + "/account"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert get(portway, "/", cookie)[0] == 302


def test_browser_signs_in_with_a_totp_code(site, browser_page) -> None:
    portway, ids, _ = site
    status, token = portway.api(
        "POST", "/api/tokens", {"identity": "totp@club.test", "secret": PASSWORD}, auth=False
    )
    assert status == 200, token
    user_token = token["token"]
    status, setup = portway.api("POST", f"/api/users/{ids['totp']}/2fa", token=user_token)
    assert status == 200, setup
    totp = pyotp.TOTP(setup["secret"])
    status, codes = portway.api(
        "POST", f"/api/users/{ids['totp']}/2fa/enable", {"code": totp.now()}, token=user_token
    )
    assert status == 200, codes

    page = browser_page
    base = f"http://gate.localhost:{portway.http_port}"
    page.goto(f"{base}/wiki?page=1")
    assert page.url.startswith(f"{base}/.portway/login?next=")
    page.fill("#id_email", "totp@club.test")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#id_code")
    # the enabling code's time step is spent; the next step's code is in the window
    page.fill("#id_code", totp.at(time.time() + 30))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/wiki?page=1")
    seen = json.loads(page.inner_text("body"))
    assert seen["remote_user"] == "totp@club.test"
    assert seen["path"] == "/wiki?page=1"


def test_the_gate_check_itself_is_not_reachable_from_outside(site) -> None:
    """/.portway/auth/<list id> is nginx's subrequest only: a visitor asking it directly
    (with a session, any list id, its own X-Portway-Uri) gets 404, not the check's answer."""
    portway, _, gate_list = site
    cookie = cookie_of(login(portway, "member@club.test")[1])
    for path in (
        f"/.portway/auth/{gate_list['id']}",
        f"/.portway/auth/{gate_list['id'] + 1}",
        "/.portway/auth",
        "/.portway/auth/",
        "/.portway//auth/1",
        "/.portway/./auth/1",
        "/.portway/%61uth/1",
    ):
        status, headers, _ = get(portway, path, cookie, headers={"X-Portway-Uri": "/x"})
        assert status == 404, path
        assert "x-portway-user" not in headers and "x-portway-location" not in headers, path
    # the login page beside it still answers
    assert get(portway, "/.portway/login")[0] == 200


def test_odd_redirect_targets_stay_paths_on_the_site(site) -> None:
    """Encoded slashes, a tab, CR/LF and NUL in `next`: the answer is a 302 whose Location
    is a path on this site (percent-encoded), never another host or an injected header."""
    portway, _, _ = site
    for target, expected in (
        ("%2f%2fevil.example", "/"),
        ("/\t/evil.example", "/"),
        ("///evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/.portway/logout", "/"),
        ("/%2f/evil.example", "/%2f/evil.example"),
        ("/%5cevil.example", "/%5cevil.example"),
        ("/a\r\nSet-Cookie: x=1", "/a%0D%0ASet-Cookie:%20x=1"),
        ("/a%0d%0aSet-Cookie:%20x=1", "/a%0d%0aSet-Cookie:%20x=1"),
        ("/\x00", "/%00"),
    ):
        status, headers, _ = login(portway, "member@club.test", target)
        assert status == 302, target
        assert headers["location"] == expected, target
        assert "x=1" not in headers.get("set-cookie", ""), target
