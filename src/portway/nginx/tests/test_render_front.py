"""The SNI front's rendering, without nginx (fast); the proof through real nginx is
portway/tunnels/tests/test_passthrough_e2e.py."""

from __future__ import annotations

from pathlib import Path

from portway.access.render import RealIpSpec
from portway.conf import PortwayConfig
from portway.nginx.render import (
    CertificateRef,
    DefaultSite,
    Paths,
    ProxyHostSpec,
    Renderer,
    UpstreamResolver,
)
from portway.nginx.render_front import Passthrough, http_real_ip, plan, render_front, with_twins
from portway.nginx.render_tunnel import TunnelHostSpec, render_tunnel_host

CERT = CertificateRef(1, Path("/c.pem"), Path("/k.pem"))
RUN = Path("/tmp/x/nginx/run")
PLAIN = Passthrough(5, ("db.example", "*.pg.example"), "127.0.0.1", 5432)
PROXIED = Passthrough(6, ("pp.example",), "::1", 8443, proxy_protocol=True)


def _renderer() -> Renderer:
    config = PortwayConfig(Path("/tmp/x"), 81, 80, 443, "", False, "nginx", "", "DENY")
    return Renderer(config, Paths(Path("/tmp/x")), UpstreamResolver(["127.0.0.1:9"]))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_no_passthrough_no_front():
    assert plan([], RUN, None) is None


def test_front_routes_by_name_and_moves_https_servers():
    front = plan([PLAIN, PROXIED], RUN, None)
    renderer = _renderer()
    moved = renderer.with_listeners(front.listeners(renderer.listeners))
    text = render_front(moved, front).text()
    lines = _lines(text)
    assert lines[0] == "# mode: front"
    # the public HTTPS addresses belong to the front, with ssl_preread and PROXY on
    assert "listen 0.0.0.0:443;" in lines and "listen [::]:443;" in lines
    assert "ssl_preread on;" in lines and "proxy_protocol on;" in lines
    # by name: PROXY-protocol targets straight, the others through the hop that drops it
    assert f"default unix:{RUN}/front/https.sock;" in lines
    assert "pp.example [::1]:8443;" in lines
    assert f"db.example unix:{RUN}/front/passthrough.sock;" in lines
    assert "*.pg.example 127.0.0.1:5432;" in lines
    assert f"listen unix:{RUN}/front/passthrough.sock proxy_protocol;" in lines
    assert "set_real_ip_from unix:;" in lines
    # every HTTPS server of the http context listens on the socket behind the front
    proxy = ProxyHostSpec(1, ("app.example",), "http", "127.0.0.1", 8080, CERT, http2_support=True)
    host = moved.proxy_host(proxy).text()
    assert f"listen unix:{RUN}/front/https.sock ssl http2 proxy_protocol;" in _lines(host)
    assert "listen 0.0.0.0:80;" in _lines(host) and "listen 0.0.0.0:443" not in host
    default = _lines(moved.default_servers(DefaultSite()).text())
    assert f"listen unix:{RUN}/front/https.sock ssl default_server proxy_protocol;" in default


def test_target_names_resolved_at_load_or_per_connection():
    named = Passthrough(8, ("n.example",), "localhost", 5432)
    unknown = Passthrough(9, ("u.example",), "nowhere.invalid", 5432, proxy_protocol=True)
    lines = _lines(render_front(_renderer(), plan([named, unknown], RUN, None)).text())
    assert "upstream portway_passthrough_8 {" in lines and "server localhost:5432;" in lines
    assert "n.example portway_passthrough_8;" in lines
    assert "u.example nowhere.invalid:5432;" in lines
    assert "upstream portway_passthrough_9 {" not in lines


def test_only_proxy_protocol_targets_need_no_hop():
    text = render_front(_renderer(), plan([PROXIED], RUN, None)).text()
    assert "passthrough.sock" not in text


def test_map_keywords_in_names_are_escaped():
    odd = Passthrough(7, ("default", "include"), "127.0.0.1", 1)
    lines = _lines(render_front(_renderer(), plan([odd], RUN, None)).text())
    # nginx unquotes "\\default" to \default, and map reads that as the name "default"
    assert f'"\\\\default" unix:{RUN}/front/passthrough.sock;' in lines
    assert '"\\\\include" 127.0.0.1:1;' in lines
    assert not any(line.startswith("include ") for line in lines)


def test_passthrough_tunnel_keeps_only_its_http_names():
    spec = TunnelHostSpec(
        5, ("db.example",), Path("/s.sock"), passthrough=True, forward_host="127.0.0.1"
    )
    lines = _lines(render_tunnel_host(_renderer(), spec).text())
    assert "listen 0.0.0.0:80;" in lines and not any("ssl" in line for line in lines)
    assert "return 404;" in lines and not any("proxy_pass" in line for line in lines)


def test_real_ip_without_setting_reads_the_proxy_header():
    front = plan([PLAIN], RUN, None)
    text = "\n".join(_lines(_serialize(http_real_ip(front, None))))
    assert "set_real_ip_from unix:;" in text and "real_ip_header proxy_protocol;" in text
    assert with_twins(_renderer().default_servers(DefaultSite()), front).nodes == (
        _renderer().default_servers(DefaultSite()).nodes
    )


def test_trusted_proxies_get_the_header_and_direct_clients_twins():
    real_ip = RealIpSpec("X-Forwarded-For", ("10.0.0.0/8",))
    front = plan([PLAIN], RUN, real_ip)
    renderer = _renderer()
    moved = renderer.with_listeners(front.listeners(renderer.listeners))
    lines = _lines(render_front(moved, front).text())
    assert lines[0] == "# mode: front+twins"
    assert f"10.0.0.0/8 unix:{RUN}/front/https.sock;" in lines
    assert f"default unix:{RUN}/front/https-direct.sock;" in lines
    assert "default $portway_https_route;" in lines
    http = _lines(_serialize(http_real_ip(front, real_ip)))
    assert "set_real_ip_from 10.0.0.0/8;" in http and "set_real_ip_from unix:;" in http
    assert "real_ip_header X-Forwarded-For;" in http

    proxy = ProxyHostSpec(1, ("app.example",), "http", "127.0.0.1", 8080, CERT, http2_support=True)
    twinned = with_twins(moved.proxy_host(proxy), front)
    servers = [n for n in twinned.nodes if getattr(n, "name", "") == "server"]
    assert len(servers) == 2
    original, twin = (_lines(_serialize([s])) for s in servers)
    assert f"listen unix:{RUN}/front/https.sock ssl http2 proxy_protocol;" in original
    assert "listen 0.0.0.0:80;" in original and "real_ip_header proxy_protocol;" not in original
    assert [line for line in twin if line.startswith("listen")] == [
        f"listen unix:{RUN}/front/https-direct.sock ssl http2 proxy_protocol;"
    ]
    assert "real_ip_header proxy_protocol;" in twin and "set_real_ip_from unix:;" in twin
    # the rest of the block is the same
    assert [line for line in original if not line.startswith("listen")] == [
        line
        for line in twin
        if not line.startswith(("listen", "real_ip_header", "set_real_ip_from", "# twin"))
    ]
    # twinning twice changes nothing (the engine passes every file through)
    assert with_twins(twinned, front) is twinned
    # a server without TLS has no twin
    plain = ProxyHostSpec(2, ("plain.example",), "http", "127.0.0.1", 8080)
    assert len([n for n in with_twins(moved.proxy_host(plain), front).nodes if _is_server(n)]) == 1


def _is_server(node) -> bool:  # noqa: ANN001
    return getattr(node, "name", "") == "server"


def _serialize(nodes) -> str:  # noqa: ANN001
    from portway.nginx.config import serialize

    return serialize(nodes)
