"""nginx's master SIGKILLed (not its workers) while changes keep coming.

The workers outlive their master and keep the ports and the old shared memory. A change
made before the watcher notices the death starts a new master, which cannot bind while
the orphans hold the ports: unless the orphans are stopped first, nginx never comes back
and the orphans serve the old routes for good.
"""

from __future__ import annotations

import os
import signal

import pytest

from portway.nginx.process import stray_master
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow]


def _master(portway: PortwayProcess) -> int | None:
    base = portway.data_dir / "nginx"
    return stray_master(base / "run" / "nginx.pid", base)


def test_change_right_after_the_master_is_killed_is_served(portway, upstreams):
    first, second = upstreams("first"), upstreams("second")
    host = portway.create_proxy_host(["app.killed.test"], first.port)
    portway.wait_applied()
    assert portway.upstream_of("app.killed.test") == "first"
    master = _master(portway)
    assert master is not None

    os.kill(master, signal.SIGKILL)  # the master alone: its workers stay
    status, _ = portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"forward_port": second.port}
    )
    assert status == 200

    wait_for(lambda: (_master(portway) or master) != master, timeout=60)
    wait_for(lambda: portway.upstream_of("app.killed.test") == "second", timeout=60)
    portway.wait_applied(60)
    answer = portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")[1]
    assert answer["meta"]["nginx_online"] is True, answer["meta"]
    # no process of the killed master's group is left
    with pytest.raises(ProcessLookupError):
        os.killpg(master, 0)
