"""Backup on SQLite while serving, restore into a fresh SQLite, PostgreSQL and MariaDB
installation, and the restored `portway serve` serves the same hosts with the same
certificate (compared by the serial nginx presents over TLS with SNI). The PostgreSQL
and MariaDB installations are backed up in turn while serving and restored onward
(PostgreSQL → MariaDB → SQLite), so each engine's snapshot read is used too."""

from __future__ import annotations

import base64
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.testing import certs
from portway.testing.network import UpstreamServer
from portway.testing.plugin import missing_prerequisite
from portway.testing.process import PortwayProcess, wait_for

pytestmark = pytest.mark.slow

SECURE = "secure.backup.test"
PLAIN = "plain.backup.test"
GUARDED = "guarded.backup.test"
ALICE = {"Authorization": "Basic " + base64.b64encode(b"alice:wonderland1").decode()}


class Source:
    """The installation that is backed up (SQLite, serving while the backup runs)."""

    def __init__(self, portway: PortwayProcess, archive: Path, serial: int, upstream: str):
        self.portway = portway
        self.archive = archive
        self.serial = serial
        self.upstream = upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("backed-up") as server:
        yield server


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Iterator[Source]:
    root = tmp_path_factory.mktemp("backup-source")
    scheduled = root / "scheduled"
    portway = PortwayProcess(
        root / "data",
        database="sqlite",
        env={
            "PORTWAY_BACKUP_DIR": str(scheduled),
            "PORTWAY_BACKUP_INTERVAL": "1",
            "PORTWAY_BACKUP_KEEP": "2",
        },
    )
    try:
        portway.start()
        leaf = certs.make_leaf(None, [SECURE], key_type="ec", label="backup-e2e")
        cert = portway.upload_certificate("backup", leaf.cert_pem, leaf.key_pem())
        portway.create_proxy_host([SECURE], upstream.port, certificate_id=cert["id"])
        portway.create_proxy_host([PLAIN], upstream.port)
        status, guarded = portway.api(
            "POST",
            "/api/nginx/access-lists",
            {"name": "guarded", "items": [{"username": "alice", "password": "wonderland1"}]},
        )
        assert status == 201, guarded
        portway.create_proxy_host([GUARDED], upstream.port, access_list_id=guarded["id"])
        portway.wait_applied()
        assert portway.served_certificate(SECURE).serial_number == leaf.cert.serial_number
        archive = root / "portway.tar.gz"
        status, output = portway.cli("backup", str(archive))  # while serve runs
        assert status == 0, output
        yield Source(portway, archive, leaf.cert.serial_number, "backed-up")
    finally:
        portway.close()


def test_archive_is_private_and_keeps_key_modes(source: Source) -> None:
    assert stat.S_IMODE(source.archive.stat().st_mode) == 0o600
    with tarfile.open(source.archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    keys = [m for name, m in members.items() if name.endswith("privkey.pem")]
    assert keys, sorted(members)
    assert all(m.mode == 0o600 for m in keys)
    assert members["files/secret_key"].mode == 0o600
    assert {"manifest.json", "database.json"} <= set(members)


def test_scheduled_backups_keep_the_newest(source: Source) -> None:
    directory = Path(source.portway.extra_env["PORTWAY_BACKUP_DIR"])

    def names() -> list[str]:
        return sorted(p.name for p in directory.glob("portway-backup-*.tar.gz"))

    first = wait_for(lambda: names() if len(names()) == 2 else None, 30)
    later = wait_for(lambda: names() if names()[-1] > first[-1] else None, 30)
    assert len(later) == 2
    assert all(stat.S_IMODE((directory / n).stat().st_mode) == 0o600 for n in later)


def _reachable(kind: str) -> None:
    import socket

    port = {"postgres": 5432, "mysql": 3306}.get(kind)
    if port is None:
        return
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        missing_prerequisite(f"{kind} on 127.0.0.1:{port} (needed to restore into it)")


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_restore_serves_the_same_hosts(
    source: Source, tmp_path: Path, kind: str, upstream: UpstreamServer
) -> None:
    _reachable(kind)
    target = PortwayProcess(tmp_path / "data", database=kind)
    try:
        status, output = target.cli("restore", str(source.archive))
        assert status == 0, output
        key_files = list((tmp_path / "data" / "certificates").rglob("privkey.pem"))
        assert key_files
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in key_files)
        target.start()
        assert target.served_certificate(SECURE).serial_number == source.serial
        status, _, body = target.http(SECURE, "/", https=True)
        assert status == 200 and source.upstream.encode() in body
        assert target.upstream_of(PLAIN) == source.upstream
        # the access list's password file is written again from the restored rows
        assert target.http(GUARDED)[0] == 401
        assert target.upstream_of(GUARDED, headers=ALICE) == source.upstream
        status, hosts = target.api("GET", "/api/nginx/proxy-hosts")
        assert status == 200
        assert sorted(h["domain_names"][0] for h in hosts) == sorted([GUARDED, PLAIN, SECURE])
        assert all(h["meta"].get("nginx_online") for h in hosts), hosts
        # the database's sequences follow the restored ids: new rows get fresh ones
        added = target.create_proxy_host(["added.backup.test"], upstream.port)
        assert added["id"] > max(h["id"] for h in hosts)
        if kind == "sqlite":
            _refuses_a_non_empty_target(target, source)
        else:
            _backs_up_again_into(target, tmp_path, NEXT_ENGINE[kind])
    finally:
        target.close()


# a backup of the restored installation, made on its engine while it serves, goes on to
NEXT_ENGINE = {"postgres": "mysql", "mysql": "sqlite"}


def _backs_up_again_into(restored: PortwayProcess, tmp_path: Path, kind: str) -> None:
    archive = tmp_path / "again.tar.gz"
    status, output = restored.cli("backup", str(archive))
    assert status == 0, output
    onward = PortwayProcess(tmp_path / f"onward-{kind}", database=kind)
    try:
        status, output = onward.cli("restore", str(archive))
        assert status == 0, output
        assert "4 hosts, 0 rejected by nginx" in output  # rendered and passed nginx -t
    finally:
        onward.close()


def _refuses_a_non_empty_target(target: PortwayProcess, source: Source) -> None:
    status, output = target.cli("restore", str(source.archive))
    assert status == 1 and "portway serve" in output  # the running server holds it
    target.stop()
    status, output = target.cli("restore", str(source.archive))
    assert status == 1 and "not empty" in output and "--force" in output
    status, output = target.cli("restore", "--force", str(source.archive))
    assert status == 0, output
    target.start()
    assert target.served_certificate(SECURE).serial_number == source.serial
    assert os.listdir(target.data_dir / "certificates")


def test_backups_page_lists_archives_and_backs_up_now(source: Source) -> None:
    portway = source.portway
    directory = Path(portway.extra_env["PORTWAY_BACKUP_DIR"])
    session = portway.ui_session()
    page = session.get(portway.admin_url + "/settings/backups", timeout=30)
    assert page.status_code == 200
    assert str(directory) in page.text and "keeps the newest 2" in page.text
    before = {p.name for p in directory.glob("portway-backup-*.tar.gz")}
    assert any(f'data-archive="{name}"' in page.text for name in before)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no Back up now form"
    done = session.post(
        portway.admin_url + "/settings/backups/now",
        data={"csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": portway.admin_url + "/settings/backups"},
        timeout=60,
    )
    assert done.status_code == 200 and "Backup written to" in done.text
    newest = sorted(p.name for p in directory.glob("portway-backup-*.tar.gz"))[-1]
    assert f'data-archive="{newest}"' in done.text
    assert "download" not in done.text.lower().replace("not downloadable", "")
    status, member = portway.api(
        "POST",
        "/api/users",
        {
            "name": "Member",
            "email": "member@backup.test",
            "auth": {"type": "password", "secret": "member-password"},
        },
    )
    assert status == 201, member
    other = portway.ui_session("member@backup.test", "member-password")
    page = other.get(portway.admin_url + "/settings/backups", timeout=30)
    assert page.status_code == 200 and 'id="backups-admin-only"' in page.text
    assert "data-archive" not in page.text and str(directory) not in page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    refused = other.post(
        portway.admin_url + "/settings/backups/now",
        data={"csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": portway.admin_url + "/settings/backups"},
        timeout=60,
    )
    assert "Only administrators make backups" in refused.text
