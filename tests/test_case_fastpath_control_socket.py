"""The fast path's control socket is Portway's alone: another local user cannot push routes.

Anyone who can connect to the control socket can point any name at any upstream and
install certificates. nginx creates the socket 0666 and the run directory is 0711 (the
SNI front's workers traverse it), so the socket must sit in a directory only root enters.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

_CONNECT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(sys.argv[1])
except PermissionError:
    print("refused")
else:
    sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    print("connected", sock.recv(200))
"""


@pytest.mark.skipif(
    "nobody" not in {user.pw_name for user in pwd.getpwall()}, reason="needs the nobody user"
)
def test_another_local_user_cannot_reach_the_control_socket(portway, upstreams):
    portway.create_proxy_host(["app.socket.test"], upstreams("app").port)
    portway.wait_applied()
    status = portway.api("GET", "/api/nginx/status")[1]
    if not status["fast_path"]["enabled"]:
        pytest.skip(f"fast path off: {status['fast_path']['reason']}")
    # an installation's data directory sits under directories everyone may enter
    # (/var/lib): open the test's temporary ones the same way
    for parent in portway.data_dir.parents:
        if parent == Path(tempfile.gettempdir()):
            break
        os.chmod(parent, 0o755)
    sockets = list((portway.data_dir / "nginx" / "run").rglob("fastpath.sock"))
    assert len(sockets) == 1, sockets
    answer = subprocess.run(
        # the system interpreter: a virtualenv under /root is not nobody's to run
        ["/usr/bin/python3", "-c", _CONNECT, str(sockets[0])],
        user="nobody",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert answer.stdout.strip() == "refused", answer.stdout + answer.stderr
    assert portway.upstream_of("app.socket.test") == "app"
