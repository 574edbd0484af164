"""Reading, searching and rotating log files (no nginx needed), and their settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway import conf
from portway.nginx import logs
from portway.nginx.render import Paths


def test_last_lines_span_the_newest_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy-1_access.log"
    path.with_name(path.name + ".1").write_text("".join(f"old {i}\n" for i in range(5)))
    path.write_text("new 0\nnew 1\n")
    found = logs.read_lines(path, limit=4)
    assert found.lines == ["old 3", "old 4", "new 0", "new 1"] and not found.truncated


def test_search_is_plain_case_insensitive_text(tmp_path: Path) -> None:
    path = tmp_path / "proxy-1_access.log"
    path.write_text('GET /a.b "UA"\nGET /axb\nget /A.B\n')
    assert logs.read_lines(path, query="a.b").lines == ['GET /a.b "UA"', "get /A.B"]


def test_a_long_file_is_read_from_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "TAIL_BYTES", 64)
    path = tmp_path / "proxy-1_access.log"
    path.write_text("".join(f"line {i:04d}\n" for i in range(100)))
    found = logs.read_lines(path, limit=1000)
    assert found.truncated and found.lines[-1] == "line 0099" and len(found.lines) < 10
    assert all(line.startswith("line ") and len(line) == 9 for line in found.lines)


def test_missing_log_is_empty(tmp_path: Path) -> None:
    assert logs.read_lines(tmp_path / "proxy-9_error.log") == logs.LogLines([], False)


def test_rotation_keeps_at_most_keep_files(tmp_path: Path) -> None:
    path = tmp_path / "proxy-1_access.log"
    settings = conf.LogSettings(max_bytes=10, keep=2, check_interval=1)
    for round_number in range(4):
        path.write_text(f"round {round_number} " * 3)
        assert logs.rotate_logs(tmp_path, settings) == [path]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "proxy-1_access.log",  # empty, for writers that cannot create it (the router)
        "proxy-1_access.log.1",
        "proxy-1_access.log.2",
    ]
    assert path.read_text() == ""
    assert (tmp_path / "proxy-1_access.log.1").read_text().startswith("round 3")
    path.write_text("small")
    assert logs.rotate_logs(tmp_path, settings) == []


def test_host_log_paths_accept_only_known_keys_and_kinds(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    assert logs.host_log_path(paths, "dead-3", "error") == tmp_path / "logs" / "dead-3_error.log"
    for key, which in (("../x", "access"), ("proxy-1", "debug"), ("proxy-1/..", "error")):
        with pytest.raises(ValueError):
            logs.host_log_path(paths, key, which)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORTWAY_BACKUP_KEEP", "0", "below the minimum"),
        ("PORTWAY_BACKUP_KEEP", "2.5", "not a whole number"),
        ("PORTWAY_BACKUP_INTERVAL", "soon", "not a number"),
        ("PORTWAY_LOG_MAX_BYTES", "100", "below the minimum"),
        ("PORTWAY_LOG_KEEP", "none", "not a number"),
        ("PORTWAY_LOG_KEEP", "1.5", "not a whole number"),
    ],
)
def test_bad_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(conf.ConfigError, match=f"{name}.*{message}"):
        conf.backup_settings() if "BACKUP" in name else conf.log_settings()


def test_default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORTWAY_BACKUP_DIR", "PORTWAY_BACKUP_KEEP", "PORTWAY_LOG_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    assert conf.backup_settings() == conf.BackupSettings(None, 7, 86400)
    assert conf.log_settings().max_bytes == 10 * 1024 * 1024
