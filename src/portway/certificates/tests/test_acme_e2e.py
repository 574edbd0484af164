"""ACME end to end: a real `portway serve` (real nginx) gets certificates from Debian's
pebble, validated through Portway's own nginx (HTTP-01) or a real BIND 9 (DNS-01).

All traffic stays on 127.0.0.1: pebble, pebble-challtestsrv and named run on high ports.
"""

from __future__ import annotations

import pytest
from cryptography.x509.oid import NameOID

from portway.testing.acme import BLOCKED_DOMAIN
from portway.testing.process import wait_for

pytestmark = pytest.mark.slow


def _serial(meta: dict) -> int:
    return int(meta["serial"].replace(":", ""), 16)


def _issuer_cn(cert) -> str:  # noqa: ANN001
    return cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_http01_certificate_is_issued_and_served_by_nginx(acme, upstreams):
    app = upstreams("app")
    pending = acme.request(["app.acme.test", "www.app.acme.test"])
    assert pending["provider"] == "letsencrypt"
    assert pending["meta"]["acme_status"] == "pending"
    assert pending["expires_on"] is None

    cert = acme.wait(pending["id"])
    meta = cert["meta"]
    assert meta["acme_status"] == "valid", meta
    assert meta["acme_domains"] == {"app.acme.test": "valid", "www.app.acme.test": "valid"}
    assert sorted(cert["domain_names"]) == ["app.acme.test", "www.app.acme.test"]
    assert cert["expires_on"] and "Pebble" in meta["issuer"]

    acme.portway.create_proxy_host(
        ["app.acme.test"], app.port, certificate_id=cert["id"], ssl_forced=True
    )
    acme.portway.wait_applied()
    served = acme.portway.served_certificate("app.acme.test")
    assert served.serial_number == _serial(meta)
    assert _issuer_cn(served).startswith("Pebble Intermediate")
    assert acme.portway.upstream_of("app.acme.test", https=True) == "app"

    _, events = acme.portway.api("GET", f"/api/nginx/certificates/{cert['id']}/events")
    steps = [e["message"] for e in events]
    assert any("Ordering" in s for s in steps) and any("issued" in s for s in steps), steps


def test_name_resolving_elsewhere_is_reported(acme):
    acme.dns.add_a("elsewhere.acme.test", "127.0.0.2")
    cert = acme.wait(acme.request(["elsewhere.acme.test"])["id"])
    meta = cert["meta"]
    assert meta["acme_status"] == "failed"
    assert meta["acme_error_domain"] == "elsewhere.acme.test"
    assert "elsewhere.acme.test does not resolve to this server" in meta["acme_error"]
    assert "127.0.0.2" in meta["acme_error"]
    assert meta["acme_domains"]["elsewhere.acme.test"] == "invalid"
    _, events = acme.portway.api("GET", f"/api/nginx/certificates/{cert['id']}/events")
    problems = [p for e in events for p in e["detail"].get("problems", [])]
    assert problems and problems[0]["type"].startswith("urn:ietf:params:acme:error:")


def test_order_refused_by_the_ca_is_reported(acme):
    cert = acme.wait(acme.request([BLOCKED_DOMAIN])["id"])
    meta = cert["meta"]
    assert meta["acme_status"] == "failed"
    assert f"{BLOCKED_DOMAIN}: " in meta["acme_error"]
    assert "refuses to issue" in meta["acme_error"]
    # nothing else broke: another name is still issued
    ok = acme.wait(acme.request(["after-refusal.acme.test"])["id"])
    assert ok["meta"]["acme_status"] == "valid", ok["meta"]


def test_wildcard_needs_the_dns_challenge(acme):
    status, body = acme.portway.api(
        "POST",
        "/api/nginx/certificates",
        {"provider": "letsencrypt", "domain_names": ["*.wild.acme.test"], "meta": {}},
    )
    assert status == 400
    assert "DNS challenge" in body["error"]["message"]


def test_port_80_not_answering_is_reported(tmp_path, pebble_tls):
    from portway.testing.acme import acme_stack
    from portway.testing.network import free_port

    closed = free_port()  # pebble validates against a port where nothing listens
    with acme_stack(tmp_path / "data", pebble_tls, pebble_http_port=closed) as stack:
        cert = stack.wait(stack.request(["closed.acme.test"])["id"])
        meta = cert["meta"]
        assert meta["acme_status"] == "failed"
        assert "closed.acme.test: this server was not reachable on port 80" in meta["acme_error"]
        wait_for(lambda: stack.portway.api("GET", "/api/nginx/status")[0] == 200)
