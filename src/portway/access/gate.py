"""The login gate's decision: nginx's `auth_request` asks this for every request of a
gated site (an access list with `portway_login`, see portway.access.render).

nginx sends the subrequest over Portway's gate socket (portway.gate_server) to
`/.portway/auth/<access list id>` with the visitor's cookies and these headers, which
only nginx can set (the socket is reachable by nginx's workers alone):

    X-Portway-Scheme     $scheme
    X-Portway-Http-Host  $http_host (the name and port the browser used)
    X-Portway-Uri        $request_uri (where the browser was going)

Answers (https://nginx.org/en/docs/http/ngx_http_auth_request_module.html):
    200 with `X-Portway-User` (e-mail) and `X-Portway-Email`: let in; nginx passes them
        to the upstream as `Remote-User` and `Remote-Email`.
    401 with `X-Portway-Location`: no valid session; nginx answers 302 to it (the
        site's own login page with the way back).
    403: a valid session of a user the list does not admit.

The cost per request is one HMAC check and two dictionary look-ups: users
(portway.accounts.gate.UserStates) and lists (`Policies`) are cached for a few
seconds; the database is read only when an entry is older than that.

The session cookie and its scope (setting `gate`) are portway.accounts.gate's.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.db import close_old_connections

from portway.accounts.gate import COOKIE_NAME, session_user

LOGIN_PATH = "/.portway/login"
AUTH_PREFIX = "/.portway/auth/"
POLICY_TTL_SECONDS = 5.0
# host[:port] as a browser sends it: a DNS name or an IP literal
HTTP_HOST_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$"
)


@dataclass(frozen=True)
class Policy:
    """What a list admits: `users` None means every enabled user."""

    login: bool
    users: frozenset[int] | None


class Policies:
    """{access list id: Policy}, each read from the database at most every `ttl` seconds."""

    def __init__(self, ttl: float = POLICY_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[int, tuple[float, Policy | None]] = {}
        self._lock = threading.Lock()

    def get(self, access_list_id: int) -> Policy | None:
        now = time.monotonic()
        entry = self._entries.get(access_list_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        from portway.access.models import AccessList

        row = (
            AccessList.objects.filter(pk=access_list_id)
            .values_list("portway_login", "portway_users")
            .first()
        )
        policy = None
        if row is not None:
            ids = frozenset(int(i) for i in row[1] or [])
            policy = Policy(bool(row[0]), ids or None)
        with self._lock:
            self._entries[access_list_id] = (now + self.ttl, policy)
        return policy

    def forget(self, access_list_id: int) -> None:
        with self._lock:
            self._entries.pop(access_list_id, None)


policies = Policies()


def _cookies(header: str, name: str) -> list[str]:
    """The values of cookie `name` in a Cookie header, at most 4 (no full parse: this runs
    per request). A browser sends two after the cookie domain changed: the site's own
    and the parent domain's."""
    found = []
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            found.append(value)
            if len(found) == 4:
                break
    return found


def login_url(scheme: str, http_host: str, uri: str) -> str:
    """The site's login page with the way back (`next`: path and query only)."""
    scheme = scheme if scheme in ("http", "https") else "http"
    if not HTTP_HOST_PATTERN.match(http_host or ""):
        http_host = ""
    back = uri if uri.startswith("/") and not uri.startswith("//") else "/"
    return f"{scheme}://{http_host}{LOGIN_PATH}?next={quote(back, safe='')}"


def decide(access_list_id: int, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """The gate's answer for one request: (status, headers) as described above."""
    host = environ.get("HTTP_HOST", "")
    state = None
    for value in _cookies(environ.get("HTTP_COOKIE", ""), COOKIE_NAME):
        state = session_user(value, host)
        if state is not None:
            break
    if state is None:
        location = login_url(
            environ.get("HTTP_X_PORTWAY_SCHEME", ""),
            environ.get("HTTP_X_PORTWAY_HTTP_HOST", ""),
            environ.get("HTTP_X_PORTWAY_URI", "/"),
        )
        return 401, [("X-Portway-Location", location)]
    policy = policies.get(access_list_id)
    if policy is None or not policy.login:
        return 403, []
    if policy.users is not None and state.id not in policy.users:
        return 403, []
    return 200, [("X-Portway-User", state.email), ("X-Portway-Email", state.email)]


def auth_application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """WSGI app for `/.portway/auth/<id>` (no Django request cycle: it is on every request)."""
    raw_id = environ.get("PATH_INFO", "")[len(AUTH_PREFIX) :]
    if not raw_id.isdigit() or len(raw_id) > 18:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    try:
        status, headers = decide(int(raw_id), environ)
    finally:
        # outside Django's request cycle nothing else closes a connection a cache miss
        # opened: it would stay open in this thread for good (and break when a MariaDB
        # or PostgreSQL server drops idle connections)
        close_old_connections()
    reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden"}[status]
    start_response(f"{status} {reason}", [*headers, ("Content-Length", "0")])
    return [b""]
