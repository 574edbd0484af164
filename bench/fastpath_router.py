"""Requests/s through the fast path's Lua router against a hand-written nginx config.

One host, HTTP keep-alive, `wrk -t2 -c32 -d5` (the configs alternate `--rounds` times):
- hand-written: `upstream { server ...; keepalive 32; }` + `proxy_pass http://upstream`,
  the same access log format to a file;
- server block: the host as Portway renders it for the reload path (its own server
  block and keep-alive pool, its headers and its own access log);
- router: Portway's router (portway.nginx.fastpath) with the same host in its snapshot.
The upstream is a separate nginx (1 worker, `return 200`). Prints req/s, p99 and the CPU
time nginx (master and workers) spent per request (from /proc: steadier than req/s on a
shared machine); not a test. Usage: python bench/fastpath_router.py [--rounds 2]
[--duration 5]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")


def _nginx(prefix: Path, conf: str) -> subprocess.Popen:
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        ["nginx", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        start_new_session=True,
    )
    time.sleep(0.5)
    return proc


def _cpu_ticks(master: int) -> int:
    """utime + stime (clock ticks) of nginx master `master` and its children."""
    total = 0
    for pid in [master, *_children(master)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _children(master: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                found.append(int(entry.name))
    return found


def _wrk(port: int, duration: int, master: int) -> tuple[float, str, float]:
    before = _cpu_ticks(master)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{duration}",
            "--latency",
            "-H",
            "Host: h.bench.test",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ticks = _cpu_ticks(master) - before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"^\s*99%[ \t]+(\S+)\s*$", out, re.MULTILINE).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(requests, 1)
    return rate, p99 + (f" ({errors.group(0)})" if errors else ""), cpu_us


def _portway(
    directory: Path, up_port: int, fast: bool, certificate: Any
) -> tuple[subprocess.Popen, int, int]:
    """nginx as Portway renders it for one proxy host to `up_port` with `certificate`
    (a CertificateRef): through the router (`fast`) or with the host's own server block
    (the reload path). (master, HTTP port, HTTPS port)."""
    from portway.conf import PortwayConfig
    from portway.nginx import fastpath
    from portway.nginx.engine import ensure_default_certificate
    from portway.nginx.render import DefaultSite, Paths, ProxyHostSpec, Renderer
    from portway.testing.network import free_port

    port, tls_port = free_port(), free_port()
    data = directory / "data"
    config = PortwayConfig(
        data_dir=data,
        admin_port=0,
        http_port=port,
        https_port=tls_port,
        bind_address="127.0.0.1",
        disable_ipv6=True,
        nginx_binary="nginx",
        resolver="",
        x_frame_options="DENY",
    )
    paths = Paths(data)
    for path in (paths.base, paths.temp, paths.cache, paths.logs, paths.generations):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o755)
    paths.acme_webroot.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.acme_webroot, 0o755)
    paths.run.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o755)
    os.chmod(data, 0o755)
    ensure_default_certificate(paths.default_cert_dir)
    renderer, dataplane = Renderer(config, paths), fastpath.Dataplane(paths)
    host = ProxyHostSpec(
        id=1,
        domain_names=("h.bench.test",),
        forward_scheme="http",
        forward_host="127.0.0.1",
        forward_port=up_port,
        certificate=certificate,
    )
    generation = paths.generations / "g"
    (generation / "hosts").mkdir(parents=True)
    if fast:
        state, _ = fastpath.fast_state([host], DefaultSite(), generation=1)
        dataplane.write_snapshot(state)
        main = renderer.main(
            "g",
            1,
            16,
            fast_main=dataplane.main_directives(),
            fast_http=dataplane.http_directives(state),
        )
        files = [main, dataplane.router_servers(renderer, False)]
    else:
        files = [
            renderer.main("g", 1, 16),
            renderer.default_servers(DefaultSite(), generation),
            *renderer.default_site_files(DefaultSite()),
            renderer.proxy_host(host),
        ]
    for config_file in files:
        target = generation / config_file.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config_file.text())
        os.chmod(target.parent, 0o755)
        os.chmod(target, 0o644)
    master = subprocess.Popen(
        [
            "nginx",
            "-p",
            f"{paths.base}/",
            "-c",
            str(generation / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        start_new_session=True,
    )
    return master, port, tls_port


def _handshakes(port: int, seconds: int, master: int) -> tuple[float, float]:
    """New TLS handshakes (SNI h.bench.test, no session reuse) from one Python client for
    `seconds`: (handshakes/s, nginx CPU µs per handshake). The client is the bottleneck;
    the CPU per handshake is nginx's own cost."""
    import socket
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    before = _cpu_ticks(master)
    count, deadline = 0, time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        raw = socket.create_connection(("127.0.0.1", port))
        with context.wrap_socket(raw, server_hostname="h.bench.test"):
            count += 1
    elapsed = time.monotonic() - started
    ticks = _cpu_ticks(master) - before
    return count / elapsed, ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(count, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    import django

    django.setup()
    from portway.testing.network import free_port

    root = Path(tempfile.mkdtemp(prefix="pw-router-bench-"))
    os.chmod(root, 0o755)
    up_port, hand_port, hand_tls = free_port(), free_port(), free_port()
    from portway.nginx.render import CertificateRef
    from portway.testing.certs import make_leaf

    chain, key = make_leaf(None, ["h.bench.test"], key_type="ec").write(root / "cert")
    os.chmod(root / "cert", 0o755)
    certificate = CertificateRef(1, chain, key)
    procs = [
        _nginx(
            root / "upstream",
            "worker_processes 1; pid upstream.pid; error_log stderr warn;\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; server {{ listen 127.0.0.1:{up_port}; "
            'keepalive_requests 100000; location / { return 200 "upstream-a"; } } }\n',
        )
    ]
    log_format = (
        'log_format portway \'$remote_addr - $remote_user [$time_local] "$host" "$request" '
        '$status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time\';'
    )
    procs.append(
        _nginx(
            root / "hand",
            "worker_processes auto; pid hand.pid; error_log stderr warn;\n"
            "events { worker_connections 4096; }\n"
            f"http {{ {log_format} access_log {root}/hand/access.log portway;\n"
            f"upstream u {{ server 127.0.0.1:{up_port}; keepalive 32; }}\n"
            f"server {{ listen 127.0.0.1:{hand_port}; listen 127.0.0.1:{hand_tls} ssl;\n"
            f"server_name h.bench.test; ssl_certificate {chain}; ssl_certificate_key {key};\n"
            "location / { proxy_pass http://u; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_set_header Host $host; } } }\n',
        )
    )
    router_master, router_port, router_tls = _portway(root / "router", up_port, True, certificate)
    block_master, block_port, block_tls = _portway(root / "block", up_port, False, certificate)
    procs += [router_master, block_master]
    try:
        time.sleep(1)
        print(f"{'config':<14} {'req/s':>10} {'nginx CPU/req':>14}  p99", flush=True)
        configs = (
            ("hand-written", hand_port, procs[1].pid),
            ("server block", block_port, block_master.pid),
            ("router", router_port, router_master.pid),
        )
        for _ in range(args.rounds):
            for name, port, master in configs:
                rate, p99, cpu_us = _wrk(port, args.duration, master)
                print(f"{name:<14} {rate:>10,.0f} {cpu_us:>11.1f} us  {p99}", flush=True)
        print(f"\n{'config':<14} {'handshakes/s':>12} {'nginx CPU/handshake':>20}")
        for _ in range(args.rounds):
            for name, port, master in (
                ("hand-written", hand_tls, procs[1].pid),
                ("server block", block_tls, block_master.pid),
                ("router", router_tls, router_master.pid),
            ):
                rate, cpu_us = _handshakes(port, args.duration, master)
                print(f"{name:<14} {rate:>12,.0f} {cpu_us:>17.0f} us", flush=True)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
