"""The scheduled backup: a thread of `portway serve` that writes an archive every
PORTWAY_BACKUP_INTERVAL seconds (default daily) into PORTWAY_BACKUP_DIR and keeps the
newest PORTWAY_BACKUP_KEEP of them (default 7). Off unless PORTWAY_BACKUP_DIR is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from pathlib import Path

from django.db import close_old_connections

from portway import conf
from portway.backups.archive import create_backup

log = logging.getLogger("portway.backups")

SCHEDULED_NAME = re.compile(r"^portway-backup-\d{8}T\d{6}Z\.tar\.gz$")


def scheduled_backups(directory: Path) -> list[Path]:
    """The scheduled archives in `directory`, oldest first (their names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if SCHEDULED_NAME.match(p.name) and p.is_file())


def run_scheduled_backup(settings: conf.BackupSettings) -> Path:
    """Write one archive into settings.directory and delete the oldest beyond `keep`.

    Only files named like scheduled archives are ever deleted (not an admin's own
    backups kept in the same directory).

    Returns:
        The new archive's path.
    """
    assert settings.directory is not None
    settings.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = settings.directory / f"portway-backup-{stamp}.tar.gz"
    create_backup(target)
    for old in scheduled_backups(settings.directory)[: -settings.keep]:
        old.unlink(missing_ok=True)
    return target


class BackupScheduler:
    """The background thread of `portway serve` (start() / stop()); does nothing when
    PORTWAY_BACKUP_DIR is unset."""

    def __init__(self, settings: conf.BackupSettings | None = None) -> None:
        self.settings = settings or conf.backup_settings()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backups", daemon=True)

    def start(self) -> BackupScheduler:
        if self.settings.directory is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _due_in(self) -> float:
        """Seconds until the next backup: one interval after the newest scheduled one
        (a restart does not postpone a daily backup forever, nor repeat it at once)."""
        assert self.settings.directory is not None
        existing = scheduled_backups(self.settings.directory)
        if not existing:
            return 0.0
        age = dt.datetime.now(dt.UTC).timestamp() - existing[-1].stat().st_mtime
        return max(0.0, self.settings.interval - age)

    def _run(self) -> None:
        while not self._stop.wait(self._due_in()):
            try:
                path = run_scheduled_backup(self.settings)
                log.info("scheduled backup written to %s", path)
            except Exception:
                log.exception("scheduled backup failed")
                if self._stop.wait(min(self.settings.interval, 3600)):
                    break
            finally:
                close_old_connections()
