"""The `portway` command.

portway serve      migrate, render the config, run nginx and the admin server
portway check      render the config and test it with `nginx -t` (nothing goes live)
portway apply      render, test and reload a running Portway's nginx
portway migrate    create or update the database schema
portway createadmin --email E --password P [--name N]
portway version
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("portway")

HELP = """Portway: a self-hosted reverse-proxy manager driving nginx.

Settings come from the environment; README.md documents each: PORTWAY_DATA_DIR,
PORTWAY_ADMIN_PORT, PORTWAY_HTTP_PORT, PORTWAY_HTTPS_PORT, PORTWAY_PUBLIC_HTTPS_PORT,
PORTWAY_BIND_ADDRESS, PORTWAY_RESOLVER, PORTWAY_NGINX, PORTWAY_SECRET_KEY, PORTWAY_DEBUG,
PORTWAY_LOG_LEVEL, PORTWAY_RENEW_*, INITIAL_ADMIN_EMAIL, INITIAL_ADMIN_PASSWORD,
DB_SQLITE_FILE, DB_MYSQL_*, DB_POSTGRES_*, LE_STAGING, LE_SERVER, REQUESTS_CA_BUNDLE,
DISABLE_IPV6, X_FRAME_OPTIONS.
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
    offline = {k: o for k, o in report.hosts.items() if not o.online}
    print(f"{len(report.hosts)} hosts, {len(offline)} rejected by nginx")
    for key, outcome in sorted(offline.items()):
        print(f"  {key}: {outcome.error}")
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
    return 1 if offline or report.error else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Render every host into a scratch generation and run `nginx -t` on it."""
    _django()
    _migrate()
    from portway import conf
    from portway.nginx.engine import Engine

    engine = Engine(conf.load())
    return _report(engine.apply(go_live=False))


def cmd_apply(args: argparse.Namespace) -> int:
    """Render, test and reload the nginx of a running `portway serve` (via its pid file)."""
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


def cmd_serve(args: argparse.Namespace) -> int:
    """Run Portway: nginx (supervised) + apply worker + admin web server, until stopped.

    One server per data directory and per database (portway.core.instance): the data
    directory's lock is taken before anything there is written, the database's before
    migrations run; a second `portway serve` ends with one line naming the first.
    """
    from portway import conf
    from portway.core.instance import DatabaseLock, DataDirLock

    config = conf.load()
    data_lock = DataDirLock(config.data_dir).acquire()  # held until this function returns
    _django()
    from django.conf import settings

    from portway.admin_server import create_admin_server
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

    host = config.bind_address or "*"
    listen = f"[{host}]:{config.admin_port}" if ":" in host else f"{host}:{config.admin_port}"
    # Bind the admin port first: if it is taken, fail before starting nginx.
    server = create_admin_server(application, listen)

    engine = Engine(config)
    paths = engine.paths
    supervisor = NginxSupervisor(
        engine.binary,
        paths.live / "nginx.conf",
        paths.base,
        paths.status_socket,
        paths.error_log,
        pid_file=paths.pid_file,
        # hosts saved while nginx was down (its ports taken) go live once it is back
        on_restart=request_apply,
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
    if error:
        # e.g. another program took a stream's port while Portway was down: the apply
        # finds that stream from nginx's bind() error and starts nginx without it
        engine.apply()
    worker = ApplyWorker(engine).start()
    install(engine, worker)
    from portway.certificates.renewal import RenewalScheduler

    renewals = RenewalScheduler().start()  # also resumes ACME jobs a restart interrupted

    stop = threading.Event()

    def _shutdown(signum: int, frame: Any) -> None:
        if not stop.is_set():
            stop.set()
            log.info("stopping (signal %s)", signum)
            server.close()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    log.info(
        "Portway admin on %s, proxy on :%s/:%s, data in %s",
        listen,
        config.http_port,
        config.https_port,
        config.data_dir,
    )
    try:
        server.run()
    except (OSError, ValueError):
        if not stop.is_set():
            raise
    finally:
        renewals.stop()
        from portway.certificates.issuance import shutdown as stop_acme_jobs

        stop_acme_jobs()
        worker.stop()
        supervisor.stop()
        database_lock.release()
        data_lock.release()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portway", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser(
        "serve", help="run migrations, nginx and the admin UI/API (until Ctrl-C or SIGTERM)"
    ).set_defaults(func=cmd_serve)
    sub.add_parser(
        "check", help="render the nginx config and test it with nginx -t; lists offline hosts"
    ).set_defaults(func=cmd_check)
    sub.add_parser(
        "apply", help="render, test and reload the nginx of a running portway serve"
    ).set_defaults(func=cmd_apply)
    sub.add_parser("migrate", help="create or update the database schema").set_defaults(
        func=cmd_migrate
    )
    admin = sub.add_parser("createadmin", help="create an administrator account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.set_defaults(func=cmd_createadmin)
    reset = sub.add_parser(
        "reset-2fa", help="turn off two-factor login of an account (lost authenticator)"
    )
    reset.add_argument("--email", required=True)
    reset.set_defaults(func=cmd_reset_2fa)
    sub.add_parser("version", help="print the version").set_defaults(func=cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `portway` console script."""
    from portway.conf import ConfigError
    from portway.core.instance import AlreadyRunning
    from portway.nginx.process import NginxNotFound

    # Everything Portway writes (database, config, keys, logs) is private by default;
    # what nginx's workers must read is opened up explicitly (Engine.prepare).
    os.umask(0o077)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, NginxNotFound) as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 2
    except AlreadyRunning as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
