"""Runtime configuration read from the environment.

Every setting Portway reads lives here, so README.md's settings table has one source.
Values are read when called (not at import) so tests can point a process elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value Portway cannot use."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _port(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        port = int(raw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a port number") from exc
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name}={port} is outside 1-65535")
    return port


def _flag(name: str) -> bool:
    return (_env(name, "") or "").lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class PortwayConfig:
    """Settings for one Portway installation.

    Attributes:
        data_dir: directory holding the database, generated nginx config, certificates, logs.
        admin_port: TCP port of the admin UI and API.
        http_port / https_port: the proxy's plain and TLS listeners.
        bind_address: address nginx and the admin server listen on; "" means all addresses.
        disable_ipv6: do not add [::] listeners (NPM's DISABLE_IPV6).
        nginx_binary: path of the nginx executable to run.
        resolver: DNS servers nginx uses for upstream names that did not resolve at apply time.
        public_https_port: the HTTPS port clients use, for Force-SSL redirects.
        trusted_proxies: peers whose X-Forwarded-Proto the admin server believes.
        admin_https: the admin UI is only ever reached over HTTPS (cookies always Secure).
        time_zone: IANA zone name (NPM's TZ) of times shown in the UI; logs follow TZ too.
    """

    data_dir: Path
    admin_port: int
    http_port: int
    https_port: int
    bind_address: str
    disable_ipv6: bool
    nginx_binary: str
    resolver: str
    x_frame_options: str
    public_https_port: int = 443
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    admin_https: bool = False
    time_zone: str = "UTC"


DEFAULT_TRUSTED_PROXIES = "127.0.0.1 ::1"


def _networks(name: str, default: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses or CIDR networks separated by spaces or commas; "none" for no address."""
    raw = _env(name, default) or default
    if raw.lower() == "none":
        return ()
    networks = []
    for item in raw.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{name}: {item!r} is not an IP address or network") from exc
    return tuple(networks)


def _time_zone() -> str:
    """TZ (as NPM's image reads it): an IANA zone name such as Europe/Berlin; UTC when unset.

    TZ is a system-wide variable that may hold a POSIX rule (e.g. "CET-1CEST") meant for
    other programs: the UI then shows UTC (logs still follow TZ through the C library)
    rather than refusing to start.
    """
    name = (_env("TZ", "UTC") or "UTC").removeprefix(":")  # POSIX allows TZ=:Area/City
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def load() -> PortwayConfig:
    """Read the configuration from the environment.

    Raises:
        ConfigError: a variable is set to an unusable value.
    """
    data_dir = Path(_env("PORTWAY_DATA_DIR", str(Path.cwd() / "data"))).resolve()  # type: ignore[arg-type]
    x_frame = (_env("X_FRAME_OPTIONS", "DENY") or "DENY").upper()
    if x_frame not in {"DENY", "SAMEORIGIN"}:
        raise ConfigError("X_FRAME_OPTIONS must be DENY or SAMEORIGIN")
    return PortwayConfig(
        data_dir=data_dir,
        admin_port=_port("PORTWAY_ADMIN_PORT", 81),
        http_port=_port("PORTWAY_HTTP_PORT", 80),
        https_port=_port("PORTWAY_HTTPS_PORT", 443),
        bind_address=_env("PORTWAY_BIND_ADDRESS", "") or "",
        disable_ipv6=_flag("DISABLE_IPV6"),
        nginx_binary=_env("PORTWAY_NGINX", "nginx") or "nginx",
        resolver=_env("PORTWAY_RESOLVER", "") or "",
        x_frame_options=x_frame,
        # Where clients reach HTTPS (differs from https_port behind port forwarding);
        # used in Force-SSL redirects.
        public_https_port=_port("PORTWAY_PUBLIC_HTTPS_PORT", _port("PORTWAY_HTTPS_PORT", 443)),
        # A proxy in front of the admin UI says in X-Forwarded-Proto whether the browser
        # used HTTPS; anyone can send the header, so only these peers are believed.
        trusted_proxies=_networks("PORTWAY_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES),
        admin_https=_flag("PORTWAY_ADMIN_HTTPS"),
        time_zone=_time_zone(),
    )


def database_settings(data_dir: Path) -> dict:
    """Django DATABASES['default'] from NPM's variables.

    DB_MYSQL_HOST selects MariaDB/MySQL, DB_POSTGRES_HOST selects PostgreSQL, otherwise
    SQLite at DB_SQLITE_FILE (default: <data_dir>/database.sqlite).
    """
    if _env("DB_MYSQL_HOST"):
        return {
            "ENGINE": "django.db.backends.mysql",
            "HOST": _env("DB_MYSQL_HOST"),
            "PORT": str(_port("DB_MYSQL_PORT", 3306)),
            "USER": _env("DB_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("DB_MYSQL_PASSWORD", ""),
            "NAME": _env("DB_MYSQL_NAME", "portway"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"NAME": _env("DB_MYSQL_TEST_NAME", "test_portway")},
        }
    if _env("DB_POSTGRES_HOST"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": _env("DB_POSTGRES_HOST"),
            "PORT": str(_port("DB_POSTGRES_PORT", 5432)),
            "USER": _env("DB_POSTGRES_USER", "postgres"),
            "PASSWORD": os.environ.get("DB_POSTGRES_PASSWORD", ""),
            "NAME": _env("DB_POSTGRES_NAME", "portway"),
            "TEST": {"NAME": _env("DB_POSTGRES_TEST_NAME", "test_portway")},
        }
    sqlite_file = _env("DB_SQLITE_FILE", str(data_dir / "database.sqlite"))
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": sqlite_file,
        # WAL lets the apply worker read while the API writes; IMMEDIATE takes the write
        # lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
