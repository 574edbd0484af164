"""The engine's fast path against a real `portway serve` and nginx (FASTPATH.md).

Routine changes go live through nginx's shared memory: the next request sees them while
nginx's master and workers stay the same processes, and GET /api/nginx/status says the
apply took the "fast" path. Hosts the router cannot serve (advanced config) take the
reload path with its isolation; a certificate that does not load is refused with the
host's error while the previous one keeps serving; a killed nginx comes back serving
the current state.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from portway.nginx.process import accepting_workers, stray_master
from portway.testing import certs
from portway.testing.process import PortwayProcess, wait_for

pytestmark = [pytest.mark.slow]


def _nginx_processes(portway: PortwayProcess) -> tuple[int, tuple[int, ...]]:
    """(master pid, sorted worker pids) of the installation's nginx."""
    base = portway.data_dir / "nginx"
    master = stray_master(base / "run" / "nginx.pid", base)
    assert master is not None
    return master, tuple(sorted(accepting_workers(master)))


def _status(portway: PortwayProcess) -> dict:
    portway.wait_applied()
    return portway.api("GET", "/api/nginx/status")[1]


def _put(portway: PortwayProcess, path: str, body: dict) -> dict:
    status, answer = portway.api("PUT", path, body)
    assert status == 200, answer
    return answer


def test_routine_changes_go_live_without_a_reload(portway, upstreams):
    first, second = upstreams("first"), upstreams("second")
    status = _status(portway)
    assert status["fast_path"] == {"enabled": True, "reason": None}
    # the first change after start may reload (nothing rendered by this engine is live
    # yet): make one, then watch the processes
    warmup = portway.create_proxy_host(["warmup.fast.test"], first.port)
    wait_for(lambda: portway.upstream_of("warmup.fast.test") == "first")
    processes = _nginx_processes(portway)

    def fast_and_same_processes() -> None:
        status = _status(portway)
        assert status["last_apply_path"] == "fast", status
        assert status["last_apply_tests"] == 0
        assert _nginx_processes(portway) == processes

    # create
    host = portway.create_proxy_host(["app.fast.test"], first.port)
    assert host["meta"]["nginx_online"] is True
    assert portway.upstream_of("app.fast.test") == "first"
    fast_and_same_processes()

    # upstream change
    path = f"/api/nginx/proxy-hosts/{host['id']}"
    _put(portway, path, {"forward_port": second.port})
    assert portway.upstream_of("app.fast.test") == "second"
    fast_and_same_processes()

    # names change: the old name goes to the default site, the new one is routed
    _put(portway, path, {"domain_names": ["app2.fast.test"]})
    assert portway.upstream_of("app2.fast.test") == "second"
    assert portway.upstream_of("app.fast.test") is None  # the default site
    fast_and_same_processes()

    # certificate change, then Force SSL and HSTS
    leaf = certs.make_leaf(None, ["app2.fast.test"], key_type="ec", label="fast-engine")
    cert = portway.upload_certificate("fast", leaf.cert_pem, leaf.key_pem())
    _put(portway, path, {"certificate_id": cert["id"]})
    assert portway.served_certificate("app2.fast.test").serial_number == leaf.cert.serial_number
    assert portway.upstream_of("app2.fast.test", https=True) == "second"
    fast_and_same_processes()

    _put(portway, path, {"ssl_forced": True, "hsts_enabled": True})
    code, headers, _ = portway.http("app2.fast.test", "/x?y=1")
    assert code == 301
    assert headers["location"] == f"https://app2.fast.test:{portway.https_port}/x?y=1"
    code, headers, _ = portway.http("app2.fast.test", https=True)
    assert code == 200
    assert headers["strict-transport-security"].startswith("max-age=")
    fast_and_same_processes()

    # disable, enable
    assert portway.api("POST", f"{path}/disable")[0] == 200
    portway.wait_applied()  # disabling answers before the apply
    assert portway.upstream_of("app2.fast.test", https=True) is None
    fast_and_same_processes()
    assert portway.api("POST", f"{path}/enable")[0] == 200
    assert portway.upstream_of("app2.fast.test", https=True) == "second"
    fast_and_same_processes()

    # other kinds: a redirection host and a 404 host
    status_code, redirection = portway.api(
        "POST",
        "/api/nginx/redirection-hosts",
        {
            "domain_names": ["old.fast.test"],
            "forward_http_code": 301,
            "forward_scheme": "https",
            "forward_domain_name": "new.fast.test",
            "preserve_path": True,
        },
    )
    assert status_code == 201, redirection
    code, headers, _ = portway.http("old.fast.test", "/p?q=1")
    assert code == 301
    assert headers["location"] == "https://new.fast.test/p?q=1"
    fast_and_same_processes()
    status_code, dead = portway.api(
        "POST", "/api/nginx/dead-hosts", {"domain_names": ["gone.fast.test"]}
    )
    assert status_code == 201, dead
    assert portway.http("gone.fast.test")[0] == 404
    fast_and_same_processes()

    # the default site
    status_code, _ = portway.api("PUT", "/api/settings/default-site", {"value": "404"})
    assert status_code == 200
    assert portway.http("nobody.fast.test")[0] == 404
    fast_and_same_processes()

    # delete
    assert portway.api("DELETE", path)[0] == 200
    portway.wait_applied()
    assert portway.http("app2.fast.test")[0] == 404  # the default site (404 now)
    assert portway.upstream_of("warmup.fast.test") == "first"
    fast_and_same_processes()
    assert warmup["meta"]["nginx_online"] is True


def test_advanced_config_takes_the_reload_path_and_stays_isolated(portway, upstreams):
    good, other = upstreams("good"), upstreams("other")
    fast = portway.create_proxy_host(["plain.mixed.test"], good.port)
    wait_for(lambda: portway.upstream_of("plain.mixed.test") == "good")

    custom = portway.create_proxy_host(
        ["custom.mixed.test"],
        good.port,
        advanced_config='add_header X-Custom "yes" always;',
    )
    assert custom["meta"]["nginx_online"] is True
    status = _status(portway)
    assert status["last_apply_path"] == "reload"
    code, headers, _ = portway.http("custom.mixed.test")
    assert code == 200
    assert headers["x-custom"] == "yes"

    broken = portway.create_proxy_host(
        ["broken.mixed.test"], good.port, advanced_config="this_is_not_a_directive on;"
    )
    assert broken["meta"]["nginx_online"] is False
    assert 'unknown directive "this_is_not_a_directive"' in broken["meta"]["nginx_err"]
    assert portway.upstream_of("plain.mixed.test") == "good"
    assert portway.http("custom.mixed.test")[1]["x-custom"] == "yes"

    # a routine change next to the broken host is still pushed without a reload
    processes = _nginx_processes(portway)
    _put(portway, f"/api/nginx/proxy-hosts/{fast['id']}", {"forward_port": other.port})
    assert portway.upstream_of("plain.mixed.test") == "other"
    status = _status(portway)
    assert status["last_apply_path"] == "fast"
    assert _nginx_processes(portway) == processes
    _, again = portway.api("GET", f"/api/nginx/proxy-hosts/{broken['id']}")
    assert again["meta"]["nginx_online"] is False

    # advanced config removed: the host moves to the router (reload), still served
    _put(portway, f"/api/nginx/proxy-hosts/{custom['id']}", {"advanced_config": ""})
    assert portway.upstream_of("custom.mixed.test") == "good"
    assert "x-custom" not in portway.http("custom.mixed.test")[1]


def _certificate_files(portway: PortwayProcess, cert_id: int) -> Path:
    return portway.data_dir / "certificates" / str(cert_id) / "fullchain.pem"


def test_certificate_that_does_not_load_is_refused_and_the_old_one_served(portway, upstreams):
    upstream = upstreams("tls")
    good = certs.make_leaf(None, ["tls.fast.test"], key_type="ec", label="good")
    replacement = certs.make_leaf(None, ["tls.fast.test"], key_type="ec", label="replacement")
    good_cert = portway.upload_certificate("good", good.cert_pem, good.key_pem())
    bad_cert = portway.upload_certificate("bad", replacement.cert_pem, replacement.key_pem())
    # the replacement's files get damaged on disk (a failed copy, an edit by hand)
    _certificate_files(portway, bad_cert["id"]).write_bytes(
        b"-----BEGIN CERTIFICATE-----\nbroken\n"
    )

    host = portway.create_proxy_host(
        ["tls.fast.test"], upstream.port, certificate_id=good_cert["id"]
    )
    assert host["meta"]["nginx_online"] is True
    assert portway.served_certificate("tls.fast.test").serial_number == good.cert.serial_number

    status, body = portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{host['id']}", {"certificate_id": bad_cert["id"]}
    )
    assert status == 200, body
    assert body["meta"]["nginx_online"] is False
    assert body["meta"]["nginx_serving_previous"] is True
    assert "previous config is still served" in body["meta"]["nginx_err"]
    assert "certificate" in body["meta"]["nginx_err"]
    portway.wait_applied()
    assert portway.served_certificate("tls.fast.test").serial_number == good.cert.serial_number
    assert portway.upstream_of("tls.fast.test", https=True) == "tls"
    _, again = portway.api("GET", f"/api/nginx/proxy-hosts/{host['id']}")
    assert again["meta"]["nginx_serving_previous"] is True

    # a new host on the damaged certificate never went live: offline with the error
    fresh = portway.create_proxy_host(
        ["fresh.fast.test"], upstream.port, certificate_id=bad_cert["id"]
    )
    assert fresh["meta"]["nginx_online"] is False
    assert fresh["meta"]["nginx_serving_previous"] is False
    assert portway.upstream_of("fresh.fast.test") is None


def test_nginx_killed_comes_back_serving_the_current_state(portway, upstreams):
    first, second = upstreams("first"), upstreams("second")
    host = portway.create_proxy_host(["back.fast.test"], first.port)
    wait_for(lambda: portway.upstream_of("back.fast.test") == "first")
    _put(portway, f"/api/nginx/proxy-hosts/{host['id']}", {"forward_port": second.port})
    assert portway.upstream_of("back.fast.test") == "second"
    master, _workers = _nginx_processes(portway)

    os.killpg(master, signal.SIGKILL)  # master and workers (nginx runs in its own group)
    wait_for(lambda: _restarted(portway, master), timeout=30)
    # served from the snapshot the restarted master loaded, not the first upstream
    wait_for(lambda: portway.upstream_of("back.fast.test") == "second", timeout=30)

    # and the engine pushes to the new master
    portway.create_proxy_host(["after.fast.test"], first.port)
    assert portway.upstream_of("after.fast.test") == "first"
    code, out = portway.cli("status")
    assert code == 0, out
    assert "fast path: on, routing state generation" in out


def _restarted(portway: PortwayProcess, old_master: int) -> bool:
    base = portway.data_dir / "nginx"
    master = stray_master(base / "run" / "nginx.pid", base)
    return master is not None and master != old_master


def test_an_upstream_name_moving_to_another_address_is_followed(portway, dns_server):
    """The router takes addresses: Portway resolves a fast host's upstream name again
    every 30 s and pushes the new address, without a reload."""
    from portway.testing.network import UpstreamServer

    with UpstreamServer("old", address="127.0.0.1") as old:
        try:
            new = UpstreamServer("new", port=old.port, address="127.0.0.2")
        except OSError:
            pytest.skip("127.0.0.2 is not a loopback address here")
        with new:
            dns_server.records["moving.internal"] = "127.0.0.1"
            portway.create_proxy_host(
                ["moving.fast.test"], old.port, forward_host="moving.internal"
            )
            assert portway.upstream_of("moving.fast.test") == "old"
            processes = _nginx_processes(portway)
            dns_server.records["moving.internal"] = "127.0.0.2"
            wait_for(lambda: portway.upstream_of("moving.fast.test") == "new", timeout=60)
            assert _status(portway)["last_apply_path"] == "fast"
            assert _nginx_processes(portway) == processes


def test_a_fast_host_never_passes_a_clients_login_headers(portway, upstreams):
    """Remote-User and Remote-Email name the login gate's user; a client sending them to
    a host served by the router must not reach the upstream with them (as with every
    proxy host)."""
    import json

    app = upstreams("app")
    portway.create_proxy_host(["open.fast.test"], app.port)
    forged = {"Remote-User": "admin@club.test", "Remote-Email": "admin@club.test"}
    status, _, body = portway.http("open.fast.test", headers=forged)
    assert status == 200
    echoed = json.loads(body)
    assert echoed["upstream"] == "app"
    assert echoed["remote_user"] is None and echoed["remote_email"] is None
