"""The certificates list, the custom upload form with its Validate step, and delete."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portway.certificates.models import Certificate

from .conftest import leaf, pem_files

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/certificates"}


def errors(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for field, text in re.findall(r'data-error-for="([^"]+)">([^<]*)<', html):
        found.setdefault(field, []).append(text)
    return found


@pytest.mark.django_db
class TestList:
    def test_empty_state(self, ui: Client):
        html = ui.get("/certificates").content.decode()
        assert "No certificates yet" in html
        assert 'href="/certificates/new"' in html

    def test_rows(self, ui: Client, make_certificate, make_host):
        used = make_certificate("Used cert", ["app.example.test"], days=200)
        make_certificate("Soon", ["soon.example.test"], days=5)
        make_host("app.example.test", certificate_id=used.pk)
        html = ui.get("/certificates").content.decode()
        assert "Used cert" in html and "Custom" in html
        assert ">app.example.test<" in html
        assert "Issued by" in html and "Portway UI Test Root" in html
        assert "bg-yellow-lt" in html and "days left" in html  # Soon expires in < 30 days
        assert f'href="/proxy-hosts/{used.proxy_hosts.get().pk}"' in html
        assert "Not used" in html

    def test_delete_unused(self, ui: Client, make_certificate):
        cert = make_certificate("Old", ["old.example.test"])
        html = ui.post(f"/certificates/{cert.pk}/delete", headers=HTMX).content.decode()
        assert "Certificate Old deleted." in html
        assert "No certificates yet" in html
        assert not Certificate.objects.exists()

    def test_delete_in_use_shows_the_conflict(self, ui: Client, make_certificate, make_host):
        cert = make_certificate("Busy", ["app.example.test"])
        make_host("app.example.test", certificate_id=cert.pk)
        response = ui.post(f"/certificates/{cert.pk}/delete", follow=True)
        html = response.content.decode()
        assert "Could not delete the certificate: certificate is used by" in html
        assert "app.example.test" in html
        assert Certificate.objects.filter(pk=cert.pk).exists()

    def test_delete_has_a_confirmation(self, ui: Client, make_certificate):
        cert = make_certificate("Old", ["old.example.test"])
        html = ui.get("/certificates").content.decode()
        assert f'hx-post="/certificates/{cert.pk}/delete"' in html
        assert "hx-confirm=" in html


@pytest.mark.django_db
class TestUpload:
    def test_form(self, ui: Client):
        html = ui.get("/certificates/new").content.decode()
        assert 'enctype="multipart/form-data"' in html
        for name in ("nice_name", "certificate", "certificate_key", "intermediate_certificate"):
            assert f'name="{name}"' in html
        assert 'value="validate"' in html and "hx-post" in html

    def test_validate_shows_cn_issuer_and_dates(self, ui: Client):
        data = {"action": "validate", "nice_name": "", **pem_files(["v.example.test"])}
        response = ui.post("/certificates/new", data, headers=HTMX)
        html = response.content.decode()
        assert response.status_code == 200
        assert html.startswith('<div id="validation-result">')
        assert 'data-field="cn">v.example.test<' in html
        assert "Portway UI Test Root" in html
        assert re.search(r'data-field="valid_to">\d{4}-\d\d-\d\d \d\d:\d\d UTC<', html)
        assert not Certificate.objects.exists()

    def test_validate_without_htmx_renders_the_page(self, ui: Client):
        data = {"action": "validate", **pem_files(["v.example.test"])}
        html = ui.post("/certificates/new", data).content.decode()
        assert "<html" in html and 'data-validation="ok"' in html

    def test_validate_reports_a_key_that_does_not_match(self, ui: Client):
        issued = leaf(["a.example.test"])
        other = leaf(["b.example.test"])
        data = {
            "action": "validate",
            "certificate": SimpleUploadedFile("c.pem", issued.cert_pem),
            "certificate_key": SimpleUploadedFile("k.pem", other.key_pem()),
        }
        html = ui.post("/certificates/new", data, headers=HTMX).content.decode()
        assert 'data-validation="failed"' in html
        assert "Private key:" in html and "does not match" in html

    def test_save_creates_the_certificate(self, ui: Client):
        data = {"action": "save", "nice_name": "My cert", **pem_files(["s.example.test"])}
        response = ui.post("/certificates/new", data, follow=True)
        assert response.redirect_chain == [("/certificates", 302)]
        cert = Certificate.objects.get()
        assert (cert.nice_name, cert.provider, cert.domain_names) == (
            "My cert",
            "other",
            ["s.example.test"],
        )
        assert cert.has_files
        assert "Certificate My cert added; it covers s.example.test." in (response.content.decode())

    def test_blank_name_uses_the_common_name(self, ui: Client):
        ui.post("/certificates/new", {"action": "save", **pem_files(["cn.example.test"])})
        assert Certificate.objects.get().nice_name == "cn.example.test"

    def test_missing_files_are_reported_per_field(self, ui: Client):
        response = ui.post("/certificates/new", {"action": "save", "nice_name": "x"})
        assert response.status_code == 400
        found = errors(response.content.decode())
        assert found["certificate"] == [
            "Choose the certificate file (PEM, e.g. cert.pem) or paste its text"
        ]
        assert found["certificate_key"] == [
            "Choose the private key file (PEM, e.g. privkey.pem) or paste its text"
        ]

    def test_pasted_text_is_accepted(self, ui: Client):
        # a Cloudflare Origin certificate is shown as text to copy, key included
        issued = leaf(["origin.example.test", "*.origin.example.test"])
        data = {
            "action": "save",
            "nice_name": "Cloudflare origin",
            "certificate_text": "\n" + issued.cert_pem.decode() + "\n\n",
            "certificate_key_text": issued.key_pem().decode().replace("\n", "\r\n"),
        }
        response = ui.post("/certificates/new", data, follow=True)
        assert response.redirect_chain == [("/certificates", 302)], errors(
            response.content.decode()
        )
        cert = Certificate.objects.get()
        assert cert.domain_names == ["origin.example.test", "*.origin.example.test"]
        assert cert.has_files

    def test_validate_takes_pasted_text(self, ui: Client):
        issued = leaf(["v.example.test"])
        data = {
            "action": "validate",
            "certificate_text": issued.cert_pem.decode(),
            "certificate_key_text": issued.key_pem().decode(),
        }
        html = ui.post("/certificates/new", data, headers=HTMX).content.decode()
        assert 'data-field="cn">v.example.test<' in html

    def test_a_rejected_save_keeps_what_was_entered(self, ui: Client):
        issued = leaf(["a.example.test"])
        other = leaf(["b.example.test"])
        data = {
            "action": "save",
            "nice_name": "Kept name",
            "certificate": SimpleUploadedFile("c.pem", issued.cert_pem),
            "certificate_key_text": other.key_pem().decode(),
        }
        response = ui.post("/certificates/new", data)
        assert response.status_code == 400
        html = response.content.decode()
        assert "does not match" in html
        assert 'value="Kept name"' in html
        # the file's contents come back as text (a browser cannot refill a file input)
        first_line = issued.cert_pem.decode().splitlines()[1]
        assert first_line in html
        assert other.key_pem().decode().splitlines()[1] in html
        assert "no-store" in response["Cache-Control"]
        assert not Certificate.objects.exists()

    def test_a_chosen_file_wins_over_kept_text(self, ui: Client):
        old, new = leaf(["old.example.test"]), leaf(["new.example.test"])
        data = {
            "action": "save",
            "certificate": SimpleUploadedFile("c.pem", new.cert_pem),
            "certificate_text": old.cert_pem.decode(),
            "certificate_key": SimpleUploadedFile("k.pem", new.key_pem()),
            "certificate_key_text": old.key_pem().decode(),
        }
        assert ui.post("/certificates/new", data).status_code == 302
        assert Certificate.objects.get().domain_names == ["new.example.test"]

    def test_garbage_certificate(self, ui: Client):
        data = {
            "action": "save",
            "certificate": SimpleUploadedFile("c.pem", b"hello"),
            "certificate_key": SimpleUploadedFile("k.pem", leaf(["a.example.test"]).key_pem()),
        }
        response = ui.post("/certificates/new", data)
        assert response.status_code == 400
        assert "certificate" in errors(response.content.decode())
        assert not Certificate.objects.exists()

    def test_bad_key_leaves_nothing_behind(self, ui: Client):
        issued = leaf(["a.example.test"])
        data = {
            "action": "save",
            "nice_name": "Broken",
            "certificate": SimpleUploadedFile("c.pem", issued.cert_pem),
            "certificate_key": SimpleUploadedFile("k.pem", issued.cert_pem),
        }
        response = ui.post("/certificates/new", data)
        assert response.status_code == 400
        assert "certificate_key" in errors(response.content.decode())
        assert not Certificate.objects.exists()
