"""Login-gate benchmark: requests/s through a gated proxy host vs an open one.

    python bench/gate.py                    # 10 s of wrk per host
    python bench/gate.py --duration 5 --connections 32

One fresh `portway serve` (SQLite, temp dir, 127.0.0.1 high ports) and one upstream
nginx answering "upstream-a" (bench/apply.py's UpstreamNginx). Two proxy hosts to it:
`open.bench.test` (no access list) and `gated.bench.test` (an access list with the
Portway login). A session cookie is obtained through the gated site's own login page,
then `wrk` puts the same load on each host in turn (the gated one with the cookie, so
every request passes nginx's auth_request to Portway's gate socket and reaches the
upstream). Prints a table on stdout, progress on stderr. Not a test: it asserts only
that every answer was a 200 (otherwise the numbers would measure something else).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for path in (str(REPO / "src"), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from apply import UpstreamNginx, log  # noqa: E402

from portway.testing.process import ADMIN_EMAIL, ADMIN_PASSWORD, PortwayProcess  # noqa: E402


def wrk(port: int, host: str, cookie: str | None, args: argparse.Namespace) -> dict:
    """One wrk run against nginx on 127.0.0.1:`port` with `Host: host`."""
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-H",
        f"Host: {host}",
    ]
    if cookie:
        command += ["-H", f"Cookie: portway_gate={cookie}"]
    command.append(f"http://127.0.0.1:{port}/")
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + 30, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.M))
    return {
        "rps": rps,
        "total": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1).strip() if errors else "none",
        "p50": latency.get("50", "?"),
        "p99": latency.get("99", "?"),
    }


CHECK_TIMING = """
import os, sys, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")
django.setup()
from portway.access.gate import decide
environ = {"HTTP_COOKIE": "portway_gate=" + sys.argv[1], "HTTP_HOST": sys.argv[2]}
list_id = int(sys.argv[3])
assert decide(list_id, environ)[0] == 200
n = 20000
start = time.perf_counter()
for _ in range(n):
    decide(list_id, environ)
print((time.perf_counter() - start) / n * 1e6)
"""


def check_cost(portway: PortwayProcess, cookie: str, host: str, list_id: int) -> float:
    """Microseconds per gate decision in-process (cached state: the per-request path)."""
    output = subprocess.run(
        [sys.executable, "-c", CHECK_TIMING, cookie, host, str(list_id)],
        env=portway.environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def sign_in(portway: PortwayProcess, host: str) -> str:
    """A gate session cookie for the admin, through the site's login page."""
    body = urlencode({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "/"}).encode()
    status, headers, _ = portway.http(
        host,
        "/.portway/login",
        method="POST",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 302, (status, headers)
    match = re.search(r"portway_gate=([^;]+)", headers.get("set-cookie", ""))
    assert match, headers
    return match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per host")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="portway-bench-gate-") as temp:
        root = Path(temp)
        root.chmod(0o755)  # nginx's workers traverse to the gate socket
        upstream = UpstreamNginx(root / "upstream").start()
        portway = PortwayProcess(root / "data")
        try:
            log("starting portway serve")
            portway.start()
            status, access_list = portway.api(
                "POST",
                "/api/nginx/access-lists",
                {"name": "bench gate", "portway_login": True},
            )
            assert status == 201, access_list
            for name, fields in (
                ("open.bench.test", {}),
                ("gated.bench.test", {"access_list_id": access_list["id"]}),
            ):
                portway.create_proxy_host([name], upstream.port_a, **fields)
            portway.wait_applied()
            gated = f"gated.bench.test:{portway.http_port}"
            cookie = sign_in(portway, gated)
            assert portway.http(gated, headers={"Cookie": f"portway_gate={cookie}"})[0] == 200
            assert portway.http("open.bench.test")[0] == 200
            results = {}
            for label, host, with_cookie in (
                ("open", "open.bench.test", None),
                ("gated (signed in)", gated, cookie),
            ):
                log(f"wrk on {label} for {args.duration}s")
                results[label] = wrk(portway.http_port, host, with_cookie, args)
                time.sleep(1)
            decision_us = check_cost(portway, cookie, "gated.bench.test", access_list["id"])
        finally:
            portway.close()
            upstream.stop()
    load = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, one run each"
    print(f"\nLogin gate: requests/s through a gated host vs an open one ({load})\n")
    print("| host | requests/s | p50 latency | p99 latency | non-2xx | socket errors |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for label, r in results.items():
        print(
            f"| {label} | {r['rps']:,.0f} | {r['p50']} | {r['p99']} | {r['non2xx']} "
            f"| {r['errors']} |"
        )
    base = results["open"]["rps"]
    share = results["gated (signed in)"]["rps"] / base if base else 0
    print(f"\ngated / open: {share:.0%} of the open host's throughput")
    print(f"the gate's decision itself (in-process, cached): {decision_us:.1f} µs per request")
    bad = any(r["non2xx"] for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
