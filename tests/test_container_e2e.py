"""Portway's container image, built with scripts/build-image and run with Debian's podman.

One image per module (the Debian base is debootstrapped once and cached in
/var/cache/portway-test-base, so later runs only rebuild Portway's layers). Containers use
the host's network on 127.0.0.1 high ports; upstreams are real servers on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portway.testing.container import (
    BASE_CACHE,
    PortwayContainer,
    build_image,
    image_size,
    missing_programs,
    podman_environment,
)
from portway.testing.network import UpstreamServer
from portway.testing.plugin import missing_prerequisite

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
def image(work_dir: Path, podman_env: dict[str, str]) -> str:
    tag, seconds = build_image(work_dir)
    print(f"\nimage {tag}: {image_size(tag, podman_env) / 1e6:.0f} MB, built in {seconds:.0f} s")
    return tag


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("in-container-test") as server:
        yield server


@pytest.fixture
def container(
    image: str, tmp_path: Path, podman_env: dict[str, str]
) -> Iterator[Callable[..., PortwayContainer]]:
    made: list[PortwayContainer] = []

    def make(env: dict[str, str] | None = None, volume: Path | None = None) -> PortwayContainer:
        made.append(PortwayContainer(image, volume or tmp_path / "data", env, podman_env))
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


def _fake_npm_installation(data: Path) -> dict[Path, str]:
    """NPM's files in /data (its SQLite database with NPM's tables, nginx/, keys.json);
    returns each file's SHA-256 to compare after Portway ran."""
    (data / "nginx" / "proxy_host").mkdir(parents=True)
    (data / "nginx" / "proxy_host" / "1.conf").write_text("# NPM's generated config\n")
    (data / "keys.json").write_text('{"key": "npm"}\n')
    database = sqlite3.connect(data / "database.sqlite")
    for table in ("user", "proxy_host", "certificate", "migrations"):
        database.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY)')
    database.commit()
    database.close()
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in data.rglob("*.*")}


def test_npm_volume_untouched_and_puid_pgid(
    container: Callable[..., PortwayContainer], tmp_path: Path
) -> None:
    data = tmp_path / "npm-data"
    data.mkdir()
    before = _fake_npm_installation(data)
    # NPM's sqlite compose sets DB_SQLITE_FILE to its own database: Portway must not use it
    pw = container(
        {"PUID": "1000", "PGID": "1000", "DB_SQLITE_FILE": "/data/database.sqlite"}, data
    ).start()
    assert pw.api("GET", "/api/", auth=False)[0] == 200
    assert "import" in pw.log()  # the first start noticed NPM's installation

    portway_db = data / "portway" / "database.sqlite"
    assert portway_db.is_file()
    assert (portway_db.stat().st_uid, portway_db.stat().st_gid) == (1000, 1000)
    after = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in before}
    assert after == before
    assert not (data / "database.sqlite-journal").exists()
    assert pw.stop() < 10


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
