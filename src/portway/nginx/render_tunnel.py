"""Render a tunnel host: its names on the HTTP(S) listeners, and only the WebSocket
upgrade handed to Portway's tunnel service (a unix socket in the data directory);
every other request on the name answers 404. The target is not in nginx's config at
all: nginx names the tunnel (X-Portway-Tunnel, overriding anything a client sent) and
the service connects to the target stored for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portway.nginx.config import Comment, ConfigFile, d
from portway.nginx.render import CertificateRef, Renderer

TUNNEL_READ_TIMEOUT = "1h"
TUNNEL_BUFFER = "256k"  # both ends ping every 30 s; this only ends dead connections


@dataclass(frozen=True)
class TunnelHostSpec:
    """A validated tunnel host, decoupled from the ORM; `socket`: the service's socket."""

    id: int
    domain_names: tuple[str, ...]
    socket: Path
    certificate: CertificateRef | None = None
    ssl_forced: bool = False
    hsts_enabled: bool = False
    hsts_subdomains: bool = False
    http2_support: bool = False
    block_exploits: bool = False
    advanced_config: str = ""
    # SNI passthrough (portway.nginx.render_front): the target gets the raw TLS stream
    passthrough: bool = False
    forward_host: str = ""
    forward_port: int = 0
    proxy_protocol: bool = False

    @property
    def key(self) -> str:
        return f"tunnel-{self.id}"


def render_tunnel_host(renderer: Renderer, host: TunnelHostSpec) -> ConfigFile:
    """The server block of one tunnel host (`hosts/tunnel-<id>.conf`).

    A passthrough host's HTTPS side is the SNI front's (render_front); here it keeps its
    names on the HTTP port, answering 404 (not the default site).
    """
    server = renderer.site_head(host)
    if host.passthrough:
        server.append(d("location", "/", block=[d("return", 404)]))
        return ConfigFile(
            f"hosts/{host.key}.conf",
            [
                Comment(
                    f"tunnel host {host.id} (TLS passthrough on the HTTPS port): "
                    + " ".join(host.domain_names)
                ),
                d("server", block=server),
            ],
            host_key=host.key,
        )
    server.append(
        d(
            "location",
            "/",
            block=[
                d("if", "(", "$http_upgrade", "!~*", "^websocket$", ")", block=[d("return", 404)]),
                d("proxy_pass", f"http://unix:{host.socket}:"),
                d("proxy_http_version", "1.1"),
                d("proxy_set_header", "Upgrade", "$http_upgrade"),
                d("proxy_set_header", "Connection", "upgrade"),
                d("proxy_set_header", "Host", "$host"),
                d("proxy_set_header", "X-Real-IP", "$remote_addr"),
                d("proxy_set_header", "X-Portway-Tunnel", host.id),
                d("proxy_buffering", "off"),
                # an upgraded connection is relayed through one buffer of this size each
                # way (default one page: 4 KiB per read and write at several GB)
                d("proxy_buffer_size", TUNNEL_BUFFER),
                # nginx checks these against proxy_buffer_size even with buffering off
                # (then they are never allocated)
                d("proxy_buffers", 4, TUNNEL_BUFFER),
                d("proxy_busy_buffers_size", TUNNEL_BUFFER),
                d("proxy_request_buffering", "off"),
                d("proxy_read_timeout", TUNNEL_READ_TIMEOUT),
                d("proxy_send_timeout", TUNNEL_READ_TIMEOUT),
            ],
        )
    )
    return ConfigFile(
        f"hosts/{host.key}.conf",
        [
            Comment(f"tunnel host {host.id}: {' '.join(host.domain_names)}"),
            d("server", block=server),
        ],
        host_key=host.key,
    )
