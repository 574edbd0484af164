"""Least exposure: installation-wide state is for administrators (real `portway serve`)."""

from __future__ import annotations

from collections.abc import Callable

from portway.testing.network import UpstreamServer
from portway.testing.process import PortwayProcess

MEMBER_PASSWORD = "member-password"


def _member_token(portway: PortwayProcess, email: str, **permissions: str) -> str:
    """A new non-admin's token (every section hidden unless `permissions` say more)."""
    status, member = portway.api(
        "POST",
        "/api/users",
        {
            "name": "Member",
            "email": email,
            "auth": {"type": "password", "secret": MEMBER_PASSWORD},
        },
    )
    assert status == 201, member
    if permissions:
        status, body = portway.api("PUT", f"/api/users/{member['id']}/permissions", permissions)
        assert status == 200, body
    status, login = portway.api(
        "POST", "/api/tokens", {"identity": email, "secret": MEMBER_PASSWORD}, auth=False
    )
    assert status == 200, login
    return login["token"]


def test_members_see_only_whether_an_apply_is_pending(
    shared_portway: PortwayProcess, upstreams: Callable[[str], UpstreamServer]
) -> None:
    portway = shared_portway
    upstream = upstreams("app")
    portway.create_proxy_host(["admin-only.example.test"], upstream.port)
    portway.wait_applied()
    status, full = portway.api("GET", "/api/nginx/status")
    assert status == 200
    assert full["generation"] is not None and "last_error" in full

    token = _member_token(portway, "watcher@example.com")
    status, seen = portway.api("GET", "/api/nginx/status", token=token)
    assert status == 200, seen
    assert set(seen) == {"running", "pending"} and seen["running"] is True


def test_host_report_counts_only_what_the_caller_may_see(
    shared_portway: PortwayProcess, upstreams: Callable[[str], UpstreamServer]
) -> None:
    portway = shared_portway
    upstream = upstreams("app")
    for name in ("one.example.test", "two.example.test"):
        portway.create_proxy_host([name], upstream.port)
    token = _member_token(portway, "owner@example.com", visibility="user", proxy_hosts="manage")
    status, own = portway.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["mine.example.test"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": upstream.port,
        },
        token=token,
    )
    assert status == 201, own

    every_host = portway.api("GET", "/api/nginx/proxy-hosts")[1]
    assert portway.api("GET", "/api/reports/hosts")[1]["proxy"] == len(every_host) >= 3
    status, report = portway.api("GET", "/api/reports/hosts", token=token)
    assert status == 200, report
    assert report == {"proxy": 1, "redirection": 0, "stream": 0, "dead": 0}


def test_host_report_of_a_hidden_section_is_zero(
    shared_portway: PortwayProcess, upstreams: Callable[[str], UpstreamServer]
) -> None:
    portway = shared_portway
    portway.create_proxy_host(["hidden.example.test"], upstreams("app").port)
    token = _member_token(portway, "hidden@example.com", visibility="all", proxy_hosts="hidden")
    status, report = portway.api("GET", "/api/reports/hosts", token=token)
    assert status == 200, report
    assert report["proxy"] == 0
    assert portway.api("GET", "/api/reports/hosts")[1]["proxy"] >= 1
