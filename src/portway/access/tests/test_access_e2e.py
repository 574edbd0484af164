"""Access lists through real nginx: outcomes per source address, with and without a
password, for `satisfy any` and `satisfy all`, on proxy hosts and redirection hosts;
pass_auth; HTTP-01 through any list; an edit reaching every host that uses the list.

Clients bind to 127.0.0.2 and 127.0.0.3 (Linux routes all of 127.0.0.0/8 to loopback),
so nginx, listening on 127.0.0.1, sees them as different addresses.
"""

from __future__ import annotations

import base64
import json
import stat

import pytest

from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

GOOD = {"Authorization": "Basic " + base64.b64encode(b"alice:wonderland1").decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(b"alice:guess").decode()}
LIST = {
    "items": [{"username": "alice", "password": "wonderland1"}],
    "clients": [{"address": "127.0.0.2", "directive": "allow"}],
}


def make_list(portway, name: str, **fields) -> dict:
    status, body = portway.api("POST", "/api/nginx/access-lists", {**LIST, "name": name, **fields})
    assert status == 201, body
    return body


def outcome(portway, name: str, source: str, headers=None) -> int:
    return portway.http(name, "/p", source=source, headers=headers or {})[0]


def make_redirect(portway, name: str, code: int, access_list: dict) -> dict:
    body = {
        "domain_names": [name],
        "forward_scheme": "https",
        "forward_domain_name": "target.example.org",
        "forward_http_code": code,
        "preserve_path": True,
        "access_list_id": access_list["id"],
    }
    status, host = portway.api("POST", "/api/nginx/redirection-hosts", body)
    assert status == 201, host
    return host


def test_access_list_outcomes_per_source_address(portway, upstreams):
    app = upstreams("app")
    any_list = make_list(portway, "any", satisfy_any=True)
    all_list = make_list(portway, "all", satisfy_any=False, pass_auth=True)
    portway.create_proxy_host(["any.example.test"], app.port, access_list_id=any_list["id"])
    sub = {"path": "/sub", "forward_scheme": "http", "forward_host": "127.0.0.1"}
    portway.create_proxy_host(
        ["all.example.test"],
        app.port,
        access_list_id=all_list["id"],
        locations=[{**sub, "forward_port": app.port}],
    )
    portway.create_proxy_host(["open.example.test"], app.port)
    make_redirect(portway, "go-any.example.test", 307, any_list)
    make_redirect(portway, "go-all.example.test", 301, all_list)
    wait_for(lambda: outcome(portway, "all.example.test", "127.0.0.2", GOOD) == 200)
    portway.wait_applied()

    # satisfy any: the allowed address or the password is enough
    assert outcome(portway, "any.example.test", "127.0.0.2") == 200
    assert outcome(portway, "any.example.test", "127.0.0.3", GOOD) == 200
    status, headers, _ = portway.http("any.example.test", "/p", source="127.0.0.3")
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    assert outcome(portway, "any.example.test", "127.0.0.3", WRONG) == 401
    # satisfy all: both are needed
    assert outcome(portway, "all.example.test", "127.0.0.2", GOOD) == 200
    assert outcome(portway, "all.example.test", "127.0.0.2") == 401
    assert outcome(portway, "all.example.test", "127.0.0.3", GOOD) == 403
    assert outcome(portway, "all.example.test", "127.0.0.3") == 403
    # custom locations are under the host's list too
    assert portway.http("all.example.test", "/sub/x", source="127.0.0.2", headers=GOOD)[0] == 200
    assert portway.http("all.example.test", "/sub/x", source="127.0.0.2")[0] == 401
    assert portway.http("all.example.test", "/sub/x", source="127.0.0.3", headers=GOOD)[0] == 403
    # a host without a list is open
    assert outcome(portway, "open.example.test", "127.0.0.3") == 200

    # redirection hosts: the redirect only once the list lets the request through
    status, headers, _ = portway.http("go-any.example.test", "/p?q=1", source="127.0.0.2")
    assert status == 307 and headers["location"] == "https://target.example.org/p?q=1"
    assert outcome(portway, "go-any.example.test", "127.0.0.3", GOOD) == 307
    status, headers, _ = portway.http("go-any.example.test", "/p", source="127.0.0.3")
    assert status == 401 and "location" not in headers
    assert outcome(portway, "go-all.example.test", "127.0.0.2", GOOD) == 301
    assert outcome(portway, "go-all.example.test", "127.0.0.2") == 401
    assert outcome(portway, "go-all.example.test", "127.0.0.3", GOOD) == 403
    assert outcome(portway, "go-all.example.test", "127.0.0.3") == 403

    # pass_auth: forwarded on "all", stripped on "any"
    _, _, body = portway.http("all.example.test", "/p", source="127.0.0.2", headers=GOOD)
    assert json.loads(body)["authorization"] == GOOD["Authorization"]
    _, _, body = portway.http("any.example.test", "/p", source="127.0.0.3", headers=GOOD)
    assert json.loads(body)["authorization"] is None

    # HTTP-01 challenges stay reachable through any list (404: no such token here)
    for name in ("any.example.test", "all.example.test", "go-all.example.test"):
        status = portway.http(name, "/.well-known/acme-challenge/tok", source="127.0.0.3")[0]
        assert status == 404, name

    # the user file holds a hash, privately
    user_file = portway.data_dir / "nginx" / "access" / f"{any_list['id']}.htpasswd"
    text = user_file.read_text()
    assert text.startswith("alice:$2b$") and "wonderland1" not in text
    assert stat.S_IMODE(user_file.stat().st_mode) & 0o077 in (0, 0o040)

    # editing the list reaches the host: 127.0.0.2 is no longer allowed, a new user is
    body = {
        "name": "any",
        "items": [{"username": "alice", "password": ""}, {"username": "bob", "password": "b0b"}],
        "clients": [{"address": "127.0.0.3", "directive": "deny"}],
    }
    status, _ = portway.api("PUT", f"/api/nginx/access-lists/{any_list['id']}", body)
    assert status == 200
    bob = {"Authorization": "Basic " + base64.b64encode(b"bob:b0b").decode()}
    wait_for(lambda: outcome(portway, "any.example.test", "127.0.0.2") == 401)
    portway.wait_applied()
    assert outcome(portway, "any.example.test", "127.0.0.2", bob) == 200
    assert outcome(portway, "any.example.test", "127.0.0.2", GOOD) == 200  # kept password
    assert outcome(portway, "any.example.test", "127.0.0.3", GOOD) == 200  # satisfy any
    assert outcome(portway, "go-any.example.test", "127.0.0.2") == 401
    assert outcome(portway, "go-any.example.test", "127.0.0.2", bob) == 307

    # deleting a list in use: 409 naming the host, still served
    status, error = portway.api("DELETE", f"/api/nginx/access-lists/{any_list['id']}")
    message = error["error"]["message"]
    assert status == 409 and "proxy host" in message and "any.example.test" in message
    assert "redirection host" in message and "go-any.example.test" in message
    assert outcome(portway, "any.example.test", "127.0.0.2") == 401
