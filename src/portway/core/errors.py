"""Domain errors raised by services and turned into HTTP answers by the API and the UI.

Services never return HTTP responses; they raise these, and both the API (NPM's
`{"error": {"code", "message"}}` body) and the HTML forms (inline messages) render them.
"""

from __future__ import annotations


class PortwayError(Exception):
    """Base class: `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FieldError(PortwayError):
    """A request field is invalid. `field` is a slash path such as `domain_names/0`."""

    status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"data/{field} {reason}")
        self.field = field
        self.reason = reason


class BadRequest(PortwayError):
    """The request is well-formed but not acceptable now (e.g. host already enabled)."""

    status = 400


class NotAuthenticated(PortwayError):
    status = 401


class PermissionDenied(PortwayError):
    status = 403


class NotFound(PortwayError):
    status = 404


class Conflict(PortwayError):
    """The object is in use (e.g. a certificate that hosts still reference)."""

    status = 409


class InvalidFields(FieldError):
    """Several fields are invalid at once. `errors` maps field path → reason.

    The API answers with all of them joined; HTML forms show each beside its input.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        first_field, first_reason = next(iter(errors.items()))
        super().__init__(first_field, first_reason)
        self.errors = errors
        self.message = "; ".join(f"data/{field} {reason}" for field, reason in errors.items())
        self.args = (self.message,)


class TooManyRequests(PortwayError):
    """Too many failed attempts; `retry_after` is the whole seconds to wait (Retry-After)."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Unavailable(PortwayError):
    """The machine, not the request, is at fault: the database is locked, read-only or
    unreachable, or the disk is full. Trying again later (after the operator acted) works.

    `retry_after` is a hint in seconds for the Retry-After header, or None.
    """

    status = 503

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# SQLite primary result codes (https://www.sqlite.org/rescode.html)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_FULL, _SQLITE_CANTOPEN = 13, 14
# MariaDB/MySQL error numbers (args[0] of PyMySQL's errors)
_MYSQL_BUSY = {1205, 1213}  # lock wait timeout, deadlock
_MYSQL_FULL = {1021, 1114}  # disk full, table is full
_MYSQL_READONLY = {1290, 1792}  # --read-only server, read-only transaction
_MYSQL_UNREACHABLE = {2002, 2003, 2006, 2013, 1040, 1053}
# PostgreSQL SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_BUSY = {"55P03", "40P01", "40001"}  # lock_not_available, deadlock, serialization
_PG_FULL = {"53100", "53200"}  # disk_full, out_of_memory
_PG_READONLY = {"25006"}  # read_only_sql_transaction (a hot standby)

BUSY = (
    "The database is busy: another process has kept it locked for longer than Portway "
    "waits. Try again in a moment; if this keeps happening, look for a backup job or "
    "another program holding the database open."
)
READ_ONLY = (
    "The database is read-only, so Portway cannot save anything. Make the database (and "
    "the file system it is on) writable again, then try again."
)
DISK_FULL = (
    "The disk holding Portway's data is full. Free some space on it (see `df -h` on the "
    "server), then try again."
)
FILES_READ_ONLY = (
    "The file system holding Portway's data is mounted read-only. Remount it read-write, "
    "then try again."
)
DISK_ERROR = (
    "Reading or writing Portway's data failed with an I/O error. Check the disk and the "
    "system log on the server, then try again."
)
UNREACHABLE = (
    "Portway cannot reach its database. Check that the database server is running and "
    "reachable, then try again; the Portway log has the details."
)


_NEARLY_FULL_BYTES = 1 << 20


def _data_disk_full() -> bool:
    """True when the file system of the data directory or the SQLite file is (nearly) full.

    Counts the blocks reserved for root (`f_bfree`): Portway often runs as root.
    """
    import os
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    places = [Path(settings.DATA_DIR)]
    if connection.vendor == "sqlite":
        places.append(Path(str(connection.settings_dict["NAME"])).parent)
    for place in places:
        try:
            stats = os.statvfs(place)
        except OSError:
            continue
        if stats.f_bfree * stats.f_frsize < _NEARLY_FULL_BYTES:
            return True
    return False


def unavailable(exc: BaseException) -> Unavailable | None:
    """Classify an error raised while serving a request: an `Unavailable` with a message
    an operator can act on when the cause is the database or the disk, None otherwise.

    Looks through the exception chain (Django wraps driver errors as `__cause__`):
    sqlite3 errors by `sqlite_errorcode`, PyMySQL by error number, psycopg by SQLSTATE,
    OSError by errno (ENOSPC, EDQUOT, EROFS, EIO). Programming and integrity errors are
    not classified: they are bugs (or gaps in validation), answered with 500.
    """
    import errno
    import sqlite3

    from django.db import OperationalError

    seen: set[int] = set()
    from_sqlite = False
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(current, ConnectionError):
            if current.errno in (errno.ENOSPC, errno.EDQUOT):
                return Unavailable(DISK_FULL)
            if current.errno == errno.EROFS:
                return Unavailable(FILES_READ_ONLY)
            if current.errno == errno.EIO:
                return Unavailable(DISK_FULL if _data_disk_full() else DISK_ERROR)
        if isinstance(current, sqlite3.Error):
            from_sqlite = True
            code = (getattr(current, "sqlite_errorcode", 0) or 0) & 0xFF
            if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
                return Unavailable(BUSY, retry_after=5)
            if code == _SQLITE_READONLY:
                return Unavailable(READ_ONLY)
            if code == _SQLITE_FULL:
                return Unavailable(DISK_FULL)
            if code in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
                # SQLite reports a full disk as an I/O error when its shared-memory file
                # or a new journal cannot get space
                return Unavailable(DISK_FULL if _data_disk_full() else DISK_ERROR)
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str):
            if sqlstate in _PG_BUSY:
                return Unavailable(BUSY, retry_after=5)
            if sqlstate in _PG_FULL:
                return Unavailable(DISK_FULL)
            if sqlstate in _PG_READONLY:
                return Unavailable(READ_ONLY)
            if sqlstate.startswith(("08", "57P")):  # connection exception, shutdown
                return Unavailable(UNREACHABLE, retry_after=5)
        if type(current).__module__.startswith("pymysql") and current.args:
            number = current.args[0]
            if number in _MYSQL_BUSY:
                return Unavailable(BUSY, retry_after=5)
            if number in _MYSQL_FULL:
                return Unavailable(DISK_FULL)
            if number in _MYSQL_READONLY:
                return Unavailable(READ_ONLY)
            if number in _MYSQL_UNREACHABLE:
                return Unavailable(UNREACHABLE, retry_after=5)
        current = current.__cause__ or current.__context__
    # A server database's other operational errors are about the connection; SQLite's
    # generic SQLITE_ERROR ("no such table") is a broken installation, a 500.
    if isinstance(exc, OperationalError) and not from_sqlite:
        return Unavailable(UNREACHABLE, retry_after=5)
    return None
