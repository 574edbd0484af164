"""Requests/s through the fast path's Lua router against a hand-written nginx config.

One host, HTTP keep-alive, `wrk -t2 -c32 -d5` (both sides alternate `--rounds` times):
- router: Portway's router (portway.nginx.fastpath) with one proxy host pushed to it;
- hand-written: `upstream { server ...; keepalive 32; }` + `proxy_pass http://upstream`,
  the same access log format to a file.
The upstream is a separate nginx (1 worker, `return 200`). Prints req/s and p99 per run;
not a test. Usage: python bench/fastpath_router.py [--rounds 2] [--duration 5]
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


def _wrk(port: int, duration: int) -> tuple[float, str]:
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
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return rate, p99 + (f" ({errors.group(0)})" if errors else "")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    import django

    django.setup()
    from portway.conf import PortwayConfig
    from portway.nginx import fastpath
    from portway.nginx.engine import ensure_default_certificate
    from portway.nginx.render import DefaultSite, Paths, ProxyHostSpec, Renderer
    from portway.testing.network import free_port

    root = Path(tempfile.mkdtemp(prefix="pw-router-bench-"))
    os.chmod(root, 0o755)
    up_port, router_port, hand_port = free_port(), free_port(), free_port()
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
            f"server {{ listen 127.0.0.1:{hand_port}; server_name h.bench.test;\n"
            "location / { proxy_pass http://u; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_set_header Host $host; } } }\n',
        )
    )
    data = root / "data"
    config = PortwayConfig(
        data_dir=data,
        admin_port=0,
        http_port=router_port,
        https_port=free_port(),
        bind_address="127.0.0.1",
        disable_ipv6=True,
        nginx_binary="nginx",
        resolver="",
        x_frame_options="DENY",
    )
    paths = Paths(data)
    for directory in (
        paths.base,
        paths.temp,
        paths.cache,
        paths.logs,
        paths.generations,
        paths.acme_webroot,
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
    paths.run.mkdir(mode=0o700, exist_ok=True)
    os.chmod(data, 0o755)
    ensure_default_certificate(paths.default_cert_dir)
    renderer, dataplane = Renderer(config, paths), fastpath.Dataplane(paths)
    host = ProxyHostSpec(
        id=1,
        domain_names=("h.bench.test",),
        forward_scheme="http",
        forward_host="127.0.0.1",
        forward_port=up_port,
    )
    state, _ = fastpath.fast_state([host], DefaultSite(), generation=1)
    dataplane.write_snapshot(state)
    generation = paths.generations / "g"
    generation.mkdir()
    main = renderer.main(
        "g",
        1,
        16,
        fast_main=dataplane.main_directives(),
        fast_http=dataplane.http_directives(state),
    )
    for config_file in (main, dataplane.router_servers(renderer, False)):
        (generation / config_file.relative_path).write_text(config_file.text())
    router = subprocess.Popen(
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
    procs.append(router)
    try:
        time.sleep(1)
        print(f"{'config':<14} {'req/s':>10}  p99", flush=True)
        for _ in range(args.rounds):
            for name, port in (("hand-written", hand_port), ("router", router_port)):
                rate, p99 = _wrk(port, args.duration)
                print(f"{name:<14} {rate:>10,.0f}  {p99}", flush=True)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
