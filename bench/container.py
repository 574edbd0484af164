"""Portway's container image: size, build time, start time and stop time, as a table.

    python bench/container.py              build (podman, cached base), then 5 starts
    python bench/container.py --starts 10  more starts
    python bench/container.py --no-build   measure the image already tagged

Start time: `podman run -d` until GET /api/ on the admin port answers 200 (first start on
an empty volume migrates the database; later starts on the same volume do not). Stop
time: `podman stop` (SIGTERM; Portway stops nginx and exits). Containers use the host
network on 127.0.0.1 high ports. Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from portway.testing.container import (
    IMAGE,
    PortwayContainer,
    build_image,
    image_size,
    podman_environment,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="starts on the same volume")
    parser.add_argument("--no-build", action="store_true", help=f"use the existing {IMAGE}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="portway-bench-container-") as tmp:
        work = Path(tmp)
        env = podman_environment(work)
        build_seconds = None
        if not args.no_build:
            print("building the image (scripts/build-image)...", file=sys.stderr)
            _, build_seconds = build_image(work)
        size = image_size(IMAGE, env)
        container = PortwayContainer(IMAGE, work / "data", podman_env=env)
        first_start = stop = None
        starts: list[float] = []
        stops: list[float] = []
        try:
            for index in range(args.starts + 1):
                container.restart() if index else container.start()
                assert container.start_seconds is not None
                if index == 0:
                    first_start = container.start_seconds
                else:
                    starts.append(container.start_seconds)
                stop = container.stop()
                stops.append(stop)
        finally:
            container.close()

    rows = [
        ("image size", f"{size / 1e6:.0f} MB"),
        ("build (scripts/build-image)", f"{build_seconds:.0f} s" if build_seconds else "-"),
        ("first start (empty volume) to API 200", f"{first_start:.1f} s"),
        (
            f"start on existing volume (median of {len(starts)})",
            f"{statistics.median(starts):.1f} s" if starts else "-",
        ),
        (f"podman stop (median of {len(stops)})", f"{statistics.median(stops):.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"| {'-' * width} | ----- |")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
