"""The apply engine against a real nginx: isolation, rollback, folding, in-flight requests."""

from __future__ import annotations

import http.client
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portway.testing.process import wait_for

# e2e_db: scripts/test runs these on PostgreSQL and MariaDB as well
pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def test_broken_advanced_config_leaves_other_hosts_serving(portway, upstreams):
    good = upstreams("good")
    portway.create_proxy_host(["good.example.com"], good.port)
    wait_for(lambda: portway.upstream_of("good.example.com") == "good")
    portway.wait_applied()

    broken = portway.create_proxy_host(
        ["broken.example.com"], good.port, advanced_config="this_is_not_a_directive on;"
    )
    assert broken["meta"]["nginx_online"] is False
    assert broken["meta"]["nginx_serving_previous"] is False  # it never had a good config
    assert 'unknown directive "this_is_not_a_directive"' in broken["meta"]["nginx_err"]
    # the place is given in the administrator's own text, not the generated file
    assert (
        "line 1 of the advanced config: this_is_not_a_directive on;"
        in (broken["meta"]["nginx_err"])
    )

    # another change after it must still go live, with the broken host left out
    other = upstreams("other")
    portway.create_proxy_host(["other.example.com"], other.port)
    wait_for(lambda: portway.upstream_of("other.example.com") == "other")
    assert portway.upstream_of("good.example.com") == "good"
    status, _, _ = portway.http("broken.example.com")
    assert status == 200  # the default site, not an error from nginx
    assert portway.upstream_of("broken.example.com") is None

    status, host = portway.api("GET", f"/api/nginx/proxy-hosts/{broken['id']}")
    assert host["meta"]["nginx_online"] is False
    assert "unknown directive" in host["meta"]["nginx_err"]


def test_rejected_update_keeps_last_good_config_live(portway, upstreams):
    first, second = upstreams("first"), upstreams("second")
    host = portway.create_proxy_host(["keep.example.com"], first.port)
    wait_for(lambda: portway.upstream_of("keep.example.com") == "first")

    status, body = portway.api(
        "PUT",
        f"/api/nginx/proxy-hosts/{host['id']}",
        {"forward_port": second.port, "advanced_config": "proxy_buffering maybe;"},
    )
    assert status == 200
    assert body["meta"]["nginx_online"] is False
    assert body["meta"]["nginx_serving_previous"] is True
    assert "previous config is still served" in body["meta"]["nginx_err"]
    assert "proxy_buffering" in body["meta"]["nginx_err"]
    # the apply has finished, old workers included (the engine waits for them to stop
    # accepting), so a new connection sees exactly what nginx serves now
    portway.wait_applied()
    # nginx never saw the bad version: the previous config (first upstream) still serves
    assert portway.upstream_of("keep.example.com") == "first"

    status, body = portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"advanced_config": ""}
    )
    assert body["meta"]["nginx_online"] is True
    wait_for(lambda: portway.upstream_of("keep.example.com") == "second")
    wait_for(
        lambda: (
            portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")[1]["meta"]["nginx_err"]
            is None
        )
    )


def test_reload_failure_is_attributed_to_the_host(portway, upstreams):
    """`listen` on the admin port passes `nginx -t` but fails at reload (bind in use)."""
    good = upstreams("good")
    portway.create_proxy_host(["good.example.com"], good.port)
    wait_for(lambda: portway.upstream_of("good.example.com") == "good")
    bad = portway.create_proxy_host(
        ["steal.example.com"], good.port, advanced_config=f"listen 127.0.0.1:{portway.admin_port};"
    )
    host = wait_for(
        lambda: (
            (h := portway.api("GET", f"/api/nginx/proxy-hosts/{bad['id']}")[1])["meta"][
                "nginx_online"
            ]
            is False
            and h
        ),
        timeout=45,  # a refused reload takes seconds: nginx retries bind() five times
    )
    assert "Address already in use" in host["meta"]["nginx_err"]
    assert portway.upstream_of("good.example.com") == "good"
    assert portway.api("GET", "/api/")[0] == 200
    later = upstreams("later")
    portway.create_proxy_host(["later.example.com"], later.port)
    wait_for(lambda: portway.upstream_of("later.example.com") == "later")


def test_many_changes_fold_into_few_reloads(portway, upstreams):
    upstream = upstreams("bulk")
    before = portway.api("GET", "/api/nginx/status")[1]["applies"]

    def create(i: int) -> int:
        return portway.api(
            "POST",
            "/api/nginx/proxy-hosts",
            {
                "domain_names": [f"bulk{i}.example.com"],
                "forward_scheme": "http",
                "forward_host": "127.0.0.1",
                "forward_port": upstream.port,
            },
        )[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(create, range(40))) == {201}
    wait_for(lambda: portway.api("GET", "/api/nginx/status")[1]["pending"] is False)
    for i in range(40):
        assert portway.upstream_of(f"bulk{i}.example.com") == "bulk"
    applies = portway.api("GET", "/api/nginx/status")[1]["applies"] - before
    assert 1 <= applies < 40


DOWNLOAD = bytes(range(256)) * 256  # 64 KiB


class _HalfThenRestUpstream(ThreadingHTTPServer):
    """Answers GET /download with `DOWNLOAD` in two halves: the second half only once
    `release` is set. Any other path answers `{"upstream": "download"}`.

    Each half is larger than nginx's postpone_output (1460 bytes), so nginx passes the
    first half on at once instead of waiting for more."""

    daemon_threads = True

    def __init__(self) -> None:
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _HalfThenRestHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _HalfThenRestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HalfThenRestUpstream

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = DOWNLOAD if self.path == "/download" else b'{"upstream": "download"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path != "/download":
            self.wfile.write(body)
            return
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        self.server.release.wait(60)
        self.wfile.write(body[half:])


def test_requests_in_flight_survive_an_apply(portway, upstreams):
    """A download started before an apply completes intact after the reload.

    The upstream holds back the second half of the body until the apply is live, so the
    reload happens mid-response whatever the machine's speed.
    """
    upstream = _HalfThenRestUpstream()
    try:
        portway.create_proxy_host(["slow.example.com"], upstream.server_address[1])
        wait_for(lambda: portway.upstream_of("slow.example.com", "/probe") == "download")

        response_started = threading.Event()
        result: dict[str, object] = {}

        def fetch() -> None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", portway.http_port, timeout=90)
                conn.request("GET", "/download", headers={"Host": "slow.example.com"})
                response = conn.getresponse()  # nginx passed the upstream's headers on
                result["status"] = response.status
                response_started.set()
                result["body"] = response.read()
            except Exception as exc:  # shown by the assertions below
                result["error"] = repr(exc)
                response_started.set()

        client = threading.Thread(target=fetch)
        client.start()
        assert response_started.wait(30), "the download did not start"
        other = upstreams("other")
        portway.create_proxy_host(["during.example.com"], other.port)
        wait_for(lambda: portway.upstream_of("during.example.com") == "other")
        portway.wait_applied()
        assert client.is_alive(), result  # the download still waits for its second half
        upstream.release.set()
        client.join(60)
        assert result == {"status": 200, "body": DOWNLOAD}
    finally:
        upstream.close()


def test_unresolvable_upstream_answers_502_until_the_name_resolves(portway, upstreams, dns_server):
    good = upstreams("good")
    portway.create_proxy_host(["good.example.com"], good.port)
    ghost = portway.create_proxy_host(["ghost.example.com"], good.port, forward_host="bar")
    assert ghost["meta"]["nginx_online"] is True
    portway.restart()
    assert portway.upstream_of("good.example.com") == "good"
    assert portway.http("ghost.example.com")[0] == 502
    dns_server.records["bar"] = "127.0.0.1"
    wait_for(lambda: portway.upstream_of("ghost.example.com") == "good", timeout=30)


def test_nginx_is_restarted_if_it_dies(portway, upstreams):
    import os
    import signal

    good = upstreams("good")
    portway.create_proxy_host(["good.example.com"], good.port)
    wait_for(lambda: portway.upstream_of("good.example.com") == "good")
    pid_file = portway.data_dir / "nginx" / "run" / "nginx.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)

    def new_master() -> bool:
        text = pid_file.read_text().strip() if pid_file.exists() else ""
        return text.isdigit() and int(text) != pid  # nginx may be writing the file

    wait_for(new_master, timeout=30)
    wait_for(lambda: portway.upstream_of("good.example.com") == "good", timeout=30)
    # the new master took over the ports and applies changes (no orphaned old workers)
    other = upstreams("after")
    portway.create_proxy_host(["after.example.com"], other.port)
    wait_for(lambda: portway.upstream_of("after.example.com") == "after", timeout=30)


def test_stopping_portway_stops_nginx(portway):
    import os

    pid = int((portway.data_dir / "nginx" / "run" / "nginx.pid").read_text())
    assert portway.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
