"""Text that is valid JSON but that no database or file stores is a 400 at the edge.

A lone UTF-16 surrogate (`"\\ud800"` in JSON) has no UTF-8 form: before, it reached
SQLite, the default page's file or the response encoder and answered 500, and one host
with it in `meta` made `GET /api/nginx/proxy-hosts` fail for everyone who could see it.
"""

from __future__ import annotations

import pytest

LONE = "\ud800"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "PUT",
            "/api/settings/default-site",
            {"value": "html", "meta": {"html": LONE}},
            "meta/html",
        ),
        ("POST", "/api/nginx/certificates", {"provider": "other", "nice_name": LONE}, "nice_name"),
        ("POST", "/api/users", {"name": LONE, "email": "u@example.com", "roles": []}, "name"),
        ("PUT", "/api/users/1", {"name": f"a{LONE}"}, "name"),
        ("POST", "/api/nginx/proxy-hosts", {"meta": {LONE: 1}}, "meta"),
        ("POST", "/api/nginx/proxy-hosts", {"meta": {"note": [1, "\x00"]}}, "meta/note/1"),
    ],
)
def test_lone_surrogate_or_nul_is_a_400_naming_the_field(
    shared_portway, upstreams, method, path, body, field
):
    if path == "/api/nginx/proxy-hosts":
        upstream = upstreams("listed")
        body = {
            "domain_names": ["unstorable.example.com"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": upstream.port,
            **body,
        }
    status, answer = shared_portway.api(method, path, body)
    assert status == 400, answer
    message = answer["error"]["message"]
    assert f"data/{field} " in message and ("U+D800" in message or "U+0000" in message), message
    assert shared_portway.api("GET", "/api/nginx/proxy-hosts")[0] == 200
    assert shared_portway.api("GET", "/api/settings/default-site")[1]["value"] != "html"
