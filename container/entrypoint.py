#!/opt/portway/bin/python
"""Entry point of Portway's container image (run by tini, which forwards signals to it).

    portway-entrypoint [serve]      first-start NPM import, then exec `portway serve`
    portway-entrypoint healthcheck  exit 0 when the admin API answers GET /api/ with 200
    portway-entrypoint ARGS...      exec `portway ARGS...` (e.g. `createadmin ...`)

Portway's state lives in PORTWAY_DATA_DIR (the image sets /data/portway), beside what an
Nginx Proxy Manager installation keeps in /data. On the first start, when /data (or NPM's
DB_MYSQL_* / DB_POSTGRES_* database) holds an NPM installation and Portway has no database
yet, `portway import-npm` copies it into Portway's own database and data directory.
NPM's files and tables are only ever read (SQLite is opened immutable), so the same
volumes still start NPM afterwards.

PUID/PGID (NPM's names): when set, Portway and nginx run as that user and group (with only
the capability to bind ports below 1024), and Portway's data directory is owned by them.

`exec` keeps Portway the direct child of tini: `docker stop`'s SIGTERM reaches `portway
serve`, which stops nginx and exits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

NPM_DATA = Path("/data")
NPM_LETSENCRYPT = Path("/etc/letsencrypt")
# Tables every NPM database has (knex migrations of NPM 2.x); Portway's are app_model.
NPM_TABLES = frozenset({"proxy_host", "certificate", "user"})
PORTWAY_TABLE = "django_migrations"
DB_WAIT_SECONDS = 60
IMPORT_MARKER = "npm-import.json"


def log(message: str) -> None:
    """One line on stderr, prefixed so it stands out from Portway's own log."""
    print(f"portway-entrypoint: {message}", file=sys.stderr, flush=True)


def env(name: str) -> str:
    return (os.environ.get(name) or "").strip()


def data_dir() -> Path:
    return Path(env("PORTWAY_DATA_DIR") or "/data/portway")


# --- which databases hold what ------------------------------------------------------------


def sqlite_tables(path: Path) -> set[str] | None:
    """Table names of an SQLite file, opened immutable (nothing written, not even a journal);
    None when the file is missing or is not an SQLite database."""
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return {row[0] for row in rows}
        finally:
            connection.close()
    except sqlite3.DatabaseError:
        return None


def server_tables() -> set[str] | None:
    """Table names in the MariaDB/MySQL or PostgreSQL database of DB_MYSQL_* / DB_POSTGRES_*
    (the one Portway will use), waiting up to DB_WAIT_SECONDS for the server to accept
    connections (a compose database service starts beside this one); None: no server DB."""
    deadline = time.monotonic() + DB_WAIT_SECONDS
    while True:
        try:
            if env("DB_MYSQL_HOST"):
                import pymysql

                connection = pymysql.connect(
                    host=env("DB_MYSQL_HOST"),
                    port=int(env("DB_MYSQL_PORT") or 3306),
                    user=env("DB_MYSQL_USER") or "root",
                    password=os.environ.get("DB_MYSQL_PASSWORD", ""),
                    database=env("DB_MYSQL_NAME") or "portway",
                    connect_timeout=5,
                )
                with connection, connection.cursor() as cursor:
                    cursor.execute("SHOW TABLES")
                    return {row[0] for row in cursor.fetchall()}
            if env("DB_POSTGRES_HOST"):
                import psycopg

                with psycopg.connect(
                    host=env("DB_POSTGRES_HOST"),
                    port=int(env("DB_POSTGRES_PORT") or 5432),
                    user=env("DB_POSTGRES_USER") or "postgres",
                    password=os.environ.get("DB_POSTGRES_PASSWORD", ""),
                    dbname=env("DB_POSTGRES_NAME") or "portway",
                    connect_timeout=5,
                ) as connection:
                    rows = connection.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    ).fetchall()
                    return {row[0] for row in rows}
            return None
        except Exception as exc:  # any driver error: the server may still be starting
            if time.monotonic() > deadline:
                log(f"database not reachable after {DB_WAIT_SECONDS} s ({exc}); starting anyway")
                return None
            time.sleep(2)


def npm_sqlite_file() -> Path | None:
    """NPM's SQLite database when there is one: DB_SQLITE_FILE if it is NPM's, else
    /data/database.sqlite."""
    candidates = [Path(env("DB_SQLITE_FILE"))] if env("DB_SQLITE_FILE") else []
    candidates.append(NPM_DATA / "database.sqlite")
    for candidate in candidates:
        tables = sqlite_tables(candidate)
        if tables and tables >= NPM_TABLES and PORTWAY_TABLE not in tables:
            return candidate
    return None


# --- first-start import -------------------------------------------------------------------


def import_npm_available() -> bool:
    probe = subprocess.run(
        ["portway", "import-npm", "--help"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def write_marker(state: str, source: str) -> None:
    marker = data_dir() / IMPORT_MARKER
    marker.write_text(json.dumps({"state": state, "source": source, "time": time.time()}) + "\n")
    marker.chmod(0o600)


def release_npm_sqlite_file() -> Path | None:
    """NPM's SQLite database, if there is one; DB_SQLITE_FILE is dropped from the
    environment when it names that file, on every start (not only the first).

    NPM's compose sets DB_SQLITE_FILE=/data/database.sqlite: that file stays NPM's, read
    by the import and never opened by Portway, which uses /data/portway/database.sqlite.
    """
    npm_file = npm_sqlite_file()
    if npm_file is not None and env("DB_SQLITE_FILE") and Path(env("DB_SQLITE_FILE")) == npm_file:
        log(f"DB_SQLITE_FILE={npm_file} is NPM's database: Portway reads it, never writes")
        del os.environ["DB_SQLITE_FILE"]
    return npm_file


def first_start_import(npm_file: Path | None) -> int:
    """Import NPM's installation once, when there is one and Portway has no database yet.

    npm_file: NPM's SQLite database (release_npm_sqlite_file), None when there is none.

    Returns 0 to go on starting, or an exit status: an import failed (now or on an earlier
    start that did not finish), which a person must look at before Portway starts empty.
    """
    marker = data_dir() / IMPORT_MARKER
    if marker.exists():
        state = json.loads(marker.read_text() or "{}").get("state")
        if state == "running":
            log(
                f"an earlier import of NPM's data did not finish ({marker}). Portway's "
                "database may be half-filled: remove Portway's database (and this file) to "
                "import again, or remove only this file to start with what was imported."
            )
            return 1
        return 0

    command = [
        "portway",
        "import-npm",
        "--data",
        str(NPM_DATA),
        "--letsencrypt",
        str(NPM_LETSENCRYPT),
    ]
    if env("DB_MYSQL_HOST") or env("DB_POSTGRES_HOST"):
        tables = server_tables()
        if tables is None or PORTWAY_TABLE in tables or not tables >= NPM_TABLES:
            return 0  # no NPM tables, or Portway already has its own there
        engine = "MariaDB/MySQL" if env("DB_MYSQL_HOST") else "PostgreSQL"
        source = f"NPM's {engine} database"
        log(f"{source}: Portway creates its own tables beside NPM's, which it never writes")
    else:
        if npm_file is None:
            return 0
        portway_file = Path(env("DB_SQLITE_FILE") or data_dir() / "database.sqlite")
        if portway_file.resolve() == npm_file.resolve():
            log(
                f"Portway's database would be NPM's {npm_file} (PORTWAY_DATA_DIR="
                f"{data_dir()}): refused, NPM's files are never written. Leave "
                "PORTWAY_DATA_DIR at the image's /data/portway."
            )
            return 2
        if sqlite_tables(portway_file):
            return 0
        command += ["--sqlite", str(npm_file)]
        source = str(npm_file)

    if not import_npm_available():
        log(
            f"found an NPM installation ({source}) but this Portway has no `import-npm` "
            "command: NOT imported; Portway starts empty beside NPM's files (untouched)"
        )
        write_marker("unavailable", source)
        return 0
    log(f"first start on an NPM installation: importing {source} (NPM's files stay as they are)")
    write_marker("running", source)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        log(f"`{' '.join(command)}` failed (exit {result.returncode}); Portway not started")
        return result.returncode
    write_marker("done", source)
    log("NPM import finished")
    return 0


# --- users --------------------------------------------------------------------------------


def _id(name: str) -> int | None:
    raw = env(name)
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > 2**31 - 2:
        log(f"{name}={raw!r} is not a numeric user/group id")
        raise SystemExit(2)
    return int(raw)


def privilege_prefix() -> list[str]:
    """The command prefix that runs Portway as PUID/PGID (NPM's variables), owning its data
    directory; [] when neither is set or this is not root."""
    uid, gid = _id("PUID"), _id("PGID")
    if os.geteuid() != 0 or (uid in (None, 0) and gid in (None, 0)):
        return []
    uid = 0 if uid is None else uid
    gid = 0 if gid is None else gid
    top = data_dir()
    for directory, dirnames, filenames in os.walk(top):
        for name in [directory, *(os.path.join(directory, n) for n in dirnames + filenames)]:
            os.lchown(name, uid, gid)
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        # ports 80/443 need CAP_NET_BIND_SERVICE; nginx inherits it as an ambient capability
        "--inh-caps=-all,+net_bind_service",
        "--ambient-caps=-all,+net_bind_service",
        "--",
    ]


# --- health -------------------------------------------------------------------------------


def healthcheck() -> int:
    """0 when GET /api/ on the admin port answers 200 (the image's HEALTHCHECK)."""
    host = env("PORTWAY_BIND_ADDRESS") or "127.0.0.1"
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{env('PORTWAY_ADMIN_PORT') or 81}/api/"
    try:
        with urllib.request.urlopen(url, timeout=8) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    args = argv or ["serve"]
    if args == ["healthcheck"]:
        return healthcheck()
    directory = data_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    npm_file = release_npm_sqlite_file()
    if args[0] == "serve":
        status = first_start_import(npm_file)
        if status:
            return status
    command = [*privilege_prefix(), "portway", *args]
    os.execvp(command[0], command)  # Portway replaces this process: tini's direct child


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
