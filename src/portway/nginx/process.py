"""Running nginx: `nginx -t` on a generation, and the supervised master process.

Follows certbot's nginx plugin: test with `nginx -t` before any reload, keep the last
good config to fall back to. nginx is started in the foreground (`daemon off`) as a child
of `portway serve`, restarted with backoff if it dies, and stopped gracefully (SIGQUIT:
workers finish the requests in flight; https://nginx.org/en/docs/control.html).
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("portway.nginx")

# "nginx: [emerg] unknown directive "foo" in /x/gen/hosts/proxy-5.conf:12"
_PID = r"(?:\d+#\d+: )?"  # nginx prefixes messages with "pid#tid: "
# Where one message starts: "nginx: [emerg] " (stderr of -t) or a log line's timestamp.
# A message can span lines: nginx quotes an administrator's token as is, and a token may
# hold a newline (a quoted string, or a backslash before the end of the line).
_MESSAGE_START = re.compile(
    r"^(?:nginx: |\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )(?:\[(?P<level>[a-z]+)\] " + _PID + ")?",
    re.MULTILINE,
)
_ERROR_LEVELS = ("emerg", "alert", "crit", "error")
_LOCATION = re.compile(r" in (?P<file>/[^\n]*?):(?P<line>\d+)\s*$")


class NginxNotFound(RuntimeError):
    """The nginx binary is not installed or not executable."""


@dataclass
class TestResult:
    """Outcome of `nginx -t`. `errors` are (file or None, line or None, message)."""

    ok: bool
    output: str
    errors: list[tuple[str | None, int | None, str]]


def nginx_binary(name: str) -> str:
    """Absolute path of the nginx executable `name`; raises NginxNotFound."""
    path = shutil.which(name) or (name if Path(name).is_file() else None)
    if not path:
        raise NginxNotFound(
            f"nginx executable {name!r} not found: install it (apt-get install nginx "
            "libnginx-mod-stream) or set PORTWAY_NGINX"
        )
    return path


def parse_errors(output: str) -> list[tuple[str | None, int | None, str]]:
    """Error messages of nginx output as (file, line, message); warnings are ignored.

    Messages are told apart by their "nginx: [level]" or timestamp prefix, never by
    line breaks alone: nginx prints an administrator's token verbatim, so a message may
    contain newlines, and Python's `splitlines()` would also split on U+2028, U+0085 and
    other characters nginx treats as ordinary bytes.
    """
    errors: list[tuple[str | None, int | None, str]] = []
    starts = list(_MESSAGE_START.finditer(output))
    for index, start in enumerate(starts):
        if start["level"] not in _ERROR_LEVELS:
            continue
        end = starts[index + 1].start() if index + 1 < len(starts) else len(output)
        text = output[start.end() : end].rstrip("\n")
        located = _LOCATION.search(text)
        if located:
            errors.append((located["file"], int(located["line"]), text[: located.start()]))
        else:
            errors.append((None, None, text))
    return errors


def test_config(binary: str, conf_file: Path, prefix: Path, timeout: float = 120) -> TestResult:
    """Run `nginx -t` on `conf_file` (its directory is the conf prefix for includes)."""
    proc = subprocess.run(
        [binary, "-t", "-q", "-p", f"{prefix}/", "-c", str(conf_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = (proc.stderr + proc.stdout).strip()
    return TestResult(proc.returncode == 0, output, parse_errors(output) if proc.returncode else [])


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (nginx's status server)."""

    def __init__(self, path: Path, timeout: float = 2.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def live_generation(status_socket: Path) -> str | None:
    """The generation the running nginx workers serve, or None if nginx is not answering."""
    try:
        conn = UnixHTTPConnection(status_socket, timeout=1.0)
        conn.request("GET", "/__portway/generation")
        response = conn.getresponse()
        body = response.read().decode().strip()
        conn.close()
        return body if response.status == 200 else None
    except OSError:
        return None


def _process_title(pid: int) -> str | None:
    """The title nginx gave process `pid` (its cmdline), None once it has exited."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def accepting_workers(master_pid: int) -> list[int]:
    """PIDs of the master's workers that still accept connections (Linux /proc)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after ')'
        fields = stat.rsplit(")", 1)[-1].split()
        is_child = len(fields) > 1 and int(fields[1]) == master_pid
        if is_child and _process_title(int(entry.name)) == "nginx: worker process":
            workers.append(int(entry.name))
    return workers


def stray_master(pid_file: Path, prefix: Path) -> int | None:
    """PID of a running nginx master for `prefix` named in `pid_file`, else None.

    The process title must be nginx's master title with this installation's prefix, so
    a recycled pid (another program, another installation's nginx) is never taken for it.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    title = _process_title(pid) or ""
    if title.startswith("nginx: master process") and f"-p {prefix}/ " in f"{title} ":
        return pid
    return None


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until process `pid` no longer exists (it need not be our child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        title = _process_title(pid)
        if title is None or title == "":  # gone, or a zombie awaiting its parent's wait()
            return True
        time.sleep(0.02)
    return _process_title(pid) in (None, "")


class NginxSupervisor:
    """Keeps one nginx master running on the live config.

    Args:
        binary: nginx executable path.
        conf_file: the live nginx.conf (a path through the `live` symlink).
        prefix: nginx prefix directory.
        status_socket: unix socket of the status server, to confirm reloads.
        error_log: nginx's error log, read when a reload does not take effect.
        pid_file: nginx's pid file (the `pid` directive), to find an nginx that a killed
            Portway left running.
        on_restart: called (from the watcher thread) after nginx was restarted and
            answers again, so the owner can apply what changed while it was down.
    """

    def __init__(
        self,
        binary: str,
        conf_file: Path,
        prefix: Path,
        status_socket: Path,
        error_log: Path,
        pid_file: Path | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.binary = binary
        self.conf_file = conf_file
        self.prefix = prefix
        self.status_socket = status_socket
        self.error_log = error_log
        self.pid_file = pid_file
        self.on_restart = on_restart
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._spawn_log_offset = 0
        self._answered = False  # the current master has served its status page once
        self.restarts = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self, wait_generation: str | None = None, timeout: float = 30) -> None:
        """Start nginx and a watcher thread that restarts it if it exits unexpectedly.

        An nginx left running by a Portway that was killed (SIGKILL, OOM: it could not
        stop its child) still holds the ports; it is replaced first (`replace_stray`).
        """
        self.replace_stray()
        self._spawn()
        if wait_generation:
            self.wait_for_generation(wait_generation, timeout)
        self._thread = threading.Thread(target=self._watch, name="nginx-supervisor", daemon=True)
        self._thread.start()

    def replace_stray(self, timeout: float = 10) -> int | None:
        """Stop an nginx master of this installation that is not our child; its pid.

        Replaced rather than adopted: an adopted master is not our child (no exit status
        to watch), and it runs whatever binary and arguments an older Portway gave it.
        SIGQUIT lets its workers finish the requests in flight; after `timeout` seconds
        its process group (master and workers: nginx runs in a session of its own) is
        killed. Connections are refused only between its exit and the new master's start.
        `portway serve` calls this holding the data directory's lock
        (portway.core.instance), so that master cannot belong to a running Portway.
        """
        if self.pid_file is None:
            return None
        pid = stray_master(self.pid_file, self.prefix)
        if pid is None or (self._proc is not None and pid == self._proc.pid):
            return None
        log.warning("nginx (pid %s) left running by a previous Portway: replacing it", pid)
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return pid
        if not _wait_gone(pid, timeout):
            log.warning("nginx (pid %s) did not stop in %.0fs; killing it", pid, timeout)
            self._reap_orphans(pid)
            _wait_gone(pid, 2)
        return pid

    def _spawn(self) -> None:
        with self._lock:
            self._spawn_log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
            self._answered = False
            previous = self._proc
            if previous is not None and previous.poll() is not None:
                # a master that died alone leaves its workers holding the ports; a reload
                # may get here before the watcher has stopped them
                self._reap_orphans(previous.pid)
            # a stale socket from a killed nginx blocks bind(): the status server's, the
            # fast path's control socket (portway.nginx.fastpath), both in the run
            # directory, and the SNI front's (portway.nginx.render_front)
            run = self.status_socket.parent
            stale_sockets = [self.status_socket, run / "private" / "fastpath.sock"]
            stale_sockets += (self.status_socket.parent / "front").glob("*.sock")
            for stale in stale_sockets:
                stale.unlink(missing_ok=True)
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "-p",
                    f"{self.prefix}/",
                    "-c",
                    str(self.conf_file),
                    "-g",
                    "daemon off;",
                ],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C on the terminal reaches Portway, which stops nginx
            )
            log.info("nginx started (pid %s)", self._proc.pid)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                log.error(
                    "nginx exited with status %s; restarting in %.0fs", proc.returncode, backoff
                )
                self._reap_orphans(proc.pid)
                if self._stopping.wait(backoff):
                    return
                with self._lock:
                    if self._proc is not proc or self._stopping.is_set():
                        continue  # a reload already started a new master meanwhile
                    self.restarts += 1
                    try:
                        self._spawn()
                    except OSError:
                        log.exception("could not restart nginx")
                        backoff = min(backoff * 2, 30.0)
                        continue
                    restarted = self._proc
                backoff = min(backoff * 2, 30.0)
                if self._await_answer(restarted, timeout=30) and self.on_restart:
                    try:
                        self.on_restart()
                    except Exception:
                        log.exception("nginx restart callback failed")
            elif proc is not None and proc.poll() is None:
                backoff = 1.0
            self._stopping.wait(0.5)

    def _await_answer(self, proc: subprocess.Popen | None, timeout: float) -> bool:
        """Wait until master `proc` serves its status page; False if it exits first.

        A master still starting up (nginx retries a busy port for 2.5 s) has no signal
        handlers yet: SIGHUP would kill it instead of reloading it.
        """
        if proc is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping.is_set():
            if proc.poll() is not None:
                return False
            if live_generation(self.status_socket) is not None:
                if proc is self._proc:
                    self._answered = True
                return True
            time.sleep(0.02)
        return False

    @staticmethod
    def _reap_orphans(group: int) -> None:
        """Stop workers left behind by a master that died (they hold the ports).

        nginx runs in its own process group (start_new_session), so its workers can be
        found by group even after the master is gone.
        """
        for sig, wait in ((signal.SIGQUIT, 3.0), (signal.SIGKILL, 1.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def reload(self, generation: str, timeout: float = 30) -> str | None:
        """Ask nginx to load the live config and wait until `generation` is served.

        Returns None on success, else nginx's error text (the old config keeps serving:
        nginx refuses a config it cannot load and keeps its old workers).
        """
        with self._lock:
            if self.running and not self._answered:
                self._await_answer(self._proc, timeout)
            if not self.running or self._proc is None:
                self._spawn()
                return self.wait_for_generation(generation, timeout)
            log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
            old_workers = accepting_workers(self._proc.pid)
            self._proc.send_signal(signal.SIGHUP)
        error = self.wait_for_generation(generation, timeout, log_offset)
        if error is None:
            self._wait_old_workers_stop_accepting(old_workers, timeout=10)
        return error

    @staticmethod
    def _wait_old_workers_stop_accepting(pids: list[int], timeout: float) -> None:
        """Wait until the previous workers closed their listening sockets.

        The status server answering the new generation proves a new worker runs, but an
        old worker may still accept a connection until it handles the shutdown signal;
        then it retitles itself "worker process is shutting down" (it keeps serving the
        requests already in flight). Only after that is the new config all a client sees.
        """
        deadline = time.monotonic() + timeout
        remaining = list(pids)
        while remaining and time.monotonic() < deadline:
            remaining = [pid for pid in remaining if _process_title(pid) == "nginx: worker process"]
            if remaining:
                time.sleep(0.005)

    def wait_for_generation(
        self, generation: str, timeout: float, log_offset: int | None = None
    ) -> str | None:
        """Poll the status server until it reports `generation`; error text on failure."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        # the master this wait is about: if it exits, the watcher may start another one
        # on the same config, which must not hide that this one failed
        proc = self._proc
        while time.monotonic() < deadline:
            if live_generation(self.status_socket) == generation:
                self._answered = True
                return None
            if log_offset is not None:
                failure = self._reload_failure(log_offset)
                if failure:
                    return failure
            if proc is not None and proc.poll() is not None and log_offset is None:
                return (
                    self._reload_failure(self._spawn_log_offset)
                    or f"nginx exited with status {proc.returncode}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        return (
            self._reload_failure(self._spawn_log_offset if log_offset is None else log_offset)
            or "nginx did not load the new configuration in time"
        )

    def _reload_failure(self, offset: int) -> str | None:
        """nginx's [emerg] lines written since `offset`, once nginx has finished failing.

        A failed reload can take seconds (nginx retries bind() five times, 500 ms apart);
        returning at the first line would let its later lines look like the next
        reload's failure, so this waits until the log has been quiet for 0.7 s.
        """
        text = self._log_since(offset)
        if "[emerg]" not in text:
            return None
        quiet_since = time.monotonic()
        size = len(text)
        deadline = quiet_since + 10
        while time.monotonic() - quiet_since < 0.7 and time.monotonic() < deadline:
            time.sleep(0.1)
            text = self._log_since(offset)
            if len(text) != size:
                size, quiet_since = len(text), time.monotonic()
        # whole messages (parse_errors picks the errors): one may span lines
        return text.strip()

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.error_log, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        """Graceful stop (SIGQUIT), SIGKILL after `timeout` seconds."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.info("nginx stopped")


class ChildSupervisor:
    """Keeps one helper process of `portway serve` running (the tunnel service).

    Started in a session of its own (Ctrl-C reaches Portway, which stops it), restarted
    with backoff (1 s doubling to 30 s) when it exits, stopped with SIGTERM then SIGKILL.
    `every`: called about every `interval` seconds from the watcher thread (the tunnel
    service's journal is moved into the database this way).

    Args:
        name: how logs call it; argv: the command; env: its environment (None: ours).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        every: Callable[[], None] | None = None,
        interval: float = 2.0,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.every = every
        self.interval = interval
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> ChildSupervisor:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.info("%s started (pid %s)", self.name, self._proc.pid)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.wait(self.interval if self.every else 0.5):
            if self.every is not None:
                try:
                    self.every()
                except Exception:
                    log.exception("%s: periodic task failed", self.name)
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                log.error("%s exited with status %s; restarting", self.name, proc.returncode)
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)
                try:
                    self._spawn()
                except OSError:
                    log.exception("could not restart %s", self.name)
            else:
                backoff = 1.0

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, SIGKILL after `timeout` seconds; then one last periodic run."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self.every is not None:
            try:
                self.every()
            except Exception:
                log.exception("%s: periodic task failed", self.name)
        log.info("%s stopped", self.name)
