"""`portway serve` stops promptly on SIGTERM even while admin clients hold idle
keep-alive connections (a browser tab on the UI, an API client's pool): `systemctl stop`
and `docker stop` must not wait for the admin server's 30-second idle timeout."""

from __future__ import annotations

import http.client
import signal
import time

from portway.testing.process import PortwayProcess


def test_sigterm_with_idle_keep_alive_connections(tmp_path):
    portway = PortwayProcess(tmp_path / "data").start()
    try:
        idle = []
        for _ in range(3):
            connection = http.client.HTTPConnection("127.0.0.1", portway.admin_port, timeout=5)
            connection.request("GET", "/api/")
            response = connection.getresponse()
            response.read()
            assert response.status == 200 and not response.will_close
            idle.append(connection)  # kept open, idle, as a browser keeps it
        started = time.monotonic()
        assert portway.proc is not None
        portway.proc.send_signal(signal.SIGTERM)
        status = portway.proc.wait(timeout=60)
        stopped_after = time.monotonic() - started
        assert status == 0, portway.log()
        # before the fix serve stayed for the admin server's 30 s channel timeout
        assert stopped_after < 15, f"serve took {stopped_after:.1f}s to stop"
        for connection in idle:  # each was closed by the server, not reset mid-response
            connection.close()
    finally:
        portway.stop()
