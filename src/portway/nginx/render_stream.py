"""Render a stream (NPM's "stream"): TCP and/or UDP on one port forwarded to an upstream
by nginx's stream module (https://nginx.org/en/docs/stream/ngx_stream_core_module.html),
TLS terminated for TCP when the stream has a certificate.

The file (`hosts/stream-<id>.conf`) is included in the `stream {}` context of nginx.conf,
never in `http {}` (portway.nginx.render.Renderer.main includes files by kind).
"""

from __future__ import annotations

from dataclasses import dataclass

from portway.nginx.config import Comment, ConfigFile, Node, d
from portway.nginx.render import CertificateRef, Renderer


@dataclass(frozen=True)
class StreamSpec:
    """A validated stream, decoupled from the ORM.

    `forwarding_host` is a host name or an IP address as portway.core.fields.forward_host
    returns it (IPv6 without brackets); ports are 1-65535; at least one protocol is on.
    """

    id: int
    incoming_port: int
    forwarding_host: str
    forwarding_port: int
    tcp_forwarding: bool = True
    udp_forwarding: bool = False
    certificate: CertificateRef | None = None
    # a stream has no server names (the engine sizes the names hash from these)
    domain_names: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"stream-{self.id}"

    @property
    def protocols(self) -> str:
        """ "tcp", "udp" or "tcp+udp", for the file's comment."""
        pairs = (("tcp", self.tcp_forwarding), ("udp", self.udp_forwarding))
        return "+".join(protocol for protocol, on in pairs if on)


def render_stream(renderer: Renderer, stream: StreamSpec) -> ConfigFile:
    """The `server` block of one stream, in the stream context.

    One server carries both protocols' `listen` lines (`ssl` on the TCP ones when a
    certificate is set). A forwarding host that does not resolve now is resolved per
    connection through a variable and the stream context's `resolver`, so nginx still
    loads (the connection fails until the name exists), as for proxy hosts.
    """
    tls = stream.certificate is not None and stream.tcp_forwarding
    server: list[Node] = []
    for address in renderer.listeners.stream(stream.incoming_port):
        if stream.tcp_forwarding:
            server.append(d("listen", address, "ssl") if tls else d("listen", address))
        if stream.udp_forwarding:
            server.append(d("listen", address, "udp"))
    if tls:
        assert stream.certificate is not None
        server += [
            d("ssl_certificate", stream.certificate.fullchain),
            d("ssl_certificate_key", stream.certificate.key),
        ]
    host = stream.forwarding_host
    if renderer.resolver.resolvable(host):
        target = f"[{host}]" if ":" in host else host
    else:
        server.append(Comment(f"{host} did not resolve at apply time: resolved per connection"))
        server.append(d("set", "$portway_upstream", host))
        target = "$portway_upstream"
    server.append(d("proxy_pass", f"{target}:{stream.forwarding_port}"))
    return ConfigFile(
        f"hosts/{stream.key}.conf",
        [
            Comment(
                f"Stream {stream.id}: port {stream.incoming_port} ({stream.protocols}) to "
                f"{host}:{stream.forwarding_port}"
            ),
            d("server", block=server),
        ],
        host_key=stream.key,
    )
