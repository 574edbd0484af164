"""Settings → Admin UI domain: the page, errors shown inline with nothing saved, the
name claimed in the one name index both ways (portway.nginx.admin_site)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from portway.certificates import services as certificates
from portway.hosts.models import HostName, ProxyHost
from portway.nginx import admin_site
from portway.testing.api import make_admin
from portway.testing.certs import make_ca, make_leaf

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return make_admin()


@pytest.fixture
def ui(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def certificate(admin):
    leaf = make_leaf(make_ca("Admin Domain View CA"), ["admin.example.test"])
    cert = certificates.create_custom(admin, "admin cert")
    certificates.upload(admin, cert, leaf.fullchain_pem, leaf.key_pem())
    return cert


def _error(response, field: str) -> str:
    match = re.search(rf'data-error-for="{re.escape(field)}">([^<]*)<', response.content.decode())
    assert match, response.content.decode()[:2000]
    return match.group(1)


def test_page_sets_and_clears_the_admin_domain(ui, certificate) -> None:
    page = ui.get("/settings/default-site").content.decode()
    assert 'id="settings-admin-domain"' in page
    page = ui.get("/settings/admin-domain").content.decode()
    assert "Admin UI domain" in page and "admin cert" in page

    bad = ui.post("/settings/admin-domain", {"value": "not a name", "certificate_id": ""})
    assert bad.status_code == 400
    assert "certificate" in _error(bad, "meta/certificate_id").lower()
    bad = ui.post(
        "/settings/admin-domain", {"value": "*.example.test", "certificate_id": certificate.pk}
    )
    assert bad.status_code == 400
    assert "wildcard" in _error(bad, "value")
    assert admin_site.get_setting().value == "off"
    assert not HostName.objects.filter(kind=admin_site.KIND).exists()

    ok = ui.post(
        "/settings/admin-domain", {"value": "Admin.Example.Test", "certificate_id": certificate.pk}
    )
    assert ok.status_code == 302
    assert admin_site.get_setting().value == "admin.example.test"
    assert HostName.objects.get(kind=admin_site.KIND).claim == "admin.example.test"

    cleared = ui.post("/settings/admin-domain", {"value": "", "certificate_id": ""})
    assert cleared.status_code == 302
    assert admin_site.get_setting().value == "off"
    assert not HostName.objects.filter(kind=admin_site.KIND).exists()


def test_name_of_a_host_is_refused(ui, admin, certificate) -> None:
    host = ProxyHost(
        owner=admin,
        domain_names=["taken.example.test"],
        forward_host="127.0.0.1",
        forward_port=8080,
    )
    host.save()
    bad = ui.post(
        "/settings/admin-domain", {"value": "taken.example.test", "certificate_id": certificate.pk}
    )
    assert bad.status_code == 400
    assert "taken.example.test" in _error(bad, "value")
    assert admin_site.get_setting().value == "off"


def test_rendered_server_block_proxies_to_the_admin_listener(certificate, settings) -> None:
    from portway.nginx.engine import Engine

    admin_site.set_admin_domain(
        make_admin("second@example.com"), "admin.example.test", {"certificate_id": certificate.pk}
    )
    spec = admin_site.spec()
    engine = Engine(settings.PORTWAY)
    text = admin_site.render(engine.renderer, spec).text()
    assert "server_name admin.example.test;" in text
    assert f"ssl_certificate {certificate.fullchain_path};" in text
    assert f"proxy_pass http://{admin_site.admin_upstream(settings.PORTWAY)}:" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "return 301 https://$host" in text


def test_certificate_of_the_admin_domain_cannot_be_deleted(admin, certificate) -> None:
    from portway.core.errors import Conflict

    admin_site.set_admin_domain(admin, "admin.example.test", {"certificate_id": certificate.pk})
    with pytest.raises(Conflict) as refused:
        certificates.delete(admin, certificate)
    assert "admin UI domain(s) admin.example.test" in refused.value.message
    admin_site.set_admin_domain(admin, "off", {})
    certificates.delete(admin, certificate)
