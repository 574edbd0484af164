"""Incremental reading of the hosts an apply serves: only changed rows are loaded.

An apply at 10,000 hosts must not read and convert 10,000 rows when one changed. Every
apply reads only a version per enabled row (primary key, modified_on, certificate and
access list ids), the version of each certificate in use (its row's modified_on and its
files' identity, so a renewal that rewrites the files is seen even before the row is
saved) and the access lists in use (few, and a list's items and clients have their
own rows). A row whose version is unchanged keeps the spec built last time.

Rows changed by a queryset `update()` without touching modified_on are seen through the
certificate and access list ids, the only fields such updates set (certificate
issuance switches a host to its new certificate that way).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from portway.nginx import kinds
from portway.nginx.render import Paths, SiteSpec

# (modified_on, certificate version, access list spec): what a host's spec depends on
HostVersion = tuple[Any, ...]


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of `path`, None when it does not exist. Certificate
    files are replaced by rename(2), so new content means a new inode."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@dataclass
class HostCache:
    """Specs of the enabled rows of every kind (portway.nginx.kinds.KINDS), by host key.

    `load()` returns the specs in a stable order (kind, then id) and the rows' versions.
    `loaded` counts the rows read in full by the last `load()` (a benchmark and test aid).
    """

    _entries: dict[str, tuple[HostVersion, SiteSpec]] = field(default_factory=dict)
    loaded: int = 0

    def clear(self) -> None:
        """Forget every spec: the next load reads every row."""
        self._entries.clear()

    def load(self) -> tuple[list[SiteSpec], dict[str, dt.datetime]]:
        """(specs of every enabled row, host key → modified_on when read).

        Raises whatever the database raises.
        """
        from portway.access.models import AccessList
        from portway.access.services import spec_of
        from portway.certificates.models import Certificate

        paths = Paths(Path(settings.DATA_DIR))
        rows: dict[kinds.SiteKind, list[tuple[Any, ...]]] = {}
        for kind in kinds.KINDS:
            model = kind.rows().model
            has_access = any(f.name == "access_list_id" for f in model._meta.get_fields())
            columns = ["pk", "modified_on", "certificate_id"]
            if has_access:
                columns.append("access_list_id")
            found = kind.rows().filter(enabled=True).order_by("id").values_list(*columns)
            rows[kind] = [(*row, 0) if not has_access else row for row in found]

        cert_ids = {row[2] for kind_rows in rows.values() for row in kind_rows if row[2]}
        cert_versions: dict[int, tuple[Any, ...]] = {}
        if cert_ids:
            for pk, modified_on in Certificate.objects.filter(pk__in=cert_ids).values_list(
                "pk", "modified_on"
            ):
                directory = Path(settings.DATA_DIR) / "certificates" / str(pk)
                cert_versions[pk] = (
                    modified_on,
                    _file_identity(directory / "fullchain.pem"),
                    _file_identity(directory / "privkey.pem"),
                )
        list_ids = {row[3] for kind_rows in rows.values() for row in kind_rows if row[3]}
        access = {}
        if list_ids:
            lists = AccessList.objects.filter(pk__in=list_ids).prefetch_related("items", "clients")
            access = {a.pk: spec_of(a, paths) for a in lists}

        wanted: dict[str, HostVersion] = {}
        stale: dict[kinds.SiteKind, dict[int, str]] = {}
        for kind, kind_rows in rows.items():
            for pk, modified_on, cert_id, list_id in kind_rows:
                key = f"{kind.prefix}-{pk}"
                version = (
                    modified_on,
                    cert_id,
                    cert_versions.get(cert_id),
                    access.get(list_id) if list_id else None,
                )
                wanted[key] = version
                cached = self._entries.get(key)
                if cached is None or cached[0] != version:
                    stale.setdefault(kind, {})[pk] = key

        for key in set(self._entries) - set(wanted):
            del self._entries[key]
        self.loaded = 0
        for kind, pks in stale.items():
            fresh = kind.rows().filter(pk__in=list(pks), enabled=True).select_related("certificate")
            for row in fresh:
                key = pks[row.pk]
                list_id = getattr(row, "access_list_id", 0)
                version = (
                    row.modified_on,
                    row.certificate_id,
                    cert_versions.get(row.certificate_id),
                    access.get(list_id) if list_id else None,
                )
                if version != wanted[key]:
                    # changed between the two queries: the apply that change requested
                    # reads it again; this one serves what it read first
                    wanted[key] = version
                self._entries[key] = (version, kind.spec(row, access.get(list_id)))
                self.loaded += 1

        specs: list[SiteSpec] = []
        versions: dict[str, dt.datetime] = {}
        for kind, kind_rows in rows.items():
            for row in kind_rows:
                key = f"{kind.prefix}-{row[0]}"
                entry = self._entries.get(key)
                if entry is None:  # deleted or disabled between the two queries
                    continue
                specs.append(entry[1])
                versions[key] = entry[0][0]
        return specs, versions
