"""The cost of the SNI front: HTTPS on one proxy host with and without a passthrough
tunnel host present (which puts the `ssl_preread` stream server and a unix-socket hop
with the PROXY protocol in front of every HTTPS connection); prints a table.

    python bench/passthrough.py               # 10 s per measurement
    python bench/passthrough.py --seconds 5   # quicker

For each setup, against nginx's HTTPS port:
- keep-alive requests/s: `wrk -t2 -c32` (one TLS handshake per connection, then
  requests on it);
- new TLS handshakes/s: 2 client threads each connecting, completing a full TLS 1.3
  handshake (P-256 certificate, no session resumption) with the host's SNI name and
  closing;
and the same handshakes with a TLS server nginx does not terminate (an nginx of its own
on a high port): straight to its port in "plain", through the passthrough name with the
front.

The proxy host answers from nginx itself (`location = /bench { return 200 ... }` in its
advanced config), so the numbers are nginx's TLS and the front's hop, not an upstream.
The setups: "plain" (no passthrough host: nginx's HTTPS servers on the port),
"front" (one passthrough host), "front + trusted proxy" (also a real-IP setting: the
HTTPS servers are twinned, see portway.nginx.render_front). Not a test: it asserts
nothing. wrk, nginx and this script share the machine's CPUs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from portway.testing.certs import make_ca, make_leaf  # noqa: E402
from portway.testing.network import free_port  # noqa: E402
from portway.testing.process import PortwayProcess, wait_for  # noqa: E402

NAME = "app.bench.test"  # wrk's SNI; passthrough.lua connects to 127.0.0.1 for it
TARGET_NAME = "db.bench.test"
WRK_SCRIPT = Path(__file__).resolve().parent / "passthrough.lua"
ANSWER = "ok\n"


def wrk(url: str, seconds: float) -> dict[str, float]:
    """Requests/s, mean latency (ms) and errors of one keep-alive wrk run."""
    cmd = [shutil.which("wrk") or "wrk", "-t2", "-c32", f"-d{int(seconds)}s", "--latency"]
    cmd += ["-s", str(WRK_SCRIPT)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    latency = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "count": int(count.group(1)) if count else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "latency_ms": float(latency.group(1)) * scale[latency.group(2)] if latency else 0.0,
        "errors": (sum(int(n) for n in errors.groups()) if errors else 0)
        + (int(non_2xx.group(1)) if non_2xx else 0),
    }


def handshakes(port: int, sni: str, seconds: float, clients: int = 2) -> dict[str, float]:
    """Full TLS handshakes/s: `clients` threads each connecting, completing a handshake
    with SNI `sni` (a fresh session: no resumption) and closing, for `seconds`.

    OpenSSL runs the handshake without Python's lock, so the threads work in parallel.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + seconds
    counts = [0] * clients
    failures = [0] * clients

    def client(index: int) -> None:
        while time.monotonic() < deadline:
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                    context.wrap_socket(raw, server_hostname=sni),
                ):
                    counts[index] += 1
            except OSError:
                failures[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = sum(counts)
    return {
        "count": total,
        "rps": total / elapsed,
        "latency_ms": 1000 * elapsed * clients / max(total, 1),
        "errors": sum(failures),
    }


def nginx_cpu(pw: PortwayProcess) -> float:
    """CPU seconds (user + system) Portway's nginx master and its workers used so far."""
    try:
        master = int((pw.data_dir / "nginx" / "run" / "nginx.pid").read_text())
    except (OSError, ValueError):
        return 0.0
    pids = [master]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def target_nginx(directory: Path, port: int, cert: Path, key: Path) -> subprocess.Popen:
    """A TLS server for the passthrough name: an nginx of its own (not Portway's)."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""
pid {directory}/nginx.pid;
error_log {directory}/error.log;
worker_processes 1;
events {{}}
http {{
    access_log off;
    client_body_temp_path {directory}/b; proxy_temp_path {directory}/p;
    fastcgi_temp_path {directory}/f; uwsgi_temp_path {directory}/u; scgi_temp_path {directory}/s;
    ssl_session_tickets off;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "{ANSWER.strip()}\\n"; }}
    }}
}}
"""
    )
    return subprocess.Popen(
        ["nginx", "-p", f"{directory}/", "-c", str(conf), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
    )


def measure(
    pw: PortwayProcess, seconds: float, target: bool, target_port: int
) -> dict[str, dict[str, float]]:
    url = f"https://{NAME}:{pw.https_port}/bench"
    runs = {
        "keep-alive": lambda: wrk(url, seconds),
        "proxy host: TLS handshakes": lambda: handshakes(pw.https_port, NAME, seconds),
        # without the front: straight to the TLS server's own port
        "TLS server: TLS handshakes": lambda: handshakes(
            pw.https_port if target else target_port, TARGET_NAME, seconds
        ),
    }
    rows = {}
    for what, run in runs.items():
        before = nginx_cpu(pw)
        row = run()
        # Portway's nginx only (the TLS server's own nginx is not counted)
        row["nginx_us"] = 1e6 * (nginx_cpu(pw) - before) / max(row["count"], 1)
        rows[what] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="each setup this often")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed")
    work = Path(tempfile.mkdtemp(prefix="portway-bench-passthrough-"))
    os.chmod(work, 0o755)
    ca = make_ca("Passthrough Bench CA", key_type="ec")
    leaf = make_leaf(ca, [NAME], key_type="ec")
    target_leaf = make_leaf(ca, [TARGET_NAME], key_type="ec", label="target")
    target_cert, target_key = target_leaf.write(work / "target-cert")
    target_port = free_port()
    target = target_nginx(work / "target", target_port, target_cert, target_key)
    pw = PortwayProcess(work / "data")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        pw.start()
        cert = pw.upload_certificate("bench", leaf.fullchain_pem, leaf.key_pem())
        pw.create_proxy_host(
            [NAME],
            9,  # never reached: the bench location answers from nginx
            certificate_id=cert["id"],
            http2_support=True,
            advanced_config=f'location = /bench {{ return 200 "{ANSWER.strip()}\\n"; }}',
        )
        pw.wait_applied()
        status, tunnel = pw.api(
            "POST",
            "/api/portway/tunnels",
            {
                "domain_names": [TARGET_NAME],
                "forward_host": "127.0.0.1",
                "forward_port": target_port,
                "passthrough": True,
                "enabled": False,
            },
        )
        assert status == 201, tunnel
        tunnel_url = f"/api/portway/tunnels/{tunnel['id']}"
        live_front = pw.data_dir / "nginx" / "live" / "front.conf"
        setups = {
            "plain": (False, "off"),
            "front": (True, "off"),
            "front + trusted proxy": (True, "X-Forwarded-For"),
        }
        for _ in range(args.rounds):  # setups alternate, so drift hits all of them alike
            for setup, (front, header) in setups.items():
                pw.api("POST", f"{tunnel_url}/{'enable' if front else 'disable'}")
                meta = {"trusted_proxies": ["10.0.0.0/8"]} if header != "off" else {}
                pw.api("PUT", "/api/settings/real-ip", {"value": header, "meta": meta})
                pw.wait_applied()
                wait_for(lambda front=front: live_front.exists() == front)
                time.sleep(1)  # old workers finish
                for what, row in measure(pw, args.seconds, front, target_port).items():
                    results.setdefault(setup, {}).setdefault(what, []).append(row)
    finally:
        pw.close()
        target.terminate()
        target.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.seconds:.0f} s each, median of {args.rounds} rounds, "
        f"HTTPS on 127.0.0.1, {os.cpu_count()} CPUs\n"
    )
    print(
        "| setup | measurement | per s | vs plain | mean latency ms "
        "| Portway's nginx CPU µs each | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    plain = {what: median(r["rps"] for r in rows) for what, rows in results["plain"].items()}
    for setup, measurements in results.items():
        for what, rows in measurements.items():
            rps = median(r["rps"] for r in rows)
            ratio = f"{rps / plain[what]:.2f}x" if plain.get(what) else "-"
            latency = median(r["latency_ms"] for r in rows)
            cpu = median(r["nginx_us"] for r in rows)
            errors = sum(r["errors"] for r in rows)
            print(
                f"| {setup} | {what} | {rps:.0f} | {ratio} | {latency:.2f} | {cpu:.0f} "
                f"| {errors:.0f} |"
            )


if __name__ == "__main__":
    main()
