"""Streams through a real `portway serve` and real nginx (its stream module).

What a client sees: bytes echoed back through Portway's port by real TCP and UDP echo
servers on 127.0.0.1 (TCP, UDP, and both on one stream), TLS terminated by nginx with the
stream's certificate while the echo server speaks plain TCP, and a port another program
holds: that stream is reported offline with nginx's message while every other stream
and host keeps serving, also when Portway starts while the port is taken.

One Portway serves the whole module (each test uses its own ports).
"""

from __future__ import annotations

import socket
import ssl

import pytest

from portway.testing.certs import make_chain
from portway.testing.network import (
    TCPEchoServer,
    UDPEchoServer,
    UpstreamServer,
    free_port,
    free_udp_port,
    tcp_exchange,
    udp_exchange,
)
from portway.testing.process import PortwayProcess

pytestmark = pytest.mark.slow

STREAMS = "/api/nginx/streams"


def _create(pw: PortwayProcess, **body: object) -> dict:
    status, data = pw.api("POST", STREAMS, body)
    assert status == 201, data
    return data


def _echo(port: int, data: bytes, prefix: bytes) -> bytes:
    """What a TCP echo server with `prefix` sends back for `data` through `port`."""
    return tcp_exchange(port, data, size=len(prefix) + len(data))


def _free_both() -> int:
    """A port free for TCP and for UDP on 127.0.0.1."""
    while True:
        port = free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


@pytest.mark.e2e_db
def test_tcp_udp_and_both_echoed(shared_portway: PortwayProcess) -> None:
    pw = shared_portway
    with (
        TCPEchoServer(b"tcp:") as tcp_echo,
        UDPEchoServer(b"udp:", port=tcp_echo.port) as udp_echo,
    ):
        tcp_port, udp_port, both_port = _free_both(), free_udp_port(), _free_both()
        tcp = _create(
            pw, incoming_port=tcp_port, forwarding_host="127.0.0.1", forwarding_port=tcp_echo.port
        )
        assert tcp["meta"]["nginx_online"] is True, tcp["meta"]
        udp = _create(
            pw,
            incoming_port=udp_port,
            forwarding_host="127.0.0.1",
            forwarding_port=udp_echo.port,
            tcp_forwarding=False,
            udp_forwarding=True,
        )
        assert udp["meta"]["nginx_online"] is True, udp["meta"]
        # one stream, both protocols, to one port where a TCP and a UDP echo server listen
        both = _create(
            pw,
            incoming_port=both_port,
            forwarding_host="localhost",
            forwarding_port=tcp_echo.port,
            tcp_forwarding=True,
            udp_forwarding=True,
        )
        assert both["meta"]["nginx_online"] is True, both["meta"]

        assert _echo(tcp_port, b"hello over tcp", b"tcp:") == b"tcp:hello over tcp"
        assert udp_exchange(udp_port, b"hello over udp") == b"udp:hello over udp"
        assert _echo(both_port, b"x" * 100_000, b"tcp:") == b"tcp:" + b"x" * 100_000
        assert udp_exchange(both_port, b"datagram") == b"udp:datagram"
        with pytest.raises(OSError):  # TCP only: nothing answers UDP on that port
            udp_exchange(tcp_port, b"nobody", timeout=0.5)

        # disabled: nginx stops listening; enabled: back
        assert pw.api("POST", f"{STREAMS}/{tcp['id']}/disable")[0] == 200
        pw.wait_applied()
        with pytest.raises(ConnectionRefusedError):
            tcp_exchange(tcp_port, b"gone")
        assert pw.api("POST", f"{STREAMS}/{tcp['id']}/enable")[0] == 200
        pw.wait_applied()
        assert _echo(tcp_port, b"back", b"tcp:") == b"tcp:back"

        # moving a stream to another port moves the listener
        new_port = _free_both()
        status, moved = pw.api("PUT", f"{STREAMS}/{udp['id']}", {"incoming_port": new_port})
        assert status == 200 and moved["meta"]["nginx_online"] is True, moved
        assert udp_exchange(new_port, b"moved") == b"udp:moved"

        for stream in (tcp, udp, both):
            assert pw.api("DELETE", f"{STREAMS}/{stream['id']}")[0] == 200
        pw.wait_applied()
        with pytest.raises(ConnectionRefusedError):
            tcp_exchange(both_port, b"deleted")


def test_tls_terminated_stream(shared_portway: PortwayProcess) -> None:
    pw = shared_portway
    issued = make_chain(["db.stream.test"], key_type="ec", ca_key_type="ec", prefix="Stream")
    cert = pw.upload_certificate("db.stream.test", issued.fullchain_pem, issued.key_pem())
    with TCPEchoServer(b"plain:") as echo:
        port = _free_both()
        stream = _create(
            pw,
            incoming_port=port,
            forwarding_host="127.0.0.1",
            forwarding_port=echo.port,
            certificate_id=cert["id"],
        )
        assert stream["certificate_id"] == cert["id"] and stream["meta"]["nginx_online"] is True
        status, expanded = pw.api("GET", f"{STREAMS}/{stream['id']}?expand=certificate")
        assert expanded["certificate"]["id"] == cert["id"]

        context = ssl.create_default_context(cadata=issued.root_pem.decode())
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="db.stream.test") as tls,
        ):
            tls.sendall(b"secret bytes")
            answer = b""
            while len(answer) < len(b"plain:secret bytes") and (chunk := tls.recv(100)):
                answer += chunk
            assert answer == b"plain:secret bytes"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        # the echo server got plain TCP: a client speaking plain TCP to nginx gets no echo
        assert not tcp_exchange(port, b"not tls", size=100).startswith(b"plain:")
    assert pw.api("DELETE", f"{STREAMS}/{stream['id']}")[0] == 200


def test_port_held_by_another_program(shared_portway: PortwayProcess) -> None:
    pw = shared_portway
    with (
        TCPEchoServer(b"ok:") as echo,
        UpstreamServer("web") as web,
        socket.socket() as holder,
    ):
        serving = _create(
            pw, incoming_port=_free_both(), forwarding_host="127.0.0.1", forwarding_port=echo.port
        )
        pw.create_proxy_host(["web.stream.test"], web.port)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = holder.getsockname()[1]

        blocked = _create(
            pw, incoming_port=held, forwarding_host="127.0.0.1", forwarding_port=echo.port
        )
        assert blocked["meta"]["nginx_online"] is False, blocked["meta"]
        assert "Address already in use" in blocked["meta"]["nginx_err"], blocked["meta"]
        assert str(held) in blocked["meta"]["nginx_err"]
        # everything else still serves, and a stream added afterwards goes live
        assert _echo(serving["incoming_port"], b"still", b"ok:") == b"ok:still"
        assert pw.upstream_of("web.stream.test") == "web"
        later = _create(
            pw, incoming_port=_free_both(), forwarding_host="127.0.0.1", forwarding_port=echo.port
        )
        assert later["meta"]["nginx_online"] is True, later["meta"]
        assert _echo(later["incoming_port"], b"later", b"ok:") == b"ok:later"
        status, listed = pw.api("GET", f"{STREAMS}/{blocked['id']}")
        assert listed["meta"]["nginx_online"] is False
        # a UDP port another program holds, the same way
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_holder:
            udp_holder.bind(("127.0.0.1", 0))
            udp_held = udp_holder.getsockname()[1]
            udp_blocked = _create(
                pw,
                incoming_port=udp_held,
                forwarding_host="127.0.0.1",
                forwarding_port=echo.port,
                tcp_forwarding=False,
                udp_forwarding=True,
            )
            assert udp_blocked["meta"]["nginx_online"] is False, udp_blocked["meta"]
            assert f"127.0.0.1:{udp_held} failed" in udp_blocked["meta"]["nginx_err"]
            assert _echo(later["incoming_port"], b"still", b"ok:") == b"ok:still"

        # once the other program lets go, saving the stream again brings it up
        holder.close()
        status, fixed = pw.api("PUT", f"{STREAMS}/{blocked['id']}", {"meta": {"retry": 1}})
        assert status == 200 and fixed["meta"]["nginx_online"] is True, fixed["meta"]
        assert _echo(held, b"free", b"ok:") == b"ok:free"
        for stream in (serving, later, blocked, udp_blocked):
            pw.api("DELETE", f"{STREAMS}/{stream['id']}")
        pw.wait_applied()


def test_port_taken_while_portway_was_down(portway: PortwayProcess) -> None:
    """nginx starts without the stream whose port another program took meanwhile.

    A Portway of its own, TCP only: nginx's graceful stop waits for UDP sessions to time
    out (proxy_timeout), which the restart here would wait for.
    """
    pw = portway
    with TCPEchoServer(b"ok:") as echo:
        kept = _create(
            pw, incoming_port=_free_both(), forwarding_host="127.0.0.1", forwarding_port=echo.port
        )
        lost = _create(
            pw, incoming_port=_free_both(), forwarding_host="127.0.0.1", forwarding_port=echo.port
        )
        assert _echo(lost["incoming_port"], b"a", b"ok:") == b"ok:a"
        pw.stop()
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", lost["incoming_port"]))
            holder.listen()
            log_before = pw.log_path.stat().st_size
            pw.restart()
            assert _echo(kept["incoming_port"], b"b", b"ok:") == b"ok:b"
            status, stream = pw.api("GET", f"{STREAMS}/{lost['id']}")
            assert stream["meta"]["nginx_online"] is False, stream["meta"]
            assert "Address already in use" in stream["meta"]["nginx_err"]
            status, nginx = pw.api("GET", "/api/nginx/status")
            assert nginx["running"] is True and not nginx["stuck"], nginx
            # the taken port was found before nginx started: nginx never failed to start
            # (which would leave every host down while it retried)
            with pw.log_path.open("rb") as log:
                log.seek(log_before)
                restarted_log = log.read().decode(errors="replace")
            assert "nginx did not start" not in restarted_log, restarted_log
            assert "nginx exited with status" not in restarted_log, restarted_log
