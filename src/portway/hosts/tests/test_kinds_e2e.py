"""Redirection and 404 hosts through a real `portway serve` and real nginx.

What a visitor sees: the redirect's status code and Location for each option (path kept
or not, scheme "auto" keeping the request's own scheme), a 404 host answering 404 with
its own certificate (checked over TLS with SNI), and one name index across every kind.
"""

from __future__ import annotations

import pytest
from cryptography import x509

from portway.testing.certs import make_leaf
from portway.testing.network import UpstreamServer
from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

REDIRECTS = "/api/nginx/redirection-hosts"
DEAD = "/api/nginx/dead-hosts"


def _names(cert: x509.Certificate) -> list[str]:
    """The DNS names a served certificate is for ([] for one without them)."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return names.value.get_values_for_type(x509.DNSName)


def _create(pw, path: str, body: dict) -> dict:  # noqa: ANN001
    status, data = pw.api("POST", path, body)
    assert status == 201, data
    assert data["meta"]["nginx_online"] is True, data["meta"]
    return data


def _uploaded(pw, names: list[str]) -> dict:  # noqa: ANN001
    issued = make_leaf(None, names)
    return pw.upload_certificate(names[0], issued.cert_pem, issued.key_pem())


def test_redirection_codes_scheme_and_path(portway):
    cert = _uploaded(portway, ["go.example.test", "keep.example.test"])
    _create(
        portway,
        REDIRECTS,
        {
            "domain_names": ["go.example.test"],
            "forward_scheme": "https",
            "forward_domain_name": "target.example.org",
            "forward_http_code": 301,
            "preserve_path": False,
        },
    )
    _create(
        portway,
        REDIRECTS,
        {
            "domain_names": ["keep.example.test"],
            "forward_scheme": "auto",
            "forward_domain_name": "target.example.org:8443/base",
            "forward_http_code": "308",
            "preserve_path": True,
            "certificate_id": cert["id"],
        },
    )
    portway.wait_applied()

    status, headers, _ = portway.http("go.example.test", "/some/page?x=1")
    assert status == 301
    assert headers["location"] == "https://target.example.org"

    status, headers, _ = portway.http("keep.example.test", "/some/page?x=1")
    assert status == 308
    assert headers["location"] == "http://target.example.org:8443/base/some/page?x=1"
    # scheme "auto": the request came over TLS, so the redirect stays on https
    status, headers, _ = portway.http("keep.example.test", "/a?b=c", https=True)
    assert status == 308
    assert headers["location"] == "https://target.example.org:8443/base/a?b=c"
    assert "keep.example.test" in _names(portway.served_certificate("keep.example.test"))

    # every code 300-308 is served as asked
    status, host = portway.api("GET", f"{REDIRECTS}?query=go.example")
    host_id = host[0]["id"]
    for code in (300, 302, 303, 307):
        status, body = portway.api("PUT", f"{REDIRECTS}/{host_id}", {"forward_http_code": code})
        assert status == 200 and body["forward_http_code"] == code, body
        portway.wait_applied()
        assert wait_for(lambda c=code: portway.http("go.example.test")[0] == c)


def test_dead_host_answers_404_with_its_certificate(portway):
    cert = _uploaded(portway, ["gone.example.test"])
    dead = _create(
        portway,
        DEAD,
        {"domain_names": ["gone.example.test"], "certificate_id": cert["id"], "ssl_forced": True},
    )
    assert dead["ssl_forced"] is True and dead["certificate_id"] == cert["id"]
    portway.wait_applied()

    served = portway.served_certificate("gone.example.test")
    assert _names(served) == ["gone.example.test"]
    status, _, body = portway.http("gone.example.test", "/anything", https=True)
    assert status == 404
    # Force SSL: plain HTTP goes to https first
    status, headers, _ = portway.http("gone.example.test", "/x")
    assert status == 301 and headers["location"].startswith("https://gone.example.test")
    # an unknown name never gets the 404 host's certificate
    assert _names(portway.served_certificate("other.example.test")) != ["gone.example.test"]


def test_one_name_index_across_kinds(portway):
    with UpstreamServer("main") as upstream:
        proxy = portway.create_proxy_host(["shared.example.test"], upstream.port)
        status, body = portway.api(
            "POST",
            DEAD,
            {"domain_names": ["other.example.test", "SHARED.example.test"]},
        )
        assert status == 400
        message = body["error"]["message"]
        assert "domain_names/1" in message and f"proxy host {proxy['id']}" in message
        assert portway.api("GET", DEAD)[1] == []

        dead = _create(portway, DEAD, {"domain_names": ["dead.example.test"]})
        status, body = portway.api(
            "POST",
            REDIRECTS,
            {
                "domain_names": ["dead.example.test"],
                "forward_scheme": "http",
                "forward_domain_name": "x.example.org",
            },
        )
        assert status == 400 and f"404 host {dead['id']}" in body["error"]["message"]

        # a disabled host frees its names; enabling it again finds them taken
        assert portway.api("POST", f"{DEAD}/{dead['id']}/disable")[0] == 200
        redirect = _create(
            portway,
            REDIRECTS,
            {
                "domain_names": ["dead.example.test"],
                "forward_scheme": "http",
                "forward_domain_name": "x.example.org",
            },
        )
        status, body = portway.api("POST", f"{DEAD}/{dead['id']}/enable")
        assert status == 400 and f"redirection host {redirect['id']}" in body["error"]["message"]
        portway.wait_applied()
        status, headers, _ = portway.http("dead.example.test", "/p")
        assert status == 302 and headers["location"] == "http://x.example.org"

        status, report = portway.api("GET", "/api/reports/hosts")
        assert report == {"proxy": 1, "redirection": 1, "stream": 0, "dead": 1}


def test_simultaneous_claims_of_one_name_leave_one_host(portway):
    """Eight clients create hosts of different kinds for one name at once: the unique
    index lets exactly one through, the others get a 400 naming domain_names."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [
        (DEAD, {"domain_names": ["race.example.test"]}),
        (
            REDIRECTS,
            {
                "domain_names": ["race.example.test"],
                "forward_scheme": "auto",
                "forward_domain_name": "x.example.org",
            },
        ),
    ] * 4
    token = portway.token
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: portway.api("POST", b[0], b[1], token=token), bodies))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [400] * 7, answers
    for status, body in answers:
        if status == 400:
            assert "domain_names/0" in body["error"]["message"], body
    hosts = portway.api("GET", DEAD)[1] + portway.api("GET", REDIRECTS)[1]
    assert [h["domain_names"] for h in hosts] == [["race.example.test"]]
