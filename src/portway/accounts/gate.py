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
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.core import signing
from django.db.models import F

from portway.accounts.models import User

COOKIE_NAME = "portway_gate"
SALT = "portway.accounts.gate.session"
SESSION_SECONDS = 12 * 3600
STATE_TTL_SECONDS = 5.0
COOKIE_MAX = 512  # a real cookie is ~100 bytes; longer values are refused unread


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


def cookie_value(user: User) -> str:
    """The signed cookie value for a session of `user` (from their current generations)."""
    payload = {"u": user.pk, "s": user.session_generation, "t": user.token_generation}
    return signing.dumps(payload, salt=SALT, compress=False)


def session_user(value: str | None) -> UserState | None:
    """The enabled user a gate cookie value belongs to, or None.

    None for: no value, an over-long one, a bad signature (tampered, or signed with
    another key), older than SESSION_SECONDS, a user that no longer exists or is
    disabled, or generations that moved on (signed out everywhere, password changed).
    """
    if not value or len(value) > COOKIE_MAX:
        return None
    try:
        payload = signing.loads(value, salt=SALT, max_age=SESSION_SECONDS)
    except signing.BadSignature:  # SignatureExpired is a subclass
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
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
