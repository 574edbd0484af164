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

Setting `gate` (`/api/settings/gate`): `meta.cookie_domain` is the parent domain the
session cookie is scoped to, for single sign-on across subdomains ("" = each site its
own cookie). A site outside that domain keeps a cookie of its own.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.db import transaction

from portway.accounts.gate import COOKIE_NAME, session_user
from portway.core.audit import changes as audit_changes
from portway.core.errors import FieldError, PermissionDenied
from portway.nginx.models import AuditLogEntry, Setting

LOGIN_PATH = "/.portway/login"
AUTH_PREFIX = "/.portway/auth/"
POLICY_TTL_SECONDS = 5.0
SETTING_ID = "gate"
# host[:port] as a browser sends it: a DNS name or an IP literal
_HTTP_HOST = re.compile(r"^(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


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


def _cookie(header: str, name: str) -> str | None:
    """The first cookie `name` in a Cookie header (no full parse: this runs per request)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def login_url(scheme: str, http_host: str, uri: str) -> str:
    """The site's login page with the way back (`next`: path and query only)."""
    scheme = scheme if scheme in ("http", "https") else "http"
    if not _HTTP_HOST.match(http_host or ""):
        http_host = ""
    back = uri if uri.startswith("/") and not uri.startswith("//") else "/"
    return f"{scheme}://{http_host}{LOGIN_PATH}?next={quote(back, safe='')}"


def decide(access_list_id: int, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """The gate's answer for one request: (status, headers) as described above."""
    state = session_user(_cookie(environ.get("HTTP_COOKIE", ""), COOKIE_NAME))
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
    status, headers = decide(int(raw_id), environ)
    reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden"}[status]
    start_response(f"{status} {reason}", [*headers, ("Content-Length", "0")])
    return [b""]


# --- setting `gate` -------------------------------------------------------------------


def get_setting() -> Setting:
    """The `gate` setting (created on first use)."""
    return Setting.get(SETTING_ID)


def cookie_domain_for(host: str) -> str | None:
    """The Domain attribute for a gate cookie set on `host` (no port), or None (host-only).

    The configured parent domain applies to itself and its subdomains only; a site
    elsewhere keeps a host-only cookie (a browser would refuse a foreign Domain).
    """
    domain = (get_setting().meta or {}).get("cookie_domain") or ""
    host = host.lower().rstrip(".")
    if domain and (host == domain or host.endswith("." + domain)):
        return domain
    return None


def validate(value: Any, meta: Any) -> dict[str, Any]:
    """Clean `meta` of the gate setting. Raises FieldError naming `value` or `meta/...`."""
    if value not in ("default", None, ""):
        raise FieldError("value", "must be default (the cookie domain is in meta)")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FieldError("meta", "must be an object")
    unknown = set(meta) - {"cookie_domain"}
    if unknown:
        raise FieldError(f"meta/{sorted(unknown)[0]}", "is not a property of this setting")
    domain = meta.get("cookie_domain") or ""
    if not isinstance(domain, str):
        raise FieldError("meta/cookie_domain", "must be a domain name or empty")
    domain = domain.strip().lower().lstrip(".")
    if domain and not _DOMAIN.match(domain):
        raise FieldError(
            "meta/cookie_domain",
            "must be a domain name with at least two labels (e.g. club.example) or empty",
        )
    return {"cookie_domain": domain}


def set_gate_setting(user, value: Any, meta: Any) -> Setting:  # noqa: ANN001
    """Change the gate setting (admins only). Raises FieldError/PermissionDenied."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    clean = validate(value, meta)
    with transaction.atomic():
        setting = get_setting()
        before = dict(setting.meta or {})
        setting.value = "default"
        setting.meta = clean
        setting.save()
        AuditLogEntry.objects.create(
            user=user,
            object_type="setting",
            action="updated",
            meta={"id": SETTING_ID, "changes": audit_changes(before, clean)},
        )
    return setting
