"""One `portway serve` per installation.

Two servers on one data directory fight over the `live` symlink, nginx's pid file and
the ports, and the loser marks every host offline. Two servers on one MariaDB or
PostgreSQL database (with different data directories) each render and apply the same
hosts into their own nginx and undo each other's certificate work. So `portway serve`
holds two locks for its whole lifetime:

- `DataDirLock`: flock(2) on `<data>/portway.lock`, taken before anything else under the
  data directory is written (Django's settings create the secret key and static dir,
  migrations write the SQLite file), so a refused second start changes nothing there.
  The kernel releases it when the process dies, even by SIGKILL: no stale lock files.
- `DatabaseLock`: a session-level advisory lock on a connection of its own
  (PostgreSQL `pg_try_advisory_lock`, MariaDB/MySQL `GET_LOCK`), released by the server
  when that connection ends, so also when the process is killed. For SQLite (whose
  DB_SQLITE_FILE may lie outside the data directory) it is flock(2) on the database
  file itself: SQLite locks with fcntl(2) record locks, which on Linux are independent
  of flock, so the two never interfere.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("portway")

LOCK_FILE_NAME = "portway.lock"
# Any fixed 64-bit number: PostgreSQL advisory locks are per database, so one key suffices.
_PG_LOCK_KEY = 0x706F72747761790  # "portway"
_KEEPALIVE_SECONDS = 60.0


def _lock_text(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace")


def running_server(data_dir: Path) -> tuple[int, dict[str, Any]] | None:
    """(pid, listeners recorded by DataDirLock.describe, {} if none yet) of the
    `portway serve` holding `<data_dir>/portway.lock`; None when no server holds it.
    The pid is -1 when the file does not hold one. Creates nothing."""
    try:
        fd = os.open(data_dir / LOCK_FILE_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            # a shared lock fails while the server holds its exclusive one
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            first, _, rest = _lock_text(fd).partition("\n")
            pid = int(first) if first.strip().isdigit() else -1
            try:
                listeners = json.loads(rest.split("\n", 1)[0]) if rest.strip() else {}
            except ValueError:
                listeners = {}
            return pid, listeners if isinstance(listeners, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class AlreadyRunning(RuntimeError):
    """Another `portway serve` holds the installation; the message names it."""


class DataDirLock:
    """An exclusive flock on `<data_dir>/portway.lock`, holding the owner's pid.

    Args:
        data_dir: the installation's data directory (created 0700 if missing).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock without waiting.

        Raises:
            AlreadyRunning: another process holds it (message: its pid and the data dir).
            OSError: the data directory or lock file cannot be created.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # No O_TRUNC: a refused start must not modify the running server's lock file.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_text(fd).split("\n", 1)[0].strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another portway serve (pid {owner}) is running on data directory "
                f"{self.data_dir}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def describe(self, listeners: dict[str, Any]) -> None:
        """Record what this server listens on after its pid in the lock file (one JSON
        line), for `portway status`: the settings file may have changed since the start.

        Args:
            listeners: JSON-serialisable {setting name: value} (ports, bind addresses).
        """
        if self._fd is None:
            raise RuntimeError("describe() before acquire()")
        text = f"{os.getpid()}\n{json.dumps(listeners, sort_keys=True)}\n".encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text, 0)

    def release(self) -> None:
        """Drop the lock (the process exiting does the same)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class DatabaseLock:
    """A session advisory lock held on a dedicated connection for the server's lifetime.

    The connection is opened with the driver directly (not Django's per-thread
    connections, which Django closes and reopens at will); a keep-alive thread pings it
    and takes the lock again on a new connection if the old one was lost (e.g. the
    database restarted).

    Args:
        database: Django's DATABASES["default"] dict.
        holder: text identifying this server to a refused second one (pid, data dir).
    """

    def __init__(self, database: dict[str, Any], holder: str) -> None:
        self.database = database
        self.holder = holder[:60]
        engine = database["ENGINE"]
        self.kind = (
            "postgresql" if "postgresql" in engine else "mysql" if "mysql" in engine else None
        )
        self._conn: Any = None
        self._sqlite_fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _mysql_lock_name(self) -> str:
        # GET_LOCK names are server-wide: the database name makes them per database.
        return f"portway:{self.database['NAME']}"[:64]

    def acquire(self) -> DatabaseLock:
        """Take the lock without waiting; a no-op for SQLite.

        Raises:
            AlreadyRunning: another server holds the database (message names it).
        """
        if self.kind is None:
            self._lock_sqlite_file(Path(self.database["NAME"]))
            return self
        self._conn = self._take()
        self._thread = threading.Thread(target=self._keepalive, name="database-lock", daemon=True)
        self._thread.start()
        return self

    def _lock_sqlite_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _flock_holder(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"another portway serve (pid {holder or 'unknown'}) is using the SQLite "
                f"database {path}; stop it first"
            ) from None
        self._sqlite_fd = fd

    def release(self) -> None:
        """Stop the keep-alive and close the connection (which releases the lock)."""
        self._stop.set()
        if self._sqlite_fd is not None:
            os.close(self._sqlite_fd)
            self._sqlite_fd = None
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a dead connection holds no lock
                self._conn.close()
            self._conn = None

    def _take(self) -> Any:
        conn = self._connect()
        try:
            if self.kind == "postgresql":
                acquired = conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (_PG_LOCK_KEY,)
                ).fetchone()[0]
            else:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT GET_LOCK(%s, 0)", (self._mysql_lock_name,))
                    acquired = cursor.fetchone()[0] == 1
            if not acquired:
                raise AlreadyRunning(
                    f"another portway serve ({self._describe_holder(conn)}) is using "
                    f"database {self.database['NAME']!r} on {self.database['HOST']}; "
                    "stop it first"
                )
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> Any:
        db = self.database
        if self.kind == "postgresql":
            import psycopg

            return psycopg.connect(
                host=db["HOST"],
                port=int(db.get("PORT") or 5432),
                user=db["USER"],
                password=db.get("PASSWORD") or "",
                dbname=db["NAME"],
                application_name=self.holder,
                autocommit=True,
                connect_timeout=10,
            )
        import pymysql

        conn = pymysql.connect(
            host=db["HOST"],
            port=int(db.get("PORT") or 3306),
            user=db["USER"],
            password=db.get("PASSWORD") or "",
            database=db["NAME"],
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=10,
            program_name=self.holder,
        )
        with conn.cursor() as cursor:
            # An idle connection is dropped after wait_timeout (8 h by default), and the
            # lock with it; the keep-alive pings well within any sane value.
            cursor.execute("SET SESSION wait_timeout = 86400")
        return conn

    def _describe_holder(self, conn: Any) -> str:
        """Who holds the lock, as far as the database can say."""
        try:
            if self.kind == "postgresql":
                row = conn.execute(
                    "SELECT a.application_name, a.client_addr FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                    (_PG_LOCK_KEY,),
                ).fetchone()
            else:
                row = self._mysql_holder(conn)
        except Exception:  # the refusal matters, the details are a courtesy
            log.debug("could not identify the lock holder", exc_info=True)
            row = None
        if not row:
            return "holder unknown"
        name, address = row
        return f"{name or 'holder unknown'}, connected from {address or 'a local socket'}"

    def _mysql_holder(self, conn: Any) -> tuple[str | None, str | None] | None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT IS_USED_LOCK(%s)", (self._mysql_lock_name,))
            holder_id = cursor.fetchone()[0]
            if holder_id is None:
                return None
            cursor.execute(
                "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = %s", (holder_id,)
            )
            host = (cursor.fetchone() or [None])[0]
            name = None
            try:  # connection attributes need performance_schema, often off in MariaDB
                cursor.execute(
                    "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
                    "WHERE PROCESSLIST_ID = %s AND ATTR_NAME = 'program_name'",
                    (holder_id,),
                )
                name = (cursor.fetchone() or [None])[0]
            except Exception:
                name = None
            return (name or f"connection {holder_id}", host)

    def _keepalive(self) -> None:
        while not self._stop.wait(_KEEPALIVE_SECONDS):
            try:
                if self.kind == "postgresql":
                    self._conn.execute("SELECT 1")
                else:
                    self._conn.ping(reconnect=False)
                continue
            except Exception:
                log.warning("lost the database lock's connection; taking the lock again")
            with contextlib.suppress(Exception):  # already broken
                self._conn.close()
            try:
                self._conn = self._take()
            except AlreadyRunning as exc:
                log.error("database lock lost to another server: %s", exc)
            except Exception:
                log.warning("could not take the database lock again; retrying", exc_info=True)


def _flock_holder(fd: int) -> str | None:
    """PID holding a flock on the file open as `fd`, from /proc/locks (Linux)."""
    info = os.fstat(fd)
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
            return fields[4]
    return None
