"""Loopback ACME test servers: Debian's `pebble`, `pebble-challtestsrv` and BIND 9 (`named`).

Everything binds 127.0.0.1 on free high ports; nothing here talks to Let's Encrypt or any
other outside host.

    tls = PebbleTLS.create(tmp)              # pebble's HTTPS certificate + the CA to trust
    with ChallTestSrv() as dns, Pebble(tls, http_port=pw.http_port, dns=dns.dns_address) as ca:
        pw.extra_env.update(ca.portway_env())   # LE_SERVER + REQUESTS_CA_BUNDLE
        dns.add_a("elsewhere.test", "127.0.0.2")

The Debian `pebble` package ships no test certificates, so `PebbleTLS` makes a private
root and a `localhost`/127.0.0.1 certificate with `portway.testing.certs`; Portway trusts
it through REQUESTS_CA_BUNDLE exactly as certbot users do for a private ACME server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portway.testing import certs
from portway.testing.network import free_port
from portway.testing.process import terminate, wait_for

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
NAMED = shutil.which("named") or "/usr/sbin/named"


def free_udp_tcp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (DNS servers bind both)."""
    import socket

    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a DNS server")


class _Process:
    """A child process with its output in a log file, stopped on exit."""

    name = "process"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"portway-{self.name}-"))
        self.log_path = self.workdir / f"{self.name}.log"

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        terminate(self.proc)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------- pebble TLS


@dataclass
class PebbleTLS:
    """pebble's HTTPS certificate and key, and the CA bundle that trusts it."""

    cert: Path
    key: Path
    ca_bundle: Path

    @classmethod
    def create(cls, directory: Path) -> PebbleTLS:
        directory.mkdir(parents=True, exist_ok=True)
        root = certs.make_ca("Portway Test Pebble Root", key_type="ec")
        leaf = certs.make_leaf(
            root, ["localhost", "pebble"], key_type="ec", ips=["127.0.0.1"], label="pebble"
        )
        cert, key, bundle = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
        cert.write_bytes(leaf.cert_pem)
        key.write_bytes(leaf.key_pem())
        bundle.write_bytes(certs.cert_pem(root.cert))
        return cls(cert, key, bundle)


# --------------------------------------------------------------------------- challtestsrv


class ChallTestSrv(_Process):
    """`pebble-challtestsrv` as a mock DNS server only (no HTTP/TLS challenge servers).

    Every A query is answered 127.0.0.1 unless `add_a` says otherwise; AAAA queries get no
    answer. The management API (`/add-a`, `/set-txt`, `/add-caa`, ...) is on
    `management_port`.
    """

    name = "challtestsrv"

    def __init__(self) -> None:
        super().__init__()
        self.dns_port = free_udp_tcp_port()
        self.management_port = free_port()

    @property
    def dns_address(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def start(self) -> ChallTestSrv:
        self._spawn(
            [
                CHALLTESTSRV,
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                self.dns_address,
                "-management",
                f"127.0.0.1:{self.management_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ]
        )
        wait_for(self._ready, 15)
        return self

    def _ready(self) -> bool:
        self._check_alive()
        import dns.exception
        import dns.message
        import dns.query

        query = dns.message.make_query("ready.test", "A")
        try:
            answer = dns.query.udp(query, "127.0.0.1", port=self.dns_port, timeout=0.5)
        except dns.exception.Timeout:
            return False
        return bool(answer.answer)

    def manage(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.management_port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.read()

    def add_a(self, host: str, *addresses: str) -> None:
        """Answer A queries for `host` with `addresses` (instead of 127.0.0.1)."""
        self.manage("/add-a", {"host": host, "addresses": list(addresses)})

    def clear_a(self, host: str) -> None:
        self.manage("/clear-a", {"host": host})

    def add_caa(self, host: str, issuer: str) -> None:
        """A CAA issue record for `host` allowing only `issuer`."""
        self.manage("/add-caa", {"host": host, "policies": [{"tag": "issue", "value": issuer}]})

    def __enter__(self) -> ChallTestSrv:
        return self.start()


# --------------------------------------------------------------------------- pebble


class Pebble(_Process):
    """Debian's `pebble` ACME server on 127.0.0.1.

    Args:
        tls: its HTTPS certificate (`PebbleTLS`).
        http_port: where it sends HTTP-01 validation requests (Portway's nginx HTTP port).
        dns: "127.0.0.1:<port>" of the DNS server it resolves names and TXT records with.
        blocked: domains it refuses to issue for (`domainBlocklist`).
        validity_seconds: lifetime of the certificates it issues (short to test renewal).
    """

    name = "pebble"

    def __init__(
        self,
        tls: PebbleTLS,
        http_port: int,
        dns: str,
        blocked: list[str] | None = None,
        validity_seconds: int | None = None,
    ) -> None:
        super().__init__()
        self.tls = tls
        self.http_port = http_port
        self.dns = dns
        self.port = free_port()
        self.management_port = free_port()
        self.blocked = blocked or []
        self.validity_seconds = validity_seconds

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def portway_env(self) -> dict[str, str]:
        """Environment that points a Portway process at this pebble."""
        return {"LE_SERVER": self.directory_url, "REQUESTS_CA_BUNDLE": str(self.tls.ca_bundle)}

    def start(self) -> Pebble:
        config: dict[str, Any] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.tls.cert),
            "privateKey": str(self.tls.key),
            "httpPort": self.http_port,
            "tlsPort": free_port(),  # unused: Portway answers HTTP-01 and DNS-01 only
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "domainBlocklist": self.blocked,
        }
        if self.validity_seconds is not None:
            config["certificateValidityPeriod"] = self.validity_seconds
        path = self.workdir / "pebble-config.json"
        path.write_text(json.dumps({"pebble": config}))
        self._spawn(
            [PEBBLE, "-config", str(path), "-dnsserver", self.dns],
            env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        )
        wait_for(self._ready, 20)
        return self

    def _ready(self) -> bool:
        self._check_alive()
        return bool(self.get(self.directory_url))

    def get(self, url: str) -> bytes:
        import ssl

        context = ssl.create_default_context(cafile=str(self.tls.ca_bundle))
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.read()

    def root_pem(self) -> bytes:
        """The root certificate this pebble run issues under (regenerated every start)."""
        return self.get(f"https://127.0.0.1:{self.management_port}/roots/0")

    def cert_status(self, serial: int) -> dict[str, Any]:
        """Pebble's view of an issued certificate: `{"Status": "Valid"|"Revoked", ...}`."""
        url = f"https://127.0.0.1:{self.management_port}/cert-status-by-serial/{serial:x}"
        return json.loads(self.get(url))

    def __enter__(self) -> Pebble:
        return self.start()


# --------------------------------------------------------------------------- BIND 9


class Bind9(_Process):
    """A real BIND 9 `named` on 127.0.0.1, authoritative for `zone`, accepting RFC 2136
    dynamic updates signed with a TSIG key (HMAC-SHA256).

    Every name in the zone has an A record 127.0.0.1 (wildcard), so pebble can resolve
    names through it as well as read the `_acme-challenge` TXT records the RFC 2136
    plugin adds.
    """

    name = "named"

    def __init__(self, zone: str = "dns01.test") -> None:
        super().__init__()
        self.zone = zone
        self.port = free_udp_tcp_port()
        self.control_port = free_port()
        self.key_name = "portway-test-key"
        self.key_secret = base64.b64encode(os.urandom(32)).decode()
        self.algorithm = "HMAC-SHA256"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def credentials(self, propagation_seconds: int = 0) -> str:
        """The RFC 2136 credentials INI text for Portway's DNS-01 form."""
        return (
            "dns_rfc2136_server = 127.0.0.1\n"
            f"dns_rfc2136_port = {self.port}\n"
            f"dns_rfc2136_name = {self.key_name}\n"
            f"dns_rfc2136_secret = {self.key_secret}\n"
            f"dns_rfc2136_algorithm = {self.algorithm}\n"
        )

    def start(self) -> Bind9:
        work = self.workdir
        os.chmod(work, 0o755)
        zone_file = work / f"{self.zone}.zone"
        zone_file.write_text(
            f"$ORIGIN {self.zone}.\n$TTL 1\n"
            f"@ IN SOA ns.{self.zone}. hostmaster.{self.zone}. 1 60 60 600 1\n"
            f"@ IN NS ns.{self.zone}.\n"
            "@ IN A 127.0.0.1\n"
            "* IN A 127.0.0.1\n"
        )
        conf = work / "named.conf"
        conf.write_text(
            f'key "{self.key_name}" {{ algorithm hmac-sha256; secret "{self.key_secret}"; }};\n'
            "options {\n"
            f'    directory "{work}";\n'
            f'    pid-file "{work}/named.pid";\n'
            f'    session-keyfile "{work}/session.key";\n'
            f"    listen-on port {self.port} {{ 127.0.0.1; }};\n"
            "    listen-on-v6 { none; };\n"
            "    recursion no;\n"
            "    dnssec-validation no;\n"
            "    notify no;\n"
            "    max-cache-ttl 1;\n"
            # any query named might send leaves from loopback, so it can never leave this host
            "    query-source address 127.0.0.1;\n"
            "};\n"
            "controls { };\n"
            f'zone "{self.zone}" {{\n'
            "    type primary;\n"
            f'    file "{zone_file}";\n'
            f'    allow-update {{ key "{self.key_name}"; }};\n'
            "};\n"
        )
        args = [NAMED, "-g", "-c", str(conf)]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self._spawn(args)
        wait_for(self._ready, 20)
        return self

    def _ready(self) -> bool:
        self._check_alive()
        import dns.exception
        import dns.message
        import dns.query

        query = dns.message.make_query(f"x.{self.zone}", "A")
        try:
            answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
        except dns.exception.Timeout:
            return False
        return bool(answer.answer)

    def txt(self, name: str) -> list[str]:
        """The TXT strings currently published for `name`."""
        import dns.message
        import dns.query

        answer = dns.query.udp(
            dns.message.make_query(name, "TXT"), "127.0.0.1", port=self.port, timeout=2
        )
        return [
            b"".join(r.strings).decode()
            for rrset in answer.answer
            for r in rrset  # type: ignore[attr-defined]
        ]

    def __enter__(self) -> Bind9:
        return self.start()


def wait_status(
    portway: Any, cert_id: int, statuses: tuple[str, ...] = ("valid", "failed"), timeout=90
) -> dict:
    """Poll GET /api/portway/certificates/{id} (Portway's view, with the ACME state in
    `meta`) until meta.acme_status is one of `statuses`."""
    started = time.monotonic()

    def done() -> dict | None:
        status, body = portway.api("GET", f"/api/portway/certificates/{cert_id}")
        assert status == 200, body
        return body if body["meta"].get("acme_status") in statuses else None

    body = wait_for(done, timeout, interval=0.2)
    body["_seconds"] = round(time.monotonic() - started, 2)
    return body


# --------------------------------------------------------------------------- stacks


@dataclass
class AcmeStack:
    """A running Portway wired to a pebble, with the DNS server both resolve names with."""

    portway: Any
    pebble: Pebble
    dns: Any  # ChallTestSrv or Bind9

    def request(self, domains: list[str], **meta: Any) -> dict:
        """POST a letsencrypt certificate; returns the 201 body, NPM's certificate object
        (the ACME state is in `wait`'s answer, Portway's view of the certificate)."""
        status, body = self.portway.api(
            "POST",
            "/api/nginx/certificates",
            {"provider": "letsencrypt", "domain_names": domains, "meta": meta},
        )
        assert status == 201, body
        return body

    def wait(self, cert_id: int, statuses: tuple[str, ...] = ("valid", "failed"), timeout=90):
        return wait_status(self.portway, cert_id, statuses, timeout)


@contextlib.contextmanager
def acme_stack(
    data_dir: Path,
    tls: PebbleTLS,
    *,
    dns: str = "challtestsrv",
    pebble_http_port: int | None = None,
    blocked: list[str] | None = None,
    validity_seconds: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[AcmeStack]:
    """Start challtestsrv (or BIND 9), a Portway using it as resolver, and a pebble whose
    HTTP-01 validations go to that Portway's nginx (or to `pebble_http_port`)."""
    from portway.testing.process import PortwayProcess

    with contextlib.ExitStack() as stack:
        server: Any = stack.enter_context(ChallTestSrv() if dns == "challtestsrv" else Bind9())
        address = server.dns_address if dns == "challtestsrv" else server.address
        portway = PortwayProcess(data_dir, env={"PORTWAY_RESOLVER": address, **(env or {})})
        pebble = Pebble(
            tls,
            http_port=pebble_http_port or portway.http_port,
            dns=address,
            blocked=blocked,
            validity_seconds=validity_seconds,
        )
        # ports are only picked, not bound yet: never let two servers pick the same one
        taken = {portway.admin_port, portway.http_port, portway.https_port}
        while {pebble.port, pebble.management_port} & taken:
            pebble.port, pebble.management_port = free_port(), free_port()
        portway.extra_env.update(pebble.portway_env())
        stack.callback(portway.close)
        portway.start()
        stack.enter_context(pebble)
        yield AcmeStack(portway, pebble, server)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pebble_tls(tmp_path_factory: pytest.TempPathFactory) -> PebbleTLS:
    """pebble's HTTPS certificate and the CA bundle Portway trusts it with."""
    return PebbleTLS.create(tmp_path_factory.mktemp("pebble-tls"))


BLOCKED_DOMAIN = "blocked.acme.test"


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, pebble_tls: PebbleTLS) -> Iterator[AcmeStack]:
    """One Portway + pebble + challtestsrv for a test module (tests use distinct names).

    pebble refuses `BLOCKED_DOMAIN`; renewals are checked every second.
    """
    with acme_stack(
        tmp_path_factory.mktemp("acme") / "data",
        pebble_tls,
        blocked=[BLOCKED_DOMAIN],
        env={"PORTWAY_RENEW_INTERVAL": "1", "PORTWAY_RENEW_RETRY_SECONDS": "2"},
    ) as stack:
        yield stack
