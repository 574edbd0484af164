"""Apply-engine benchmark: how Portway behaves with 10, 1,000 and 10,000 proxy hosts.

    python bench/apply.py                      # N = 10, 1000, 10000 (about 15-20 minutes)
    python bench/apply.py --quick              # N = 10, 100 (under a minute)
    python bench/apply.py --sizes 1000 --duration 10
    python bench/apply.py --sizes 1000 --mixed 100 --caddy-changes 20   # (the defaults)

For each N: a fresh `portway serve` (SQLite, temp dir, 127.0.0.1 high ports), a second
nginx as the upstream (two ports answering "upstream-a" / "upstream-b"), one custom
wildcard certificate uploaded through the API, N proxy hosts created through the API by
concurrent clients (half with the certificate and HTTP/2), then `wrk` load on one host
while that host's upstream is switched K times through the API. Then 100 mixed routine
changes (upstream port, create, delete, disable/enable, certificate, names,
force-SSL/HSTS, default site) under wrk and long-lived WebSockets through a proxy host
with WebSocket upgrades, watching nginx's master and worker pids; then Caddy with the
same N hosts loaded through its admin API (/load) and the same kind of change (an
upstream switched, a route added) under the same load, measured the same way.
See bench/README.md for what each number means. Results: tables on stdout and
bench/results/apply-<time>.json.

Everything talks to 127.0.0.1 only; every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from portway.testing.network import free_port  # noqa: E402
from portway.testing.process import PortwayProcess, terminate  # noqa: E402

DOMAIN = "bench.test"
BODY_A, BODY_B = "upstream-a", "upstream-b"
WRK_SCRIPT = BENCH / "status.lua"
RESULTS = BENCH / "results"
MB = 1024 * 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def host_name(index: int) -> str:
    return f"h{index}.{DOMAIN}"


def percentile(values: list[float], q: float) -> float | None:
    """q in [0, 100]; nearest-rank on the sorted values (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def bounded_poll(
    predicate: Callable[[], Any], timeout: float, interval: float, what: str
) -> tuple[Any, float]:
    """Call `predicate` until truthy or `timeout`; returns (value, seconds waited)."""
    started = time.monotonic()
    deadline = started + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last, time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached within {timeout:.0f}s (last: {last!r})")


# ----- the upstream: a second nginx on two high ports ---------------------------------


class UpstreamNginx:
    """A tiny nginx answering `return 200 "upstream-a"` / `"upstream-b"` on two ports.

    nginx rather than a Python server so that the upstream answers tens of thousands of
    requests per second and the proxy, not the upstream, is what the load measures.
    """

    def __init__(self, directory: Path, workers: int = 1) -> None:
        self.directory = directory
        self.port_a = free_port()
        self.port_b = free_port()
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self) -> UpstreamNginx:
        d = self.directory
        (d / "logs").mkdir(parents=True, exist_ok=True)
        temp = d / "temp"
        temp.mkdir(exist_ok=True)
        servers = "\n".join(
            f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 100000;
        location / {{ return 200 "{body}"; }}
    }}"""
            for port, body in ((self.port_a, BODY_A), (self.port_b, BODY_B))
        )
        conf = f"""worker_processes {self.workers};
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{servers}
}}
"""
        (d / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [
                shutil.which("nginx") or "/usr/sbin/nginx",
                "-p",
                f"{d}/",
                "-e",
                f"{d}/logs/error.log",
                "-c",
                str(d / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for port, body in ((self.port_a, BODY_A), (self.port_b, BODY_B)):
            bounded_poll(
                lambda p=port, b=body: raw_get("127.0.0.1", p, "upstream")[1] == b,
                10,
                0.05,
                f"upstream nginx on {port}",
            )
        return self

    def stop(self) -> None:
        terminate(self.proc)


def raw_get(
    address: str, port: int, host: str, timeout: float = 2.0
) -> tuple[int | None, str | None]:
    """One HTTP/1.0 GET / on a new connection: (status, body); (None, None) on error."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        return None, None
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None, None
    return status, body.decode(errors="replace")


# ----- admin API client (one keep-alive connection per thread) ------------------------


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection: `portway serve` does not exit on SIGTERM
        while an idle keep-alive API connection is open (it is killed after 30 s)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.token}"}
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, payload, headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data.decode(errors="replace")

    def status(self) -> dict[str, Any]:
        code, data = self.call("GET", "/api/nginx/status")
        if code != 200:
            raise RuntimeError(f"GET /api/nginx/status: {code} {data}")
        return data


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "----portway-bench-" + uuid.uuid4().hex
    parts = []
    for name, (filename, content) in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/x-pem-file\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def bench_leaf(label: str = "portway-bench") -> Any:
    """A self-signed wildcard *.bench.test certificate (EC P-256; `label` picks the key)."""
    from portway.testing.certs import make_leaf

    return make_leaf(None, [f"*.{DOMAIN}", DOMAIN], key_type="ec", label=label)


def der_sha256(leaf: Any) -> str:
    """SHA-256 (hex) of a certificate's DER: what the poller compares with the served one."""
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(leaf.cert.public_bytes(Encoding.DER)).hexdigest()


def upload_certificate(api: Api, leaf: Any = None) -> int:
    """Upload `leaf` (a portway.testing.certs.Issued; default `bench_leaf()`) as a custom
    certificate through the API; returns its id."""
    leaf = leaf or bench_leaf()
    code, cert = api.call(
        "POST", "/api/nginx/certificates", {"provider": "other", "nice_name": "bench wildcard"}
    )
    if code != 201:
        raise RuntimeError(f"create certificate: {code} {cert}")
    body, content_type = multipart(
        {"certificate": ("cert.pem", leaf.cert_pem), "certificate_key": ("key.pem", leaf.key_pem())}
    )
    code, data = api.call(
        "POST",
        f"/api/nginx/certificates/{cert['id']}/upload",
        raw=body,
        content_type=content_type,
    )
    if code != 200:
        raise RuntimeError(f"upload certificate: {code} {data}")
    return int(cert["id"])


def host_body(index: int, port: int, cert_id: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "domain_names": [host_name(index)],
        "forward_scheme": "http",
        "forward_host": "127.0.0.1",
        "forward_port": port,
    }
    if index % 2 == 0:
        body.update(certificate_id=cert_id, http2_support=True)
    return body


# ----- /proc sampling ------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _status_kb(pid: int, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _read(f"/proc/{pid}/status"), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _pss_kb(pid: int) -> int:
    match = re.search(r"^Pss:\s+(\d+) kB", _read(f"/proc/{pid}/smaps_rollup"), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _children() -> dict[int, list[int]]:
    """ppid → child pids, for every process on the machine."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if not stat:
            continue
        try:
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own user+system CPU seconds, reaped children's user+system), from /proc/pid/stat.

    For `portway serve` the reaped children are its `nginx -t` runs.
    """
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0.0, 0.0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / ticks
    children = (int(fields[13]) + int(fields[14])) / ticks
    return own, children


class Sampler(threading.Thread):
    """Samples RSS/PSS of portway and of its nginx (master + workers + helpers)."""

    def __init__(self, portway_pid: int, interval: float = 0.25) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.pid = portway_pid
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak: dict[str, int] = {
            "portway_rss_kb": 0,
            "nginx_rss_kb": 0,
            "nginx_pss_kb": 0,
            "nginx_processes": 0,
            "nginx_test_rss_kb": 0,
        }
        self.samples = 0

    def sample(self) -> None:
        tree = _children()
        nginx_rss = nginx_pss = nginx_count = test_rss = 0
        for child in tree.get(self.pid, []):
            cmd = _cmdline(child)
            if "nginx" not in cmd:
                continue
            if " -t " in f"{cmd} ":  # an `nginx -t` run by the apply engine
                test_rss = max(test_rss, _status_kb(child, "VmRSS"))
                continue
            stack = [child]
            while stack:  # the master and everything under it (workers, cache helpers)
                pid = stack.pop()
                nginx_rss += _status_kb(pid, "VmRSS")
                nginx_pss += _pss_kb(pid)
                nginx_count += 1
                stack.extend(tree.get(pid, []))
        current = {
            "portway_rss_kb": _status_kb(self.pid, "VmRSS"),
            "nginx_rss_kb": nginx_rss,
            "nginx_pss_kb": nginx_pss,
            "nginx_processes": nginx_count,
            "nginx_test_rss_kb": test_rss,
        }
        for key, value in current.items():
            self.peak[key] = max(self.peak[key], value)
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            with contextlib.suppress(Exception):  # a process vanishing mid-read
                self.sample()
            self.stop_event.wait(self.interval)

    def finish(self) -> dict[str, Any]:
        self.stop_event.set()
        self.join(timeout=5)
        result: dict[str, Any] = dict(self.peak)
        result["portway_hwm_kb"] = _status_kb(self.pid, "VmHWM")
        result["samples"] = self.samples
        return result


# ----- helpers run inside Portway's environment (Django set up) ------------------------


def _django(env_json: str) -> None:
    os.environ.update(json.loads(env_json))
    from portway.cli import _django as setup
    from portway.cli import _migrate

    setup()
    _migrate()  # a no-op unless the code changed since `portway serve` started


def helper_seed(args: argparse.Namespace) -> int:
    """Insert the proxy hosts of [0, count) not in the database yet (bulk_create).

    Names are h<i>.bench.test, or the JSON list in --names-file (bench/dataplane.py);
    even i get the certificate and HTTP/2, every host with --all-certificates.
    """
    _django(args.env)
    from portway.accounts.models import User
    from portway.certificates.models import Certificate
    from portway.hosts.models import ProxyHost

    owner = User.objects.filter(is_admin=True).order_by("id").first()
    cert = Certificate.objects.get(pk=args.cert_id)
    existing = {
        name for names in ProxyHost.objects.values_list("domain_names", flat=True) for name in names
    }
    rows = []
    names = (
        json.loads(Path(args.names_file).read_text())
        if args.names_file
        else [host_name(index) for index in range(args.count)]
    )
    for index, name in enumerate(names):
        if name in existing:
            continue
        with_cert = args.all_certificates or index % 2 == 0
        rows.append(
            ProxyHost(
                owner=owner,
                domain_names=[name],
                first_domain=name,
                forward_scheme="http",
                forward_host="127.0.0.1",
                forward_port=args.port,
                certificate=cert if with_cert else None,
                http2_support=with_cert,
            )
        )
    ProxyHost.objects.bulk_create(rows, batch_size=500)
    for host in rows:  # bulk_create skips save(): keep the name index in step
        host.sync_names()
    print(json.dumps({"seeded": len(rows)}))
    return 0


def helper_stages(args: argparse.Namespace) -> int:
    """Time each stage of one full apply (without going live) and of one preflight."""
    _django(args.env)
    from portway import conf
    from portway.hosts.models import ProxyHost
    from portway.nginx.engine import Engine, load_state
    from portway.nginx.process import test_config

    engine = Engine(conf.load())
    engine.prepare()
    timings: dict[str, float] = {}

    def timed(name: str, func: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = func()
        timings[name] = round(time.perf_counter() - started, 4)
        return value

    state = timed("load_state", load_state)
    files = timed("render", lambda: {s.key: engine.renderer.proxy_host(s) for s in state.hosts})
    texts = timed("to_text", lambda: {k: f.text() for k, f in files.items()})
    timed("read_live_texts", engine.live_host_texts)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    directory = engine.paths.base / "bench-stages" / name

    def write() -> None:
        all_files = engine._files(state, name, list(files.values()), directory)
        engine._write_files(directory, all_files, texts)

    try:
        timed("write_files", write)
        result = timed(
            "nginx_t",
            lambda: test_config(engine.binary, directory / "nginx.conf", engine.paths.base),
        )
        timed("rmtree", lambda: shutil.rmtree(directory, ignore_errors=True))
    finally:
        shutil.rmtree(directory.parent, ignore_errors=True)
    if state.hosts:
        timed("preflight_one_host", lambda: engine.preflight(state.hosts[0]))
        timed(
            "names_check_query",
            lambda: [
                n
                for h in ProxyHost.objects.filter(enabled=True).only("id", "domain_names")
                for n in h.domain_names
            ],
        )
    print(json.dumps({"timings": timings, "hosts": len(state.hosts), "nginx_t_ok": result.ok}))
    return 0


def run_helper(name: str, env: dict[str, str], extra: list[str], timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), name, "--env", json.dumps(env), *extra]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----- wrk -----------------------------------------------------------------------------


class Wrk:
    """wrk in the background against nginx's HTTP port with a Host header.

    Started with a long -d bound and stopped with SIGINT (wrk then prints its results),
    so the measured window is exactly the phase it covers.
    """

    def __init__(self, port: int, host: str, threads: int, connections: int, bound: float):
        self.cmd = [
            shutil.which("wrk") or "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(bound)}s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            "-H",
            f"Host: {host}",
            f"http://127.0.0.1:{port}/",
        ]
        self.bound = bound
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> Wrk:
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, Any]:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            output, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            output, _ = self.proc.communicate()
        elapsed = time.monotonic() - self.started
        return parse_wrk(output, elapsed)

    def run(self, seconds: float) -> dict[str, Any]:
        self.start()
        time.sleep(seconds)
        return self.stop()


def parse_wrk(output: str, elapsed: float) -> dict[str, Any]:
    match = re.search(r"^WRKJSON (\{.*\})$", output, re.MULTILINE)
    if not match:
        return {"error": "no WRKJSON line from wrk", "output": output[-2000:]}
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6 or elapsed
    non_2xx = sum(n for code, n in data["statuses"].items() if not code.startswith("2"))
    socket_errors = sum(data["errors"][k] for k in ("connect", "read", "write", "timeout"))
    data.update(
        seconds=round(seconds, 3),
        rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
        non_2xx=non_2xx,
        socket_errors=socket_errors,
        failed=non_2xx + socket_errors,
    )
    nonxx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    data["wrk_non_2xx_3xx_line"] = int(nonxx.group(1)) if nonxx else 0
    return data


# ----- one size ------------------------------------------------------------------------


def portway_applies(log_text: str) -> list[tuple[int, float]]:
    """(hosts, seconds) of each `apply: generation ...` line in portway's log."""
    return [
        (int(m.group(1)), float(m.group(2)))
        for m in re.finditer(
            r"apply(?: \(\w+ path\))?: generation \S+, (\d+) hosts, \d+ offline, "
            r"(?:\d+ nginx -t runs, )?([\d.]+)s",
            log_text,
        )
    ]


def read_log(pw: PortwayProcess, offset: int = 0) -> str:
    try:
        with open(pw.log_path, errors="replace") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return ""


def dir_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under `path`, following no symlinks."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def check_sample(pw: PortwayProcess, indices: list[int], expected: str) -> bool:
    for index in indices:
        status, body = raw_get("127.0.0.1", pw.http_port, host_name(index))
        if status != 200 or body != expected:
            return False
    return True


def tls_check(pw: PortwayProcess, index: int) -> dict[str, Any]:
    """Certificate SAN and ALPN that nginx offers for a host with the certificate."""
    from cryptography import x509

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", pw.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host_name(index)) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        alpn = tls.selected_alpn_protocol()
    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {"san": names.get_values_for_type(x509.DNSName), "alpn": alpn}


def create_hosts(
    api: Api, indices: list[int], port: int, cert_id: int, threads: int, budget: float
) -> dict[str, Any]:
    """POST the hosts with `threads` concurrent clients; stops submitting after `budget`."""
    latencies: list[float] = []
    done_at: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + budget
    cursor = iter(indices)

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            t0 = time.monotonic()
            try:
                code, data = api.call(
                    "POST", "/api/nginx/proxy-hosts", host_body(index, port, cert_id)
                )
            except (OSError, http.client.HTTPException) as exc:
                code, data = 0, repr(exc)
            t1 = time.monotonic()
            with lock:
                if code == 201:
                    latencies.append(t1 - t0)
                    done_at.append(t1 - started)
                else:
                    errors.append(f"{host_name(index)}: {code} {str(data)[:200]}")
                    if len(errors) > 20:
                        return

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    elapsed = time.monotonic() - started
    done_at.sort()
    created = len(latencies)
    windows = {}
    if created >= 20:  # throughput of the first and the last tenth: does it degrade with N?
        tenth = created // 10
        first = done_at[tenth - 1]
        last = done_at[-1] - done_at[-tenth - 1]
        windows = {
            "first_tenth_hosts_per_s": round(tenth / first, 1) if first else None,
            "last_tenth_hosts_per_s": round(tenth / last, 1) if last else None,
        }
    return {
        "created": created,
        "seconds": round(elapsed, 3),
        "hosts_per_s": round(created / elapsed, 1) if elapsed else None,
        "latency_ms": {
            "p50": _ms(percentile(latencies, 50)),
            "p95": _ms(percentile(latencies, 95)),
            "max": _ms(max(latencies) if latencies else None),
        },
        "errors": errors[:10],
        "budget_exhausted": created + len(errors) < len(indices),
        **windows,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def wait_live(
    pw: PortwayProcess, api: Api, n: int, expected: str, timeout: float
) -> dict[str, Any]:
    """Wait for no pending apply, then for a sample of hosts answering through nginx."""
    started = time.monotonic()
    status, _ = bounded_poll(
        lambda: (s := api.status()) and not s["pending"] and s, timeout, 0.02, "apply pending"
    )
    pending_done = time.monotonic() - started
    rng = random.Random(n)
    sample = sorted({0, 1, n - 1, *rng.sample(range(n), min(n, 25))})
    remaining = max(5.0, timeout - pending_done)
    bounded_poll(lambda: check_sample(pw, sample, expected), remaining, 0.01, "sample live")
    return {
        "pending_cleared_s": round(pending_done, 3),
        "sample_live_s": round(time.monotonic() - started, 3),
        "sample_size": len(sample),
        "status": status,
    }


def probe(
    host: str,
    *,
    status: int | None = 200,
    body: str | None = None,
    cert_sha256: str | None = None,
    negate: bool = False,
) -> dict[str, Any]:
    """What the poller asks and what counts as the new state (a plain dict: it is pickled
    to the poller process).

    host: the name sent as `Host` (HTTP) or as SNI (`cert_sha256` given: TLS handshake
    only, no request). The answer is "new" when its status and body equal `status` and
    `body` (None: any), or the served certificate's SHA-256 (hex, of the DER) equals
    `cert_sha256`; with `negate` when it does not (a host that must stop answering).
    A connection or TLS error is neither old nor new.
    """
    return {
        "host": host,
        "status": status,
        "body": body,
        "cert_sha256": cert_sha256,
        "negate": negate,
    }


def _probe_matches(spec: dict[str, Any], status: int | None, body: str, cert: str | None) -> bool:
    if spec["cert_sha256"] is not None:
        matched = cert == spec["cert_sha256"]
    else:
        matched = (spec["status"] is None or status == spec["status"]) and (
            spec["body"] is None or body == spec["body"]
        )
    return matched != spec["negate"]


def _poller_main(conn: Any, http_port: int, https_port: int) -> None:
    """Child process: on ("watch", probe, timeout) poll the proxy until the probe's new
    state answers (see `probe`).

    A new request (on a new connection) starts every POLL_INTERVAL whatever the answer
    time of the previous ones, so a slow answer under load does not coarsen the sampling.
    It reports `seen_at`, when the first answer from the new config arrived (the change
    was live by then), and `old_sent_at`, when the last request answered by the old
    config was sent (the change was not live before that): the truth is in between.
    A process of its own, niced up when allowed, so that wrk, the sampler thread and the
    GIL of the bench do not delay the polls.
    """
    import asyncio
    import hashlib

    with contextlib.suppress(OSError):
        os.nice(-10)
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE

    async def one(spec: dict[str, Any], record: list) -> None:
        sent = time.monotonic()
        status: int | None = None
        body = ""
        cert = None
        try:
            if spec["cert_sha256"] is not None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        "127.0.0.1", https_port, ssl=tls, server_hostname=spec["host"]
                    ),
                    5,
                )
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                cert = hashlib.sha256(der).hexdigest()
                writer.close()
            else:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", http_port), 5
                )
                writer.write(f"GET / HTTP/1.0\r\nHost: {spec['host']}\r\n\r\n".encode())
                data = await asyncio.wait_for(reader.read(), 5)
                writer.close()
                head, _, raw_body = data.partition(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                body = raw_body.decode(errors="replace")
        except (TimeoutError, OSError, IndexError, ValueError):
            record.append((sent, time.monotonic(), None))
            return
        answer = "new" if _probe_matches(spec, status, body, cert) else "old"
        record.append((sent, time.monotonic(), answer))

    async def watch(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
        record: list = []
        tasks: set = set()
        started = time.monotonic()
        deadline = started + timeout
        seen_at = None
        sends = 0
        while time.monotonic() < deadline and seen_at is None:
            if len(tasks) < MAX_IN_FLIGHT:
                task = asyncio.ensure_future(one(spec, record))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sends += 1
            await asyncio.sleep(POLL_INTERVAL)
            new = [r for r in record if r[2] == "new"]
            if new:
                seen_at = min(r[1] for r in new)
        if tasks:  # let the requests in flight finish: they tell when the old config last answered
            await asyncio.wait(tasks, timeout=5)
        sent_times = sorted(r[0] for r in record)
        gaps = [b - a for a, b in zip(sent_times, sent_times[1:], strict=False)]
        old_sent = [r[0] for r in record if r[2] == "old" and (seen_at is None or r[0] < seen_at)]
        new_latency = [r[1] - r[0] for r in record if r[2] == "new" and r[1] == seen_at]
        return {
            "seen_at": seen_at,
            "old_sent_at": max(old_sent) if old_sent else None,
            "sends": sends,
            "errors": sum(1 for r in record if r[2] is None),
            "max_gap": max(gaps) if gaps else 0.0,
            "answer_latency": new_latency[0] if new_latency else None,
        }

    conn.send("ready")
    while True:
        message = conn.recv()
        if message[0] != "watch":
            return
        _, spec, timeout = message
        conn.send(asyncio.run(watch(spec, timeout)))


POLL_INTERVAL = 0.002
MAX_IN_FLIGHT = 200


class Poller:
    """The poller child process (multiprocessing, spawn) for one proxy's two ports."""

    def __init__(self, http_port: int, https_port: int = 0) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(
            target=_poller_main, args=(child, http_port, https_port), daemon=True
        )
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("poller process did not start")

    def watch(self, spec: dict[str, Any], timeout: float) -> None:
        self.conn.send(("watch", spec, timeout))

    def result(self, timeout: float) -> dict[str, Any]:
        if not self.conn.poll(timeout):
            raise TimeoutError("poller did not answer")
        return self.conn.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(("stop",))
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def timed_change(
    poller: Poller,
    spec: dict[str, Any],
    call: Callable[[], None],
    timeout: float,
    settle: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Make one change (`call`, which raises if the API refused it) while the poller
    watches for `spec`'s new state; returns the timings in ms.

    live_ms: from the call's response to the first new answer (negative when the change
    was live before the API answered, as when the API waits for the apply);
    call_to_live_ms: from sending the call; uncertainty_ms: first new answer received −
    last old answer sent. `settle` (e.g. wait until no apply is pending) runs after the
    change is live and its dict is merged into the result.
    Raises TimeoutError when the new state is not seen within `timeout` seconds.
    """
    poller.watch(spec, timeout)
    t_call = time.monotonic()
    call()
    t_return = time.monotonic()
    seen = poller.result(timeout + 10)
    if seen["seen_at"] is None:
        raise TimeoutError(f"change not live within {timeout:.0f}s ({spec})")
    old = seen["old_sent_at"]
    result = {
        "api_ms": _ms(t_return - t_call),
        "live_ms": _ms(seen["seen_at"] - t_return),
        "call_to_live_ms": _ms(seen["seen_at"] - t_call),
        "uncertainty_ms": _ms(seen["seen_at"] - old) if old else None,
        "polls": seen["sends"],
        "poll_interval_max_ms": _ms(seen["max_gap"]),
        "poll_answer_ms": _ms(seen["answer_latency"]),
        "poll_errors": seen["errors"],
    }
    if settle is not None:
        result.update(settle())
    return result


def api_ok(api: Api, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    """One API call that must answer `expect`; returns the decoded body."""
    code, data = api.call(method, path, body)
    if code != expect:
        raise RuntimeError(f"{method} {path}: {code} {str(data)[:300]}")
    return data


def settled(api: Api, before: dict[str, Any]) -> dict[str, Any]:
    """Wait until no apply is pending; what the apply engine says about the change."""
    after, _ = bounded_poll(
        lambda: (st := api.status()) and not st["pending"] and st, 600, 0.02, "apply"
    )
    return {
        "applies": after["applies"] - before["applies"],
        "apply_seconds": after["last_apply_seconds"],
        # the fast path (issue 12) reports which path an apply took; absent before it
        "apply_path": after.get("last_apply_path", "(not reported)"),
    }


def change_loop(
    pw: PortwayProcess,
    api: Api,
    host_id: int,
    index: int,
    ports: tuple[int, int],
    changes: int,
    timeout: float,
    gap: float,
) -> list[dict[str, Any]]:
    """Switch the host between the two upstreams; time API return → proxied answer changes."""
    results = []
    name = host_name(index)
    poller = Poller(pw.http_port, pw.https_port)
    try:
        for k in range(changes):
            port, expected = (ports[1], BODY_B) if k % 2 == 0 else (ports[0], BODY_A)
            before = api.status()
            record = timed_change(
                poller,
                probe(name, body=expected),
                lambda p=port: api_ok(
                    api, "PUT", f"/api/nginx/proxy-hosts/{host_id}", {"forward_port": p}
                ),
                timeout,
                lambda b=before: settled(api, b),
            )
            results.append(record)
            log(
                f"  change {k + 1}/{changes}: API {record['api_ms']} ms, "
                f"then live after {record['live_ms']} ms "
                f"(±{record['uncertainty_ms']} ms; apply {record['apply_seconds']} s; "
                f"poll interval max {record['poll_interval_max_ms']} ms)"
            )
            time.sleep(gap)
    finally:
        poller.close()
    return results


def start_profiler(pid: int, path: Path, seconds: float) -> subprocess.Popen:
    """py-spy record (raw collapsed stacks, idle frames included, per thread)."""
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            "50",
            "--format",
            "raw",
            "--idle",
            "--threads",
            "--nonblocking",
            "--output",
            str(path),
            "--duration",
            str(int(seconds)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(profiler: subprocess.Popen) -> None:
    if profiler.poll() is None:
        profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


# Where a profile's samples are attributed: the thread, the frame under which the time is
# split, and the functions one level below it (anything else is "other").
_PROFILE_VIEWS = {
    "apply_thread": ("nginx-apply", ("Engine._apply_locked", "Engine.apply")),
    "create_requests": ("waitress", ("create_proxy_host",)),
    "update_requests": ("waitress", ("update_proxy_host",)),
}


def summarize_profile(path: Path, depth: int = 2) -> dict[str, Any]:
    """Share of samples per call path below the anchors of each view (see _PROFILE_VIEWS)."""
    views: dict[str, dict[str, int]] = {name: {} for name in _PROFILE_VIEWS}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {"error": f"no profile at {path}"}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        thread, names = frames[0], [re.sub(r" \(.*", "", f) for f in frames[1:]]
        for view, (thread_name, anchors) in _PROFILE_VIEWS.items():
            if thread_name not in thread:
                continue
            below = [i for i, f in enumerate(names) if f in anchors or f.endswith(anchors)]
            if not below:
                continue
            start = below[-1] + 1
            key = " > ".join(names[start : start + depth]) or "(self)"
            views[view][key] = views[view].get(key, 0) + int(count)
    summary: dict[str, Any] = {"rate_hz": 50}
    for view, counts in views.items():
        total = sum(counts.values())
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:12]
        summary[view] = {
            "samples": total,
            "top": [{"path": k, "share": round(v / total, 3)} for k, v in top] if total else [],
        }
    return summary


# ----- WebSockets: an echo upstream and long-lived clients through a proxy -------------


def _websocket_main(conn: Any) -> None:
    """Child process: a WebSocket echo server on a free 127.0.0.1 port (the upstream),
    and on request long-lived clients that connect to it through a proxy.

    Commands on `conn`: ("open", proxy_port, host, count) opens `count` connections to
    ws://<host>/ via 127.0.0.1:proxy_port (so `Host` is the proxy host's name); each
    sends a message every WS_INTERVAL seconds and waits for its echo. ("close",) ends
    them and answers one record per connection: whether it opened, echoes received, and
    the error that closed it early (None if it lasted until "close"). ("stop",) exits.
    """
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    async def echo(ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async def hold(index: int, port: int, host: str, stop: asyncio.Event, rec: dict) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            async with connect(
                f"ws://{host}/", sock=sock, open_timeout=10, ping_interval=None, compression=None
            ) as ws:
                rec["opened"] = True
                while not stop.is_set():
                    message = f"{index}:{rec['echoes']}"
                    await ws.send(message)
                    if await asyncio.wait_for(ws.recv(), 10) != message:
                        rec["error"] = "wrong echo"
                        return
                    rec["echoes"] += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), WS_INTERVAL)
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
            rec["closed_after_s"] = round(time.monotonic() - rec["started"], 3)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            conn.send(("ready", port))
            stop = asyncio.Event()
            tasks: list[asyncio.Task] = []
            records: list[dict[str, Any]] = []
            while True:
                message = await loop.run_in_executor(None, conn.recv)
                if message[0] == "open":
                    _, proxy_port, host, count = message
                    stop = asyncio.Event()
                    records = [
                        {"opened": False, "echoes": 0, "error": None, "started": time.monotonic()}
                        for _ in range(count)
                    ]
                    tasks = [
                        asyncio.ensure_future(hold(i, proxy_port, host, stop, rec))
                        for i, rec in enumerate(records)
                    ]
                    deadline = time.monotonic() + 15
                    while time.monotonic() < deadline and not all(
                        r["opened"] or r["error"] for r in records
                    ):
                        await asyncio.sleep(0.05)
                    conn.send(sum(1 for r in records if r["opened"]))
                elif message[0] == "close":
                    stop.set()
                    if tasks:
                        await asyncio.wait(tasks, timeout=15)
                    conn.send(records)
                else:
                    return

    asyncio.run(main())


WS_INTERVAL = 0.5


class WebSockets:
    """The WebSocket child process (`_websocket_main`): `port` is the echo upstream."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=_websocket_main, args=(child,), daemon=True)
        self.proc.start()
        if not self.conn.poll(30):
            raise RuntimeError("WebSocket process did not start")
        _, self.port = self.conn.recv()

    def open(self, proxy_port: int, host: str, count: int) -> int:
        """Open `count` long-lived connections through the proxy; returns how many opened."""
        self.conn.send(("open", proxy_port, host, count))
        if not self.conn.poll(30):
            raise TimeoutError("WebSocket clients did not open")
        return self.conn.recv()

    def close(self) -> dict[str, Any]:
        """End the connections: held (opened), dropped (closed before this call), errors."""
        self.conn.send(("close",))
        if not self.conn.poll(30):
            raise TimeoutError("WebSocket clients did not close")
        records = self.conn.recv()
        opened = [r for r in records if r["opened"]]
        dropped = [r for r in opened if r["error"]]
        return {
            "count": len(records),
            "opened": len(opened),
            "dropped": len(dropped),
            "echoes": sum(r["echoes"] for r in records),
            "errors": [r["error"] for r in records if r["error"]][:10],
            "records": records,
        }

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(("stop",))
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# ----- 100 mixed routine changes under wrk ---------------------------------------------


def nginx_pids(pid_file: Path) -> dict[str, Any]:
    """nginx's master pid (from its pid file) and its worker pids (children of the
    master whose command line says "worker process"), from /proc."""
    try:
        master = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return {"master": None, "workers": [], "draining": 0}
    children = [(pid, _cmdline(pid)) for pid in _children().get(master, [])]
    # an old worker after a reload reads "worker process is shutting down": not serving
    return {
        "master": master,
        "workers": sorted(
            p for p, cmd in children if "worker process" in cmd and "down" not in cmd
        ),
        "draining": sum(1 for _, cmd in children if "shutting down" in cmd),
    }


def pid_changes(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """From pid snapshots (before the phase, then after each change): whether the master
    changed, and after how many changes the worker set differed from the one before."""
    masters = {s["master"] for s in snapshots}
    worker_changes = sum(
        1 for a, b in zip(snapshots, snapshots[1:], strict=False) if a["workers"] != b["workers"]
    )
    return {
        "master_changed": len(masters) > 1,
        "worker_set_changes": worker_changes,
        "before": snapshots[0] if snapshots else None,
        "after": snapshots[-1] if snapshots else None,
    }


MIXED_KINDS = (
    "upstream port",
    "create host",
    "names",
    "disable/enable",
    "certificate",
    "force-SSL/HSTS",
    "default site",
    "delete host",
)


class MixedChanges:
    """The routine changes of the mixed phase, each as (probe, API call), with the state
    they toggle. Hosts (all created by the size's setup, so N >= 8): h0 switches
    upstream port (the wrk target, so wrk keeps getting 200s), h2 switches between two
    certificates, h3 is disabled and enabled, h4 toggles force-SSL + HSTS, h6 is renamed
    and back; "create host" adds mixed<k>.bench.test and "delete host" deletes the last
    one created; "default site" switches between the congratulations page (200) and 404.
    """

    def __init__(
        self,
        api: Api,
        ports: tuple[int, int],
        certs: list[tuple[int, str]],
    ) -> None:
        self.api = api
        self.ports = ports
        self.certs = certs  # (id, sha256 of the DER) of the two certificates
        self.ids = {index: _host_id(api, index) for index in (0, 2, 3, 4, 6)}
        host = api_ok(api, "GET", f"/api/nginx/proxy-hosts/{self.ids[0]}")
        self.on_b = host["forward_port"] == ports[1]
        self.cert_index = 0
        self.disabled = False
        self.forced = False
        self.renamed = False
        self.default_404 = False
        self.created: list[int] = []
        self.serial = 0

    def change(self, kind: str) -> tuple[dict[str, Any], Callable[[], None]]:
        """(probe of the new state, the API call) for the next change of `kind`."""
        api = self.api
        path = "/api/nginx/proxy-hosts"
        if kind == "upstream port":
            self.on_b = not self.on_b
            port, body = (self.ports[1], BODY_B) if self.on_b else (self.ports[0], BODY_A)
            return probe(host_name(0), body=body), lambda: api_ok(
                api, "PUT", f"{path}/{self.ids[0]}", {"forward_port": port}
            )
        if kind == "create host":
            self.serial += 1
            name = f"mixed{self.serial}.{DOMAIN}"
            body = {
                "domain_names": [name],
                "forward_scheme": "http",
                "forward_host": "127.0.0.1",
                "forward_port": self.ports[0],
                "certificate_id": self.certs[0][0],
            }

            def create() -> None:
                self.created.append(int(api_ok(api, "POST", path, body, expect=201)["id"]))

            return probe(name, body=BODY_A), create
        if kind == "delete host":
            host_id = self.created.pop()
            return probe(f"mixed{self.serial}.{DOMAIN}", body=BODY_A, negate=True), lambda: api_ok(
                api, "DELETE", f"{path}/{host_id}"
            )
        if kind == "names":
            self.renamed = not self.renamed
            name = f"h6-renamed.{DOMAIN}" if self.renamed else host_name(6)
            return probe(name, body=BODY_A), lambda: api_ok(
                api, "PUT", f"{path}/{self.ids[6]}", {"domain_names": [name]}
            )
        if kind == "disable/enable":
            self.disabled = not self.disabled
            verb = "disable" if self.disabled else "enable"
            return probe(host_name(3), body=BODY_A, negate=self.disabled), lambda: api_ok(
                api, "POST", f"{path}/{self.ids[3]}/{verb}"
            )
        if kind == "certificate":
            self.cert_index = 1 - self.cert_index
            cert_id, sha = self.certs[self.cert_index]
            return probe(host_name(2), cert_sha256=sha), lambda: api_ok(
                api, "PUT", f"{path}/{self.ids[2]}", {"certificate_id": cert_id}
            )
        if kind == "force-SSL/HSTS":
            self.forced = not self.forced
            flags = {"ssl_forced": self.forced, "hsts_enabled": self.forced}
            expected = (
                probe(host_name(4), status=301) if self.forced else probe(host_name(4), body=BODY_A)
            )
            return expected, lambda: api_ok(api, "PUT", f"{path}/{self.ids[4]}", flags)
        if kind == "default site":
            self.default_404 = not self.default_404
            value = "404" if self.default_404 else "congratulations"
            return probe(f"nowhere.{DOMAIN}", status=404 if self.default_404 else 200), (
                lambda: api_ok(api, "PUT", "/api/settings/default-site", {"value": value})
            )
        raise ValueError(f"unknown change kind {kind!r}")


def summarize_changes(changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per change kind (and "all"): count and p50/max of api_ms, live_ms, call_to_live_ms."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        kinds.setdefault(change["kind"], []).append(change)
        kinds.setdefault("all", []).append(change)
    summary = {}
    for kind, items in kinds.items():
        row: dict[str, Any] = {"count": len(items)}
        for key in ("api_ms", "live_ms", "call_to_live_ms"):
            values = [c[key] for c in items if c.get(key) is not None]
            row[key] = {
                "p50": round(statistics.median(values), 1) if values else None,
                "max": max(values) if values else None,
            }
        summary[kind] = row
    return summary


def _all_p50(phase: dict[str, Any]) -> float | None:
    """call→live p50 over all the phase's changes (None when none ran)."""
    return phase["by_kind"].get("all", {}).get("call_to_live_ms", {}).get("p50")


def mixed_phase(
    pw: PortwayProcess,
    api: Api,
    upstream: UpstreamNginx,
    sockets: WebSockets,
    certs: list[tuple[int, str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """`args.mixed` routine changes through Portway's API under wrk and long-lived
    WebSockets; see bench/README.md ("100 mixed routine changes")."""
    api_ok(
        api,
        "POST",
        "/api/nginx/proxy-hosts",
        {
            "domain_names": [f"ws.{DOMAIN}"],
            "forward_scheme": "http",
            "forward_host": "127.0.0.1",
            "forward_port": sockets.port,
            "allow_websocket_upgrade": True,
        },
        expect=201,
    )
    bounded_poll(lambda: not api.status()["pending"], args.live_timeout, 0.05, "ws host apply")
    mixed = MixedChanges(api, (upstream.port_a, upstream.port_b), certs)
    pid_file = pw.data_dir / "nginx" / "run" / "nginx.pid"
    opened = sockets.open(pw.http_port, f"ws.{DOMAIN}", args.websockets)
    bound = args.mixed * (args.change_timeout + args.mixed_gap + 5) + 60
    wrk = Wrk(pw.http_port, host_name(0), args.wrk_threads, args.wrk_connections, bound).start()
    time.sleep(1.0)
    snapshots = [nginx_pids(pid_file)]
    changes: list[dict[str, Any]] = []
    poller = Poller(pw.http_port, pw.https_port)
    try:
        phase_started = time.monotonic()
        for k in range(args.mixed):
            if time.monotonic() - phase_started > args.mixed_budget:
                log(f"  mixed phase: --mixed-budget used up after {k} changes")
                break
            kind = MIXED_KINDS[k % len(MIXED_KINDS)]
            spec, call = mixed.change(kind)
            before = api.status()
            record = timed_change(
                poller, spec, call, args.change_timeout, lambda b=before: settled(api, b)
            )
            snapshots.append(nginx_pids(pid_file))
            record["kind"] = kind
            record["workers_changed"] = snapshots[-1]["workers"] != snapshots[-2]["workers"]
            changes.append(record)
            if (k + 1) % 10 == 0:
                log(
                    f"  mixed change {k + 1}/{args.mixed} ({kind}): call→live "
                    f"{record['call_to_live_ms']} ms, path {record['apply_path']}"
                )
            time.sleep(args.mixed_gap)
    finally:
        poller.close()
        load = wrk.stop()
        held = sockets.close()
    paths: dict[str, int] = {}
    for change in changes:
        paths[str(change["apply_path"])] = paths.get(str(change["apply_path"]), 0) + 1
    return {
        "changes": changes,
        "by_kind": summarize_changes(changes),
        "wrk": load,
        "websockets": {**held, "opened_at_start": opened},
        "pids": pid_changes(snapshots),
        "apply_paths": paths,
    }


class CaddyAdmin:
    """Caddy started with only its admin API (127.0.0.1:<free port>); configs are then
    loaded with POST /load (the whole config each time: Caddy's own way to change it)."""

    def __init__(self, workdir: Path, cert: tuple[Path, Path]) -> None:
        self.workdir = workdir
        self.cert = cert
        self.http_port = free_port()
        self.https_port = free_port()
        self.admin_port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> CaddyAdmin:
        from dataplane import caddy_environment  # bench/dataplane.py

        self.workdir.mkdir(parents=True, exist_ok=True)
        initial = self.workdir / "initial.json"
        initial.write_text(json.dumps({"admin": {"listen": f"127.0.0.1:{self.admin_port}"}}))
        self.proc = subprocess.Popen(
            [shutil.which("caddy") or "caddy", "run", "--config", str(initial)],
            stdin=subprocess.DEVNULL,
            stdout=open(self.workdir / "caddy.log", "wb"),  # noqa: SIM115 (child owns it)
            stderr=subprocess.STDOUT,
            env=caddy_environment(self.workdir),
            start_new_session=True,
        )
        bounded_poll(lambda: self._admin("GET", "/config/")[0] == 200, 30, 0.05, "caddy admin")
        return self

    def _admin(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=300)
        try:
            conn.request(method, path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def load(self, routes: dict[str, str]) -> None:
        """POST /load a config routing each name to its dial address (`caddy_config`)."""
        from dataplane import caddy_config  # bench/dataplane.py

        config = caddy_config(
            routes,
            self.http_port,
            self.https_port,
            self.cert,
            self.workdir / "storage",
            admin_listen=f"127.0.0.1:{self.admin_port}",
        )
        code, data = self._admin("POST", "/load", json.dumps(config).encode())
        if code != 200:
            raise RuntimeError(f"caddy /load: {code} {data[:500]!r}")

    def stop(self) -> None:
        terminate(self.proc)


def caddy_phase(
    n: int,
    upstream: UpstreamNginx,
    sockets: WebSockets,
    cert: tuple[Path, Path],
    workdir: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The same N hosts in Caddy, then `args.caddy_changes` routine changes through its
    admin API under wrk and long-lived WebSockets: alternately host 0's upstream port
    switched and a route added (see bench/README.md)."""
    dial_a, dial_b = (f"127.0.0.1:{p}" for p in (upstream.port_a, upstream.port_b))
    routes = {host_name(i): dial_a for i in range(n)}
    routes[f"ws.{DOMAIN}"] = f"127.0.0.1:{sockets.port}"
    caddy = CaddyAdmin(workdir, cert).start()
    result: dict[str, Any] = {}
    try:
        started = time.monotonic()
        caddy.load(routes)
        bounded_poll(
            lambda: raw_get("127.0.0.1", caddy.http_port, host_name(0))[1] == BODY_A,
            60,
            0.02,
            "caddy serving",
        )
        result["initial_load_s"] = round(time.monotonic() - started, 3)
        assert caddy.proc is not None
        pid_before = caddy.proc.pid
        opened = sockets.open(caddy.http_port, f"ws.{DOMAIN}", args.websockets)
        bound = args.caddy_changes * (args.change_timeout + args.mixed_gap + 5) + 60
        wrk = Wrk(
            caddy.http_port, host_name(0), args.wrk_threads, args.wrk_connections, bound
        ).start()
        time.sleep(1.0)
        changes: list[dict[str, Any]] = []
        poller = Poller(caddy.http_port, caddy.https_port)
        on_b = False
        try:
            for k in range(args.caddy_changes):
                if k % 2 == 0:
                    kind = "upstream port"
                    on_b = not on_b
                    routes[host_name(0)] = dial_b if on_b else dial_a
                    spec = probe(host_name(0), body=BODY_B if on_b else BODY_A)
                else:
                    kind = "create host"
                    name = f"mixed{k}.{DOMAIN}"
                    routes[name] = dial_a
                    spec = probe(name, body=BODY_A)
                record = timed_change(
                    poller, spec, lambda r=dict(routes): caddy.load(r), args.change_timeout
                )
                record["kind"] = kind
                changes.append(record)
                time.sleep(args.mixed_gap)
        finally:
            poller.close()
            load = wrk.stop()
            held = sockets.close()
        alive = caddy.proc.poll() is None
        result.update(
            changes=changes,
            by_kind=summarize_changes(changes),
            wrk=load,
            websockets={**held, "opened_at_start": opened},
            pids={"master_changed": not alive or caddy.proc.pid != pid_before},
            memory_kb=_status_kb(caddy.proc.pid, "VmRSS"),
        )
        log(
            f"N={n}: caddy {len(changes)} changes, call→live p50 "
            f"{_all_p50(result)} ms; wrk failed "
            f"{load.get('failed')}; WebSockets dropped {held['dropped']}/{held['opened']}"
        )
        return result
    finally:
        caddy.stop()


def bench_size(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    log(f"N={n}: starting")
    result: dict[str, Any] = {"n": n, "loadavg_at_start": os.getloadavg()[0]}
    upstream = UpstreamNginx(workdir / f"upstream-{n}").start()
    pw = PortwayProcess(workdir / f"portway-{n}")
    t0 = time.monotonic()
    pw.start(timeout=120)
    pid = pw.proc.pid  # type: ignore[union-attr]
    result["startup_s"] = round(time.monotonic() - t0, 3)
    sampler = Sampler(pid)
    sampler.start()
    profiler: subprocess.Popen | None = None
    api: Api | None = None
    try:
        api = Api(pw.admin_port, pw.token)
        leaf = bench_leaf()
        cert_id = upload_certificate(api, leaf)
        bounded_poll(lambda: not api.status()["pending"], 60, 0.02, "certificate apply")
        if args.profile and n == max(args.sizes) and shutil.which("py-spy"):
            profile_path = args.results_dir / f"py-spy-{args.stamp}-{n}.txt"
            profiler = start_profiler(pid, profile_path, 3600)

        # --- create N hosts ----------------------------------------------------------
        log_offset = len(read_log(pw).encode())
        cpu_before = cpu_seconds(pid)
        t_start = time.monotonic()
        create = create_hosts(
            api, list(range(n)), upstream.port_a, cert_id, args.threads, args.create_budget
        )
        result["create"] = create
        log(
            f"N={n}: created {create['created']} hosts in {create['seconds']} s "
            f"({create['hosts_per_s']} hosts/s, POST p50 {create['latency_ms']['p50']} ms)"
        )
        if create["errors"]:
            log(f"N={n}: create errors: {create['errors'][:3]}")
        if create["created"] < n:
            # The API did not create every host within the budget: insert the others
            # directly (bulk_create), then one API change makes the engine apply them all.
            log(f"N={n}: create budget used up; inserting the other hosts into the database")
            seeded = run_helper(
                "_seed",
                pw.environment(),
                ["--count", str(n), "--cert-id", str(cert_id), "--port", str(upstream.port_a)],
                timeout=600,
            )
            result["seeded"] = seeded["seeded"]
            bounded_poll(lambda: not api.status()["pending"], args.live_timeout, 0.05, "idle")
            t_start = time.monotonic()
            code, data = api.call(
                "PUT",
                f"/api/nginx/proxy-hosts/{_host_id(api, 0)}",
                {"forward_port": upstream.port_a},
            )
            if code != 200:
                raise RuntimeError(f"trigger apply: {code} {data}")
        live = wait_live(pw, api, n, BODY_A, args.live_timeout)
        result["all_live_s"] = round(time.monotonic() - t_start, 3)
        result["after_create_s"] = live["pending_cleared_s"]
        status = live["status"]
        cpu_after = cpu_seconds(pid)
        result["create_cpu_s"] = {
            "portway": round(cpu_after[0] - cpu_before[0], 1),
            "nginx_t_children": round(cpu_after[1] - cpu_before[1], 1),
        }
        applies = portway_applies(read_log(pw, log_offset))
        result["create_applies"] = {
            "count": len(applies),
            "seconds_total": round(sum(s for _, s in applies), 2),
            "last": applies[-1] if applies else None,
            "max_seconds": max((s for _, s in applies), default=None),
        }
        result["apply_seconds_after_create"] = status["last_apply_seconds"]
        if status.get("last_error"):
            result["last_error"] = status["last_error"]
        result["tls"] = tls_check(pw, 0)
        log(
            f"N={n}: all live {result['all_live_s']} s after the "
            f"{'apply trigger' if result.get('seeded') else 'first POST'} "
            f"({len(applies)} applies, last {status['last_apply_seconds']} s)"
        )

        # --- load + changes ------------------------------------------------------------
        target = 0
        host_id = _host_id(api, target)
        result["wrk_baseline"] = Wrk(
            pw.http_port, host_name(target), args.wrk_threads, args.wrk_connections, 600
        ).run(args.duration)
        log(
            f"N={n}: wrk baseline {result['wrk_baseline'].get('rps')} req/s, "
            f"failed {result['wrk_baseline'].get('failed')}"
        )
        wrk = Wrk(
            pw.http_port,
            host_name(target),
            args.wrk_threads,
            args.wrk_connections,
            (args.change_timeout + args.change_gap + 5) * args.changes + 60,
        ).start()
        time.sleep(1.0)
        try:
            changes = change_loop(
                pw,
                api,
                host_id,
                target,
                (upstream.port_a, upstream.port_b),
                args.changes,
                args.change_timeout,
                args.change_gap,
            )
        finally:
            load = wrk.stop()
        result["changes"] = changes
        result["wrk_changes"] = load
        live_ms = [c["live_ms"] for c in changes]
        result["change_live_ms"] = {
            "p50": round(statistics.median(live_ms), 1),
            "max": max(live_ms),
            "min": min(live_ms),
        }
        applied = [c["apply_seconds"] for c in changes if c["apply_seconds"] is not None]
        result["apply_seconds"] = round(statistics.median(applied), 3) if applied else None
        log(
            f"N={n}: changes live p50 {result['change_live_ms']['p50']} ms, "
            f"max {result['change_live_ms']['max']} ms; wrk {load.get('rps')} req/s, "
            f"failed {load.get('failed')}"
        )

        # --- sizes and memory ----------------------------------------------------------
        live_dir = (pw.data_dir / "nginx" / "live").resolve()
        size, files = dir_size(live_dir)
        gens, gen_files = dir_size(pw.data_dir / "nginx" / "generations")
        result["config"] = {
            "live_bytes": size,
            "live_files": files,
            "generations_bytes": gens,
            "generations_files": gen_files,
            "nginx_conf_bytes": (live_dir / "nginx.conf").stat().st_size,
        }
        result["memory"] = sampler.finish()
        result["loadavg_after_changes"] = os.getloadavg()[0]

        # --- 100 mixed routine changes under wrk, then the same kind through Caddy ----
        if args.mixed or args.caddy_changes:
            sockets = WebSockets()
            try:
                if args.mixed and n >= 8:
                    second = bench_leaf("portway-bench-2")
                    certs = [
                        (cert_id, der_sha256(leaf)),
                        (upload_certificate(api, second), der_sha256(second)),
                    ]
                    log(f"N={n}: {args.mixed} mixed routine changes under wrk")
                    result["mixed"] = mixed_phase(pw, api, upstream, sockets, certs, args)
                    log(
                        f"N={n}: mixed call→live p50 "
                        f"{_all_p50(result['mixed'])} ms; "
                        f"wrk failed {result['mixed']['wrk'].get('failed')}; WebSockets "
                        f"dropped {result['mixed']['websockets']['dropped']}; "
                        f"paths {result['mixed']['apply_paths']}"
                    )
                if args.caddy_changes and shutil.which("caddy"):
                    log(f"N={n}: Caddy with the same hosts, {args.caddy_changes} changes")
                    cert_files = leaf.write(workdir / f"cert-{n}")
                    result["caddy"] = caddy_phase(
                        n, upstream, sockets, cert_files, workdir / f"caddy-{n}", args
                    )
            finally:
                sockets.stop()

        # --- a few more hosts through the API, now that N exist ------------------------
        if args.marginal:
            extra = list(range(n, n + args.marginal))
            marginal = create_hosts(
                api, extra, upstream.port_a, cert_id, args.threads, args.marginal_budget
            )
            started = time.monotonic()
            bounded_poll(
                lambda: not api.status()["pending"], args.live_timeout, 0.05, "marginal apply"
            )
            marginal["live_after_last_post_s"] = round(time.monotonic() - started, 3)
            result["create_at_n"] = marginal
            log(
                f"N={n}: {marginal['created']} more hosts at {marginal['hosts_per_s']} hosts/s "
                f"(POST p50 {marginal['latency_ms']['p50']} ms)"
            )
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
            result["profile"] = summarize_profile(profile_path)
            result["profile"]["file"] = str(profile_path)

        # --- stage timings -------------------------------------------------------------
        if not args.no_stages:
            log(f"N={n}: timing the stages of one apply")
            try:
                result["stages"] = run_helper("_stages", pw.environment(), [], timeout=900)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                result["stages"] = {"error": str(exc)[-1500:]}
        return result
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        if sampler.is_alive():
            sampler.finish()
        if api is not None:
            api.close()
        pw.close()
        upstream.stop()


def _host_id(api: Api, index: int) -> int:
    code, data = api.call("GET", f"/api/nginx/proxy-hosts?query={host_name(index)}")
    if code != 200:
        raise RuntimeError(f"find host {index}: {code} {data}")
    for host in data:
        if host["domain_names"] == [host_name(index)]:
            return int(host["id"])
    raise RuntimeError(f"host {host_name(index)} not found")


# ----- report --------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    """The results side by side: one column per N."""

    def g(r: dict[str, Any], *path: str) -> Any:
        value: Any = r
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    def pair(a: Any, b: Any, digits: int = 1) -> str:
        return f"{_fmt(a, digits)} / {_fmt(b, digits)}"

    def mb(kb: int | None) -> float | None:
        return None if kb is None else kb / 1024

    def put_p50(r: dict[str, Any]) -> float | None:
        return statistics.median(c["api_ms"] for c in r["changes"]) if r.get("changes") else None

    stage_keys = ("load_state", "render", "write_files", "nginx_t")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("create throughput (hosts/s)", lambda r: _fmt(g(r, "create", "hosts_per_s"))),
        (
            "  first / last tenth (hosts/s)",
            lambda r: pair(
                g(r, "create", "first_tenth_hosts_per_s"), g(r, "create", "last_tenth_hosts_per_s")
            ),
        ),
        (
            "  POST p50 / p95 (ms)",
            lambda r: pair(
                g(r, "create", "latency_ms", "p50"), g(r, "create", "latency_ms", "p95")
            ),
        ),
        (
            "  created via API / seeded",
            lambda r: pair(g(r, "create", "created"), r.get("seeded", 0)),
        ),
        (
            "  more at N: hosts/s, POST p50 (ms)",
            lambda r: pair(
                g(r, "create_at_n", "hosts_per_s"), g(r, "create_at_n", "latency_ms", "p50")
            ),
        ),
        ("time to all live (s)", lambda r: _fmt(r.get("all_live_s"), 2)),
        ("  of which after the last POST (s)", lambda r: _fmt(r.get("after_create_s"), 2)),
        ("  applies during create", lambda r: _fmt(g(r, "create_applies", "count"))),
        (
            "change→live p50 / max (ms)",
            lambda r: pair(g(r, "change_live_ms", "p50"), g(r, "change_live_ms", "max")),
        ),
        ("  PUT latency p50 (ms)", lambda r: _fmt(put_p50(r))),
        ("failed requests during applies", lambda r: _fmt(g(r, "wrk_changes", "failed"))),
        (
            "  non-2xx / socket errors",
            lambda r: pair(g(r, "wrk_changes", "non_2xx"), g(r, "wrk_changes", "socket_errors")),
        ),
        ("  requests during applies", lambda r: _fmt(g(r, "wrk_changes", "requests"))),
        (
            "wrk req/s: during changes / baseline",
            lambda r: pair(g(r, "wrk_changes", "rps"), g(r, "wrk_baseline", "rps"), 0),
        ),
        (
            "  wrk p99 latency (ms): changes / base",
            lambda r: pair(
                (g(r, "wrk_changes", "latency_us", "p99") or 0) / 1000,
                (g(r, "wrk_baseline", "latency_us", "p99") or 0) / 1000,
            ),
        ),
        ("apply seconds (median of changes)", lambda r: _fmt(r.get("apply_seconds"), 2)),
        (
            "  load/render/write/nginx -t (s)",
            lambda r: " / ".join(_fmt(g(r, "stages", "timings", k), 2) for k in stage_keys),
        ),
        (
            "  preflight of one host (s)",
            lambda r: _fmt(g(r, "stages", "timings", "preflight_one_host"), 3),
        ),
        (
            "RSS portway / nginx peak (MB)",
            lambda r: pair(
                mb(g(r, "memory", "portway_hwm_kb")), mb(g(r, "memory", "nginx_rss_kb"))
            ),
        ),
        (
            "  nginx PSS peak / nginx -t RSS (MB)",
            lambda r: pair(
                mb(g(r, "memory", "nginx_pss_kb")), mb(g(r, "memory", "nginx_test_rss_kb"))
            ),
        ),
        (
            "nginx config on disk (MB / files)",
            lambda r: pair(
                (g(r, "config", "live_bytes") or 0) / MB, g(r, "config", "live_files"), 2
            ),
        ),
    ]

    def cell(fn: Callable[[dict[str, Any]], str], r: dict[str, Any]) -> str:
        try:
            return fn(r)
        except (TypeError, ValueError, KeyError, statistics.StatisticsError):
            return "-"

    header = ["N", *[_fmt(r["n"]) for r in results]]
    lines = [[label, *[cell(fn, r) for r in results]] for label, fn in rows]
    if any("error" in r for r in results):
        lines.append(["error", *[("yes" if "error" in r else "") for r in results]])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def render(row: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
        )

    return "\n".join([render(header), "  ".join("-" * w for w in widths), *map(render, lines)])


def _grid(header: list[str], lines: list[list[str]], left: int = 1) -> str:
    """Rows as aligned text: the first `left` columns left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def render(row: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i < left else c.rjust(widths[i]) for i, c in enumerate(row)
        )

    return "\n".join([render(header), "  ".join("-" * w for w in widths), *map(render, lines)])


def mixed_tables(results: list[dict[str, Any]]) -> str:
    """The mixed phase (Portway) and the Caddy phase of every size: per change kind, then
    what the load and the WebSockets saw. Empty when neither ran."""
    per_kind: list[list[str]] = []
    load: list[list[str]] = []
    for r in results:
        for system in ("mixed", "caddy"):
            phase = r.get(system)
            if not phase or "by_kind" not in phase:
                continue
            label = "portway" if system == "mixed" else "caddy"
            kinds = [k for k in (*MIXED_KINDS, "all") if k in phase["by_kind"]]
            for kind in kinds:
                row = phase["by_kind"][kind]
                per_kind.append(
                    [
                        _fmt(r["n"]),
                        label,
                        kind,
                        _fmt(row["count"]),
                        _fmt(row["api_ms"]["p50"]),
                        f"{_fmt(row['live_ms']['p50'])} / {_fmt(row['live_ms']['max'])}",
                        f"{_fmt(row['call_to_live_ms']['p50'])} / "
                        f"{_fmt(row['call_to_live_ms']['max'])}",
                    ]
                )
            wrk = phase.get("wrk", {})
            ws = phase.get("websockets", {})
            pids = phase.get("pids", {})
            workers = pids.get("worker_set_changes")
            paths = phase.get("apply_paths")
            load.append(
                [
                    _fmt(r["n"]),
                    label,
                    _fmt(wrk.get("rps"), 0),
                    _fmt((wrk.get("latency_us") or {}).get("p99", 0) / 1000),
                    _fmt(wrk.get("non_2xx")),
                    _fmt(wrk.get("socket_errors")),
                    f"{_fmt(ws.get('dropped'))} of {_fmt(ws.get('opened'))}",
                    "yes" if pids.get("master_changed") else "no",
                    "-" if workers is None else f"{workers} of {len(phase['changes'])}",
                    ", ".join(f"{k}: {v}" for k, v in paths.items()) if paths else "-",
                ]
            )
    if not per_kind:
        return ""
    first = _grid(
        [
            "N",
            "system",
            "change",
            "count",
            "API p50 ms",
            "resp→live p50 / max ms",
            "call→live p50 / max ms",
        ],
        per_kind,
        left=3,
    )
    second = _grid(
        [
            "N",
            "system",
            "wrk req/s",
            "p99 ms",
            "non-2xx",
            "socket errors",
            "WebSockets dropped",
            "master pid changed",
            "worker set changed",
            "apply path",
        ],
        load,
        left=2,
    )
    loads = [
        f"N={r['n']}: Caddy /load of the {r['n']:,} hosts took {r['caddy']['initial_load_s']} s"
        for r in results
        if (r.get("caddy") or {}).get("initial_load_s") is not None
    ]
    return "\n\n".join(
        ["Mixed routine changes under wrk (Portway's API; Caddy's admin API /load)", first, second]
        + (["\n".join(loads)] if loads else [])
    )


def machine() -> dict[str, Any]:
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "nginx": nginx,
        "wrk": (
            subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout or ""
        ).splitlines()[0:1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="helper")
    for name in ("_seed", "_stages"):
        helper = sub.add_parser(name)
        helper.add_argument("--env", required=True)
        if name == "_seed":
            for flag in ("--count", "--cert-id", "--port"):
                helper.add_argument(flag, type=int, required=True)
            helper.add_argument("--names-file")
            helper.add_argument("--all-certificates", action="store_true")
    parser.add_argument("--sizes", default="10,1000,10000", help="comma-separated host counts")
    parser.add_argument("--quick", action="store_true", help="sizes 10,100 and a short load")
    parser.add_argument("--threads", type=int, default=8, help="concurrent API clients")
    parser.add_argument("--duration", type=float, default=8, help="wrk baseline seconds")
    parser.add_argument("--changes", type=int, default=5, help="upstream switches under load")
    parser.add_argument("--change-gap", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--change-timeout", type=float, default=180)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument(
        "--create-budget",
        type=float,
        default=240,
        help="seconds of API creation per size; hosts not created by then are inserted "
        "directly into the database (reported as seeded)",
    )
    parser.add_argument("--live-timeout", type=float, default=600)
    parser.add_argument(
        "--marginal", type=int, default=24, help="hosts created through the API once N exist"
    )
    parser.add_argument("--marginal-budget", type=float, default=120)
    parser.add_argument(
        "--mixed",
        type=int,
        default=100,
        help="mixed routine changes under wrk and WebSockets (0: skip the phase)",
    )
    parser.add_argument("--mixed-gap", type=float, default=0.2, help="seconds between them")
    parser.add_argument(
        "--mixed-budget",
        type=float,
        default=900,
        help="seconds after which the mixed phase makes no more changes (the reload path "
        "takes over a minute per change at 10,000 hosts); the table counts what ran",
    )
    parser.add_argument(
        "--websockets", type=int, default=4, help="long-lived WebSockets held during them"
    )
    parser.add_argument(
        "--caddy-changes",
        type=int,
        default=20,
        help="the same kind of changes through Caddy's admin API /load (0: no Caddy)",
    )
    parser.add_argument("--no-stages", action="store_true", help="skip the stage timings")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy record the largest size's creation"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if args.helper == "_seed":
        return helper_seed(args)
    if args.helper == "_stages":
        return helper_stages(args)

    args.sizes = [10, 100] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    if args.quick:
        args.duration = min(args.duration, 3)
        args.changes = min(args.changes, 3)
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (apt-get install -y {tool})", file=sys.stderr)
            return 2
    for key in [k for k in os.environ if k.startswith(("DB_MYSQL_", "DB_POSTGRES_"))]:
        del os.environ[key]  # the bench measures SQLite
    args.results_dir = RESULTS
    args.results_dir.mkdir(parents=True, exist_ok=True)
    args.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="portway-bench-"))
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    out_path = args.results_dir / f"apply-{args.stamp}.json"
    try:
        for n in args.sizes:
            try:
                results.append(bench_size(n, args, workdir))
            except Exception as exc:  # report what ran; the other sizes still run
                log(f"N={n}: FAILED: {exc!r}")
                results.append({"n": n, "error": repr(exc)})
            out_path.write_text(
                json.dumps(
                    {"machine": machine(), "args": _args_json(args), "results": results},
                    indent=2,
                )
            )
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    mixed = mixed_tables(results)
    if mixed:
        print(f"\n{mixed}")
    for r in results:
        for view in ("apply_thread", "create_requests"):
            top = (r.get("profile") or {}).get(view, {}).get("top", [])[:6]
            if top:
                print(f"\nN={r['n']} py-spy, {view.replace('_', ' ')}:")
                for entry in top:
                    print(f"  {entry['share'] * 100:5.1f}%  {entry['path']}")
    print(f"\n{len(results)} sizes in {time.monotonic() - started:.0f} s; results: {out_path}")
    return 1 if any("error" in r for r in results) else 0


def _args_json(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


if __name__ == "__main__":
    sys.exit(main())
