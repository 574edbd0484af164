"""Portway's container image, built with scripts/build-image and run with Debian's podman.

One image per module (the Debian base is debootstrapped once and cached in
/var/cache/portway-test-base, so later runs only rebuild Portway's layers). Containers use
the host's network on 127.0.0.1 high ports; upstreams are real servers on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portway.npmimport.tests.npm_fixture import NpmInstall, make_installation
from portway.npmimport.tests.npm_schema import build_sqlite
from portway.testing.container import (
    BASE_CACHE,
    IMAGE,
    REPO,
    PortwayContainer,
    build_image,
    image_size,
    missing_programs,
    podman_environment,
)
from portway.testing.network import TCPEchoServer, UpstreamServer, free_port, tcp_exchange
from portway.testing.plugin import missing_prerequisite
from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.container]


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("container")


@pytest.fixture(scope="module")
def podman_env(work_dir: Path) -> dict[str, str]:
    missing = missing_programs()
    if missing:
        missing_prerequisite(f"{', '.join(missing)} not installed (apt-get install podman runc)")
    if os.geteuid() != 0 and not any(BASE_CACHE.glob("*.tar")):
        missing_prerequisite(
            f"debootstrap of the base image needs root (or a tarball in {BASE_CACHE})"
        )
    if shutil.which("debootstrap") is None and not any(BASE_CACHE.glob("*.tar")):
        missing_prerequisite("debootstrap not installed (apt-get install debootstrap)")
    return podman_environment(work_dir)


@pytest.fixture(scope="module")
def image(work_dir: Path, podman_env: dict[str, str]) -> Iterator[str]:
    # A tag of this run's own: parallel runs from other checkouts build the same name
    tag, seconds = build_image(work_dir, f"{IMAGE.rsplit(':', 1)[0]}:run-{os.getpid()}")
    print(f"\nimage {tag}: {image_size(tag, podman_env) / 1e6:.0f} MB, built in {seconds:.0f} s")
    yield tag
    subprocess.run(["podman", "rmi", tag], env=podman_env, capture_output=True, check=False)


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("in-container-test") as server:
        yield server


@pytest.fixture
def container(
    image: str, tmp_path: Path, podman_env: dict[str, str]
) -> Iterator[Callable[..., PortwayContainer]]:
    made: list[PortwayContainer] = []

    def make(
        env: dict[str, str] | None = None,
        volume: Path | None = None,
        letsencrypt: Path | None = None,
    ) -> PortwayContainer:
        made.append(
            PortwayContainer(image, volume or tmp_path / "data", env, podman_env, letsencrypt)
        )
        return made[-1]

    yield make
    for item in made:
        item.close()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_image_serves_keeps_data_and_stops_fast(
    container: Callable[..., PortwayContainer], upstream: UpstreamServer
) -> None:
    pw = container().start()
    print(f"\ncontainer start to admin API answering: {pw.start_seconds:.1f} s")
    assert pw.api("GET", "/api/", auth=False)[0] == 200

    pw.create_proxy_host(["app.example.com"], upstream.port)
    pw.wait_applied()
    assert pw.upstream_of("app.example.com") == "in-container-test"
    # Portway's state is in /data/portway on the volume, owner-only
    assert (pw.volume / "portway" / "database.sqlite").is_file()
    assert "nginx" in pw.processes()

    seconds = pw.stop()
    print(f"podman stop: {seconds:.1f} s")
    assert seconds < 10
    status, exit_code = pw.state()
    # 0: Portway stopped nginx and exited on SIGTERM (137 would be podman's SIGKILL)
    assert (status, exit_code) == ("exited", 0), pw.log()
    assert not _port_open(pw.http_port)
    assert not _port_open(pw.admin_port)

    pw.restart()  # a new container on the same volume
    assert pw.upstream_of("app.example.com") == "in-container-test"
    status, hosts = pw.api("GET", "/api/nginx/proxy-hosts")
    assert status == 200
    assert [host["domain_names"] for host in hosts] == [["app.example.com"]]


def _npm_files(npm: NpmInstall) -> dict[str, str]:
    """Checksums of NPM's files, without Portway's own directory /data/portway."""
    ours = str(npm.data / "portway") + os.sep
    return {path: sha for path, sha in npm.checksums().items() if not path.startswith(ours)}


def test_first_start_imports_npm_once(
    container: Callable[..., PortwayContainer], upstream: UpstreamServer, tmp_path: Path
) -> None:
    """An NPM user's volumes (/data with NPM's SQLite database, /etc/letsencrypt): the first
    start imports NPM for real, the second does not import again, NPM's files stay as
    they were."""
    with TCPEchoServer(b"npm:") as echo:
        npm = make_installation(
            tmp_path / "npm",
            "ct.test",
            upstream.port,
            upstream.port,
            "2024-05-01 10:00:00",
            echo_port=echo.port,
        )
        build_sqlite(str(npm.data / "database.sqlite"), "current", npm.rows)
        before = _npm_files(npm)
        # NPM's sqlite compose sets DB_SQLITE_FILE to its own database: Portway must not use it
        pw = container(
            {"PUID": "1000", "PGID": "1000", "DB_SQLITE_FILE": "/data/database.sqlite"},
            npm.data,
            npm.letsencrypt,
        ).start()
        marker = npm.data / "portway" / "npm-import.json"
        assert json.loads(marker.read_text())["state"] == "done", pw.log()
        names = npm.names
        # NPM's proxy host (Force SSL, custom certificate) answers through the container
        assert pw.upstream_of(names["app"], https=True) == "in-container-test", pw.log()
        assert pw.served_certificate(names["app"]).serial_number == npm.custom_serial
        # Let's Encrypt certificate from the /etc/letsencrypt volume
        assert pw.served_certificate(names["secure"]).serial_number == npm.acme_serial
        assert tcp_exchange(npm.stream_ports["tcp"], b"stream", size=10) == b"npm:stream"
        # the import ran as INITIAL_ADMIN_* (created first): the API answers for it
        status, hosts = pw.api("GET", "/api/nginx/proxy-hosts")
        assert status == 200 and len(hosts) == 6, hosts

        portway_db = npm.data / "portway" / "database.sqlite"
        assert (portway_db.stat().st_uid, portway_db.stat().st_gid) == (1000, 1000)
        assert _npm_files(npm) == before
        assert not (npm.data / "database.sqlite-journal").exists()
        assert pw.stop() < 10

        first_marker = marker.read_text()
        pw.restart()  # second start: Portway has its database, nothing imported again
        assert marker.read_text() == first_marker
        assert "importing" not in pw.log()
        assert len(pw.api("GET", "/api/nginx/proxy-hosts")[1]) == 6
        assert pw.upstream_of(names["app"], https=True) == "in-container-test"
        assert _npm_files(npm) == before


def test_database_on_postgresql(
    container: Callable[..., PortwayContainer], upstream: UpstreamServer
) -> None:
    import psycopg

    name = "portway_container_" + uuid.uuid4().hex[:10]
    try:
        admin = psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        )
    except psycopg.OperationalError as exc:
        missing_prerequisite(f"PostgreSQL on 127.0.0.1:5432 (user postgres): {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            pw = container(
                {
                    "DB_POSTGRES_HOST": "127.0.0.1",
                    "DB_POSTGRES_PORT": "5432",
                    "DB_POSTGRES_USER": "postgres",
                    "DB_POSTGRES_NAME": name,
                }
            ).start()
            pw.create_proxy_host(["pg.example.com"], upstream.port)
            pw.wait_applied()
            assert pw.upstream_of("pg.example.com") == "in-container-test"
            assert not (pw.volume / "portway" / "database.sqlite").exists()
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name) as db:
                rows = db.execute("SELECT count(*) FROM hosts_proxyhost").fetchone()
            assert rows == (1,)
            pw.close()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


COMPOSE_PORTS = ("'80:80'", "'443:443'", "'81:81'")


def test_compose_file_runs_with_podman_compose(
    image: str, podman_env: dict[str, str], tmp_path: Path
) -> None:
    """compose.yaml as an NPM user runs it (`podman-compose up -d` in its folder, ./data
    and ./letsencrypt beside it, Portway on its default ports 80/443/81 in the container);
    only the published host ports are moved to free loopback ports. (An override file
    cannot do that: compose concatenates `ports` lists, so 80:80 would stay.)"""
    if shutil.which("podman-compose") is None:
        missing_prerequisite("podman-compose not installed (apt-get install podman-compose)")
    text = (REPO / "compose.yaml").read_text()
    http_port, https_port, admin_port = free_port(), free_port(), free_port()
    for npm_port, port in zip(COMPOSE_PORTS, (http_port, https_port, admin_port), strict=True):
        assert f"- {npm_port}" in text  # NPM's own ports in the file as shipped
        container_port = npm_port.strip("'").split(":")[1]
        text = text.replace(f"- {npm_port}", f"- '127.0.0.1:{port}:{container_port}'")
    project = tmp_path / f"portway{uuid.uuid4().hex[:8]}"  # compose's project: its name
    project.mkdir()
    (project / "compose.yaml").write_text(text)
    env = {**podman_env, "PORTWAY_IMAGE": image}

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["podman-compose", "-f", "compose.yaml", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=180,
        )

    up = compose("up", "-d")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        wait_for(lambda: _status(admin_port, "/api/") == 200, timeout=120, interval=0.2)
        # Portway's state went to ./data/portway on the user's volume
        assert (project / "data" / "portway" / "database.sqlite").is_file()
        # nginx answers on the published HTTP port (the default site)
        assert _status(http_port, "/") in (200, 404)
    finally:
        down = compose("down")
        subprocess.run(
            ["podman", "network", "rm", "-f", f"{project.name}_default"],
            env=podman_env,
            capture_output=True,
            check=False,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert not _port_open(admin_port)


def _status(port: int, path: str) -> int | None:
    """Status of GET http://127.0.0.1:`port``path`, None while nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()
