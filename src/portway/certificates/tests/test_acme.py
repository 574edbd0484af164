"""ACME without an ACME server: request validation, secrets handling, failure messages,
renewal timing. The end-to-end tests against pebble are in test_acme_e2e.py."""

from __future__ import annotations

import datetime as dt
import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from portway.certificates import acme, renewal, services
from portway.certificates.models import Certificate, CertificateEvent
from portway.certificates.reachability import Probe
from portway.hosts.models import ProxyHost
from portway.testing import certs

pytestmark = pytest.mark.django_db

BASE = "/api/nginx/certificates"
RFC2136 = (
    "dns_rfc2136_server = 192.0.2.53\n"
    "dns_rfc2136_port = 5353\n"
    "dns_rfc2136_name = portway-key.\n"
    "dns_rfc2136_secret = c2VjcmV0LXZhbHVlLW5ldmVyLXNob3du\n"
    "dns_rfc2136_algorithm = HMAC-SHA256\n"
)
SECRET = "c2VjcmV0LXZhbHVlLW5ldmVyLXNob3du"


def post(api: Client, body: dict[str, Any]) -> Any:
    return api.post(BASE, body, content_type="application/json")


def error(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.content)
    return response.json()["error"]["message"]


# --------------------------------------------------------------------------- requests


def test_wildcard_with_http_challenge_is_refused_naming_the_dns_challenge(api: Client) -> None:
    message = error(
        post(api, {"provider": "letsencrypt", "domain_names": ["a.example", "*.a.example"]}),
        400,
    )
    assert "domain_names/1" in message
    assert "*.a.example is a wildcard name" in message and "DNS challenge" in message
    assert not Certificate.objects.exists()


def test_dns_providers_lists_templates(api: Client) -> None:
    response = api.get(f"{BASE}/dns-providers")
    assert response.status_code == 200
    providers = {p["id"]: p for p in response.json()}
    assert {"cloudflare", "rfc2136", "route53"} <= set(providers)
    assert "dns_cloudflare_api_token" in providers["cloudflare"]["credentials"]
    assert "dns_rfc2136_secret" in providers["rfc2136"]["credentials"]
    assert "aws_secret_access_key" in providers["route53"]["credentials"]
    # NPM's schema allows only id, name and credentials; the default wait is Portway's
    assert all(set(p) == {"id", "name", "credentials"} for p in providers.values())
    waits = {p["id"]: p for p in api.get("/api/portway/dns-providers").json()}
    assert waits["rfc2136"]["propagation_seconds"] == 60


def test_unknown_dns_provider_is_400(api: Client) -> None:
    message = error(
        post(
            api,
            {
                "provider": "letsencrypt",
                "domain_names": ["a.example"],
                "meta": {"dns_challenge": True, "dns_provider": "nope"},
            },
        ),
        400,
    )
    assert "meta/dns_provider" in message and "rfc2136" in message


def test_missing_credential_keys_are_named_but_values_never_echoed(api: Client) -> None:
    credentials = "dns_rfc2136_server = 192.0.2.1\ndns_rfc2136_secret = TOPSECRETVALUE\n"
    message = error(
        post(
            api,
            {
                "provider": "letsencrypt",
                "domain_names": ["a.example"],
                "meta": {
                    "dns_challenge": True,
                    "dns_provider": "rfc2136",
                    "dns_provider_credentials": credentials,
                },
            },
        ),
        400,
    )
    assert "dns_rfc2136_name" in message
    assert "TOPSECRETVALUE" not in message


def test_dns_credentials_are_stored_0600_and_never_returned(
    api: Client, data_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks():
        response = post(
            api,
            {
                "provider": "letsencrypt",
                "domain_names": ["*.zone.example", "zone.example"],
                "meta": {
                    "dns_challenge": True,
                    "dns_provider": "rfc2136",
                    "dns_provider_credentials": RFC2136,
                    "propagation_seconds": 0,
                },
            },
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["meta"]["dns_provider"] == "rfc2136"
    assert body["meta"]["propagation_seconds"] == 0
    cert = Certificate.objects.get()
    path = cert.directory / "dns-credentials.ini"
    assert path.read_text() == RFC2136
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert SECRET not in str(cert.meta) and SECRET not in str(cert.acme)
    mine = "/api/portway/certificates"
    for url in (
        BASE,
        f"{BASE}/{cert.pk}",
        f"{BASE}/{cert.pk}/events",
        mine,
        f"{mine}/{cert.pk}",
        f"{mine}/{cert.pk}/events",
    ):
        response = api.get(url)
        assert response.status_code == 200, (url, response.content)
        assert SECRET not in response.content.decode()
    # the log is one, at both addresses
    assert api.get(f"{mine}/{cert.pk}/events").json() == api.get(f"{BASE}/{cert.pk}/events").json()
    assert api.get(f"{mine}/{cert.pk}").json()["meta"]["dns_provider"] == "rfc2136"


def test_propagation_seconds_must_be_sane(api: Client) -> None:
    message = error(
        post(
            api,
            {
                "provider": "letsencrypt",
                "domain_names": ["a.example"],
                "meta": {
                    "dns_challenge": True,
                    "dns_provider": "rfc2136",
                    "dns_provider_credentials": RFC2136,
                    "propagation_seconds": -1,
                },
            },
        ),
        400,
    )
    assert "meta/propagation_seconds" in message


def test_renew_and_download_of_a_custom_certificate(api: Client, admin: Any) -> None:
    issued = certs.make_chain(["dl.example"], key_type="ec", ca_key_type="ec", prefix="DL")
    cert = services.create_custom(admin, "dl")
    assert error(api.get(f"{BASE}/{cert.pk}/download"), 400).endswith("has no files yet")
    services.upload(admin, cert, issued.cert_pem, issued.key_pem(), issued.chain_pem)
    assert "custom certificate" in error(api.post(f"{BASE}/{cert.pk}/renew"), 400)
    response = api.get(f"{BASE}/{cert.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["cert.pem", "chain.pem", "fullchain.pem"]
    assert archive.read("cert.pem") == issued.cert_pem
    assert b"PRIVATE KEY" not in response.content
    for name in archive.namelist():
        assert b"PRIVATE KEY" not in archive.read(name)


def test_renew_while_running_is_409(
    api: Client, admin: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks():
        cert = services.create_letsencrypt(admin, ["busy.example"])
    assert "already being issued" in error(api.post(f"{BASE}/{cert.pk}/renew"), 409)


def test_events_do_not_count_as_users_of_a_certificate(
    api: Client, admin: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks():
        cert = services.create_letsencrypt(admin, ["logged.example"])
    assert CertificateEvent.objects.filter(certificate=cert).exists()
    assert services.users_of(cert) == {}
    ProxyHost.objects.create(
        owner=admin, domain_names=["logged.example"], forward_host="a", forward_port=80,
        certificate=cert,
    )  # fmt: skip
    assert "proxy host(s) logged.example" in error(api.delete(f"{BASE}/{cert.pk}"), 409)


def test_test_http_refuses_wildcards(api: Client) -> None:
    response = api.post(
        f"{BASE}/test-http", {"domains": ["*.a.example"]}, content_type="application/json"
    )
    assert "domains/0" in error(response, 400)


# --------------------------------------------------------------------------- messages


def problem(code: str, detail: str = "") -> dict[str, Any]:
    return {"type": f"urn:ietf:params:acme:error:{code}", "detail": detail, "status": 400}


def test_rate_limit_message_has_the_retry_time() -> None:
    failure = acme.explain(
        problem(
            "rateLimited",
            "too many certificates (5) already issued for this exact set of identifiers in "
            "the last 168h0m0s, retry after 2026-12-01 16:37:51 UTC: see "
            "https://letsencrypt.org/docs/rate-limits/",
        ),
        "rl.example",
    )
    assert failure.message.startswith("rl.example: rate limited by")
    assert "retry after 2026-12-01 16:37:51 UTC" in failure.message
    assert failure.retry_after == "2026-12-01 16:37:51 UTC"
    header_only = acme.explain(problem("rateLimited", "slow down"), "h.example", None,
                               retry_after_header="120")  # fmt: skip
    assert "retry after 20" in header_only.message


def test_caa_message() -> None:
    failure = acme.explain(
        problem("caa", "CAA record for caa.example prevents issuance"), "caa.example", "http-01"
    )
    assert failure.message.startswith("caa.example: CAA records forbid")


def test_dns_txt_not_seen_message() -> None:
    failure = acme.explain(
        problem("unauthorized", "No TXT records found for DNS challenge"),
        "*.zone.example",
        "dns-01",
        propagation_seconds=30,
        provider="Cloudflare",
    )
    assert "the DNS TXT record _acme-challenge.zone.example was not seen" in failure.message
    assert "Cloudflare" in failure.message and "(now 30 s)" in failure.message


def test_http_messages_use_the_local_diagnosis() -> None:
    refused = problem("connection", "dial tcp 203.0.113.9:80: connect: connection refused")
    ours = ([("127.0.0.1")], [Probe("127.0.0.1", "ok")])
    foreign = (["198.51.100.7"], [Probe("198.51.100.7", "404", "answered 404")])
    port = acme.explain(refused, "p.example", "http-01", diagnosis=ours)
    assert port.message.startswith("p.example: this server was not reachable on port 80")
    elsewhere = acme.explain(refused, "e.example", "http-01", diagnosis=foreign)
    assert elsewhere.message.startswith("e.example does not resolve to this server")
    assert "198.51.100.7" in elsewhere.message
    nowhere = acme.explain(problem("dns", "NXDOMAIN"), "n.example", "http-01", diagnosis=([], []))
    assert nowhere.message.startswith("n.example does not resolve to this server")
    wrong = acme.explain(
        problem("unauthorized", "The key authorization file from the server did not match"),
        "w.example",
        "http-01",
        diagnosis=ours,
    )
    assert wrong.message.startswith("w.example: wrong content was served at http://w.example/")


def test_refused_identifier_message() -> None:
    failure = acme.explain(
        problem("rejectedIdentifier", "forbidden by policy: x.example"), "x.example"
    )
    assert "refuses to issue a certificate for this name" in failure.message


# --------------------------------------------------------------------------- renewal


def _issued(admin: Any, days_left: float, lifetime_days: float = 90) -> Certificate:
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(days=days_left)
    not_before = expires - dt.timedelta(days=lifetime_days)
    return Certificate.objects.create(
        owner=admin,
        provider="letsencrypt",
        nice_name="r",
        domain_names=["r.example"],
        expires_on=expires,
        meta={"not_before": not_before.isoformat()},
        acme={"status": "valid"},
    )


def test_due_within_30_days_or_a_third_of_a_short_lifetime(admin: Any) -> None:
    assert not renewal.is_due(_issued(admin, 31))
    assert renewal.is_due(_issued(admin, 29))
    assert not renewal.is_due(_issued(admin, 7, lifetime_days=20))  # due at 6.67 days left
    assert renewal.is_due(_issued(admin, 6, lifetime_days=20))
    running = _issued(admin, 1)
    running.acme = {"status": "validating"}
    assert not renewal.is_due(running)


def test_failed_renewals_back_off_and_warn(admin: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PORTWAY_RENEW_RETRY_SECONDS", "3600")
    cert = _issued(admin, 3)
    state: dict[str, Any] = {}
    delays = []
    for _ in range(7):
        state = renewal.after_failure(state, acme.AcmeFailure("x.example: port 80 closed"))
        next_attempt = dt.datetime.fromisoformat(state["next_attempt"].replace("Z", "+00:00"))
        delays.append(round((next_attempt - dt.datetime.now(dt.UTC)).total_seconds() / 3600))
    assert delays == [1, 2, 4, 8, 16, 24, 24]
    cert.acme = {"status": "failed", "renewal": state}
    assert not renewal.is_due(cert)  # waiting for the next attempt
    warnings = renewal.warnings(cert)
    assert any(w.startswith("expires in") for w in warnings)
    assert any("renewal failed 7 time(s): x.example: port 80 closed" in w for w in warnings)
    limited = renewal.after_failure(
        {}, acme.AcmeFailure("rl", retry_after="2099-01-01 00:00:00 UTC")
    )
    assert limited["next_attempt"].startswith("2099-01-01")


def test_wire_shows_renewal_and_warnings(api: Client, admin: Any) -> None:
    cert = _issued(admin, 3)
    assert set(api.get(f"{BASE}/{cert.pk}").json()["meta"]) <= {"dns_challenge", "key_type",
        "letsencrypt_certificate", "dns_provider", "propagation_seconds"}  # fmt: skip
    meta = api.get(f"/api/portway/certificates/{cert.pk}").json()["meta"]
    assert meta["acme_status"] == "valid"
    assert meta["renewal"]["renew_after"]
    assert meta["warnings"] and meta["warnings"][0].startswith("expires in 3 day")


def test_requests_renewals_and_deletes_are_audited(
    api: Client, admin: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from portway.nginx.models import AuditLogEntry

    with django_capture_on_commit_callbacks():
        cert = services.create_letsencrypt(admin, ["audit.example"])
    Certificate.objects.filter(pk=cert.pk).update(acme={**cert.acme, "status": "failed"})
    with django_capture_on_commit_callbacks():
        assert api.post(f"{BASE}/{cert.pk}/renew").status_code == 200
    assert api.delete(f"{BASE}/{cert.pk}").status_code == 200
    entries = AuditLogEntry.objects.filter(object_type="certificate", object_id=cert.pk)
    assert sorted(e.action for e in entries) == ["created", "deleted", "renewed"]
    assert all(e.user_id == admin.pk for e in entries)


def test_directory_url_settings(monkeypatch: Any) -> None:
    monkeypatch.delenv("LE_SERVER", raising=False)
    monkeypatch.delenv("LE_STAGING", raising=False)
    assert acme.directory_url() == acme.PRODUCTION
    monkeypatch.setenv("LE_STAGING", "1")
    assert acme.directory_url() == acme.STAGING
    monkeypatch.setenv("LE_SERVER", "https://acme.internal.example/dir")
    assert acme.directory_url() == "https://acme.internal.example/dir"


@pytest.mark.parametrize("provider_id", ["cloudflare", "rfc2136", "route53"])
def test_each_provider_plugin_loads_its_credentials_offline(
    provider_id: str, data_dir: Path
) -> None:
    from portway.certificates import dns_providers

    provider = dns_providers.PROVIDERS[provider_id]
    path = data_dir / "c" / "dns-credentials.ini"
    text = provider.credentials.replace("192.0.2.1", "127.0.0.1")
    dns_providers.parse_credentials(provider, text)
    dns_providers.write_credentials(path, text)
    plugin = dns_providers.authenticator(provider, path, 7)
    if provider_id == "route53":
        assert plugin.r53.meta.service_model.service_name == "route53"  # from the stored keys
    else:
        assert plugin.conf("propagation-seconds") == 7
        plugin._setup_credentials()  # reads and checks the file, no network


def test_letsencrypt_email_must_be_an_address(api: Client) -> None:
    body = {
        "provider": "letsencrypt",
        "domain_names": ["mail.example"],
        "meta": {"letsencrypt_email": "not an address"},
    }
    assert "meta/letsencrypt_email" in error(post(api, body), 400)
