"""Shared case second-instance-same-data-dir, and its database counterpart.

A second `portway serve` on a running installation's data directory (or, with MariaDB
or PostgreSQL, on its database) must refuse to start, say who is running, and change
nothing: the first keeps serving and keeps applying changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def _tree(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under `directory` with (mode, size, mtime_ns): what 'touched' changes."""
    state = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root, name)
            info = path.lstat()
            state[str(path.relative_to(directory))] = (
                info.st_mode,
                info.st_size,
                info.st_mtime_ns,
            )
    return state


def _settled_tree(directory: Path) -> dict[str, tuple[int, int, int]]:
    """The tree once the running instance has stopped changing it (SQLite removes its
    -wal and -shm files a moment after the last connection closes)."""
    previous: list[dict] = [{}]

    def settled() -> dict | None:
        current = _tree(directory)
        stable = current == previous[0]
        previous[0] = current
        return current if stable else None

    return wait_for(settled, timeout=15, interval=0.5)


def test_second_instance_same_data_dir_refuses_and_first_keeps_serving(tmp_path, upstreams):
    upstream = upstreams("upstream-8080")
    data_dir = tmp_path / "data"
    with PortwayProcess(data_dir) as first:
        before = first.create_proxy_host(["before.example.test"], upstream.port)
        wait_for(lambda: first.upstream_of("before.example.test") == "upstream-8080")
        first.wait_applied()

        second = PortwayProcess(data_dir).share_database_with(first)  # other ports B
        untouched = _settled_tree(data_dir)
        status, output = second.run_to_exit(timeout=60)

        assert status != 0
        lines = output.strip().splitlines()
        assert len(lines) == 1, output
        assert f"pid {first.proc.pid}" in lines[0]
        assert str(data_dir.resolve()) in lines[0]
        assert _tree(data_dir) == untouched
        # it never bound its ports either
        assert wait_for(lambda: first.upstream_of("before.example.test") == "upstream-8080")

        still = first.create_proxy_host(["still.example.test"], upstream.port)
        assert still["meta"]["nginx_online"] is True
        wait_for(lambda: first.upstream_of("still.example.test") == "upstream-8080")
        assert first.upstream_of("before.example.test") == "upstream-8080"
        status, host = first.api("GET", f"/api/nginx/proxy-hosts/{before['id']}")
        assert host["meta"]["nginx_online"] is True


def test_second_instance_same_database_refuses(tmp_path, upstreams):
    """Two data directories on one database (PostgreSQL, MariaDB, or one SQLite file
    through DB_SQLITE_FILE): the second is refused, naming the first."""
    sqlite_file = tmp_path / "shared.sqlite"
    env = {"DB_SQLITE_FILE": str(sqlite_file)}
    first = PortwayProcess(tmp_path / "one", env=env)
    upstream = upstreams("upstream")
    first.start()
    third = PortwayProcess(tmp_path / "three", env=env).share_database_with(first)
    try:
        second = PortwayProcess(tmp_path / "two", env=env).share_database_with(first)
        status, output = second.run_to_exit(timeout=90)
        assert status != 0
        lines = output.strip().splitlines()
        assert len(lines) == 1, output
        database = str(sqlite_file) if first.database.kind == "sqlite" else first.database.name
        assert database in lines[0]
        if first.database.kind == "mysql":
            # MariaDB only tells which connection holds a lock (the program name needs
            # performance_schema, off by default)
            assert "connected from 127.0.0.1" in lines[0]
        else:
            assert f"pid {first.proc.pid}" in lines[0]

        first.create_proxy_host(["db.example.test"], upstream.port)
        wait_for(lambda: first.upstream_of("db.example.test") == "upstream")

        first.stop()  # the database is free again
        third.start()
        wait_for(lambda: third.upstream_of("db.example.test") == "upstream")
    finally:
        third.stop()
        first.close()
