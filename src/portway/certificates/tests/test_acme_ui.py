"""The Let's Encrypt pages: request form, detail page with live progress, renew, download."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from portway.certificates.models import Certificate, CertificateEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def ui(admin: Any) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def errors(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for field, text in re.findall(r'data-error-for="([^"]+)">([^<]*)<', html):
        found.setdefault(field, []).append(text)
    return found


def test_form_lists_providers_and_defaults_to_the_users_email(ui: Client) -> None:
    html = ui.get("/certificates/letsencrypt/new").content.decode()
    assert 'value="admin@example.com"' in html
    for provider in ("cloudflare", "rfc2136", "route53"):
        assert f'<option value="{provider}"' in html
    assert 'id="request-letsencrypt"' in ui.get("/certificates").content.decode()


def test_dns_template_fills_the_credentials(ui: Client) -> None:
    html = ui.get("/certificates/dns-template?dns_provider=cloudflare").content.decode()
    assert "dns_cloudflare_api_token" in html and 'id="dns-credentials"' in html


def test_wildcard_over_http_is_explained_beside_the_names(ui: Client) -> None:
    response = ui.post("/certificates/letsencrypt/new", {"domain_names": "*.w.example"})
    assert response.status_code == 400
    found = errors(response.content.decode())
    assert "DNS challenge" in found["domain_names"][0]
    assert not Certificate.objects.exists()


def test_a_bad_name_is_reported_by_its_line(ui: Client) -> None:
    response = ui.post(
        "/certificates/letsencrypt/new",
        {"domain_names": "a.example\nb.example, c..example\nd.example"},
    )
    assert response.status_code == 400
    (message,) = errors(response.content.decode())["domain_names"]
    assert message.startswith("Line 2: &quot;c..example&quot;"), message
    assert not Certificate.objects.exists()


def test_credentials_are_not_sent_back_after_an_error(ui: Client) -> None:
    response = ui.post(
        "/certificates/letsencrypt/new",
        {
            "domain_names": "a.example",
            "dns_challenge": "on",
            "dns_provider": "rfc2136",
            "dns_provider_credentials": "dns_rfc2136_secret = SENTINELSECRET\n",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "SENTINELSECRET" not in html
    assert "dns_rfc2136_server" in errors(html)["dns_provider_credentials"][0]


def test_request_redirects_to_a_page_that_polls_until_done(
    ui: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as queued:
        response = ui.post(
            "/certificates/letsencrypt/new", {"domain_names": "one.example\ntwo.example"}
        )
    assert len(queued) == 1
    cert = Certificate.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/certificates/{cert.pk}"
    html = ui.get(response["Location"]).content.decode()
    assert 'data-status="pending"' in html
    assert f'hx-get="/certificates/{cert.pk}/progress"' in html and "every 1s" in html
    assert 'data-domain="two.example" data-state="pending"' in html

    state = dict(cert.acme, status="validating", domains={"one.example": "valid",
                 "two.example": "validating"})  # fmt: skip
    Certificate.objects.filter(pk=cert.pk).update(acme=state)
    html = ui.get(f"/certificates/{cert.pk}/progress").content.decode()
    assert 'data-domain="one.example" data-state="valid"' in html
    assert "every 1s" in html

    state.update(status="failed", error="two.example does not resolve to this server: ...")
    Certificate.objects.filter(pk=cert.pk).update(acme=state)
    CertificateEvent.objects.create(
        certificate=cert, action="issue", level="error", message=state["error"],
        detail={"problems": [{"type": "urn:ietf:params:acme:error:connection"}]},
    )  # fmt: skip
    html = ui.get(f"/certificates/{cert.pk}/progress").content.decode()
    assert "hx-trigger" not in html  # finished: polling stops
    assert 'id="acme-error"' in html and "two.example does not resolve to this server" in html
    assert "urn:ietf:params:acme:error:connection" in html  # the ACME detail, in the log
    listing = ui.get("/certificates").content.decode()
    assert 'data-acme-status="failed"' in listing


def test_renew_of_a_custom_certificate_says_why_not(ui: Client, admin: Any) -> None:
    from portway.certificates import services

    cert = services.create_custom(admin, "custom")
    response = ui.post(f"/certificates/{cert.pk}/renew", follow=True)
    assert "Only Let&#x27;s Encrypt certificates are renewed" in response.content.decode()
