"""Safe extraction of an uploaded NPM backup (.tar.gz, .tgz, .tar or .zip).

Nothing in the archive decides where a file goes beyond a relative path checked here:
absolute paths, `..`, backslashes, control characters, devices, hard links and
symbolic links pointing outside the archive are refused (the whole archive). Symbolic
links inside it (certbot's letsencrypt/live/ links into archive/) are never created:
they are skipped, and the import reads the newest archive/ files instead. Members are
read through the library and written by us, with caps on count and sizes, so a
compression bomb stops at the cap.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from portway.core.archive import UnsafeMember, member_path

MAX_MEMBERS = 20000
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The upload is refused (message for people)."""


@dataclass
class Extracted:
    """Where the NPM folders are inside the extraction directory."""

    root: Path
    data: Path | None = None
    letsencrypt: Path | None = None
    sqlite: Path | None = None
    skipped_links: list[str] = field(default_factory=list)


_REFUSALS = {
    "unusable name": "has an unusable name",
    "absolute path": "has an absolute path",
    "outside": "leaves the archive (..)",
}


def _clean_name(name: str) -> str:
    """The member's relative path, or ArchiveError naming why it is refused."""
    try:
        return member_path(name)
    except UnsafeMember as exc:
        raise ArchiveError(f"refused: the member {name!r} {_REFUSALS[exc.problem]}") from exc


def _check_link(name: str, target: str) -> None:
    if target.startswith("/") or "\\" in target:
        raise ArchiveError(f"refused: the link {name!r} points to {target!r}, outside the archive")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if joined == ".." or joined.startswith("../"):
        raise ArchiveError(f"refused: the link {name!r} points to {target!r}, outside the archive")


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.total = 0
        self.count = 0

    def count_member(self) -> None:
        self.count += 1
        if self.count > MAX_MEMBERS:
            raise ArchiveError(f"refused: more than {MAX_MEMBERS} files")

    def directory(self, name: str) -> None:
        if name:
            (self.root / name).mkdir(mode=0o700, parents=True, exist_ok=True)

    def file(self, name: str, source: IO[bytes]) -> None:
        target = self.root / name
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if target.exists():
            raise ArchiveError(f"refused: {name!r} appears twice")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                self.total += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise ArchiveError(
                        f"refused: {name!r} is larger than {MAX_FILE_BYTES >> 20} MiB"
                    )
                if self.total > MAX_TOTAL_BYTES:
                    raise ArchiveError(f"refused: more than {MAX_TOTAL_BYTES >> 20} MiB unpacked")
                out.write(chunk)


def _tar(path: Path, writer: _Writer, links: list[str]) -> None:
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            writer.count_member()
            name = _clean_name(member.name)
            if member.issym():
                _check_link(name, member.linkname)
                links.append(name)
            elif member.islnk():
                raise ArchiveError(f"refused: {name!r} is a hard link")
            elif member.isdir():
                writer.directory(name)
            elif member.isfile():
                source = archive.extractfile(member)
                if source is not None and name:
                    writer.file(name, source)
            else:
                raise ArchiveError(f"refused: {name!r} is a device or special file")


def _zip(path: Path, writer: _Writer, links: list[str]) -> None:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            writer.count_member()
            name = _clean_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                _check_link(name, archive.read(info)[:4096].decode("utf-8", "replace"))
                links.append(name)
            elif info.is_dir():
                writer.directory(name)
            elif mode and not stat.S_ISREG(mode):
                raise ArchiveError(f"refused: {name!r} is a device or special file")
            elif name:
                with archive.open(info) as source:
                    writer.file(name, source)


def _shallowest(paths: list[Path]) -> Path | None:
    return min(paths, key=lambda p: (len(p.parts), str(p))) if paths else None


def extract(upload: Path, destination: Path) -> Extracted:
    """Unpack `upload` into the empty directory `destination` and find NPM's folders
    (see `locate`).

    Raises:
        ArchiveError: the archive is refused or holds no NPM database.
    """
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    writer = _Writer(destination)
    links: list[str] = []
    try:
        if zipfile.is_zipfile(upload):
            _zip(upload, writer, links)
        else:
            _tar(upload, writer, links)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"a damaged archive: {exc}") from exc
    except OSError as exc:  # e.g. a file and a folder of the same name
        raise ArchiveError(f"refused: {exc.strerror}: {Path(exc.filename or '').name}") from exc
    found = locate(destination)
    found.skipped_links = links
    return found


def locate(root: Path) -> Extracted:
    """NPM's folders in the unpacked tree under `root`.

    data: the folder holding database.sqlite; letsencrypt: a folder named letsencrypt,
    else one holding renewal/ or archive/.

    Raises:
        ArchiveError: no database.sqlite.
    """
    sqlite = _shallowest(list(root.rglob("database.sqlite")))
    if sqlite is None:
        raise ArchiveError(
            "no database.sqlite in the archive: upload NPM's data folder (with its "
            "database.sqlite); for a MariaDB/MySQL NPM use `portway import-npm` instead"
        )
    named = [p for p in root.rglob("letsencrypt") if p.is_dir()]
    if not named:
        named = [p.parent for p in root.rglob("renewal") if p.is_dir()]
        named += [p.parent for p in root.rglob("archive") if p.is_dir()]
    return Extracted(root, data=sqlite.parent, sqlite=sqlite, letsencrypt=_shallowest(named))
