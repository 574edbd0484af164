"""Incremental apply benchmark: what one routine change costs at N proxy hosts.

    python bench/apply_incremental.py                   # N = 1000, 10000
    python bench/apply_incremental.py --sizes 1000 --modes auto,off

Two measurements per N (half the hosts with a certificate and HTTP/2, SQLite, temp
directories, 127.0.0.1 high ports only):

- engine: load_state + render in this process against a database seeded with
  bulk_create: the first apply's cost (every row read and rendered) and one change's
  (one row saved, then only that row read and rendered again: portway.nginx.hostcache);
- serve: a real `portway serve` per PORTWAY_FAST_PATH mode, the hosts seeded, then
  `--changes` upstream switches of one host through the API, each timed from the PUT
  until a new connection gets the new upstream's answer (change→live), with the path
  the apply took (GET /api/nginx/status).

Prints one table; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))


def _engine_costs(count: int) -> dict[str, Any]:
    """Run `_engine_helper` in a child process (Django is configured once per process)."""
    with tempfile.TemporaryDirectory(prefix="pw-incr-") as data:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTWAY_")},
            "PORTWAY_DATA_DIR": data,
            "PORTWAY_ENV_FILE": "none",
            "PORTWAY_HTTP_PORT": "18080",
            "PORTWAY_HTTPS_PORT": "18443",
        }
        proc = subprocess.run(
            [sys.executable, __file__, "_engine", str(count)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=str(REPO),
        )
    if proc.returncode != 0:
        raise RuntimeError(f"engine helper failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _engine_helper(count: int) -> int:
    """Seed `count` proxy hosts, then time load_state + render: first apply, one change."""
    from portway.cli import _django, _migrate

    _django()
    _migrate()
    from portway import conf
    from portway.accounts.models import User
    from portway.certificates.models import Certificate
    from portway.hosts.models import ProxyHost
    from portway.nginx.engine import Engine

    owner = User.objects.create(email="bench@example.test", name="bench", is_admin=True)
    cert = Certificate.objects.create(owner=owner, provider="other", nice_name="bench")
    cert.directory.mkdir(parents=True, exist_ok=True)
    for name in ("fullchain.pem", "privkey.pem"):
        (cert.directory / name).write_text("bench")
    ProxyHost.objects.bulk_create(
        [
            ProxyHost(
                owner=owner,
                domain_names=[f"h{i}.bench.test"],
                first_domain=f"h{i}.bench.test",
                forward_scheme="http",
                forward_host="127.0.0.1",
                forward_port=9000,
                certificate=cert if i % 2 == 0 else None,
                http2_support=i % 2 == 0,
            )
            for i in range(count)
        ],
        batch_size=500,
    )
    engine = Engine(conf.load())

    def timed() -> dict[str, Any]:
        started = time.perf_counter()
        state = engine._load_state()
        loaded = time.perf_counter()
        engine._render_hosts(state.hosts, None)
        rendered = time.perf_counter()
        return {
            "load_ms": round((loaded - started) * 1000, 1),
            "render_ms": round((rendered - loaded) * 1000, 1),
            "rows_read": engine.hosts.loaded,
        }

    first = timed()
    host = ProxyHost.objects.order_by("id").first()
    host.forward_port += 1
    host.save()
    print(json.dumps({"first": first, "one_change": timed()}))
    return 0


def _serve_change_live(count: int, mode: str, changes: int) -> dict[str, Any]:
    """change→live through a real `portway serve` with PORTWAY_FAST_PATH=`mode`."""
    from portway.testing import certs
    from portway.testing.network import UpstreamServer
    from portway.testing.process import PortwayProcess, wait_for

    with (
        tempfile.TemporaryDirectory(prefix="pw-incr-serve-") as root,
        UpstreamServer("a") as first,
        UpstreamServer("b") as second,
    ):
        portway = PortwayProcess(Path(root) / "data", env={"PORTWAY_FAST_PATH": mode})
        with portway:
            leaf = certs.make_leaf(None, ["*.bench.test"], key_type="ec", label="bench")
            cert = portway.upload_certificate("bench", leaf.cert_pem, leaf.key_pem())
            env = portway.environment()
            seed = subprocess.run(
                [
                    sys.executable,
                    str(BENCH / "apply.py"),
                    "_seed",
                    "--env",
                    json.dumps(env),
                    "--count",
                    str(count),
                    "--cert-id",
                    str(cert["id"]),
                    "--port",
                    str(first.port),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if seed.returncode != 0:
                raise RuntimeError(f"seeding failed:\n{seed.stderr[-3000:]}")
            started = time.monotonic()
            probe = portway.create_proxy_host(["probe.bench.test"], first.port)
            portway.wait_applied(timeout=1800)
            first_apply = time.monotonic() - started
            path = f"/api/nginx/proxy-hosts/{probe['id']}"
            lives: list[float] = []
            for index in range(changes):
                target = (second, "b") if index % 2 == 0 else (first, "a")
                started = time.monotonic()
                status, body = portway.api("PUT", path, {"forward_port": target[0].port})
                assert status == 200, body
                wait_for(
                    lambda name=target[1]: portway.upstream_of("probe.bench.test") == name,
                    timeout=300,
                    interval=0.005,
                )
                lives.append(time.monotonic() - started)
            status = portway.api("GET", "/api/nginx/status")[1]
    return {
        "first_apply_s": round(first_apply, 2),
        "live_ms_p50": round(statistics.median(lives) * 1000, 1),
        "live_ms_max": round(max(lives) * 1000, 1),
        "path": status["last_apply_path"],
        "apply_s": status["last_apply_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or its engine helper, `_engine N`) and print the table."""
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["_engine"]:
        return _engine_helper(int(args_in[1]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated host counts")
    parser.add_argument("--modes", default="auto,off", help="PORTWAY_FAST_PATH values")
    parser.add_argument("--changes", type=int, default=10, help="upstream switches per mode")
    args = parser.parse_args(args_in)
    rows: list[tuple[str, ...]] = []
    for count in (int(size) for size in args.sizes.split(",")):
        costs = _engine_costs(count)
        for phase in ("first", "one_change"):
            c = costs[phase]
            rows.append(
                (
                    f"{count:,}",
                    f"engine {phase.replace('_', ' ')}",
                    f"load {c['load_ms']} ms + render {c['render_ms']} ms",
                    f"{c['rows_read']:,} rows read",
                )
            )
        for mode in args.modes.split(","):
            r = _serve_change_live(count, mode, args.changes)
            rows.append(
                (
                    f"{count:,}",
                    f"serve {mode}",
                    f"change→live p50 {r['live_ms_p50']} ms, max {r['live_ms_max']} ms",
                    f"path {r['path']}, apply {r['apply_s']} s, first {r['first_apply_s']} s",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
