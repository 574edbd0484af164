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

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from portway import conf
from portway.access.render import AccessSpec, RealIpSpec
from portway.nginx import kinds
from portway.nginx.config import ConfigFile
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
    Renderer,
    SiteSpec,
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


@dataclass
class HostOutcome:
    """What the last apply did with one host."""

    online: bool
    error: str | None = None
    serving_previous: bool = False  # rejected, but its last good config stays live


@dataclass
class ApplyReport:
    """Result of one apply: the generation now live (None if nothing changed live)."""

    generation: str | None
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    error: str | None = None  # a failure not attributable to any host
    seconds: float = 0.0
    tests: int = 0  # `nginx -t` runs this apply needed


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


def load_state() -> State:
    """Enabled hosts of every kind (portway.nginx.kinds.KINDS) and settings."""
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
        # makes them 0666); they may traverse, never list
        front_directory(p.run).mkdir(exist_ok=True)
        for directory in (p.run, front_directory(p.run)):
            os.chmod(directory, 0o711)
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
        """Whether the live generation serves host `key` (e.g. "proxy-5")."""
        return (self.paths.live / "hosts" / f"{key}.conf").exists()

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

    # ----- rendering -------------------------------------------------------------------
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

        files = [
            renderer.main(
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
            ),
            renderer.default_servers(site, directory),
            *renderer.default_site_files(site),
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
        without the host passes.
        """
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
            "apply: generation %s, %d hosts, %d offline, %d nginx -t runs, %.2fs%s",
            report.generation,
            len(report.hosts),
            sum(1 for o in report.hosts.values() if not o.online),
            report.tests,
            report.seconds,
            f", error: {report.error}" if report.error else "",
        )
        return report

    def _apply_locked(self, go_live: bool = True) -> ApplyReport:
        """Test, isolate, swap and reload; see the module docstring.

        Each round either goes live or takes one host out (its new text, then its last
        good text) or falls back to the built-in default site, so the loop ends after at
        most 2 × hosts + 2 rounds. An error that names a host file costs one round; one
        that names no file is narrowed down by bisection (log2(hosts) + 2 `nginx -t`).
        """
        self.prepare()
        state = load_state()
        self._versions = state.versions
        front = self._front(state)
        host_files = {spec.key: self._render_host(front, spec) for spec in state.hosts}
        texts = {key: f.text() for key, f in host_files.items()}
        last_good = self.live_host_texts()
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
            if previous is not None and served.get(key) != previous:
                served[key] = previous
                outcomes[key] = HostOutcome(
                    False,
                    f"nginx rejected this host's new config; its previous config is still "
                    f"served. nginx said: {message}",
                    serving_previous=True,
                )
            else:
                served.pop(key, None)
                outcomes[key] = HostOutcome(
                    False,
                    "nginx rejected this host's config; the host is offline. "
                    f"nginx said: {message}",
                )

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
                reload_error = self._go_live(directory, generation)
                if reload_error is None:
                    self._prune(directory)
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

    def __init__(self, engine: Engine, debounce: float = 0.05) -> None:
        self.engine = engine
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

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._completed < self._requested

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._requested == self._completed and not self._stop:
                    self._cond.wait()
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
