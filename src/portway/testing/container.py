"""Portway's container image in tests: built with scripts/build-image, run with podman.

    image = build_image(context_dir)          # podman build (base image cached)
    with PortwayContainer(image, volume) as pw:
        pw.create_proxy_host(["app.example.com"], upstream.port)
        status, headers, body = pw.http("app.example.com", "/")

The container uses the host's network (`--network host`): its nginx and admin server listen
on 127.0.0.1 high ports picked here, so PortwayProcess's API and traffic helpers apply.
No registry is reachable on CI machines, so the Debian base image is made with debootstrap
once and cached in BASE_CACHE (tarball of the root filesystem).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "scripts" / "build-image"
ASSETS = REPO / "src" / "portway" / "web" / "static" / "vendor"
BASE_CACHE = Path(os.environ.get("PORTWAY_TEST_BASE_CACHE", "/var/cache/portway-test-base"))
IMAGE = "localhost/portway-test:latest"
# What podman needs on VMs where crun and the systemd cgroup manager do not work.
CONTAINERS_CONF = """[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


def podman_environment(work_dir: Path) -> dict[str, str]:
    """os.environ plus CONTAINERS_CONF (written into work_dir) unless one is set already."""
    env = dict(os.environ)
    if not env.get("CONTAINERS_CONF"):
        conf = work_dir / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        env["CONTAINERS_CONF"] = str(conf)
    return env


def missing_programs() -> list[str]:
    """Programs the container tests need that are not installed."""
    return [name for name in ("podman", "runc") if shutil.which(name) is None]


def build_image(work_dir: Path, tag: str = IMAGE) -> tuple[str, float]:
    """Build Portway's image with scripts/build-image and podman; (tag, seconds taken).

    Raises:
        AssertionError: the build failed (its output is in the message).
    """
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(BUILD_SCRIPT),
            "--engine",
            "podman",
            "--tag",
            tag,
            "--base-from-debootstrap",
            "--base-cache",
            str(BASE_CACHE),
            "--context",
            str(work_dir / "context"),
            # the assets .ci/run built: rebuilding them here would rewrite files that
            # browser tests of a parallel run are loading
            *(["--no-assets"] if ASSETS.is_dir() else []),
        ],
        env=podman_environment(work_dir),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=3600,
    )
    assert proc.returncode == 0, (
        f"build-image failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    )
    return tag, time.monotonic() - started


def image_size(tag: str, env: dict[str, str]) -> int:
    """Size of the image in bytes (all layers, as `podman images` shows)."""
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", tag],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


class PortwayContainer(PortwayProcess):
    """`podman run` of Portway's image with a host directory as /data.

    Args:
        image: the image tag.
        volume: host directory mounted as /data (created if missing).
        letsencrypt: host directory mounted as /etc/letsencrypt (NPM's second volume).
        env: extra environment of the container (added to the ports and first admin).
        podman_env: environment of the podman commands (CONTAINERS_CONF).
    """

    def __init__(
        self,
        image: str,
        volume: Path,
        env: dict[str, str] | None = None,
        podman_env: dict[str, str] | None = None,
        letsencrypt: Path | None = None,
    ) -> None:
        super().__init__(volume / "portway", env=env)
        self.image = image
        self.volume = volume
        self.letsencrypt = letsencrypt
        self.podman_env = podman_env or dict(os.environ)
        self.name = f"portway-test-{os.getpid()}-{self.admin_port}"
        self.log_path = volume.parent / f"{volume.name}-container.log"
        self.start_seconds: float | None = None

    def podman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `podman ARGS` (output captured, never raises on a non-zero exit)."""
        return subprocess.run(
            ["podman", *args],
            env=self.podman_env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    def container_environment(self) -> dict[str, str]:
        """What the container gets with -e: ports on 127.0.0.1, the first admin, extras."""
        env = {
            "PORTWAY_ADMIN_PORT": str(self.admin_port),
            "PORTWAY_HTTP_PORT": str(self.http_port),
            "PORTWAY_HTTPS_PORT": str(self.https_port),
            "PORTWAY_BIND_ADDRESS": "127.0.0.1",
            # nginx must never ask a DNS server off this machine during tests
            "PORTWAY_RESOLVER": "127.0.0.1:9",
            "INITIAL_ADMIN_EMAIL": ADMIN_EMAIL,
            "INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 120) -> PortwayContainer:
        """`podman run -d` a new container on the volume; waits until GET /api/ is 200 and
        records the seconds that took in `start_seconds`."""
        self.volume.mkdir(parents=True, exist_ok=True)
        self.podman("rm", "-f", self.name)
        args = ["run", "-d", "--name", self.name, "--network", "host"]
        args += ["-v", f"{self.volume}:/data"]
        if self.letsencrypt is not None:
            args += ["-v", f"{self.letsencrypt}:/etc/letsencrypt"]
        for key, value in self.container_environment().items():
            args += ["-e", f"{key}={value}"]
        started = time.monotonic()
        run = self.podman(*args, self.image)
        assert run.returncode == 0, f"podman run failed: {run.stderr}"
        try:
            wait_for(self._ready, timeout, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"the container did not start:\n{self.log()}") from exc
        self.start_seconds = time.monotonic() - started
        return self

    def state(self) -> tuple[str, int]:
        """(status, exit code) of the container, e.g. ("running", 0) or ("exited", 0)."""
        out = self.podman(
            "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", self.name
        ).stdout.split()
        return (out[0], int(out[1])) if len(out) == 2 else ("missing", -1)

    def _ready(self) -> bool:
        status, code = self.state()
        if status not in {"running", "created", "configured"}:
            raise AssertionError(f"the container is {status} (exit {code}):\n{self.log()}")
        try:
            return self.api("GET", "/api/", auth=False)[0] == 200
        except OSError:
            return False

    def processes(self) -> list[str]:
        """Command names of the processes running in the container (`podman top`)."""
        out = self.podman("top", self.name, "comm").stdout.splitlines()
        return [line.strip() for line in out[1:] if line.strip()]

    def stop(self, timeout: float = 30) -> float:  # type: ignore[override]
        """`podman stop` (SIGTERM, SIGKILL after 10 s); returns the seconds it took."""
        started = time.monotonic()
        result = self.podman("stop", "--time", "10", self.name, timeout=timeout + 10)
        assert result.returncode == 0, result.stderr
        return time.monotonic() - started

    def restart(self) -> PortwayContainer:
        """Stop and remove the container, then run a new one on the same volume."""
        if self.state()[0] == "running":
            self.stop()
        self.podman("rm", "-f", self.name)
        self._token = None
        return self.start()

    def log(self) -> str:
        result = self.podman("logs", self.name)
        return (result.stdout + result.stderr)[-6000:]

    def close(self) -> None:
        self.podman("rm", "-f", "--time", "0", self.name)

    def __enter__(self) -> PortwayContainer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
