"""The `portway` command.

portway serve      migrate, render the config, run nginx and the admin server
portway check      render the config and test it with `nginx -t` (nothing goes live)
portway apply      render, test and reload a running Portway's nginx
portway migrate    create or update the database schema
portway createadmin --email E --password P [--name N]
portway status     what runs: pid, ports, data dir, hosts online/offline, nginx generation
portway import-npm --data DIR [--letsencrypt DIR] [--sqlite FILE | --mysql-host H ...] [--dry-run]
portway tunnel connect wss://NAME --key KEY (--listen [ADDR:]PORT | --stdio)
portway backup FILE      write the whole installation into one archive (tar.gz, 0600)
portway restore FILE [--force]   bring an archive back into this data dir and database
portway version

Every verb first reads the settings file the service uses (/etc/portway/portway.env, or
PORTWAY_ENV_FILE); a variable set in the environment wins over the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("portway")

HELP = """Portway: a self-hosted reverse-proxy manager driving nginx.

Settings come from /etc/portway/portway.env (PORTWAY_ENV_FILE to read another file,
`none` for none) and the environment, which wins; README.md documents each:
PORTWAY_DATA_DIR, PORTWAY_ADMIN_PORT, PORTWAY_ADMIN_BIND, PORTWAY_HTTP_PORT,
PORTWAY_HTTPS_PORT, PORTWAY_PUBLIC_HTTPS_PORT,
PORTWAY_BIND_ADDRESS, PORTWAY_RESOLVER, PORTWAY_NGINX, PORTWAY_SECRET_KEY, PORTWAY_DEBUG,
PORTWAY_LOG_LEVEL, PORTWAY_LOG_MAX_BYTES, PORTWAY_LOG_KEEP, PORTWAY_BACKUP_DIR,
PORTWAY_BACKUP_KEEP, PORTWAY_BACKUP_INTERVAL, PORTWAY_RENEW_*, INITIAL_ADMIN_EMAIL,
INITIAL_ADMIN_PASSWORD, DB_SQLITE_FILE, DB_MYSQL_*, DB_POSTGRES_*, LE_STAGING, LE_SERVER,
REQUESTS_CA_BUNDLE, DISABLE_IPV6, X_FRAME_OPTIONS, PORTWAY_WORKER_SHUTDOWN_TIMEOUT, TZ.
"""


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")
    import django

    django.setup()


def _migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def _make_database_private() -> None:
    """An SQLite file holds password hashes and sessions: owner-only, also when it was
    created before Portway set its umask."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        for suffix in ("", "-wal", "-shm"):
            path = f"{database['NAME']}{suffix}"
            if os.path.exists(path):
                os.chmod(path, 0o600)


class NoInstallation(RuntimeError):
    """A verb would create a new, empty installation where an existing one was expected."""


def _expect_installation(args: argparse.Namespace) -> None:
    """Refuse (unless --init) to act on a data directory or database that does not exist.

    `portway serve` creates an installation; the other verbs act on one. Run with a
    wrong or missing PORTWAY_DATA_DIR (or database settings) they would silently create
    an empty one and report "0 hosts". Expected means: the data directory exists, and
    the database exists and holds Portway's schema (SQLite: the file exists; MariaDB or
    PostgreSQL: its `django_migrations` table exists). Django must not be set up yet for
    the data-directory and SQLite checks (its settings create the data directory).

    Raises:
        NoInstallation: nothing is there and --init was not given (message says what).
    """
    if getattr(args, "init", False):
        return
    from django.apps import apps

    from portway import conf

    config = conf.load()
    hint = (
        "; check PORTWAY_DATA_DIR and the database settings (environment or "
        f"{conf.env_file_path() or 'settings file'}), or add --init to create a new, "
        "empty installation there"
    )
    # Django already set up (the verb called in-process, e.g. by a test): its database
    # connection is the one to ask
    already_set_up = apps.ready
    if not already_set_up and not config.data_dir.is_dir():
        raise NoInstallation(f"no Portway installation: {config.data_dir} does not exist{hint}")
    database = conf.database_settings(config.data_dir)
    if database["ENGINE"].endswith("sqlite3") and not already_set_up:
        if not os.path.isfile(database["NAME"]):
            raise NoInstallation(
                f"no Portway database: {database['NAME']} does not exist (data directory "
                f"{config.data_dir}){hint}"
            )
        return
    _django()
    from django.db import DatabaseError, connection

    used = connection.settings_dict
    where = f"{used['NAME']} on {used['HOST']}" if used.get("HOST") else str(used["NAME"])
    try:
        tables = connection.introspection.table_names()
    except DatabaseError as exc:
        raise NoInstallation(
            f"cannot open the database {where}: {str(exc).strip()}{hint}"
        ) from None
    if "django_migrations" not in tables:
        raise NoInstallation(f"no Portway database: {where} has no Portway tables{hint}")


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or update the database schema."""
    _django()
    _migrate()
    print("database is up to date")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from portway import __version__

    print(f"portway {__version__}")
    return 0


def cmd_createadmin(args: argparse.Namespace) -> int:
    """Create an administrator account (fails if the e-mail is taken)."""
    _expect_installation(args)
    _django()
    _migrate()
    from portway.accounts.models import User

    if not 8 <= len(args.password) <= 64:
        print("the password must be 8 to 64 characters long", file=sys.stderr)
        return 2
    if User.objects.filter(email__iexact=args.email).exists():
        print(f"a user with e-mail {args.email} already exists", file=sys.stderr)
        return 1
    User.objects.create_user(args.email, args.password, is_admin=True, name=args.name)
    print(f"administrator {args.email} created")
    return 0


def cmd_reset_2fa(args: argparse.Namespace) -> int:
    """Turn off two-factor login of one account (an admin who lost their phone)."""
    _expect_installation(args)
    _django()
    _migrate()
    from portway.accounts.credentials import reset_two_factor_cli
    from portway.core.errors import NotFound

    try:
        was_on = reset_two_factor_cli(args.email)
    except NotFound as exc:
        print(exc.message, file=sys.stderr)
        return 1
    if was_on:
        print(f"two-factor login of {args.email} turned off; sign in with the password")
    else:
        print(f"{args.email} had no two-factor login; nothing changed")
    return 0


def _report(report: Any) -> int:
    """Print an apply report; exit status 1 if nginx rejected anything."""
    from portway.nginx import admin_site

    # the admin UI's own site (PORTWAY_ADMIN_DOMAIN) is tested like a host but is none
    admin = f"{admin_site.KIND}-"
    hosts = {k: o for k, o in report.hosts.items() if not k.startswith(admin)}
    offline = {k: o for k, o in report.hosts.items() if not o.online}
    print(f"{len(hosts)} hosts, {len(offline)} rejected by nginx")
    for key, outcome in sorted(offline.items()):
        label = "admin site" if key.startswith(admin) else key
        print(f"  {label}: {outcome.error}")
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
    return 1 if offline or report.error else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Render every host into a scratch generation and run `nginx -t` on it."""
    _expect_installation(args)
    _django()
    _migrate()
    from portway import conf
    from portway.nginx.engine import Engine

    engine = Engine(conf.load())
    return _report(engine.apply(go_live=False))


def cmd_apply(args: argparse.Namespace) -> int:
    """Render, test and reload the nginx of a running `portway serve` (via its pid file)."""
    _expect_installation(args)
    _django()
    from portway import conf
    from portway.nginx.engine import Engine
    from portway.nginx.process import stray_master
    from portway.nginx.render import Paths

    _migrate()
    config = conf.load()
    engine = Engine(config)
    report = engine.apply()
    paths = Paths(config.data_dir)
    master = stray_master(paths.pid_file, paths.base)
    if report.generation and master:
        os.kill(master, signal.SIGHUP)
        print(f"nginx reloaded with generation {report.generation}")
    elif report.generation:
        print(
            f"no running Portway nginx for {config.data_dir}: the config was tested and "
            "written, and goes live when `portway serve` starts"
        )
    return _report(report)


def cmd_import_npm(args: argparse.Namespace) -> int:
    """Import an Nginx Proxy Manager installation, then apply (a running serve reloads)."""
    from pathlib import Path

    _django()
    _migrate()
    if not args.dry_run:
        from portway.accounts.services import ensure_initial_admin

        # A new installation's first administrator (INITIAL_ADMIN_*) is created now, as
        # `serve` would: once NPM's users are imported, `serve` creates none, and NPM's own
        # admin often still has NPM's published password, which is not carried over.
        ensure_initial_admin()
    from portway.npmimport.services import import_npm
    from portway.npmimport.source import MysqlSettings, NpmDatabase, NpmFiles, SourceError

    data_dir = Path(args.data)
    if args.mysql_password == "-":  # from standard input: not visible in `ps`
        args.mysql_password = sys.stdin.readline().rstrip("\r\n")
    try:
        if args.mysql_host:
            database = NpmDatabase.open_mysql(
                MysqlSettings(
                    host=args.mysql_host,
                    port=args.mysql_port,
                    user=args.mysql_user,
                    password=args.mysql_password,
                    name=args.mysql_name,
                )
            )
        else:
            database = NpmDatabase.open_sqlite(
                Path(args.sqlite) if args.sqlite else data_dir / "database.sqlite"
            )
        files = NpmFiles(data_dir, Path(args.letsencrypt) if args.letsencrypt else None)
        report = import_npm(database, files, dry_run=args.dry_run)
    except SourceError as exc:
        print(f"portway import-npm: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    if args.dry_run or not report.imported:
        return 0
    return cmd_apply(args)


def cmd_backup(args: argparse.Namespace) -> int:
    """Write the installation (database rows, keys, certificates, ACME account, settings)
    into one archive; safe while `portway serve` runs. Refused where there is no
    installation (a wrong PORTWAY_DATA_DIR would back up an empty one)."""
    _expect_installation(args)
    _django()
    from portway.backups.archive import BackupError, create_backup

    try:
        manifest = create_backup(args.file)
    except BackupError as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup written to {os.path.abspath(args.file)} ({manifest['files']} files, "
        f"database {manifest['database_engine']}, Portway {manifest['portway_version']})"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore an archive into this data directory and database, then render nginx's
    config so that `portway serve` serves every host again.

    Refused while a `portway serve` uses the installation, and into a non-empty one
    unless --force. Migrations run first: an older backup loads into the newer schema.
    """
    from portway import conf
    from portway.core.instance import DatabaseLock, DataDirLock

    config = conf.load()
    if not os.path.isfile(args.file):
        print(f"portway: {args.file} is not a file", file=sys.stderr)
        return 1
    data_lock = DataDirLock(config.data_dir).acquire()
    try:
        _django()
        from django.conf import settings

        from portway.backups.archive import BackupError, read_archive, restore_backup

        try:  # a hostile or broken archive is refused before the database is touched
            read_archive(args.file)
        except BackupError as exc:
            print(f"portway: {exc}", file=sys.stderr)
            return 1
        database_lock = DatabaseLock(
            settings.DATABASES["default"], f"portway restore pid {os.getpid()}"
        ).acquire()
        try:
            _migrate()
            _make_database_private()
            try:
                result = restore_backup(args.file, force=args.force)
            except BackupError as exc:
                print(f"portway: {exc}", file=sys.stderr)
                return 1
            from portway.nginx.engine import Engine

            report = Engine(config).apply()
        finally:
            database_lock.release()
    finally:
        data_lock.release()
    manifest = result.manifest
    print(
        f"restored {result.rows} rows and {result.files} files from {args.file} "
        f"(made {manifest.get('created')} by Portway {manifest.get('portway_version')} "
        f"on {manifest.get('database_engine')})"
    )
    if result.settings_file is not None:
        print(f"the backup's settings file is in {result.settings_file}: review and install it")
    return _report(report)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run Portway: nginx (supervised) + apply worker + admin web server, until stopped.

    One server per data directory and per database (portway.core.instance): the data
    directory's lock is taken before anything there is written, the database's before
    migrations run; a second `portway serve` ends with one line naming the first.
    """
    from portway import conf
    from portway.core.instance import DatabaseLock, DataDirLock

    config = conf.load()
    # a bad value stops serve before it starts
    backup_settings, log_settings = conf.backup_settings(), conf.log_settings()
    from portway.nginx.render import Paths

    too_long = Paths(config.data_dir).socket_path_problem()
    if too_long:
        print(f"portway serve: {too_long}", file=sys.stderr)
        return 1
    data_lock = DataDirLock(config.data_dir).acquire()  # held until this function returns
    data_lock.describe(_listeners(config))  # what `portway status` reports
    _django()
    from django.conf import settings

    from portway.admin_server import create_admin_server, stop_admin_server
    from portway.nginx.engine import ApplyWorker, Engine, install, request_apply
    from portway.nginx.process import NginxSupervisor
    from portway.wsgi import application

    database_lock = DatabaseLock(
        settings.DATABASES["default"], f"portway serve pid {os.getpid()} {config.data_dir}"
    ).acquire()
    _migrate()
    _make_database_private()
    try:
        from portway.accounts.services import ensure_initial_admin
    except ImportError:
        ensure_initial_admin = None
    if ensure_initial_admin is not None:
        ensure_initial_admin()

    host = config.admin_bind or "*"
    listen = f"[{host}]:{config.admin_port}" if ":" in host else f"{host}:{config.admin_port}"
    # Bind the admin port first: if it is taken, fail before starting nginx.
    server = create_admin_server(application, listen)
    from portway.gate_server import create_gate_server
    from portway.nginx.render import worker_group_id

    # The login gate's socket (portway.gate_server), served from a thread of its own.
    gate = create_gate_server(application, Paths(config.data_dir).gate_socket, worker_group_id())
    threading.Thread(target=gate.run, name="portway-gate", daemon=True).start()

    engine = Engine(config)
    paths = engine.paths
    supervisor = NginxSupervisor(
        engine.binary,
        paths.live / "nginx.conf",
        paths.base,
        paths.status_socket,
        paths.error_log,
        pid_file=paths.pid_file,
        # hosts saved while nginx was down (its ports taken) go live once it is back;
        # the restarted nginx serves the snapshot, and the engine pushes again
        on_restart=lambda: (engine.nginx_restarted(), request_apply()),
    )
    report = engine.apply()  # writes the live generation; nginx is not running yet
    if report.generation is None and not paths.live.exists():
        print(f"cannot build an nginx config: {report.error}", file=sys.stderr)
        return 1
    generation = report.generation or paths.live.resolve().name
    supervisor.start()
    error = supervisor.wait_for_generation(generation, timeout=30)
    if error:
        log.error("nginx did not start: %s", error)
    engine.supervisor = supervisor
    tunnels = _start_tunnel_service(paths)
    if error:
        # e.g. another program took a stream's port while Portway was down: the apply
        # finds that stream from nginx's bind() error and starts nginx without it
        engine.apply()
    worker = ApplyWorker(engine).start()
    install(engine, worker)
    from portway.certificates.renewal import RenewalScheduler

    renewals = RenewalScheduler().start()  # also resumes ACME jobs a restart interrupted
    from portway.backups.schedule import BackupScheduler

    backups = BackupScheduler(backup_settings).start()
    from portway.nginx.logs import LogRotator
    from portway.nginx.process import stray_master

    # the pid file, not the child's pid: nginx writes it once its signal handlers are set,
    # and a SIGUSR1 before that would end it
    rotator = LogRotator(
        paths.logs, lambda: stray_master(paths.pid_file, paths.base), log_settings
    ).start()

    from django.db import connections

    # the start-up work's connections (migrate, first apply, tunnel state): this thread
    # only serves and waits from here, so nothing would ever close them
    connections.close_all()
    stop = threading.Event()

    def _shutdown(signum: int, frame: Any) -> None:
        if not stop.is_set():
            stop.set()
            log.info("stopping (signal %s)", signum)
            stop_admin_server(server)
            gate.close()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    log.info(
        "Portway admin on %s, proxy on :%s/:%s, data in %s",
        listen,
        config.http_port,
        config.https_port,
        config.data_dir,
    )
    warning = conf.admin_exposure_warning(config)
    if warning:
        log.warning("%s", warning)
    try:
        server.run()
    except (OSError, ValueError):
        if not stop.is_set():
            raise
    finally:
        renewals.stop()
        backups.stop()
        rotator.stop()
        from portway.certificates.issuance import shutdown as stop_acme_jobs

        stop_acme_jobs()
        worker.stop()
        supervisor.stop()
        tunnels.stop()
        database_lock.release()
        data_lock.release()
    return 0


STATUS_NOT_RUNNING = 3  # LSB init-script convention: "program is not running"


def _server_pid(data_dir: Any) -> int | None:
    """The pid of the `portway serve` holding `<data_dir>/portway.lock`, else None
    (only asks the lock; creates nothing)."""
    from portway.core.instance import running_server

    running = running_server(data_dir)
    return None if running is None else running[0]


def _host_counts() -> dict[str, int]:
    """Hosts of every kind: online (served), offline (nginx rejected them), disabled."""
    from portway.hosts.models import HOST_MODELS

    counts = {"online": 0, "offline": 0, "disabled": 0}
    for model in HOST_MODELS.values():
        hosts = model.objects.all()
        counts["disabled"] += hosts.filter(enabled=False).count()
        counts["online"] += hosts.filter(enabled=True, nginx_online=True).count()
        counts["offline"] += hosts.filter(enabled=True, nginx_online=False).count()
    return counts


def _fast_path_line(config: Any, paths: Any) -> str:
    """`portway status`'s fast path line: on with the routing state's generation (from
    the snapshot nginx loads), or off and why."""
    from portway.nginx.engine import fast_path_unavailable

    reason = fast_path_unavailable(config)
    if reason is not None:
        return f"off ({reason}): every change reloads nginx"
    from portway.nginx.fastpath import Dataplane

    try:
        snapshot = json.loads(Dataplane(paths).snapshot.read_text())
    except (OSError, ValueError):
        return "on (no routing state written yet)"
    return f"on, routing state generation {snapshot.get('generation')}"


def _listeners(config: Any) -> dict[str, Any]:
    """The addresses and ports of `config` that `portway status` reports (the running
    server records the same keys in its lock file)."""
    return {
        "admin_bind": config.admin_bind or "",
        "admin_port": config.admin_port,
        "bind_address": config.bind_address or "",
        "http_port": config.http_port,
        "https_port": config.https_port,
    }


def cmd_status(args: argparse.Namespace) -> int:
    """Print what runs: server pid, ports, data dir, hosts online/offline, nginx generation.

    Exit status 0 when a `portway serve` runs on the data directory, 3 when none does.
    """
    from portway import conf
    from portway.core.instance import running_server
    from portway.nginx.process import stray_master
    from portway.nginx.render import Paths

    config = conf.load()
    running = running_server(config.data_dir)
    pid = None if running is None else running[0]
    paths = Paths(config.data_dir)
    if pid is None:
        print(f"portway: not running (data directory {config.data_dir})")
    else:
        print(f"portway: running, pid {pid}")
        print(f"data directory: {config.data_dir}")
    # what the running server listens on (recorded at its start), else the settings
    settings = _listeners(config)
    shown = {**settings, **(running[1] if running else {})}
    admin_host = shown["admin_bind"] or "all addresses"
    proxy_host = shown["bind_address"] or "all addresses"
    print(f"admin UI: port {shown['admin_port']} on {admin_host} (plain HTTP)")
    print(
        f"proxy: HTTP port {shown['http_port']}, HTTPS port {shown['https_port']} on {proxy_host}"
    )
    changed = sorted(key for key in settings if shown[key] != settings[key])
    if changed:
        print(
            "note: the settings now say "
            + ", ".join(f"{key} {settings[key] or 'all addresses'}" for key in changed)
            + "; the server started with other values: restart it to apply them"
            " (systemctl restart portway)"
        )
    master = stray_master(paths.pid_file, paths.base)
    generation = paths.live.resolve().name if paths.live.exists() else "none"
    state = f"master pid {master}" if master else "not running"
    print(f"nginx: {state}, live generation {generation}")
    print(f"fast path: {_fast_path_line(config, paths)}")
    database = conf.database_settings(config.data_dir)
    if database["ENGINE"].endswith("sqlite3") and not os.path.isfile(database["NAME"]):
        print(f"hosts: no database at {database['NAME']}")
    else:
        _django()
        try:
            counts = _host_counts()
        except Exception as exc:  # noqa: BLE001 - status reports, it does not fail on it
            print(f"hosts: database not readable ({exc.__class__.__name__}: {exc})")
        else:
            print(
                f"hosts: {counts['online']} online, {counts['offline']} offline, "
                f"{counts['disabled']} disabled"
            )
            from portway.nginx.admin_site import OFF, SETTING_ID
            from portway.nginx.models import Setting

            domain = Setting.objects.filter(id=SETTING_ID).values_list("value", flat=True)
            if domain and domain[0] not in ("", OFF):
                suffix = "" if config.public_https_port == 443 else f":{config.public_https_port}"
                print(f"admin UI over HTTPS: https://{domain[0]}{suffix}/")
    warning = conf.admin_exposure_warning(config)
    if warning and pid is not None:
        print(f"warning: {warning}")
    return 0 if pid is not None else STATUS_NOT_RUNNING


def cmd_tunnel_connect(args: argparse.Namespace) -> int:
    """The tunnel client: needs no server settings, database or nginx (no Django)."""
    from portway.tunnels.client import connect_command

    return connect_command(args)


def _start_tunnel_service(paths: Any) -> Any:
    """Publish the tunnel state, then run the tunnel service (portway.tunnels.server)
    supervised like nginx; its session journal is moved into the database every 2 s."""
    from django.db import close_old_connections

    from portway.nginx.process import ChildSupervisor
    from portway.tunnels.services import ingest_journal, publish_state

    publish_state()

    def ingest() -> None:
        try:
            ingest_journal()
        finally:
            close_old_connections()

    return ChildSupervisor(
        "tunnel service",
        [sys.executable, "-m", "portway.tunnels.server", str(paths.tunnels)],
        every=ingest,
    ).start()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portway", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser(
        "serve", help="run migrations, nginx and the admin UI/API (until Ctrl-C or SIGTERM)"
    ).set_defaults(func=cmd_serve)
    init_help = "create a new, empty installation if none exists there (else refused)"
    check = sub.add_parser(
        "check", help="render the nginx config and test it with nginx -t; lists offline hosts"
    )
    check.add_argument("--init", action="store_true", help=init_help)
    check.set_defaults(func=cmd_check)
    apply = sub.add_parser(
        "apply", help="render, test and reload the nginx of a running portway serve"
    )
    apply.add_argument("--init", action="store_true", help=init_help)
    apply.set_defaults(func=cmd_apply)
    sub.add_parser(
        "status", help="what runs: pid, ports, data dir, hosts online/offline (exit 3: not running)"
    ).set_defaults(func=cmd_status)
    sub.add_parser("migrate", help="create or update the database schema").set_defaults(
        func=cmd_migrate
    )
    admin = sub.add_parser("createadmin", help="create an administrator account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.add_argument("--init", action="store_true", help=init_help)
    admin.set_defaults(func=cmd_createadmin)
    backup = sub.add_parser(
        "backup", help="write the whole installation into one archive (safe while serving)"
    )
    backup.add_argument("file", help="the archive to write (tar.gz, created 0600)")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="restore an archive into this data directory and database"
    )
    restore.add_argument("file", help="an archive written by portway backup")
    restore.add_argument(
        "--force", action="store_true", help="replace a non-empty installation's contents"
    )
    restore.set_defaults(func=cmd_restore)
    reset = sub.add_parser(
        "reset-2fa", help="turn off two-factor login of an account (lost authenticator)"
    )
    reset.add_argument("--email", required=True)
    reset.add_argument("--init", action="store_true", help=init_help)
    reset.set_defaults(func=cmd_reset_2fa)
    npm = sub.add_parser(
        "import-npm",
        help="import an Nginx Proxy Manager installation (hosts, certificates, users ...)",
    )
    npm.add_argument("--data", required=True, help="NPM's data folder (/data in its container)")
    npm.add_argument("--letsencrypt", help="NPM's letsencrypt folder (/etc/letsencrypt)")
    npm.add_argument("--sqlite", help="NPM's SQLite file (default: DATA/database.sqlite)")
    npm.add_argument("--mysql-host", help="NPM's MariaDB/MySQL host (its DB_MYSQL_HOST)")
    npm.add_argument("--mysql-port", type=int, default=3306)
    npm.add_argument("--mysql-user", default="npm")
    npm.add_argument("--mysql-password", default="", help="- reads it from standard input")
    npm.add_argument("--mysql-name", default="npm")
    npm.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    npm.set_defaults(func=cmd_import_npm)
    tunnel = sub.add_parser("tunnel", help="tunnel client (portway tunnel connect ...)")
    tunnel_sub = tunnel.add_subparsers(dest="tunnel_command", metavar="COMMAND")
    tunnel_sub.required = True
    connect = tunnel_sub.add_parser(
        "connect",
        help="carry local TCP connections (--listen) or stdin/stdout (--stdio) through a "
        "Portway tunnel host",
    )
    from portway.tunnels.client_args import add_arguments

    add_arguments(connect)
    connect.set_defaults(func=cmd_tunnel_connect)
    sub.add_parser("version", help="print the version").set_defaults(func=cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `portway` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "tunnel":  # the client: no server settings, logging or umask
        return args.func(args)
    from portway.conf import ConfigError, read_env_file
    from portway.core.instance import AlreadyRunning
    from portway.nginx.process import NginxNotFound

    # Everything Portway writes (database, config, keys, logs) is private by default;
    # what nginx's workers must read is opened up explicitly (Engine.prepare).
    os.umask(0o077)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        read_env_file()
        return args.func(args)
    except (ConfigError, NginxNotFound) as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 2
    except NoInstallation as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 1
    except AlreadyRunning as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
