"""Is a name served by this Portway over plain HTTP? Checked from this server itself.

Used by `POST /api/nginx/certificates/test-http` and to explain failed HTTP-01
validations. Portway resolves the name (with PORTWAY_RESOLVER's servers when set, like
nginx, otherwise the system resolver), writes a random token into its challenge webroot
and fetches `http://<address>:<http port>/.well-known/acme-challenge/<token>` with
`Host: <name>` from each address. Nothing is ever sent to a third-party site.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from portway import conf
from portway.nginx.render import Paths

TIMEOUT = 5.0


@dataclass
class Probe:
    """What fetching our own token from one address gave.

    result: NPM's test-http value: "ok" | "404" | "wrong-data" | "failed" | "other:<text>".
    """

    address: str
    result: str
    detail: str = ""


def resolve(name: str, resolver: str | None = None) -> list[str]:
    """IPv4 and IPv6 addresses of `name` ([] when it does not resolve).

    resolver: "ip[:port] ..." servers to ask (PORTWAY_RESOLVER); None reads the setting.
    """
    if resolver is None:
        resolver = conf.load().resolver
    servers = (resolver or "").split()
    if not servers:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return []
        return list(dict.fromkeys(info[4][0] for info in infos))
    import dns.exception
    import dns.resolver

    found: list[str] = []
    for server in servers:
        host, port = _split_server(server)
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [host]
        res.port = port
        res.lifetime = 3.0
        for rdtype in ("A", "AAAA"):
            with contextlib.suppress(dns.exception.DNSException):
                found += [r.to_text() for r in res.resolve(name, rdtype)]
        if found:
            break
    return list(dict.fromkeys(found))


def _split_server(server: str) -> tuple[str, int]:
    server = server.strip()
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if server.count(":") == 1:
        host, port = server.split(":")
        return host, int(port)
    return server, 53


def probe(name: str, address: str, http_port: int, webroot: Path) -> Probe:
    """Fetch a fresh token for `name` from `address`:`http_port` (see module docstring)."""
    token = secrets.token_urlsafe(24)
    body = secrets.token_urlsafe(32)
    directory = webroot / ".well-known" / "acme-challenge"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / token
    path.write_text(body)
    path.chmod(0o644)
    try:
        conn = http.client.HTTPConnection(_host(address), http_port, timeout=TIMEOUT)
        try:
            conn.putrequest("GET", f"/.well-known/acme-challenge/{token}", skip_host=True)
            conn.putheader("Host", name)
            conn.putheader("User-Agent", "Portway reachability check")
            conn.endheaders()
            response = conn.getresponse()
            data = response.read(4096)
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return Probe(address, "failed", _reason(exc))
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if response.status == 200:
        if data.strip() == body.encode():
            return Probe(address, "ok")
        return Probe(address, "wrong-data", "another server answered the challenge URL")
    if response.status == 404:
        return Probe(address, "404", "the challenge URL answered 404 Not Found")
    return Probe(address, f"other:{response.status} {response.reason}".strip())


def _host(address: str) -> str:
    return address.strip("[]")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or exc.__class__.__name__


def local_addresses() -> set[str]:
    """Addresses of this machine's interfaces that a name could point at."""
    found = {"127.0.0.1", "::1"}
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(info[4][0])
    return found


def test_http(domains: list[str]) -> dict[str, str]:
    """NPM's test-http answer for each name: "ok", "no-host", "404", "wrong-data",
    "failed" or "other:<text>" (the first address that is not "ok" decides)."""
    config = conf.load()
    webroot = Paths(config.data_dir).acme_webroot
    results: dict[str, str] = {}
    for name in domains:
        addresses = resolve(name, config.resolver)
        if not addresses:
            results[name] = "no-host"
            continue
        outcome = "ok"
        for address in addresses:
            found = probe(name, address, config.http_port, webroot)
            if found.result != "ok":
                outcome = found.result
                break
        results[name] = outcome
    return results


def diagnose(name: str) -> tuple[list[str], list[Probe]]:
    """(addresses, probes) for explaining a failed HTTP-01 validation of `name`."""
    config = conf.load()
    addresses = resolve(name, config.resolver)
    webroot = Paths(config.data_dir).acme_webroot
    probes = []
    for address in addresses[:4]:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(address)
            probes.append(probe(name, address, config.http_port, webroot))
    return addresses, probes
