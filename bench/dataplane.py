"""Data-plane benchmark: the same N proxied hosts through Portway's nginx config, a minimal
hand-written nginx config, Caddy and HAProxy, one after the other on this machine.

    python bench/dataplane.py                       # N = 1 and 1,000
    python bench/dataplane.py --quick               # N = 1 and 100, 5 s per load
    python bench/dataplane.py --with-10000          # N = 1, 1,000 and 10,000
    python bench/dataplane.py --portway-env PORTWAY_FAST_PATH=off   # Portway's reload path
    python bench/dataplane.py --portway-src /work/main/src --proxies portway-render
                                                    # the config another tree renders, no serve

Every proxy gets N hosts (h<i>.bench.test, and "localhost" as host N//2, the one the load
targets: wrk takes the SNI and Host from its URL) with one wildcard certificate, HTTP and
HTTPS, all forwarding to one upstream (a separate nginx answering a fixed 10-byte body).
For each proxy and N it measures with wrk (-t2 -c32): proxied requests/s and p99 latency
over HTTP keep-alive and HTTPS keep-alive, new TLS handshakes/s (HTTPS with
`Connection: close`: one full handshake per request), and the memory of the proxy's
processes afterwards (RSS sum, and PSS, which counts shared pages once). "portway" is a
real `portway serve` (hosts inserted into its database, made live by one API change);
for it the table also has Portway's own RSS and the p50 time of the API's list of all
hosts (GET /api/nginx/proxy-hosts). One table on stdout, progress on stderr, every
number in bench/results/dataplane-<time>.json.

Everything listens on 127.0.0.1 high ports; each proxy is stopped before the next starts
(and at exit). Needs nginx, wrk, caddy and haproxy (see bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "dataplane.lua"
DOMAIN = "bench.test"
TARGET = "localhost"
PROXIES = ("portway", "nginx", "caddy", "haproxy")  # the default; also portway-render/-before


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def host_names(n: int) -> list[str]:
    """N names; the middle one is TARGET (wrk's URL host, so its SNI and Host)."""
    names = [f"h{i}.{DOMAIN}" for i in range(n)]
    names[n // 2] = TARGET
    return names


# ----- processes -------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """RSS and PSS (kB) summed over `pid` and its descendants."""
    rss = pss = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_kb": rss, "pss_kb": pss, "processes": len(_tree(pid))}


class Proxy:
    """One proxy under test: writes its config for N hosts, starts, stops."""

    name = ""

    def __init__(self, workdir: Path, upstream_port: int, cert: tuple[Path, Path]) -> None:
        self.workdir = workdir
        self.upstream_port = upstream_port
        self.chain, self.key = cert
        self.http_port = free_port()
        self.https_port = free_port()
        self.proc: subprocess.Popen | None = None

    def command(self, names: list[str]) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, names: list[str]) -> float:
        """Start serving `names`; returns seconds until the target host answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = self.command(names)
        started = time.monotonic()
        output = open(self.workdir / "output.log", "wb")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )
        deadline = started + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.workdir / "output.log").read_text()[-2000:]
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {tail}")
            if self.answers(https=False) and self.answers(https=True):
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer within 300 s")

    def answers(self, https: bool) -> bool:
        """Whether the target host answers the upstream's body through this proxy."""
        scheme, port = ("https", self.https_port) if https else ("http", self.http_port)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(
                f"{scheme}://{TARGET}:{port}/", timeout=2, context=context if https else None
            ) as response:
                return response.status == 200 and response.read() == UPSTREAM_BODY
        except (OSError, ValueError):
            return False

    def memory(self) -> dict[str, int]:
        """RSS/PSS (kB) of the proxy's processes."""
        assert self.proc is not None
        return memory_kb(self.proc.pid)

    def extra(self, args: argparse.Namespace) -> dict[str, Any]:
        """Numbers only some proxies have (Portway's own memory and API)."""
        return {}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


UPSTREAM_BODY = b"upstream-a"


class PemFiles:
    """A certificate and key read from files, shaped like portway.testing.certs.Issued
    for bench/apply.py's upload_certificate (`cert_pem`, `key_pem()`)."""

    def __init__(self, chain: Path, key: Path) -> None:
        self.cert_pem = chain.read_bytes()
        self._key = key.read_bytes()

    def key_pem(self) -> bytes:
        return self._key


class PortwayServe(Proxy):
    """Portway itself: a fresh `portway serve` (SQLite in the work dir, its own nginx),
    the certificate uploaded through the API, the N hosts inserted into the database
    (bench/apply.py's `_seed` helper: creating 10,000 through the API takes minutes and
    is apply.py's subject) and made live by one API change, exactly as a user's
    installation serves them. Also measures Portway's own memory and the API's list of
    all hosts."""

    name = "portway"
    extra_env: dict[str, str] = {}  # --portway-env, e.g. PORTWAY_FAST_PATH=off

    def start(self, names: list[str]) -> float:
        from apply import Api, api_ok, run_helper, upload_certificate  # bench/apply.py

        from portway.testing.process import PortwayProcess

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.portway = PortwayProcess(self.workdir / "data", env=self.extra_env)
        self.portway.start(timeout=120)
        self.proc = self.portway.proc
        self.http_port, self.https_port = self.portway.http_port, self.portway.https_port
        self.api = Api(self.portway.admin_port, self.portway.token)
        cert_id = upload_certificate(self.api, PemFiles(self.chain, self.key))
        names_file = self.workdir / "names.json"
        names_file.write_text(json.dumps(names))
        run_helper(
            "_seed",
            self.portway.environment(),
            [
                *("--count", str(len(names)), "--cert-id", str(cert_id)),
                *("--port", str(self.upstream_port), "--names-file", str(names_file)),
                "--all-certificates",
            ],
            timeout=900,
        )
        found = api_ok(self.api, "GET", f"/api/nginx/proxy-hosts?query={TARGET}")
        target_id = next(h["id"] for h in found if h["domain_names"] == [TARGET])
        started = time.monotonic()
        # one change makes the engine apply every seeded host
        api_ok(
            self.api,
            "PUT",
            f"/api/nginx/proxy-hosts/{target_id}",
            {"forward_port": self.upstream_port},
        )
        deadline = started + 900
        while time.monotonic() < deadline:
            if (
                not self.api.status()["pending"]
                and self.answers(https=False)
                and self.answers(https=True)
            ):
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError("portway did not serve the target within 900 s")

    def memory(self) -> dict[str, int]:
        from portway.testing.process import PortwayProcess

        assert isinstance(self.portway, PortwayProcess)
        pid_file = self.portway.data_dir / "nginx" / "run" / "nginx.pid"
        return memory_kb(int(pid_file.read_text().split()[0]))

    def extra(self, args: argparse.Namespace) -> dict[str, Any]:
        """Portway's RSS and high-water mark (kB), and GET /api/nginx/proxy-hosts timings."""
        from apply import _status_kb  # bench/apply.py

        assert self.proc is not None
        timings = []
        count = 0
        for _ in range(args.list_repeats):
            started = time.perf_counter()
            code, data = self.api.call("GET", "/api/nginx/proxy-hosts")
            timings.append((time.perf_counter() - started) * 1000)
            if code != 200:
                raise RuntimeError(f"list hosts: {code}")
            count = len(data)
        return {
            "portway_rss_kb": _status_kb(self.proc.pid, "VmRSS"),
            "portway_hwm_kb": _status_kb(self.proc.pid, "VmHWM"),
            "api_list_ms": {
                "p50": round(statistics.median(timings), 1),
                "all": [round(t, 1) for t in timings],
                "hosts": count,
            },
        }

    def stop(self) -> None:
        if getattr(self, "api", None) is not None:
            self.api.close()  # serve waits for idle API connections before it exits
        portway = getattr(self, "portway", None)
        if portway is not None:
            portway.close()


class PortwayNginx(Proxy):
    """nginx running exactly the files Portway's renderer writes for N proxy hosts
    (rendered in a child process from --portway-src, so another tree can be compared),
    without `portway serve`: the renderer's config alone."""

    name = "portway-render"
    source = REPO / "src"

    def command(self, names: list[str]) -> list[str]:
        spec = {
            "data_dir": str(self.workdir / "data"),
            "http_port": self.http_port,
            "https_port": self.https_port,
            "upstream_port": self.upstream_port,
            "chain": str(self.chain),
            "key": str(self.key),
            "names": names,
        }
        (self.workdir / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": str(self.source)}
        subprocess.run(
            [sys.executable, __file__, "--render-portway", str(self.workdir / "spec.json")],
            check=True,
            env=env,
            timeout=600,
        )
        conf = self.workdir / "data" / "nginx" / "generations" / "bench" / "nginx.conf"
        return [nginx_binary(), "-c", str(conf), "-g", "daemon off;"]


class PortwayBefore(PortwayNginx):
    """Portway's config as the tree given with --before-src renders it (e.g. main, to
    compare a renderer change in the same run)."""

    name = "portway-before"
    source = REPO / "src"


def render_portway(spec_path: str) -> int:
    """Child process: write Portway's generation for the spec's hosts (see PortwayNginx).

    The renderer's own output, written the way the engine writes it (main config,
    default servers and page, one file per host), without a database.
    """
    from portway.conf import PortwayConfig
    from portway.nginx.engine import ensure_default_certificate
    from portway.nginx.render import (
        CertificateRef,
        DefaultSite,
        Paths,
        ProxyHostSpec,
        Renderer,
        UpstreamResolver,
    )

    spec = json.loads(Path(spec_path).read_text())
    paths = Paths(Path(spec["data_dir"]))
    for directory in (paths.base, paths.generations, paths.run, paths.temp, paths.cache):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
    paths.logs.mkdir(parents=True, exist_ok=True)
    ensure_default_certificate(paths.default_cert_dir)
    config = PortwayConfig(
        paths.data_dir, 0, spec["http_port"], spec["https_port"], "127.0.0.1", True, "", "", ""
    )
    renderer = Renderer(config, paths, UpstreamResolver())
    cert = CertificateRef(1, Path(spec["chain"]), Path(spec["key"]))
    names: list[str] = spec["names"]
    hosts = [
        ProxyHostSpec(i + 1, (name,), "http", "127.0.0.1", spec["upstream_port"], cert)
        for i, name in enumerate(names)
    ]
    directory = paths.generations / "bench"
    site = DefaultSite()
    files = [
        renderer.main("bench", len(names), max(map(len, names))),
        renderer.default_servers(site, directory),
        *renderer.default_site_files(site),
        *renderer.hosts(hosts),
    ]
    for config_file in files:
        path = directory / config_file.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)
        path.write_text(config_file.text())
        os.chmod(path, 0o644)
    return 0


class HandNginx(Proxy):
    """A minimal hand-written nginx config: one server block per host, one shared
    `upstream` with keepalive, an access log (as nginx's packaged default has)."""

    name = "nginx"

    def command(self, names: list[str]) -> list[str]:
        d = self.workdir
        (d / "temp").mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            f"""    server {{
        listen 127.0.0.1:{self.http_port};
        listen 127.0.0.1:{self.https_port} ssl;
        server_name {name};
        ssl_certificate {self.chain};
        ssl_certificate_key {self.key};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}"""
            for name in names
        )
        hash_max = max(1024, 1 << (len(names) * 2 - 1).bit_length())
        (d / "nginx.conf").write_text(
            f"""worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {d}/access.log;
    server_names_hash_max_size {hash_max};
    server_names_hash_bucket_size 128;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    ssl_session_cache shared:bench:10m;
    upstream backend {{
        server 127.0.0.1:{self.upstream_port};
        keepalive 32;
    }}
{servers}
}}
"""
        )
        return [nginx_binary(), "-c", str(d / "nginx.conf"), "-g", "daemon off;"]


def caddy_environment(workdir: Path) -> dict[str, str]:
    """Caddy's environment with HOME and XDG dirs under `workdir` (Caddy writes there)."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }


def caddy_config(
    routes: dict[str, str],
    http_port: int,
    https_port: int,
    cert: tuple[Path, Path],
    storage: Path,
    admin_listen: str | None = None,
) -> dict[str, Any]:
    """Caddy 2 JSON config: one route per host name (host matcher → reverse_proxy to its
    dial address "127.0.0.1:<port>") on an HTTP and an HTTPS server, the certificate
    (chain path, key path) loaded from files, no automatic HTTPS, HTTP/1.1 (+ h2 on TLS).

    admin_listen: "127.0.0.1:<port>" for the admin API (None: admin endpoint off).
    Caddy matches routes in order; WebSocket upgrades are proxied by default.
    """

    def server_routes() -> list[dict[str, Any]]:
        return [
            {
                "match": [{"host": [name]}],
                "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": dial}]}],
                "terminal": True,
            }
            for name, dial in routes.items()
        ]

    chain, key = cert
    no_auto = {"disable": True}
    admin = {"listen": admin_listen} if admin_listen else {"disabled": True}
    return {
        "admin": admin,
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "storage": {"module": "file_system", "root": str(storage)},
        "apps": {
            "http": {
                "http_port": http_port,
                "https_port": https_port,
                "servers": {
                    "plain": {
                        "listen": [f"127.0.0.1:{http_port}"],
                        "routes": server_routes(),
                        "automatic_https": no_auto,
                        "protocols": ["h1"],
                    },
                    "tls": {
                        "listen": [f"127.0.0.1:{https_port}"],
                        "routes": server_routes(),
                        "automatic_https": no_auto,
                        "tls_connection_policies": [{}],
                        "protocols": ["h1", "h2"],
                    },
                },
            },
            "tls": {"certificates": {"load_files": [{"certificate": str(chain), "key": str(key)}]}},
        },
    }


class Caddy(Proxy):
    """Caddy 2 from a JSON config (`caddy_config`): every host routed to the upstream,
    no admin endpoint, HTTP/1.1 and HTTP/2 only (wrk speaks HTTP/1.1)."""

    name = "caddy"

    def environment(self) -> dict[str, str]:
        return caddy_environment(self.workdir)

    def command(self, names: list[str]) -> list[str]:
        dial = f"127.0.0.1:{self.upstream_port}"
        config = caddy_config(
            dict.fromkeys(names, dial),
            self.http_port,
            self.https_port,
            (self.chain, self.key),
            self.workdir / "storage",
        )
        path = self.workdir / "caddy.json"
        path.write_text(json.dumps(config))
        return [shutil.which("caddy") or "caddy", "run", "--config", str(path)]


class HAProxy(Proxy):
    """HAProxy 2.6: one frontend on both ports, a map of the N host names to one
    backend (the same upstream), connection reuse to it (`http-reuse safe`, default)."""

    name = "haproxy"

    def command(self, names: list[str]) -> list[str]:
        d = self.workdir
        pem = d / "cert.pem"
        pem.write_bytes(self.chain.read_bytes() + self.key.read_bytes())
        pem.chmod(0o600)
        (d / "hosts.map").write_text("".join(f"{name} app\n" for name in names))
        (d / "haproxy.cfg").write_text(
            f"""global
    maxconn 4096
    nbthread {os.cpu_count() or 1}
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    timeout connect 10s
    timeout client 65s
    timeout server 300s
    timeout http-keep-alive 65s

frontend web
    bind 127.0.0.1:{self.http_port}
    bind 127.0.0.1:{self.https_port} ssl crt {pem} alpn h2,http/1.1
    use_backend %[req.hdr(host),field(1,:),lower,map({d}/hosts.map)]

backend app
    http-reuse safe
    server upstream 127.0.0.1:{self.upstream_port}
"""
        )
        return [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(d / "haproxy.cfg")]


PROXY_CLASSES: dict[str, type[Proxy]] = {
    "portway": PortwayServe,
    "portway-render": PortwayNginx,
    "portway-before": PortwayBefore,
    "nginx": HandNginx,
    "caddy": Caddy,
    "haproxy": HAProxy,
}


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    from portway.testing.network import free_port as pick

    return pick()


# ----- load ------------------------------------------------------------------------------


def wrk(url: str, seconds: float, threads: int, connections: int, close: bool) -> dict[str, Any]:
    """One wrk run against `url`; its WRKJSON line with requests/s and p99 added."""
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    if close:
        command += ["-H", "Connection: close"]
    command.append(url)
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^WRKJSON (\{.*\})$", result.stdout, re.MULTILINE)
    if not match:
        return {"error": (result.stdout + result.stderr)[-2000:]}
    data = json.loads(match.group(1))
    elapsed = data["duration_us"] / 1e6
    data["rps"] = round(data["requests"] / elapsed, 1) if elapsed else 0.0
    data["p99_ms"] = round(data["latency_us"]["p99"] / 1000, 2)
    data["errors_total"] = sum(data["errors"].values())
    return data


def measure(proxy: Proxy, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Start `proxy` with `names`, run the three loads, read its memory, stop it."""
    result: dict[str, Any] = {"proxy": proxy.name, "n": len(names)}
    try:
        result["start_s"] = round(proxy.start(names), 2)
        assert proxy.proc is not None
        http_url = f"http://{TARGET}:{proxy.http_port}/"
        https_url = f"https://{TARGET}:{proxy.https_port}/"
        runs: list[tuple[str, str, bool]] = [
            ("http", http_url, False),
            ("https", https_url, False),
            ("handshake", https_url, True),
        ]
        for key, url, close in runs:
            wrk(url, args.warmup, args.threads, args.connections, close)
            log(f"  {proxy.name} N={len(names)}: {key}")
            result[key] = wrk(url, args.duration, args.threads, args.connections, close)
        result["memory"] = proxy.memory()
        result.update(proxy.extra(args))
    except Exception as exc:  # a proxy that fails is reported, the others still run
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  {proxy.name} N={len(names)} failed: {result['error']}")
    finally:
        proxy.stop()
    return result


# ----- report ----------------------------------------------------------------------------


def _cell(result: dict[str, Any], key: str, field: str) -> str:
    run = result.get(key) or {}
    value = run.get(field)
    if value is None:
        return "-"
    return f"{value:,.0f}" if field == "rps" else f"{value:.1f}"


def medians(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per (proxy, N): the median of each number over the rounds that ran
    (errors summed; a proxy failed in every round keeps its error)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["proxy"], result["n"]), []).append(result)
    merged = []
    for (proxy, n), rounds in groups.items():
        ok = [r for r in rounds if "error" not in r]
        if not ok:
            merged.append(rounds[0])
            continue
        row: dict[str, Any] = {"proxy": proxy, "n": n, "rounds": len(ok)}
        row["start_s"] = statistics.median(r["start_s"] for r in ok)
        for key in ("http", "https", "handshake"):
            runs = [r[key] for r in ok if "rps" in r.get(key, {})]
            if runs:
                row[key] = {
                    "rps": statistics.median(run["rps"] for run in runs),
                    "p99_ms": statistics.median(run["p99_ms"] for run in runs),
                    "errors_total": sum(run["errors_total"] for run in runs),
                }
        row["memory"] = {
            field: statistics.median(r["memory"][field] for r in ok)
            for field in ("rss_kb", "pss_kb")
        }
        if all("portway_rss_kb" in r for r in ok):
            row["portway_rss_kb"] = statistics.median(r["portway_rss_kb"] for r in ok)
            row["api_list_ms"] = {
                "p50": statistics.median(r["api_list_ms"]["p50"] for r in ok),
                "hosts": ok[0]["api_list_ms"]["hosts"],
            }
        merged.append(row)
    return merged


def table(results: list[dict[str, Any]]) -> str:
    header = [
        "proxy",
        "N",
        "HTTP req/s",
        "p99 ms",
        "HTTPS req/s",
        "p99 ms",
        "TLS hs/s",
        "p99 ms",
        "errors",
        "RSS MB",
        "PSS MB",
        "start s",
        "Portway RSS MB",
        "API list p50 ms",
    ]
    rows = [header]
    for r in results:
        if "error" in r:
            rows.append([r["proxy"], f"{r['n']:,}", "failed (see JSON)", *[""] * 11])
            continue
        errors = sum((r.get(k) or {}).get("errors_total", 0) for k in ("http", "https"))
        memory = r.get("memory", {})
        rows.append(
            [
                r["proxy"],
                f"{r['n']:,}",
                _cell(r, "http", "rps"),
                _cell(r, "http", "p99_ms"),
                _cell(r, "https", "rps"),
                _cell(r, "https", "p99_ms"),
                _cell(r, "handshake", "rps"),
                _cell(r, "handshake", "p99_ms"),
                str(errors),
                f"{memory.get('rss_kb', 0) / 1024:,.1f}",
                f"{memory.get('pss_kb', 0) / 1024:,.1f}",
                f"{r.get('start_s', 0):.2f}",
                f"{r['portway_rss_kb'] / 1024:,.1f}" if "portway_rss_kb" in r else "-",
                f"{r['api_list_ms']['p50']:,.1f}" if "api_list_ms" in r else "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    def version(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    return {
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "nginx": version([nginx_binary(), "-v"]),
        "caddy": version(["caddy", "version"]),
        "haproxy": version(["haproxy", "-v"]),
        "wrk": version(["wrk", "-v"]),
    }


# ----- main ------------------------------------------------------------------------------


@contextlib.contextmanager
def upstream(directory: Path, workers: int) -> Iterator[int]:
    """The shared upstream (bench/apply.py's UpstreamNginx): its port answering BODY_A."""
    sys.path.insert(0, str(BENCH))
    from apply import UpstreamNginx  # bench/apply.py

    server = UpstreamNginx(directory, workers=workers).start()
    try:
        yield server.port_a
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="1,1000", help="comma-separated N (default 1,1000)")
    parser.add_argument("--with-10000", action="store_true", help="also N = 10,000")
    parser.add_argument(
        "--quick", action="store_true", help="N = 1 and 100, 5 s per wrk run (a check)"
    )
    parser.add_argument("--proxies", default=",".join(PROXIES), help="subset, in this order")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of wrk before each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--upstream-workers", type=int, default=1)
    parser.add_argument(
        "--portway-src",
        type=Path,
        default=REPO / "src",
        help="src/ whose renderer portway-render uses (default this tree)",
    )
    parser.add_argument(
        "--portway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for `portway serve` (repeatable), e.g. PORTWAY_FAST_PATH=off",
    )
    parser.add_argument(
        "--list-repeats", type=int, default=5, help="GET /api/nginx/proxy-hosts calls timed"
    )
    parser.add_argument(
        "--before-src", type=Path, help="src/ of another tree, rendered as portway-before"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat all proxies R times, interleaved; "
        "the table shows medians (fairer on a busy machine)",
    )
    parser.add_argument("--label", default="", help="note stored in the JSON")
    parser.add_argument("--render-portway", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render_portway:
        return render_portway(args.render_portway)

    if args.quick:
        args.sizes, args.duration = "1,100", min(args.duration, 5)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.with_10000 and 10000 not in sizes:
        sizes.append(10000)
    chosen = [p for p in args.proxies.split(",") if p]
    for tool in ["wrk", "nginx"] + [p for p in chosen if p in ("caddy", "haproxy")]:
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            print(f"missing {tool}: apt-get install caddy haproxy wrk nginx", file=sys.stderr)
            return 2
    PortwayNginx.source = args.portway_src.resolve()
    PortwayServe.extra_env = dict(item.split("=", 1) for item in args.portway_env)
    for key in [k for k in os.environ if k.startswith(("DB_MYSQL_", "DB_POSTGRES_"))]:
        del os.environ[key]  # Portway on SQLite, as bench/apply.py measures it
    if "portway-before" in chosen:
        if args.before_src is None:
            print("portway-before needs --before-src", file=sys.stderr)
            return 2
        PortwayBefore.source = args.before_src.resolve()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results: list[dict[str, Any]] = []
    info = machine()
    log(f"machine: {info}")
    with tempfile.TemporaryDirectory(prefix="portway-dataplane-") as temp:
        work = Path(temp)
        os.chmod(work, 0o755)  # nginx's workers (www-data) traverse to temp paths
        from portway.testing.certs import make_leaf

        cert = make_leaf(
            None, [f"*.{DOMAIN}", TARGET], key_type="ec", label="portway-dataplane"
        ).write(work / "cert")
        with upstream(work / "upstream", args.upstream_workers) as upstream_port:
            for n in sizes:
                names = host_names(n)
                for round_index in range(args.rounds):
                    # each round starts with the next proxy: none always runs first
                    shift = round_index % len(chosen)
                    for name in chosen[shift:] + chosen[:shift]:
                        log(f"{name} with N={n}, round {round_index + 1}/{args.rounds}")
                        directory = work / f"{name}-{n}-{round_index}"
                        proxy = PROXY_CLASSES[name](directory, upstream_port, cert)
                        results.append({**measure(proxy, names, args), "round": round_index})
                        shutil.rmtree(directory, ignore_errors=True)
    text = table(medians(results))
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"dataplane-{stamp}.json"
    out.write_text(
        json.dumps(
            {"machine": info, "label": args.label, "args": vars(args), "results": results},
            indent=1,
            default=str,
        )
    )
    log(f"results: {out}")
    return 1 if any("error" in r for r in results) else 0


def _stop_on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    # the renderer child imports Portway from --portway-src (its PYTHONPATH) instead
    if "--render-portway" not in sys.argv and str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    signal.signal(signal.SIGTERM, _stop_on_signal)
    sys.exit(main())
