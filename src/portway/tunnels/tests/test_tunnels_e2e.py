"""Tunnel hosts end to end: real `portway serve`, real nginx on high ports with a test
certificate, the real `portway tunnel connect` client, real MariaDB and OpenSSH clients.

What a member sees: `mariadb -e 'SELECT 1'` and `ssh ... echo` work through the tunnel,
a large transfer arrives intact both ways, a wrong, expired or revoked key and a disabled
tunnel give clear messages (and a revoked key or a disabled tunnel ends open sessions),
an nginx apply during a session leaves it working, and sessions show up with their bytes
in the API and the audit log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portway.testing.certs import cert_pem, make_ca, make_leaf
from portway.testing.network import free_port
from portway.testing.plugin import missing_prerequisite
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

TUNNELS = "/api/portway/tunnels"
DOMAIN = "tunnel.example.test"
LARGE = 200 * 1024 * 1024  # bench/tunnel.py moves 1 GB


# ----- small real TCP targets -------------------------------------------------------------


class TcpTarget:
    """A threaded TCP server on 127.0.0.1 running `serve(connection)` per connection."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.serve = serve
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.serve(conn)

    def close(self) -> None:
        self.sock.close()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def digest_after_eof(conn: socket.socket) -> None:
    """Reads until the client's half-close, then answers `<bytes> <sha256>`."""
    digest, total = hashlib.sha256(), 0
    while data := conn.recv(1 << 20):
        digest.update(data)
        total += len(data)
    conn.sendall(f"{total} {digest.hexdigest()}".encode())


def pattern(size: int) -> Iterator[bytes]:
    block = hashlib.sha256(b"portway").digest() * 32768  # 1 MiB
    sent = 0
    while sent < size:
        chunk = block[: min(len(block), size - sent)]
        sent += len(chunk)
        yield chunk


def send_pattern(conn: socket.socket) -> None:
    for chunk in pattern(LARGE):
        conn.sendall(chunk)


# ----- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One Portway, a CA, a certificate for *.tunnel.example.test and the targets."""
    base = tmp_path_factory.mktemp("tunnels")
    process = PortwayProcess(base / "data")
    ca = make_ca("Portway Tunnel Test CA")
    leaf = make_leaf(ca, [f"*.{DOMAIN}"])
    ca_file = base / "ca.pem"
    ca_file.write_bytes(cert_pem(ca.cert))
    targets = {
        "echo": TcpTarget(echo),
        "digest": TcpTarget(digest_after_eof),
        "source": TcpTarget(send_pattern),
    }
    try:
        process.start()
        cert = process.upload_certificate("tunnels", leaf.fullchain_pem, leaf.key_pem())
        yield {"pw": process, "cert": cert["id"], "ca": str(ca_file), "targets": targets}
    finally:
        process.close()
        for target in targets.values():
            target.close()


def make_tunnel(setup: dict, name: str, port: int, **fields: object) -> dict:
    pw = setup["pw"]
    body = {
        "domain_names": [f"{name}.{DOMAIN}"],
        "forward_host": "127.0.0.1",
        "forward_port": port,
        "certificate_id": setup["cert"],
        **fields,
    }
    status, tunnel = pw.api("POST", TUNNELS, body)
    assert status == 201, tunnel
    assert tunnel["meta"]["nginx_online"] is True, tunnel["meta"]
    return tunnel


def make_key(setup: dict, tunnel: dict, name: str = "laptop", **fields: object) -> dict:
    status, key = setup["pw"].api(
        "POST", f"{TUNNELS}/{tunnel['id']}/keys", {"name": name, **fields}
    )
    assert status == 201, key
    return key


def client_args(setup: dict, tunnel: dict, key: str) -> list[str]:
    name = tunnel["domain_names"][0]
    return [
        sys.executable,
        "-m",
        "portway",
        "tunnel",
        "connect",
        f"wss://{name}:{setup['pw'].https_port}",
        "--key",
        key,
        "--ca",
        setup["ca"],
        "--resolve",
        f"{name}:127.0.0.1",
    ]


def client_env() -> dict[str, str]:
    """The client's environment: no Portway server setting at all."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTWAY_", "DB_", "DJANGO_", "INITIAL_"))
    }


class Listener:
    """`portway tunnel connect --listen 127.0.0.1:<port>` running in the background.

    Ready once it says so on stderr (a test connection would itself open a tunnel).
    """

    def __init__(self, setup: dict, tunnel: dict, key: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*client_args(setup, tunnel, key), "--listen", f"127.0.0.1:{self.port}"],
            env=client_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(self._listening, 20)

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def _listening(self) -> bool:
        if any("listening on" in line for line in self.lines):
            return True
        if self.proc.poll() is not None:
            self.reader.join(5)
            raise AssertionError(f"client exited: {''.join(self.lines)}")
        return False

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def close(self) -> str:
        self.proc.terminate()
        self.proc.wait(10)
        self.reader.join(5)
        return "".join(self.lines)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def refused(setup: dict, tunnel: dict, key: str) -> str:
    """The client's message when it cannot open the tunnel (it must exit 1)."""
    proc = subprocess.run(
        [*client_args(setup, tunnel, key), "--listen", f"127.0.0.1:{free_port()}"],
        env=client_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    return proc.stderr


def echoes(sock: socket.socket, payload: bytes = b"ping") -> bool:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        data = sock.recv(65536)
        if not data:
            return False
        received += data
    return received == payload


def ended(sock: socket.socket, timeout: float = 10) -> bool:
    """Whether the tunnel connection is closed by the far end within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# ----- real clients -----------------------------------------------------------------------


def test_mariadb_client_runs_a_query_through_the_tunnel(setup):
    if not shutil.which("mariadb"):
        missing_prerequisite("the mariadb client: apt-get install mariadb-client")
    try:
        socket.create_connection(("127.0.0.1", 3306), timeout=2).close()
    except OSError:
        missing_prerequisite("MariaDB on 127.0.0.1:3306 (root, no password)")
    tunnel = make_tunnel(setup, "db", 3306)
    key = make_key(setup, tunnel)
    assert key["key"].startswith("ptk_")
    with Listener(setup, tunnel, key["key"]) as listener:
        result = subprocess.run(
            [
                "mariadb",
                "-h",
                "127.0.0.1",
                "-P",
                str(listener.port),
                "-u",
                "root",
                "--skip-ssl",
                "-N",
                "-e",
                "SELECT 1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "1"


def test_ssh_through_proxy_command(setup, tmp_path: Path):
    for tool in ("ssh", "ssh-keygen", "/usr/sbin/sshd"):
        if not shutil.which(tool):
            missing_prerequisite(f"{tool}: apt-get install openssh-server openssh-client")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    for name in ("host", "user"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
            check=True,
        )
    (tmp_path / "authorized_keys").write_bytes((tmp_path / "user.pub").read_bytes())
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"HostKey {tmp_path / 'host'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\n"
        f"PidFile {tmp_path / 'sshd.pid'}\n"
        "ListenAddress 127.0.0.1\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
    )
    sshd = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config), "-p", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        tunnel = make_tunnel(setup, "pi", port)
        key = make_key(setup, tunnel)
        proxy = " ".join([*client_args(setup, tunnel, key["key"]), "--stdio"])
        result = subprocess.run(
            [
                "ssh",
                "-F",
                "/dev/null",
                "-i",
                str(tmp_path / "user"),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                f"ProxyCommand={proxy}",
                f"root@{tunnel['domain_names'][0]}",
                "echo tunnelled-$((6*7))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=client_env(),
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "tunnelled-42"
    finally:
        sshd.terminate()
        sshd.wait(10)


def test_large_transfers_arrive_intact_both_ways_with_half_close(setup):
    targets = setup["targets"]
    upload = make_tunnel(setup, "upload", targets["digest"].port)
    download = make_tunnel(setup, "download", targets["source"].port)
    key_up = make_key(setup, upload)["key"]
    key_down = make_key(setup, download)["key"]
    expected = hashlib.sha256()
    for chunk in pattern(LARGE):
        expected.update(chunk)
    with Listener(setup, upload, key_up) as up, Listener(setup, download, key_down) as down:
        sock = up.connect()
        for chunk in pattern(LARGE):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)  # the target answers only after our half-close
        answer = b""
        while data := sock.recv(1024):
            answer += data
        assert answer.decode() == f"{LARGE} {expected.hexdigest()}"
        sock.close()

        sock = down.connect()
        received, total = hashlib.sha256(), 0
        while data := sock.recv(1 << 20):
            received.update(data)
            total += len(data)
        assert (total, received.hexdigest()) == (LARGE, expected.hexdigest())
        sock.close()
    status, sessions = setup["pw"].api("GET", f"{TUNNELS}/{upload['id']}/sessions")
    assert status == 200
    finished = [s for s in sessions if not s["live"] and s["bytes_in"] == LARGE]
    assert finished and finished[0]["credential"] == "key laptop", sessions


# ----- refusals ---------------------------------------------------------------------------


def test_wrong_and_expired_keys_are_refused_with_a_clear_message(setup):
    tunnel = make_tunnel(setup, "refuse", setup["targets"]["echo"].port)
    good = make_key(setup, tunnel)["key"]
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert "wrong, expired or revoked key" in refused(setup, tunnel, wrong)
    assert "(HTTP 401)" in refused(setup, tunnel, "not-a-key")

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    expiring = make_key(setup, tunnel, "short", expires_on=soon.isoformat())
    with Listener(setup, tunnel, expiring["key"]) as listener:
        sock = listener.connect()
        assert echoes(sock)
        time.sleep(max(0.0, (soon - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
        assert ended(sock), "a session of an expired key must end"
        message = listener.close()
    assert "key was revoked or has expired" in message
    assert "wrong, expired or revoked key" in refused(setup, tunnel, expiring["key"])

    status, body = setup["pw"].api(
        "POST",
        f"{TUNNELS}/{tunnel['id']}/keys",
        {"name": "past", "expires_on": "2001-01-01T00:00:00Z"},
    )
    assert status == 400 and "expires_on" in str(body), body


def test_revoking_a_key_ends_its_open_session(setup):
    tunnel = make_tunnel(setup, "revoke", setup["targets"]["echo"].port)
    key = make_key(setup, tunnel)
    other = make_key(setup, tunnel, "other")
    with (
        Listener(setup, tunnel, key["key"]) as listener,
        Listener(setup, tunnel, other["key"]) as untouched,
    ):
        sock, kept = listener.connect(), untouched.connect()
        assert echoes(sock) and echoes(kept)
        status, _ = setup["pw"].api("DELETE", f"{TUNNELS}/{tunnel['id']}/keys/{key['id']}")
        assert status == 200
        assert ended(sock)
        assert echoes(kept), "another key's session goes on"
    status, keys = setup["pw"].api("GET", f"{TUNNELS}/{tunnel['id']}/keys")
    assert [k["name"] for k in keys] == ["other"]
    assert all(k["key"] is None for k in keys), "secrets are answered once only"
    assert "wrong, expired or revoked key" in refused(setup, tunnel, key["key"])


def test_disabled_tunnel_ends_sessions_and_refuses_new_ones(setup):
    tunnel = make_tunnel(setup, "off", setup["targets"]["echo"].port)
    key = make_key(setup, tunnel)["key"]
    with Listener(setup, tunnel, key) as listener:
        sock = listener.connect()
        assert echoes(sock)
        status, _ = setup["pw"].api("POST", f"{TUNNELS}/{tunnel['id']}/disable")
        assert status == 200
        assert ended(sock)
    setup["pw"].wait_applied()
    assert "not a tunnel, or the tunnel is disabled" in refused(setup, tunnel, key)


def test_unreachable_target_and_a_name_that_is_no_tunnel(setup):
    tunnel = make_tunnel(setup, "nowhere", free_port())
    key = make_key(setup, tunnel)["key"]
    assert "is unreachable (HTTP 502)" in refused(setup, tunnel, key)
    proxy_name = {"domain_names": [f"web.{DOMAIN}"]}
    setup["pw"].create_proxy_host(proxy_name["domain_names"], free_port())
    assert "is not a tunnel" in refused(setup, proxy_name, key)


def test_names_are_shared_with_every_host_kind(setup):
    pw = setup["pw"]
    tunnel = make_tunnel(setup, "claimed", setup["targets"]["echo"].port)
    status, body = pw.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": tunnel["domain_names"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 9,
        },
    )
    assert status == 400 and f"enabled tunnel host {tunnel['id']}" in str(body), body
    status, body = pw.api(
        "POST",
        TUNNELS,
        {"domain_names": [f"web.{DOMAIN}"], "forward_host": "127.0.0.1", "forward_port": 9},
    )
    assert status == 400 and "domain_names/0" in str(body), body


# ----- apply, sessions, audit -------------------------------------------------------------


def test_an_nginx_apply_keeps_open_sessions_and_sessions_are_audited(setup):
    pw = setup["pw"]
    tunnel = make_tunnel(setup, "steady", setup["targets"]["echo"].port)
    key = make_key(setup, tunnel, "steady-key")["key"]
    with Listener(setup, tunnel, key) as listener:
        sock = listener.connect()
        assert echoes(sock)
        pw.create_proxy_host([f"another.{DOMAIN}"], free_port())  # an nginx reload
        pw.wait_applied()
        assert echoes(sock, b"still here" * 1000)

        status, live = pw.api("GET", f"{TUNNELS}/{tunnel['id']}/sessions")
        assert status == 200
        (session,) = [s for s in live if s["live"]]
        assert session["credential"] == "key steady-key"
        assert session["source"] == "127.0.0.1"
        status, _ = pw.api("DELETE", f"/api/portway/tunnel-sessions/{session['session_id']}")
        assert status == 200
        assert ended(sock)

    def ended_session() -> dict | None:
        rows = pw.api("GET", f"{TUNNELS}/{tunnel['id']}/sessions")[1]
        return next((s for s in rows if s["session_id"] == session["session_id"]), None)

    row = wait_for(lambda: (s := ended_session()) and not s["live"] and s, 10)
    assert row["end_reason"] == "ended by an administrator"
    assert row["bytes_in"] == row["bytes_out"] == 4 + 10000
    status, audit = pw.api("GET", "/api/portway/audit-log")
    sessions = [e for e in audit if e["action"] == "session" and e["object_id"] == tunnel["id"]]
    assert sessions and sessions[0]["meta"]["bytes_in"] == 10004, sessions


def test_everything_else_on_a_tunnel_name_answers_404(setup):
    tunnel = make_tunnel(setup, "plain", setup["targets"]["echo"].port)
    status, _, _ = setup["pw"].http(tunnel["domain_names"][0], "/", https=True)
    assert status == 404


def test_users_open_tunnels_with_their_api_tokens(setup):
    pw = setup["pw"]
    tunnel = make_tunnel(setup, "users", setup["targets"]["echo"].port)
    status, own = pw.api(
        "POST", "/api/users/me/api-tokens", {"name": "tunnel", "expiry": "1d", "scope": "full"}
    )
    assert status == 201, own
    with Listener(setup, tunnel, own["token"]) as listener:  # the owner may
        assert echoes(listener.connect())

    status, member = pw.api(
        "POST",
        "/api/users",
        {
            "name": "Member",
            "nickname": "m",
            "email": "member@example.com",
            "roles": [],
            "auth": {"type": "password", "secret": "member-pass-1"},
        },
    )
    assert status == 201, member
    status, login = pw.api(
        "POST",
        "/api/tokens",
        {"identity": "member@example.com", "secret": "member-pass-1"},
        auth=False,
    )
    assert status == 200, login
    status, token = pw.api(
        "POST",
        "/api/users/me/api-tokens",
        {"name": "laptop", "expiry": "1d", "scope": "read"},
        token=login["token"],
    )
    assert status == 201, token
    assert "wrong, expired or revoked key" in refused(setup, tunnel, token["token"])
    status, _ = pw.api("PUT", f"{TUNNELS}/{tunnel['id']}", {"user_ids": [member["id"]]})
    assert status == 200
    with Listener(setup, tunnel, token["token"]) as listener:
        sock = listener.connect()
        assert echoes(sock)
        status, _ = pw.api(
            "DELETE", f"/api/users/me/api-tokens/{token['id']}", token=login["token"]
        )
        assert status == 200
        assert ended(sock), "a deleted API token ends its sessions"


def test_connection_limit(setup):
    tunnel = make_tunnel(setup, "limited", setup["targets"]["echo"].port, max_connections=1)
    key = make_key(setup, tunnel)["key"]
    with Listener(setup, tunnel, key) as listener:
        first = listener.connect()
        assert echoes(first)
        second = listener.connect()
        assert ended(second), "the second connection is refused"
        assert echoes(first), "the first goes on"
        message = listener.close()
    assert "connection limit (1) is reached (HTTP 503)" in message


def _service_pid(pw: PortwayProcess) -> int | None:
    """The pid of this Portway's tunnel service (its command line names the data dir)."""
    wanted = f"portway.tunnels.server\0{pw.data_dir / 'tunnels'}\0"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    return None


def test_portway_serve_restarts_a_tunnel_service_that_died(setup):
    pw = setup["pw"]
    tunnel = make_tunnel(setup, "phoenix", setup["targets"]["echo"].port)
    key = make_key(setup, tunnel)["key"]
    first = _service_pid(pw)
    assert first is not None
    os.kill(first, 9)
    wait_for(lambda: _service_pid(pw) not in (None, first), 20)

    def accepting() -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(pw.data_dir / "tunnels" / "service.sock"))
            except OSError:  # the dead service's socket file, until the new one binds
                return False
        return True

    wait_for(accepting, 10)
    with Listener(setup, tunnel, key) as listener:
        assert echoes(listener.connect())
