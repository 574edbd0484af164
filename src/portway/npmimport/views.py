"""The admin page "Import from NPM": upload NPM's data folder, read the dry-run report,
confirm. The upload is unpacked (portway.npmimport.archive) into
`<data_dir>/npm-import/<token>/` (0700) and removed after the import or after an hour."""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portway.admin_server import MAX_REQUEST_BODY_BYTES
from portway.npmimport.archive import ArchiveError, Extracted, extract, locate
from portway.npmimport.services import Report, import_npm
from portway.npmimport.source import NpmDatabase, NpmFiles, SourceError
from portway.web.decorators import page

# The admin server refuses any larger body (413) before a view runs; NPM's database,
# certificates and access files fit easily (leave out its logs/ folder).
MAX_UPLOAD_BYTES = MAX_REQUEST_BODY_BYTES
KEEP_SECONDS = 3600
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _workdir() -> Path:
    return Path(settings.DATA_DIR) / "npm-import"


def _sweep() -> None:
    """Remove uploads left unconfirmed for more than an hour."""
    base = _workdir()
    if base.is_dir():
        for entry in base.iterdir():
            if time.time() - entry.lstat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)


def _locate(token: str) -> Extracted:
    root = _workdir() / token / "files"
    if not _TOKEN.match(token) or not root.is_dir():
        raise ArchiveError("this upload is gone (imported already, or older than an hour)")
    return locate(root)


def _run(request: HttpRequest, found: Extracted, dry_run: bool) -> Report:
    database = NpmDatabase.open_sqlite(found.sqlite)  # type: ignore[arg-type]
    database.label = "the uploaded NPM data folder"
    files = NpmFiles(found.data, found.letsencrypt)
    return import_npm(database, files, request.user, dry_run=dry_run)


@page
def import_page(request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST action=upload: unpack, dry run, show the report with a
    confirm button. POST action=confirm: import the unpacked upload and apply."""
    if not request.user.is_admin:
        raise PermissionDenied("Only administrators may import from Nginx Proxy Manager")
    context: dict = {"section": "nginx", "max_mib": MAX_UPLOAD_BYTES >> 20}
    status = 200
    action = request.POST.get("action") if request.method == "POST" else None
    try:
        if action == "upload":
            _sweep()
            upload = request.FILES.get("archive")
            if upload is None:
                raise ArchiveError("choose the archive of NPM's data folder")
            if upload.size > MAX_UPLOAD_BYTES:
                raise ArchiveError(f"the archive is larger than {MAX_UPLOAD_BYTES >> 20} MiB")
            token = secrets.token_hex(16)
            folder = _workdir() / token
            folder.mkdir(mode=0o700, parents=True)
            saved = folder / "upload"
            with saved.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            try:
                found = extract(saved, folder / "files")
            except ArchiveError:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            saved.unlink()
            context.update(report=_run(request, found, dry_run=True), token=token)
            context["links"] = found.skipped_links
        elif action == "confirm":
            token = request.POST.get("token", "")
            found = _locate(token)
            report = _run(request, found, dry_run=False)
            shutil.rmtree(_workdir() / token, ignore_errors=True)
            if report.imported:
                from portway.nginx.engine import request_apply

                request_apply()
            context.update(report=report, done=True)
    except (ArchiveError, SourceError) as exc:
        context["error"] = str(exc)
        status = 400
    return render(request, "npmimport/import.html", context, status=status)
