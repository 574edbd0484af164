"""Backup and restore of a whole installation as one tar.gz archive.

An archive holds:

- `manifest.json`: format, Portway version, creation time, the database engine it came
  from and the applied migrations of every app (the schema state of the dump);
- `database.json`: every row of Portway's own apps as Django's serialised JSON
  (`dumpdata` format, primary keys kept), which `loaddata` reads on any engine, so a
  backup made on SQLite restores into PostgreSQL or MariaDB and back;
- `files/...`: the data directory's state that is not derived from the database: the
  signing key, certificates and their private keys and DNS credentials, the ACME account,
  the default site's certificate, the Cloudflare lists; with their modes (keys 0600);
- `settings/portway.env`: the settings file, when there is one.

What Portway derives from the database (nginx's generations, htpasswd files) is not in
the archive: restore renders it again. Restore never trusts member names: anything but
a regular file or directory under the known prefixes (links, devices, absolute names,
`..`) refuses the whole archive before a single byte is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from portway import conf
from portway.core.archive import UnsafeMember, member_path

log = logging.getLogger("portway.backups")

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "database.json"
FILES = "files"
SETTINGS_MEMBER = "settings/portway.env"
# Paths under the data directory that a backup carries (the rest is derived or transient):
# single files, and directories whose whole tree goes along.
DATA_FILES = ("secret_key", "cloudflare-ips.txt", "cloudflare-origin-pull-ca.pem")
DATA_DIRS = ("certificates", "acme", "nginx/default-cert")
DATA_PATHS = DATA_FILES + DATA_DIRS
# Rows that only matter while a process runs (sign-in throttling).
EXCLUDED_MODELS = ("accounts.LoginThrottle",)
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024  # unpacked, all members together


class BackupError(Exception):
    """A backup or restore cannot go ahead; the message says why and what to do."""


@dataclass
class RestoreResult:
    """What a restore brought back (for the CLI's summary)."""

    rows: int = 0
    files: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    settings_file: Path | None = None


def _portway_app_labels() -> list[str]:
    from django.apps import apps

    return [c.label for c in apps.get_app_configs() if c.name.startswith("portway.")]


def applied_migrations() -> dict[str, list[str]]:
    """{app label: sorted names of its applied migrations} for Portway's own apps."""
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    labels = set(_portway_app_labels())
    applied: dict[str, list[str]] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        if app in labels:
            applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}


def known_migrations() -> dict[str, set[str]]:
    """{app label: names of the migrations this Portway ships}."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    known: dict[str, set[str]] = {}
    for app, name in MigrationLoader(connection, ignore_no_migrations=True).disk_migrations:
        known.setdefault(app, set()).add(name)
    return known


def _dump_database() -> bytes:
    """Every row of Portway's apps as dumpdata JSON, read in one consistent snapshot.

    SQLite: the transaction takes the write lock at BEGIN (IMMEDIATE), so no writer runs
    between the tables' reads. PostgreSQL and MariaDB: REPEATABLE READ, one snapshot for
    every table while the server keeps writing.
    """
    from django.core.management import call_command
    from django.db import connection, transaction

    output = io.StringIO()
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:  # applies to the next transaction only
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        elif connection.vendor == "mysql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # opens the snapshot before any table is read
        call_command(
            "dumpdata",
            *_portway_app_labels(),
            exclude=list(EXCLUDED_MODELS),
            stdout=output,
            verbosity=0,
        )
    return output.getvalue().encode()


def _settings_file() -> Path | None:
    """The settings file every verb reads (PORTWAY_ENV_FILE, else
    /etc/portway/portway.env; portway.conf.env_file_path), when it exists."""
    path = conf.env_file_path()
    return path if path is not None and path.is_file() else None


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _add_tree(tar: tarfile.TarFile, data_dir: Path, relative: str) -> int:
    """Add `data_dir/relative` (file or directory tree) under files/; returns files added.

    Symlinks and special files are left out: the data directory holds none that matter.
    """
    root = data_dir / relative
    if not root.exists() and not root.is_symlink():
        return 0
    count = 0
    paths = [root] if root.is_file() else [root, *sorted(root.rglob("*"))]
    for path in paths:
        info_stat = path.lstat()
        name = f"{FILES}/{path.relative_to(data_dir).as_posix()}"
        if stat.S_ISDIR(info_stat.st_mode):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = stat.S_IMODE(info_stat.st_mode) & 0o755
            info.mtime = int(info_stat.st_mtime)
            tar.addfile(info)
        elif stat.S_ISREG(info_stat.st_mode):
            with open(path, "rb") as handle:
                data = handle.read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            # keep keys owner-only; nothing in the archive is executable or setuid
            info.mode = stat.S_IMODE(info_stat.st_mode) & 0o644
            info.mtime = int(info_stat.st_mtime)
            tar.addfile(info, io.BytesIO(data))
            count += 1
    return count


def create_backup(destination: Path) -> dict[str, Any]:
    """Write an archive of this installation to `destination` (mode 0600).

    Django must be set up (settings point at the installation). Safe while `portway
    serve` runs: the database is read in one snapshot; files are replaced atomically by
    Portway, so each is read whole. The archive is written beside `destination` and
    renamed into place, so a failed backup never leaves a half archive under its name.

    Returns:
        The manifest written into the archive.
    Raises:
        BackupError: `destination`'s directory does not exist.
        OSError: writing failed (disk full, permissions).
    """
    from django.conf import settings
    from django.db import connection

    from portway import __version__

    destination = Path(destination).absolute()
    if not destination.parent.is_dir():
        raise BackupError(f"{destination.parent} does not exist: create it first")
    data_dir = Path(settings.DATA_DIR)
    database = _dump_database()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "portway_version": __version__,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "database_engine": connection.vendor,
        "migrations": applied_migrations(),
    }
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            files = sum(_add_tree(tar, data_dir, relative) for relative in DATA_PATHS)
            settings_file = _settings_file()
            if settings_file is not None:
                _add_bytes(tar, SETTINGS_MEMBER, settings_file.read_bytes())
            manifest["files"] = files
            manifest["database_bytes"] = len(database)
            _add_bytes(tar, DATABASE, database)
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
        os.replace(temp_name, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return manifest


# ----- reading an archive ------------------------------------------------------------


def _safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or BackupError for anything that could leave the
    restore directory or that Portway never writes."""
    try:
        path = PurePosixPath(member_path(name))
    except UnsafeMember as exc:
        if exc.problem == "outside":
            raise BackupError(f"archive member {name!r} points outside the archive") from exc
        raise BackupError(f"archive member {name!r} has an absolute or invalid name") from exc
    if not path.parts:  # "." or "./": the archive's root, never a member Portway writes
        raise BackupError(f"archive member {name!r} has an absolute or invalid name")
    return path


def _allowed(path: PurePosixPath, is_dir: bool) -> bool:
    """Whether a member's name is one a Portway backup holds (a file where Portway keeps
    a file, a directory where it keeps a directory or on the way to one)."""
    text = path.as_posix()
    if text in (MANIFEST, DATABASE, SETTINGS_MEMBER):
        return not is_dir
    if text in (FILES, "settings", f"{FILES}/nginx"):
        return is_dir
    if path.parts[0] != FILES or len(path.parts) < 2:
        return False
    inner = PurePosixPath(*path.parts[1:]).as_posix()
    if inner in DATA_FILES:
        return not is_dir
    if inner in DATA_DIRS:
        return is_dir
    return any(inner.startswith(directory + "/") for directory in DATA_DIRS)


ArchiveContents = tuple[dict[str, Any], bytes, dict[str, tuple[int, bytes]], bytes | None]


def read_archive(source: Path) -> ArchiveContents:
    """Read and check a whole archive in memory before anything is written.

    Returns:
        (manifest, database JSON, {relative data path: (mode, content)} of files, settings
        file content or None). Directories are implied by the files.
    Raises:
        BackupError: not a Portway archive, unreadable, or a member that is a link, a
            device, an absolute or `..` name, a path Portway does not back up, or too big.
    """
    manifest: dict[str, Any] | None = None
    database: bytes | None = None
    settings_data: bytes | None = None
    files: dict[str, tuple[int, bytes]] = {}
    total = 0
    try:
        with tarfile.open(source, mode="r:gz") as tar:
            for member in tar:
                path = _safe_member_path(member.name)
                if not (member.isfile() or member.isdir()):
                    raise BackupError(
                        f"archive member {member.name!r} is a link or special file: "
                        "a Portway backup holds only files and directories"
                    )
                if not _allowed(path, member.isdir()):
                    raise BackupError(
                        f"archive member {member.name!r} is not something Portway backs up"
                    )
                if member.isdir():
                    continue
                total += member.size
                if member.size > MAX_MEMBER_BYTES or total > MAX_ARCHIVE_BYTES:
                    raise BackupError(f"archive member {member.name!r} is too large")
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                text = path.as_posix()
                if text == MANIFEST:
                    manifest = json.loads(data)
                elif text == DATABASE:
                    database = data
                elif text == SETTINGS_MEMBER:
                    settings_data = data
                else:
                    inner = PurePosixPath(*path.parts[1:]).as_posix()
                    files[inner] = (member.mode & 0o644, data)
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{source} is not a readable Portway backup: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or database is None:
        raise BackupError(f"{source} is not a Portway backup (no manifest or database dump)")
    return manifest, database, files, settings_data


# ----- restore -----------------------------------------------------------------------


def installation_is_empty(data_dir: Path) -> bool:
    """True when the database holds no rows of Portway's apps and the data directory no
    certificates or ACME account (a fresh machine; `portway serve` never ran there with
    an administrator)."""
    from django.apps import apps

    for label in _portway_app_labels():
        for model in apps.get_app_config(label).get_models():
            if f"{label}.{model.__name__}" in EXCLUDED_MODELS:
                continue
            if model._default_manager.exists():
                return False
    for relative in ("certificates", "acme"):
        directory = data_dir / relative
        if directory.is_dir() and any(p.name != "jitter" for p in directory.iterdir()):
            return False
    return True


def _check_schema(manifest: dict[str, Any]) -> None:
    known = known_migrations()
    for app, names in (manifest.get("migrations") or {}).items():
        unknown = sorted(set(names) - known.get(app, set()))
        if unknown:
            raise BackupError(
                f"the backup was made by a newer Portway ({manifest.get('portway_version')}; "
                f"migration {app}.{unknown[0]} is unknown here): update Portway first"
            )


def _write_files(data_dir: Path, files: dict[str, tuple[int, bytes]], force: bool) -> None:
    """Write the archive's files into a staging directory inside `data_dir`, then move
    each top-level path into place (replacing it only with `force`)."""
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        for relative, (mode, data) in files.items():
            target = staging / relative
            # the member names were checked; resolve() guards against surprises anyway
            if staging.resolve() not in target.resolve().parents:
                raise BackupError(f"archive member {relative!r} points outside the archive")
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(target, mode & 0o644)
        for relative in DATA_PATHS:
            staged = staging / relative
            final = data_dir / relative
            if not staged.exists():
                # --force: what the backed-up installation did not have goes too (its
                # certificates, its ACME account); the signing key stays until replaced
                if force and relative != "secret_key" and final.is_dir():
                    shutil.rmtree(final)
                elif force and relative != "secret_key" and final.exists():
                    final.unlink()
                continue
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            elif final.exists() or final.is_symlink():
                final.unlink()
            os.replace(staged, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_database(database: bytes) -> int:
    """loaddata the dump (after migrations): missing columns of an older dump take their
    defaults, columns a newer schema dropped are ignored; sequences are reset."""
    from django.core.management import call_command

    with tempfile.TemporaryDirectory(prefix="portway-restore-") as scratch:
        path = Path(scratch) / "portway-backup.json"
        path.write_bytes(database)
        output = io.StringIO()
        call_command("loaddata", str(path), ignorenonexistent=True, stdout=output, verbosity=1)
    digits = [int(w) for w in output.getvalue().split() if w.isdigit()]
    return digits[0] if digits else 0


def _flush_database() -> None:
    from django.apps import apps
    from django.core.management.color import no_style
    from django.db import connection, transaction

    models = [
        m
        for label in _portway_app_labels()
        for m in apps.get_app_config(label).get_models(include_auto_created=True)
    ]
    tables = [m._meta.db_table for m in models]
    with transaction.atomic(), connection.constraint_checks_disabled():
        for sql in connection.ops.sql_flush(
            no_style(),
            tables,
            reset_sequences=True,
            allow_cascade=True,
        ):
            with connection.cursor() as cursor:
                cursor.execute(sql)


def restore_backup(source: Path, force: bool = False) -> RestoreResult:
    """Bring an installation back from `source` into this data directory and database.

    Django must be set up and migrations applied (the caller runs them first, so an
    older backup is loaded into the current schema). The archive is read and checked
    completely first; the target must be empty unless `force` (then its rows and backed-up
    files are replaced). The database rows are loaded in one transaction.

    Raises:
        BackupError: unreadable or hostile archive, a newer Portway's backup, or a
            non-empty target without `force`.
    """
    from django.conf import settings
    from django.db import transaction

    data_dir = Path(settings.DATA_DIR)
    manifest, database, files, settings_data = read_archive(source)
    _check_schema(manifest)
    if not force and not installation_is_empty(data_dir):
        raise BackupError(
            f"the installation in {data_dir} is not empty (it has users, hosts or "
            "certificates): restore into a fresh data directory and database, or pass "
            "--force to replace everything in it"
        )
    with transaction.atomic():
        if force:
            _flush_database()
        rows = _load_database(database)
    _write_files(data_dir, files, force)
    result = RestoreResult(rows=rows, files=len(files), manifest=manifest)
    if settings_data is not None:
        target = data_dir / "portway.env.restored"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(settings_data)
        result.settings_file = target
    return result
