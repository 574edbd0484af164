"""The apply engine: database → generation directory → `nginx -t` → atomic swap → reload.

A change never takes every site down:
- each host renders into its own file, so nginx's error names the file and thus the host;
- a host nginx rejects is isolated: its previous (last good) config keeps serving if it
  had one, otherwise it is left out, and it is marked offline with nginx's message;
- an error that names no host file is narrowed down by bisection over the hosts with
  real `nginx -t` runs, and a default-site setting nginx refuses falls back to the
  built-in page, so whatever is saved never stops other changes from going live;
- when nginx refuses even the config without hosts, the apply reports the error (the
  engine is "stuck") and hosts whose current config is not live are marked so;
- the live config is a symlink swapped with rename(2) only after `nginx -t` passed, and
  nginx is reloaded with SIGHUP, whose old workers finish the requests in flight;
- a reload nginx refuses (e.g. bind() on a port in use) is detected through the status
  server and attributed the same way.
Changes requested while an apply runs are folded into the next one (ApplyWorker).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import itertools
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from portway import conf
from portway.access.render import AccessSpec, RealIpSpec
from portway.nginx import kinds
from portway.nginx.config import ConfigFile
from portway.nginx.fastengine import AddressResolver, FastHosts, merge_states, split_hosts
from portway.nginx.hostcache import HostCache
from portway.nginx.kinds import origin_pull_ca  # noqa: F401 - public here before
from portway.nginx.process import (
    NginxSupervisor,
    TestResult,
    nginx_binary,
    parse_errors,
    stray_master,
    test_config,
)
from portway.nginx.render import (
    ADVANCED_MARKER,
    DefaultSite,
    Listeners,
    Paths,
    ProxyHostSpec,
    Renderer,
    SiteSpec,
    worker_group_id,
)
from portway.nginx.render_front import (
    FRONT_FILE,
    FrontPlan,
    Passthrough,
    front_directory,
    http_real_ip,
    mode_of,
    render_front,
    with_twins,
)
from portway.nginx.render_stream import StreamSpec
from portway.nginx.render_tunnel import TunnelHostSpec

log = logging.getLogger("portway.nginx")
_HOST_FILE = re.compile(r"(?:^|/)hosts/(?P<key>[a-z]+-\d+)\.conf$")
KEEP_GENERATIONS = 3
RESOLVE_CHECK_SECONDS = 5.0  # how often the worker looks for upstream names due again


@dataclass
class HostOutcome:
    """What the last apply did with one host."""

    online: bool
    error: str | None = None
    serving_previous: bool = False  # rejected, but its last good config stays live


def rejected_outcome(message: str, serving_previous: bool) -> HostOutcome:
    """The outcome of a host nginx (or the fast path's check) rejected with `message`:
    its previous config (or routes) still served, or the host offline."""
    if serving_previous:
        return HostOutcome(
            False,
            "nginx rejected this host's new config; its previous config is still "
            f"served. nginx said: {message}",
            serving_previous=True,
        )
    return HostOutcome(
        False, f"nginx rejected this host's config; the host is offline. nginx said: {message}"
    )


@dataclass
class ApplyReport:
    """Result of one apply: the generation now live (None if nothing changed live)."""

    generation: str | None
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    error: str | None = None  # a failure not attributable to any host
    seconds: float = 0.0
    tests: int = 0  # `nginx -t` runs this apply needed
    # "fast": only nginx's shared memory changed (no `nginx -t`, no reload); "reload": a
    # new generation went live (or was attempted); None: only tested (`portway check`)
    path: str | None = None


@dataclass
class State:
    """Everything the renderer needs, read from the database in one go."""

    hosts: list[SiteSpec]  # of every kind
    default_site: DefaultSite
    # host key → modified_on when read: an outcome is recorded only on an unchanged row
    versions: dict[str, dt.datetime] = field(default_factory=dict)
    real_ip: RealIpSpec | None = None

    def passthroughs(self) -> list[Passthrough]:
        """The passthrough tunnel hosts among `hosts` (the SNI front's routes)."""
        return [
            Passthrough(h.id, h.domain_names, h.forward_host, h.forward_port, h.proxy_protocol)
            for h in self.hosts
            if isinstance(h, TunnelHostSpec) and h.passthrough
        ]


def spec_from_host(host, access: AccessSpec | None = None) -> SiteSpec:  # noqa: ANN001
    """The renderer's view of a host row of any kind (certificate loaded or None).

    `access`: the host's access list as the renderer needs it; read from the database
    when not given (see portway.nginx.kinds.spec_of).
    """
    return kinds.spec_of(host, access)


def load_default_site() -> DefaultSite:
    from portway.nginx.models import Setting

    setting = Setting.get("default-site")
    meta = setting.meta or {}
    return DefaultSite(setting.value, str(meta.get("redirect") or ""), str(meta.get("html") or ""))


def load_state(cache: HostCache | None = None) -> State:
    """Enabled hosts of every kind (portway.nginx.kinds.KINDS) and settings.

    `cache`: the specs read by earlier calls; only rows changed since are read again
    (portway.nginx.hostcache). Without one, every row is read.
    """
    from portway.access.realip import spec as real_ip_spec
    from portway.nginx import admin_site

    specs, versions = (cache or HostCache()).load()
    admin = admin_site.spec()
    if admin is not None:
        specs.append(admin)
    return State(specs, load_default_site(), versions, real_ip_spec())


def load_state_uncached() -> State:
    """Enabled hosts of every kind and settings, every row read (the reference the
    incremental `load_state` is tested against)."""
    from portway.access.models import AccessList
    from portway.access.realip import spec as real_ip_spec
    from portway.access.services import spec_of

    rows = {
        kind: list(kind.rows().filter(enabled=True).select_related("certificate").order_by("id"))
        for kind in kinds.KINDS
    }
    paths = Paths(Path(settings.DATA_DIR))
    wanted = {
        row.access_list_id
        for kind_rows in rows.values()
        for row in kind_rows
        if getattr(row, "access_list_id", 0)
    }
    lists = AccessList.objects.filter(pk__in=wanted).prefetch_related("items", "clients")
    access = {a.pk: spec_of(a, paths) for a in lists}
    specs: list[SiteSpec] = []
    versions: dict[str, dt.datetime] = {}
    for kind, kind_rows in rows.items():
        for row in kind_rows:
            spec = kind.spec(row, access.get(getattr(row, "access_list_id", 0)))
            specs.append(spec)
            versions[spec.key] = row.modified_on
    from portway.nginx import admin_site

    admin = admin_site.spec()
    if admin is not None:
        specs.append(admin)
    return State(specs, load_default_site(), versions, real_ip_spec())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_default_certificate(directory: Path) -> None:
    """A self-signed certificate for the default HTTPS server, made once (EC P-256).

    It is what clients see for unknown or missing SNI: never another host's certificate.
    """
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portway-default")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Engine:
    """Renders, tests and applies nginx config for one data directory.

    Args:
        config: the installation's settings (ports, data dir, nginx binary).
        supervisor: the running nginx to reload, or None to only write the live config.
    """

    def __init__(self, config: conf.PortwayConfig, supervisor: NginxSupervisor | None = None):
        self.config = config
        self.paths = Paths(config.data_dir)
        self.renderer = Renderer(config, self.paths)
        self.supervisor = supervisor
        self.binary = nginx_binary(config.nginx_binary)
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        # host key → (digest of a rendered text nginx rejected, nginx's message, whether the
        # error named the host's file: else it may lie outside the text, e.g. a missing
        # certificate file, and is tested again in the next apply)
        self._rejected: dict[str, tuple[str, str, bool]] = {}
        self.last_report: ApplyReport | None = None
        self._versions: dict[str, dt.datetime] = {}
        self.hosts = HostCache()
        # why routine changes are not pushed to shared memory (None: they are)
        self.fast_reason = fast_path_unavailable(config)
        if self.fast_reason is not None and config.fast_path != "off":
            log.warning("the fast path is off, every change reloads nginx: %s", self.fast_reason)
        self._fast: FastHosts | None = None
        self._fast_plane = None  # portway.nginx.fastpath.Dataplane, when fast
        self._fast_live: dict[str, Any] = {}  # fast host key → its state nginx serves
        self._fast_live_state = None  # the FastState last confirmed in shared memory
        # names and fingerprints that may be in shared memory besides the confirmed state
        # (a push nginx did not confirm, a restart that loaded the snapshot), or None
        self._fast_doubt: tuple[set[str], set[str], set[str]] | None = None
        # the state the generation being rendered sizes its shared memory for
        self._fast_sizing = None
        self._fast_generation = int(time.time() * 1000)
        self._http2_anywhere = False
        # the slow part of the live generation as last rendered (see _slow_signature);
        # None: unknown, the next apply takes the reload path
        self._live_signature: tuple[Any, ...] | None = None
        self._slow_outcomes: dict[str, HostOutcome] = {}
        self._eligibility: dict[str, tuple[SiteSpec, str | None]] = {}
        # slow hosts nginx rejected that keep the routes they had as fast hosts
        self._fast_kept: dict[str, Any] = {}
        if self.fast_reason is None:
            from portway.nginx import fastpath

            self._fast_plane = fastpath.Dataplane(self.paths, config.public_https_port)
            self._fast = FastHosts(self._build_fast_state, AddressResolver(config.resolver.split()))
        # host key → ((spec, whether each upstream name resolved), its file, its text)
        self._rendered: dict[str, tuple[tuple[Any, ...], ConfigFile, str]] = {}

    # ----- filesystem ------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the directories nginx needs and the default certificate."""
        p = self.paths
        os.chmod(p.data_dir, 0o711)  # workers traverse to the challenge webroot, never list
        for directory in (p.base, p.generations, p.run, p.temp, p.cache, p.logs):
            directory.mkdir(parents=True, exist_ok=True)
        (p.acme_webroot / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)
        # nginx's workers (www-data) read challenge files and write the cache and temp
        # files; Portway's own umask (077) would otherwise shut them out.
        for directory in (
            p.base,
            p.temp,
            p.cache,
            p.acme_webroot,
            p.acme_webroot / ".well-known",
            p.acme_webroot / ".well-known" / "acme-challenge",
        ):
            os.chmod(directory, 0o755)
        os.chmod(p.generations, 0o711)  # the default page is served from a generation
        # On SIGUSR1 (log rotation, portway.nginx.logs) the workers reopen the log files
        # themselves, as www-data: they must traverse the directory (never list it); the
        # files stay 0600, owned by the workers' user.
        os.chmod(p.logs, 0o711)
        # the SNI front's workers connect to the http side's sockets in run/front (nginx
        # makes them 0666). Only they may: whoever connects there sends a PROXY header,
        # i.e. chooses the client address access lists judge. The directory is the
        # workers' group's (0710); with no separate worker user, nginx runs as us (0700).
        os.chmod(p.run, 0o711)
        front = front_directory(p.run)
        front.mkdir(exist_ok=True)
        group = worker_group_id()
        if group is None:
            os.chmod(front, 0o700)
        else:
            os.chown(front, -1, group)
            os.chmod(front, 0o710)
        p.fastpath_socket.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(p.fastpath_socket.parent, 0o700)  # whoever connects can change any route
        ensure_default_certificate(p.default_cert_dir)
        from portway.access.services import write_user_files

        write_user_files(p)
        self._warn_if_unreachable()

    def _warn_if_unreachable(self) -> None:
        """Say so when nginx's workers cannot reach the data directory (0700 parents)."""
        if os.geteuid() != 0:
            return
        for parent in self.paths.data_dir.resolve().parents:
            if not parent.stat().st_mode & 0o001:
                log.warning(
                    "nginx workers cannot enter %s (no search permission for others): asset "
                    "caching and ACME HTTP-01 challenges under %s will fail; run chmod o+x %s",
                    parent,
                    self.paths.data_dir,
                    parent,
                )
                return

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One apply at a time, in this process (threads) and across processes (flock)."""
        with self._lock:
            self.paths.base.mkdir(parents=True, exist_ok=True)
            with open(self.paths.base / "apply.lock", "w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _new_generation_id(self) -> str:
        return f"{int(time.time() * 1000)}-{os.getpid()}-{next(self._counter)}"

    def _write_generation(self, name: str, files: list[ConfigFile], texts: dict[str, str]) -> Path:
        directory = self.paths.generations / name
        return self._write_files(directory, files, texts)

    @staticmethod
    def _write_files(directory: Path, files: list[ConfigFile], texts: dict[str, str]) -> Path:
        """Write one generation's files; `texts` overrides what a host's file holds."""
        (directory / "hosts").mkdir(parents=True)
        # nginx's workers (not root) read the served files (the default page) at request
        # time: they may traverse the directory, never list it; config stays 0600.
        os.chmod(directory, 0o711)
        for config_file in files:
            path = directory / config_file.relative_path
            text = texts.get(config_file.host_key or "") if config_file.host_key else None
            if config_file.served:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(path.parent, 0o755)
                path.write_text(config_file.text())
                os.chmod(path, 0o644)
            else:
                path.write_text(text if text is not None else config_file.text())
        return directory

    def has_live_config(self, key: str) -> bool:
        """Whether nginx serves host `key` (e.g. "proxy-5"): a file of the live generation,
        or routes in shared memory (a fast host)."""
        return key in self._fast_live or (self.paths.live / "hosts" / f"{key}.conf").exists()

    def live_generation(self) -> str | None:
        """Name of the generation the `live` link points at (None before the first apply)."""
        return self.paths.live.resolve().name if self.paths.live.exists() else None

    def live_host_texts(self) -> dict[str, str]:
        """Host key → text of the live generation (the last good config of each host)."""
        hosts_dir = self.paths.live / "hosts"
        texts: dict[str, str] = {}
        if hosts_dir.is_dir():
            for path in hosts_dir.glob("*.conf"):
                texts[path.stem] = path.read_text()
        return texts

    def _swap_live(self, directory: Path) -> None:
        tmp = self.paths.base / f".live-{os.getpid()}-{threading.get_ident()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(directory, self.paths.base), tmp)
        os.replace(tmp, self.paths.live)  # rename(2): readers see the old or the new, never none

    def _prune(self, keep: Path) -> None:
        generations = sorted(
            (g for g in self.paths.generations.iterdir() if g.is_dir()),
            key=lambda g: g.stat().st_mtime,
        )
        for old in generations[:-KEEP_GENERATIONS]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    # ----- fast path -------------------------------------------------------------------
    @property
    def fast_enabled(self) -> bool:
        """Whether routine changes go live through nginx's shared memory."""
        return self.fast_reason is None

    @staticmethod
    def _ineligible(spec: SiteSpec) -> str | None:
        from portway.nginx import admin_site, fastpath

        if isinstance(spec, admin_site.AdminSiteSpec):
            return "the admin UI's own site"
        if ":" in (getattr(spec, "forward_host", None) or ""):
            # the router's balancer is handed the address unbracketed, which
            # ngx.balancer.set_current_peer refuses for IPv6 ("invalid port")
            return "IPv6 upstream address"
        return fastpath.ineligible(spec)

    def _ineligible_cached(self, spec: SiteSpec) -> str | None:
        """`_ineligible`, remembered per spec object (unchanged rows keep theirs)."""
        known = self._eligibility.get(spec.key)
        if known is not None and known[0] is spec:
            return known[1]
        reason = self._ineligible(spec)
        self._eligibility[spec.key] = (spec, reason)
        return reason

    def _build_fast_state(self, specs: list[SiteSpec], site: DefaultSite) -> tuple[Any, dict]:
        from portway.nginx import fastpath

        resolver = self._fast.resolver if self._fast is not None else None
        return fastpath.fast_state(specs, site, resolver)

    def _fast_target(self, pieces: dict[str, Any]) -> tuple[dict[str, Any], dict[str, HostOutcome]]:
        """(host key → the state to serve, host key → outcome) for the fast hosts.

        A host whose state was refused keeps the state nginx serves for it (its previous
        routes: `serving_previous`) or is left out (offline), with the error on the host,
        as the reload path does with a host nginx rejects.
        """
        target: dict[str, Any] = {}
        outcomes: dict[str, HostOutcome] = {}
        for key, piece in pieces.items():
            if piece.error is None:
                target[key] = piece.state
                outcomes[key] = HostOutcome(True)
            else:
                self._refuse(key, piece.error, target, outcomes)
        return target, outcomes

    def _refuse(
        self,
        key: str,
        message: str,
        target: dict[str, Any],
        outcomes: dict[str, HostOutcome],
    ) -> None:
        previous = self._fast_live.get(key)
        if previous is not None:
            target[key] = previous
        else:
            target.pop(key, None)
        outcomes[key] = rejected_outcome(message, serving_previous=previous is not None)

    def _fast_push_possible(self) -> bool:
        """Whether nginx runs on a live generation this engine rendered (then a change of
        the fast hosts alone can be pushed without a reload)."""
        return (
            self._live_signature is not None
            and self.supervisor is not None
            and self.supervisor.running
        )

    def _slow_signature(
        self,
        state: State,
        site: DefaultSite,
        host_files: dict[str, ConfigFile],
        served: dict[str, str],
    ) -> tuple[Any, ...]:
        """What the slow part of a generation is made of: every file but the host files
        as rendered (under a fixed generation name), each served host's text, and the
        identity of each certificate file a served host names (a renewal rewrites the
        files under the same names: nginx must then reload to read them)."""
        from portway.nginx.hostcache import _file_identity

        files = self._files(state, "-", [host_files[key] for key in served], Path("/-"), site)
        others = {f.relative_path: f.text() for f in files if not f.host_key}
        certificates = {
            spec.key: (
                _file_identity(spec.certificate.fullchain),
                _file_identity(spec.certificate.key),
            )
            for spec in state.hosts
            if spec.key in served and getattr(spec, "certificate", None) is not None
        }
        return others, dict(served), certificates

    def _slow_unchanged(self, state: State) -> bool:
        """Whether the slow part of `state` renders exactly as the live generation (then
        a reload would change nothing)."""
        rendered = self._render_hosts(state.hosts, self._front(state))
        served = {}
        live_texts = self._live_signature[1] if self._live_signature else {}
        for key, (_file, text) in rendered.items():
            known = self._rejected.get(key)
            if known and known[0] == _digest(text):
                if not known[2]:
                    return False  # tested again by the reload path: was it fixed?
                routes = self._fast_live.get(key)
                if routes is not None and self._fast_kept.get(key) is not routes:
                    return False  # was a fast host: the reload path keeps its routes
                if key in live_texts:
                    served[key] = live_texts[key]
                continue
            served[key] = text
        host_files = {key: entry[0] for key, entry in rendered.items()}
        signature = self._slow_signature(state, state.default_site, host_files, served)
        return signature == self._live_signature

    @staticmethod
    def _merge_fast(target: dict[str, Any], site: DefaultSite, generation: int) -> Any:
        return merge_states(target.values(), site, generation)

    def _push_fast(
        self,
        target: dict[str, Any],
        outcomes: dict[str, HostOutcome],
        site: DefaultSite,
        final: bool,
        mark: bool = True,
    ) -> str | None:
        """Write the snapshot and push the fast hosts' state to nginx; an error no host is
        to blame for, else None. `outcomes` is updated with what the data plane refused.

        `final` False: routes nginx serves are kept even when `target` drops them (a host
        that became slow keeps its routes until its server block is live). `mark` False:
        a failure is not written into `outcomes` (a push before a reload, which starts
        nginx when it is not running; the push after it decides).
        """
        assert self._fast_plane is not None

        def wanted_of(target: dict[str, Any]) -> dict[str, Any]:
            wanted = dict(target)
            if not final:
                for key, state in self._fast_live.items():
                    wanted.setdefault(key, state)
            return wanted

        wanted = wanted_of(target)
        self._fast_generation += 1
        new = self._merge_fast(wanted, site, self._fast_generation)
        self._fast_plane.write_snapshot(new)
        if self.supervisor is None:
            # no nginx of ours (serve before it starts nginx, the CLI): nginx loads the
            # snapshot when it starts
            self._fast_live, self._fast_live_state = wanted, new
            return None
        if not self.supervisor.running:
            self._doubt(new)  # the next nginx loads the snapshot: push everything then
            message = "not live: nginx is not running (Portway starts it again)"
            if mark:
                self._mark_not_live(wanted, outcomes, message)
            return message
        old = self._fast_live_state if self._fast_doubt is None else self._doubtful_state()
        try:
            refused = self._fast_plane.push(old, new)
            if refused:  # nothing of a refused entry was applied: put the previous back
                for key, message in refused.items():
                    self._refuse(key, message, target, outcomes)
                wanted = wanted_of(target)
                self._fast_generation += 1
                corrected = self._merge_fast(wanted, site, self._fast_generation)
                self._fast_plane.write_snapshot(corrected)
                self._doubt(new)
                self._fast_plane.push(self._doubtful_state(), corrected)
                new = corrected
            served = self._fast_plane.generation()
        except Exception as exc:  # nginx stopped answering: the next apply pushes everything
            log.warning("pushing the fast path's state failed", exc_info=True)
            served, problem = None, f"{exc}"
        else:
            problem = None
        if served != new.generation:
            self._doubt(new)
            message = (
                "not live: nginx did not confirm the routing change "
                f"(generation {new.generation}, nginx serves {served}). {problem or ''}"
            ).strip()
            if mark:
                self._mark_not_live(wanted, outcomes, message)
            return message
        self._fast_live, self._fast_live_state, self._fast_doubt = wanted, new, None
        return None

    def _doubt(self, state: Any) -> None:
        """`state` may be (partly) in shared memory: the next push sends every entry and
        removes every name and certificate not wanted (FASTPATH.md's push is a diff)."""
        doubt = self._fast_doubt or (set(), set(), set())
        for known in (self._fast_live_state, state):
            if known is not None:
                doubt[0].update(known.routes)
                doubt[1].update(known.sni)
                doubt[2].update(known.certs)
        self._fast_doubt = doubt

    def _doubtful_state(self) -> Any:
        """A state that differs from any real one in every entry that may be in shared
        memory: diffed against it, a push rewrites everything and removes the rest."""
        from portway.nginx.fastpath import FastState

        routes, sni, certs = self._fast_doubt or (set(), set(), set())
        unknown = "\0unknown"
        return FastState(
            routes=dict.fromkeys(routes, unknown),
            sni=dict.fromkeys(sni, unknown),
            certs=dict.fromkeys(certs, None),
            default_site=unknown,
        )

    def _mark_not_live(
        self, wanted: dict[str, Any], outcomes: dict[str, HostOutcome], message: str
    ) -> None:
        """Hosts whose state changed are not live: nginx did not take the push."""
        for key, outcome in outcomes.items():
            if outcome.online and wanted.get(key) is not self._fast_live.get(key):
                outcomes[key] = HostOutcome(False, message, serving_previous=key in self._fast_live)

    def nginx_restarted(self) -> None:
        """nginx was started again (it loaded the snapshot): push the whole state next."""
        with self._lock:  # not in the middle of an apply's push
            self._doubt(None)

    # ----- rendering -------------------------------------------------------------------
    def _load_state(self) -> State:
        """The database's hosts and settings; rows unchanged since the last apply are not
        read again."""
        return load_state(self.hosts)

    def _render_hosts(
        self, specs: list[SiteSpec], front: FrontPlan | None
    ) -> dict[str, tuple[ConfigFile, str]]:
        """Host key → (its file, its text) under `front`, rendered again only when the
        spec or the front's listen mode changed or one of its upstream names started or
        stopped resolving (a proxy host's text depends on that:
        portway.nginx.render.UpstreamResolver)."""
        rendered: dict[str, tuple[tuple[Any, ...], ConfigFile, str]] = {}
        resolvable = self.renderer.resolver.resolvable
        listening = (mode_of(front), front.directory, front.trusted) if front else ("plain",)
        for spec in specs:
            stamp = (
                spec,
                (listening, *(resolvable(name) for name in _upstream_names(spec))),
            )
            cached = self._rendered.get(spec.key)
            if (
                cached is not None
                and (cached[0][0] is spec or cached[0][0] == spec)
                and (cached[0][1] == stamp[1])
            ):
                rendered[spec.key] = cached
                continue
            host_file = self._render_host(front, spec)
            rendered[spec.key] = (stamp, host_file, host_file.text())
        self._rendered = rendered
        return {key: (entry[1], entry[2]) for key, entry in rendered.items()}

    def _front(self, state: State) -> FrontPlan | None:
        """The SNI front of `state` (None: no passthrough host, plain HTTPS listeners)."""
        from portway.nginx.render_front import plan

        return plan(state.passthroughs(), self.paths.run, state.real_ip)

    def _renderer(self, front: FrontPlan | None) -> Renderer:
        """The renderer whose servers listen where `front` wants them."""
        if front is None:
            return self.renderer
        return self.renderer.with_listeners(front.listeners(self.renderer.listeners))

    def _render_host(self, front: FrontPlan | None, spec: SiteSpec) -> ConfigFile:
        """One host's file under `front` (its HTTPS servers moved, twinned if need be)."""
        return with_twins(kinds.render(self._renderer(front), spec), front)

    def _live_mode(self) -> str:
        """The listen mode of the live generation's host files (render_front.mode_of)."""
        try:
            first = (self.paths.live / FRONT_FILE).read_text().split("\n", 1)[0]
        except OSError:
            return "plain"
        return first.removeprefix("# mode: ").strip()

    def _files(
        self,
        state: State,
        generation: str,
        host_files: list[ConfigFile],
        directory: Path | None = None,
        site: DefaultSite | None = None,
    ) -> list[ConfigFile]:
        """Every file of a generation: main config, default site, `host_files`.

        `directory` is where the generation is written (the default page is served from
        there); `site` overrides the state's default site.
        """
        site = state.default_site if site is None else site
        front = self._front(state)
        renderer = self._renderer(front)
        names = [name for h in state.hosts for name in h.domain_names]
        directory = directory or self.paths.generations / generation
        # the stream context only when this generation has a stream (see Renderer.main)
        present = {(f.host_key or "").rsplit("-", 1)[0] for f in host_files}
        from portway.nginx import admin_site

        plane = self._fast_plane if self.fast_reason is None else None
        if plane is not None:
            sizing = self._fast_sizing or self._fast_live_state or merge_states((), site, 0)
            fast_main, fast_http = plane.main_directives(), plane.http_directives(sizing)
        else:
            fast_main, fast_http = [], []
        main = renderer.main(
            generation,
            len(names),
            max(map(len, names), default=0),
            state.real_ip,
            # the admin UI's own site (hosts/admin-0.conf) is no host kind but is
            # served in the http context all the same
            http_kinds=(*kinds.prefixes("http"), admin_site.KIND),
            stream_kinds=tuple(p for p in kinds.prefixes("stream") if p in present),
            stream_includes=(FRONT_FILE,) if front else (),
            http_real_ip=http_real_ip(front, state.real_ip) if front else None,
            fast_main=fast_main,
            fast_http=fast_http,
        )
        if plane is not None:
            # the router replaces the default servers; the default site is in shared memory
            http2 = self._http2_anywhere or any(
                getattr(h, "http2_support", False) for h in state.hosts
            )
            default_files = [_router_without_client_identity(plane.router_servers(renderer, http2))]
        else:
            default_files = [
                renderer.default_servers(site, directory),
                *renderer.default_site_files(site),
            ]
        files = [
            main,
            *default_files,
            *host_files,
        ]
        if front is not None:
            served = {f.host_key for f in host_files if f.host_key}
            files.append(render_front(renderer, front.serving(served)))
        # every server block on the front's socket, whichever file renders it
        return [with_twins(f, front) for f in files]

    def _test_hosts(
        self,
        state: State,
        site: DefaultSite,
        host_files: dict[str, ConfigFile],
        served: dict[str, str],
        keys: list[str],
    ) -> TestResult:
        """`nginx -t` on the main config, `site` and only the hosts `keys` (as served)."""
        name = "test-" + self._new_generation_id()
        directory = self.paths.base / "preflight" / name
        files = self._files(state, name, [host_files[k] for k in keys], directory, site)
        try:
            self._write_files(directory, files, {k: served[k] for k in keys})
            return test_config(self.binary, directory / "nginx.conf", self.paths.base)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def preflight(self, spec: SiteSpec) -> str | None:
        """Test one host alone with the installation's main config: nginx's error or None.

        Cheap whatever the number of hosts, so the API can answer with the host's status
        before the full apply runs. An error that names no file (a certificate nginx
        cannot load, a name too long for a hash) is the host's when the same config
        without the host passes. In fast mode a host the router serves is checked as its
        push would be (certificate and key load and match), without `nginx -t`.
        """
        if self.fast_reason is None and self._ineligible(spec) is None:
            _state, errors = self._build_fast_state([spec], load_default_site())
            return errors.get(spec.key)
        self.prepare()
        state = State([spec], load_default_site())  # the other hosts are not needed here
        host_file = self._render_host(self._front(state), spec)
        text = host_file.text()
        result = self._test_hosts(
            state, state.default_site, {spec.key: host_file}, {spec.key: text}, [spec.key]
        )
        message = None if result.ok else _host_message(result.errors, text)
        named = message is not None
        if message is None and not result.ok:
            without = self._test_hosts(state, state.default_site, {}, {}, [])
            if without.ok:
                message = _unlocated_message(result)
        if message is None:
            if not result.ok:  # not this host's fault: the full apply will report it
                log.warning("preflight failed outside the host's config: %s", result.output)
            self._rejected.pop(spec.key, None)
            return None
        self._rejected[spec.key] = (_digest(text), message, named)
        return message

    def preflight_default_site(self, site: DefaultSite) -> str | None:
        """Test a default-site setting with the main config (no hosts): nginx's error or None.

        Settings that are not hosts are checked before they are saved, so that nothing
        an administrator can save stops later applies.
        """
        self.prepare()
        state = State([], site)
        result = self._test_hosts(state, site, {}, {}, [])
        return None if result.ok else _strip_log_prefix(result.output)

    def apply(self, go_live: bool = True) -> ApplyReport:
        """Render the database into a new live generation and make nginx serve it.

        With go_live False the generation is only tested (`portway check`): nothing is
        swapped, reloaded or recorded.
        """
        started = time.monotonic()
        with self._exclusive():
            try:
                report = self._apply_locked(go_live)
            except Exception as exc:  # the status must say the engine is stuck
                if go_live:
                    self.last_report = ApplyReport(None, error=f"the apply failed: {exc!r}")
                raise
            report.seconds = time.monotonic() - started
            if not go_live:
                return report
            self.last_report = report
            self._record(report)
        log.info(
            "apply (%s path): generation %s, %d hosts, %d offline, %d nginx -t runs, %.2fs%s",
            report.path,
            report.generation,
            len(report.hosts),
            sum(1 for o in report.hosts.values() if not o.online),
            report.tests,
            report.seconds,
            f", error: {report.error}" if report.error else "",
        )
        return report

    def _apply_locked(self, go_live: bool = True) -> ApplyReport:
        """Read the database and put it live by the fast path or the reload path.

        In fast mode (FASTPATH.md) the hosts split into fast ones (routes in nginx's shared
        memory) and slow ones (their own server blocks). When the slow part of the
        generation renders exactly as the live one, only the fast hosts' change is pushed
        ("fast": no `nginx -t`, no reload); otherwise the fast additions are pushed, the
        slow generation is tested and reloaded as without the fast path, and the fast
        removals are pushed after ("reload").
        """
        self.prepare()
        state = self._load_state()
        self._versions = state.versions
        if self.fast_reason is not None or self._fast is None:
            self._pending_fast = None
            report = self._apply_reload(state, go_live)
            report.path = "reload" if go_live else None
            return report
        fast_specs, slow_specs, _reasons = split_hosts(state.hosts, self._ineligible_cached)
        if len(self._eligibility) > 2 * len(state.hosts) + 100:  # deleted hosts' entries
            current = {spec.key for spec in state.hosts}
            self._eligibility = {k: v for k, v in self._eligibility.items() if k in current}
        self._http2_anywhere = any(getattr(h, "http2_support", False) for h in state.hosts)
        pieces = self._fast.pieces(fast_specs, state.default_site)
        target, fast_outcomes = self._fast_target(pieces)
        # the generation's shared memory is sized for this state and what is live now
        # (a host that becomes slow keeps its routes until the reload)
        sizing = dict(self._fast_live)
        sizing.update(target)
        self._fast_sizing = merge_states(sizing.values(), state.default_site, 0)
        slow = State(slow_specs, state.default_site, state.versions, state.real_ip)
        self._pending_fast = (target, fast_outcomes, state.default_site)
        if go_live and self._fast_push_possible() and self._slow_unchanged(slow):
            slow_keys = {spec.key for spec in slow_specs}
            self._fast_kept = {
                key: routes
                for key, routes in self._fast_kept.items()
                if key in slow_keys and self._fast_live.get(key) is routes
            }
            fast_only = {**target, **self._fast_kept}
            error = self._push_fast(fast_only, fast_outcomes, state.default_site, final=True)
            if error is None:
                hosts = {
                    key: outcome
                    for key, outcome in self._slow_outcomes.items()
                    if key in state.versions or key.startswith("admin-")
                }
                hosts.update(fast_outcomes)
                report = ApplyReport(self.live_generation(), hosts, None, path="fast")
                self._pending_fast = None
                return report
            # nginx did not take the push (not answering, shared memory full): the reload
            # path starts or reloads it, and says why it cannot
            log.warning("fast path: %s; reloading instead", error)
            self._live_signature = None
            target, fast_outcomes = self._fast_target(pieces)
            self._pending_fast = (target, fast_outcomes, state.default_site)
        report = self._apply_reload(slow, go_live)
        report.path = "reload" if go_live else None
        if go_live and self._pending_fast is not None:
            # nothing went live (nginx refused the slow part for a reason no host is to
            # blame for): the fast hosts still change, hosts that became slow keep routes
            error = self._push_fast(
                target, fast_outcomes, state.default_site, final=False, mark=True
            )
            if error:
                report.error = "; ".join(e for e in (report.error, error) if e)
        if go_live:
            self._slow_outcomes = dict(report.hosts)
        report.hosts.update(fast_outcomes)
        self._pending_fast = None
        return report

    def _apply_reload(self, state: State, go_live: bool = True) -> ApplyReport:
        """Test, isolate, swap and reload; see the module docstring.

        Each round either goes live or takes one host out (its new text, then its last
        good text) or falls back to the built-in default site, so the loop ends after at
        most 2 × hosts + 2 rounds. An error that names a host file costs one round; one
        that names no file is narrowed down by bisection (log2(hosts) + 2 `nginx -t`).
        """
        front = self._front(state)
        rendered = self._render_hosts(state.hosts, front)
        host_files = {key: entry[0] for key, entry in rendered.items()}
        texts = {key: entry[1] for key, entry in rendered.items()}
        last_good = self.live_host_texts()
        self._fast_kept = {}
        if self._live_mode() != mode_of(front):
            # the live host files listen where this generation's front (or its absence)
            # cannot: none of them may stand in for a rejected host
            last_good = {}
        outcomes = {key: HostOutcome(True) for key in host_files}
        served = dict(texts)  # what goes into the generation for each host
        site = state.default_site
        site_error: str | None = None
        tests = 0

        def reject(key: str, message: str) -> None:
            previous = last_good.get(key)
            routes = self._fast_live.get(key)
            if previous is None and routes is not None and self._pending_fast is not None:
                # a host the router served until this change: its routes stay
                served.pop(key, None)
                self._pending_fast[0][key] = self._fast_kept[key] = routes
                outcomes[key] = rejected_outcome(message, serving_previous=True)
            elif previous is not None and served.get(key) != previous:
                served[key] = previous
                outcomes[key] = rejected_outcome(message, serving_previous=True)
            else:
                served.pop(key, None)
                outcomes[key] = rejected_outcome(message, serving_previous=False)

        def blame(key: str, message: str, named: bool = True) -> None:
            if served.get(key) == texts.get(key):
                self._rejected[key] = (_digest(texts[key]), message, named)
            reject(key, message)

        def test(keys: list[str]) -> TestResult:
            nonlocal tests
            tests += 1
            return self._test_hosts(state, site, host_files, served, keys)

        def report(generation: str | None, error: str | None = None) -> ApplyReport:
            if generation is None:
                # Nothing went live: a host is online only if the live config has its
                # current text; the others are not served whatever preflight said.
                for key, outcome in outcomes.items():
                    if outcome.online and texts[key] != last_good.get(key):
                        outcomes[key] = HostOutcome(
                            False,
                            "not live: nginx could not load the configuration, for a reason "
                            "no host is to blame for, so this change is waiting. "
                            f"nginx said: {error}",
                            serving_previous=key in last_good,
                        )
            errors = [e for e in (site_error, error) if e]
            return ApplyReport(generation, outcomes, "; ".join(errors) or None, tests=tests)

        # Before nginx's first start, a stream port another program holds is found here:
        # nginx would retry bind() for 2.5 s and exit, and every host would be down until
        # the apply after it took that stream out (issue 7: never a dead nginx).
        if go_live and not self._nginx_running():
            for spec in state.hosts:
                if isinstance(spec, StreamSpec):
                    taken = stream_ports_in_use(spec, self.renderer.listeners)
                    if taken:  # out, also its last good text: that listens on the same port
                        served.pop(spec.key, None)
                        outcomes[spec.key] = HostOutcome(
                            False,
                            "another program holds this stream's port; the stream is offline "
                            f"until the port is free and Portway applies again. {taken}",
                        )

        # Hosts whose exact text nginx already rejected skip straight to isolation; one
        # whose error named no file is first tested alone again (was the file fixed?).
        for key, text in texts.items():
            known = self._rejected.get(key)
            if known and known[0] == _digest(text):
                if not known[2] and test([key]).ok:
                    continue
                reject(key, known[1])

        for _ in range(2 * len(texts) + 3):
            generation = self._new_generation_id()
            files = self._files(state, generation, [host_files[k] for k in served], site=site)
            directory = self._write_generation(generation, files, served)
            tests += 1
            result = test_config(self.binary, directory / "nginx.conf", self.paths.base)
            if result.ok and not go_live:
                shutil.rmtree(directory, ignore_errors=True)
                return report(generation)
            if result.ok:
                if self._pending_fast is not None:  # the router learns new routes first
                    target, fast_outcomes, fast_site = self._pending_fast
                    self._push_fast(target, fast_outcomes, fast_site, final=False, mark=False)
                reload_error = self._go_live(directory, generation)
                if reload_error is None:
                    self._prune(directory)
                    self._live_signature = self._slow_signature(state, site, host_files, served)
                    if self._pending_fast is not None:  # and forgets old ones after
                        target, fast_outcomes, fast_site = self._pending_fast
                        error = self._push_fast(target, fast_outcomes, fast_site, final=True)
                        self._pending_fast = None
                        return report(generation, error)
                    return report(generation)
                # _go_live already pointed `live` back at the config nginx still serves
                if not self._isolate(parse_errors(reload_error), served, texts, reject):
                    culprits = _reload_suspects(
                        reload_error, served, last_good, self._own_listeners()
                    )
                    if not culprits:
                        return report(None, _strip_log_prefix(reload_error))
                    message = _strip_log_prefix(reload_error)
                    for key in culprits:
                        blame(key, message)
                continue
            shutil.rmtree(directory, ignore_errors=True)
            if self._isolate(result.errors, served, texts, reject):
                continue
            names_site = _names_default_site(result.errors)
            culprit = None if names_site else self._bisect(list(served), served, test, result)
            if culprit is not None:
                blame(*culprit)
                continue
            # nginx fails without any host: the default-site setting, if it is not the
            # built-in page, is the one thing left to take out
            if site == DefaultSite():
                return report(None, _strip_log_prefix(result.output))
            site_error = (
                "nginx rejected the default-site setting; the congratulations page is "
                f"served instead. nginx said: {_strip_log_prefix(result.output)}"
            )
            site = DefaultSite()
        return report(None, "nginx kept rejecting the configuration")  # not reached

    def _bisect(self, keys, served, test, failed: TestResult) -> tuple[str, str, bool] | None:  # noqa: ANN001
        """One host that makes nginx fail together with `keys`, by bisection.

        For an error that names no host file (`failed`: the test of all `keys`). The
        hosts are halved until one remains: the first host with which the config starts
        to fail, found with about log2(len(keys)) + 2 `nginx -t` runs. Returns (host key,
        nginx's message, whether the message named the host's file), or None when the
        config fails without any host (the main config, the default site or the machine:
        no host is to blame).
        """
        if not test([]).ok:
            return None
        trusted: list[str] = []  # test(trusted) passes
        suspects = list(keys)  # test(trusted + suspects) fails
        last: tuple[list[str], TestResult] = (list(keys), failed)
        while len(suspects) > 1:
            half = suspects[: len(suspects) // 2]
            result = test(trusted + half)
            if result.ok:
                trusted += half
                suspects = suspects[len(half) :]
                continue
            for file, line, message in result.errors:
                match = _HOST_FILE.search(file or "")
                if match and match["key"] in half:  # this smaller config names its host
                    key = match["key"]
                    located = _host_message([(file, line, message)], served[key])
                    return key, located or message, True
            suspects = half
            last = (trusted + half, result)
        key = suspects[0]
        if last[0] != [*trusted, key]:
            result = test([*trusted, key])
            if not result.ok:
                last = ([*trusted, key], result)
        located = _host_message(last[1].errors, served[key])
        return key, located or _unlocated_message(last[1]), located is not None

    def _isolate(self, errors, served, texts, reject) -> bool:  # noqa: ANN001
        """Reject every host an nginx error names; False if no error names a host."""
        found = False
        for file, _line, message in errors:
            match = _HOST_FILE.search(file or "")
            if match and match["key"] in served:
                key = match["key"]
                message = _host_message([(file, _line, message)], served[key]) or message
                if served[key] == texts.get(key):
                    self._rejected[key] = (_digest(texts[key]), message, True)
                reject(key, message)
                found = True
        return found

    def _nginx_running(self) -> bool:
        """Whether an nginx master of this installation runs (ours, or a serve's when the
        CLI applies): then it holds its streams' ports itself."""
        if self.supervisor is not None and self.supervisor.running:
            return True
        return stray_master(self.paths.pid_file, self.paths.base) is not None

    def _own_listeners(self) -> set[str]:
        """Portway's own listen addresses as nginx prints them in a bind() error
        ("0.0.0.0:80", "[::]:443", "127.0.0.1:8080"): every host and the default site."""
        address = self.config.bind_address
        wildcard = {"0.0.0.0", "[::]"}
        hosts = {f"[{address}]" if ":" in address else address} if address else wildcard
        ports = (self.config.http_port, self.config.https_port)
        return {f"{host}:{port}" for host in hosts for port in ports}

    def _previous_live(self) -> Path | None:
        return self.paths.live.resolve() if self.paths.live.exists() else None

    def _go_live(self, directory: Path, generation: str) -> str | None:
        previous = self._previous_live()
        if self._live_mode() == "plain" and (directory / FRONT_FILE).exists():
            # nginx holds no front socket now: files left by an nginx that was killed
            # would make its bind() fail
            for stale in front_directory(self.paths.run).glob("*.sock"):
                stale.unlink(missing_ok=True)
        self._swap_live(directory)
        if self.supervisor is None:
            return None
        error = self.supervisor.reload(generation)
        if error is not None and previous is not None:
            self._swap_live(previous)  # nginx kept the old config; the link must say so too
        return error

    def _record(self, report: ApplyReport) -> None:
        """Store each host's outcome through its kind's model (nginx_online / nginx_err /
        nginx_serving_previous)."""
        from django.db import close_old_connections

        for kind in kinds.KINDS:
            current = {
                f"{kind.prefix}-{pk}": (online, err, previous)
                for pk, online, err, previous in kind.rows()
                .filter(enabled=True)
                .values_list("pk", "nginx_online", "nginx_err", "nginx_serving_previous")
            }
            for key, outcome in report.hosts.items():
                if not key.startswith(f"{kind.prefix}-"):
                    continue
                if current.get(key) != (outcome.online, outcome.error, outcome.serving_previous):
                    # A host edited since this apply read it has a newer status (its own
                    # preflight); the apply its edit requested will record the outcome.
                    kind.rows().filter(
                        pk=int(key.rsplit("-", 1)[1]), modified_on=self._versions.get(key)
                    ).update(
                        nginx_online=outcome.online,
                        nginx_err=outcome.error,
                        nginx_serving_previous=outcome.serving_previous,
                    )
        close_old_connections()


def _router_without_client_identity(router: ConfigFile) -> ConfigFile:
    """The router servers with `Remote-User` and `Remote-Email` removed before proxying,
    as every proxy host does (portway.access.render.location_directives): an upstream
    must never take a client's header for the login gate's word (the data plane's
    router_servers does not set them)."""
    from portway.access.render import location_directives
    from portway.nginx.config import Directive

    cleared = location_directives(None)

    def strip(node: object) -> object:
        if not isinstance(node, Directive) or node.block is None:
            return node
        block = [strip(child) for child in node.block]
        proxies = any(isinstance(c, Directive) and c.name == "proxy_pass" for c in block)
        sets = {
            c.args[0]
            for c in block
            if isinstance(c, Directive) and c.name == "proxy_set_header" and c.args
        }
        if proxies and not sets & {"Remote-User", "Remote-Email"}:
            block += cleared
        return Directive(node.name, node.args, block)

    return ConfigFile(
        router.relative_path, [strip(n) for n in router.nodes], router.host_key, router.content
    )


def fast_path_unavailable(config: conf.PortwayConfig) -> str | None:
    """Why routine changes are not pushed to nginx's shared memory, None when they are
    (PORTWAY_FAST_PATH=auto and the Lua modules are installed)."""
    if config.fast_path == "off":
        return "PORTWAY_FAST_PATH=off"
    try:
        from portway.nginx import fastpath
    except ImportError as exc:
        return f"the fast path's data plane is not available: {exc}"
    return fastpath.modules_missing()


def _upstream_names(spec: SiteSpec) -> tuple[str, ...]:
    """The forward hosts of a proxy host (its own and its custom locations'); none for
    other kinds."""
    if not isinstance(spec, ProxyHostSpec):
        return ()
    return (spec.forward_host, *(location.forward_host for location in spec.locations))


def stream_ports_in_use(spec: StreamSpec, listeners: Listeners) -> str | None:
    """Why nginx could not listen for stream `spec` now, in nginx's own words (`bind() to
    ADDRESS failed (98: Address already in use)`), else None.

    Each of the stream's listen addresses is bound once, TCP and/or UDP as the stream
    forwards, the way nginx binds it (SO_REUSEADDR for TCP; `[::]` IPv6-only), then
    closed. Only meaningful while no nginx of this installation runs (it would hold the
    ports itself).
    """
    import socket

    kinds_on = [(socket.SOCK_STREAM, "")] if spec.tcp_forwarding else []
    kinds_on += [(socket.SOCK_DGRAM, " udp")] if spec.udp_forwarding else []
    for address in listeners.stream(spec.incoming_port):
        host, _, port = address.rpartition(":")
        family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
        for kind, label in kinds_on:
            with socket.socket(family, kind) as probe:
                if kind == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    probe.bind((host.strip("[]"), int(port)))
                except OSError as exc:
                    return f"bind() to {address}{label} failed ({exc.errno}: {exc.strerror})"
    return None


def _strip_log_prefix(text: str) -> str:
    """nginx's messages without their timestamp and pid: what a person reads."""
    messages = [message for _file, _line, message in parse_errors(text)]
    return "; ".join(dict.fromkeys(messages)) or text.strip()


def _names_default_site(errors: list[tuple[str | None, int | None, str]]) -> bool:
    return any((file or "").endswith("/default.conf") for file, _line, _message in errors)


def _unlocated_message(result: TestResult) -> str:
    """nginx's message for an error that names no file (or its whole output)."""
    messages = [message for file, _line, message in result.errors if file is None]
    return "; ".join(dict.fromkeys(messages)) or _strip_log_prefix(result.output)


def _reload_suspects(
    error: str, served: dict[str, str], last_good: dict[str, str], own_listeners: set[str]
) -> list[str]:
    """Hosts to blame for a reload error that names no file.

    Only hosts changed since the live generation can have caused it. A bind() failure
    names an address: the changed hosts whose config listens on that port are the
    culprits (when none changed, any host listening there: a port a stream had was taken
    by another program while nginx was down). A bind() failure on Portway's own
    listeners (`own_listeners`, e.g. held by an nginx a killed Portway left behind, or by
    another program) is no host's fault:
    nobody is blamed, so nothing is cached as a rejection and the next apply retries.
    """
    changed = [key for key, text in served.items() if text != last_good.get(key)]
    binds = re.findall(r"bind\(\) to (\S+) failed", error)
    if any(address in own_listeners for address in binds):
        return []
    if binds:
        port = binds[0].rsplit(":", 1)[-1]

        def listens(key: str) -> bool:
            # `listen 9999`, `listen 0.0.0.0:9999 udp`, `listen [::]:9999`
            return bool(re.search(rf"\blisten\b[^;]*[\s:]{re.escape(port)}\b", served[key]))

        listening = [key for key in changed if listens(key)]
        if listening:
            return listening
        # nobody changed: nginx is starting (again) and another program took the port
        # of a host (a stream) that was live before; that host goes, the rest serve
        listening = [key for key in served if listens(key)]
        if listening:
            return listening
    return changed


def _host_message(errors: list[tuple[str | None, int | None, str]], text: str) -> str | None:
    """nginx's message about the host file whose content is `text`; None if none is.

    The file path (generated, meaningless to a person) is replaced by where the problem
    is: the line of the administrator's advanced config when it is there, and the
    offending line itself.
    """
    for file, line, message in errors:
        if _HOST_FILE.search(file or ""):
            return f"{message} ({_where(text, line)})"
    return None


def _where(text: str, line: int | None) -> str:
    lines = text.split("\n")  # nginx counts LF only, not U+2028, U+0085 or CR
    if line is None or not 1 <= line <= len(lines):
        return "in the host's generated config"
    offending = lines[line - 1].strip()
    marker = next((i for i, t in enumerate(lines) if t.strip() == ADVANCED_MARKER), None)
    if marker is not None and line - 1 > marker:
        # the advanced config ends where the server block's own directives resume
        position = line - 1 - marker
        return f"line {position} of the advanced config: {offending}"
    return f"line {line} of the host's generated config: {offending}"


# ----- background worker ---------------------------------------------------------------


class ApplyWorker:
    """Runs applies in the background, folding requests that arrive meanwhile.

    `request()` returns a ticket; `wait(ticket)` blocks until an apply that started after
    the request has finished. Many requests during one apply cost one more apply.
    """

    def __init__(self, engine: Engine, debounce: float | None = None) -> None:
        self.engine = engine
        # how long a request waits for others to fold into its apply (seconds); a fast
        # path apply is cheap, so a change should not wait for company
        if debounce is None:
            debounce = 0.005 if engine.fast_reason is None else 0.05
        self.debounce = debounce
        self._cond = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._stop = False
        self.applies = 0  # how many applies ran (many requests fold into few applies)
        self._thread = threading.Thread(target=self._run, name="nginx-apply", daemon=True)

    def start(self) -> ApplyWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def request(self) -> int:
        with self._cond:
            self._requested += 1
            self._cond.notify_all()
            return self._requested

    def wait(self, ticket: int, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._completed < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _resolution_due(self) -> bool:
        fast = self.engine._fast
        try:
            return fast is not None and self.engine._fast_push_possible() and fast.resolution_due()
        except Exception:  # never let the check stop the worker
            log.exception("checking upstream names failed")
            return False

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._completed < self._requested

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._requested == self._completed and not self._stop:
                    # upstream names of fast hosts are resolved again every 30 s: nginx
                    # cannot resolve them itself (portway.nginx.fastengine)
                    if not self._cond.wait(RESOLVE_CHECK_SECONDS) and self._resolution_due():
                        self._requested += 1
                if self._stop:
                    return
            time.sleep(self.debounce)
            with self._cond:
                target = self._requested
            try:
                self.applies += 1
                self.engine.apply()
            except Exception:  # keep serving; the next request retries
                log.exception("apply failed")
            with self._cond:
                self._completed = target
                self._cond.notify_all()


_engine: Engine | None = None
_worker: ApplyWorker | None = None


def install(engine: Engine, worker: ApplyWorker | None) -> None:
    """Make `engine` (and its worker) the process-wide ones used by services."""
    global _engine, _worker
    _engine, _worker = engine, worker


def get_engine() -> Engine | None:
    """The process-wide engine; created on first use when nginx is installed."""
    global _engine
    if _engine is None:
        try:
            _engine = Engine(conf.load())
        except Exception:  # nginx missing: services still work, status stays unknown
            log.warning("nginx engine unavailable", exc_info=True)
            return None
    return _engine


def request_apply() -> int | None:
    """Ask for the live config to be rebuilt; returns a ticket, None if no worker runs."""
    if _worker is None:
        return None
    return _worker.request()


def wait_applied(ticket: int | None, timeout: float = 120) -> bool:
    """Block until the apply covering `ticket` finished (True at once without a worker)."""
    if ticket is None or _worker is None:
        return True
    return _worker.wait(ticket, timeout)
