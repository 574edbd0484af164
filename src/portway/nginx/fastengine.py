"""The engine's half of the fast path (FASTPATH.md): which hosts the router serves, the
routing state they make, and what is live in nginx's shared memory.

Hosts split in two. A fast host has no server block: the router servers (the default
servers of a fast-mode generation) find its route by name in shared memory, and a change
to it is pushed there (portway.nginx.fastpath.Dataplane). A slow host keeps its own
server block file and the reload path. A host is slow when portway.nginx.fastpath says
so (advanced config, custom locations, access lists, ...) or when one of its names is
matched by a slow host's wildcard name: nginx would give that name to the wildcard's
server block before it ever reaches the default server.

The state is built per host (one host's routes and certificates at a time) and kept
until the host's spec changes, so an apply at 10,000 hosts builds one host's state for
one change. Routes to upstream names (not IP literals) are built again every
RESOLVE_INTERVAL seconds so that a name's new address is pushed.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from portway.nginx.render import DefaultSite, ProxyHostSpec, SiteSpec

RESOLVE_INTERVAL = 30.0  # seconds between re-resolutions of upstream names
# lookups an apply runs at once: an unanswered one waits for its timeout, so an apply
# waits about one timeout, not one per name
RESOLVE_PARALLEL = 32
# a name that did not resolve is tried again sooner: until it does, its host answers 502
UNRESOLVED_RETRY = 5.0


def _parents(name: str) -> Iterable[str]:
    """ ".b.c", ".c" for "a.b.c": the suffixes a leading wildcard `*.b.c` matches by."""
    dot = name.find(".")
    while dot != -1:
        yield name[dot:]
        dot = name.find(".", dot + 1)


def split_hosts(
    specs: list[SiteSpec], ineligible: Callable[[Any], str | None]
) -> tuple[list[SiteSpec], list[SiteSpec], dict[str, str]]:
    """(fast specs, slow specs, host key → why it is slow), both lists in `specs` order.

    `ineligible(spec)`: why a host cannot be served by the router, None when it can
    (portway.nginx.fastpath.ineligible). A host it accepts is still slow when one of its
    names is matched by a slow host's wildcard name (`*.example.com` matches every name
    ending in `.example.com`, at any depth).
    """
    reasons: dict[str, str] = {}
    for spec in specs:
        reason = ineligible(spec)
        if reason:
            reasons[spec.key] = reason
    wildcard_parents = {
        name[1:]
        for spec in specs
        if spec.key in reasons
        for name in getattr(spec, "domain_names", ())
        if name.startswith("*.")
    }
    fast: list[SiteSpec] = []
    slow: list[SiteSpec] = []
    for spec in specs:
        if spec.key not in reasons and wildcard_parents:
            for name in spec.domain_names:
                shadow = next((p for p in _parents(name) if p in wildcard_parents), None)
                if shadow is not None:
                    reasons[spec.key] = (
                        f"its name {name} is matched by another host's wildcard name *{shadow}"
                    )
                    break
        (slow if spec.key in reasons else fast).append(spec)
    fast = _separate_tls_pools(fast, reasons)
    slow = [spec for spec in specs if spec.key in reasons]
    return fast, slow, reasons


def _separate_tls_pools(fast: list[SiteSpec], reasons: dict[str, str]) -> list[SiteSpec]:
    """`fast` without the hosts whose HTTPS upstream would share keep-alive connections
    with another host's under another SNI name (their reason is added to `reasons`).

    nginx's keep-alive cache matches an idle upstream connection by address alone, and the
    router spreads HTTPS upstreams over fastpath.TLS_POOLS pools by SNI name: two names
    in one pool, on one port, could reach one address (two services behind an ingress
    that routes by SNI) and a request would go out on a TLS connection made with the
    other host's name. The first name of each (pool, port) stays fast; a host with
    another name there takes the reload path, where its upstream block is its own.
    Addresses are not known here (names resolve later), so any two names are kept apart.
    """
    from portway.nginx import fastpath

    owners: dict[tuple[str, int], tuple[str, str]] = {}  # (pool, port) → (SNI name, key)
    kept: list[SiteSpec] = []
    for spec in fast:
        # redirection hosts have a forward_scheme too, but no upstream connection
        if not isinstance(spec, ProxyHostSpec) or spec.forward_scheme != "https":
            kept.append(spec)
            continue
        ssl_name = fastpath.ssl_name_of(spec.forward_host)
        slot = (fastpath.tls_pool(ssl_name), spec.forward_port)
        owner = owners.setdefault(slot, (ssl_name, spec.key))
        if owner[0] != ssl_name:
            reasons[spec.key] = (
                f"its HTTPS upstream {spec.forward_host}:{spec.forward_port} would share "
                f"keep-alive connections with host {owner[1]}'s upstream {owner[0] or 'by address'}"
            )
            continue
        kept.append(spec)
    return kept


def _names_upstream(spec: Any) -> bool:
    """Whether the host forwards to a name that must be resolved (not an IP literal)."""
    host = getattr(spec, "forward_host", None)
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


class AddressResolver:
    """Upstream name → IP addresses, asked where nginx itself would have asked.

    On the reload path a name nginx resolves at load time (the system resolver: /etc/hosts
    first) is written as is, and any other name through nginx's `resolver` (the
    PORTWAY_RESOLVER servers, IPv4 only). The router cannot resolve, so Portway does the
    same lookups: a name in /etc/hosts with the system resolver, else the PORTWAY_RESOLVER
    servers' A records in order, else (no servers set) the system resolver.

    Args:
        servers: PORTWAY_RESOLVER's "ip[:port]" entries ([] for the system resolver).
        ttl: seconds an answer is reused (one apply asks once per name).
    """

    def __init__(self, servers: list[str], ttl: float = 1.0) -> None:
        self.servers = servers
        self.ttl = ttl
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def addresses(self, name: str) -> list[str]:
        """The addresses of `name` ([] when it does not resolve); an IP literal is its own."""
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            pass
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        found = self._lookup(name)
        # fresh from when the answer came (a lookup may take its whole timeout)
        self._cache[name] = (time.monotonic(), found)
        return found

    def resolve_all(self, names: Iterable[str]) -> None:
        """Look `names` up at once (RESOLVE_PARALLEL at a time), so that the `addresses`
        calls that follow are answered from the cache."""
        wanted = sorted(set(names))
        if len(wanted) < 2:
            return
        with ThreadPoolExecutor(min(RESOLVE_PARALLEL, len(wanted))) as pool:
            list(pool.map(self.addresses, wanted))

    def _lookup(self, name: str) -> list[str]:
        from portway.nginx.fastpath import resolve_addresses
        from portway.nginx.render import _etc_hosts_names

        if not self.servers or name in _etc_hosts_names():
            return resolve_addresses(name)
        import dns.exception
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        for server in self.servers:
            host, _, port = (
                server.strip("[]").rpartition(":") if server.count(":") == 1 else (server, "", "")
            )
            resolver.nameservers = [host.strip("[]")]
            resolver.port = int(port) if port else 53
            resolver.lifetime = 2.0
            try:
                answer = resolver.resolve(name, "A")
            except dns.exception.DNSException:
                continue
            return [record.address for record in answer]
        return []


@dataclass
class Piece:
    """One fast host's part of the state: `state` (its routes and certificates) or the
    reason it was refused (`error`); `built`: time.monotonic() when built."""

    spec: SiteSpec
    state: Any | None
    error: str | None
    built: float
    unresolved: bool = False  # its upstream name did not resolve (the route answers 502)
    named: bool = False  # its upstream is a name, resolved again from time to time


class FastHosts:
    """The fast hosts' states, built per host and kept while the spec is unchanged.

    Args:
        build: (specs, default site) → (FastState, host key → error), the data plane's
            portway.nginx.fastpath.fast_state with the engine's resolver bound.
    """

    def __init__(
        self,
        build: Callable[[list[SiteSpec], DefaultSite], tuple[Any, dict[str, str]]],
        resolver: AddressResolver,
    ):
        self._build = build
        self.resolver = resolver
        self._pieces: dict[str, Piece] = {}
        self.built = 0  # how many host states the last `pieces` call built

    def pieces(self, specs: list[SiteSpec], site: DefaultSite) -> dict[str, Piece]:
        """Host key → its piece, built again only for a changed spec (a new spec object:
        portway.nginx.hostcache keeps the object of an unchanged row) or an upstream
        name not resolved for RESOLVE_INTERVAL seconds."""
        now = time.monotonic()
        fresh: dict[str, Piece] = {}
        self.built = 0
        self.resolver.resolve_all(
            spec.forward_host
            for spec in specs
            if _names_upstream(spec) and self._to_build(self._pieces.get(spec.key), spec, now)
        )
        for spec in specs:
            piece = self._pieces.get(spec.key)
            if not self._to_build(piece, spec, now):
                fresh[spec.key] = piece
                continue
            state, errors = self._build([spec], site)
            error = errors.get(spec.key)
            named = _names_upstream(spec)
            unresolved = named and not self.resolver.addresses(spec.forward_host)
            fresh[spec.key] = Piece(spec, None if error else state, error, now, unresolved, named)
            self.built += 1
        self._pieces = fresh
        return fresh

    def _to_build(self, piece: Piece | None, spec: SiteSpec, now: float) -> bool:
        return piece is None or piece.spec is not spec or self._due(piece, now)

    @staticmethod
    def _due(piece: Piece, now: float) -> bool:
        """Whether the piece's upstream name is to be resolved again."""
        if not piece.named:
            return False
        age = now - piece.built
        return age >= RESOLVE_INTERVAL or (piece.unresolved and age >= UNRESOLVED_RETRY)

    def resolution_due(self) -> bool:
        """Whether some host's upstream name is to be resolved again (RESOLVE_INTERVAL,
        UNRESOLVED_RETRY for a name that did not resolve)."""
        now = time.monotonic()
        return any(self._due(piece, now) for piece in self._pieces.values())


def merge_states(states: Iterable[Any], site: DefaultSite, generation: int) -> Any:
    """One portway.nginx.fastpath.FastState holding every host state of `states` (each
    built for one host), the default site `site`, numbered `generation`."""
    from portway.nginx.fastpath import FastState, default_site_text

    merged = FastState(default_site=default_site_text(site), generation=generation)
    for state in states:
        merged.routes.update(state.routes)
        merged.sni.update(state.sni)
        merged.certs.update(state.certs)
        merged.hosts.update(state.hosts)
    return merged
