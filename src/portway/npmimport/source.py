"""Reading an NPM installation without changing it: its database and its files.

NPM's schema (https://github.com/NginxProxyManager/nginx-proxy-manager,
backend/migrations/*.js) grew over the years: a column an older installation lacks is
read as the value the later migration gave existing rows (its `defaultTo`).

The SQLite file is opened read-only (`file:...?mode=ro`); MariaDB/MySQL sessions are
put in READ ONLY transactions and only SELECT is sent.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

TABLES = (
    "user",
    "auth",
    "user_permission",
    "certificate",
    "access_list",
    "access_list_auth",
    "access_list_client",
    "proxy_host",
    "redirection_host",
    "dead_host",
    "stream",
    "setting",
)
JSON_COLUMNS = {"meta", "roles", "domain_names", "locations"}
# Columns added by later migrations, with the value existing rows got (NPM's defaultTo).
LATER_COLUMNS: dict[str, dict[str, Any]] = {
    "proxy_host": {
        "allow_websocket_upgrade": 0,  # 20180929054513_websockets
        "http2_support": 0,  # 20181113041458_http2_support
        "forward_scheme": "http",  # 20181213013211_forward_scheme
        "enabled": 1,  # 20190104035154_disabled
        "locations": None,  # 20190215115310_customlocations
        "hsts_enabled": 0,  # 20190218060101_hsts
        "hsts_subdomains": 0,
        "trust_forwarded_proto": 0,  # 20260131163528_trust_forwarded_proto
    },
    "redirection_host": {
        "http2_support": 0,
        "enabled": 1,
        "hsts_enabled": 0,
        "hsts_subdomains": 0,
        "forward_scheme": "$scheme",  # 20210210154702 (20251111090000 renamed it "auto")
        "forward_http_code": 302,  # 20210210154703_redirection_status_code
    },
    "dead_host": {"http2_support": 0, "enabled": 1, "hsts_enabled": 0, "hsts_subdomains": 0},
    "stream": {"enabled": 1, "certificate_id": 0},  # 20190104035154, 20240427161436
    "access_list": {"satisfy_any": 0, "pass_auth": 1},  # 20200410143839/40, 20201014143841
}
# Renamed columns: old name → new name (20181019052346_forward_host, 20210423103500).
RENAMED = {
    "proxy_host": {"forward_ip": "forward_host"},
    "stream": {"forward_ip": "forwarding_host"},
}


class SourceError(Exception):
    """The NPM database cannot be read (message for people)."""


@dataclass(frozen=True)
class MysqlSettings:
    """NPM's DB_MYSQL_* settings."""

    host: str
    port: int = 3306
    user: str = "npm"
    password: str = ""
    name: str = "npm"


def _normalise(table: str, row: dict[str, Any]) -> dict[str, Any]:
    for old, new in RENAMED.get(table, {}).items():
        if old in row and new not in row:
            row[new] = row.pop(old)
    for column, default in LATER_COLUMNS.get(table, {}).items():
        row.setdefault(column, default)
    for column in JSON_COLUMNS & row.keys():
        value = row[column]
        if isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8")
        if isinstance(value, str):
            try:
                row[column] = json.loads(value) if value.strip() else None
            except ValueError:
                row[column] = None
    row["created_on"] = str(row.get("created_on") or "")
    return row


class NpmDatabase:
    """NPM's tables as lists of dicts (every table, every row; NPM's are small)."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]], label: str) -> None:
        self.tables = tables
        self.label = label

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Rows of `table` in id order (no soft-deleted filtering here)."""
        return self.tables.get(table, [])

    @classmethod
    def open_sqlite(cls, path: Path) -> NpmDatabase:
        """Read NPM's SQLite file read-only. Raises SourceError."""
        if not path.is_file():
            raise SourceError(f"NPM's SQLite database {path} does not exist")
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open {path} read-only: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            present = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "proxy_host" not in present:
                raise SourceError(f"{path} is not an NPM database (it has no proxy_host table)")
            tables = {}
            for table in TABLES:
                if table in present:
                    cursor = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608
                    tables[table] = [_normalise(table, dict(r)) for r in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read {path}: {exc}") from exc
        finally:
            conn.close()
        return cls(tables, f"SQLite {path}")

    @classmethod
    def open_mysql(cls, settings: MysqlSettings) -> NpmDatabase:
        """Read NPM's MariaDB/MySQL database in a READ ONLY transaction. Raises SourceError."""
        import pymysql
        import pymysql.cursors

        label = f"MySQL {settings.user}@{settings.host}:{settings.port}/{settings.name}"
        try:
            conn = pymysql.connect(
                host=settings.host,
                port=settings.port,
                user=settings.user,
                password=settings.password,
                database=settings.name,
                charset="utf8mb4",
                cursorclass=pymysql.cursors.DictCursor,
                connect_timeout=10,
            )
        except pymysql.MySQLError as exc:
            raise SourceError(f"cannot connect to {label}: {exc}") from exc
        try:
            with conn.cursor() as cursor:
                cursor.execute("START TRANSACTION READ ONLY")
                cursor.execute("SHOW TABLES")
                present = {next(iter(r.values())) for r in cursor.fetchall()}
                if "proxy_host" not in present:
                    raise SourceError(f"{label} is not an NPM database (no proxy_host table)")
                tables = {}
                for table in TABLES:
                    if table in present:
                        cursor.execute(f"SELECT * FROM `{table}` ORDER BY 1")  # noqa: S608
                        tables[table] = [_normalise(table, dict(r)) for r in cursor.fetchall()]
                cursor.execute("ROLLBACK")
        except pymysql.MySQLError as exc:
            raise SourceError(f"cannot read {label}: {exc}") from exc
        finally:
            conn.close()
        return cls(tables, label)


class NpmFiles:
    """NPM's data/ and letsencrypt/ folders, read only, never outside them.

    data/custom_ssl/npm-<id>/{fullchain,privkey}.pem: custom certificates;
    data/access/<id>: an access list's htpasswd; letsencrypt/live/npm-<id>/: ACME
    certificates (symlinks into archive/; when the links are missing, as in an upload,
    the newest archive/npm-<id>/fullchainN.pem is read).
    """

    MAX_FILE = 1024 * 1024

    def __init__(self, data_dir: Path | None, letsencrypt_dir: Path | None) -> None:
        self.data_dir = data_dir.resolve() if data_dir else None
        self.letsencrypt_dir = letsencrypt_dir.resolve() if letsencrypt_dir else None

    def _read(self, root: Path | None, *parts: str) -> bytes:
        """A file's bytes. Raises SourceError naming the file when it cannot be used."""
        if root is None:
            raise SourceError("the folder was not given")
        path = root.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise SourceError(f"{path} is missing") from exc
        if not real.is_relative_to(root):
            raise SourceError(f"{path} points outside {root}")
        try:
            if real.stat().st_size > self.MAX_FILE:
                raise SourceError(f"{path} is larger than 1 MiB")
            return real.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path} cannot be read: {exc.strerror}") from exc

    def custom_certificate(self, npm_id: int) -> tuple[bytes, bytes]:
        """(fullchain, key) PEMs of custom certificate `npm_id`. Raises SourceError."""
        folder = f"npm-{int(npm_id)}"
        return (
            self._read(self.data_dir, "custom_ssl", folder, "fullchain.pem"),
            self._read(self.data_dir, "custom_ssl", folder, "privkey.pem"),
        )

    def letsencrypt_certificate(self, npm_id: int) -> tuple[bytes, bytes]:
        """(fullchain, key) PEMs of ACME certificate `npm_id`. Raises SourceError."""
        folder = f"npm-{int(npm_id)}"
        try:
            return (
                self._read(self.letsencrypt_dir, "live", folder, "fullchain.pem"),
                self._read(self.letsencrypt_dir, "live", folder, "privkey.pem"),
            )
        except SourceError as live_error:
            archive = self.letsencrypt_dir / "archive" / folder if self.letsencrypt_dir else None
            numbers = []
            if archive is not None and archive.is_dir():
                for path in archive.glob("fullchain*.pem"):
                    digits = path.name[len("fullchain") : -len(".pem")]
                    if digits.isdigit():
                        numbers.append(int(digits))
            if not numbers:
                raise live_error from None
            newest = max(numbers)
            return (
                self._read(self.letsencrypt_dir, "archive", folder, f"fullchain{newest}.pem"),
                self._read(self.letsencrypt_dir, "archive", folder, f"privkey{newest}.pem"),
            )

    def acme_accounts(self) -> list[str]:
        """certbot's ACME accounts (`<server>/<path>/<id>` under letsencrypt/accounts/)."""
        base = self.letsencrypt_dir / "accounts" if self.letsencrypt_dir else None
        if base is None or not base.is_dir():
            return []
        return sorted(
            str(p.parent.relative_to(base)) for p in base.rglob("regr.json") if p.is_file()
        )

    def htpasswd(self, npm_id: int) -> dict[str, str]:
        """username → hash from data/access/<id> (empty when the file is missing)."""
        try:
            text = self._read(self.data_dir, "access", str(int(npm_id))).decode("utf-8")
        except (SourceError, UnicodeDecodeError):
            return {}
        found = {}
        for line in text.splitlines():
            name, colon, hashed = line.strip().partition(":")
            if colon and name and hashed:
                found[name] = hashed
        return found
