"""The options of `portway tunnel connect` (no imports: building the CLI stays cheap)."""

from __future__ import annotations


def add_arguments(parser) -> None:  # noqa: ANN001 - argparse.ArgumentParser
    """The options of `portway tunnel connect`."""
    parser.add_argument("url", help="wss://NAME[:PORT] of the tunnel host")
    parser.add_argument("--key", help="access key or API token (or PORTWAY_TUNNEL_KEY)")
    parser.add_argument(
        "--listen", metavar="[ADDRESS:]PORT", help="local listener, e.g. 127.0.0.1:3306"
    )
    parser.add_argument("--stdio", action="store_true", help="one connection on stdin/stdout")
    parser.add_argument("--ca", metavar="FILE", help="also trust this CA (PEM)")
    parser.add_argument(
        "--resolve",
        action="append",
        metavar="NAME[:PORT]:IP",
        help="connect to IP for NAME instead of resolving it (as curl; repeatable)",
    )
