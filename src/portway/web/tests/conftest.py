"""Fixtures for the UI tests: users, logged-in test clients, real certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portway.accounts.models import User
from portway.testing.api import make_admin, make_user

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Path) -> None:
    """A private data directory per test (certificate files) and fast password hashing."""
    settings.DATA_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(db: None) -> User:
    return make_admin("ada@example.com", PASSWORD, name="Ada Admin")


@pytest.fixture
def member(db: None) -> User:
    """A non-admin who manages their own hosts and certificates (NPM's defaults)."""
    return make_user("mel@example.com", PASSWORD, name="Mel Member")


@pytest.fixture
def ui(admin: User) -> Client:
    """A browser-like client logged in as the admin."""
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def member_ui(member: User) -> Client:
    client = Client()
    client.force_login(member)
    return client


def leaf(names: list[str], *, days: int = 90):
    """A certificate for `names` signed by a test CA (see portway.testing.certs)."""
    from portway.testing import certs

    return certs.make_leaf(certs.make_ca("Portway UI Test Root"), names, days=days)


def pem_files(names: list[str], *, days: int = 90) -> dict[str, SimpleUploadedFile]:
    """Multipart upload fields for a fresh certificate covering `names`."""
    issued = leaf(names, days=days)
    return {
        "certificate": SimpleUploadedFile("cert.pem", issued.cert_pem),
        "certificate_key": SimpleUploadedFile("privkey.pem", issued.key_pem()),
    }


@pytest.fixture
def make_certificate(admin: User):
    """Factory: a custom certificate with files, created through the certificates service."""
    from portway.certificates import services

    def make(name: str, names: list[str], *, days: int = 90, owner: User | None = None):
        issued = leaf(names, days=days)
        cert = services.create_custom(owner or admin, name)
        return services.upload(owner or admin, cert, issued.cert_pem, issued.key_pem())

    return make


@pytest.fixture
def certificate(make_certificate):
    return make_certificate("App wildcard", ["app.example.test", "*.app.example.test"])


@pytest.fixture
def make_host(admin: User):
    """Factory: a proxy host created through the hosts service (as the admin by default)."""
    from portway.hosts import services

    def make(*names: str, owner: User | None = None, **fields: Any):
        data = {
            "domain_names": list(names),
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 8080,
            **fields,
        }
        return services.create_proxy_host(owner or admin, data)

    return make
