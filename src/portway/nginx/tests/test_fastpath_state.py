"""The fast path's Python side without nginx: eligibility, routes, the change set a push
sends, and the config pieces (the data plane itself: test_fastpath_dataplane_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

from portway.access.render import AccessSpec
from portway.conf import PortwayConfig
from portway.nginx import fastpath
from portway.nginx.config import serialize
from portway.nginx.render import (
    CertificateRef,
    DefaultSite,
    LocationSpec,
    Paths,
    ProxyHostSpec,
    Renderer,
)
from portway.nginx.render_dead import DeadHostSpec
from portway.nginx.render_redirection import RedirectionHostSpec
from portway.nginx.render_stream import StreamSpec
from portway.testing.certs import make_leaf


def _proxy(**options) -> ProxyHostSpec:
    fields = {
        "id": 1,
        "domain_names": ("a.test",),
        "forward_scheme": "http",
        "forward_host": "10.0.0.1",
        "forward_port": 80,
    }
    return ProxyHostSpec(**{**fields, **options})


def _resolve(name: str) -> list[str]:
    return {"app.internal": ["10.0.0.7", "10.0.0.8"]}.get(name, [])


def test_eligibility():
    assert fastpath.ineligible(_proxy()) is None
    assert fastpath.ineligible(DeadHostSpec(id=1, domain_names=("d.test",))) is None
    assert fastpath.ineligible(_proxy(advanced_config="add_header X y;")) == "advanced config"
    location = LocationSpec("/api", "http", "10.0.0.2", 81)
    assert fastpath.ineligible(_proxy(locations=(location,))) == "custom locations"
    access = AccessSpec(id=1, satisfy_any=False, pass_auth=False)
    assert fastpath.ineligible(_proxy(access=access)) == "access list"
    assert fastpath.ineligible(_proxy(cloudflare_only=True)) == "Cloudflare only"
    assert "wildcard" in fastpath.ineligible(_proxy(domain_names=("*.a.test",)))
    assert "regex" in fastpath.ineligible(_proxy(domain_names=("~^a\\.test$",)))
    stream = StreamSpec(
        id=1,
        incoming_port=2000,
        forwarding_host="10.0.0.1",
        forwarding_port=22,
        tcp_forwarding=True,
        udp_forwarding=False,
    )
    assert fastpath.ineligible(stream) is not None


def test_routes_of_each_kind():
    route = fastpath.route_of(
        _proxy(
            forward_scheme="https",
            forward_host="app.internal",
            forward_port=8443,
            allow_websocket_upgrade=True,
            block_exploits=True,
        ),
        _resolve,
    )
    assert route["peers"] == [["10.0.0.7", 8443], ["10.0.0.8", 8443]]
    assert (route["kind"], route["ssl_name"], route["websocket"]) == ("proxy", "app.internal", True)
    assert route["tls"] is False and "force_ssl" not in route  # no certificate: no TLS options
    # HTTPS keep-alive pools are chosen by SNI name (an idle TLS connection is matched
    # by address only)
    assert route["pool"] == "https://" + fastpath.tls_pool("app.internal")
    assert fastpath.tls_pool("app.internal").startswith("portway_dynamic_tls_")
    unresolved = fastpath.route_of(_proxy(forward_host="nowhere.internal"), _resolve)
    assert unresolved["peers"] == [] and "did not resolve" in unresolved["error"]
    assert "ssl_name" not in fastpath.route_of(_proxy(forward_scheme="https"), _resolve)
    redirect = fastpath.route_of(
        RedirectionHostSpec(
            id=2,
            domain_names=("r.test",),
            forward_http_code=302,
            forward_scheme="auto",
            forward_domain_name="b.test/x",
            preserve_path=True,
        )
    )
    assert redirect == {
        "key": "redirection-2",
        "tls": False,
        "kind": "redirect",
        "code": 302,
        "forward_scheme": "auto",
        "forward_domain_name": "b.test/x",
        "preserve_path": True,
    }


def test_state_certificates_and_change_set(tmp_path: Path):
    chain, key = make_leaf(None, ["a.test", "b.test"], key_type="ec").write(tmp_path / "c")
    cert = CertificateRef(1, chain, key)
    specs = [
        _proxy(domain_names=("A.test", "b.test"), certificate=cert, ssl_forced=True),
        _proxy(id=2, domain_names=("c.test",), advanced_config="return 204;"),  # slow
        _proxy(id=3, domain_names=("d.test",), certificate=CertificateRef(2, chain, tmp_path)),
    ]
    state, errors = fastpath.fast_state(specs, DefaultSite(), _resolve, generation=5)
    assert set(state.routes) == {"a.test", "b.test"}
    assert state.hosts == {"proxy-1": ("a.test", "b.test")}
    assert "cannot load certificate key" in errors["proxy-3"]
    (fp,) = state.certs
    assert state.sni == {"a.test": fp, "b.test": fp}
    assert json.loads(state.routes["a.test"])["force_ssl"] is True

    dataplane = fastpath.Dataplane(Paths(tmp_path / "data"))
    first = dataplane.change_set(None, state)
    assert first["certs"][fp]["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert first["generation"] == 5 and "default_site" in first
    later, _ = fastpath.fast_state(specs[:1], DefaultSite("404"), _resolve, generation=6)
    later.routes.pop("b.test")
    later.sni.pop("b.test")
    change = dataplane.change_set(state, later)
    assert change["routes"] == {"b.test": None}
    assert change["sni"] == {"b.test": None}
    assert change["certs"] == {}
    assert json.loads(change["default_site"])["value"] == "404"

    dataplane.write_snapshot(later)
    snapshot = json.loads(dataplane.snapshot.read_text())
    assert snapshot["certs"][fp] == {"cert": str(chain), "key": str(key)}  # paths, no PEM
    assert dataplane.snapshot.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "logs" / "proxy-1_access.log").exists()


def test_config_pieces(tmp_path: Path):
    config = PortwayConfig(
        data_dir=tmp_path,
        admin_port=81,
        http_port=80,
        https_port=443,
        bind_address="",
        disable_ipv6=True,
        nginx_binary="nginx",
        resolver="",
        x_frame_options="DENY",
    )
    paths = Paths(tmp_path / 'odd "dir"')
    renderer = Renderer(config, paths)
    dataplane = fastpath.Dataplane(paths)
    state, _ = fastpath.fast_state([], DefaultSite())
    text = serialize(dataplane.http_directives(state))
    # the snapshot's path reaches Lua as a string literal, whatever it holds
    assert 'init_by_lua "require(\\"portway.router\\").init(\\"' in text
    assert "\\\\034dir\\\\034" in text
    assert "lua_shared_dict portway_routes 1024k;" in text
    router = dataplane.router_servers(renderer, http2=True).text()
    assert "listen 0.0.0.0:443 ssl http2 default_server;" in router
    assert "ssl_certificate_by_lua_file" in router
    # without the fast path the main config is what it always was
    plain = renderer.main("g", 1, 10).text()
    assert "_lua" not in plain and "lua_" not in plain
    assert fastpath.Dataplane(paths).http_directives(state)
    assert fastpath._dict_size(600_000) == "2048k"
    assert fastpath._dict_size(10) == "1024k"


def test_updated_state_changes_only_the_given_hosts(tmp_path: Path):
    chain, key = make_leaf(None, ["*.u.test"], key_type="ec").write(tmp_path / "c")
    cert = CertificateRef(1, chain, key)
    specs = [
        _proxy(id=1, domain_names=("a.u.test",), certificate=cert),
        _proxy(id=2, domain_names=("b.u.test", "c.u.test")),
        _proxy(id=3, domain_names=("d.u.test",)),
    ]
    state, _ = fastpath.fast_state(specs, DefaultSite(), _resolve, generation=1)
    changed = [
        _proxy(id=2, domain_names=("b.u.test",), forward_port=81),
        _proxy(id=3, domain_names=("d.u.test",), advanced_config="return 204;"),  # now slow
    ]
    new, errors = fastpath.updated_state(state, changed, removed=["proxy-1"], resolver=_resolve)
    assert errors == {} and new.generation == 2
    assert set(new.routes) == {"b.u.test"}
    assert json.loads(new.routes["b.u.test"])["peers"] == [["10.0.0.1", 81]]
    assert new.sni == {} and new.certs == {}  # the certificate nobody uses goes
    assert set(state.routes) == {"a.u.test", "b.u.test", "c.u.test", "d.u.test"}  # untouched
    again, _ = fastpath.fast_state([changed[0]], DefaultSite(), _resolve, generation=2)
    assert (again.routes, again.hosts) == (new.routes, new.hosts)
