"""Per-host nginx logs through a real `portway serve`: requests through nginx appear in
the host's log (API and the Logs page in Chromium, live), the search filters them, the
host's view permission guards them, and Portway's rotation keeps at most N files."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from portway.testing.browser import sign_in
from portway.testing.network import UpstreamServer
from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

pytestmark = pytest.mark.slow

MEMBER_PASSWORD = "member-password"
LOG_KEEP = 2
LOG_MAX_BYTES = 4096


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortwayProcess]:
    process = PortwayProcess(
        tmp_path_factory.mktemp("logs") / "data",
        env={
            "PORTWAY_LOG_MAX_BYTES": str(LOG_MAX_BYTES),
            "PORTWAY_LOG_KEEP": str(LOG_KEEP),
            "PORTWAY_LOG_CHECK_INTERVAL": "0.3",
        },
    )
    try:
        yield process.start()
    finally:
        process.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("logged") as server:
        yield server


def _member_token(portway: PortwayProcess, email: str, **permissions: str) -> str:
    status, member = portway.api(
        "POST",
        "/api/users",
        {"name": "Member", "email": email, "auth": {"type": "password", "secret": MEMBER_PASSWORD}},
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


def _logs(portway: PortwayProcess, host_id: int, token: str | None = None, **params: str):
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    return portway.api("GET", f"/api/portway/proxy-hosts/{host_id}/logs?{query}", token=token)


def test_requests_appear_in_the_hosts_log_and_search_filters(
    logged: PortwayProcess, upstream: UpstreamServer
) -> None:
    host = logged.create_proxy_host(["api-logs.example.test"], upstream.port)
    other = logged.create_proxy_host(["elsewhere.example.test"], upstream.port)
    logged.wait_applied()
    assert logged.http("api-logs.example.test", "/needle-one")[0] == 200
    assert logged.http("api-logs.example.test", "/plain-request")[0] == 200
    assert logged.http("elsewhere.example.test", "/needle-elsewhere")[0] == 200

    def lines() -> list[str]:
        status, body = _logs(logged, host["id"])
        assert status == 200, body
        return body["lines"] if len(body["lines"]) >= 2 else []

    found = wait_for(lines)
    assert any("/needle-one" in line for line in found)
    assert not any("needle-elsewhere" in line for line in found)  # the other host's log
    status, body = _logs(logged, host["id"], query="NEEDLE")
    assert status == 200
    assert body["lines"] and all("needle" in line for line in body["lines"])
    status, body = _logs(logged, other["id"])
    assert status == 200 and any("/needle-elsewhere" in line for line in body["lines"])
    status, body = _logs(logged, host["id"], log="error")
    assert status == 200 and isinstance(body["lines"], list)

    status, body = _logs(logged, host["id"], log="debug")
    assert status == 400 and "data/log must be access or error" in body["error"]["message"]
    status, body = _logs(logged, host["id"], lines="0")
    assert status == 400 and "lines" in body["error"]["message"]
    status, body = _logs(logged, host["id"], query="a\nb")
    assert status == 400 and "data/query" in body["error"]["message"]
    status, body = _logs(logged, 999999)
    assert status == 404

    hidden = _member_token(logged, "hidden@example.com")
    status, body = _logs(logged, host["id"], token=hidden)
    assert status == 403, body
    own_only = _member_token(
        logged, "own@example.com", visibility="user", proxy_hosts="view"
    )  # sees only hosts they own: not the admin's
    status, body = _logs(logged, host["id"], token=own_only)
    assert status == 404, body
    viewer = _member_token(logged, "viewer@example.com", visibility="all", proxy_hosts="view")
    status, body = _logs(logged, host["id"], token=viewer, query="needle")
    assert status == 200 and any("/needle-one" in line for line in body["lines"])


def test_rotation_keeps_at_most_n_files(logged: PortwayProcess, upstream: UpstreamServer) -> None:
    host = logged.create_proxy_host(["rotated.example.test"], upstream.port)
    logged.wait_applied()
    logs = logged.data_dir / "logs"
    current = logs / f"proxy-{host['id']}_access.log"
    padding = "x" * 400

    def rotated_twice() -> bool:
        for _ in range(5):
            logged.http("rotated.example.test", f"/fill-{padding}")
        return (logs / f"{current.name}.{LOG_KEEP}").exists()

    wait_for(rotated_twice, timeout=60, interval=0.1)
    wait_for(rotated_twice, timeout=60, interval=0.1)  # once more past the oldest kept
    assert not (logs / f"{current.name}.{LOG_KEEP + 1}").exists()
    kept = sorted(p.name for p in logs.glob(f"{current.name}*"))
    assert len(kept) <= LOG_KEEP + 1, kept

    # nginx reopened its files: new requests land in the current file (a host served by
    # the router finds the new file within open_log_file_cache's 10 s revalidation)
    def lands_in_current() -> bool:
        logged.http("rotated.example.test", "/after-rotation")
        return current.exists() and "/after-rotation" in current.read_text()

    wait_for(lands_in_current, timeout=20, interval=1)
    # a deleted host's logs go with it
    status, _ = logged.api("DELETE", f"/api/nginx/proxy-hosts/{host['id']}")
    assert status == 200
    assert not list(logs.glob(f"{current.name}*"))


@pytest.mark.browser
def test_logs_page_shows_new_requests_live_and_filters(
    logged: PortwayProcess, upstream: UpstreamServer, browser_page
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    host = logged.create_proxy_host(["ui-logs.example.test"], upstream.port)
    logged.wait_applied()
    sign_in(page, logged.admin_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page).to_have_url(logged.admin_url + "/")
    page.goto(logged.admin_url + "/proxy-hosts")
    page.click(f"#host-{host['id']} [data-logs-link]")
    expect(page).to_have_url(logged.admin_url + f"/proxy-hosts/{host['id']}/logs")
    expect(page.locator("#log-empty")).to_be_visible()
    # requests made while the page is open appear without reloading it
    logged.http("ui-logs.example.test", "/seen-live")
    logged.http("ui-logs.example.test", "/another-one")
    expect(page.locator("#log-text")).to_contain_text("/seen-live", timeout=15_000)
    expect(page.locator("#log-text")).to_contain_text("/another-one")
    page.fill("#log-search", "seen-live")
    expect(page.locator("#log-text")).not_to_contain_text("/another-one", timeout=10_000)
    expect(page.locator("#log-text")).to_contain_text("/seen-live")
    page.click("#logs-tab-error")
    expect(page).to_have_url(logged.admin_url + f"/proxy-hosts/{host['id']}/logs?log=error")


def test_every_host_kind_has_its_logs(logged: PortwayProcess) -> None:
    status, dead = logged.api("POST", "/api/nginx/dead-hosts", {"domain_names": ["gone.logs.test"]})
    assert status == 201, dead
    status, moved = logged.api(
        "POST",
        "/api/nginx/redirection-hosts",
        {
            "domain_names": ["moved.logs.test"],
            "forward_scheme": "https",
            "forward_domain_name": "example.org",
        },
    )
    assert status == 201, moved
    logged.wait_applied()
    assert logged.http("gone.logs.test", "/dead-end")[0] == 404
    assert logged.http("moved.logs.test", "/moved-away")[0] in (301, 302)

    def logged_line(slug: str, host_id: int, path: str) -> bool:
        status, body = logged.api("GET", f"/api/portway/{slug}/{host_id}/logs?query={path}")
        assert status == 200, body
        return any(path in line for line in body["lines"])

    wait_for(lambda: logged_line("dead-hosts", dead["id"], "/dead-end"))
    wait_for(lambda: logged_line("redirection-hosts", moved["id"], "/moved-away"))
    session = logged.ui_session()
    page = session.get(f"{logged.admin_url}/redirection-hosts/{moved['id']}", timeout=30)
    assert f'href="/redirection-hosts/{moved["id"]}/logs"' in page.text
    page = session.get(f"{logged.admin_url}/redirection-hosts/{moved['id']}/logs", timeout=30)
    assert page.status_code == 200 and "/moved-away" in page.text
