"""A DNS server that stops answering must not hold up every other host's changes.

Fast hosts' upstream names are resolved by Portway (the router cannot resolve), again
every 30 s and every 5 s while a name does not resolve. When PORTWAY_RESOLVER stops
answering, each lookup waits for its timeout: looked up one after the other, every apply
waited for the sum (4 s per name here, 40 s with ten names), so a change to a host with
an IP address was not live when the API answered, and every change after it waited too.
"""

from __future__ import annotations

import pytest

from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow]

NAMED_HOSTS = 10


def test_change_goes_live_while_the_resolver_does_not_answer(portway, dns_server, upstreams):
    first, second = upstreams("first"), upstreams("second")
    for index in range(NAMED_HOSTS):
        dns_server.records[f"svc{index}.internal"] = "127.0.0.1"
        portway.create_proxy_host(
            [f"named{index}.resolver.test"], first.port, forward_host=f"svc{index}.internal"
        )
    plain = portway.create_proxy_host(["plain.resolver.test"], first.port)
    portway.wait_applied()
    assert portway.upstream_of("named0.resolver.test") == "first"

    dns_server.shutdown()  # its socket stays bound: queries go unanswered (timeouts)
    # the names are due again (30 s) and then, unresolved, every 5 s
    wait_for(lambda: portway.http("named0.resolver.test")[0] == 502, timeout=90, interval=1)

    for port, name in ((second.port, "second"), (first.port, "first")):
        status, answer = portway.api(
            "PUT", f"/api/nginx/proxy-hosts/{plain['id']}", {"forward_port": port}
        )
        assert status == 200, answer
        assert answer["meta"]["nginx_online"] is True, answer["meta"]
        assert portway.upstream_of("plain.resolver.test") == name
