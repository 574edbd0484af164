"""A killed Portway recovers by itself: its orphaned nginx is replaced at the next start,
and a port Portway's own listeners cannot bind is never blamed on a host."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from portway.nginx.engine import _reload_suspects
from portway.nginx.process import stray_master
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def _nginx_master(portway: PortwayProcess) -> int | None:
    base = portway.data_dir / "nginx"
    return stray_master(base / "run" / "nginx.pid", base)


def _tunnel_services(portway: PortwayProcess) -> list[int]:
    """Pids of tunnel service processes of this installation (portway.tunnels.server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"portway.tunnels.server" in argv and str(portway.data_dir).encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


def test_kill_9_during_a_burst_of_creates_then_restart_serves_every_acknowledged_host(
    portway, upstreams
):
    upstream = upstreams("burst")
    acknowledged: list[str] = []
    stop = threading.Event()

    def create_hosts() -> None:
        for index in range(200):  # bounded: the kill ends it long before
            if stop.is_set():
                return
            name = f"burst-{index}.example.test"
            try:
                status, _ = portway.api(
                    "POST",
                    "/api/nginx/proxy-hosts",
                    {
                        "domain_names": [name],
                        "forward_scheme": "http",
                        "forward_host": "127.0.0.1",
                        "forward_port": upstream.port,
                    },
                )
            except OSError:
                return  # the server died under this request: not acknowledged
            if status == 201:
                acknowledged.append(name)

    portway.token  # noqa: B018 - log in before the burst
    burst = threading.Thread(target=create_hosts)
    burst.start()
    wait_for(lambda: len(acknowledged) >= 5, timeout=60)
    orphan = _nginx_master(portway)
    assert orphan is not None
    assert _tunnel_services(portway)
    portway.kill()
    stop.set()
    burst.join(timeout=60)
    # the orphaned nginx still holds the ports and serves the old config
    assert _nginx_master(portway) == orphan
    with socket.create_connection(("127.0.0.1", portway.http_port), timeout=5):
        pass

    # the tunnel service has no one to supervise it: it stops by itself
    wait_for(lambda: _tunnel_services(portway) == [], timeout=15)

    portway.start()  # same data dir and ports; no manual step in between
    assert len(_tunnel_services(portway)) == 1

    assert _nginx_master(portway) not in (None, orphan)
    for name in acknowledged:
        wait_for(lambda name=name: portway.upstream_of(name) == "burst", timeout=10)
    status, hosts = portway.api("GET", "/api/nginx/proxy-hosts")
    assert status == 200
    offline = [h["domain_names"] for h in hosts if not h["meta"]["nginx_online"]]
    assert offline == []


def test_nginx_whose_ports_are_taken_starts_once_they_are_free(tmp_path, upstreams):
    """Another program holds the HTTP port at start: nothing is blamed on the hosts saved
    meanwhile, and they go live as soon as the port is free."""
    upstream = upstreams("late")
    portway = PortwayProcess(tmp_path / "data")
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", portway.http_port))
    blocker.listen()
    try:
        portway.start()  # its readiness check connects to the blocker: fine here
        host = portway.create_proxy_host(["late.example.test"], upstream.port)
        portway.wait_applied()
        status, current = portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")
        # not blamed, but not called online either: nginx does not serve it yet
        assert current["meta"]["nginx_online"] is False, current["meta"]
        assert "not live" in current["meta"]["nginx_err"], current["meta"]
        status, apply_status = portway.api("GET", "/api/nginx/status")
        assert "Address already in use" in apply_status["last_error"]
        assert apply_status["stuck"] is True
        blocker.close()
        wait_for(lambda: portway.upstream_of("late.example.test") == "late", timeout=60)
        # the apply that put it live records its status just after nginx serves it
        current = wait_for(
            lambda: (
                (h := portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")[1])["meta"][
                    "nginx_online"
                ]
                and h
            )
        )
        assert current["meta"]["nginx_err"] in (None, "")
        assert portway.api("GET", "/api/nginx/status")[1]["stuck"] is False
    finally:
        blocker.close()
        portway.close()


def test_bind_failure_on_portways_own_listener_blames_no_host():
    own = {"127.0.0.1:8080", "127.0.0.1:8443"}
    changed = {"proxy-1": "server { listen 127.0.0.1:8080; }"}
    error = (
        "2026/01/01 00:00:00 [emerg] 1#1: bind() to 127.0.0.1:8080 failed "
        "(98: Address already in use)"
    )
    assert _reload_suspects(error, changed, {}, own) == []
    # a host's own extra listener on another port is still that host's fault
    extra = {"proxy-2": "server { listen 127.0.0.1:8080; listen 9999; }"}
    error_9999 = error.replace("127.0.0.1:8080", "0.0.0.0:9999")
    assert _reload_suspects(error_9999, {**changed, **extra}, {}, own) == ["proxy-2"]


def test_bind_failure_with_nothing_changed_blames_the_host_on_that_port():
    """nginx starting again (nothing changed since the live generation) cannot bind a
    stream's port another program took meanwhile: that stream is the one to leave out."""
    served = {
        "stream-1": "server { listen 127.0.0.1:5000 udp; proxy_pass a:1; }",
        "stream-2": "server { listen 127.0.0.1:6000; proxy_pass a:1; }",
        "proxy-1": "server { listen 127.0.0.1:8080; }",
    }
    error = (
        "2026/01/01 00:00:00 [emerg] 1#1: bind() to 127.0.0.1:6000 failed "
        "(98: Address already in use)"
    )
    own = {"127.0.0.1:8080", "127.0.0.1:8443"}
    assert _reload_suspects(error, served, dict(served), own) == ["stream-2"]
    udp = error.replace("6000", "5000")
    assert _reload_suspects(udp, served, dict(served), own) == ["stream-1"]
