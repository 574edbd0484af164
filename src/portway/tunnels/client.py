"""`portway tunnel connect`: the client side of a tunnel host, for a member's laptop.

Imports nothing of Django and needs no server settings, database or nginx: `pip install
portway` gives it. One WebSocket per TCP connection (see portway.tunnels.protocol):

    portway tunnel connect wss://db.club.example --key ptk_... --listen 127.0.0.1:3306
    ssh -o ProxyCommand='portway tunnel connect wss://%h --stdio --key ptk_...' pi@%h

Messages for what a person can fix (wrong key, disabled tunnel, unreachable target, a
name that is not a tunnel) are printed on stderr; the exit status is 1 for those.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from portway.tunnels import protocol


class TunnelError(Exception):
    """A failure with a message a person can act on."""


@dataclass(frozen=True)
class Target:
    """Where and how to open the WebSocket.

    url: ws:// or wss:// URL; host/port: the name in it and its port; address: the IP
    address to connect to instead of resolving `host` (--resolve), or None.
    """

    url: str
    host: str
    port: int
    address: str | None
    ssl: ssl.SSLContext | None


def parse_url(url: str) -> tuple[str, str, int]:
    """(normalised URL, host, port) of `wss://NAME[:PORT][/path]` or `ws://...`.

    Raises TunnelError naming what is wrong.
    """
    parts = urlsplit(url if "://" in url else f"wss://{url}")
    if parts.scheme not in ("ws", "wss"):
        raise TunnelError(f"{url}: the URL must start with wss:// (or ws:// without TLS)")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        raise TunnelError(f"{url}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise TunnelError(f"{url}: no host name")
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}{path}", parts.hostname, port


def parse_resolve(values: list[str], host: str, port: int) -> str | None:
    """The address `--resolve NAME:PORT:IP` or `NAME:IP` pins for (host, port), as curl.

    Raises TunnelError for a malformed value.
    """
    for value in values:
        name, _, rest = value.partition(":")
        if not rest:
            raise TunnelError(f"--resolve {value}: expected NAME:IP or NAME:PORT:IP")
        wanted_port: int | None = None
        head, _, tail = rest.partition(":")
        if tail and head.isdigit() and not rest.startswith("["):
            wanted_port, rest = int(head), tail
        address = rest.strip("[]")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise TunnelError(f"--resolve {value}: {address!r} is not an IP address") from None
        if name.lower() == host.lower() and wanted_port in (None, port):
            return address
    return None


def parse_listen(value: str) -> tuple[str, int]:
    """(address, port) of `--listen [ADDRESS:]PORT` (address default 127.0.0.1)."""
    address, _, port = value.rpartition(":")
    address = address.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TunnelError(f"--listen {value}: expected ADDRESS:PORT, e.g. 127.0.0.1:3306")
    return address, int(port)


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, plus the private CA in `ca_file` when given."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TunnelError(
                f"--ca {ca_file}: cannot load it as PEM certificates: {exc}"
            ) from None
    return context


def make_target(url: str, resolve: list[str], ca_file: str | None) -> Target:
    """A Target from the command line's values (see parse_url, parse_resolve)."""
    url, host, port = parse_url(url)
    return Target(
        url,
        host,
        port,
        parse_resolve(resolve, host, port),
        ssl_context(ca_file) if url.startswith("wss://") else None,
    )


def _refusal(exc: InvalidStatus, target: Target) -> TunnelError:
    """What a refused upgrade means, in words (see protocol: X-Portway-Tunnel-Error)."""
    response = exc.response
    reason = response.headers.get(protocol.ERROR_HEADER)
    status = response.status_code
    if reason:
        return TunnelError(f"{target.host}: {reason} (HTTP {status})")
    if status in (401, 403):
        return TunnelError(f"{target.host}: access refused (HTTP {status})")
    if status == 502:
        return TunnelError(
            f"{target.host}: the server's tunnel service is not answering (HTTP 502)"
        )
    return TunnelError(
        f"{target.host} is not a tunnel, or the tunnel is disabled: the server answered "
        f"HTTP {status} instead of accepting the tunnel"
    )


async def open_tunnel(target: Target, key: str) -> ClientConnection:
    """Open one authenticated WebSocket. Raises TunnelError."""
    sock = None
    if target.address is not None:
        try:
            sock = socket.create_connection((target.address, target.port), timeout=15)
        except OSError as exc:
            raise TunnelError(f"cannot connect to {target.address}:{target.port}: {exc}") from None
    try:
        connection = await connect(
            target.url,
            sock=sock,
            ssl=target.ssl,
            server_hostname=target.host if target.ssl and sock else None,
            additional_headers={"Authorization": f"Bearer {key}"},
            compression=None,
            max_size=protocol.MAX_FRAME,
            ping_interval=protocol.PING_SECONDS,
            ping_timeout=protocol.PING_SECONDS,
            write_limit=protocol.MAX_FRAME,
            open_timeout=20,
            user_agent_header="portway-tunnel",
        )
    except InvalidStatus as exc:
        raise _refusal(exc, target) from None
    except ssl.SSLCertVerificationError as exc:
        if _portway_default_certificate(target):
            raise TunnelError(
                f"{target.host} is not a tunnel, or the tunnel is disabled: that Portway "
                "does not serve this name (it answered with its default certificate)"
            ) from None
        raise TunnelError(
            f"{target.host}: the server's certificate is not trusted ({exc.verify_message}); "
            "pass --ca FILE for a private CA"
        ) from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise TunnelError(f"cannot open a tunnel to {target.url}: {exc}") from None
    raw = connection.transport.get_extra_info("socket")
    if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _portway_default_certificate(target: Target) -> bool:
    """Whether the server presents Portway's default certificate for the name (the one
    it shows for names it does not serve: portway.nginx.engine.ensure_default_certificate)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((target.address or target.host, target.port), 10) as raw,
            context.wrap_socket(raw, server_hostname=target.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        subject = x509.load_der_x509_certificate(der).subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (OSError, ValueError):
        return False
    return bool(names) and names[0].value == "portway-default"


def close_message(connection: ClientConnection) -> str | None:
    """Why the server ended the tunnel, in words; None for a normal end."""
    received = connection.protocol.close_rcvd
    if received is None:
        return "the connection to the server was lost"
    if received.code in (1000,):
        return None
    known = protocol.CLOSE_MESSAGES.get(received.code)
    detail = f": {received.reason}" if received.reason and known != received.reason else ""
    return f"tunnel closed by the server: {known or received.code}{detail}"


async def relay(
    connection: ClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> str | None:
    """Carry bytes both ways until both directions ended; the server's close message."""

    async def local_to_tunnel() -> None:
        while True:
            data = await reader.read(protocol.CHUNK)
            if not data:
                await connection.send(b"")  # half-close
                return
            await connection.send(data)

    async def tunnel_to_local() -> None:
        async for message in connection:
            if isinstance(message, str):
                continue
            if not message:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(message)
            await writer.drain()

    tasks = [asyncio.ensure_future(local_to_tunnel()), asyncio.ensure_future(tunnel_to_local())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if t.exception() is not None]
        if not failed:
            # both directions ended: wait for the server's close (it sends 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.wait_closed(), 10)
    finally:
        for task in tasks:
            task.cancel()
        await connection.close()
        writer.close()
    return close_message(connection)


async def serve_listener(target: Target, key: str, address: str, port: int, ready=None) -> None:  # noqa: ANN001
    """Listen on address:port; one tunnel per accepted connection, until cancelled.

    `ready`: called with the bound port once listening (for tests and for port 0).
    The key is checked once at start so that a wrong key fails now, not at first use.
    """
    probe = await open_tunnel(target, key)
    await probe.send(b"")  # no bytes: the target sees a connection closed at once
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(10):
            async for _ in probe:  # until the server ends the probe (its limit is free)
                pass
    await probe.close()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            connection = await open_tunnel(target, key)
        except TunnelError as exc:
            print(f"portway tunnel: {exc}", file=sys.stderr, flush=True)
            writer.close()
            return
        message = await relay(connection, reader, writer)
        if message:
            print(f"portway tunnel: {peer}: {message}", file=sys.stderr, flush=True)

    try:
        # a buffer of several frames: reads return up to CHUNK bytes, not 64 KiB
        server = await asyncio.start_server(accepted, address, port, limit=protocol.MAX_FRAME)
    except OSError as exc:
        raise TunnelError(f"--listen {address}:{port}: {exc.strerror or exc}") from None
    bound = server.sockets[0].getsockname()[1]
    print(
        f"portway tunnel: listening on {address}:{bound} → {target.url}",
        file=sys.stderr,
        flush=True,
    )
    if ready is not None:
        ready(bound)
    async with server:
        await server.serve_forever()


async def serve_stdio(target: Target, key: str) -> str | None:
    """One tunnel on stdin/stdout (ssh's ProxyCommand); the server's close message."""
    connection = await open_tunnel(target, key)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=protocol.MAX_FRAME)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(sys.stdin.fileno(), "rb", 0)
    )
    transport, stream_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, stream_protocol, None, loop)
    return await relay(connection, reader, writer)


def connect_command(args) -> int:  # noqa: ANN001 - argparse.Namespace
    """`portway tunnel connect`: run the client; exit status 0, 1 (message printed) or 2."""
    key = args.key or os.environ.get("PORTWAY_TUNNEL_KEY", "")
    if not key:
        print("portway tunnel: give the key with --key or PORTWAY_TUNNEL_KEY", file=sys.stderr)
        return 2
    if bool(args.listen) == bool(args.stdio):
        print("portway tunnel: give exactly one of --listen and --stdio", file=sys.stderr)
        return 2
    try:
        target = make_target(args.url, args.resolve or [], args.ca)
        if args.stdio:
            message = asyncio.run(serve_stdio(target, key))
            if message:
                print(f"portway tunnel: {message}", file=sys.stderr)
                return 1
            return 0
        address, port = parse_listen(args.listen)
        asyncio.run(serve_listener(target, key, address, port))
    except TunnelError as exc:
        print(f"portway tunnel: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
