"""The tunnel service: WebSocket upgrades from nginx in, TCP connections to targets out.

Its own asyncio process (`python -m portway.tunnels.server DIRECTORY`), supervised by
`portway serve` like nginx. No ORM and no Django: everything it needs is in
`DIRECTORY/state.json`, which Portway rewrites atomically (rename) whenever a tunnel,
key, user or API token changes, then pokes the control socket. Files in DIRECTORY:

- state.json: tunnels by id: target, enabled, connection limit, key and token hashes;
- service.sock: where nginx hands over the upgrades (`X-Portway-Tunnel: <id>` names the
  tunnel: nginx sets it per server block, a client cannot choose the target);
- control.sock: one JSON line in, one out: {"op": "sessions"}, {"op": "kill",
  "session": id}, {"op": "reload"};
- sessions.jsonl: a journal of session starts and ends that Portway moves into its
  database (portway.tunnels.services.ingest_journal).

The wire is described in portway.tunnels.protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, unix_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from portway.tunnels import protocol

log = logging.getLogger("portway.tunnels")
STATE_FILE = "state.json"
SERVICE_SOCKET = "service.sock"
CONTROL_SOCKET = "control.sock"
JOURNAL = "sessions.jsonl"


@dataclass(frozen=True)
class Credential:
    """Who opened a session: `kind` "key" (key_id) or "user" (token key, user id)."""

    kind: str
    ident: str
    label: str
    user_id: int | None = None


@dataclass
class Session:
    """One live tunnel connection."""

    id: str
    tunnel_id: str
    tunnel_name: str
    credential: Credential
    source: str
    started: float
    connection: ServerConnection
    bytes_in: int = 0  # client → target
    bytes_out: int = 0  # target → client
    end_reason: str = ""
    tasks: list[asyncio.Task] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "tunnel_id": int(self.tunnel_id),
            "tunnel_name": self.tunnel_name,
            "credential": self.credential.label,
            "user_id": self.credential.user_id,
            "source": self.source,
            "started": self.started,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


class TunnelService:
    """The service of one data directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state: dict[str, Any] = {"tunnels": {}}
        self.state_mtime = 0.0
        self.sessions: dict[str, Session] = {}
        self._pending: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter, Session]] = {}

    # ----- state ------------------------------------------------------------------------
    def load_state(self) -> None:
        """Read state.json if it changed; end sessions it no longer allows."""
        path = self.directory / STATE_FILE
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:  # Portway has not written it yet: no tunnels
            return
        try:
            if mtime == self.state_mtime:
                self.enforce()
                return
            self.state = json.loads(path.read_text())
            self.state_mtime = mtime
        except (OSError, ValueError):
            log.exception("cannot read %s", path)
            return
        self.enforce()

    def enforce(self) -> None:
        """Close sessions whose tunnel or credential is gone, disabled or expired."""
        for session in list(self.sessions.values()):
            tunnel = self.state["tunnels"].get(session.tunnel_id)
            if tunnel is None or not tunnel.get("enabled"):
                self._end(session, protocol.CLOSE_TUNNEL_DISABLED, "tunnel disabled or deleted")
            elif self._credential_problem(tunnel, session.credential):
                self._end(session, protocol.CLOSE_CREDENTIAL_REVOKED, "credential revoked")

    @staticmethod
    def _credential_problem(tunnel: dict[str, Any], credential: Credential) -> str | None:
        table = tunnel["keys"] if credential.kind == "key" else tunnel["tokens"]
        entry = table.get(credential.ident)
        if entry is None:
            return "revoked"
        if entry.get("expires") is not None and entry["expires"] <= time.time():
            return "expired"
        return None

    def _end(self, session: Session, code: int, reason: str) -> None:
        if not session.end_reason:
            session.end_reason = reason
        asyncio.ensure_future(session.connection.close(code, protocol.CLOSE_MESSAGES[code]))

    def authenticate(self, tunnel: dict[str, Any], header: str) -> Credential | None:
        """The credential in an `Authorization: Bearer ...` header, if valid for `tunnel`."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        for pattern, kind, table in (
            (protocol.KEY_PATTERN, "key", tunnel["keys"]),
            (protocol.API_TOKEN_PATTERN, "user", tunnel["tokens"]),
        ):
            match = pattern.match(token)
            if not match:
                continue
            entry = table.get(match.group(1))
            if entry is None or not hmac.compare_digest(
                entry["hash"], protocol.secret_hash(match.group(2))
            ):
                return None
            credential = Credential(kind, match.group(1), entry["label"], entry.get("user_id"))
            return None if self._credential_problem(tunnel, credential) else credential
        return None

    # ----- WebSocket side ---------------------------------------------------------------
    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Authenticate, check the limit and connect to the target before the upgrade."""

        def refuse(status: int, message: str) -> Response:
            response = connection.respond(status, message + "\n")
            response.headers[protocol.ERROR_HEADER] = message
            return response

        tunnel_id = request.headers.get(protocol.TUNNEL_HEADER, "")
        tunnel = self.state["tunnels"].get(tunnel_id)
        if tunnel is None:
            self.load_state()  # a tunnel created a moment ago
            tunnel = self.state["tunnels"].get(tunnel_id)
        if tunnel is None:
            return refuse(HTTPStatus.NOT_FOUND, "this name is not a tunnel")
        if not tunnel.get("enabled"):
            return refuse(HTTPStatus.FORBIDDEN, "the tunnel is disabled")
        credential = self.authenticate(tunnel, request.headers.get("Authorization", ""))
        if credential is None:
            return refuse(
                HTTPStatus.UNAUTHORIZED,
                "wrong, expired or revoked key (or a user token not allowed on this tunnel)",
            )
        open_here = sum(1 for s in self.sessions.values() if s.tunnel_id == tunnel_id)
        open_here += sum(1 for *_, s in self._pending.values() if s.tunnel_id == tunnel_id)
        if open_here >= tunnel["max_connections"]:
            return refuse(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"the tunnel's connection limit ({tunnel['max_connections']}) is reached",
            )
        host, port = tunnel["target"]
        session = Session(
            secrets.token_hex(8),
            tunnel_id,
            tunnel["name"],
            credential,
            request.headers.get("X-Real-IP", ""),
            time.time(),
            connection,
        )
        self._pending[id(connection)] = (None, None, session)  # type: ignore[assignment]
        try:
            reader, writer = await asyncio.wait_for(
                # a buffer of several frames: reads return up to CHUNK bytes, not 64 KiB
                asyncio.open_connection(host, port, limit=protocol.MAX_FRAME),
                10,
            )
        except (OSError, TimeoutError) as exc:
            self._pending.pop(id(connection), None)
            self.journal(session, "end", reason=f"target unreachable: {exc}")
            return refuse(
                HTTPStatus.BAD_GATEWAY, f"the tunnel's target {host}:{port} is unreachable"
            )
        _nodelay(writer)
        self._pending[id(connection)] = (reader, writer, session)
        return None

    async def handle(self, connection: ServerConnection) -> None:
        """Relay one accepted WebSocket to its target connection until both ends finish."""
        pending = self._pending.pop(id(connection), None)
        if pending is None:
            await connection.close(protocol.CLOSE_PROTOCOL, "no target")
            return
        reader, writer, session = pending
        self.sessions[session.id] = session
        self.journal(session, "start")
        _nodelay_ws(connection)
        upstream = asyncio.ensure_future(self._client_to_target(session, writer))
        downstream = asyncio.ensure_future(self._target_to_client(session, reader))
        session.tasks = [upstream, downstream]
        try:
            done, _ = await asyncio.wait(session.tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if not session.end_reason:
                session.end_reason = "closed by both ends"
            # no longer counts against the limit once both directions ended, so that a
            # client seeing our close can open the next connection at once
            self.sessions.pop(session.id, None)
            await connection.close(1000)
        except (ConnectionClosed, _ClientGone):
            session.end_reason = session.end_reason or _closed_reason(connection)
        except OSError as exc:
            session.end_reason = session.end_reason or f"target connection failed: {exc}"
            await connection.close(protocol.CLOSE_TARGET_ERROR, _short(f"target: {exc}"))
        except _Protocol:
            session.end_reason = "client sent a text frame"
            await connection.close(protocol.CLOSE_PROTOCOL, "binary frames only")
        finally:
            for task in session.tasks:
                task.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self.sessions.pop(session.id, None)
            self.journal(session, "end", reason=session.end_reason or "ended")

    async def _client_to_target(self, session: Session, writer: asyncio.StreamWriter) -> None:
        async for message in session.connection:
            if isinstance(message, str):
                raise _Protocol()
            if not message:  # the client's half-close
                if writer.can_write_eof():
                    writer.write_eof()
                return
            session.bytes_in += len(message)
            writer.write(message)
            await writer.drain()
        # the WebSocket closed without a half-close: the client is gone
        session.end_reason = session.end_reason or _closed_reason(session.connection)
        raise _ClientGone()

    async def _target_to_client(self, session: Session, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(protocol.CHUNK)
            if not data:
                await session.connection.send(b"")  # the target's half-close
                return
            session.bytes_out += len(data)
            await session.connection.send(data)

    # ----- journal and control ----------------------------------------------------------
    def journal(self, session: Session, event: str, reason: str = "") -> None:
        """Append a session start or end to sessions.jsonl (Portway moves it into its
        database; it reopens the file each time, so Portway may rename it meanwhile)."""
        record = {"event": event, "at": time.time(), **session.wire()}
        if event == "end":
            record["reason"] = reason
            record["credential_kind"] = session.credential.kind
        path = self.directory / JOURNAL
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One JSON request line → one JSON answer line (see the module docstring)."""
        try:
            request = json.loads(await reader.readline() or b"{}")
            op = request.get("op")
            if op == "sessions":
                answer: Any = [s.wire() for s in self.sessions.values()]
            elif op == "kill":
                session = self.sessions.get(str(request.get("session")))
                if session is not None:
                    self._end(session, protocol.CLOSE_KILLED, "ended by an administrator")
                answer = session is not None
            elif op == "reload":
                self.load_state()
                answer = True
            else:
                answer = {"error": f"unknown op {op!r}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ValueError, OSError):
            pass
        finally:
            writer.close()

    async def watch_state(self) -> None:
        """Reread the state when it changes and enforce expiries (every second)."""
        while True:
            self.load_state()
            self._drop_stale_pending()
            await asyncio.sleep(1)

    def _drop_stale_pending(self, seconds: float = 60) -> None:
        """Target connections opened for an upgrade whose handshake never completed (the
        client left between our answer and its first frame): close them, so they do not
        count against the connection limit forever."""
        now = time.time()
        for key, (_reader, writer, session) in list(self._pending.items()):
            if now - session.started > seconds and writer is not None:
                self._pending.pop(key, None)
                writer.close()
                self.journal(session, "end", reason="the client left during the handshake")

    async def run(self, stop: asyncio.Event) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        service = self.directory / SERVICE_SOCKET
        control = self.directory / CONTROL_SOCKET
        for path in (service, control):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.load_state()
        async with unix_serve(
            self.handle,
            str(service),
            process_request=self.process_request,
            compression=None,
            max_size=protocol.MAX_FRAME,
            ping_interval=protocol.PING_SECONDS,
            ping_timeout=protocol.PING_SECONDS,
            write_limit=protocol.MAX_FRAME,
            server_header=None,
        ):
            # nginx's workers (www-data) connect here; authentication is the service's job
            os.chmod(service, 0o666)
            control_server = await asyncio.start_unix_server(self.control, str(control))
            os.chmod(control, 0o600)
            watcher = asyncio.ensure_future(self.watch_state())
            log.info("tunnel service listening on %s", service)
            await stop.wait()
            watcher.cancel()
            control_server.close()
            for session in list(self.sessions.values()):
                self._end(session, protocol.CLOSE_SHUTDOWN, "the tunnel service stopped")
            await asyncio.sleep(0.2)


class _Protocol(Exception):
    """The client sent a text frame."""


class _ClientGone(Exception):
    """The client's WebSocket closed before both directions had ended."""


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _nodelay_ws(connection: ServerConnection) -> None:
    sock = connection.transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _short(text: str) -> str:
    """A close reason fits 123 bytes."""
    return text.encode()[:120].decode(errors="ignore")


def _closed_reason(connection: ServerConnection) -> str:
    received = connection.protocol.close_rcvd
    if received is None:
        return "client connection lost"
    if received.code in (1000, 1001):
        return "client closed"
    return f"client closed ({received.code} {received.reason})".strip()


def main(argv: list[str] | None = None) -> int:
    """`python -m portway.tunnels.server DIRECTORY`: run until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="portway-tunnel-service")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    os.umask(0o077)

    parent = os.getppid()

    async def stop_when_orphaned(stop: asyncio.Event) -> None:
        # `portway serve` killed with SIGKILL cannot stop its children: a tunnel service
        # left behind would hold its socket and sessions with no one supervising it
        while not stop.is_set():
            if os.getppid() != parent:
                logging.getLogger("portway.tunnels").warning(
                    "portway serve (pid %s) is gone: the tunnel service stops", parent
                )
                stop.set()
                return
            await asyncio.sleep(1)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        orphan_watch = asyncio.create_task(stop_when_orphaned(stop))
        await TunnelService(args.directory).run(stop)
        orphan_watch.cancel()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
