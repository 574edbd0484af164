"""The service layer as the UI calls it: bytes in, model out, domain errors raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.accounts.models import User
from portway.certificates import services
from portway.certificates.models import Certificate
from portway.certificates.pem import PemError
from portway.core.errors import Conflict, FieldError, NotFound
from portway.hosts.models import ProxyHost
from portway.testing import certs

pytestmark = pytest.mark.django_db


def test_create_upload_list_delete(admin: User, data_dir: Path) -> None:
    issued = certs.make_chain(["ui.example"], key_type="ec", ca_key_type="ec", prefix="UI")
    cert = services.create_custom(admin, "UI cert")
    assert (cert.domain_names, cert.expires_on) == ([], None)
    result = services.upload(admin, cert, issued.cert_pem, issued.key_pem("sec1"), issued.chain_pem)
    assert result is cert and cert.has_files
    assert cert.domain_names == ["ui.example"]
    assert cert.meta["key_type"] == "ecdsa" and cert.meta["expired"] is False
    assert list(services.list_certificates(admin, query="ui")) == [cert]
    assert services.get_certificate(admin, cert.pk) == cert
    directory = cert.directory
    services.delete(admin, cert)
    assert not directory.exists()
    with pytest.raises(NotFound):
        services.get_certificate(admin, directory.name)


def test_validate_returns_npm_answer() -> None:
    issued = certs.make_chain(["v.example"])
    answer = services.validate(issued.fullchain_pem, issued.key_pem())
    assert set(answer) == {"certificate", "certificate_key"}
    assert answer["certificate"]["cn"] == "v.example"
    with pytest.raises(PemError) as info:
        services.validate(issued.cert_pem, b"nonsense")
    assert info.value.field == "certificate_key"


def test_errors_are_domain_errors(admin: User) -> None:
    with pytest.raises(FieldError) as info:
        services.create_custom(admin, "bad\x07name")
    assert info.value.field == "nice_name"
    with pytest.raises(FieldError) as info:
        services.create_letsencrypt(admin, ["ok.example", "bad name.example"])
    assert info.value.field == "domain_names/1"
    with pytest.raises(FieldError) as info:
        services.create_letsencrypt(admin, ["ok.example", "*.ok.example"])
    assert info.value.field == "domain_names/1"
    assert not Certificate.objects.exists()


def test_delete_in_use_names_every_host(admin: User) -> None:
    cert = services.create_custom(admin, "shared")
    for name in ("b.example", "a.example"):
        ProxyHost.objects.create(
            owner=admin, domain_names=[name], forward_host="app", forward_port=80, certificate=cert
        )
    with pytest.raises(Conflict) as info:
        services.delete(admin, cert)
    assert info.value.status == 409
    assert info.value.message == "certificate is used by proxy host(s) a.example, b.example"
    assert Certificate.objects.filter(pk=cert.pk).exists()
