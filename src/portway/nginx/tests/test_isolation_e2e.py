"""The apply engine never gets stuck: whatever is saved is refused or isolated to its host.

These tests reach the engine's own isolation path, which the API's preflight normally
hides: hosts are written straight into the database of a stopped `portway serve` (as an
older version, a restore or another tool would leave them), and the machine changes
under a running one. Everything runs against a real nginx.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

_INSERT_HOSTS = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")
import django
django.setup()
from portway.accounts.models import User
from portway.hosts.models import ProxyHost
from portway.nginx.models import Setting
request = json.loads(sys.argv[1])
owner = User.objects.order_by("id").first()
for name, advanced in request["hosts"]:
    ProxyHost.objects.create(
        owner=owner, domain_names=[name], forward_host="127.0.0.1",
        forward_port=request["port"], advanced_config=advanced,
    )
if request.get("default_site"):
    setting = Setting.get("default-site")
    setting.value, setting.meta = request["default_site"]
    setting.save()
"""


def write_database(portway: PortwayProcess, **request: object) -> None:
    """Write rows with Portway's own models into a stopped installation's database.

    Nothing validates them: this is how a host the API would refuse today gets there.
    """
    subprocess.run(
        [sys.executable, "-c", _INSERT_HOSTS, json.dumps(request)],
        env=portway.environment(),
        check=True,
        timeout=120,
    )


def hosts_by_name(portway: PortwayProcess) -> dict[str, dict]:
    status, hosts = portway.api("GET", "/api/nginx/proxy-hosts")
    assert status == 200, hosts
    return {host["domain_names"][0]: host for host in hosts}


def test_thirty_broken_hosts_in_the_database_at_start_are_isolated(portway, upstreams):
    """30 hosts nginx rejects (some with errors that name no file) all go offline, alone.

    More than the old limit of 20 isolation rounds; three errors name no host file
    (a certificate nginx cannot load) and are found by bisection; the others carry a
    Unicode line separator, NEL or a line-ending backslash in the directive nginx
    quotes, which once split nginx's message so that it named no host.
    """
    good, later = upstreams("good"), upstreams("later")
    portway.create_proxy_host(["good.example.com"], good.port)
    wait_for(lambda: portway.upstream_of("good.example.com") == "good")
    portway.stop()

    broken = [(f"unknown{i}.example.com", f"bogus_directive_{i} on;") for i in range(24)]
    broken += [
        (
            f"nocert{i}.example.com",
            f"ssl_certificate /nonexistent/{i}.pem;\nssl_certificate_key /nonexistent/{i}.key;",
        )
        for i in range(3)
    ]
    broken += [
        ("lsep.example.com", "proxy_buffering\u2028off;"),
        ("nel.example.com", "proxy_buffering\u0085off;"),
        ("backslash.example.com", "proxy_read_timeout 30s;\nbogus\\"),
    ]
    assert len(broken) == 30
    write_database(portway, hosts=broken, port=good.port)
    portway.start()

    status = portway.api("GET", "/api/nginx/status")[1]
    assert status["stuck"] is False and status["last_error"] is None, status
    assert portway.upstream_of("good.example.com") == "good"
    hosts = hosts_by_name(portway)
    assert hosts["good.example.com"]["meta"]["nginx_online"] is True
    for name, _ in broken:
        meta = hosts[name]["meta"]
        assert meta["nginx_online"] is False, (name, meta)
        assert "the host is offline" in meta["nginx_err"], (name, meta)
        assert portway.upstream_of(name) is None  # the default site answers instead
    assert (
        'unknown directive "bogus_directive_7"'
        in hosts["unknown7.example.com"]["meta"]["nginx_err"]
    )
    for i in range(3):
        assert (
            f'cannot load certificate "/nonexistent/{i}.pem"'
            in (hosts[f"nocert{i}.example.com"]["meta"]["nginx_err"])
        )
    assert "proxy_buffering\u2028off" in hosts["lsep.example.com"]["meta"]["nginx_err"]
    assert "line 1 of the advanced config" in hosts["lsep.example.com"]["meta"]["nginx_err"]
    assert "proxy_buffering\u0085off" in hosts["nel.example.com"]["meta"]["nginx_err"]
    assert "bogus\\" in hosts["backslash.example.com"]["meta"]["nginx_err"]

    # rounds: one per error that names its host, log2(n) + 2 per bisection
    assert status["last_apply_tests"] <= 27 + 1 + 3 * (5 + 3), status

    # the next change goes live at once: the rejected texts are known
    created = portway.create_proxy_host(["later.example.com"], later.port)
    assert created["meta"]["nginx_online"] is True
    assert portway.upstream_of("later.example.com") == "later"
    # one full test, and each host whose error named no file tested alone again (its
    # certificate may have been put back since)
    assert portway.api("GET", "/api/nginx/status")[1]["last_apply_tests"] == 1 + 3


def test_a_default_site_nginx_rejects_in_the_database_falls_back(portway, upstreams):
    """A stored default site nginx refuses never blocks hosts: the built-in page serves.

    The reload path's default servers (with the fast path the default site is in nginx's
    shared memory and never part of the configuration nginx loads)."""
    portway.stop()
    portway.extra_env["PORTWAY_FAST_PATH"] = "off"
    write_database(
        portway,
        hosts=[],
        port=1,
        default_site=["redirect", {"redirect": "https://example.org/$no_such_variable"}],
    )
    portway.start()
    status = portway.api("GET", "/api/nginx/status")[1]
    assert status["stuck"] is False
    assert "default-site setting" in status["last_error"]
    assert "no_such_variable" in status["last_error"]
    code, _, body = portway.http("unknown.example.com")
    assert code == 200 and b"Congratulations" in body
    app = upstreams("app")
    assert portway.create_proxy_host(["app.example.com"], app.port)["meta"]["nginx_online"]
    assert portway.upstream_of("app.example.com") == "app"


def test_default_site_text_is_never_read_as_nginx_syntax(portway, upstreams):
    """`$`, quotes and 5,000 bytes in the custom page are served as written."""
    html = "<!doctype html><p>Price: $5 $host ${x} \"q\" 'q' ; { } # \\</p>" + "x" * 5000
    status, body = portway.api(
        "PUT", "/api/settings/default-site", {"value": "html", "meta": {"html": html}}
    )
    assert status == 200, body
    portway.wait_applied()
    code, headers, served = portway.http("unknown.example.com", "/any/path")
    assert code == 200 and served.decode() == html
    assert headers["content-type"].startswith("text/html")
    assert portway.http("unknown.example.com", method="POST")[2].decode() == html
    first = upstreams("first")
    assert portway.create_proxy_host(["first.example.com"], first.port)["meta"]["nginx_online"]
    assert portway.upstream_of("first.example.com") == "first"

    # a redirect target with "$" would be an nginx variable: refused, nothing changes
    status, body = portway.api(
        "PUT",
        "/api/settings/default-site",
        {"value": "redirect", "meta": {"redirect": "https://example.org/$host"}},
    )
    assert status == 400, body
    assert "meta/redirect" in json.dumps(body) and "$" in json.dumps(body)
    assert portway.api("GET", "/api/settings/default-site")[1]["value"] == "html"
    second = upstreams("second")
    assert portway.create_proxy_host(["second.example.com"], second.port)["meta"]["nginx_online"]
    assert portway.upstream_of("second.example.com") == "second"
    assert portway.http("unknown.example.com")[2].decode() == html


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("add_header X-A 1;\u2028add_header X-B 2;", "U+2028"),
        ("proxy_buffering\u0085off;", "U+0085"),
        ("add_header X-A 1;\x0b", "U+000B"),
        ("proxy_read_timeout 30s;\nbogus\\", "backslash at the end of line 2"),
        # nginx starts a comment only at the start of a word, and "${" inside a word
        # opens no block: both texts close the server block in nginx's reading
        (
            "add_header X-A a#; }\nserver { listen 80; server_name evil.example; return 200 x};",
            "closes the server block",
        ),
        (
            "proxy_hide_header a${; }\nserver { server_name evil.example; return 200 x};",
            "closes the server block",
        ),
    ],
)
def test_advanced_config_nginx_would_misread_is_refused(shared_portway, text, reason):
    status, body = shared_portway.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["refused.example.com"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": 9,
            "advanced_config": text,
        },
    )
    assert status == 400, body
    assert "advanced_config" in json.dumps(body) and reason in json.dumps(body), body


def test_advanced_config_is_read_as_nginx_reads_it(shared_portway, upstreams):
    """`#` inside a word is no comment for nginx, so the text after it is config: a
    header value `a#b` is sent whole, and a `}` after `a#;` is refused (it would close
    the server block), leaving the saved text as it was."""
    upstream = upstreams("words")
    host = shared_portway.create_proxy_host(
        ["words.example.com"],
        upstream.port,
        advanced_config="add_header X-Word a#b;\nadd_header X-Quote 'c \"d\"' always; # {",
    )
    assert host["meta"]["nginx_online"], host
    status, headers, _ = shared_portway.http("words.example.com")
    assert status == 200 and headers["x-word"] == "a#b" and headers["x-quote"] == 'c "d"'
    status, body = shared_portway.api(
        "PUT",
        f"/api/nginx/proxy-hosts/{host['id']}",
        {"advanced_config": "add_header X-A a#; }\nserver { server_name evil.example.com; x};"},
    )
    assert status == 400 and "closes the server block" in json.dumps(body), body
    saved = shared_portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")[1]
    assert saved["advanced_config"] == host["advanced_config"]
    assert shared_portway.upstream_of("words.example.com") == "words"


def test_default_site_answer_comes_once_nginx_serves_it(shared_portway):
    """Like a host's create or update, PUT /api/settings/default-site answers after the
    apply: a request right after the answer gets the new default site."""
    for value, expected in (("404", 404), ("congratulations", 200)):
        status, body = shared_portway.api(
            "PUT", "/api/settings/default-site", {"value": value, "meta": {}}
        )
        assert status == 200, body
        assert shared_portway.http("no-such-host.example.com")[0] == expected


def _login(portway: PortwayProcess) -> requests.Session:
    session = requests.Session()
    base = f"http://127.0.0.1:{portway.admin_port}"
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    response = session.post(
        f"{base}/login",
        data={
            "csrfmiddlewaretoken": token.group(1),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
        },
        headers={"Referer": f"{base}/login"},
        timeout=30,
    )
    assert response.status_code == 200 and 'id="logout-button"' in response.text
    return session


def test_a_stuck_engine_is_reported_loudly_and_hosts_are_not_called_online(portway, upstreams):
    """nginx refuses even the config without hosts: status and UI say so; no host is
    reported online until its configuration is live.

    The hosts have advanced config: they are served by server blocks of their own, which
    need nginx to load the configuration (a fast host's change needs no reload)."""
    first, second = upstreams("first"), upstreams("second")
    slow = {"advanced_config": "add_header X-Slow 1;"}
    portway.create_proxy_host(["first.example.com"], first.port, **slow)
    ui = _login(portway)
    base = f"http://127.0.0.1:{portway.admin_port}"
    assert 'id="engine-stuck"' not in ui.get(f"{base}/", timeout=30).text

    cert = portway.data_dir / "nginx" / "default-cert" / "cert.pem"
    good_pem = cert.read_bytes()
    cert.write_bytes(b"not a certificate\n")  # e.g. a disk error or a bad manual edit
    host = portway.create_proxy_host(["second.example.com"], second.port, **slow)
    assert host["meta"]["nginx_online"] is False, host["meta"]
    assert "not live" in host["meta"]["nginx_err"]
    status = portway.api("GET", "/api/nginx/status")[1]
    assert status["stuck"] is True and "cannot load certificate" in status["last_error"]
    assert status["live_generation"] != status["generation"]
    page = ui.get(f"{base}/", timeout=30).text
    assert 'id="engine-stuck"' in page and "Changes are not going live" in page
    assert portway.upstream_of("first.example.com") == "first"  # the old config serves
    assert portway.upstream_of("second.example.com") is None
    listed = hosts_by_name(portway)
    assert listed["first.example.com"]["meta"]["nginx_online"] is True
    assert listed["second.example.com"]["meta"]["nginx_online"] is False

    cert.write_bytes(good_pem)
    status, body = portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"forward_port": second.port}
    )
    assert status == 200 and body["meta"]["nginx_online"] is True, body
    assert portway.upstream_of("second.example.com") == "second"
    assert portway.api("GET", "/api/nginx/status")[1]["stuck"] is False
    assert 'id="engine-stuck"' not in ui.get(f"{base}/", timeout=30).text


def test_host_isolated_for_a_missing_file_comes_back_once_the_file_exists(
    portway, upstreams, tmp_path
):
    """An error that names no file may lie outside the host's text: fixed on disk, the
    host goes live with the next apply, without an edit."""
    from portway.testing import certs

    app, other = upstreams("app"), upstreams("other")
    directory = tmp_path / "files"
    chain, key = directory / "fullchain.pem", directory / "privkey.pem"
    status, host = portway.api(
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": ["files.example.com"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": app.port,
            "advanced_config": f"ssl_certificate {chain};\nssl_certificate_key {key};",
        },
    )
    assert status == 201, host
    assert host["meta"]["nginx_online"] is False
    assert f'cannot load certificate "{chain}"' in host["meta"]["nginx_err"]
    created = portway.create_proxy_host(["other.example.com"], other.port)
    assert created["meta"]["nginx_online"] is True
    assert portway.upstream_of("files.example.com") is None

    certs.make_leaf(None, ["files.example.com"], key_type="ec").write(directory)
    # any later change (here an edit of another host) tests the isolated host again
    status, _ = portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{created['id']}", {"forward_port": other.port}
    )
    assert status == 200
    assert portway.upstream_of("files.example.com") == "app"
    assert hosts_by_name(portway)["files.example.com"]["meta"]["nginx_online"] is True
