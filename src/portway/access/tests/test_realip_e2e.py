"""Real client IP through real nginx: a header from a trusted source reaches the upstream
(X-Real-IP, X-Forwarded-For), access lists and the access log; from anyone else it is
ignored. Cloudflare's ranges refreshed from a local server standing in for Cloudflare's
list (tests never leave loopback), which names 127.0.0.2 as a Cloudflare address."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

CLIENT = "203.0.113.7"


def seen(portway, name: str, source: str, headers: dict[str, str]) -> dict:
    status, _, body = portway.http(name, "/p", source=source, headers=headers)
    assert status == 200, (source, headers, status)
    return json.loads(body)


def real_ip(portway, name: str, source: str, headers: dict[str, str]) -> str | None:
    """The X-Real-IP the upstream got, None while the host is not live yet."""
    status, _, body = portway.http(name, "/p", source=source, headers=headers)
    return json.loads(body)["x_real_ip"] if status == 200 and body.startswith(b"{") else None


def set_real_ip(portway, value: str, **meta) -> None:
    status, body = portway.api("PUT", "/api/settings/real-ip", {"value": value, "meta": meta})
    assert status == 200, body


def test_trusted_header_reaches_upstream_untrusted_ignored(portway, upstreams):
    app = upstreams("app")
    host = portway.create_proxy_host(["rip.example.test"], app.port)
    set_real_ip(portway, "X-Forwarded-For", trusted_proxies=["127.0.0.2"])
    spoof = {"X-Forwarded-For": CLIENT}
    wait_for(lambda: real_ip(portway, "rip.example.test", "127.0.0.2", spoof) == CLIENT)
    portway.wait_applied()

    trusted = seen(portway, "rip.example.test", "127.0.0.2", spoof)
    assert trusted["x_real_ip"] == CLIENT and trusted["x_forwarded_for"] == CLIENT
    untrusted = seen(portway, "rip.example.test", "127.0.0.3", spoof)
    assert untrusted["x_real_ip"] == "127.0.0.3" and untrusted["x_forwarded_for"] == "127.0.0.3"
    log = (portway.data_dir / "logs" / f"proxy-{host['id']}_access.log").read_text()
    assert any(line.startswith(CLIENT) for line in log.splitlines())

    # access lists see the real client
    status, listed = portway.api(
        "POST",
        "/api/nginx/access-lists",
        {"name": "one client", "clients": [{"address": CLIENT, "directive": "allow"}]},
    )
    assert status == 201, listed
    portway.create_proxy_host(["acl.example.test"], app.port, access_list_id=listed["id"])
    wait_for(lambda: portway.http("acl.example.test", "/p", source="127.0.0.3")[0] == 403)
    portway.wait_applied()
    for source, client, expected in (
        ("127.0.0.2", CLIENT, 200),
        ("127.0.0.2", "203.0.113.8", 403),
        ("127.0.0.3", CLIENT, 403),  # untrusted: its header is ignored
    ):
        headers = {"X-Forwarded-For": client}
        status = portway.http("acl.example.test", "/p", source=source, headers=headers)[0]
        assert status == expected, (source, client)

    # off again: nginx's usual behaviour, the connection's address
    set_real_ip(portway, "off")
    wait_for(lambda: real_ip(portway, "rip.example.test", "127.0.0.2", spoof) == "127.0.0.2")


class _Ranges(BaseHTTPRequestHandler):
    lists = {"/ips-v4": "127.0.0.2/32\n", "/ips-v6": "2001:db8:1::/48\n"}

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.lists.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_cloudflare_preset_refreshed(tmp_path, upstreams):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    env = {"PORTWAY_CLOUDFLARE_IPS_URLS": f"{base}/ips-v4 {base}/ips-v6"}
    try:
        with PortwayProcess(tmp_path / "data", env=env) as portway:
            app = upstreams("app")
            portway.create_proxy_host(["cf.example.test"], app.port)
            set_real_ip(portway, "CF-Connecting-IP", cloudflare=True)
            header = {"CF-Connecting-IP": CLIENT}
            portway.wait_applied()
            # the shipped ranges do not include loopback: ignored
            assert seen(portway, "cf.example.test", "127.0.0.2", header)["x_real_ip"] == "127.0.0.2"
            status, body = portway.api("POST", "/api/settings/real-ip/refresh-cloudflare")
            assert status == 200, body
            wait_for(lambda: real_ip(portway, "cf.example.test", "127.0.0.2", header) == CLIENT)
            # one new worker answering is not the end of the reload: old workers may still
            # take a request with the old ranges until the apply reports itself finished
            portway.wait_applied()
            assert seen(portway, "cf.example.test", "127.0.0.3", header)["x_real_ip"] == "127.0.0.3"
            # a list that is not one: 400, the previous ranges stay
            _Ranges.lists = {"/ips-v4": "<html>not a list</html>\n", "/ips-v6": "::/0\n"}
            status, body = portway.api("POST", "/api/settings/real-ip/refresh-cloudflare")
            assert status == 400, body
            assert seen(portway, "cf.example.test", "127.0.0.2", header)["x_real_ip"] == CLIENT
            # a list trusting the whole internet (anyone could pass for any address): 400
            _Ranges.lists = {"/ips-v4": "0.0.0.0/0\n", "/ips-v6": "2400:cb00::/32\n"}
            status, body = portway.api("POST", "/api/settings/real-ip/refresh-cloudflare")
            assert status == 400 and "0.0.0.0/0" in body["error"]["message"], body
            assert seen(portway, "cf.example.test", "127.0.0.3", header)["x_real_ip"] == "127.0.0.3"
    finally:
        server.shutdown()
        server.server_close()
