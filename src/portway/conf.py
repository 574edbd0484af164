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


DEFAULT_ENV_FILE = "/etc/portway/portway.env"


def env_file_path() -> Path | None:
    """The settings file every verb reads: PORTWAY_ENV_FILE, else /etc/portway/portway.env.

    PORTWAY_ENV_FILE=none (or empty) reads no file; a path that is no file reads nothing.
    """
    raw = os.environ.get("PORTWAY_ENV_FILE")
    if raw is not None and raw.strip().lower() in {"none", ""}:
        return None
    return Path(raw.strip() if raw is not None else DEFAULT_ENV_FILE)


def parse_env_file(text: str) -> dict[str, str]:
    """Settings from the text of an environment file in the subset of systemd's
    EnvironmentFile= format that Portway writes and documents: `NAME=value` lines,
    blank lines and lines starting with `#` or `;` ignored, an optional `export `, and
    a value in matching single or double quotes taken without them.

    Raises:
        ConfigError: a line is not `NAME=value` with NAME a valid variable name.
    """
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ConfigError(f"line {number} is not NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def read_env_file() -> Path | None:
    """Put the settings file's variables into os.environ, the environment winning.

    The service gets the same file through systemd's EnvironmentFile=, so the service
    and a `portway` verb run by hand see the same settings; a variable set in the
    environment of a command (`PORTWAY_DATA_DIR=/x portway check`) overrides the file.

    Returns:
        The file read, or None when there is none.

    Raises:
        ConfigError: the file exists but cannot be read or parsed (message names it).
    """
    path = env_file_path()
    if path is None or not path.is_file():
        return None
    try:
        values = parse_env_file(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return path


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
        bind_address: address nginx listens on; "" means all addresses.
        admin_bind: address the admin server listens on (PORTWAY_ADMIN_BIND, default
            bind_address); "" means all addresses.
        disable_ipv6: do not add [::] listeners (NPM's DISABLE_IPV6).
        nginx_binary: path of the nginx executable to run.
        resolver: DNS servers nginx uses for upstream names that did not resolve at apply time.
        public_https_port: the HTTPS port clients use, for Force-SSL redirects.
        trusted_proxies: peers whose X-Forwarded-Proto the admin server believes.
        admin_https: the admin UI is only ever reached over HTTPS (cookies always Secure).
        worker_shutdown_timeout: seconds nginx's old workers may keep open connections
            (WebSockets, tunnels) after a reload; 0: no limit (they stay until closed).
        time_zone: IANA zone name (NPM's TZ) of times shown in the UI; logs follow TZ too.
        fast_path: "auto" (routine host changes go live through nginx's shared memory
            when the Lua modules are installed, else by reload) or "off" (always reload).
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
    admin_bind: str = ""
    worker_shutdown_timeout: int = 0
    time_zone: str = "UTC"
    fast_path: str = "auto"


FAST_PATH_VALUES = ("auto", "off")
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
    bind_address = _env("PORTWAY_BIND_ADDRESS", "") or ""
    admin_bind = _env("PORTWAY_ADMIN_BIND", bind_address) or ""
    if _env("PORTWAY_ADMIN_BIND"):
        try:
            ipaddress.ip_address(admin_bind)
        except ValueError:
            raise ConfigError(f"PORTWAY_ADMIN_BIND={admin_bind!r} is not an IP address") from None
    x_frame = (_env("X_FRAME_OPTIONS", "DENY") or "DENY").upper()
    if x_frame not in {"DENY", "SAMEORIGIN"}:
        raise ConfigError("X_FRAME_OPTIONS must be DENY or SAMEORIGIN")
    return PortwayConfig(
        data_dir=data_dir,
        admin_port=_port("PORTWAY_ADMIN_PORT", 81),
        http_port=_port("PORTWAY_HTTP_PORT", 80),
        https_port=_port("PORTWAY_HTTPS_PORT", 443),
        bind_address=bind_address,
        admin_bind=admin_bind,
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
        worker_shutdown_timeout=_seconds("PORTWAY_WORKER_SHUTDOWN_TIMEOUT", 0),
        time_zone=_time_zone(),
        fast_path=_fast_path(),
    )


def _fast_path() -> str:
    """PORTWAY_FAST_PATH: auto (default) or off, case-insensitive."""
    raw = (_env("PORTWAY_FAST_PATH", "auto") or "auto").lower()
    if raw not in FAST_PATH_VALUES:
        raise ConfigError(f"PORTWAY_FAST_PATH={raw!r} must be one of {', '.join(FAST_PATH_VALUES)}")
    return raw


def _seconds(name: str, default: int) -> int:
    """A whole number of seconds from 0 to 30 days."""
    raw = _env(name, str(default))
    if not (raw or "").isdigit() or int(raw) > 30 * 86400:  # type: ignore[union-attr]
        raise ConfigError(f"{name}={raw!r} must be a whole number of seconds, 0 to 2592000")
    return int(raw)  # type: ignore[arg-type]


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


def _route_source(probe: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The local address this machine would send from towards `probe` (a UDP connect
    sends no packet), or None without such a route."""
    import socket

    family = socket.AF_INET6 if ":" in probe else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            return ipaddress.ip_address(sock.getsockname()[0])
    except OSError:
        return None


def admin_exposure_warning(config: PortwayConfig | None = None) -> str | None:
    """A warning when the admin UI answers plain HTTP on a public address, else None.

    Public means neither loopback nor private (RFC 1918, ULA, link-local...): Python's
    `is_global`. With no PORTWAY_ADMIN_BIND / PORTWAY_BIND_ADDRESS the admin server
    listens on every address; then the addresses this machine routes to the internet
    from are checked.
    """
    config = config or load()
    if config.admin_bind:
        candidates = [ipaddress.ip_address(config.admin_bind)]
    else:
        found = (_route_source("192.0.2.1"), _route_source("2001:db8::1"))
        candidates = [address for address in found if address is not None]
    public = [str(address) for address in candidates if address.is_global]
    if not public:
        return None
    return (
        f"the admin UI answers plain HTTP on the public address {public[0]} port "
        f"{config.admin_port}: passwords and sessions cross the network unencrypted. Set "
        "PORTWAY_ADMIN_BIND=127.0.0.1 (or a LAN address) and reach the UI over HTTPS "
        "(Settings -> Admin UI domain), or close the port with a firewall"
    )


@dataclass(frozen=True)
class BackupSettings:
    """The scheduled backup of `portway serve` (portway.backups.schedule).

    Attributes:
        directory: where archives go (PORTWAY_BACKUP_DIR); None: no scheduled backups.
        keep: how many scheduled archives are kept there, newest first (PORTWAY_BACKUP_KEEP).
        interval: seconds between backups (PORTWAY_BACKUP_INTERVAL, default one day).
    """

    directory: Path | None
    keep: int
    interval: float


def _positive(name: str, default: float, minimum: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if value < minimum:
        raise ConfigError(f"{name}={raw} is below the minimum of {minimum:g}")
    return value


def _whole(name: str, default: int, minimum: int) -> int:
    value = _positive(name, default, minimum)
    if value != int(value):
        raise ConfigError(f"{name}={value:g} is not a whole number")
    return int(value)


def backup_settings() -> BackupSettings:
    """Read PORTWAY_BACKUP_DIR, PORTWAY_BACKUP_KEEP and PORTWAY_BACKUP_INTERVAL.

    Raises:
        ConfigError: KEEP is not a whole number of at least 1, or INTERVAL under 1 second.
    """
    raw_dir = _env("PORTWAY_BACKUP_DIR")
    return BackupSettings(
        directory=Path(raw_dir).resolve() if raw_dir else None,
        keep=_whole("PORTWAY_BACKUP_KEEP", 7, 1),
        interval=_positive("PORTWAY_BACKUP_INTERVAL", 86400, 1),
    )


@dataclass(frozen=True)
class LogSettings:
    """Per-host nginx logs (portway.nginx.logs).

    Attributes:
        max_bytes: a host's log file is rotated once larger (PORTWAY_LOG_MAX_BYTES).
        keep: rotated files kept per log besides the current one (PORTWAY_LOG_KEEP).
        check_interval: seconds between size checks (PORTWAY_LOG_CHECK_INTERVAL).
    """

    max_bytes: int
    keep: int
    check_interval: float


def log_settings() -> LogSettings:
    """Read PORTWAY_LOG_MAX_BYTES (default 10 MiB), PORTWAY_LOG_KEEP (default 5) and
    PORTWAY_LOG_CHECK_INTERVAL (default 60 s).

    Raises:
        ConfigError: a value is not a number or below its minimum (1024 bytes, 1 file,
            0.2 s).
    """
    return LogSettings(
        max_bytes=_whole("PORTWAY_LOG_MAX_BYTES", 10 * 1024 * 1024, 1024),
        keep=_whole("PORTWAY_LOG_KEEP", 5, 1),
        check_interval=_positive("PORTWAY_LOG_CHECK_INTERVAL", 60, 0.2),
    )
