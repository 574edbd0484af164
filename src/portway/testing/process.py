"""A real `portway serve` for end-to-end tests: real nginx on 127.0.0.1 high ports.

    with PortwayProcess(tmp_path) as pw:
        host = pw.create_proxy_host(["app.example.com"], upstream.port)
        status, headers, body = pw.http("app.example.com", "/")

The database is the one DB_* selects; for PostgreSQL and MariaDB each process gets a
fresh database of its own, dropped afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from portway.testing.network import free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "changeme123"


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def terminate(proc: subprocess.Popen | None, timeout: float = 10) -> int | None:
    """SIGTERM `proc`, SIGKILL after `timeout` seconds; its exit status (None if never run)."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _let_workers_traverse(directory: Path) -> None:
    """Give "others" search (x) permission on `directory`'s ancestors.

    nginx's workers run as www-data and must reach the cache, temp and challenge
    directories under the data directory; pytest makes its temporary folders 0700.
    """
    for parent in directory.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, (mode & 0o7777) | 0o001)


class _Database:
    """A throwaway PostgreSQL or MariaDB database when DB_* (or `kind`) asks for one.

    Args:
        kind: "sqlite", "postgres" or "mysql" regardless of DB_* (the server's address
            from DB_POSTGRES_* / DB_MYSQL_*, else 127.0.0.1 as the test runs use); None:
            whatever DB_* selects.
    """

    def __init__(self, kind: str | None = None) -> None:
        self.env: dict[str, str] = {}
        self.name = "portway_e2e_" + uuid.uuid4().hex[:10]
        self.kind = kind or (
            "postgres"
            if os.environ.get("DB_POSTGRES_HOST")
            else "mysql"
            if os.environ.get("DB_MYSQL_HOST")
            else "sqlite"
        )
        self.explicit = kind is not None

    def create(self) -> None:
        if self.explicit:  # the other engines' variables must not select them
            self.env.update(DB_POSTGRES_HOST="", DB_MYSQL_HOST="")
        if self.kind == "postgres":
            self._postgres(f'CREATE DATABASE "{self.name}"')
            self.env["DB_POSTGRES_NAME"] = self.name
            self.env["DB_POSTGRES_HOST"] = os.environ.get("DB_POSTGRES_HOST") or "127.0.0.1"
        elif self.kind == "mysql":
            self._mysql(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
            self.env["DB_MYSQL_NAME"] = self.name
            self.env["DB_MYSQL_HOST"] = os.environ.get("DB_MYSQL_HOST") or "127.0.0.1"
        elif self.explicit:
            self.env["DB_SQLITE_FILE"] = ""

    def drop(self) -> None:
        try:
            if self.kind == "postgres":
                self._postgres(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            elif self.kind == "mysql":
                self._mysql(f"DROP DATABASE IF EXISTS `{self.name}`")
        except Exception:  # best effort: a leftover test database is harmless
            pass

    def _postgres(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=os.environ.get("DB_POSTGRES_HOST") or "127.0.0.1",
            port=int(os.environ.get("DB_POSTGRES_PORT", "5432")),
            user=os.environ.get("DB_POSTGRES_USER", "postgres"),
            password=os.environ.get("DB_POSTGRES_PASSWORD", ""),
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(sql)

    def _mysql(self, sql: str) -> None:
        import pymysql

        conn = pymysql.connect(
            host=os.environ.get("DB_MYSQL_HOST") or "127.0.0.1",
            port=int(os.environ.get("DB_MYSQL_PORT", "3306")),
            user=os.environ.get("DB_MYSQL_USER", "root"),
            password=os.environ.get("DB_MYSQL_PASSWORD", ""),
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()


class PortwayProcess:
    """Runs `portway serve` with its own data directory and loopback ports.

    Args:
        data_dir: where the installation keeps its state (kept across restart()).
        env: extra environment (e.g. PORTWAY_RESOLVER for a test DNS server).
        admin: create the initial admin through INITIAL_ADMIN_* (False: fresh setup).
        database: "sqlite", "postgres" or "mysql" whatever DB_* says (None: DB_*'s).
    """

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        admin: bool = True,
        database: str | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.admin_port = free_port()
        self.http_port = free_port()
        self.https_port = free_port()
        self.extra_env = dict(env or {})
        self.admin = admin
        self.database = _Database(database)
        self.proc: subprocess.Popen | None = None
        self._token: str | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-portway.log"

    # ----- lifecycle ------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWAY_")}
        env.update(
            PORTWAY_DATA_DIR=str(self.data_dir),
            PORTWAY_ADMIN_PORT=str(self.admin_port),
            PORTWAY_HTTP_PORT=str(self.http_port),
            PORTWAY_HTTPS_PORT=str(self.https_port),
            PORTWAY_BIND_ADDRESS="127.0.0.1",
            # nginx must never ask a DNS server off this machine during tests
            PORTWAY_RESOLVER=self.extra_env.get("PORTWAY_RESOLVER", "127.0.0.1:9"),
            # never the machine's /etc/portway/portway.env (a test names its own file)
            PORTWAY_ENV_FILE="none",
        )
        if self.admin:
            env.update(INITIAL_ADMIN_EMAIL=ADMIN_EMAIL, INITIAL_ADMIN_PASSWORD=ADMIN_PASSWORD)
        env.update(self.database.env)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> PortwayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _let_workers_traverse(self.data_dir)
        if self.proc is None and not self.database.env:
            self.database.create()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "portway", "serve"],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for(self._ready, timeout)
        except AssertionError as exc:
            raise AssertionError(f"portway serve did not start:\n{self.log()}") from exc
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"portway serve exited ({self.proc.returncode}):\n{self.log()}")
        status, _ = self.api("GET", "/api/", auth=False)
        if status != 200:
            return False
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
            return True

    def stop(self, timeout: float = 30) -> int | None:
        return terminate(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL `portway serve` (a crash, the OOM killer): its nginx keeps running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def run_to_exit(self, timeout: float = 60) -> tuple[int, str]:
        """Run `portway serve` expecting it to end by itself: (exit status, its output)."""
        if not self.database.env:
            self.database.create()
        proc = subprocess.run(
            [sys.executable, "-m", "portway", "serve"],
            env=self.environment(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def cli(self, *args: str, timeout: float = 120) -> tuple[int, str]:
        """Run `portway <args>` against this installation (its data dir and database,
        created if needed): (exit status, stdout + stderr)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.database.env:
            self.database.create()
        proc = subprocess.run(
            [sys.executable, "-m", "portway", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def share_database_with(self, other: PortwayProcess) -> PortwayProcess:
        """Use `other`'s database (PostgreSQL/MariaDB) instead of a fresh one."""
        self.database = other.database
        return self

    def restart(self) -> PortwayProcess:
        self.stop()
        self._token = None
        return self.start()

    def close(self) -> None:
        self.stop()
        self._stop_stray_nginx()
        self.database.drop()

    def _stop_stray_nginx(self) -> None:
        """Stop an nginx left running by a killed `portway serve` of this data dir."""
        from portway.nginx.process import stray_master

        base = self.data_dir / "nginx"
        pid = stray_master(base / "run" / "nginx.pid", base)
        if pid is not None:
            os.kill(pid, signal.SIGQUIT)
            wait_for(lambda: stray_master(base / "run" / "nginx.pid", base) is None, 15)

    def __enter__(self) -> PortwayProcess:
        # `with PortwayProcess(...).start() as pw:` must not start a second serve: that one
        # would be refused by the instance lock while the first, no longer tracked, leaked
        if self.proc is not None and self.proc.poll() is None:
            return self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    # ----- admin API ------------------------------------------------------------------
    @property
    def token(self) -> str:
        if self._token is None:
            status, body = self.api(
                "POST",
                "/api/tokens",
                {"identity": ADMIN_EMAIL, "secret": ADMIN_PASSWORD},
                auth=False,
            )
            assert status == 200, body
            self._token = body["token"]
        return self._token

    def api(
        self, method: str, path: str, body: Any = None, auth: bool = True, token: str | None = None
    ) -> tuple[int, Any]:
        """Call the admin API; returns (status, decoded JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=60)
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {token or self.token}"
        conn.request(method, path, payload, headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def create_proxy_host(self, domains: list[str], port: int, **fields: Any) -> dict:
        body = {
            "domain_names": domains,
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": port,
            **fields,
        }
        status, data = self.api("POST", "/api/nginx/proxy-hosts", body)
        assert status == 201, data
        return data

    def upload_certificate(
        self, nice_name: str, certificate: bytes, key: bytes, intermediate: bytes | None = None
    ) -> dict:
        """Create a custom certificate and upload its PEMs (multipart, as NPM's UI does)."""
        import requests

        status, cert = self.api(
            "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": nice_name}
        )
        assert status == 201, cert
        files = {
            "certificate": ("cert.pem", certificate),
            "certificate_key": ("key.pem", key),
        }
        if intermediate:
            files["intermediate_certificate"] = ("chain.pem", intermediate)
        response = requests.post(
            f"http://127.0.0.1:{self.admin_port}/api/nginx/certificates/{cert['id']}/upload",
            files=files,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return self.api("GET", f"/api/nginx/certificates/{cert['id']}")[1]

    @property
    def admin_url(self) -> str:
        """http://127.0.0.1:<admin port> (UI pages at the root, the API under /api)."""
        return f"http://127.0.0.1:{self.admin_port}"

    def ui_session(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
        """A `requests.Session` signed in to the admin UI through its login form.

        POST with `ui_post`, which sends the CSRF token as the UI's own forms do.
        """
        import requests

        session = requests.Session()
        response = self.ui_post(session, "/login", {"email": email, "password": password})
        assert response.url.rstrip("/") == self.admin_url, f"login failed: {response.url}"
        return session

    def ui_post(self, session: Any, path: str, data: dict[str, str]) -> Any:
        """POST a UI form at `path` (a page with the form is fetched first for its CSRF
        token); follows the redirect and returns the final `requests.Response`."""
        page = session.get(self.admin_url + path, timeout=30)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return session.post(
            self.admin_url + path,
            data={**data, "csrfmiddlewaretoken": match.group(1)},
            headers={"Referer": self.admin_url + path},
            timeout=60,
        )

    def wait_applied(self, timeout: float = 30) -> None:
        """Wait until no apply is pending (every change so far is live or rejected)."""
        wait_for(lambda: self.api("GET", "/api/nginx/status")[1]["pending"] is False, timeout)

    # ----- traffic through nginx ------------------------------------------------------
    def http(
        self,
        host: str,
        path: str = "/",
        *,
        https: bool = False,
        sni: str | None = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        source: str | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to nginx with the given Host header (and SNI for HTTPS).

        `source`: the loopback address the client socket is bound to (e.g. "127.0.0.2"),
        so nginx sees the request come from there. `body`: sent with its Content-Length.
        Response headers are lowercased; repeated ones (Set-Cookie) joined by "\n".
        """
        bind = (source, 0) if source else None
        if https:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = _SNIConnection(
                "127.0.0.1", self.https_port, sni=sni if sni is not None else host, context=context
            )
            conn.source_address = bind
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.http_port, timeout=10, source_address=bind
            )
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        answer = response.read()
        received: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            received[key] = f"{received[key]}\n{value}" if key in received else value
        result = (response.status, received, answer)
        conn.close()
        return result

    def served_certificate(self, sni: str | None) -> x509.Certificate:
        """The leaf certificate nginx presents for `sni` (None: no SNI at all)."""
        return self.tls_handshake(sni)[0]

    def tls_handshake(self, sni: str | None) -> tuple[x509.Certificate, str | None]:
        """(leaf certificate, ALPN protocol) of a handshake offering h2 and http/1.1."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            alpn = tls.selected_alpn_protocol()
        return x509.load_der_x509_certificate(der), alpn

    def upstream_of(self, host: str, path: str = "/", **kwargs: Any) -> str | None:
        """Name of the upstream that answered, or None for a non-200 answer."""
        status, _, body = self.http(host, path, **kwargs)
        if status != 200:
            return None
        try:
            return json.loads(body).get("upstream")
        except ValueError:
            return None


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPSConnection whose SNI is chosen independently of the Host header."""

    def __init__(self, host: str, port: int, sni: str, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=10, context=context)
        self._sni = sni
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout, self.source_address)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._sni or None)
