"""Per-host nginx logs: where they are, reading and searching them, and rotation.

Every host's server block logs to `<data>/logs/<kind>-<id>_access.log` and
`<kind>-<id>_error.log` (the renderer's `site_head`, NPM's naming). Portway rotates
them itself, without logrotate: a thread of `portway serve` checks the sizes every
PORTWAY_LOG_CHECK_INTERVAL seconds, renames a file larger than PORTWAY_LOG_MAX_BYTES to
`.1` (shifting older ones up, keeping PORTWAY_LOG_KEEP), and tells nginx's master to
reopen its logs (SIGUSR1), so nginx never writes into a renamed file for long.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portway import conf
from portway.nginx.render import Paths

log = logging.getLogger("portway.nginx.logs")

LOG_KINDS = ("access", "error")
MAX_LINES = 1000
# How much of a file's end is read to find the last lines (a search reads further).
TAIL_BYTES = 1024 * 1024
SEARCH_BYTES = 16 * 1024 * 1024
_HOST_KEY = re.compile(r"^[a-z]+-[0-9]+$")


def host_log_path(paths: Paths, host_key: str, which: str) -> Path:
    """The log file of host `host_key` ("proxy-3"); `which` is "access" or "error".

    Raises:
        ValueError: an unknown `which` or a malformed key (never a path from a user).
    """
    if which not in LOG_KINDS or not _HOST_KEY.match(host_key):
        raise ValueError(f"no such log: {host_key} {which}")
    return paths.host_log(host_key, which)


def remove_host_logs(paths: Paths, host_key: str) -> None:
    """Delete a deleted host's log files, rotated ones included (ids are never reused, so
    nothing else would ever read or rotate them away)."""
    for which in LOG_KINDS:
        current = host_log_path(paths, host_key, which)
        for path in current.parent.glob(f"{current.name}*"):
            if path.name == current.name or path.name[len(current.name) + 1 :].isdigit():
                path.unlink(missing_ok=True)


@dataclass(frozen=True)
class LogLines:
    """The end of a log, oldest line first.

    Attributes:
        lines: at most the asked number of lines (matching `query` when one was given).
        truncated: older lines exist beyond what was read (the file is larger).
    """

    lines: list[str]
    truncated: bool


def _read_end(path: Path, max_bytes: int) -> tuple[bytes, bool]:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            handle.seek(start)
            data = handle.read(max_bytes)
    except FileNotFoundError:
        return b"", False
    if start > 0:  # the first line read is probably cut
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return data, start > 0


def read_lines(path: Path, limit: int = 100, query: str = "") -> LogLines:
    """The last `limit` lines of `path` (and of its newest rotated file `path.1` when the
    current one is shorter), keeping only lines containing `query` (case-insensitive
    substring; not a pattern) when it is given.

    Args:
        path: a log file from `host_log_path`.
        limit: 1-MAX_LINES lines.
        query: text to look for; "" for every line.
    """
    limit = max(1, min(limit, MAX_LINES))
    needle = query.casefold()
    budget = SEARCH_BYTES if needle else TAIL_BYTES
    found: deque[str] = deque(maxlen=limit)
    truncated = False
    for candidate in (path.with_name(path.name + ".1"), path):
        data, cut = _read_end(candidate, budget)
        truncated = truncated or cut
        for line in data.decode("utf-8", errors="replace").splitlines():
            if not needle or needle in line.casefold():
                found.append(line)
    return LogLines(lines=list(found), truncated=truncated)


def rotate_if_large(path: Path, max_bytes: int, keep: int) -> bool:
    """Rename `path` to `path.1` (older ones to .2 ... .keep, the oldest dropped) when it
    is larger than `max_bytes`. Returns whether it rotated (nginx must reopen then).

    An empty `path` with the old file's owner and mode takes its place: the fast path's
    router writes per-host access logs through a variable path, opened by nginx's workers
    (not the master), who cannot create files in the logs directory; they reopen it
    by name within open_log_file_cache's `valid` time (portway.nginx.fastpath).
    """
    try:
        status = path.stat()
        if status.st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for index in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if index == keep:
            older.unlink(missing_ok=True)
        elif older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    os.replace(path, path.with_name(path.name + ".1"))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, status.st_mode & 0o777)
    except FileExistsError:
        return True
    try:
        if os.geteuid() == 0:
            os.fchown(fd, status.st_uid, status.st_gid)
    finally:
        os.close(fd)
    return True


def rotate_logs(logs_dir: Path, settings: conf.LogSettings) -> list[Path]:
    """Rotate every `*.log` in `logs_dir` that outgrew the cap; returns those rotated."""
    rotated = []
    for path in sorted(logs_dir.glob("*.log")):
        if rotate_if_large(path, settings.max_bytes, settings.keep):
            rotated.append(path)
    return rotated


class LogRotator:
    """The rotation thread of `portway serve` (start() / stop()).

    Args:
        logs_dir: `<data>/logs`.
        master_pid: returns nginx's master pid (None while it is not running).
        settings: caps and interval (default: from the environment).
    """

    def __init__(
        self,
        logs_dir: Path,
        master_pid: Callable[[], int | None],
        settings: conf.LogSettings | None = None,
    ) -> None:
        self.logs_dir = logs_dir
        self.master_pid = master_pid
        self.settings = settings or conf.log_settings()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-rotation", daemon=True)

    def start(self) -> LogRotator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self) -> list[Path]:
        """Rotate what outgrew the cap and make nginx reopen its files."""
        rotated = rotate_logs(self.logs_dir, self.settings)
        if rotated:
            pid = self.master_pid()
            if pid is not None:
                os.kill(pid, signal.SIGUSR1)  # nginx reopens every log file
            log.info("rotated %s", ", ".join(p.name for p in rotated))
        return rotated

    def _run(self) -> None:
        while not self._stop.wait(self.settings.check_interval):
            try:
                self.check()
            except Exception:
                log.exception("log rotation failed")
