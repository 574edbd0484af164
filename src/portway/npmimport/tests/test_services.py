"""The import's mapping, on the database (no server): NPM's 2020 vintage, Let's Encrypt
certificates with DNS challenges, renewal taken over, dry run, a second run."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path
from typing import Any

import pytest

from portway.accounts.models import User
from portway.certificates import renewal
from portway.certificates.issuance import credentials_path
from portway.certificates.models import Certificate
from portway.hosts.models import ProxyHost, RedirectionHost, Stream
from portway.npmimport.services import import_npm, stream_wire
from portway.npmimport.source import NpmDatabase, NpmFiles
from portway.npmimport.tests.npm_fixture import make_installation
from portway.npmimport.tests.npm_schema import build_sqlite
from portway.testing.certs import make_ca, make_leaf

pytestmark = pytest.mark.django_db

CLOUDFLARE = "dns_cloudflare_api_token = 0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path / "portway"


@pytest.fixture
def admin() -> User:
    return User.objects.create_user("root@portway.test", "x" * 10, is_admin=True, name="Root")


def _with_dns_certificates(npm: Any) -> None:
    """Two more ACME certificates: Cloudflare DNS (supported) and DuckDNS (not)."""
    ca = make_ca(cn="LE test")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    for npm_id, provider, credentials in ((5, "cloudflare", CLOUDFLARE), (6, "duckdns", "x")):
        # a 90-day Let's Encrypt certificate with 10 days left
        leaf = make_leaf(
            ca, [f"*.w{npm_id}.test"], not_before=soon - dt.timedelta(days=90), not_after=soon
        )
        folder = npm.letsencrypt / "live" / f"npm-{npm_id}"
        leaf.write(folder)
        npm.rows["certificate"].append(
            {
                **npm.rows["certificate"][1],
                "id": npm_id,
                "domain_names": [f"*.w{npm_id}.test"],
                "meta": {
                    "dns_challenge": True,
                    "dns_provider": provider,
                    "dns_provider_credentials": credentials,
                    "letsencrypt_email": "dns@w.test",
                    "propagation_seconds": 30,
                },
            }
        )


def _source(tmp_path: Path, vintage: str = "2020") -> tuple[NpmDatabase, NpmFiles, Any]:
    npm = make_installation(tmp_path / "npm", "db.test", 8001, 8002, "2020-12-01 12:00:00")
    _with_dns_certificates(npm)
    build_sqlite(str(npm.data / "database.sqlite"), vintage, npm.rows)
    db = NpmDatabase.open_sqlite(npm.data / "database.sqlite")
    return db, NpmFiles(npm.data, npm.letsencrypt), npm


def test_dry_run_changes_nothing(tmp_path: Path, admin: User) -> None:
    db, files, _ = _source(tmp_path)
    report = import_npm(db, files, admin, dry_run=True)
    assert report.imported
    assert not ProxyHost.objects.exists() and not Certificate.objects.exists()
    assert User.objects.count() == 1
    assert not (tmp_path / "portway" / "certificates").exists()  # no file written


def test_acme_certificates_keep_renewing(tmp_path: Path, admin: User) -> None:
    db, files, _ = _source(tmp_path)
    report = import_npm(db, files, admin)
    by_name = {e.name: e for e in report.entries if e.kind == "certificate"}
    cloudflare = Certificate.objects.get(domain_names=["*.w5.test"])
    assert cloudflare.provider == "letsencrypt"
    assert cloudflare.meta["dns_provider"] == "cloudflare"
    assert cloudflare.meta["propagation_seconds"] == 30
    assert "dns_provider_credentials" not in cloudflare.meta
    assert cloudflare.acme["status"] == "valid" and cloudflare.acme["email"] == "dns@w.test"
    assert renewal.is_due(cloudflare)  # 10 days left: Portway renews it
    path = credentials_path(cloudflare)
    assert path.read_text().strip() == CLOUDFLARE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    duck = Certificate.objects.get(domain_names=["*.w6.test"])
    assert duck.provider == "other"
    assert "will NOT be renewed" in by_name["*.w6.test"].reason
    assert stat.S_IMODE(cloudflare.key_path.stat().st_mode) == 0o600


def test_2020_vintage_mapping(tmp_path: Path, admin: User) -> None:
    db, files, npm = _source(tmp_path)
    import_npm(db, files, admin)
    app = ProxyHost.objects.get(first_domain=npm.names["app"])
    assert app.locations[0]["path"] == "/api" and app.locations[0]["forward_port"] == 8002
    assert app.ssl_forced and app.http2_support and app.block_exploits
    assert app.allow_websocket_upgrade and app.advanced_config == 'add_header X-From-Npm "yes";'
    assert app.certificate.nice_name == "App custom"
    assert "nginx_online" not in app.meta
    assert not ProxyHost.objects.get(first_domain=npm.names["off"]).enabled
    assert not ProxyHost.objects.filter(first_domain=npm.names["old"]).exists()
    # 2020: no status code or scheme columns yet: NPM answered 302 with the request's scheme
    go = RedirectionHost.objects.get(first_domain=npm.names["go"])
    assert (go.forward_http_code, go.forward_scheme, go.preserve_path) == (302, "auto", True)
    editor = User.objects.get(email=npm.editor_email)
    assert editor.check_password("npm-editor-pass") and not editor.is_admin
    assert editor.permission.certificates == "view" and editor.permission.visibility == "user"
    assert ProxyHost.objects.get(first_domain=npm.names["private"]).owner == editor
    # NPM's own admin@example.com is imported (no such Portway user here), as admin, but
    # without NPM's published default password "changeme" it still had
    npm_admin = User.objects.get(email="admin@example.com")
    assert npm_admin.is_admin and not npm_admin.has_usable_password()


def test_second_run_adds_nothing(tmp_path: Path, admin: User) -> None:
    db, files, _ = _source(tmp_path, "current")
    first = import_npm(db, files, admin)
    counts = (ProxyHost.objects.count(), Certificate.objects.count(), User.objects.count())
    second = import_npm(db, files, admin)
    assert first.imported and not second.imported
    assert counts == (ProxyHost.objects.count(), Certificate.objects.count(), User.objects.count())
    assert all(
        e.reason in ("already imported", "already 404")
        or "already used" in e.reason
        or e.kind == "ACME account"
        or "missing" in e.reason
        for e in second.skipped
    ), second.text()


def test_streams_mapping(tmp_path: Path, admin: User) -> None:
    db, files, npm = _source(tmp_path, "current")
    ports = npm.stream_ports
    # a Portway stream already serves the port of NPM's stream 5
    Stream(
        owner=admin, incoming_port=ports["clash"], forwarding_host="127.0.0.1", forwarding_port=9
    ).save()
    report = import_npm(db, files, admin)
    streams = {e.npm_id: e for e in report.entries if e.kind == "stream"}
    assert 3 not in streams  # soft-deleted: not even mentioned
    assert streams[1].outcome == streams[2].outcome == streams[4].outcome == "imported"
    assert streams[5].outcome == "skipped", report.text()
    assert f"port {ports['clash']} (TCP) is already used by enabled stream" in streams[5].reason
    tcp = Stream.objects.get(incoming_port=ports["tcp"])
    assert (tcp.forwarding_host, tcp.forwarding_port, tcp.tcp_forwarding) == ("127.0.0.1", 7, True)
    assert tcp.enabled and tcp.certificate is None and "nginx_online" not in tcp.meta
    assert Stream.objects.get(incoming_port=ports["tls"]).certificate.nice_name == "App custom"
    udp = Stream.objects.get(incoming_port=ports["udp"])
    assert (udp.tcp_forwarding, udp.udp_forwarding, udp.enabled) == (False, True, False)
    assert Stream.objects.get(incoming_port=ports["clash"]).forwarding_port == 9
    again = import_npm(db, files, admin)
    assert not [e for e in again.entries if e.kind == "stream" and e.outcome == "imported"]
    assert Stream.objects.count() == 4


def test_2020_streams_have_no_certificate(tmp_path: Path, admin: User) -> None:
    db, files, npm = _source(tmp_path, "2020")
    import_npm(db, files, admin)
    # before NPM 2.12 (2024) streams had no certificate_id: plain TCP
    assert Stream.objects.get(incoming_port=npm.stream_ports["tls"]).certificate is None
    # 2020 had the `enabled` column: the disabled UDP stream stays off
    assert not Stream.objects.get(incoming_port=npm.stream_ports["udp"]).enabled


def test_stream_wire_shape() -> None:
    row = {
        "incoming_port": 2222,
        "forwarding_host": "10.0.0.2",
        "forwarding_port": 22,
        "tcp_forwarding": 1,
        "udp_forwarding": 0,
        "certificate_id": 0,
        "enabled": 1,
        "meta": {"nginx_online": True, "x": 1},
    }
    assert stream_wire(row) == {
        "incoming_port": 2222,
        "forwarding_host": "10.0.0.2",
        "forwarding_port": 22,
        "tcp_forwarding": True,
        "udp_forwarding": False,
        "certificate_id": 0,
        "enabled": True,
        "meta": {"x": 1},
    }
