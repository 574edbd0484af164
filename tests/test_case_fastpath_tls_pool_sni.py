"""Two hosts whose HTTPS upstreams share an address and port but not a name (two
services behind one ingress that routes by SNI): each request must reach the upstream
over a TLS connection made with its own host's SNI.

nginx's keep-alive cache matches an idle connection by address alone. The router spreads
HTTPS upstreams over fastpath.TLS_POOLS pools by a hash of the SNI name, so two names in
the same pool would share connections: the second host's request would go out on the
first one's TLS connection and the ingress would hand it to the first service. So the
second host takes the reload path, where its upstream block (and pool) is its own.
"""

from __future__ import annotations

import json
import zlib

import pytest
from test_case_https_upstream_needs_sni import SNIUpstream  # tests/ is on sys.path

from portway.nginx import fastpath

pytestmark = [pytest.mark.slow]


def _colliding_names() -> tuple[str, str]:
    seen: dict[int, str] = {}
    for index in range(1000):
        name = f"svc{index}.ingress.test"
        pool = zlib.crc32(name.encode()) % fastpath.TLS_POOLS
        if pool in seen:
            return seen[pool], name
        seen[pool] = name
    raise AssertionError("no two names share a pool")


def test_each_request_goes_out_with_its_own_hosts_sni(portway, dns_server, tmp_path):
    first_name, second_name = _colliding_names()
    dns_server.records[first_name] = "127.0.0.1"
    dns_server.records[second_name] = "127.0.0.1"
    with SNIUpstream("ingress", tmp_path) as ingress:
        for host, upstream in (("first.pool.test", first_name), ("second.pool.test", second_name)):
            portway.create_proxy_host(
                [host], ingress.port, forward_scheme="https", forward_host=upstream
            )
        portway.wait_applied()
        seen = []
        for _ in range(3):
            for host in ("first.pool.test", "second.pool.test"):
                status, _, body = portway.http(host)
                assert status == 200, body
                assert body.startswith(b"{"), (host, body[:200])  # the upstream's JSON
                seen.append((host, json.loads(body)["sni"]))
    expected = {"first.pool.test": first_name, "second.pool.test": second_name}
    assert [sni for _, sni in seen] == [expected[host] for host, _ in seen]
