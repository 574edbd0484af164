"""The admin UI on a domain name over HTTPS through Portway's own nginx (setting
`admin-domain`), with the admin port bound to 127.0.0.1 only (PORTWAY_ADMIN_BIND).

What a user sees: the login page served over HTTPS with the chosen certificate, plain
HTTP redirected, sign-in working there (CSRF origin check passes, session and CSRF
cookies Secure), the name refused to every host while the admin UI holds it and the
setting refused while a host holds its name, and port 81 not reachable on another
address.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
import requests

from portway.testing.certs import make_ca, make_leaf
from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

NAME = "admin.example.test"


@pytest.fixture(scope="module")
def portway(tmp_path_factory: pytest.TempPathFactory):
    process = PortwayProcess(
        tmp_path_factory.mktemp("admin-domain") / "data",
        env={"PORTWAY_ADMIN_BIND": "127.0.0.1"},
    )
    try:
        process.start()
        yield process
    finally:
        process.close()


@pytest.fixture(scope="module")
def certificate(portway):
    ca = make_ca("Admin Domain Test CA")
    leaf = make_leaf(ca, [NAME])
    uploaded = portway.upload_certificate("admin", leaf.fullchain_pem, leaf.key_pem())
    return leaf, uploaded


def _put(portway: PortwayProcess, value: str, meta: dict | None = None) -> tuple[int, dict]:
    return portway.api("PUT", "/api/settings/admin-domain", {"value": value, "meta": meta or {}})


def test_admin_port_listens_on_the_admin_bind_only(portway):
    with socket.create_connection(("127.0.0.1", portway.admin_port), timeout=2):
        pass
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", portway.admin_port), timeout=2).close()


def test_admin_ui_over_https_on_its_domain(portway, certificate):
    leaf, uploaded = certificate
    status, body = _put(portway, NAME.upper(), {"certificate_id": uploaded["id"]})
    assert status == 200, body
    assert body["value"] == NAME
    assert body["meta"] == {"certificate_id": uploaded["id"]}

    assert portway.served_certificate(NAME).serial_number == leaf.cert.serial_number
    status, headers, _ = portway.http(NAME, "/login")
    assert status == 301
    assert headers["location"] == f"https://{NAME}:{portway.https_port}/login"

    # a browser: Host and Origin carry the name and port it used
    origin = f"https://{NAME}:{portway.https_port}"
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False
    session.verify = False  # the served certificate is checked above, with SNI
    session.headers["Host"] = f"{NAME}:{portway.https_port}"
    base = f"https://127.0.0.1:{portway.https_port}"
    page = session.get(f"{base}/login", allow_redirects=False)
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert re.search(r"(?i)csrftoken=[^;]+;.*\bsecure\b", page.headers["set-cookie"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{base}/login",
        data={"csrfmiddlewaretoken": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        headers={"Origin": origin, "Referer": f"{origin}/login"},
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text[:500]
    assert re.search(r"(?i)sessionid=[^;]+;.*\bsecure\b", answer.headers["set-cookie"])
    dashboard = session.get(f"{base}/", allow_redirects=False)
    assert dashboard.status_code == 200
    assert ADMIN_EMAIL in dashboard.text or "Dashboard" in dashboard.text

    # another origin is still refused by the CSRF check
    forged = session.post(
        f"{base}/login",
        data={"csrfmiddlewaretoken": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        headers={"Origin": "https://evil.example.test"},
        allow_redirects=False,
    )
    assert forged.status_code == 403

    # `portway status` of this installation names it
    status_run = subprocess.run(
        [sys.executable, "-m", "portway", "status"],
        env=portway.environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status_run.returncode == 0, status_run.stderr
    assert f"admin UI over HTTPS: https://{NAME}:{portway.https_port}/" in status_run.stdout
    assert f"running, pid {portway.proc.pid}" in status_run.stdout
    assert f"admin UI: port {portway.admin_port} on 127.0.0.1" in status_run.stdout
    assert "note:" not in status_run.stdout

    # settings changed since the start (no restart yet): status still tells what runs
    edited = {**portway.environment(), "PORTWAY_ADMIN_PORT": "1"}
    status_run = subprocess.run(
        [sys.executable, "-m", "portway", "status"],
        env=edited,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status_run.returncode == 0, status_run.stderr
    assert f"admin UI: port {portway.admin_port} on 127.0.0.1" in status_run.stdout
    assert "note: the settings now say admin_port 1;" in status_run.stdout
    assert "restart it to apply them" in status_run.stdout

    # the name is the admin UI's: no host can take it
    status, body = portway.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": [NAME],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 9,
        },
    )
    assert status == 400, body
    assert "admin UI" in body["error"]["message"]


def test_admin_domain_refused_while_a_host_serves_the_name(portway, certificate, upstreams):
    _, uploaded = certificate
    upstream = upstreams("taken")
    portway.create_proxy_host(["taken.example.test"], upstream.port)
    status, body = _put(portway, "taken.example.test", {"certificate_id": uploaded["id"]})
    assert status == 400
    assert "taken.example.test" in body["error"]["message"]
    status, body = _put(portway, "other.example.test", {"certificate_id": 999999})
    assert status == 400
    assert "certificate_id" in body["error"]["message"]
    # nothing changed: the admin UI still answers on its name
    assert portway.api("GET", "/api/settings/admin-domain")[1]["value"] == NAME
    wait_for(lambda: portway.upstream_of("taken.example.test") == "taken")


def test_admin_domain_off_frees_the_name(portway):
    status, body = _put(portway, "off")
    assert status == 200, body
    assert body["value"] == "off"
    status, _, _ = portway.http(NAME, "/login")
    assert status != 301  # the default site answers the name again
    portway.create_proxy_host([NAME], 9)
