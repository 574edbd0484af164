"""Gate sessions: the signed cookie a Portway login gate sets on a proxied site.

A visitor who signs in on a gated site's login page (portway.accounts.gate_views) gets
the cookie `portway_gate`: `django.core.signing` of {"u": user id, "s": the user's
session generation, "t": the user's token generation}, timestamped, with its own salt.
nginx asks Portway about every request of a gated site (portway.access.gate), so the
check must be cheap: the signature (an HMAC-SHA256) and age are verified without the
database, and the user's generations and status come from `UserStates`, a small
in-process cache refreshed from the database at most every `STATE_TTL_SECONDS`.

Ending sessions (`end_sessions`): signing out of a gate or of the admin UI bumps the
user's `session_generation`, which every gate cookie and every UI session hash carries
(portway.accounts.models.User.get_session_auth_hash), so all of them stop working: at
once in this process (the cache entry is dropped), within `STATE_TTL_SECONDS` in any
other. Disabling a user or changing their password bumps `token_generation` and ends
gate sessions the same way.

Setting `gate` (`/api/settings/gate`, Settings → Login gate): `meta.cookie_domain` is
the parent domain the session cookie is scoped to, for single sign-on across subdomains
("" = each site its own cookie). A site outside that domain keeps a cookie of its own.
A session is valid only within the scope it was set for (the "h" in the cookie), so a
cookie a service behind one site saw cannot open another site.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core import signing
from django.db import transaction
from django.db.models import F

from portway.accounts.models import User
from portway.core import fields
from portway.core.errors import FieldError, PermissionDenied
from portway.nginx.models import Setting

COOKIE_NAME = "portway_gate"
SALT = "portway.accounts.gate.session"
SESSION_SECONDS = 12 * 3600
STATE_TTL_SECONDS = 5.0
COOKIE_MAX = 512  # a real cookie is ~150 bytes; longer values are refused unread
SETTING_ID = "gate"
# a cookie domain: two or more DNS labels, the last alphabetic


@dataclass(frozen=True)
class UserState:
    """What the gate needs of a user, as cached."""

    id: int
    email: str
    name: str
    disabled: bool
    session_generation: int
    token_generation: int


class UserStates:
    """{user id: UserState}, each entry read from the database at most every `ttl` seconds.

    Thread-safe (the gate server answers from several threads); a missing user is cached
    as None too, so a forged id costs one query per `ttl`, not one per request.
    """

    def __init__(self, ttl: float = STATE_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[int, tuple[float, UserState | None]] = {}
        self._lock = threading.Lock()

    def get(self, user_id: int) -> UserState | None:
        """The user's state (None: no such user)."""
        now = time.monotonic()
        entry = self._entries.get(user_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        row = (
            User.objects.filter(pk=user_id)
            .values_list("email", "name", "is_disabled", "session_generation", "token_generation")
            .first()
        )
        state = UserState(user_id, *row) if row else None
        with self._lock:
            if len(self._entries) > 10000:  # bounded: forged ids cannot grow it forever
                self._entries.clear()
            self._entries[user_id] = (now + self.ttl, state)
        return state

    def forget(self, user_id: int) -> None:
        """Drop the cached entry (the next check reads the database)."""
        with self._lock:
            self._entries.pop(user_id, None)


states = UserStates()


def cookie_value(user: User, scope: str) -> str:
    """The signed cookie value for a session of `user` (from their current generations).

    Args:
        scope: the host name the cookie was set for, or the parent domain it is shared
            across (lowercase, no port); the session is valid there only.
    """
    payload = {
        "u": user.pk,
        "s": user.session_generation,
        "t": user.token_generation,
        "h": scope,
    }
    return signing.dumps(payload, salt=SALT, compress=False)


def in_scope(scope: object, host: str) -> bool:
    """Whether a session scoped to `scope` is valid for a request to `host` (no port)."""
    if not isinstance(scope, str) or not scope:
        return False
    host = host.lower().rstrip(".")
    return host == scope or host.endswith("." + scope)


def session_user(value: str | None, host: str | None = None) -> UserState | None:
    """The enabled user a gate cookie value belongs to, or None.

    None for: no value, an over-long one, a bad signature (tampered, or signed with
    another key), older than SESSION_SECONDS, set for another site than `host` (when
    given; a cookie a service behind one site saw cannot open another), a user that no
    longer exists or is disabled, or generations that moved on (signed out everywhere,
    password changed).
    """
    if not value or len(value) > COOKIE_MAX:
        return None
    try:
        payload = signing.loads(value, salt=SALT, max_age=SESSION_SECONDS)
    except signing.BadSignature:  # SignatureExpired is a subclass
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
        return None
    if host is not None and not in_scope(payload.get("h"), host):
        return None
    state = states.get(payload["u"])
    if state is None or state.disabled:
        return None
    if payload.get("s") != state.session_generation or payload.get("t") != state.token_generation:
        return None
    return state


def end_sessions(user_id: int) -> None:
    """End every UI and gate session of the user (signing out everywhere)."""
    User.objects.filter(pk=user_id).update(session_generation=F("session_generation") + 1)
    states.forget(user_id)


# --- setting `gate` -------------------------------------------------------------------


def get_setting() -> Setting:
    """The `gate` setting (created on first use)."""
    return Setting.get(SETTING_ID)


def cookie_scope(host: str) -> str:
    """What a gate session set on `host` is valid for: the cookie domain or the host."""
    return cookie_domain_for(host) or host.lower().rstrip(".")


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
    domain = domain.strip().lstrip(".")
    if not domain:
        return {"cookie_domain": ""}
    try:
        domain = fields.domain_name(domain)  # the names' own rules: IDN to punycode, no syntax
    except ValueError as exc:
        raise FieldError("meta/cookie_domain", str(exc)) from None
    if domain.startswith("*.") or "." not in domain or _is_address(domain):
        raise FieldError(
            "meta/cookie_domain",
            "must be a domain name with at least two labels (e.g. club.example) or empty",
        )
    if is_public_suffix(domain):
        raise FieldError(
            "meta/cookie_domain",
            f"{domain} is a public suffix (anyone can register names under it): browsers "
            "refuse a cookie for it, so nobody could sign in; use your own domain, e.g. "
            f"club.{domain}",
        )
    return {"cookie_domain": domain}


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# Debian's `publicsuffix` package (https://publicsuffix.org/list/); without it the check
# is skipped.
PUBLIC_SUFFIX_LIST = Path("/usr/share/publicsuffix/public_suffix_list.dat")


@functools.cache
def _public_suffix_rules() -> frozenset[str]:
    try:
        text = PUBLIC_SUFFIX_LIST.read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    rules = set()
    for line in text.splitlines():
        rule = line.strip().split()[0] if line.strip() else ""
        if rule and not rule.startswith("//"):
            rules.add(rule.lower())
    return frozenset(rules)


def is_public_suffix(domain: str) -> bool:
    """Whether `domain` (ASCII, lowercase) is itself a public suffix (`co.uk`,
    `github.io`), by the Public Suffix List's rules: exact, wildcard (`*.ck`) and
    exception (`!www.ck`) rules, compared in Unicode as the list writes them."""
    rules = _public_suffix_rules()
    name = fields.unicode_name(domain)
    if "!" + name in rules:
        return False
    if name in rules:
        return True
    parent = name.partition(".")[2]
    return bool(parent) and "*." + parent in rules


def set_gate_setting(user, value: Any, meta: Any) -> Setting:  # noqa: ANN001
    """Change the gate setting (admins only). Raises FieldError/PermissionDenied."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    clean = validate(value, meta)
    with transaction.atomic():
        setting = get_setting()
        setting.store(user, "default", clean, audit_value=False)
    return setting
