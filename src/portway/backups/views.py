"""UI: Settings → Backups (administrators): the schedule, the scheduled archives, and
"Back up now". Archives are not downloadable: they hold every private key, which never
leaves Portway through the UI or the API; copy them off the machine yourself."""

from __future__ import annotations

import datetime as dt
import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portway import conf
from portway.backups.archive import BackupError
from portway.backups.schedule import run_scheduled_backup, scheduled_backups
from portway.web.decorators import page

log = logging.getLogger("portway.backups")


@page
def backups(request: HttpRequest) -> HttpResponse:
    """The Backups settings page (administrators; others are told it is theirs)."""
    settings = conf.backup_settings()
    archives = []
    if request.user.is_admin and settings.directory is not None:
        for path in reversed(scheduled_backups(settings.directory)):
            info = path.stat()
            archives.append(
                {
                    "name": path.name,
                    "size": info.st_size,
                    "created": dt.datetime.fromtimestamp(info.st_mtime, dt.UTC),
                }
            )
    return render(
        request,
        "backups/backups.html",
        {
            "title": "Backups",
            "is_admin": request.user.is_admin,
            "settings": settings,
            "interval_hours": settings.interval / 3600,
            "archives": archives,
        },
    )


@page
@require_POST
def backup_now(request: HttpRequest) -> HttpResponse:
    """Write a scheduled-style archive now (counted in the kept number)."""
    settings = conf.backup_settings()
    if not request.user.is_admin:
        messages.error(request, "Only administrators make backups.")
    elif settings.directory is None:
        messages.error(request, "Set PORTWAY_BACKUP_DIR to make backups from here.")
    else:
        try:
            path = run_scheduled_backup(settings)
        except (BackupError, OSError) as exc:
            log.exception("backup from the UI failed")
            messages.error(request, f"The backup failed: {exc}")
        else:
            messages.success(request, f"Backup written to {path}.")
    return redirect("backups:backups")
