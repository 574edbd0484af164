"""Archives Portway refuses (links, absolute and `..` names, unknown paths) and the
scheduled backups' retention."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from portway import conf
from portway.backups.archive import BackupError, create_backup, read_archive
from portway.backups.schedule import run_scheduled_backup, scheduled_backups
from portway.testing.process import PortwayProcess

MANIFEST = json.dumps({"format": 1, "migrations": {}}).encode()


def _archive(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in [("manifest.json", MANIFEST), ("database.json", b"[]"), *members]:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (("../x", b"escaped"), "outside"),
        (("files/certificates/../../x", b"escaped"), "outside"),
        (("/tmp/x", b"absolute"), "absolute"),
        (_link("files/certificates/1", "/etc"), "link"),
        (_link("files/acme/key", "/etc/shadow", tarfile.LNKTYPE), "link"),
        (("files/nginx/nginx.conf", b"user root;"), "not something Portway backs up"),
        (("database.sqlite", b""), "not something Portway backs up"),
        (("files/certificates", b"a file where a directory belongs"), "not something"),
        (("files/nginx/default-cert-not", b""), "not something Portway backs up"),
    ],
)
def test_hostile_archives_are_refused(tmp_path: Path, member: object, reason: str) -> None:
    path = _archive(tmp_path / "hostile.tar.gz", [member])  # type: ignore[list-item]
    with pytest.raises(BackupError, match=reason):
        read_archive(path)


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tar.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(BackupError, match="not a readable Portway backup"):
        read_archive(path)


def test_restore_of_a_traversal_archive_writes_nothing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "x"
    path = _archive(
        tmp_path / "hostile.tar.gz",
        [("files/certificates/1/privkey.pem", b"key"), ("../x", b"escaped")],
    )
    portway = PortwayProcess(tmp_path / "data", database="sqlite")
    status, output = portway.cli("restore", str(path))
    assert status == 1
    assert "points outside the archive" in output
    assert not outside.exists()
    assert not (tmp_path / "data" / "certificates").exists()


@pytest.mark.django_db(transaction=True)
def test_scheduled_backups_keep_the_newest_n(tmp_path: Path) -> None:
    old = ["portway-backup-20240101T000000Z.tar.gz", "portway-backup-20240102T000000Z.tar.gz"]
    for name in old:
        (tmp_path / name).write_bytes(b"old")
    (tmp_path / "my-own-backup.tar.gz").write_bytes(b"kept")
    made = run_scheduled_backup(conf.BackupSettings(directory=tmp_path, keep=2, interval=1))
    assert [p.name for p in scheduled_backups(tmp_path)] == [old[1], made.name]
    assert (tmp_path / "my-own-backup.tar.gz").exists()
    assert os.stat(made).st_mode & 0o777 == 0o600
    manifest, database, _, _ = read_archive(made)
    assert manifest["portway_version"] and "accounts" in manifest["migrations"]
    assert isinstance(json.loads(database), list)


def test_backup_into_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        create_backup(tmp_path / "missing" / "b.tar.gz")


def _rewrite_database(archive: Path, change) -> None:  # noqa: ANN001 - rows → rows
    """Rewrite database.json inside `archive` (as an older or newer schema would have it)."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            if member.name == "database.json":
                data = json.dumps(change(json.loads(data))).encode()
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


def test_an_older_schemas_dump_restores_into_the_current_one(tmp_path: Path) -> None:
    """Rows without a column added since (its default applies) and with one dropped since
    (ignored) load: what restoring an older Portway's backup into a newer one meets."""
    source = PortwayProcess(tmp_path / "source", database="sqlite")
    status, output = source.cli(
        "createadmin", "--init", "--email", "old@example.com", "--password", "x" * 12
    )
    assert status == 0, output
    archive = tmp_path / "old.tar.gz"
    status, output = source.cli("backup", str(archive))
    assert status == 0, output

    def older(rows: list[dict]) -> list[dict]:
        for row in rows:
            if row["model"] == "accounts.user":
                del row["fields"]["token_generation"]  # "added later"
                row["fields"]["retired_column"] = "gone"  # "dropped later"
        return rows

    _rewrite_database(archive, older)
    target = PortwayProcess(tmp_path / "target", database="sqlite")
    status, output = target.cli("restore", str(archive))
    assert status == 0, output
    status, output = target.cli("createadmin", "--email", "old@example.com", "--password", "y" * 12)
    assert status == 1 and "already exists" in output


def test_the_settings_file_every_command_reads_goes_along(tmp_path: Path) -> None:
    """The settings file named by PORTWAY_ENV_FILE (what portway.service sets) is in the
    archive and comes back beside the restored data for review."""
    settings_file = tmp_path / "portway.env"
    settings_file.write_text("# the club's settings\nPORTWAY_LOG_LEVEL=WARNING\n")
    source = PortwayProcess(
        tmp_path / "source", env={"PORTWAY_ENV_FILE": str(settings_file)}, database="sqlite"
    )
    status, output = source.cli(
        "createadmin", "--init", "--email", "env@example.com", "--password", "x" * 12
    )
    assert status == 0, output
    archive = tmp_path / "with-settings.tar.gz"
    status, output = source.cli("backup", str(archive))
    assert status == 0, output
    target = PortwayProcess(tmp_path / "target", database="sqlite")
    status, output = target.cli("restore", str(archive))
    assert status == 0, output
    restored = target.data_dir / "portway.env.restored"
    assert restored.read_text() == settings_file.read_text()
    assert os.stat(restored).st_mode & 0o777 == 0o600


def test_a_newer_portways_backup_is_refused(tmp_path: Path) -> None:
    manifest = json.dumps({"format": 1, "migrations": {"hosts": ["9999_from_the_future"]}})
    path = tmp_path / "future.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("manifest.json", manifest.encode()), ("database.json", b"[]")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = PortwayProcess(tmp_path / "target", database="sqlite")
    status, output = target.cli("restore", str(path))
    assert status == 1 and "newer Portway" in output
