"""ACME end to end: a real `portway serve` (real nginx) gets certificates from Debian's
pebble, validated through Portway's own nginx (HTTP-01) or a real BIND 9 (DNS-01).

All traffic stays on 127.0.0.1: pebble, pebble-challtestsrv and named run on high ports.
"""

from __future__ import annotations

import pytest
from cryptography.x509.oid import NameOID

from portway.testing.acme import BLOCKED_DOMAIN
from portway.testing.npm_contract import assert_npm_response
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
    assert_npm_response("POST", "/api/nginx/certificates", 201, pending)
    assert pending["expires_on"] == pending["created_on"]  # NPM's default until issued

    cert = acme.wait(pending["id"])
    meta = cert["meta"]
    assert meta["acme_status"] == "valid", meta
    assert meta["acme_domains"] == {"app.acme.test": "valid", "www.app.acme.test": "valid"}
    assert sorted(cert["domain_names"]) == ["app.acme.test", "www.app.acme.test"]
    assert cert["expires_on"] and "Pebble" in meta["issuer"]
    # NPM's object of the issued certificate: NPM's meta keys only, as NPM's schema says
    url = f"/api/nginx/certificates/{cert['id']}"
    status, npm_cert = acme.portway.api("GET", url)
    assert_npm_response("GET", url, status, npm_cert)
    assert npm_cert["expires_on"] == cert["expires_on"]
    assert npm_cert["meta"]["letsencrypt_certificate"]["cn"] == meta["cn"]

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

    # one ACME account for the installation, registered with the requesting user's e-mail
    import json
    import stat

    accounts = list((acme.portway.data_dir / "acme").glob("account-*.json"))
    assert len(accounts) == 1
    assert stat.S_IMODE(accounts[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(accounts[0].parent.stat().st_mode) == 0o700
    assert json.loads(accounts[0].read_text())["email"] == "admin@example.com"


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


def _nginx_pid(portway) -> int:  # noqa: ANN001
    return int((portway.data_dir / "nginx" / "run" / "nginx.pid").read_text())


def test_manual_renew_of_a_forced_ssl_hsts_host_is_served_without_restart(acme, upstreams):
    pw = acme.portway
    site = upstreams("hsts")
    cert = acme.wait(acme.request(["hsts.acme.test"])["id"])
    assert cert["meta"]["acme_status"] == "valid", cert["meta"]
    pw.create_proxy_host(
        ["hsts.acme.test"],
        site.port,
        certificate_id=cert["id"],
        ssl_forced=True,
        hsts_enabled=True,
        hsts_subdomains=True,
    )
    pw.wait_applied()
    first = pw.served_certificate("hsts.acme.test").serial_number
    assert first == _serial(cert["meta"])
    status, headers, _ = pw.http("hsts.acme.test", "/")
    assert status == 301  # forced SSL: yet the challenge below still goes through on port 80
    processes = (pw.proc.pid, _nginx_pid(pw))

    status, body = pw.api("POST", f"/api/nginx/certificates/{cert['id']}/renew")
    assert status == 200, body
    status, body = pw.api("GET", f"/api/portway/certificates/{cert['id']}")
    # under way, or already done with a new certificate
    assert body["meta"]["acme_status"] in ("pending", "ordering", "validating", "issuing") or (
        body["meta"]["acme_status"] == "valid" and _serial(body["meta"]) != first
    ), body["meta"]
    renewed = acme.wait(cert["id"])
    assert renewed["meta"]["acme_status"] == "valid", renewed["meta"]
    assert _serial(renewed["meta"]) != first
    wait_for(lambda: pw.served_certificate("hsts.acme.test").serial_number != first, 20)
    assert pw.served_certificate("hsts.acme.test").serial_number == _serial(renewed["meta"])
    assert (pw.proc.pid, _nginx_pid(pw)) == processes  # nothing was restarted
    status, headers, _ = pw.http("hsts.acme.test", "/", https=True)
    assert status == 200 and "includeSubDomains" in headers["strict-transport-security"]
    _, events = pw.api("GET", f"/api/nginx/certificates/{cert['id']}/events")
    assert [e["action"] for e in events].count("renew") >= 3


def test_download_is_a_zip_of_the_public_pems(acme):
    import io
    import zipfile

    import requests

    cert = acme.wait(acme.request(["download.acme.test"])["id"])
    pw = acme.portway
    response = requests.get(
        f"http://127.0.0.1:{pw.admin_port}/api/nginx/certificates/{cert['id']}/download",
        headers={"Authorization": f"Bearer {pw.token}"},
        timeout=10,
    )
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["cert.pem", "chain.pem", "fullchain.pem"]
    assert b"PRIVATE KEY" not in response.content
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(archive.read("cert.pem"))
    assert leaf.serial_number == _serial(cert["meta"])


def test_delete_revokes_the_certificate(acme, upstreams):
    pw = acme.portway
    cert = acme.wait(acme.request(["revoke.acme.test"])["id"])
    serial = _serial(cert["meta"])
    assert acme.pebble.cert_status(serial)["Status"] == "Valid"
    host = pw.create_proxy_host(
        ["revoke.acme.test"], upstreams("r").port, certificate_id=cert["id"]
    )
    status, body = pw.api("DELETE", f"/api/nginx/certificates/{cert['id']}")
    assert status == 409 and "revoke.acme.test" in body["error"]["message"]
    assert acme.pebble.cert_status(serial)["Status"] == "Valid"  # refused: not revoked
    assert pw.api("DELETE", f"/api/nginx/proxy-hosts/{host['id']}")[0] == 200
    status, body = pw.api("DELETE", f"/api/nginx/certificates/{cert['id']}")
    assert status == 200 and body is True
    assert acme.pebble.cert_status(serial)["Status"] == "Revoked"


def test_test_http_checks_reachability_from_this_server(acme):
    acme.dns.add_a("elsewhere-http.acme.test", "127.0.0.2")
    status, body = acme.portway.api(
        "POST",
        "/api/nginx/certificates/test-http",
        {"domains": ["not-a-host-yet.acme.test", "elsewhere-http.acme.test"]},
    )
    assert status == 200, body
    assert body == {"not-a-host-yet.acme.test": "ok", "elsewhere-http.acme.test": "failed"}


def test_scheduler_renews_before_expiry_and_nginx_serves_the_new_one(tmp_path, pebble_tls):
    from portway.testing.acme import acme_stack

    # 15 s certificates are due when a third of their life is left: after about 10 s
    env = {"PORTWAY_RENEW_INTERVAL": "1"}
    with acme_stack(tmp_path / "data", pebble_tls, validity_seconds=15, env=env) as stack:
        pw = stack.portway
        cert = stack.wait(stack.request(["auto.acme.test"])["id"])
        assert cert["meta"]["acme_status"] == "valid", cert["meta"]
        pw.create_proxy_host(["auto.acme.test"], free_upstream_port(), certificate_id=cert["id"])
        pw.wait_applied()
        first = pw.served_certificate("auto.acme.test").serial_number
        assert first == _serial(cert["meta"])
        nginx = _nginx_pid(pw)
        wait_for(lambda: pw.served_certificate("auto.acme.test").serial_number != first, 60, 0.5)
        _, events = pw.api("GET", f"/api/nginx/certificates/{cert['id']}/events")
        assert any(e["action"] == "renew" and "renewed" in e["message"] for e in events)
        assert _nginx_pid(pw) == nginx


def free_upstream_port() -> int:
    from portway.testing.network import free_port

    return free_port()


# --------------------------------------------------------------------------- DNS-01


def _dns_request(stack, domains, credentials, propagation_seconds=0):  # noqa: ANN001, ANN202
    return stack.request(
        domains,
        dns_challenge=True,
        dns_provider="rfc2136",
        dns_provider_credentials=credentials,
        propagation_seconds=propagation_seconds,
    )


def test_dns01_wildcard_through_rfc2136_and_bind9(tmp_path, pebble_tls, upstreams):
    from portway.testing.acme import acme_stack

    with acme_stack(tmp_path / "data", pebble_tls, dns="bind9") as stack:
        bind, pw = stack.dns, stack.portway
        pending = _dns_request(stack, ["*.dns01.test", "dns01.test"], bind.credentials(), 2)
        assert "dns_provider_credentials" not in pending["meta"]
        cert = stack.wait(pending["id"])
        meta = cert["meta"]
        assert meta["acme_status"] == "valid", meta
        assert sorted(cert["domain_names"]) == ["*.dns01.test", "dns01.test"]
        assert bind.txt("_acme-challenge.dns01.test") == []  # the plugin cleaned up
        assert meta["propagation_seconds"] == 2
        _, events = pw.api("GET", f"/api/nginx/certificates/{cert['id']}/events")
        times = {e["message"].split(" ")[0]: e["created_on"] for e in events}
        from datetime import datetime

        def at(key: str) -> datetime:
            return datetime.fromisoformat(times[key].replace("Z", "+00:00"))

        # the plugin waited propagation_seconds between publishing and asking for validation
        assert (at("Issuing") - at("Validating")).total_seconds() >= 2
        pw.create_proxy_host(["www.dns01.test"], upstreams("wild").port, certificate_id=cert["id"])
        pw.wait_applied()
        assert pw.served_certificate("www.dns01.test").serial_number == _serial(meta)
        assert pw.upstream_of("www.dns01.test", https=True) == "wild"
        secret = bind.key_secret
        for path in ("/api/nginx/certificates", f"/api/nginx/certificates/{cert['id']}/events"):
            assert secret not in str(pw.api("GET", path)[1])
        assert secret not in pw.log()
        stored = pw.data_dir / "certificates" / str(cert["id"]) / "dns-credentials.ini"
        assert oct(stored.stat().st_mode & 0o777) == "0o600"


def test_dns01_txt_record_not_seen_is_reported(tmp_path, pebble_tls):
    from portway.testing.acme import Bind9, acme_stack

    # the credentials point at a second BIND 9 for the same zone, which pebble never asks
    with (
        acme_stack(tmp_path / "data", pebble_tls, dns="bind9") as stack,
        Bind9() as other,
    ):
        cert = stack.wait(_dns_request(stack, ["unseen.dns01.test"], other.credentials(), 1)["id"])
        meta = cert["meta"]
        assert meta["acme_status"] == "failed"
        assert meta["acme_error"].startswith(
            "unseen.dns01.test: the DNS TXT record _acme-challenge.unseen.dns01.test was not "
            "seen by the certificate authority"
        ), meta["acme_error"]
        assert "propagation_seconds (now 1 s)" in meta["acme_error"]


def test_host_created_with_certificate_new_switches_to_https_once_issued(acme, upstreams):
    pw = acme.portway
    app = upstreams("newcert")
    host = pw.create_proxy_host(
        ["newcert.acme.test"], app.port, certificate_id="new", ssl_forced=True, hsts_enabled=True
    )
    assert host["certificate_id"] == 0 and host["ssl_forced"] is False  # no TLS until issued
    _, certs = pw.api("GET", "/api/nginx/certificates")
    cert = next(c for c in certs if c["domain_names"] == ["newcert.acme.test"])
    cert = acme.wait(cert["id"])
    assert cert["meta"]["acme_status"] == "valid", cert["meta"]
    linked = wait_for(
        lambda: (
            (h := pw.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")[1])["certificate_id"] and h
        )
    )
    assert linked["certificate_id"] == cert["id"]
    assert linked["ssl_forced"] is True and linked["hsts_enabled"] is True
    pw.wait_applied()
    wait_for(
        lambda: pw.served_certificate("newcert.acme.test").serial_number == _serial(cert["meta"])
    )
    assert pw.http("newcert.acme.test", "/")[0] == 301
    assert pw.upstream_of("newcert.acme.test", https=True) == "newcert"


def test_dead_host_created_with_certificate_new_serves_it_once_issued(acme):
    """certificate_id "new" on a 404 host: HTTP-01 passes through the host's own server
    (its challenge location comes before the 404), and the host then answers 404 over
    TLS with the issued certificate."""
    pw = acme.portway
    status, host = pw.api(
        "POST",
        "/api/nginx/dead-hosts",
        {"domain_names": ["gone.acme.test"], "certificate_id": "new", "ssl_forced": True},
    )
    assert status == 201, host
    assert host["certificate_id"] == 0 and host["ssl_forced"] is False  # no TLS until issued
    _, certs = pw.api("GET", "/api/nginx/certificates")
    cert = next(c for c in certs if c["domain_names"] == ["gone.acme.test"])
    cert = acme.wait(cert["id"])
    assert cert["meta"]["acme_status"] == "valid", cert["meta"]
    linked = wait_for(
        lambda: (
            (h := pw.api("GET", f"/api/nginx/dead-hosts/{host['id']}")[1])["certificate_id"] and h
        )
    )
    assert linked["certificate_id"] == cert["id"] and linked["ssl_forced"] is True
    pw.wait_applied()
    wait_for(lambda: pw.served_certificate("gone.acme.test").serial_number == _serial(cert["meta"]))
    assert pw.http("gone.acme.test", "/x", https=True)[0] == 404
    assert pw.http("gone.acme.test", "/x")[0] == 301  # Force SSL, asked for with "new"


@pytest.mark.e2e_db
def test_restart_during_issuance_does_not_wait_for_the_order_and_the_job_resumes(
    tmp_path, pebble_tls
):
    from portway.testing.acme import acme_stack

    with acme_stack(tmp_path / "data", pebble_tls, dns="bind9") as stack:
        pw = stack.portway
        # a long propagation wait keeps the order in "validating"
        pending = _dns_request(stack, ["resume.dns01.test"], stack.dns.credentials(), 6)
        stack.wait(pending["id"], ("validating",), timeout=20)
        assert pw.stop() == 0  # SIGTERM ended it cleanly (no SIGKILL after the timeout)
        pw.start()
        cert = stack.wait(pending["id"], timeout=60)
        assert cert["meta"]["acme_status"] == "valid", cert["meta"]
        # stopping did not wait for the order: it was still unfinished at the next start
        _, events = pw.api("GET", f"/api/nginx/certificates/{pending['id']}/events")
        assert any(e["message"] == "Resumed after a restart" for e in events)
