"""The fast path's data plane through a real nginx: the Lua router serving routes and
certificates from shared memory, changed by pushes over the control socket.

One nginx (started here, 127.0.0.1 high ports, no Portway serve) serves every test of
the module; each test changes the state with `Router.apply` (snapshot + push, as the
engine does) and checks what a client sees. The nginx master and worker pids must not
change across all of it (no reload, no restart), until the last test kills nginx and
starts it again from the snapshot alone.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from portway.conf import PortwayConfig
from portway.nginx import fastpath
from portway.nginx.engine import ensure_default_certificate
from portway.nginx.process import accepting_workers
from portway.nginx.render import (
    CertificateRef,
    DefaultSite,
    Paths,
    ProxyHostSpec,
    Renderer,
)
from portway.nginx.render_dead import DeadHostSpec
from portway.nginx.render_redirection import RedirectionHostSpec
from portway.testing.certs import make_leaf
from portway.testing.network import UpstreamServer, free_port
from portway.testing.process import _let_workers_traverse, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(fastpath.modules_missing() is not None, reason="no Lua module"),
]


class Router:
    """One nginx running the router, and the state last pushed to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.http_port, self.https_port = free_port(), free_port()
        self.config = PortwayConfig(
            data_dir=root / "data",
            admin_port=0,
            http_port=self.http_port,
            https_port=self.https_port,
            bind_address="127.0.0.1",
            disable_ipv6=True,
            nginx_binary="nginx",
            resolver="",
            x_frame_options="DENY",
            public_https_port=self.https_port,
        )
        self.paths = Paths(self.config.data_dir)
        self.renderer = Renderer(self.config, self.paths)
        self.dataplane = fastpath.Dataplane(self.paths, self.config.public_https_port)
        self.state: fastpath.FastState | None = None
        self.generation = 0
        self.proc: subprocess.Popen | None = None
        self._prepare()

    def _prepare(self) -> None:
        p = self.paths
        for directory in (p.base, p.generations, p.temp, p.cache, p.logs):
            directory.mkdir(parents=True, exist_ok=True)
        (p.acme_webroot / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)
        p.run.mkdir(mode=0o700, exist_ok=True)
        p.fastpath_socket.parent.mkdir(mode=0o700, exist_ok=True)
        _let_workers_traverse(self.root)
        for directory in (self.root, p.data_dir, p.logs, p.generations):
            os.chmod(directory, 0o711)
        for directory in (p.base, p.temp, p.cache, p.acme_webroot):
            os.chmod(directory, 0o755)
        for directory in (
            p.acme_webroot / ".well-known",
            p.acme_webroot / ".well-known/acme-challenge",
        ):
            os.chmod(directory, 0o755)
        ensure_default_certificate(p.default_cert_dir)

    def write_config(
        self, state: fastpath.FastState, slow: list[ProxyHostSpec], http2: bool = True
    ) -> Path:
        directory = self.paths.generations / "g"
        (directory / "hosts").mkdir(parents=True, exist_ok=True)
        for spec in slow:
            host_file = self.renderer.proxy_host(spec)
            (directory / host_file.relative_path).write_text(host_file.text())
        main = self.renderer.main(
            "g",
            1,
            64,
            fast_main=self.dataplane.main_directives(),
            fast_http=self.dataplane.http_directives(state),
        )
        for config_file in (main, self.dataplane.router_servers(self.renderer, http2)):
            (directory / config_file.relative_path).write_text(config_file.text())
        return directory / "nginx.conf"

    def start(self) -> None:
        conf = self.paths.generations / "g" / "nginx.conf"
        for stale in (self.paths.status_socket, self.dataplane.control_socket):
            stale.unlink(missing_ok=True)  # left by a killed nginx (as NginxSupervisor does)
        self.proc = subprocess.Popen(
            ["nginx", "-p", f"{self.paths.base}/", "-c", str(conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: self.dataplane.generation() is not None, timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def pids(self) -> tuple[int, tuple[int, ...]]:
        assert self.proc is not None
        return self.proc.pid, tuple(sorted(accepting_workers(self.proc.pid)))

    def build(self, specs: list, site: DefaultSite = DefaultSite()) -> tuple:
        self.generation += 1
        return fastpath.fast_state(specs, site, generation=self.generation)

    def apply(self, specs: list, site: DefaultSite = DefaultSite()) -> dict[str, str]:
        """What the engine does on the fast path: state, snapshot, push, read-back."""
        state, errors = self.build(specs, site)
        return {**errors, **self.push(state)}

    def push(self, state: fastpath.FastState) -> dict[str, str]:
        self.dataplane.write_snapshot(state)
        errors = self.dataplane.push(self.state, state)
        assert self.dataplane.generation() == state.generation
        self.state = state
        return errors

    # ----- clients ---------------------------------------------------------------------
    def http(
        self, host: str, path: str = "/", headers: dict | None = None, method: str = "GET"
    ) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request(method, path, headers={"Host": host, **(headers or {})})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def tls(self, sni: str | None) -> ssl.SSLSocket:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=10)
        try:
            return context.wrap_socket(raw, server_hostname=sni)
        except BaseException:
            raw.close()
            raise

    def served_certificate(self, sni: str | None) -> x509.Certificate:
        with self.tls(sni) as conn:
            return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))

    def https(self, host: str, path: str = "/", sni: str | None = "") -> tuple[int, dict, bytes]:
        with self.tls(host if sni == "" else sni) as conn:
            conn.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            response = http.client.HTTPResponse(conn)
            response.begin()
            return response.status, dict(response.getheaders()), response.read()


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [a.value for a in cert.subject]
    return san.value.get_values_for_type(x509.DNSName)


def _upstream(body: bytes) -> str:
    return json.loads(body)["upstream"]


SLOW_HOST_ID = 900
# tests that reload or restart nginx on purpose (they reset the pids checked after each)
RESTARTS = {"test_reload_serves_the_snapshot", "test_restart_after_kill_serves_the_snapshot"}


@pytest.fixture(scope="module")
def router(tmp_path_factory, upstreams):
    router = Router(tmp_path_factory.mktemp("fastpath"))
    state, _ = router.build([])
    # a slow host (its own server block and certificate) next to the router
    slow = proxy(
        SLOW_HOST_ID,
        ("slow.test",),
        upstreams[1].port,
        certificate=certificate(router.root, ["slow.test"], "slow"),
        advanced_config="add_header X-Slow yes;",
    )
    assert fastpath.ineligible(slow) == "advanced config"
    router.write_config(state, [slow])
    router.dataplane.write_snapshot(state)
    router.state = state
    router.start()
    pids = router.pids()
    router.started_pids = pids
    yield router
    router.stop()


@pytest.fixture(scope="module")
def upstreams():
    with UpstreamServer("a") as a, UpstreamServer("b") as b:
        yield a, b


@pytest.fixture(autouse=True)
def same_nginx(request, router):
    """No test may reload or restart nginx (the kill test checks its own restart)."""
    yield
    if request.node.name not in RESTARTS:
        assert router.pids() == router.started_pids


def proxy(host_id: int, names: tuple[str, ...], port: int, **options) -> ProxyHostSpec:
    return ProxyHostSpec(
        id=host_id,
        domain_names=names,
        forward_scheme=options.pop("forward_scheme", "http"),
        forward_host=options.pop("forward_host", "127.0.0.1"),
        forward_port=port,
        **options,
    )


def certificate(directory: Path, names: list[str], label: str) -> CertificateRef:
    chain, key = make_leaf(None, names, key_type="ec", label=label).write(directory / label)
    return CertificateRef(abs(hash(label)) % 10000, chain, key)


# ----- routes ----------------------------------------------------------------------------


def test_route_add_change_and_remove_reach_the_next_request(router, upstreams):
    a, b = upstreams
    assert router.http("r.test")[0] == 200  # the default site (congratulations)
    assert b"Congratulations" in router.http("r.test")[2]
    router.apply([proxy(1, ("r.test",), a.port)])
    status, _, body = router.http("r.test")
    assert (status, _upstream(body)) == (200, "a")
    router.apply([proxy(1, ("r.test",), b.port)])
    assert _upstream(router.http("r.test")[2]) == "b"
    router.apply([])
    assert b"Congratulations" in router.http("r.test")[2]


def test_names_change(router, upstreams):
    a, _ = upstreams
    router.apply([proxy(1, ("one.test", "two.test"), a.port)])
    assert _upstream(router.http("two.test")[2]) == "a"
    router.apply([proxy(1, ("one.test", "three.test"), a.port)])
    assert b"Congratulations" in router.http("two.test")[2]
    assert _upstream(router.http("three.test")[2]) == "a"
    assert _upstream(router.http("ONE.test")[2]) == "a"  # names are case-insensitive


def test_headers_sent_upstream(router, upstreams):
    a, _ = upstreams
    router.apply([proxy(1, ("h.test",), a.port)])
    answer = json.loads(router.http("h.test", "/p?q=1")[2])
    assert answer["host"] == "h.test"
    assert answer["path"] == "/p?q=1"
    assert (answer["x_forwarded_proto"], answer["x_forwarded_for"]) == ("http", "127.0.0.1")
    assert answer["x_real_ip"] == "127.0.0.1"


def test_unresolvable_upstream_answers_502(router):
    router.apply([proxy(1, ("gone.test",), 9, forward_host="no-such-name.invalid")])
    assert router.http("gone.test")[0] == 502


def test_upstream_name_with_ipv4_and_ipv6_addresses(router):
    """A name that resolves to both families, as `localhost` does with Debian's default
    /etc/hosts (127.0.0.1 and ::1): every request is answered, by either address."""
    with UpstreamServer("v4") as v4, UpstreamServer("v6", v4.port, "::1") as _v6:
        spec = proxy(1, ("dual.test",), v4.port, forward_host="dual.upstream")
        router.generation += 1
        state, errors = fastpath.fast_state(
            [spec],
            DefaultSite(),
            lambda name: ["127.0.0.1", "::1"],
            generation=router.generation,
        )
        assert errors == {} and router.push(state) == {}
        answers = [router.http("dual.test") for _ in range(6)]
        assert [status for status, _, _ in answers] == [200] * 6
        assert {_upstream(body) for _, _, body in answers} == {"v4", "v6"}


def test_upstream_connections_are_reused(router, upstreams):
    a, _ = upstreams
    router.apply([proxy(1, ("pool.test",), a.port)])
    ports = Counter(
        json.loads(router.http("pool.test", f"/{i}")[2])["peer_port"] for i in range(40)
    )
    # one pool per worker: a few connections, not one per request
    assert len(ports) <= 4, ports


def test_https_upstream_with_sni_and_reuse(router, tmp_path):
    from portway.nginx.tests.test_upstream_keepalive_e2e import TLSUpstream

    with TLSUpstream("tls", tmp_path) as upstream:
        router.apply(
            [
                proxy(
                    1,
                    ("tlsup.test",),
                    upstream.port,
                    forward_scheme="https",
                    forward_host="localhost",
                )
            ]
        )
        ports = Counter()
        for index in range(20):
            status, _, body = router.http("tlsup.test", f"/{index}")
            assert status == 200, body
            answer = json.loads(body)
            assert answer["upstream"] == "tls"
            ports[answer["peer_port"]] += 1
        assert upstream.refused == 0  # SNI "localhost" every time
        assert len(ports) <= 4 and upstream.handshakes <= 8, (ports, upstream.handshakes)


# ----- certificates ----------------------------------------------------------------------


def test_certificate_by_sni(router, upstreams, tmp_path):
    a, _ = upstreams
    first = certificate(tmp_path, ["s1.test"], "s1")
    second = certificate(tmp_path, ["s2.test", "s2b.test"], "s2")
    router.apply(
        [
            proxy(1, ("s1.test",), a.port, certificate=first),
            proxy(2, ("s2.test", "s2b.test"), a.port, certificate=second),
            proxy(3, ("plain.test",), a.port),
        ]
    )
    assert _names(router.served_certificate("s1.test")) == ["s1.test"]
    assert _names(router.served_certificate("s2b.test")) == ["s2.test", "s2b.test"]
    status, _, body = router.https("s1.test")
    assert (status, json.loads(body)["x_forwarded_proto"]) == (200, "https")
    for sni in ("unknown.test", None, "plain.test"):
        assert _names(router.served_certificate(sni)) == ["portway-default"]
    # a host without a certificate is not served over HTTPS (the default site is)
    assert b"Congratulations" in router.https("plain.test")[2]
    # the certificate changes with the push
    renewed = certificate(tmp_path, ["s1.test", "renewed.s1.test"], "s1-renewed")
    router.apply([proxy(1, ("s1.test",), a.port, certificate=renewed)])
    assert _names(router.served_certificate("s1.test")) == ["s1.test", "renewed.s1.test"]
    assert _names(router.served_certificate("s2.test")) == ["portway-default"]


def test_wildcard_certificate_entry(router, upstreams, tmp_path):
    a, _ = upstreams
    wildcard = certificate(tmp_path, ["*.wild.test"], "wild")
    state, errors = router.build([proxy(1, ("a.wild.test",), a.port, certificate=wildcard)])
    assert errors == {}
    state.sni["*.wild.test"] = state.sni["a.wild.test"]
    router.push(state)
    assert _names(router.served_certificate("other.wild.test")) == ["*.wild.test"]
    assert _names(router.served_certificate("deep.other.wild.test")) == ["portway-default"]


def test_certificate_that_does_not_load_is_refused(router, upstreams, tmp_path):
    a, _ = upstreams
    good = certificate(tmp_path, ["bad.test"], "good")
    router.apply([proxy(1, ("bad.test",), a.port, certificate=good)])
    # checked in Python first: a key that does not match, a file that is no certificate
    other = certificate(tmp_path, ["x.test"], "other")
    mismatched = CertificateRef(9, good.fullchain, other.key)
    _, errors = router.build([proxy(1, ("bad.test",), a.port, certificate=mismatched)])
    assert "key values mismatch" in errors["proxy-1"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    _, errors = router.build(
        [proxy(1, ("bad.test",), a.port, certificate=CertificateRef(8, garbage, good.key))]
    )
    assert "cannot load certificate" in errors["proxy-1"]
    # and by the router itself: the entry is refused, the old certificate still served
    state, errors = router.build([proxy(1, ("bad.test",), a.port, certificate=good)])
    fp = state.sni["bad.test"]
    entry = state.certs.pop(fp)
    broken = replace(entry, chain_pem=entry.chain_pem.replace("M", "!", 3))
    state.certs["broken"] = broken
    state.sni["bad.test"] = "broken"
    pushed = router.push(state)
    assert "certificate refused" in pushed["proxy-1"]
    assert _names(router.served_certificate("bad.test")) == ["bad.test"]
    assert router.https("bad.test")[0] == 200


def test_444_default_site_refuses_unknown_handshakes(router, upstreams, tmp_path):
    a, _ = upstreams
    known = certificate(tmp_path, ["known.test"], "known")
    router.apply([proxy(1, ("known.test",), a.port, certificate=known)], DefaultSite("444"))
    for sni in ("unknown.test", None):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            router.served_certificate(sni)
    assert _names(router.served_certificate("known.test")) == ["known.test"]
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        router.http("unknown.test")
    router.apply([proxy(1, ("known.test",), a.port, certificate=known)])
    assert _names(router.served_certificate("unknown.test")) == ["portway-default"]


def test_slow_host_keeps_its_own_server_block(router, upstreams):
    a, _ = upstreams
    router.apply([proxy(1, ("fast.test",), a.port)])
    assert _names(router.served_certificate("slow.test")) == ["slow.test"]
    status, headers, body = router.https("slow.test")
    assert (status, headers.get("X-Slow"), _upstream(body)) == (200, "yes", "b")
    assert router.http("slow.test")[1].get("X-Slow") == "yes"
    assert "X-Slow" not in router.http("fast.test")[1]


# ----- options ---------------------------------------------------------------------------


def test_force_ssl_hsts_and_forwarded_proto(router, upstreams, tmp_path):
    a, _ = upstreams
    cert = certificate(tmp_path, ["f.test", "t.test"], "forced")
    router.apply(
        [
            proxy(1, ("f.test",), a.port, certificate=cert, ssl_forced=True, hsts_enabled=True),
            proxy(
                2,
                ("t.test",),
                a.port,
                certificate=cert,
                ssl_forced=True,
                hsts_enabled=True,
                hsts_subdomains=True,
                trust_forwarded_proto=True,
            ),
        ]
    )
    status, headers, _ = router.http("f.test", "/x?y=1")
    assert status == 301
    assert headers["Location"] == f"https://f.test:{router.https_port}/x?y=1"
    status, headers, _ = router.https("f.test")
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=63072000; preload"
    # an outer proxy said https: no redirect loop; it said http: redirect
    status, _, body = router.http("t.test", headers={"X-Forwarded-Proto": "https"})
    assert (status, json.loads(body)["x_forwarded_proto"]) == (200, "https")
    assert router.http("t.test", headers={"X-Forwarded-Proto": "http"})[0] == 301
    assert router.http("f.test", headers={"X-Forwarded-Proto": "https"})[0] == 301
    assert "includeSubDomains" in router.https("t.test")[1]["Strict-Transport-Security"]


def test_asset_caching(router, upstreams):
    a, _ = upstreams
    router.apply(
        [proxy(1, ("cached.test",), a.port, caching_enabled=True), proxy(2, ("u.test",), a.port)]
    )
    statuses = [router.http("cached.test", "/app.css")[1].get("X-Cache-Status") for _ in range(2)]
    assert statuses == ["MISS", "HIT"]
    assert router.http("cached.test", "/app.css")[1].get("Cache-Control") == "max-age=86400"
    assert "X-Cache-Status" not in router.http("cached.test", "/page")[1]
    assert "X-Cache-Status" not in router.http("u.test", "/app.css")[1]


def test_acme_challenge_before_any_route(router, upstreams, tmp_path):
    a, _ = upstreams
    cert = certificate(tmp_path, ["acme.test"], "acme")
    router.apply(
        [proxy(1, ("acme.test",), a.port, certificate=cert, ssl_forced=True, block_exploits=True)],
        DefaultSite("444"),
    )
    token = router.paths.acme_webroot / ".well-known" / "acme-challenge" / "tok-123"
    token.write_text("tok-123.key-authorization")
    token.chmod(0o644)
    try:
        for host in ("acme.test", "nobody.test"):  # a Force-SSL host, an unknown name
            status, _, body = router.http(host, "/.well-known/acme-challenge/tok-123")
            assert (status, body) == (200, b"tok-123.key-authorization")
    finally:
        token.unlink()
        router.apply([])


def test_block_exploits(router, upstreams):
    a, _ = upstreams
    router.apply(
        [
            proxy(1, ("bx.test",), a.port, block_exploits=True),
            proxy(2, ("open.test",), a.port),
        ]
    )
    assert router.http("bx.test", "/?q=union+all+select+1")[0] == 403
    assert router.http("bx.test", "/../etc/passwd")[0] in (400, 403)
    assert router.http("bx.test", "/", headers={"User-Agent": "sqlmap/1.0"})[0] == 403
    assert router.http("bx.test", "/fine?q=1")[0] == 200
    assert router.http("open.test", "/?q=union+all+select+1")[0] == 200


def test_redirection_and_404_hosts(router):
    router.apply(
        [
            RedirectionHostSpec(
                id=1,
                domain_names=("old.test",),
                forward_http_code=308,
                forward_scheme="https",
                forward_domain_name="new.example",
                preserve_path=True,
            ),
            RedirectionHostSpec(
                id=2,
                domain_names=("old2.test",),
                forward_http_code=301,
                forward_scheme="auto",
                forward_domain_name="new.example/landing",
            ),
            DeadHostSpec(id=3, domain_names=("dead.test",)),
        ]
    )
    status, headers, _ = router.http("old.test", "/a/b?c=d")
    assert (status, headers["Location"]) == (308, "https://new.example/a/b?c=d")
    status, headers, _ = router.http("old2.test", "/a")
    assert (status, headers["Location"]) == (301, "http://new.example/landing")
    assert router.http("dead.test")[0] == 404


def test_default_site_values(router):
    router.apply([], DefaultSite("404"))
    assert router.http("nobody.test")[0] == 404
    router.apply([], DefaultSite("redirect", redirect="https://elsewhere.example/"))
    status, headers, _ = router.http("nobody.test", "/x")
    assert (status, headers["Location"]) == (307, "https://elsewhere.example/")
    router.apply([], DefaultSite("html", html="<p>$host ${x} mine</p>"))
    status, headers, body = router.http("nobody.test", method="POST")
    assert (status, body) == (200, b"<p>$host ${x} mine</p>")
    assert headers["Content-Type"].startswith("text/html")
    router.apply([])
    assert b"Congratulations" in router.http("nobody.test")[2]


def test_per_host_access_log(router, upstreams):
    a, _ = upstreams
    router.apply([proxy(41, ("logged.test",), a.port)])
    router.http("logged.test", "/seen-in-the-log")
    log = router.paths.host_log("proxy-41", "access")
    wait_for(lambda: "/seen-in-the-log" in log.read_text())
    router.http("unrouted.test", "/not-a-host")
    main_log = router.paths.logs / "nginx-access.log"
    wait_for(lambda: "/not-a-host" in main_log.read_text())
    assert "/not-a-host" not in log.read_text()


# ----- long-lived connections --------------------------------------------------------------


class EchoWebSocketUpstream:
    """Answers an upgrade with 101, then echoes every byte until the client closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upgrades = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            head, _, rest = request.partition(b"\r\n\r\n")
            if b"upgrade: websocket" not in head.lower():
                body = b'{"upstream": "echo"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                return
            self.upgrades += 1
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n" + rest
            )
            while chunk := conn.recv(4096):
                conn.sendall(chunk)

    def close(self) -> None:
        self.listener.close()


def test_websocket_and_keepalive_survive_50_pushes(router, upstreams):
    a, b = upstreams
    echo = EchoWebSocketUpstream()
    try:
        hosts = [proxy(1, ("ws.test",), echo.port, allow_websocket_upgrade=True)]
        router.apply([*hosts, proxy(2, ("ka.test",), a.port)])
        ws = socket.create_connection(("127.0.0.1", router.http_port), timeout=10)
        ws.sendall(
            b"GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += ws.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        keepalive = http.client.HTTPConnection("127.0.0.1", router.http_port, timeout=10)
        for index in range(50):
            upstream = (a, b)[index % 2]
            router.apply(
                [
                    *hosts,
                    proxy(2, ("ka.test",), upstream.port),
                    proxy(3 + index, (f"n{index}.test",), a.port),
                ]
            )
            message = f"ping {index}\n".encode()
            ws.sendall(message)
            received = b""
            while len(received) < len(message):
                chunk = ws.recv(4096)
                assert chunk, "the WebSocket was closed"
                received += chunk
            assert received == message
            keepalive.request("GET", f"/{index}", headers={"Host": "ka.test"})
            response = keepalive.getresponse()
            assert _upstream(response.read()) == upstream.name
        keepalive.close()
        ws.close()
        assert echo.upgrades == 1
    finally:
        echo.close()


def test_reload_serves_the_snapshot(router, upstreams):
    """A reload (the slow path) keeps the shared memory and loads the snapshot into it:
    what the snapshot adds is served, what it no longer has is gone."""
    a, b = upstreams
    router.apply([proxy(1, ("kept.test",), a.port), proxy(2, ("dropped.test",), a.port)])
    state, _ = router.build([proxy(1, ("kept.test",), b.port), proxy(3, ("added.test",), b.port)])
    router.dataplane.write_snapshot(state)  # not pushed: only the reload brings it
    assert router.proc is not None
    old_workers = router.pids()[1]
    router.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: set(router.pids()[1]).isdisjoint(old_workers) and router.pids()[1])
    wait_for(lambda: router.dataplane.generation() == state.generation)
    wait_for(lambda: _upstream(router.http("added.test")[2]) == "b")
    assert _upstream(router.http("kept.test")[2]) == "b"
    assert b"Congratulations" in router.http("dropped.test")[2]
    router.state = state
    router.started_pids = router.pids()
    # pushes go on as before
    router.apply([proxy(1, ("kept.test",), a.port)])
    assert _upstream(router.http("kept.test")[2]) == "a"
    assert b"Congratulations" in router.http("added.test")[2]


# ----- restart -----------------------------------------------------------------------------


def test_restart_after_kill_serves_the_snapshot(router, upstreams, tmp_path):
    a, b = upstreams
    cert = certificate(tmp_path, ["k.test"], "kill")
    router.apply([proxy(1, ("k.test",), b.port, certificate=cert)], DefaultSite("404"))
    generation = router.generation
    assert router.proc is not None
    os.killpg(router.proc.pid, signal.SIGKILL)
    router.proc.wait()
    wait_for(lambda: not accepting_workers(router.proc.pid), timeout=10)
    time.sleep(0.2)  # the killed workers release the listening sockets
    router.start()  # no push: only the snapshot
    assert router.dataplane.generation() == generation
    assert _upstream(router.http("k.test")[2]) == "b"
    assert _names(router.served_certificate("k.test")) == ["k.test"]
    assert router.http("r.test")[0] == 404
    router.started_pids = router.pids()
