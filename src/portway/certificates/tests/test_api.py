"""/api/nginx/certificates end to end: real tokens, real PEMs, files on disk, openssl."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portway.accounts.models import Permission, User
from portway.certificates import pem
from portway.certificates.api import KEY_STORED
from portway.certificates.models import Certificate
from portway.certificates.tests.conftest import client_for
from portway.hosts.models import ProxyHost
from portway.testing import certs
from portway.testing.npm_contract import assert_npm_response
from portway.testing.plugin import missing_prerequisite
from portway.testing.wire import CERTIFICATE_KEYS, USER_KEYS

pytestmark = pytest.mark.django_db

BASE = "/api/nginx/certificates"
NAMES = ["club.example", "*.club.example"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def rsa_leaf() -> certs.Issued:
    return certs.make_chain(NAMES, key_type="rsa")


@pytest.fixture(scope="module")
def ec_leaf() -> certs.Issued:
    return certs.make_chain(NAMES, key_type="ec", ca_key_type="ec", prefix="Portway EC")


def error(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status, body
    return body["error"]["message"]


def files(**parts: bytes | None) -> dict[str, SimpleUploadedFile]:
    return {
        name: SimpleUploadedFile(f"{name}.pem", data, "application/x-pem-file")
        for name, data in parts.items()
        if data is not None
    }


def create(api: Client, nice_name: str = "Club") -> dict:
    response = api.post(
        BASE, {"provider": "other", "nice_name": nice_name}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def upload(api: Client, cert_id: int, **parts: bytes | None) -> Any:
    return api.post(f"{BASE}/{cert_id}/upload", data=files(**parts))


def no_key_material(response: Any) -> None:
    assert b"PRIVATE KEY" not in response.content


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- create


def test_create_custom(api: Client, admin: User) -> None:
    body = create(api, "  Club wildcard ")
    assert set(body) == CERTIFICATE_KEYS
    assert body["provider"] == "other"
    assert body["nice_name"] == "Club wildcard"
    assert body["domain_names"] == []
    # NPM's schema requires a string; NPM's own default is the creation time
    assert body["expires_on"] == body["created_on"]
    assert api.get(f"/api/portway/certificates/{body['id']}").json()["expires_on"] is None
    assert body["owner_user_id"] == admin.pk
    assert ISO.match(body["created_on"]) and ISO.match(body["modified_on"])
    assert Certificate.objects.get(pk=body["id"]).provider == "other"


def test_create_keeps_client_meta(api: Client) -> None:
    response = api.post(
        BASE,
        {"provider": "other", "nice_name": "x", "meta": {"managed_by": "terraform"}},
        content_type="application/json",
    )
    body = response.json()
    # NPM's certificate meta allows no keys of its own: Portway's view has them
    assert body["meta"] == {}
    portway = api.get(f"/api/portway/certificates/{body['id']}").json()
    assert portway["meta"] == {"managed_by": "terraform"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"provider": "other"}, "nice_name"),
        ({"provider": "other", "nice_name": "   "}, "nice_name"),
        ({"provider": "other", "nice_name": "a\nb"}, "nice_name"),
        ({"provider": "other", "nice_name": "a" * 256}, "nice_name"),
        ({"provider": "other", "nice_name": "x", "bogus": 1}, "bogus"),
        ({"provider": "acme", "nice_name": "x"}, "provider"),
        ({"provider": "other", "nice_name": "x", "meta": {"k": "BEGIN PRIVATE KEY"}}, "meta"),
    ],
)
def test_create_rejects(api: Client, payload: dict, field: str) -> None:
    response = api.post(BASE, payload, content_type="application/json")
    assert error(response, 400).startswith(f"data/{field} ")
    assert not Certificate.objects.exists()


def test_letsencrypt_injection_is_rejected_naming_the_item(api: Client, data_dir: Path) -> None:
    payload = {
        "provider": "letsencrypt",
        "domain_names": ['test.com"||echo hello-world||\n test.com"'],
        "meta": {"dns_challenge": False},
    }
    message = error(api.post(BASE, payload, content_type="application/json"), 400)
    assert message.startswith("data/domain_names/0 ")
    assert not Certificate.objects.exists()
    assert not (data_dir / "certificates").exists()


def test_letsencrypt_request_answers_at_once_with_a_pending_certificate(
    api: Client, django_capture_on_commit_callbacks: Any
) -> None:
    payload = {"provider": "letsencrypt", "domain_names": ["ok.example"], "meta": {}}
    with django_capture_on_commit_callbacks() as queued:  # the job is queued, not run here
        response = api.post(BASE, payload, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["provider"] == "letsencrypt" and body["domain_names"] == ["ok.example"]
    assert body["expires_on"] == body["created_on"]
    assert body["meta"] == {"dns_challenge": False, "key_type": body["meta"]["key_type"]}
    portway = api.get(f"/api/portway/certificates/{body['id']}").json()
    assert portway["expires_on"] is None
    assert portway["meta"]["acme_status"] == "pending"
    assert len(queued) == 1


def test_letsencrypt_without_names(api: Client) -> None:
    payload = {"provider": "letsencrypt", "domain_names": []}
    message = error(api.post(BASE, payload, content_type="application/json"), 400)
    assert message.startswith("data/domain_names ")


# --------------------------------------------------------------------------- upload


@pytest.mark.parametrize(
    ("kind", "fmt", "marker"),
    [
        ("rsa", "pkcs1", b"BEGIN RSA PRIVATE KEY"),
        ("rsa", "pkcs8", b"BEGIN PRIVATE KEY"),
        ("ec", "sec1", b"BEGIN EC PRIVATE KEY"),
        ("ec", "pkcs8", b"BEGIN PRIVATE KEY"),
    ],
)
def test_upload_key_formats(
    api: Client,
    rsa_leaf: certs.Issued,
    ec_leaf: certs.Issued,
    kind: str,
    fmt: str,
    marker: bytes,
) -> None:
    issued = rsa_leaf if kind == "rsa" else ec_leaf
    key = issued.key_pem(fmt)
    assert marker in key
    cert_id = create(api)["id"]
    response = upload(
        api,
        cert_id,
        certificate=issued.cert_pem,
        certificate_key=key,
        intermediate_certificate=issued.chain_pem,
    )
    assert response.status_code == 200, response.content
    no_key_material(response)
    body = response.json()
    assert body["certificate_key"] == KEY_STORED
    assert x509.load_pem_x509_certificate(body["certificate"].encode()) == issued.cert
    assert x509.load_pem_x509_certificates(body["intermediate_certificate"].encode()) == (
        issued.chain
    )
    stored = Certificate.objects.get(pk=cert_id)
    assert stored.domain_names == NAMES
    assert stored.expires_on == issued.cert.not_valid_after_utc
    assert stored.meta["key_type"] == ("rsa" if kind == "rsa" else "ecdsa")
    assert x509.load_pem_x509_certificates(stored.fullchain_path.read_bytes()) == [
        issued.cert,
        *issued.chain,
    ]
    assert stored.key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_upload_file_modes(api: Client, rsa_leaf: certs.Issued) -> None:
    cert_id = create(api)["id"]
    upload(api, cert_id, certificate=rsa_leaf.fullchain_pem, certificate_key=rsa_leaf.key_pem())
    cert = Certificate.objects.get(pk=cert_id)
    assert mode(cert.directory) == 0o700
    assert mode(cert.directory.parent) == 0o700
    assert mode(cert.key_path) == 0o600
    assert mode(cert.fullchain_path) == 0o644
    assert sorted(p.name for p in cert.directory.iterdir()) == ["fullchain.pem", "privkey.pem"]


@pytest.mark.parametrize(
    "variant", ["crlf", "no-trailing-newline", "chain-in-certificate", "reverse-intermediates"]
)
def test_upload_accepts_what_people_have(api: Client, variant: str) -> None:
    root = certs.make_ca("API Root")
    mid1 = certs.make_intermediate(root, "API Intermediate 1")
    mid2 = certs.make_intermediate(mid1, "API Intermediate 2")
    leaf = certs.make_leaf(mid2, NAMES, label="api-deep")
    parts: dict[str, bytes | None] = {
        "certificate": leaf.cert_pem,
        "certificate_key": leaf.key_pem("pkcs1"),
        "intermediate_certificate": leaf.chain_pem,
    }
    if variant == "crlf":
        parts = {k: v.replace(b"\n", b"\r\n") for k, v in parts.items() if v}
    elif variant == "no-trailing-newline":
        parts = {k: v.rstrip(b"\n") for k, v in parts.items() if v}
    elif variant == "chain-in-certificate":
        parts = {"certificate": leaf.fullchain_pem, "certificate_key": leaf.key_pem()}
    elif variant == "reverse-intermediates":
        parts["intermediate_certificate"] = certs.cert_pem(root.cert, mid1.cert, mid2.cert)
    cert_id = create(api)["id"]
    response = upload(api, cert_id, **parts)
    assert response.status_code == 200, response.content
    stored = Certificate.objects.get(pk=cert_id).fullchain_path.read_bytes()
    assert b"\r" not in stored and stored.endswith(b"-----END CERTIFICATE-----\n")
    chain = x509.load_pem_x509_certificates(stored)
    assert chain[:3] == [leaf.cert, mid2.cert, mid1.cert]


def test_cloudflare_origin_upload(api: Client) -> None:
    origin = certs.cloudflare_origin(["shop.example", "*.shop.example"])
    cert_id = create(api, "Cloudflare origin")["id"]
    response = upload(api, cert_id, certificate=origin.cert_pem, certificate_key=origin.key_pem())
    assert response.status_code == 200, response.content
    assert "intermediate_certificate" not in response.json()
    got = api.get(f"{BASE}/{cert_id}").json()
    assert got["domain_names"] == ["shop.example", "*.shop.example"]
    details = api.get(f"/api/portway/certificates/{cert_id}").json()
    assert details["meta"]["cn"] == "CloudFlare Origin Certificate"


def test_expired_certificate_is_accepted_and_flagged(api: Client) -> None:
    past = datetime.now(UTC) - timedelta(days=200)
    issued = certs.make_leaf(
        certs.make_ca(), ["old.example"], not_before=past, not_after=past + timedelta(days=90)
    )
    cert_id = create(api)["id"]
    response = upload(api, cert_id, certificate=issued.cert_pem, certificate_key=issued.key_pem())
    assert response.status_code == 200, response.content
    body = api.get(f"{BASE}/{cert_id}").json()
    assert api.get(f"/api/portway/certificates/{cert_id}").json()["meta"]["expired"] is True
    assert body["expires_on"] == (past + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_responses_never_contain_key_material(api: Client, rsa_leaf: certs.Issued) -> None:
    cert_id = create(api)["id"]
    no_key_material(
        upload(api, cert_id, certificate=rsa_leaf.fullchain_pem, certificate_key=rsa_leaf.key_pem())
    )
    ProxyHost.objects.create(
        owner=Certificate.objects.get(pk=cert_id).owner,
        domain_names=["club.example"],
        forward_host="app",
        forward_port=80,
        certificate_id=cert_id,
    )
    for path in (BASE, f"{BASE}/{cert_id}"):
        response = api.get(path, {"expand": "owner,proxy_hosts"})
        assert response.status_code == 200
        no_key_material(response)
    for path in ("/api/portway/certificates", f"/api/portway/certificates/{cert_id}"):
        response = api.get(path, {"expand": "owner,proxy_hosts"})
        assert response.status_code == 200
        no_key_material(response)
    stored = Certificate.objects.get(pk=cert_id)
    assert "PRIVATE KEY" not in repr(stored.meta)


def test_stored_pair_is_valid_for_openssl(api: Client, tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        missing_prerequisite("the openssl CLI is not installed (apt-get install openssl)")
    root = certs.make_ca("OpenSSL Root")
    mid = certs.make_intermediate(root, "OpenSSL Intermediate")
    for key_type in ("rsa", "ec"):
        leaf = certs.make_leaf(mid, NAMES, key_type=key_type, label=f"openssl-{key_type}")
        cert_id = create(api, key_type)["id"]
        response = upload(
            api,
            cert_id,
            certificate=leaf.cert_pem,
            certificate_key=leaf.key_pem("pkcs1"),
            intermediate_certificate=leaf.chain_pem + root.cert_pem,
        )
        assert response.status_code == 200, response.content
        cert = Certificate.objects.get(pk=cert_id)

        def openssl(*args: str) -> str:
            done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=True)
            return done.stdout

        cert_pub = openssl("x509", "-noout", "-pubkey", "-in", str(cert.fullchain_path))
        key_pub = openssl("pkey", "-pubout", "-in", str(cert.key_path))
        assert cert_pub == key_pub and "PUBLIC KEY" in cert_pub
        openssl("pkey", "-check", "-noout", "-in", str(cert.key_path))
        root_file = tmp_path / "root.pem"
        root_file.write_bytes(root.cert_pem)
        verified = openssl(
            "verify",
            "-CAfile",
            str(root_file),
            "-untrusted",
            str(cert.fullchain_path),
            str(cert.fullchain_path),
        )
        assert verified.strip().endswith(": OK")
        fingerprint = openssl(
            "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert.fullchain_path)
        )
        assert fingerprint.strip().split("=", 1)[1] == cert.meta["fingerprint"]


def _bad_uploads(leaf: certs.Issued) -> list[tuple[str, dict[str, bytes | None], str]]:
    stranger = certs.make_key("rsa", "api-stranger")
    return [
        (
            "encrypted",
            {"certificate": leaf.cert_pem, "certificate_key": leaf.key_pem(password=b"pw")},
            "data/certificate_key the private key is encrypted",
        ),
        (
            "encrypted-pkcs1",
            {"certificate": leaf.cert_pem, "certificate_key": leaf.key_pem("pkcs1", b"pw")},
            "data/certificate_key the private key is encrypted",
        ),
        (
            "der",
            {"certificate": certs.cert_der(leaf.cert), "certificate_key": leaf.key_pem()},
            "data/certificate is a binary DER/PKCS#12 file",
        ),
        (
            "pfx",
            {"certificate": leaf.pkcs12(), "certificate_key": leaf.key_pem()},
            "data/certificate is a binary DER/PKCS#12 file",
        ),
        (
            "pfx-as-key",
            {"certificate": leaf.cert_pem, "certificate_key": leaf.pkcs12(None)},
            "data/certificate_key is a binary DER/PKCS#12 file",
        ),
        (
            "mismatch",
            {"certificate": leaf.cert_pem, "certificate_key": certs.key_pem(stranger)},
            "data/certificate_key the private key does not match the certificate",
        ),
        (
            "garbage-cert",
            {"certificate": b"just some text", "certificate_key": leaf.key_pem()},
            "data/certificate is not a PEM certificate",
        ),
        (
            "garbage-key",
            {"certificate": leaf.cert_pem, "certificate_key": b"hunter2"},
            "data/certificate_key is not a PEM private key",
        ),
        (
            "garbage-intermediate",
            {
                "certificate": leaf.cert_pem,
                "certificate_key": leaf.key_pem(),
                "intermediate_certificate": b"nope",
            },
            "data/intermediate_certificate is not a PEM certificate",
        ),
        (
            "missing-key",
            {"certificate": leaf.cert_pem},
            "data/certificate_key is required",
        ),
        (
            "too-large",
            {"certificate": leaf.cert_pem + b"\n" * pem.MAX_FILE_BYTES, "certificate_key": b"x"},
            "data/certificate is too large",
        ),
    ]


BAD_CASES = [
    "encrypted",
    "encrypted-pkcs1",
    "der",
    "pfx",
    "pfx-as-key",
    "mismatch",
    "garbage-cert",
    "garbage-key",
    "garbage-intermediate",
    "missing-key",
    "too-large",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_rejected_upload_changes_nothing(
    api: Client, rsa_leaf: certs.Issued, data_dir: Path, case: str
) -> None:
    _, parts, expected = next(c for c in _bad_uploads(rsa_leaf) if c[0] == case)
    cert_id = create(api)["id"]
    before = Certificate.objects.get(pk=cert_id)
    message = error(upload(api, cert_id, **parts), 400)
    assert message.startswith(expected), message
    after = Certificate.objects.get(pk=cert_id)
    assert (after.domain_names, after.expires_on, after.meta, after.modified_on) == (
        before.domain_names,
        before.expires_on,
        before.meta,
        before.modified_on,
    )
    assert not (data_dir / "certificates").exists()
    assert Certificate.objects.count() == 1


def test_rejected_reupload_keeps_previous_files(api: Client, rsa_leaf: certs.Issued) -> None:
    cert_id = create(api)["id"]
    upload(api, cert_id, certificate=rsa_leaf.fullchain_pem, certificate_key=rsa_leaf.key_pem())
    cert = Certificate.objects.get(pk=cert_id)
    old = (cert.fullchain_path.read_bytes(), cert.key_path.read_bytes(), cert.meta)
    stranger = certs.key_pem(certs.make_key("rsa", "api-stranger"))
    error(upload(api, cert_id, certificate=rsa_leaf.cert_pem, certificate_key=stranger), 400)
    cert.refresh_from_db()
    assert (cert.fullchain_path.read_bytes(), cert.key_path.read_bytes(), cert.meta) == old
    assert sorted(p.name for p in cert.directory.iterdir()) == ["fullchain.pem", "privkey.pem"]


def test_upload_accepts_plain_form_fields(api: Client, rsa_leaf: certs.Issued) -> None:
    cert_id = create(api)["id"]
    response = api.post(
        f"{BASE}/{cert_id}/upload",
        data={
            "certificate": rsa_leaf.fullchain_pem.decode(),
            "certificate_key": rsa_leaf.key_pem().decode(),
        },
    )
    assert response.status_code == 200, response.content


def test_upload_to_letsencrypt_certificate_is_refused(
    api: Client, admin: User, rsa_leaf: certs.Issued
) -> None:
    cert = Certificate.objects.create(owner=admin, provider="letsencrypt", nice_name="le")
    response = upload(
        api, cert.pk, certificate=rsa_leaf.cert_pem, certificate_key=rsa_leaf.key_pem()
    )
    assert "Only custom certificates" in error(response, 400)
    assert not cert.directory.exists()


def test_upload_unknown_certificate(api: Client, rsa_leaf: certs.Issued) -> None:
    response = upload(api, 999, certificate=rsa_leaf.cert_pem, certificate_key=rsa_leaf.key_pem())
    error(response, 404)


# --------------------------------------------------------------------------- validate


def test_validate(api: Client, rsa_leaf: certs.Issued, data_dir: Path) -> None:
    response = api.post(
        f"{BASE}/validate",
        data=files(
            certificate=rsa_leaf.cert_pem,
            certificate_key=rsa_leaf.key_pem("pkcs1"),
            intermediate_certificate=rsa_leaf.chain_pem,
        ),
    )
    assert response.status_code == 200, response.content
    no_key_material(response)
    body = response.json()
    assert body["certificate_key"] is True
    assert body["certificate"] == {
        "cn": "club.example",
        "issuer": "O = Portway Tests, CN = Portway Test Intermediate CA",
        "dates": {
            "from": int(rsa_leaf.cert.not_valid_before_utc.timestamp()),
            "to": int(rsa_leaf.cert.not_valid_after_utc.timestamp()),
        },
    }
    # NPM's schema has no room for the intermediate's details (it is checked all the same)
    assert "intermediate_certificate" not in body
    assert not Certificate.objects.exists()
    assert not (data_dir / "certificates").exists()


def test_validate_without_intermediate_has_npm_shape(api: Client, rsa_leaf: certs.Issued) -> None:
    response = api.post(
        f"{BASE}/validate",
        data=files(certificate=rsa_leaf.fullchain_pem, certificate_key=rsa_leaf.key_pem()),
    )
    assert set(response.json()) == {"certificate", "certificate_key"}


@pytest.mark.parametrize("case", ["encrypted", "der", "pfx", "mismatch", "garbage-key"])
def test_validate_rejects(api: Client, rsa_leaf: certs.Issued, case: str) -> None:
    _, parts, expected = next(c for c in _bad_uploads(rsa_leaf) if c[0] == case)
    response = api.post(f"{BASE}/validate", data=files(**parts))
    assert error(response, 400).startswith(expected)


# --------------------------------------------------------------------------- read


def test_list_order_query_and_expand(api: Client, admin: User) -> None:
    for name in ("zeta", "Alpha", "beta site"):
        create(api, name)
    body = api.get(BASE).json()
    assert [c["nice_name"] for c in body] == ["Alpha", "beta site", "zeta"]
    assert all(set(c) == CERTIFICATE_KEYS for c in body)
    assert [c["nice_name"] for c in api.get(BASE, {"query": "ET"}).json()] == [
        "beta site",
        "zeta",
    ]
    # NPM's object has room for the owner only; the hosts are Portway's (/api/portway)
    expanded = api.get(BASE, {"expand": "owner,proxy_hosts"}).json()
    assert set(expanded[0]) == CERTIFICATE_KEYS | {"owner"}
    assert set(expanded[0]["owner"]) == USER_KEYS
    assert expanded[0]["owner"]["roles"] == ["admin"]
    assert_npm_response("GET", f"{BASE}?expand=owner,proxy_hosts", 200, expanded)
    mine = api.get("/api/portway/certificates", {"expand": "owner,proxy_hosts"}).json()
    assert mine[0]["proxy_hosts"] == [] and mine[0]["owner"]["id"] == admin.pk
    assert error(api.get(BASE, {"expand": "secrets"}), 400).startswith("data/expand ")


def test_get_with_proxy_hosts(api: Client, admin: User) -> None:
    cert_id = create(api)["id"]
    host = ProxyHost.objects.create(
        owner=admin,
        domain_names=["a.example"],
        forward_host="app",
        forward_port=8080,
        certificate_id=cert_id,
    )
    body = api.get(f"/api/portway/certificates/{cert_id}", {"expand": "proxy_hosts"}).json()
    assert [h["id"] for h in body["proxy_hosts"]] == [host.pk]
    assert body["proxy_hosts"][0]["domain_names"] == ["a.example"]
    assert "proxy_hosts" not in api.get(f"/api/portway/certificates/{cert_id}").json()
    # NPM's endpoint takes the expansion NPM clients send, and answers NPM's object
    npm_object = api.get(f"{BASE}/{cert_id}", {"expand": "proxy_hosts"}).json()
    assert "proxy_hosts" not in npm_object
    assert_npm_response("GET", f"{BASE}/{cert_id}?expand=proxy_hosts", 200, npm_object)


def test_get_unknown(api: Client) -> None:
    error(api.get(f"{BASE}/12345"), 404)


def test_requires_authentication(db: None) -> None:
    error(Client().get(BASE), 401)


# --------------------------------------------------------------------------- delete


def test_delete_removes_row_and_files(api: Client, rsa_leaf: certs.Issued) -> None:
    cert_id = create(api)["id"]
    upload(api, cert_id, certificate=rsa_leaf.fullchain_pem, certificate_key=rsa_leaf.key_pem())
    directory = Certificate.objects.get(pk=cert_id).directory
    assert directory.exists()
    response = api.delete(f"{BASE}/{cert_id}")
    assert response.status_code == 200 and response.json() is True
    assert not Certificate.objects.filter(pk=cert_id).exists()
    assert not directory.exists()
    error(api.delete(f"{BASE}/{cert_id}"), 404)


def test_delete_in_use_is_409_naming_hosts(
    api: Client, admin: User, rsa_leaf: certs.Issued
) -> None:
    cert_id = create(api)["id"]
    upload(api, cert_id, certificate=rsa_leaf.fullchain_pem, certificate_key=rsa_leaf.key_pem())
    for name in ("b.example", "a.example"):
        ProxyHost.objects.create(
            owner=admin,
            domain_names=[name, f"www.{name}"],
            forward_host="app",
            forward_port=80,
            certificate_id=cert_id,
        )
    message = error(api.delete(f"{BASE}/{cert_id}"), 409)
    assert message.startswith("certificate is used by proxy host(s) ")
    assert "a.example" in message and "b.example" in message
    cert = Certificate.objects.get(pk=cert_id)
    assert cert.has_files


# --------------------------------------------------------------------------- permissions


def _user(email: str, **permission: str) -> User:
    user = User.objects.create_user(email, "pw12345678", name=email.split("@")[0])
    Permission.objects.create(user=user, **permission)
    return user


def test_hidden_section_is_403(admin: User) -> None:
    client = client_for(_user("hidden@example.com", certificates="hidden"))
    error(client.get(BASE), 403)
    response = client.post(
        BASE, {"provider": "other", "nice_name": "x"}, content_type="application/json"
    )
    error(response, 403)


def test_view_only_user(api: Client, admin: User, rsa_leaf: certs.Issued) -> None:
    cert_id = create(api)["id"]
    viewer = client_for(_user("viewer@example.com", certificates="view", visibility="all"))
    assert [c["id"] for c in viewer.get(BASE).json()] == [cert_id]
    response = viewer.post(
        BASE, {"provider": "other", "nice_name": "x"}, content_type="application/json"
    )
    error(response, 403)
    response = upload(
        viewer, cert_id, certificate=rsa_leaf.cert_pem, certificate_key=rsa_leaf.key_pem()
    )
    error(response, 403)
    error(viewer.delete(f"{BASE}/{cert_id}"), 403)
    assert Certificate.objects.filter(pk=cert_id).exists()


def test_user_visibility_sees_own_only(api: Client) -> None:
    admin_cert = create(api, "admin's")["id"]
    owner = _user("owner@example.com", certificates="manage", visibility="user")
    client = client_for(owner)
    own = create(client, "mine")
    assert own["owner_user_id"] == owner.pk
    assert [c["id"] for c in client.get(BASE).json()] == [own["id"]]
    error(client.get(f"{BASE}/{admin_cert}"), 404)
    error(client.delete(f"{BASE}/{admin_cert}"), 404)
    assert len(api.get(BASE).json()) == 2


def test_openapi_lists_certificate_paths(api: Client) -> None:
    schema = api.get("/api/schema").json()
    for path in ("/nginx/certificates", "/nginx/certificates/validate"):
        assert path in schema["paths"], sorted(schema["paths"])
    upload_op = schema["paths"]["/nginx/certificates/{certificate_id}/upload"]["post"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
