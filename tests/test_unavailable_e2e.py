"""A locked or read-only database and a full disk: 503 with what to do, never a 500.

Each test breaks a real `portway serve` (SQLite, real nginx) the way it breaks on a
server, and checks what an API client and a person in the UI see, then repairs it and
checks that Portway works again without a restart:

- locked: another process holds `BEGIN EXCLUSIVE` for longer than Portway's busy
  timeout (20 s), as a backup tool or a stray `sqlite3` shell does;
- read-only: the database file is bind-mounted read-only over itself (as root, file
  modes would not stop Portway, a read-only mount does);
- full disk: the data directory is a small tmpfs, filled to the last byte.

The mounts need root (CAP_SYS_ADMIN); without it these tests skip, loudly, except
under CI=true where a missing prerequisite fails.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from portway.core import errors
from portway.testing.network import DNSServer
from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("DB_MYSQL_HOST") or os.environ.get("DB_POSTGRES_HOST")),
        reason="SQLite file locks and mounts; server databases have their own 503 paths",
    ),
]

HOST = {
    "domain_names": ["unavailable.example.com"],
    "forward_scheme": "http",
    "forward_host": "127.0.0.1",
    "forward_port": 9,
}


def _mount(*args: str) -> None:
    """Run mount(8); skip (fail under CI) when this machine does not let us mount."""
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = f"`mount {' '.join(args)}` failed ({result.stderr.strip()}): needs root"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip("NOT TESTED: " + reason)


def _umount(path: Path) -> None:
    """Unmount `path`; if something still holds it open, detach it anyway (lazy)."""
    try:
        wait_for(lambda: _run_umount(path), timeout=10)
    except AssertionError:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)
        raise


def _run_umount(path: Path) -> bool:
    return subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode == 0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def portway(data_dir: Path) -> Iterator[PortwayProcess]:
    with DNSServer() as dns_server:
        process = PortwayProcess(data_dir, env={"PORTWAY_RESOLVER": dns_server.address})
        try:
            process.start()
            yield process
        finally:
            process.close()


class Browser:
    """What a person's browser does: get the login form, post it back with its token."""

    def __init__(self, portway: PortwayProcess) -> None:
        self.base = f"http://127.0.0.1:{portway.admin_port}"
        self.session = requests.Session()

    def log_in(self) -> requests.Response:
        """The login form's answer, or the login page's when that is already an error."""
        form = self.session.get(f"{self.base}/login", timeout=60)
        if form.status_code != 200:
            return form
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        return self.session.post(
            f"{self.base}/login",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "email": ADMIN_EMAIL,
                "password": ADMIN_PASSWORD,
            },
            headers={"Referer": f"{self.base}/login"},
            allow_redirects=False,
            timeout=60,
        )


def assert_api_503(answer: tuple[int, object], message: str) -> None:
    status, body = answer
    assert status == 503, (status, body)
    assert body == {"error": {"code": 503, "message": message}}, body


def assert_page_503(response: requests.Response, message: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    html = response.text
    assert 'id="error-page"' in html and "tabler.min.css" in html, html[:500]
    assert message.replace("'", "&#x27;") in html, html[:2000]


def assert_works_again(portway: PortwayProcess) -> None:
    """Repaired: the same request succeeds, no restart; the failed one left nothing."""
    status, hosts = portway.api("GET", "/api/nginx/proxy-hosts")
    assert status == 200 and hosts == [], hosts
    status, host = portway.api("POST", "/api/nginx/proxy-hosts", HOST)
    assert status == 201, host
    assert Browser(portway).log_in().status_code == 302


def test_a_database_locked_by_another_process_is_a_503_saying_to_retry(
    portway: PortwayProcess, data_dir: Path
):
    # Log in before the lock: the API token is issued while the database is free
    portway.api("GET", "/api/nginx/proxy-hosts")
    holder = sqlite3.connect(data_dir / "database.sqlite", timeout=30, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        # Reads still work (WAL); both writes wait out the busy timeout at the same time
        assert portway.api("GET", "/api/nginx/proxy-hosts")[0] == 200
        results: dict[str, object] = {}
        threads = [
            threading.Thread(
                target=lambda: results.update(
                    api=portway.api("POST", "/api/nginx/proxy-hosts", HOST)
                )
            ),
            threading.Thread(target=lambda: results.update(ui=Browser(portway).log_in())),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_api_503(results["api"], errors.BUSY)
    assert_page_503(results["ui"], errors.BUSY)
    assert results["ui"].headers["Retry-After"] == "5"
    assert_works_again(portway)


def test_a_read_only_database_is_a_503_saying_to_make_it_writable(
    portway: PortwayProcess, data_dir: Path
):
    database = data_dir / "database.sqlite"
    portway.api("GET", "/api/nginx/proxy-hosts")  # the token, issued while writable
    _mount("--bind", str(database), str(database))
    try:
        _mount("-o", "remount,bind,ro", str(database))
        assert portway.api("GET", "/api/nginx/proxy-hosts")[0] == 200  # reading still works
        assert_api_503(portway.api("POST", "/api/nginx/proxy-hosts", HOST), errors.READ_ONLY)
        assert_page_503(Browser(portway).log_in(), errors.READ_ONLY)
    finally:
        _umount(database)
    assert_works_again(portway)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs for the data directory, unmounted after the test."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    _mount("-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs", str(mount_point))
    try:
        yield mount_point
    finally:
        _umount(mount_point)


def _fill(disk: Path) -> Path:
    """Write a file until the file system has no byte left; returns the file."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def test_a_full_disk_is_a_503_saying_to_free_space(small_disk: Path, tmp_path: Path):
    with DNSServer() as dns_server:
        portway = PortwayProcess(small_disk / "data", env={"PORTWAY_RESOLVER": dns_server.address})
        try:
            portway.start()
            portway.api("GET", "/api/nginx/proxy-hosts")  # the token, issued with space left
            # An empty write-ahead log, so the next write needs new space on the disk
            conn = sqlite3.connect(small_disk / "data" / "database.sqlite")
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            filler = _fill(small_disk)
            try:
                # SQLite may need a byte of disk even to read (its shared-memory file)
                answer = portway.api("GET", "/api/nginx/proxy-hosts")
                if answer[0] != 200:
                    assert_api_503(answer, errors.DISK_FULL)
                assert_api_503(
                    portway.api("POST", "/api/nginx/proxy-hosts", HOST), errors.DISK_FULL
                )
                assert_page_503(Browser(portway).log_in(), errors.DISK_FULL)
            finally:
                filler.unlink()
            assert_works_again(portway)
        finally:
            portway.close()
