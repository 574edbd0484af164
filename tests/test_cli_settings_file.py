"""Every `portway` verb reads the service's settings file, and no verb but `serve` (or
one given --init) creates a new, empty installation where one was expected.

Run as a user would, from another directory with no Portway variable in the
environment: the settings file (PORTWAY_ENV_FILE standing in for
/etc/portway/portway.env) is all that points at the installation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PORTWAY = [sys.executable, "-m", "portway"]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTWAY_", "DB_", "INITIAL_ADMIN_", "DJANGO_"))
    }
    clean.update(env)
    return subprocess.run(
        PORTWAY + args, cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_file = tmp_path / "portway.env"
    data_dir = tmp_path / "installation"
    env_file.write_text(f"# the service's settings\nPORTWAY_DATA_DIR={data_dir}\n")
    return {"cwd": elsewhere, "env_file": env_file, "data_dir": data_dir}


def test_verbs_refuse_to_create_an_empty_installation(layout):
    cwd, env_file, data_dir = layout["cwd"], layout["env_file"], layout["data_dir"]
    for verb in (
        ["check"],
        ["apply"],
        ["createadmin", "--email", "a@example.com", "--password", "longenough"],
        ["reset-2fa", "--email", "a@example.com"],
    ):
        result = _run(verb, cwd, PORTWAY_ENV_FILE=str(env_file))
        assert result.returncode == 1, (verb, result.stdout, result.stderr)
        assert f"{data_dir} does not exist" in result.stderr
        assert "--init" in result.stderr
        assert result.stdout == ""
    # nothing was created: neither the configured directory nor ./data
    assert not data_dir.exists()
    assert list(cwd.iterdir()) == []

    # the data directory exists but holds no database: still refused, nothing written
    data_dir.mkdir()
    result = _run(["check"], cwd, PORTWAY_ENV_FILE=str(env_file))
    assert result.returncode == 1
    assert f"{data_dir / 'database.sqlite'} does not exist" in result.stderr
    assert list(data_dir.iterdir()) == []


def test_settings_file_finds_the_installation_and_environment_wins(layout):
    cwd, env_file, data_dir = layout["cwd"], layout["env_file"], layout["data_dir"]
    created = _run(["check", "--init"], cwd, PORTWAY_ENV_FILE=str(env_file))
    assert created.returncode == 0, created.stderr
    assert "0 hosts, 0 rejected by nginx" in created.stdout
    assert (data_dir / "database.sqlite").is_file()

    admin = ["createadmin", "--email", "a@example.com", "--password", "longenough"]
    result = _run(admin, cwd, PORTWAY_ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stderr
    result = _run(["check"], cwd, PORTWAY_ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stderr
    again = _run(admin, cwd, PORTWAY_ENV_FILE=str(env_file))
    assert again.returncode == 1
    assert "already exists" in again.stderr  # the same database, found through the file

    # a variable in the command's environment wins over the file
    other = cwd / "other"
    result = _run(["check"], cwd, PORTWAY_ENV_FILE=str(env_file), PORTWAY_DATA_DIR=str(other))
    assert result.returncode == 1
    assert f"{other} does not exist" in result.stderr
    assert list(cwd.iterdir()) == []

    status = _run(["status"], cwd, PORTWAY_ENV_FILE=str(env_file))
    assert status.returncode == 3, status.stderr
    assert f"not running (data directory {data_dir})" in status.stdout
    assert "hosts: 0 online, 0 offline, 0 disabled" in status.stdout


def test_unreadable_settings_file_is_named(layout):
    layout["env_file"].write_text("PORTWAY_DATA_DIR=/x\nthis is not a setting\n")
    result = _run(["check"], layout["cwd"], PORTWAY_ENV_FILE=str(layout["env_file"]))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"portway: {layout['env_file']}: line 2 is not NAME=value")


@pytest.mark.e2e_db
def test_empty_database_is_refused_until_init(layout, tmp_path):
    """On MariaDB/PostgreSQL (a fresh, empty database) and SQLite (DB_SQLITE_FILE
    elsewhere): a data directory alone is not an installation."""
    from portway.testing.process import _Database

    database = _Database()
    database.create()
    try:
        settings = dict(database.env)
        if database.kind == "sqlite":
            settings["DB_SQLITE_FILE"] = str(tmp_path / "elsewhere.sqlite")
        else:
            prefix = "DB_POSTGRES_" if database.kind == "postgres" else "DB_MYSQL_"
            for name, value in os.environ.items():
                if name.startswith(prefix) and not name.endswith("_NAME"):
                    settings[name] = value
        lines = [f"{name}={value}" for name, value in settings.items()]
        layout["env_file"].write_text(
            f"PORTWAY_DATA_DIR={layout['data_dir']}\n" + "\n".join(lines) + "\n"
        )
        layout["data_dir"].mkdir()
        env = {"PORTWAY_ENV_FILE": str(layout["env_file"])}
        refused = _run(["check"], layout["cwd"], **env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "no Portway database" in refused.stderr and "--init" in refused.stderr
        created = _run(["check", "--init"], layout["cwd"], **env)
        assert created.returncode == 0, created.stderr
        found = _run(["check"], layout["cwd"], **env)
        assert found.returncode == 0, found.stderr
        assert "0 hosts, 0 rejected by nginx" in found.stdout
    finally:
        database.drop()


def test_serve_refuses_a_data_dir_too_deep_for_unix_sockets(tmp_path):
    """nginx and Python cannot bind a unix socket whose path exceeds 107 bytes; serve says
    which directory is too long, by how much, before it writes anything."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    result = _run(["serve"], tmp_path, PORTWAY_DATA_DIR=str(deep))
    assert result.returncode == 1
    assert f"PORTWAY_DATA_DIR {deep} is too long" in result.stderr
    assert "at most 107" in result.stderr
    assert not deep.exists()
