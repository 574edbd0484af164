"""The admin UI and API's HTTP server: waitress, bounded against slow and large requests.

Why waitress directly on the admin port rather than behind Portway's own nginx: the
admin UI is the tool for repairing nginx. When a host's config is broken, nginx fails
to start (a port taken by another program, a certificate file gone) or is being
restarted by the supervisor, the administrator must still be able to log in and fix
it; routing the admin port through that same nginx would make every nginx problem an
admin outage. So the admin server defends itself:

- Slow clients cannot starve it. waitress reads requests in one asyncore loop and hands
  only complete requests to its worker threads, so a slow client costs a socket, not a
  thread; the only shared resource is `connection_limit`. That limit is sized from the
  process's file-descriptor limit (the soft limit is raised to the hard one, as nginx's
  `worker_rlimit_nofile` does) instead of waitress's default of 100, which 150 slowloris
  connections exhausted; the loop uses poll(2) because select(2) cannot watch
  descriptors above 1024. A client must finish its request header within
  `HEADER_TIMEOUT_SECONDS` of its first byte however slowly it trickles (nginx's
  `client_header_timeout`), and idle connections close after `IDLE_TIMEOUT_SECONDS`, so
  a slow connection only holds its slot for a bounded time.
- Bodies are bounded. A body larger than `MAX_REQUEST_BODY_BYTES` is refused with 413
  as soon as its Content-Length is read (chunked bodies: as soon as they pass the
  limit), before the application runs; waitress spools what it does read to a
  temporary file above 512 KiB, so memory stays bounded. Django's
  DATA_UPLOAD_MAX_MEMORY_SIZE holds the same limit for any other WSGI server.
- Errors waitress answers itself (413, malformed requests) use NPM's error shape
  `{"error": {"code", "message"}}` under /api, like every other API error.

What this does not do: many thousands of connections from many addresses are a flood
for a firewall (or a rate limiter in front), not for an HTTP server to absorb.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

log = logging.getLogger("portway")

MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024  # largest legitimate body: a host with many locations
HEADER_TIMEOUT_SECONDS = 20
IDLE_TIMEOUT_SECONDS = 60
MAX_CONNECTIONS = 4096
# Descriptors kept for everything else: database, log and config files, nginx's pipes.
RESERVED_DESCRIPTORS = 256
THREADS = 8


def body_limit_message() -> str:
    """The text of a 413: the limit, in words a client's author can act on."""
    return (
        f"the request body is larger than the limit of {MAX_REQUEST_BODY_BYTES // 1048576} MiB "
        f"({MAX_REQUEST_BODY_BYTES} bytes)"
    )


def connection_limit() -> int:
    """How many connections the admin server keeps open at most.

    Raises the soft RLIMIT_NOFILE to the hard limit (capped) first, then leaves
    RESERVED_DESCRIPTORS for the rest of the process. Never below waitress's default.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + RESERVED_DESCRIPTORS
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %s to %s", soft, wanted)
    available = wanted if soft == resource.RLIM_INFINITY else soft
    return max(100, min(MAX_CONNECTIONS, available - RESERVED_DESCRIPTORS))


class _AdminErrorTask(ErrorTask):
    """waitress's own error answers, in NPM's shape under /api, with the body limit named."""

    def execute(self) -> None:
        error = self.request.error
        if isinstance(error, RequestEntityTooLarge):
            error.body = body_limit_message()
        if not (getattr(self.request, "path", "") or "").startswith("/api"):
            super().execute()
            return
        body = json.dumps({"error": {"code": error.code, "message": error.body}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json; charset=utf-8"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _AdminChannel(HTTPChannel):
    """A connection that must send a complete request header in HEADER_TIMEOUT_SECONDS."""

    error_task_class = _AdminErrorTask
    _header_started: float | None = None

    def received(self, data: bytes) -> bool:
        now = time.monotonic()
        if self._header_started is None and self._header_pending():
            self._header_started = now
        result = super().received(data)
        if (self.request is None or self.request.headers_finished) and data.strip():
            # a request's header arrived complete (waitress drops a completed request
            # from `self.request`): the next request's deadline starts with its own
            # first byte, so a keep-alive connection is not cut off
            # HEADER_TIMEOUT_SECONDS after its first request. Blank lines alone (which
            # waitress skips) do not count: they cannot hold a connection forever.
            self._header_started = None
        elif self._header_started is not None and now - self._header_started > (
            HEADER_TIMEOUT_SECONDS
        ):
            self.will_close = True  # the server loop closes it (as for an idle channel)
        return result

    def _header_pending(self) -> bool:
        return self.request is None or not self.request.headers_finished

    def writable(self) -> bool:
        # asked by the server loop, in its own thread, on every turn (as waitress's own
        # idle-channel maintenance): once the server stops, a connection with no request
        # in flight and nothing left to send is closed, so an idle keep-alive client (a
        # browser tab) cannot hold a stopping Portway for the channel timeout
        if (
            getattr(self.server, STOPPING, False)
            and not self.requests
            and not self.total_outbufs_len
        ):
            self.will_close = True
        return super().writable()


STOPPING = "portway_stopping"  # attribute set on the server's listeners by stop()


def stop_admin_server(server: Any) -> None:
    """Stop accepting connections and end the open ones as soon as they are idle.

    Requests in flight finish and get their response; idle keep-alive connections are
    closed within the server loop's poll timeout (waitress's asyncore_loop_timeout, 1 s),
    after which `server.run()` returns.
    """
    channels = getattr(server, "map", None) or getattr(server, "_map", {})
    for dispatcher in list(channels.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            setattr(dispatcher, STOPPING, True)
    server.close()


def create_admin_server(application: Callable[..., Any], listen: str) -> Any:
    """A waitress server for `application` on `listen` ("host:port" or "[v6]:port").

    Raises:
        OSError: the address cannot be bound (e.g. the port is taken).
    """
    channels: dict[int, Any] = {}
    server = create_server(
        application,
        map=channels,
        listen=listen,
        threads=THREADS,
        ident="Portway",
        connection_limit=connection_limit(),
        asyncore_use_poll=True,
        channel_timeout=IDLE_TIMEOUT_SECONDS,
        cleanup_interval=10,
        # waitress refuses bodies of max_request_body_size bytes or more
        max_request_body_size=MAX_REQUEST_BODY_BYTES + 1,
        # Pass X-Forwarded-Proto on: portway.core.https decides whom to believe
        # (PORTWAY_TRUSTED_PROXIES, address ranges waitress's own option cannot express).
        clear_untrusted_proxy_headers=False,
    )
    for dispatcher in list(channels.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = _AdminChannel
    return server
