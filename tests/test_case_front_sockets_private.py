"""The SNI front's sockets are nginx's alone: another local user cannot reach them.

While a passthrough tunnel exists, nginx's HTTPS servers listen on unix sockets in
run/front behind the ssl_preread front, and read the client's address from the PROXY
protocol header the front sends. nginx creates those sockets 0666: whoever can connect
could send a PROXY header naming any address and pass access lists that allow it. The
directory is therefore entered only by root and nginx's workers' group.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_case_fastpath_control_socket import _CONNECT  # tests/ is on sys.path

pytestmark = [pytest.mark.slow]


@pytest.mark.skipif(
    "nobody" not in {user.pw_name for user in pwd.getpwall()}, reason="needs the nobody user"
)
def test_another_local_user_cannot_reach_the_front_sockets(portway, upstreams):
    target = upstreams("target")
    status, tunnel = portway.api(
        "POST",
        "/api/portway/tunnels",
        {
            "domain_names": ["db.front.test"],
            "forward_host": "127.0.0.1",
            "forward_port": target.port,
            "passthrough": True,
        },
    )
    assert status == 201, tunnel
    portway.wait_applied()
    # an installation's data directory sits under directories everyone may enter
    for parent in portway.data_dir.parents:
        if parent == Path(tempfile.gettempdir()):
            break
        os.chmod(parent, 0o755)
    sockets = sorted((portway.data_dir / "nginx" / "run" / "front").glob("*.sock"))
    assert any(s.name == "https.sock" for s in sockets), sockets
    for path in sockets:
        answer = subprocess.run(
            ["/usr/bin/python3", "-c", _CONNECT, str(path)],
            user="nobody",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert answer.stdout.strip() == "refused", (path, answer.stdout + answer.stderr)
    # nginx's workers still reach them: HTTPS through the front answers
    status, _, body = portway.http("unknown.front.test", https=True)
    assert status == 200 and b"Congratulations" in body, body[:200]
