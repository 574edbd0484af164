"""NPM databases of several vintages, for tests: NPM's schema as DDL for SQLite and MariaDB.

Derived by hand from Nginx Proxy Manager's knex migrations
(https://github.com/NginxProxyManager/nginx-proxy-manager, backend/migrations/, read at
commit a62c2a6dc3ab51e6fedc34d3ea3506bc9373953f). Each migration is listed with the
columns it creates, adds or renames, in knex's types: `increments` → an auto-increment
primary key, `integer ... unsigned`, `string` → varchar(255), `text`, `json`,
`dateTime`. A vintage is the migrations an installation of that age has run.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

# (name, type, not null, default); types: id, int, str, text, json, datetime
Column = tuple[str, str, bool, Any]


def _ts() -> list[Column]:
    return [("created_on", "datetime", True, None), ("modified_on", "datetime", True, None)]


_INITIAL: dict[str, list[Column]] = {
    "auth": [
        ("id", "id", True, None),
        *_ts(),
        ("user_id", "int", True, None),
        ("type", "str30", True, None),
        ("secret", "str", True, None),
        ("meta", "json", True, None),
        ("is_deleted", "int", True, 0),
    ],
    "user": [
        ("id", "id", True, None),
        *_ts(),
        ("is_deleted", "int", True, 0),
        ("is_disabled", "int", True, 0),
        ("email", "str", True, None),
        ("name", "str", True, None),
        ("nickname", "str", True, None),
        ("avatar", "str", True, None),
        ("roles", "json", True, None),
    ],
    "user_permission": [
        ("id", "id", True, None),
        *_ts(),
        ("user_id", "int", True, None),
        ("visibility", "str", True, None),
        ("proxy_hosts", "str", True, None),
        ("redirection_hosts", "str", True, None),
        ("dead_hosts", "str", True, None),
        ("streams", "str", True, None),
        ("access_lists", "str", True, None),
        ("certificates", "str", True, None),
    ],
    "proxy_host": [
        ("id", "id", True, None),
        *_ts(),
        ("owner_user_id", "int", True, None),
        ("is_deleted", "int", True, 0),
        ("domain_names", "json", True, None),
        ("forward_ip", "str", True, None),
        ("forward_port", "int", True, None),
        ("access_list_id", "int", True, 0),
        ("certificate_id", "int", True, 0),
        ("ssl_forced", "int", True, 0),
        ("caching_enabled", "int", True, 0),
        ("block_exploits", "int", True, 0),
        ("advanced_config", "text", True, ""),
        ("meta", "json", True, None),
    ],
    "redirection_host": [
        ("id", "id", True, None),
        *_ts(),
        ("owner_user_id", "int", True, None),
        ("is_deleted", "int", True, 0),
        ("domain_names", "json", True, None),
        ("forward_domain_name", "str", True, None),
        ("preserve_path", "int", True, 0),
        ("certificate_id", "int", True, 0),
        ("ssl_forced", "int", True, 0),
        ("block_exploits", "int", True, 0),
        ("advanced_config", "text", True, ""),
        ("meta", "json", True, None),
    ],
    "dead_host": [
        ("id", "id", True, None),
        *_ts(),
        ("owner_user_id", "int", True, None),
        ("is_deleted", "int", True, 0),
        ("domain_names", "json", True, None),
        ("certificate_id", "int", True, 0),
        ("ssl_forced", "int", True, 0),
        ("advanced_config", "text", True, ""),
        ("meta", "json", True, None),
    ],
    "stream": [
        ("id", "id", True, None),
        *_ts(),
        ("owner_user_id", "int", True, None),
        ("is_deleted", "int", True, 0),
        ("incoming_port", "int", True, None),
        ("forward_ip", "str", True, None),
        ("forwarding_port", "int", True, None),
        ("tcp_forwarding", "int", True, 0),
        ("udp_forwarding", "int", True, 0),
        ("meta", "json", True, None),
    ],
    "access_list": [
        ("id", "id", True, None),
        *_ts(),
        ("owner_user_id", "int", True, None),
        ("is_deleted", "int", True, 0),
        ("name", "str", True, None),
        ("meta", "json", True, None),
    ],
    "certificate": [
        ("id", "id", True, None),
        *_ts(),
        ("owner_user_id", "int", True, None),
        ("is_deleted", "int", True, 0),
        ("provider", "str", True, None),
        ("nice_name", "str", True, ""),
        ("domain_names", "json", True, None),
        ("expires_on", "datetime", True, None),
        ("meta", "json", True, None),
    ],
    "access_list_auth": [
        ("id", "id", True, None),
        *_ts(),
        ("access_list_id", "int", True, None),
        ("username", "str", True, None),
        ("password", "str", True, None),
        ("meta", "json", True, None),
    ],
    "audit_log": [
        ("id", "id", True, None),
        *_ts(),
        ("user_id", "int", True, None),
        ("object_type", "str", True, ""),
        ("object_id", "int", True, 0),
        ("action", "str", True, None),
        ("meta", "json", True, None),
    ],
}

# (migration file, [("create", table, columns) | ("add", table, column) |
#                   ("rename", table, old, new) | ("update", table, column, old, new)])
MIGRATIONS: list[tuple[str, list[tuple]]] = [
    ("20180618015850_initial", [("create", t, c) for t, c in _INITIAL.items()]),
    (
        "20180929054513_websockets",
        [("add", "proxy_host", ("allow_websocket_upgrade", "int", True, 0))],
    ),
    ("20181019052346_forward_host", [("rename", "proxy_host", "forward_ip", "forward_host")]),
    (
        "20181113041458_http2_support",
        [
            ("add", t, ("http2_support", "int", True, 0))
            for t in ("proxy_host", "redirection_host", "dead_host")
        ],
    ),
    (
        "20181213013211_forward_scheme",
        [("add", "proxy_host", ("forward_scheme", "str", True, "http"))],
    ),
    (
        "20190104035154_disabled",
        [
            ("add", t, ("enabled", "int", True, 1))
            for t in ("proxy_host", "redirection_host", "dead_host", "stream")
        ],
    ),
    ("20190215115310_customlocations", [("add", "proxy_host", ("locations", "json", False, None))]),
    (
        "20190218060101_hsts",
        [
            ("add", t, (c, "int", True, 0))
            for t in ("proxy_host", "redirection_host", "dead_host")
            for c in ("hsts_enabled", "hsts_subdomains")
        ],
    ),
    (
        "20190227065017_settings",
        [
            (
                "create",
                "setting",
                [
                    ("id", "strkey", True, None),
                    ("name", "str100", True, None),
                    ("description", "str", True, None),
                    ("value", "str", True, None),
                    ("meta", "json", True, None),
                ],
            )
        ],
    ),
    (
        "20200410143839_access_list_client",
        [
            (
                "create",
                "access_list_client",
                [
                    ("id", "id", True, None),
                    *_ts(),
                    ("access_list_id", "int", True, None),
                    ("address", "str", True, None),
                    ("directive", "str", True, None),
                    ("meta", "json", True, None),
                ],
            ),
            ("add", "access_list", ("satify_any", "int", True, 0)),
        ],
    ),
    (
        "20200410143840_access_list_client_fix",
        [("rename", "access_list", "satify_any", "satisfy_any")],
    ),
    ("20201014143841_pass_auth", [("add", "access_list", ("pass_auth", "int", True, 1))]),
    (
        "20210210154702_redirection_scheme",
        [("add", "redirection_host", ("forward_scheme", "str", True, "$scheme"))],
    ),
    (
        "20210210154703_redirection_status_code",
        [("add", "redirection_host", ("forward_http_code", "int", True, 302))],
    ),
    ("20210423103500_stream_domain", [("rename", "stream", "forward_ip", "forwarding_host")]),
    ("20240427161436_stream_ssl", [("add", "stream", ("certificate_id", "int", True, 0))]),
    (
        "20251111090000_redirect_auto_scheme",
        [("update", "redirection_host", "forward_scheme", "$scheme", "auto")],
    ),
    (
        "20260131163528_trust_forwarded_proto",
        [("add", "proxy_host", ("trust_forwarded_proto", "int", True, 0))],
    ),
]

VINTAGES = {
    # NPM 2.0.x (autumn 2018): no forward_scheme, enabled, locations, hsts, settings
    "2018": "20180929054513_websockets",
    # NPM 2.7 (late 2020): access list clients and pass_auth, redirection still fixed
    "2020": "20201014143841_pass_auth",
    # NPM 2.13 (2026): every migration
    "current": "20260131163528_trust_forwarded_proto",
}


def migrations(vintage: str) -> list[tuple[str, list[tuple]]]:
    """The migrations an installation of `vintage` has run, in order."""
    last = VINTAGES[vintage]
    names = [m[0] for m in MIGRATIONS]
    return MIGRATIONS[: names.index(last) + 1]


def _type(kind: str, dialect: str) -> str:
    mysql = dialect == "mysql"
    return {
        "id": "int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY"
        if mysql
        else "integer PRIMARY KEY AUTOINCREMENT NOT NULL",
        "int": "int unsigned" if mysql else "integer",
        "str": "varchar(255)",
        "str30": "varchar(30)",
        "str100": "varchar(100)",
        "strkey": "varchar(255) NOT NULL PRIMARY KEY"
        if mysql
        else "varchar(255) PRIMARY KEY NOT NULL",
        "text": "text",
        "json": "json",
        "datetime": "datetime",
    }[kind]


def _column(column: Column, dialect: str) -> str:
    name, kind, not_null, default = column
    q = "`" if dialect == "mysql" else '"'
    text = f"{q}{name}{q} {_type(kind, dialect)}"
    if kind in ("id", "strkey"):
        return text
    if not_null:
        text += " NOT NULL"
    if default is not None and kind != "text":  # MariaDB takes no default on text
        text += f" DEFAULT '{default}'" if isinstance(default, str) else f" DEFAULT {default}"
    return text


def ddl(vintage: str, dialect: str) -> list[str]:
    """SQL statements that build NPM's schema of `vintage` ("sqlite" or "mysql")."""
    q = "`" if dialect == "mysql" else '"'
    out = []
    for _, steps in migrations(vintage):
        for step in steps:
            if step[0] == "create":
                cols = ", ".join(_column(c, dialect) for c in step[2])
                out.append(f"CREATE TABLE {q}{step[1]}{q} ({cols})")
            elif step[0] == "add":
                out.append(f"ALTER TABLE {q}{step[1]}{q} ADD COLUMN {_column(step[2], dialect)}")
            elif step[0] == "rename":
                out.append(
                    f"ALTER TABLE {q}{step[1]}{q} RENAME COLUMN {q}{step[2]}{q} TO {q}{step[3]}{q}"
                )
            elif step[0] == "update":
                out.append(
                    f"UPDATE {q}{step[1]}{q} SET {q}{step[2]}{q} = '{step[4]}' "
                    f"WHERE {q}{step[2]}{q} = '{step[3]}'"
                )
    return out


def columns(vintage: str) -> dict[str, set[str]]:
    """Each table's columns in `vintage`."""
    found: dict[str, set[str]] = {}
    for _, steps in migrations(vintage):
        for step in steps:
            if step[0] == "create":
                found[step[1]] = {c[0] for c in step[2]}
            elif step[0] == "add":
                found[step[1]].add(step[2][0])
            elif step[0] == "rename":
                found[step[1]].discard(step[2])
                found[step[1]].add(step[3])
    return found


def insert_rows(
    conn: Any, dialect: str, vintage: str, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Insert `rows` (table → row dicts) keeping only columns `vintage` has; JSON encoded."""
    have = columns(vintage)
    q = "`" if dialect == "mysql" else '"'
    mark = "%s" if dialect == "mysql" else "?"
    cursor = conn.cursor()
    for table, table_rows in rows.items():
        if table not in have:
            continue
        for row in table_rows:
            data = {
                k: json.dumps(v) if isinstance(v, (dict, list)) else v
                for k, v in row.items()
                if k in have[table]
            }
            names = ", ".join(f"{q}{k}{q}" for k in data)
            marks = ", ".join(mark for _ in data)
            cursor.execute(
                f"INSERT INTO {q}{table}{q} ({names}) VALUES ({marks})", list(data.values())
            )
    conn.commit()


def build_sqlite(path: str, vintage: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    """An NPM SQLite file of `vintage` holding `rows`."""
    conn = sqlite3.connect(path)
    for statement in ddl(vintage, "sqlite"):
        conn.execute(statement)
    conn.commit()
    insert_rows(conn, "sqlite", vintage, rows)
    conn.close()


def build_mysql(
    settings: dict[str, Any], vintage: str, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """NPM's schema of `vintage` with `rows` in the (existing, empty) MariaDB database."""
    import pymysql

    conn = pymysql.connect(**settings, charset="utf8mb4")
    try:
        with conn.cursor() as cursor:
            for statement in ddl(vintage, "mysql"):
                cursor.execute(statement)
        insert_rows(conn, "mysql", vintage, rows)
    finally:
        conn.close()
