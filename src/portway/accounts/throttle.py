"""Brute-force protection for every login path (UI, API token, 2FA code).

Failures are counted per source address and per (account, source address), in the
database (`LoginThrottle`), so they hold across processes and on SQLite, PostgreSQL and
MariaDB alike. A key is free for its first few failures; after that each failure blocks
it for 1, 2, 4 ... seconds, capped at `MAX_DELAY` (15 minutes), so a guesser is slowed to
a trickle while nobody is ever locked out for good. Because the account key includes
the address, the right password from another address still works while one address is
being throttled; a success clears the account key at that address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from portway.accounts.models import LoginThrottle
from portway.core.errors import TooManyRequests

ACCOUNT_FREE_ATTEMPTS = 5
ADDRESS_FREE_ATTEMPTS = 20
MAX_DELAY = timedelta(minutes=15)
# A key quiet this long starts counting from zero again.
FORGET_AFTER = timedelta(hours=1)
KEY_MAX = 300


@dataclass(frozen=True)
class Keys:
    """The throttle keys of one login attempt."""

    address: str
    account: str | None

    def all(self) -> list[tuple[str, int]]:
        """(key, free attempts) pairs."""
        pairs = [(f"addr:{self.address}", ADDRESS_FREE_ATTEMPTS)]
        if self.account is not None:
            pairs.append((f"acct:{self.account}|{self.address}"[:KEY_MAX], ACCOUNT_FREE_ATTEMPTS))
        return pairs


def keys_for(address: str | None, account: str | None) -> Keys:
    """Keys for a login from `address` (None: unknown, e.g. a test client) to `account`.

    `account` is the identity as typed (lowercased), so unknown accounts are throttled too.
    """
    normalized = account.strip().lower() if isinstance(account, str) and account.strip() else None
    return Keys(address=address or "unknown", account=normalized)


def check(keys: Keys) -> None:
    """Refuse the attempt while any of its keys is blocked.

    Raises:
        TooManyRequests: with the seconds until the longest block ends (for Retry-After).
    """
    now = timezone.now()
    names = [key for key, _ in keys.all()]
    blocked = LoginThrottle.objects.filter(key__in=names, blocked_until__gt=now)
    latest = max((row.blocked_until for row in blocked), default=None)
    if latest is not None:
        seconds = int((latest - now).total_seconds() + 0.999)
        raise TooManyRequests(
            f"Too many failed sign-in attempts; try again in {_human(seconds)}", seconds
        )


def _delay(failures: int, free: int) -> timedelta | None:
    if failures <= free:
        return None
    exponent = min(failures - free - 1, 20)  # 2**20 s is far past the cap already
    return min(timedelta(seconds=2**exponent), MAX_DELAY)


def failed(keys: Keys) -> None:
    """Count a failed attempt against every key and block the ones over their allowance."""
    now = timezone.now()
    for key, free in keys.all():
        with transaction.atomic():
            LoginThrottle.objects.filter(key=key, last_failure__lt=now - FORGET_AFTER).update(
                failures=0
            )
            updated = LoginThrottle.objects.filter(key=key).update(
                failures=F("failures") + 1, last_failure=now
            )
            if not updated:
                try:
                    with transaction.atomic():
                        LoginThrottle.objects.create(key=key, failures=1, last_failure=now)
                except IntegrityError:  # a parallel failure created it first
                    LoginThrottle.objects.filter(key=key).update(
                        failures=F("failures") + 1, last_failure=now
                    )
            row = LoginThrottle.objects.select_for_update().get(key=key)
            delay = _delay(row.failures, free)
            if delay is not None:
                row.blocked_until = now + delay
                row.save(update_fields=["blocked_until"])


def succeeded(keys: Keys) -> None:
    """Forget the account's failures at this address (the address count stays)."""
    names = [key for key, _ in keys.all() if key.startswith("acct:")]
    LoginThrottle.objects.filter(key__in=names).delete()


def _human(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
