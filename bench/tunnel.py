"""Tunnel throughput: one stream and 100 parallel connections, through a tunnel host vs
direct TCP, on loopback, in one run; prints a table (targets: >= 500 MB/s for one
stream, >= 0.3x direct).

    python bench/tunnel.py                 # 1 GB one stream, 100 x 10 MB
    python bench/tunnel.py --size-mb 200   # quicker

The path through the tunnel is the real one: `portway tunnel connect --listen` (the
client, its own process) → TLS to nginx on a high port (`portway serve`) → the tunnel
service (unix socket) → the target. The target is a sink that reads until the sender's
half-close and answers the byte count and SHA-256, so every run also proves the data
arrived intact. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from portway.testing.certs import cert_pem, make_ca, make_leaf  # noqa: E402
from portway.testing.network import free_port  # noqa: E402
from portway.testing.process import PortwayProcess, wait_for  # noqa: E402

BLOCK = hashlib.sha256(b"bench").digest() * 32768  # 1 MiB


def sink(conn: socket.socket) -> None:
    digest, total = hashlib.sha256(), 0
    with conn:
        while data := conn.recv(1 << 20):
            digest.update(data)
            total += len(data)
        conn.sendall(f"{total} {digest.hexdigest()}".encode())


def serve(server: socket.socket) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=sink, args=(conn,), daemon=True).start()


def expected(size: int) -> str:
    digest = hashlib.sha256()
    for _ in range(size // len(BLOCK)):
        digest.update(BLOCK)
    return f"{size} {digest.hexdigest()}"


def send(port: int, size: int) -> str:
    """Send `size` bytes (a multiple of 1 MiB) to 127.0.0.1:port; the sink's answer."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        view = memoryview(BLOCK)
        for _ in range(size // len(BLOCK)):
            sock.sendall(view)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while data := sock.recv(1024):
            answer += data
    return answer.decode()


def descendants(root: int) -> list[int]:
    """Process ids of every descendant of `root` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def components(portway_pid: int, client_pid: int) -> dict[str, list[int]]:
    """The processes on the tunnel's path, by role: client, nginx (master and workers),
    service (the tunnel service)."""
    roles: dict[str, list[int]] = {"client": [client_pid], "nginx": [], "service": []}
    for pid in descendants(portway_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"portway.tunnels.server" in command:
            roles["service"].append(pid)
        elif command.startswith(b"nginx"):
            roles["nginx"].append(pid)
    return roles


def measure(
    port: int, size: int, connections: int, roles: dict[str, list[int]] | None = None
) -> tuple[float, dict[str, float]]:
    """MB/s (10^6 bytes) of `connections` parallel senders of size/connections each, and
    the CPU seconds per GiB each role of `roles` spent meanwhile."""
    each = size // connections
    want = expected(each)
    roles = roles or {}
    before = {role: sum(cpu_seconds(p) for p in pids) for role, pids in roles.items()}
    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        answers = list(pool.map(lambda _: send(port, each), range(connections)))
    seconds = time.monotonic() - started
    gib = each * connections / (1 << 30)
    cpu = {
        role: (sum(cpu_seconds(p) for p in pids) - before[role]) / gib
        for role, pids in roles.items()
    }
    bad = [a for a in answers if a != want]
    if bad:
        raise SystemExit(f"data did not arrive intact: {bad[:3]}")
    return each * connections / seconds / 1e6, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="bytes per run, MiB")
    parser.add_argument("--connections", type=int, default=100)
    args = parser.parse_args()
    size = args.size_mb * len(BLOCK)
    # the same bytes spread over the connections, at least 1 MiB each
    many_size = max(1, args.size_mb // args.connections) * args.connections * len(BLOCK)

    target = socket.create_server(("127.0.0.1", 0), backlog=256)
    threading.Thread(target=serve, args=(target,), daemon=True).start()
    base = Path(tempfile.mkdtemp(prefix="portway-bench-tunnel-"))
    os.chmod(base, 0o755)
    portway = PortwayProcess(base / "data")
    client = None
    try:
        print("starting portway serve ...", file=sys.stderr)
        portway.start()
        ca = make_ca("Portway Bench CA", key_type="ec")
        leaf = make_leaf(ca, ["bench.tunnel.test"], key_type="ec")
        (base / "ca.pem").write_bytes(cert_pem(ca.cert))
        cert = portway.upload_certificate("bench", leaf.fullchain_pem, leaf.key_pem())
        status, tunnel = portway.api(
            "POST",
            "/api/portway/tunnels",
            {
                "domain_names": ["bench.tunnel.test"],
                "forward_host": "127.0.0.1",
                "forward_port": target.getsockname()[1],
                "certificate_id": cert["id"],
                "max_connections": args.connections * 2,
            },
        )
        assert status == 201, tunnel
        status, key = portway.api(
            "POST", f"/api/portway/tunnels/{tunnel['id']}/keys", {"name": "b"}
        )
        assert status == 201, key
        local = free_port()
        client = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portway",
                "tunnel",
                "connect",
                f"wss://bench.tunnel.test:{portway.https_port}",
                "--key",
                key["key"],
                "--ca",
                str(base / "ca.pem"),
                "--resolve",
                "bench.tunnel.test:127.0.0.1",
                "--listen",
                f"127.0.0.1:{local}",
            ],
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", local), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(listening, 30)
        # the TLS the client negotiates with nginx (same defaults: portway.tunnels.client)
        context = ssl.create_default_context(cafile=str(base / "ca.pem"))
        with (
            socket.create_connection(("127.0.0.1", portway.https_port)) as raw,
            context.wrap_socket(raw, server_hostname="bench.tunnel.test") as tls,
        ):
            negotiated = f"{tls.version()} {tls.cipher()[0]}"
        direct = target.getsockname()[1]
        rows = []
        for label, total, connections in (
            ("one stream", size, 1),
            (f"{args.connections} connections", many_size, args.connections),
        ):
            print(f"{label}: direct ...", file=sys.stderr)
            plain, _ = measure(direct, total, connections)
            print(f"{label}: tunnel ...", file=sys.stderr)
            roles = components(portway.proc.pid, client.pid)
            tunnelled, cpu = measure(local, total, connections, roles)
            rows.append((label, total // len(BLOCK), plain, tunnelled, cpu))
    finally:
        if client is not None:
            client.terminate()
            client.wait(10)
        portway.close()
        target.close()

    print(f"\nTunnel throughput on loopback ({os.cpu_count()} CPUs), MB/s = 10^6 bytes/s")
    print(
        f"{'run':<18}{'MiB':>7}{'direct':>10}{'tunnel':>10}{'ratio':>8}"
        f"{'client':>9}{'nginx':>8}{'service':>9}"
    )
    for label, mib, plain, tunnelled, cpu in rows:
        print(
            f"{label:<18}{mib:>7}{plain:>10.0f}{tunnelled:>10.0f}{tunnelled / plain:>8.2f}"
            f"{cpu['client']:>9.2f}{cpu['nginx']:>8.2f}{cpu['service']:>9.2f}"
        )
    print("client / nginx / service: CPU seconds per GiB carried (user + system)")
    print(f"client to nginx: {negotiated}; load average at the end: {os.getloadavg()[0]:.1f}")
    print("targets: one stream >= 500 MB/s through the tunnel, and >= 0.3x direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
