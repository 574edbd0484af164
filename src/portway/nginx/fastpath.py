"""The fast path's data plane: routes and certificates in nginx's shared memory.

Routine host changes (FASTPATH.md, issue 12) go live without a reload: Portway pushes a
change set to a control server on a unix socket in the run directory, and the Lua
router (`lua/portway/router.lua`, run by Debian's libnginx-mod-http-lua with
lua-resty-core, lua-resty-lrucache and lua-cjson) answers every name no server block
claims from that shared state:

- `ssl_certificate_by_lua` picks the certificate by SNI (exact name, then `*.parent`),
  parsed once per worker and cached by fingerprint; unknown or missing SNI keeps the
  default certificate (or the handshake is refused with the "444" default site);
- per request the route of `$host` says: proxy (through `upstream portway_dynamic` or
  an HTTPS pool, whose balancer sets the address, so connections are pooled with
  `keepalive`), redirect, 404, or none (the default site, also held in shared memory);
- a snapshot file (JSON, 0600) written before every push and before nginx starts is
  loaded by `init_by_lua` in the master, so a (re)start or reload serves the current
  state without waiting for Portway.

Hosts the router cannot model (advanced config, custom locations, access lists,
Cloudflare-only, wildcard or regex names, other kinds) keep their own server blocks and
the reload path (`ineligible`).

How an apply uses it (`dataplane = Dataplane(paths, config.public_https_port)`):

1. `state, errors = fast_state(specs, default_site, renderer.resolver, generation)` (or
   `updated_state(previous, changed_specs, removed_keys, ...)` for an incremental one);
   `errors` are hosts whose certificate does not load (nginx's wording);
2. the generation's main config gets `main_directives()` and `http_directives(state)`
   (Renderer.main's fast_main / fast_http) and `router_servers(renderer, http2)` as its
   default.conf instead of Renderer.default_servers; both change only when the state
   outgrows its shared memory (sizes double) or a setting changes;
3. `write_snapshot(state)` before nginx starts and before every push; then
   `push(previous, state)` (errors by host key: a certificate the router refused) and
   `generation()` == state.generation once it is live. A reload loads the snapshot
   into the kept shared memory (names it no longer has are removed), so push
   additions before a reload and removals after it. `FastPathError`: nginx did not
   answer or a change did not fit in shared memory: take the reload path.
"""

from __future__ import annotations

import glob
import hashlib
import ipaddress
import json
import os
import socket
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from portway.nginx.config import Comment, ConfigFile, Directive, MapEntry, Node, d
from portway.nginx.process import UnixHTTPConnection
from portway.nginx.render import (
    _EXPLOIT_PATTERNS,
    HSTS_MAX_AGE,
    UPSTREAM_KEEPALIVE,
    UPSTREAM_KEEPALIVE_REQUESTS,
    UPSTREAM_KEEPALIVE_TIMEOUT,
    DefaultSite,
    Paths,
    ProxyHostSpec,
    Renderer,
    _default_site_html,
    worker_group_id,
)
from portway.nginx.render_dead import DeadHostSpec
from portway.nginx.render_redirection import RedirectionHostSpec

LUA_DIR = Path(__file__).resolve().parent / "lua"
NDK_MODULE = Path("/usr/lib/nginx/modules/ndk_http_module.so")
LUA_MODULE = Path("/usr/lib/nginx/modules/ngx_http_lua_module.so")
SYSTEM_LUA_DIR = Path("/usr/share/lua/5.1")
# Debian installs C modules for Lua 5.1 (cjson.so) under the multiarch directory
_CJSON_GLOB = "/usr/lib/*/lua/5.1/cjson.so"
# shared dicts: name → what one entry costs beyond its key and value (rbtree node,
# queue links, slab rounding), bytes
_DICT_OVERHEAD = 160
_DICT_MINIMUM = 1 << 20
DYNAMIC_UPSTREAM = "portway_dynamic"
# nginx's keep-alive cache matches an idle connection by address alone, so a TLS
# connection made with one SNI name could serve another host's request to the same
# address and port. HTTPS upstreams are spread over this many pools by SNI name (a pure
# function of the host, so a route never depends on other hosts): two names share a pool
# only by a hash collision (1 in TLS_POOLS for two names on one address and port).
TLS_POOLS = 16


# the variables the router's Lua sets per request (see router.lua's route_fast)
ROUTER_VARIABLES = (
    "$pw_log",
    "$pw_pass",
    "$pw_target",
    "$pw_peers",
    "$pw_ssl_name",
    "$pw_hsts",
    "$pw_tfp",
    "$pw_ws",
    "$pw_caching",
)


class FastPathError(RuntimeError):
    """The control endpoint could not be reached or refused the change set as a whole
    (e.g. shared memory full): the engine falls back to the reload path."""


def _cjson_module() -> Path | None:
    found = sorted(glob.glob(_CJSON_GLOB))
    return Path(found[0]) if found else None


def modules_missing() -> str | None:
    """Why the fast path cannot run on this machine, or None when it can.

    Checks the files Debian's packages install: libnginx-mod-http-lua (ndk and lua
    modules), lua-resty-core, lua-resty-lrucache and lua-cjson.
    """
    needed = {
        NDK_MODULE: "libnginx-mod-http-ndk",
        LUA_MODULE: "libnginx-mod-http-lua",
        SYSTEM_LUA_DIR / "resty" / "core.lua": "lua-resty-core",
        SYSTEM_LUA_DIR / "resty" / "lrucache.lua": "lua-resty-lrucache",
    }
    missing = [package for path, package in needed.items() if not path.exists()]
    if _cjson_module() is None:
        missing.append("lua-cjson")
    if not (LUA_DIR / "portway" / "router.lua").exists():
        return f"Portway's Lua router is missing from {LUA_DIR}"
    if missing:
        return "missing Debian packages: " + " ".join(missing) + " (apt-get install them)"
    return None


# ----- eligibility ---------------------------------------------------------------------


def ineligible(spec: Any) -> str | None:
    """Why host `spec` (any kind's renderer spec) needs its own server block, or None
    when the router can serve it (a "fast" host).

    Fast: proxy, redirection and 404 hosts without advanced config, custom locations,
    access list or Cloudflare-only, whose names are all plain (no `*`, no `~` regex).
    """
    if not isinstance(spec, ProxyHostSpec | RedirectionHostSpec | DeadHostSpec):
        return f"{type(spec).__name__} is served by its own server block"
    if spec.advanced_config.strip():
        return "advanced config"
    if getattr(spec, "locations", ()):
        return "custom locations"
    if getattr(spec, "access", None) is not None:
        return "access list"
    if getattr(spec, "cloudflare_only", False):
        return "Cloudflare only"
    for name in spec.domain_names:
        if "*" in name or name.startswith("~"):
            return f"wildcard or regex name {name}"
    return None


# ----- the state -----------------------------------------------------------------------


@dataclass(frozen=True)
class CertEntry:
    """One certificate as the router holds it: PEM texts (pushed) and files (snapshot)."""

    fullchain: Path
    key: Path
    chain_pem: str
    key_pem: str


@dataclass
class FastState:
    """What the router serves.

    routes: name → route (JSON text; see `route_of`); sni: name → certificate
    fingerprint; certs: fingerprint → CertEntry; default_site: the default site (JSON
    text); hosts: host key → its names (to attribute errors); generation: increases
    with every push.
    """

    routes: dict[str, str] = field(default_factory=dict)
    sni: dict[str, str] = field(default_factory=dict)
    certs: dict[str, CertEntry] = field(default_factory=dict)
    default_site: str = ""
    hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    generation: int = 0


def default_site_text(site: DefaultSite) -> str:
    """The default site as the router holds it (value, redirect, html page)."""
    html = _default_site_html(site)
    return json.dumps(
        {"value": site.value, "redirect": site.redirect, "html": html or ""},
        sort_keys=True,
    )


def _hsts(spec: Any) -> str | None:
    if spec.certificate is None or not spec.ssl_forced or not spec.hsts_enabled:
        return None
    return f"max-age={HSTS_MAX_AGE}; " + (
        "includeSubDomains; preload" if spec.hsts_subdomains else "preload"
    )


def resolve_addresses(name: str) -> list[str]:
    """The IP addresses of upstream `name` (an IP literal is its own), IPv4 first;
    [] when it does not resolve. The system resolver (getaddrinfo)."""
    try:
        return [str(ipaddress.ip_address(name))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    found = list(dict.fromkeys(info[4][0] for info in infos))
    return sorted(found, key=lambda address: ":" in address)


def route_of(spec: Any, resolve: Callable[[str], list[str]] = resolve_addresses) -> dict:
    """The router's view of one fast host (all its names share it).

    kind proxy: scheme, peers ([address, port] pairs; `resolve` turns the forward host
    into addresses), ssl_name (the SNI sent to an HTTPS upstream: the forward host, none
    for an IP address), error (the name did not resolve: 502); redirect: code,
    forward_scheme, forward_domain_name, preserve_path; dead: nothing more. Every kind:
    key, tls (has a certificate), force_ssl, hsts, block_exploits, trust_forwarded_proto.
    """
    route: dict[str, Any] = {"key": spec.key, "tls": spec.certificate is not None}
    if spec.certificate is not None and spec.ssl_forced:
        route["force_ssl"] = True
    hsts = _hsts(spec)
    if hsts:
        route["hsts"] = hsts
    if spec.block_exploits:
        route["block_exploits"] = True
    if isinstance(spec, ProxyHostSpec):
        route["kind"] = "proxy"
        route["scheme"] = spec.forward_scheme
        route["forward_host"] = spec.forward_host
        try:
            addresses = [str(ipaddress.ip_address(spec.forward_host))]
        except ValueError:
            addresses = resolve(spec.forward_host)
        route["peers"] = [[address, spec.forward_port] for address in addresses]
        if not addresses:
            route["error"] = f"upstream {spec.forward_host} did not resolve"
        if spec.forward_scheme == "https":
            ssl_name = ssl_name_of(spec.forward_host)
            if ssl_name:
                route["ssl_name"] = ssl_name
            route["pool"] = f"https://{tls_pool(ssl_name)}"
        if spec.trust_forwarded_proto:
            route["trust_forwarded_proto"] = True
        if spec.allow_websocket_upgrade:
            route["websocket"] = True
        if spec.caching_enabled:
            route["caching"] = True
    elif isinstance(spec, RedirectionHostSpec):
        route["kind"] = "redirect"
        route["code"] = spec.forward_http_code
        route["forward_scheme"] = spec.forward_scheme
        route["forward_domain_name"] = spec.forward_domain_name
        if spec.preserve_path:
            route["preserve_path"] = True
    else:
        route["kind"] = "dead"
    return route


def ssl_name_of(forward_host: str) -> str:
    """The SNI name nginx sends to an HTTPS upstream `forward_host`: the name itself, ""
    for an IP address (RFC 6066 section 3: no literal addresses in SNI)."""
    try:
        ipaddress.ip_address(forward_host)
    except ValueError:
        return forward_host
    return ""


def tls_pool(ssl_name: str) -> str:
    """The upstream block (keep-alive pool) of HTTPS upstreams reached with SNI
    `ssl_name` ("" for none); see TLS_POOLS."""
    return f"{DYNAMIC_UPSTREAM}_tls_{zlib.crc32(ssl_name.encode()) % TLS_POOLS}"


def _certificate_error(fullchain: Path, key_path: Path) -> tuple[CertEntry | None, str | None]:
    """Load a certificate chain and key the way nginx would; (entry, None) or (None,
    an error worded like nginx's)."""
    try:
        chain_pem = fullchain.read_bytes()
    except OSError as exc:
        return None, f'cannot load certificate "{fullchain}": {exc.strerror or exc}'
    try:
        key_pem = key_path.read_bytes()
    except OSError as exc:
        return None, f'cannot load certificate key "{key_path}": {exc.strerror or exc}'
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        return None, f'cannot load certificate "{fullchain}": {exc}'
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        return None, f'cannot load certificate key "{key_path}": {exc}'
    public = certificates[0].public_key()
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, raw) != public.public_bytes(encoding, raw):
        return None, (
            f'SSL_CTX_use_PrivateKey("{key_path}") failed (SSL: error:05800074:x509 '
            "certificate routines::key values mismatch)"
        )
    entry = CertEntry(fullchain, key_path, chain_pem.decode(), key_pem.decode())
    return entry, None


def fingerprint(entry: CertEntry) -> str:
    """The router's id of a certificate: SHA-256 of its chain and key (a renewed or
    replaced certificate is a new entry, so no worker serves a stale cached parse)."""
    digest = hashlib.sha256()
    digest.update(entry.chain_pem.encode())
    digest.update(b"\0")
    digest.update(entry.key_pem.encode())
    return digest.hexdigest()[:32]


def _resolver(resolver: Any) -> Callable[[str], list[str]]:
    if resolver is None:
        return resolve_addresses
    if callable(resolver):
        return resolver
    return resolver.addresses


# (fullchain, key) → (their stat signatures, fingerprint or None, error or None): a
# certificate is read and checked again only when one of its files changed
_CERTIFICATES: dict[tuple[Path, Path], tuple[tuple, str | None, str | None, CertEntry | None]] = {}


def _signature(path: Path) -> tuple:
    try:
        status = path.stat()
    except OSError:
        return ()
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def _load_certificate(
    fullchain: Path, key: Path
) -> tuple[str | None, str | None, CertEntry | None]:
    files = (fullchain, key)
    signature = (_signature(fullchain), _signature(key))
    cached = _CERTIFICATES.get(files)
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2], cached[3]
    entry, error = _certificate_error(fullchain, key)
    cert_id = fingerprint(entry) if entry is not None else None
    _CERTIFICATES[files] = (signature, cert_id, error, entry)
    return cert_id, error, entry


def _add_host(state: FastState, spec: Any, resolve: Callable[[str], list[str]]) -> str | None:
    """Put fast host `spec` into `state` (its names, route, certificate); the error of a
    certificate that does not load (then nothing of the host is added)."""
    names = tuple(name.lower() for name in spec.domain_names)
    cert_id = None
    if spec.certificate is not None:
        cert_id, error, entry = _load_certificate(
            Path(spec.certificate.fullchain), Path(spec.certificate.key)
        )
        if error is not None or cert_id is None or entry is None:
            return error or "certificate did not load"
        state.certs[cert_id] = entry
    text = json.dumps(route_of(spec, resolve), sort_keys=True, separators=(",", ":"))
    state.hosts[spec.key] = names
    for name in names:
        state.routes[name] = text
        if cert_id is not None:
            state.sni[name] = cert_id
    return None


def fast_state(
    specs: Iterable[Any],
    default_site: DefaultSite,
    resolver: Any = None,
    generation: int = 0,
) -> tuple[FastState, dict[str, str]]:
    """The router's state for the fast hosts among `specs` (the others are skipped).

    `resolver`: None (the system resolver), a callable name → addresses, or an object
    with an `addresses(name)` method (render.UpstreamResolver). Certificates are loaded
    and checked (chain, key, key matches the leaf) first, once per change of their
    files; a host whose certificate fails is left out and its error returned, keyed by
    host key, in nginx's words.
    """
    resolve = _resolver(resolver)
    state = FastState(default_site=default_site_text(default_site), generation=generation)
    errors: dict[str, str] = {}
    for spec in specs:
        if ineligible(spec) is not None:
            continue
        error = _add_host(state, spec, resolve)
        if error is not None:
            errors[spec.key] = error
    return state, errors


def updated_state(
    state: FastState,
    changed: Iterable[Any],
    removed: Iterable[str] = (),
    default_site: DefaultSite | None = None,
    resolver: Any = None,
    generation: int | None = None,
) -> tuple[FastState, dict[str, str]]:
    """A new FastState: `state` with the hosts of `changed` (specs) put in afresh and the
    host keys in `removed` taken out; `state` itself is not modified. The work is
    proportional to the change plus copying the dicts (an incremental apply).

    A changed spec that is no longer eligible is taken out (it becomes a slow host).
    Certificates no name uses any more are dropped. `default_site` None keeps the
    state's; `generation` None is the state's plus one. Errors as `fast_state`.
    """
    resolve = _resolver(resolver)
    new = FastState(
        routes=dict(state.routes),
        sni=dict(state.sni),
        certs=dict(state.certs),
        default_site=state.default_site
        if default_site is None
        else default_site_text(default_site),
        hosts=dict(state.hosts),
        generation=state.generation + 1 if generation is None else generation,
    )
    changed = list(changed)
    dropped_certs: set[str] = set()
    for key in [*removed, *(spec.key for spec in changed)]:
        for name in new.hosts.pop(key, ()):
            new.routes.pop(name, None)
            cert_id = new.sni.pop(name, None)
            if cert_id is not None:
                dropped_certs.add(cert_id)
    errors: dict[str, str] = {}
    for spec in changed:
        if ineligible(spec) is not None:
            continue
        error = _add_host(new, spec, resolve)
        if error is not None:
            errors[spec.key] = error
    if dropped_certs:
        in_use = set(new.sni.values())
        for cert_id in dropped_certs - in_use:
            new.certs.pop(cert_id, None)
    return new, errors


# ----- talking to nginx ----------------------------------------------------------------


def _diff(old: dict, new: dict) -> dict:
    """Entries of `new` that differ from `old`, and None for keys `new` no longer has."""
    changed: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    changed.update({key: None for key in old.keys() - new.keys()})
    return changed


def _lua_string(text: str) -> str:
    """A Lua string literal holding `text` exactly (decimal escapes for anything not
    plainly printable)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if 0x20 <= byte < 0x7F and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _dict_size(needed: int) -> str:
    """A shared dict size holding `needed` bytes twice over, in power-of-two steps (so
    the main config, which names it, changes only when the state doubles)."""
    size = _DICT_MINIMUM
    while size < 2 * needed:
        size *= 2
    return f"{size // 1024}k"


class Dataplane:
    """The router's files, its control socket, and the nginx config that runs it.

    Args:
        paths: the installation's Paths.
        public_https_port: the port clients reach HTTPS on (Force SSL redirects).
        timeout: seconds a push or read-back may take.
    """

    def __init__(self, paths: Paths, public_https_port: int = 443, timeout: float = 10.0):
        self.paths = paths
        self.public_https_port = public_https_port
        self.timeout = timeout
        self._logs_made: set[str] = set()

    @property
    def snapshot(self) -> Path:
        """The state nginx's master loads at every (re)start and reload (0600)."""
        return self.paths.base / "fastpath.json"

    @property
    def control_socket(self) -> Path:
        """The control server's socket (the run directory is root's only)."""
        return self.paths.fastpath_socket

    def settings(self) -> dict:
        """What the router holds fixed for a configuration's life (in the snapshot)."""
        port = self.public_https_port
        return {
            "https_suffix": "" if port == 443 else f":{port}",
            # relative to "/": the router's access_log path is "/$pw_log" (nginx puts its
            # prefix in front of a path that starts with a variable)
            "logs": str(self.paths.logs).lstrip("/"),
            # render.py's block-exploits rules: ("$query_string", pattern) → variable name
            "exploits": [
                [variable.lstrip("$"), pattern] for variable, pattern in _EXPLOIT_PATTERNS
            ],
        }

    # ----- files ---------------------------------------------------------------------
    def write_snapshot(self, state: FastState) -> None:
        """Write the snapshot atomically (rename), 0600, and create the fast hosts'
        access logs nginx's workers append to (they cannot create files in the logs
        directory)."""
        document = {
            "generation": state.generation,
            "settings": self.settings(),
            "routes": state.routes,
            "sni": state.sni,
            "certs": {
                fp: {"cert": str(entry.fullchain), "key": str(entry.key)}
                for fp, entry in state.certs.items()
            },
            "default_site": state.default_site,
        }
        self.paths.base.mkdir(parents=True, exist_ok=True)
        temporary = self.snapshot.with_name(f".{self.snapshot.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, separators=(",", ":"))
        os.replace(temporary, self.snapshot)
        self.ensure_logs(state.hosts)

    def ensure_logs(self, host_keys: Iterable[str]) -> None:
        """Create each host's access log (0600, owned by nginx's workers) if missing."""
        group = worker_group_id()
        uid = None
        if group is not None:
            import pwd

            from portway.nginx.render import _worker_user

            user = _worker_user()
            uid = pwd.getpwnam(user[0]).pw_uid if user else None
        for key in host_keys:
            if key in self._logs_made:
                continue
            path = self.paths.host_log(key, "access")
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                if uid is not None and group is not None:
                    os.fchown(fd, uid, group)
                os.close(fd)
            self._logs_made.add(key)

    # ----- control endpoint ----------------------------------------------------------
    def _request(self, method: str, body: bytes | None = None) -> dict:
        try:
            conn = UnixHTTPConnection(self.control_socket, self.timeout)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, "/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            conn.close()
        except OSError as exc:
            raise FastPathError(f"control endpoint {self.control_socket}: {exc}") from exc
        if response.status != 200:
            raise FastPathError(f"control endpoint answered {response.status}: {data[:200]!r}")
        return json.loads(data)

    def generation(self) -> int | None:
        """The generation nginx's shared memory holds (every worker reads the same
        memory), or None when nginx does not answer."""
        try:
            value = self._request("GET").get("generation")
        except (FastPathError, ValueError):
            return None
        return int(value) if isinstance(value, int | float) else None

    def change_set(self, old: FastState | None, new: FastState) -> dict:
        """The push body turning `old` (None: empty) into `new`."""
        old = old or FastState()
        certs_changed = _diff(old.certs, new.certs)
        body: dict[str, Any] = {
            "generation": new.generation,
            "routes": _diff(old.routes, new.routes),
            "sni": _diff(old.sni, new.sni),
            "certs": {
                fp: None if entry is None else {"cert": entry.chain_pem, "key": entry.key_pem}
                for fp, entry in certs_changed.items()
            },
        }
        if new.default_site != old.default_site:
            body["default_site"] = new.default_site
        return body

    def push(self, old: FastState | None, new: FastState) -> dict[str, str]:
        """Send what changed from `old` to `new`; errors by host key (a certificate the
        router could not parse, attributed to every host serving it).

        Raises FastPathError when nginx cannot be reached or refused something no host
        is to blame for (shared memory full, the default site).
        """
        body = self.change_set(old, new)
        answer = self._request("POST", json.dumps(body).encode())
        errors = answer.get("errors") or {}
        by_host: dict[str, str] = {}
        name_owner = {name: key for key, names in new.hosts.items() for name in names}
        for fp, message in (errors.get("certs") or {}).items():
            for name, cert_id in new.sni.items():
                if cert_id == fp and name in name_owner:
                    by_host.setdefault(name_owner[name], f"certificate refused: {message}")
        for section in ("routes", "sni"):
            for name, message in (errors.get(section) or {}).items():
                if name in name_owner:
                    by_host.setdefault(name_owner[name], message)
        other = errors.get("other") or {}
        if other or any("shared memory" in message for message in by_host.values()):
            raise FastPathError(
                "; ".join([*other.values(), *by_host.values()]) or "the push was refused"
            )
        return by_host

    # ----- nginx configuration -------------------------------------------------------
    @staticmethod
    def main_directives() -> list[Node]:
        """Main-context directives: the ndk and lua modules (Debian builds them dynamic)."""
        return [d("load_module", NDK_MODULE), d("load_module", LUA_MODULE)]

    def _lua_file(self, name: str) -> Path:
        return LUA_DIR / "portway" / f"{name}.lua"

    def http_directives(self, state: FastState) -> list[Node]:
        """http-context directives: Lua paths, shared dicts sized for `state`, the
        snapshot loader, variable maps, the dynamic upstreams and the control server."""
        cjson = _cjson_module()
        routes_bytes = sum(len(k) + len(v) + _DICT_OVERHEAD for k, v in state.routes.items())
        sni_bytes = sum(len(k) + len(v) + _DICT_OVERHEAD for k, v in state.sni.items())
        cert_bytes = sum(
            len(fp) + len(e.chain_pem) + len(e.key_pem) + _DICT_OVERHEAD
            for fp, e in state.certs.items()
        )
        meta_bytes = len(state.default_site) + 4 * _DICT_OVERHEAD
        upstream_options = [
            d("server", "0.0.0.1:1"),  # never used: the balancer sets every peer
            d("balancer_by_lua_file", self._lua_file("balance")),
            d("keepalive", UPSTREAM_KEEPALIVE),
            d("keepalive_requests", UPSTREAM_KEEPALIVE_REQUESTS),
            d("keepalive_timeout", UPSTREAM_KEEPALIVE_TIMEOUT),
        ]
        init = f'require("portway.router").init({_lua_string(str(self.snapshot))})'
        return [
            Comment("Fast path: routes and certificates in shared memory (portway.nginx.fastpath)"),
            d("lua_package_path", f"{LUA_DIR}/?.lua;{SYSTEM_LUA_DIR}/?.lua;;"),
            d("lua_package_cpath", f"{cjson.parent}/?.so;;" if cjson else ";;"),
            d("lua_shared_dict", "portway_routes", _dict_size(routes_bytes)),
            d("lua_shared_dict", "portway_sni", _dict_size(sni_bytes)),
            d("lua_shared_dict", "portway_certs", _dict_size(cert_bytes)),
            d("lua_shared_dict", "portway_meta", _dict_size(meta_bytes)),
            d("init_by_lua", init),
            # the per-host access log path is a variable: keep its files open
            d("open_log_file_cache", "max=1000", "inactive=60s", "valid=10s", "min_uses=1"),
            _map("$pw_log", "$pw_unrouted", {"default": "", "": "1"}),
            _map("$pw_tfp", "$pw_proto", {"default": "$scheme", "1": "$portway_forwarded_proto"}),
            _map("$pw_ws", "$pw_upgrade", {"default": "", "1": "$http_upgrade"}),
            _map("$pw_ws", "$pw_connection", {"default": "", "1": "$portway_connection_upgrade"}),
            # the asset maps (regexes on $uri) are evaluated only for caching hosts
            _map("$pw_caching", "$pw_cache", {"default": "off", "1": "$portway_asset_cache"}),
            _map("$pw_caching", "$pw_expires", {"default": "off", "1": "$portway_asset_expires"}),
            d("upstream", DYNAMIC_UPSTREAM, block=upstream_options),
            *(
                d("upstream", f"{DYNAMIC_UPSTREAM}_tls_{index}", block=upstream_options)
                for index in range(TLS_POOLS)
            ),
            d(
                "server",
                block=[
                    d("listen", f"unix:{self.control_socket}"),
                    d("access_log", "off"),
                    d("client_max_body_size", "0"),
                    d("client_body_buffer_size", "1m"),
                    d("location", "/", block=[d("content_by_lua_file", self._lua_file("control"))]),
                ],
            ),
        ]

    def router_servers(self, renderer: Renderer, http2: bool) -> ConfigFile:
        """default.conf in fast mode: the router on the HTTP and HTTPS listeners as
        default_server, replacing Renderer.default_servers (the default site is in
        shared memory). `http2`: some host, fast or slow, has HTTP/2 on."""
        p = self.paths
        listeners = renderer.listeners
        head: list[Node] = [
            d("server_name", "_"),
            # requests nginx refuses before the rewrite phase (400) never ran the `set`s
            d("uninitialized_variable_warn", "off"),
            # a variable access_log path is written only when the root exists
            d("root", p.acme_webroot),
            # a routed request in its host's log (a variable path, opened by the worker,
            # so Dataplane.ensure_logs creates the files), the rest in the main one
            d("access_log", "/$pw_log", "portway", "if=$pw_log"),
            d("access_log", self.paths.logs / "nginx-access.log", "portway", "if=$pw_unrouted"),
            renderer._acme_location(),
            d("location", "/", block=self._router_location()),
            # never entered: its `set`s only declare the variables Lua writes, so that no
            # request pays for setting them (unset, nginx reads them as empty)
            d(
                "location",
                "@portway_variables",
                block=[d("set", name, "") for name in ROUTER_VARIABLES],
            ),
        ]
        http_server: list[Node] = [*listeners.http_listen("default_server")]
        extra = ["http2"] if http2 else []
        # the renderer's listeners: the public HTTPS addresses, or the SNI front's socket
        # (portway.nginx.render_front; the engine twins the server as for any other)
        https_server: list[Node] = [*listeners.https_listen(*extra, "default_server")]
        https_server += [
            d("ssl_certificate", p.default_cert_dir / "cert.pem"),
            d("ssl_certificate_key", p.default_cert_dir / "key.pem"),
            d("ssl_certificate_by_lua_file", self._lua_file("certificate")),
        ]
        return ConfigFile(
            "default.conf",
            [
                Comment("Router: every name no server block claims (portway.nginx.fastpath)"),
                d("server", block=http_server + head),
                d("server", block=https_server + head),
            ],
        )

    def _router_location(self) -> list[Node]:
        """`location /` of the router: the route decides in the rewrite phase, then the
        request is proxied with the headers render.py's proxy hosts send."""
        return [
            # the access log's root check (see router_servers) without a stat per request
            d("open_file_cache", "max=16", "inactive=60s"),
            # most requests are settled by set_by_lua (no Lua coroutine); the rest by
            # rewrite_by_lua, which may answer by itself (redirects, default site, 403)
            d("set_by_lua_file", "$pw_slow", self._lua_file("route_fast")),
            d(
                "if",
                "(",
                "$pw_slow",
                ")",
                block=[d("rewrite_by_lua_file", self._lua_file("route"))],
            ),
            d("proxy_pass", "$pw_pass"),
            d("proxy_set_header", "Host", "$host"),
            d("proxy_set_header", "X-Real-IP", "$remote_addr"),
            d("proxy_set_header", "X-Forwarded-For", "$portway_forwarded_for"),
            d("proxy_set_header", "X-Forwarded-Proto", "$pw_proto"),
            d("proxy_set_header", "X-Forwarded-Host", "$host"),
            d("proxy_http_version", "1.1"),
            d("proxy_set_header", "Upgrade", "$pw_upgrade"),
            d("proxy_set_header", "Connection", "$pw_connection"),
            d("proxy_ssl_server_name", "on"),
            d("proxy_ssl_name", "$pw_ssl_name"),
            d("proxy_redirect", "$pw_target/", "/"),
            # asset caching as render.py's _cache_directives (maps decide per host/URI)
            d("proxy_cache", "$pw_cache"),
            d("proxy_cache_key", "$pw_proto://$host$request_uri $pw_target"),
            d("proxy_cache_valid", 200, "30m"),
            d("proxy_cache_valid", 404, "1m"),
            d("proxy_cache_bypass", "$http_authorization"),
            d("proxy_no_cache", "$portway_private_response"),
            d("expires", "$pw_expires"),
            # empty values are not sent
            d("add_header", "Strict-Transport-Security", "$pw_hsts", "always"),
            d("add_header", "X-Cache-Status", "$upstream_cache_status", "always"),
        ]


def _map(source: str, target: str, entries: dict[str, str]) -> Directive:
    return d("map", source, target, block=[MapEntry(k, v) for k, v in entries.items()])
