"""Safe extraction of uploaded NPM archives: hostile members refuse the whole archive and
nothing is written outside the destination."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from portway.npmimport import archive
from portway.npmimport.archive import ArchiveError, extract


def _tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """members: (kind, name, data or link target); kind file|dir|symlink|hardlink|fifo."""
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))  # type: ignore[arg-type]
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = data if isinstance(data, str) else ""
            tar.addfile(info)
    return path


def _zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


GOOD = [("file", "data/database.sqlite", b"x"), ("file", "data/access/1", b"a:b\n")]


def test_plain_npm_folder_is_found(tmp_path: Path) -> None:
    upload = _tar(
        tmp_path / "u.tgz",
        [
            *GOOD,
            ("dir", "data/letsencrypt/renewal", b""),
            ("file", "data/letsencrypt/archive/npm-2/fullchain1.pem", b"pem"),
            (
                "symlink",
                "data/letsencrypt/live/npm-2/fullchain.pem",
                "../../archive/npm-2/fullchain1.pem",
            ),
        ],
    )
    found = extract(upload, tmp_path / "out")
    assert found.data == tmp_path / "out" / "data"
    assert found.letsencrypt == tmp_path / "out" / "data" / "letsencrypt"
    assert found.skipped_links == ["data/letsencrypt/live/npm-2/fullchain.pem"]
    assert not (tmp_path / "out/data/letsencrypt/live/npm-2/fullchain.pem").exists()
    assert stat.S_IMODE((tmp_path / "out/data/access/1").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (("file", "../evil", b"x"), "leaves the archive"),
        (("file", "data/../../evil", b"x"), "leaves the archive"),
        (("file", "/tmp/evil", b"x"), "absolute path"),
        (("symlink", "data/link", "/etc/passwd"), "outside the archive"),
        (("symlink", "data/link", "../../etc"), "outside the archive"),
        (("hardlink", "data/hard", "/etc/passwd"), "hard link"),
        (("fifo", "data/pipe", b""), "special file"),
        (("file", "data/bad\nname", b"x"), "unusable name"),
    ],
)
def test_hostile_tar_refused(tmp_path: Path, member: tuple, why: str) -> None:
    upload = _tar(tmp_path / "u.tgz", [*GOOD, member])
    with pytest.raises(ArchiveError, match=why):
        extract(upload, tmp_path / "out" / "x")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "evil").exists()


def test_hostile_zip_refused(tmp_path: Path) -> None:
    upload = _zip(
        tmp_path / "u.zip", [("data/database.sqlite", b"x", 0o100644), ("../evil", b"x", 0o100644)]
    )
    with pytest.raises(ArchiveError, match="leaves the archive"):
        extract(upload, tmp_path / "out")
    upload = _zip(
        tmp_path / "l.zip",
        [("data/database.sqlite", b"x", 0o100644), ("data/l", b"/etc/passwd", 0o120777)],
    )
    with pytest.raises(ArchiveError, match="outside the archive"):
        extract(upload, tmp_path / "out2")
    assert not (tmp_path / "evil").exists()


def test_size_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 1000)
    bomb = _zip(tmp_path / "b.zip", [("data/database.sqlite", b"\0" * 5000, 0o100644)])
    with pytest.raises(ArchiveError, match="larger than"):
        extract(bomb, tmp_path / "out")
    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)
    many = _tar(tmp_path / "m.tgz", [("file", f"data/{i}", b"x") for i in range(5)])
    with pytest.raises(ArchiveError, match="more than 3 files"):
        extract(many, tmp_path / "out2")


def test_not_an_archive_or_no_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello")
    with pytest.raises(ArchiveError):
        extract(junk, tmp_path / "out")
    empty = _tar(tmp_path / "e.tgz", [("file", "data/readme", b"x")])
    with pytest.raises(ArchiveError, match="no database.sqlite"):
        extract(empty, tmp_path / "out2")
