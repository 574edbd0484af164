"""The login gate's server: waitress on a unix socket only nginx's workers can open.

nginx sends two kinds of requests here (see portway.access.render):

- `/.portway/auth/<access list id>`: the `auth_request` subrequest made for every
  request of a gated site, answered by portway.access.gate without Django's request
  cycle (no middleware, no session, no database unless a cache entry is stale);
- `/.portway/...` from a browser: the site's own login page (portway.accounts.gate_views),
  served by the full Django application.

The socket file is 0660, owned by root and nginx's worker group, in a 0750 directory:
no other local user can reach it, so the headers nginx sets are believed here (the
visitor's address in X-Real-IP, the scheme and host the browser used). Browser-facing
requests get `environ["portway.gate"] = True`; the gate views answer 404 without it, so
the admin port does not serve them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waitress.server import create_server

GATE_PREFIX = "/.portway/"
THREADS = 4


def gate_application(django_app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app of the gate socket, handing browser pages to `django_app`."""
    from portway.access.gate import AUTH_PREFIX, HTTP_HOST_PATTERN, auth_application

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(AUTH_PREFIX):
            return auth_application(environ, start_response)
        if not path.startswith(GATE_PREFIX):
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        scheme = environ.get("HTTP_X_PORTWAY_SCHEME", "")
        environ["wsgi.url_scheme"] = scheme if scheme in ("http", "https") else "http"
        http_host = environ.get("HTTP_X_PORTWAY_HTTP_HOST", "")
        if HTTP_HOST_PATTERN.match(http_host):
            environ["HTTP_HOST"] = http_host
        environ["REMOTE_ADDR"] = environ.get("HTTP_X_REAL_IP", "")
        environ.pop("HTTP_X_FORWARDED_FOR", None)
        environ.pop("HTTP_X_FORWARDED_PROTO", None)
        environ["portway.gate"] = True
        return django_app(environ, start_response)

    return application


def create_gate_server(django_app: Callable[..., Any], path: Path, group: int | None) -> Any:
    """A waitress server on the unix socket `path` (replaced if it exists).

    Args:
        group: nginx's worker group id (the socket's group); None when nginx's workers
            run as this process's own user (not root).
    Raises:
        OSError: the socket cannot be created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if group is not None:
        os.chown(path.parent, -1, group)
    path.parent.chmod(0o750 if group is not None else 0o700)
    path.unlink(missing_ok=True)
    server = create_server(
        gate_application(django_app),
        map={},
        unix_socket=str(path),
        unix_socket_perms="660",
        threads=THREADS,
        ident="Portway",
        channel_timeout=60,
        max_request_body_size=64 * 1024,
        clear_untrusted_proxy_headers=False,
    )
    if group is not None:
        os.chown(path, -1, group)
    return server
