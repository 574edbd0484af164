"""scripts/install as a system service, run twice in CI-like conditions (systemd not
PID 1): it writes the settings file and portway.service under PORTWAY_INSTALL_ROOT,
verifies the unit with systemd-analyze, and keeps and updates settings on the second
run. Then the unit's ExecStart line runs as written, with the unit's environment and
the unit's capability bounding set and NoNewPrivileges (setpriv), and must serve: the
admin API answers on PORTWAY_ADMIN_BIND only, nginx's workers switched to their user,
`portway status` and `portway check` find the installation through the settings file
alone, and SIGTERM stops nginx with it.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from portway.nginx.process import stray_master
from portway.testing.network import free_port
from portway.testing.plugin import missing_prerequisite
from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, wait_for

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
PORTWAY = Path(sys.executable).parent / "portway"


def _clean_environment(**extra: str) -> dict[str, str]:
    """The environment of a root shell: no Portway or database setting from the test run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTWAY_", "DB_", "INITIAL_ADMIN_", "DJANGO_", "LE_", "REQUESTS_"))
        # Django sets TZ in its own process (TIME_ZONE); a root shell has none
        and k != "TZ"
    }
    env.update(extra)
    return env


def _install(prefix: Path, **settings: str) -> subprocess.CompletedProcess:
    env = _clean_environment(PORTWAY_INSTALL_ROOT=str(prefix), **settings)
    return subprocess.run(
        [str(ROOT / "scripts" / "install"), "--no-build", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def _unit(path: Path) -> dict[str, list[str]]:
    """The unit's `Key=value` lines (every value of a key, in order)."""
    keys: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def _env_file(path: Path) -> dict[str, str]:
    from portway.conf import parse_env_file

    return parse_env_file(path.read_text())


def _listening(port: int, address: str) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _api_login(port: int) -> http.client.HTTPResponse | None:
    """POST /api/tokens with the administrator INITIAL_ADMIN_* created; None until up."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"identity": ADMIN_EMAIL, "secret": ADMIN_PASSWORD})
        conn.request("POST", "/api/tokens", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response
    except OSError:
        return None


def _children_uids(pid: int) -> list[int]:
    """Real uids of the processes whose parent is `pid`."""
    uids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["PPid"]) == pid:
            uids.append(int(fields["Uid"].split()[0]))
    return uids


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if os.geteuid() != 0:
        missing_prerequisite("scripts/install runs as root")
    if not shutil.which("systemd-analyze"):
        missing_prerequisite("systemd-analyze (Debian package systemd)")
    if not PORTWAY.exists():
        missing_prerequisite(f"{PORTWAY} (pip install -e .)")
    base = tmp_path_factory.mktemp("install")
    prefix = base / "root"
    data_dir = base / "data"
    settings = {
        "PORTWAY_DATA_DIR": str(data_dir),
        "PORTWAY_ADMIN_PORT": str(free_port()),
        "PORTWAY_HTTP_PORT": str(free_port()),
        "PORTWAY_HTTPS_PORT": str(free_port()),
        "PORTWAY_BIND_ADDRESS": "127.0.0.1",
        "PORTWAY_ADMIN_BIND": "127.0.0.1",
        "PORTWAY_RESOLVER": "127.0.0.1:9",
        "INITIAL_ADMIN_EMAIL": ADMIN_EMAIL,
        "INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    first = _install(prefix, **settings)
    assert first.returncode == 0, first.stdout + first.stderr
    # the update: only the variable set for this run changes, the rest is kept
    second = _install(prefix, PORTWAY_LOG_LEVEL="DEBUG")
    assert second.returncode == 0, second.stdout + second.stderr
    return {
        "prefix": prefix,
        "data_dir": data_dir,
        "settings": settings,
        "outputs": (first.stdout + first.stderr, second.stdout + second.stderr),
        "env_file": prefix / "etc" / "portway" / "portway.env",
        "unit": prefix / "etc" / "systemd" / "system" / "portway.service",
    }


def test_install_twice_writes_settings_and_a_valid_unit(installed):
    first, second = installed["outputs"]
    admin_url = f"http://127.0.0.1:{installed['settings']['PORTWAY_ADMIN_PORT']}/"
    for output in (first, second):
        assert "systemd-analyze verify" in output
        assert "could not be started" in output
        assert f"Admin UI: {admin_url}" in output
    env_file = installed["env_file"]
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = _env_file(env_file)
    assert values == {**installed["settings"], "PORTWAY_LOG_LEVEL": "DEBUG"}

    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(installed["unit"])],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    unit = _unit(installed["unit"])
    assert unit["EnvironmentFile"] == [str(env_file)]
    assert unit["Restart"] == ["on-failure"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert "CAP_NET_BIND_SERVICE" in unit["CapabilityBoundingSet"][0]
    assert unit["WantedBy"] == ["multi-user.target"]


def test_unit_exec_start_serves_and_stops_with_sigterm(installed, tmp_path):
    unit = _unit(installed["unit"])
    settings = installed["settings"]
    admin_port = int(settings["PORTWAY_ADMIN_PORT"])
    env = {"PATH": os.environ["PATH"], **_env_file(installed["env_file"])}
    for assignment in unit.get("Environment", []):
        name, value = assignment.split("=", 1)
        env[name] = value
    # the unit's hardening that a plain process can have: bounding set, no_new_privs
    capabilities = ",".join(
        "+" + cap.lower().removeprefix("cap_") for cap in unit["CapabilityBoundingSet"][0].split()
    )
    command = ["setpriv", "--no-new-privs", f"--bounding-set=-all,{capabilities}"]
    command += shlex.split(unit["ExecStart"][0])
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    nginx_base = installed["data_dir"] / "nginx"
    try:
        wait_for(lambda: proc.poll() is not None or _listening(admin_port, "127.0.0.1"), timeout=60)
        assert proc.poll() is None, log_path.read_text()
        # the admin API answers (the first administrator came from the settings file)
        api = wait_for(lambda: _api_login(admin_port), timeout=30)
        assert api.status == 200
        # PORTWAY_ADMIN_BIND=127.0.0.1: another loopback address is not served
        assert not _listening(admin_port, "127.0.0.2")
        master = wait_for(lambda: stray_master(nginx_base / "run" / "nginx.pid", nginx_base))
        # nginx's workers switched from root to their user despite NoNewPrivileges
        uids = wait_for(lambda: _children_uids(master))
        assert all(uid != 0 for uid in uids), uids

        # `portway status` with nothing but the settings file
        status_env = _clean_environment(PORTWAY_ENV_FILE=str(installed["env_file"]))
        status = subprocess.run(
            [str(PORTWAY), "status"], env=status_env, capture_output=True, text=True, cwd=tmp_path
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"running, pid {proc.pid}" in status.stdout
        assert str(installed["data_dir"]) in status.stdout
        assert f"nginx: master pid {master}" in status.stdout
        assert "hosts: 0 online, 0 offline, 0 disabled" in status.stdout
        assert f"port {admin_port} on 127.0.0.1" in status.stdout
        check = subprocess.run(
            [str(PORTWAY), "check"], env=status_env, capture_output=True, text=True, cwd=tmp_path
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "0 hosts, 0 rejected" in check.stdout
        assert not (tmp_path / "data").exists()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0, log_path.read_text()
        assert stray_master(nginx_base / "run" / "nginx.pid", nginx_base) is None
        stopped = subprocess.run(
            [str(PORTWAY), "status"], env=status_env, capture_output=True, text=True
        )
        assert stopped.returncode == 3, stopped.stdout + stopped.stderr
        assert "not running" in stopped.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        master = stray_master(nginx_base / "run" / "nginx.pid", nginx_base)
        if master:
            os.kill(master, signal.SIGQUIT)
