"""NPM import end to end: NPM installations of two vintages (SQLite and MariaDB) are
imported with `portway import-npm` into a running `portway serve`, and every imported
host answers through real nginx as NPM's configuration said it should."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from portway.npmimport.tests.npm_fixture import (
    ACCESS_PASSWORD,
    ACCESS_USER,
    EDITOR_PASSWORD,
    make_installation,
)
from portway.npmimport.tests.npm_schema import build_mysql, build_sqlite
from portway.testing.network import (
    TCPEchoServer,
    UDPEchoServer,
    UpstreamServer,
    tcp_exchange,
    udp_exchange,
)
from portway.testing.plugin import missing_prerequisite
from portway.testing.process import PortwayProcess, wait_for

pytestmark = pytest.mark.e2e_db


def _import(pw: PortwayProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portway", "import-npm", *args],
        env=pw.environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _mysql_settings() -> dict[str, Any]:
    return {
        "host": os.environ.get("NPM_TEST_MYSQL_HOST", "127.0.0.1"),
        "port": 3306,
        "user": "root",
        "password": "",
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("npmimport")
    with (
        UpstreamServer("A") as up_a,
        UpstreamServer("B") as up_b,
        TCPEchoServer(b"npm:") as echo,
        UDPEchoServer(b"npm-udp:") as udp_echo,
        TCPEchoServer(b"portway:") as portway_echo,
    ):
        pw = PortwayProcess(root / "portway")
        try:
            pw.start()
            yield {
                "pw": pw,
                "root": root,
                "a": up_a.port,
                "b": up_b.port,
                "echo": echo.port,
                "udp_echo": udp_echo.port,
                "portway_echo": portway_echo.port,
            }
        finally:
            pw.close()


@pytest.fixture(scope="module")
def sqlite_npm(setup: dict[str, Any]) -> dict[str, Any]:
    """The current NPM vintage in SQLite, dry run, import, import again."""
    pw = setup["pw"]
    npm = make_installation(
        setup["root"] / "npm-sqlite",
        "sq.test",
        setup["a"],
        setup["b"],
        "2024-05-01 10:00:00",
        echo_port=setup["echo"],
        udp_echo_port=setup["udp_echo"],
    )
    build_sqlite(str(npm.data / "database.sqlite"), "current", npm.rows)
    status, created = pw.api(
        "POST",
        "/api/nginx/streams",
        {
            "incoming_port": npm.stream_ports["clash"],
            "forwarding_host": "127.0.0.1",
            "forwarding_port": setup["portway_echo"],
        },
    )
    assert status == 201, created
    status, created = pw.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": [npm.names["taken"]],
            "forward_host": "127.0.0.1",
            "forward_port": setup["b"],
            "forward_scheme": "http",
        },
    )
    assert status == 201, created
    before = npm.checksums()
    hosts_before = pw.api("GET", "/api/nginx/proxy-hosts")[1]
    args = ["--data", str(npm.data), "--letsencrypt", str(npm.letsencrypt)]
    dry = _import(pw, *args, "--dry-run")
    hosts_after_dry = pw.api("GET", "/api/nginx/proxy-hosts")[1]
    first = _import(pw, *args)
    second = _import(pw, *args)
    return {
        "npm": npm,
        "dry": dry,
        "first": first,
        "second": second,
        "unchanged": (before, npm.checksums()),
        "dry_hosts": (hosts_before, hosts_after_dry),
    }


@pytest.fixture(scope="module")
def mysql_npm(setup: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The 2018 NPM vintage in MariaDB (a throwaway database), imported once."""
    import pymysql

    settings = _mysql_settings()
    name = "npm_fixture_" + uuid.uuid4().hex[:8]
    try:
        conn = pymysql.connect(**settings)
    except pymysql.MySQLError as exc:
        missing_prerequisite(f"MariaDB on 127.0.0.1:3306 (root) for the NPM fixture: {exc}")
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()
    pw = setup["pw"]
    npm = make_installation(
        setup["root"] / "npm-mysql",
        "my.test",
        setup["a"],
        setup["b"],
        "2018-11-01 09:00:00",
        echo_port=setup["echo"],
        udp_echo_port=setup["udp_echo"],
    )

    def checksums() -> list:
        conn = pymysql.connect(**settings, database=name)
        with conn.cursor() as cursor:
            cursor.execute("SHOW TABLES")
            tables = ", ".join(f"`{row[0]}`" for row in cursor.fetchall())
            cursor.execute(f"CHECKSUM TABLE {tables}")
            found = cursor.fetchall()
        conn.close()
        return found

    try:
        build_mysql({**settings, "database": name}, "2018", npm.rows)
        before = checksums(), npm.checksums()
        result = _import(
            pw,
            "--data",
            str(npm.data),
            "--letsencrypt",
            str(npm.letsencrypt),
            "--mysql-host",
            settings["host"],
            "--mysql-user",
            "root",
            "--mysql-name",
            name,
            "--mysql-password",
            "-",
            stdin="\n",  # root has no password here; read from standard input
        )
        yield {"npm": npm, "result": result, "unchanged": (before, (checksums(), npm.checksums()))}
    finally:
        conn = pymysql.connect(**settings)
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _upstream(pw: PortwayProcess, host: str, path: str = "/", **kwargs: Any) -> str | None:
    return wait_for(lambda: pw.upstream_of(host, path, **kwargs), timeout=30)


def test_sqlite_import_report(sqlite_npm: dict[str, Any]) -> None:
    first = sqlite_npm["first"]
    assert first.returncode == 0, first.stderr + first.stdout
    out = first.stdout
    assert "imported proxy host 1 (app.sq.test)" in out
    assert "skipped  proxy host 6 (taken.sq.test)" in out and "already used" in out
    assert "skipped  certificate 4 (Files lost)" in out and "missing" in out
    ports = sqlite_npm["npm"].stream_ports
    assert f"imported stream 1 (:{ports['tcp']} → 127.0.0.1:" in out
    assert f"skipped  stream 5 (:{ports['clash']}" in out
    assert f"port {ports['clash']} (TCP) is already used by enabled stream" in out
    assert "stream 3 " not in out  # soft-deleted
    assert "skipped  ACME account acme-v02.api.letsencrypt.org/directory/abc123" in out
    assert "old.sq.test" not in out  # soft-deleted rows are not even mentioned
    assert "former@sq.test" not in out


def test_dry_run_changes_nothing(sqlite_npm: dict[str, Any]) -> None:
    dry = sqlite_npm["dry"]
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Dry run: nothing was changed.")
    assert "imported proxy host 1 (app.sq.test)" in dry.stdout
    before, after = sqlite_npm["dry_hosts"]
    assert before == after


def test_second_import_adds_nothing(sqlite_npm: dict[str, Any]) -> None:
    second = sqlite_npm["second"]
    assert second.returncode == 0, second.stderr
    assert " 0 imported" in second.stdout.splitlines()[0]
    assert "already imported" in second.stdout


def test_npm_files_unchanged(sqlite_npm: dict[str, Any]) -> None:
    before, after = sqlite_npm["unchanged"]
    assert before == after and before


def test_sqlite_hosts_answer(setup: dict[str, Any], sqlite_npm: dict[str, Any]) -> None:
    pw, names = setup["pw"], sqlite_npm["npm"].names
    # proxy host with custom location, Force SSL, advanced config, custom certificate
    status, headers, _ = pw.http(names["app"], "/")
    assert status == 301 and headers["location"].startswith("https://app.sq.test")
    assert _upstream(pw, names["app"], "/", https=True) == "A"
    assert _upstream(pw, names["app"], "/api/x", https=True) == "B"
    status, headers, _ = pw.http(names["app"], "/", https=True)
    assert headers.get("x-from-npm") == "yes"
    served = pw.served_certificate(names["app"])
    assert served.serial_number == sqlite_npm["npm"].custom_serial
    # Let's Encrypt certificate: served, and kept as an ACME certificate
    assert pw.served_certificate(names["secure"]).serial_number == sqlite_npm["npm"].acme_serial
    certs = pw.api("GET", "/api/nginx/certificates")[1]
    acme = [c for c in certs if c["domain_names"] == [names["secure"]]]
    assert acme and acme[0]["provider"] == "letsencrypt"
    # access list: 401 without credentials, 200 with the NPM user's password
    assert pw.http(names["private"], "/")[0] == 401
    assert _upstream(pw, names["private"], headers=_basic(ACCESS_USER, ACCESS_PASSWORD)) == "B"
    assert pw.http(names["private"], "/", headers=_basic(ACCESS_USER, "wrong"))[0] == 401
    # redirection host: code and Location as NPM had them
    status, headers, _ = pw.http(names["go"], "/some/path?q=1")
    assert status == 301 and headers["location"] == "https://target.example.org/some/path?q=1"
    # 404 host, disabled host, soft-deleted host, default site "404"
    assert pw.http(names["gone"], "/")[0] == 404
    assert pw.upstream_of(names["off"]) is None
    assert pw.upstream_of(names["old"]) is None
    assert pw.http("unknown.sq.test", "/")[0] == 404
    # the Portway host holding a name NPM also had is untouched
    assert pw.upstream_of(names["taken"]) == "B"


def _echoed(port: int, data: bytes) -> bytes:
    """What comes back through Portway's stream on `port` (the echo server adds "npm:")."""
    return wait_for(lambda: _try_echo(port, data), timeout=30)


def _try_echo(port: int, data: bytes) -> bytes | None:
    try:
        return tcp_exchange(port, data, size=len(data) + 4) or None
    except OSError:
        return None


def test_sqlite_streams_echo(setup: dict[str, Any], sqlite_npm: dict[str, Any]) -> None:
    pw, npm = setup["pw"], sqlite_npm["npm"]
    ports = npm.stream_ports
    assert _echoed(ports["tcp"], b"hello from npm") == b"npm:hello from npm"
    # TLS terminated by Portway's nginx with NPM's custom certificate, plain TCP behind it
    context = ssl.create_default_context(cadata=npm.ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", ports["tls"]), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=npm.names["app"]) as tls,
    ):
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        assert served.serial_number == npm.custom_serial
        tls.sendall(b"secret")
        answer = b""
        while len(answer) < len(b"npm:secret") and (chunk := tls.recv(100)):
            answer += chunk
        assert answer == b"npm:secret"
    # disabled in NPM: imported, not listening
    with pytest.raises(OSError):
        udp_exchange(ports["udp"], b"off", timeout=0.5)
    streams = {s["incoming_port"]: s for s in pw.api("GET", "/api/nginx/streams")[1]}
    assert streams[ports["udp"]]["enabled"] is False
    assert streams[ports["udp"]]["udp_forwarding"] is True
    # the port a Portway stream held stays Portway's
    assert tcp_exchange(ports["clash"], b"mine", size=12) == b"portway:mine"


def test_imported_user_signs_in_with_npm_password(
    setup: dict[str, Any], sqlite_npm: dict[str, Any]
) -> None:
    pw, npm = setup["pw"], sqlite_npm["npm"]
    status, body = pw.api(
        "POST", "/api/tokens", {"identity": npm.editor_email, "secret": EDITOR_PASSWORD}, auth=False
    )
    assert status == 200, body
    status, me = pw.api("GET", "/api/users/me?expand=permissions", token=body["token"])
    assert me["permissions"]["certificates"] == "view"
    assert me["permissions"]["access_lists"] == "hidden"
    assert me["roles"] == []
    # the import page is for administrators only
    session = pw.ui_session(npm.editor_email, EDITOR_PASSWORD)
    assert session.get(pw.admin_url + "/settings/import-npm", timeout=30).status_code == 403
    # the host NPM gave this user is theirs in Portway
    hosts = pw.api("GET", "/api/nginx/proxy-hosts", token=body["token"])[1]
    assert [h["domain_names"] for h in hosts] == [[npm.names["private"]]]
    status, _ = pw.api(
        "POST", "/api/tokens", {"identity": npm.editor_email, "secret": "wrong-pass"}, auth=False
    )
    assert status == 401


def test_mysql_2018_vintage_import(setup: dict[str, Any], mysql_npm: dict[str, Any]) -> None:
    pw, npm, result = setup["pw"], mysql_npm["npm"], mysql_npm["result"]
    assert result.returncode == 0, result.stderr + result.stdout
    before, after = mysql_npm["unchanged"]
    assert before == after  # NPM's tables and files are as they were
    names = npm.names
    assert _upstream(pw, names["app"], "/", https=True) == "A"
    # 2018: no custom locations yet, so /api goes to the host's own upstream
    assert _upstream(pw, names["app"], "/api/x", https=True) == "A"
    assert pw.served_certificate(names["app"]).serial_number == npm.custom_serial
    assert pw.http(names["private"], "/")[0] == 401
    assert _upstream(pw, names["private"], headers=_basic(ACCESS_USER, ACCESS_PASSWORD)) == "B"
    # 2018: no forward_http_code column (NPM answered 302) and no scheme choice
    status, headers, _ = pw.http(names["go"], "/p")
    assert status == 302 and headers["location"] == "http://target.example.org/p"
    assert pw.http(names["gone"], "/")[0] == 404
    # 2018: no `enabled` column, so every host was enabled
    assert _upstream(pw, names["off"]) == "A"
    ports = npm.stream_ports
    assert _echoed(ports["tcp"], b"from 2018") == b"npm:from 2018"
    # 2018: streams had no certificate (plain TCP) and were all enabled (the UDP one too)
    assert _echoed(ports["tls"], b"plain") == b"npm:plain"
    assert udp_exchange(ports["udp"], b"dns?") == b"npm-udp:dns?"
    assert _echoed(ports["clash"], b"free here") == b"npm:free here"


def _upload(pw: PortwayProcess, session: Any, data: dict[str, str], files: dict | None = None):
    import re

    page = session.get(pw.admin_url + "/settings/import-npm", timeout=30)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        pw.admin_url + "/settings/import-npm",
        data={**data, "csrfmiddlewaretoken": token},
        files=files,
        headers={"Referer": pw.admin_url + "/settings/import-npm"},
        timeout=120,
    )


def test_ui_upload_dry_run_then_import(setup: dict[str, Any], tmp_path: Path) -> None:
    import io
    import re
    import tarfile

    pw = setup["pw"]
    npm = make_installation(
        tmp_path / "npm", "up.test", setup["a"], setup["b"], "2025-02-02 08:00:00"
    )
    build_sqlite(str(npm.data / "database.sqlite"), "current", npm.rows)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(npm.data, arcname="data")
        tar.add(npm.letsencrypt, arcname="data/letsencrypt")  # live/ keeps its symlinks
    session = pw.ui_session()
    files = {"archive": ("npm-data.tar.gz", buffer.getvalue(), "application/gzip")}
    dry = _upload(pw, session, {"action": "upload"}, files)
    assert dry.status_code == 200, dry.text
    assert "Nothing has changed yet" in dry.text and "app.up.test" in dry.text
    assert pw.upstream_of(npm.names["app"], https=True) is None  # not imported yet
    token = re.search(r'name="token" value="([0-9a-f]{32})"', dry.text).group(1)
    done = _upload(pw, session, {"action": "confirm", "token": token})
    assert done.status_code == 200 and "Imported" in done.text, done.text
    assert _upstream(pw, npm.names["app"], "/api/x", https=True) == "B"
    # the Let's Encrypt certificate came from archive/ (the live/ links were not unpacked)
    assert pw.served_certificate(npm.names["secure"]).serial_number == npm.acme_serial
    again = _upload(pw, session, {"action": "confirm", "token": token})
    assert again.status_code == 400 and "this upload is gone" in again.text


def test_ui_refuses_hostile_archive(setup: dict[str, Any], tmp_path: Path) -> None:
    import io
    import tarfile

    pw = setup["pw"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("data/database.sqlite")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
        evil = tarfile.TarInfo("../../npm-escape")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    session = pw.ui_session()
    files = {"archive": ("evil.tar.gz", buffer.getvalue(), "application/gzip")}
    refused = _upload(pw, session, {"action": "upload"}, files)
    assert refused.status_code == 400
    assert "leaves the archive" in refused.text
    assert not (pw.data_dir / "npm-escape").exists()
    assert not list((pw.data_dir / "npm-import").glob("*"))  # nothing left behind
