"""Renewal: a scheduler thread in `portway serve` renews ACME certificates before expiry.

A certificate is due when less than min(30 days, a third of its lifetime) is left (the
third keeps short-lived certificates from renewing constantly). Checks run every
PORTWAY_RENEW_INTERVAL seconds (default 6 h), at a phase and with a spread that differ
per installation (a random jitter kept in `<data_dir>/acme/jitter`), so installations do
not all ask the CA at the same moment. A failed renewal is retried with exponential
backoff (PORTWAY_RENEW_RETRY_SECONDS, default 1 h, doubling up to a day, never before a
rate limit's retry time); every attempt is written to the certificate's log. A renewed
certificate's files are replaced atomically and nginx reloaded (SIGHUP), so it is served
at once, without restarting anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from portway.certificates.models import Certificate

log = logging.getLogger("portway.certificates.renewal")

RENEW_BEFORE = dt.timedelta(days=30)
WARN_BEFORE = dt.timedelta(days=14)
MAX_BACKOFF = dt.timedelta(days=1)


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.2, float(os.environ.get(name) or default))
    except ValueError:
        return default


def interval() -> float:
    return _seconds("PORTWAY_RENEW_INTERVAL", 6 * 3600)


def retry_base() -> float:
    return _seconds("PORTWAY_RENEW_RETRY_SECONDS", 3600)


def installation_jitter() -> float:
    """A number in [0, 1) fixed for this installation."""
    path = Path(settings.DATA_DIR) / "acme" / "jitter"
    try:
        return float(path.read_text()) % 1.0
    except (OSError, ValueError):
        value = random.random()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(f"{value:.6f}")
        return value


def _parse(value: Any) -> dt.datetime | None:
    if not value:
        return None
    text = str(value).strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def renew_at(cert: Certificate) -> dt.datetime | None:
    """When `cert` becomes due for renewal (None: not an issued ACME certificate)."""
    if cert.provider != "letsencrypt" or cert.expires_on is None:
        return None
    not_before = _parse((cert.meta or {}).get("not_before"))
    window = RENEW_BEFORE
    if not_before is not None:
        window = min(window, (cert.expires_on - not_before) / 3)
    return cert.expires_on - window


def is_due(cert: Certificate, now: dt.datetime | None = None) -> bool:
    from portway.certificates.issuance import IN_PROGRESS

    now = now or dt.datetime.now(dt.UTC)
    state = cert.acme or {}
    when = renew_at(cert)
    if when is None or now < when or state.get("status") in IN_PROGRESS:
        return False
    next_attempt = _parse((state.get("renewal") or {}).get("next_attempt"))
    return next_attempt is None or now >= next_attempt


def after_failure(renewal: dict[str, Any], failure: Any) -> dict[str, Any]:
    """The renewal state after a failed attempt: one more failure, the next retry time."""
    from portway.certificates.issuance import now_iso

    failures = int(renewal.get("failures") or 0) + 1
    delay = dt.timedelta(seconds=retry_base() * 2 ** (failures - 1))
    delay = min(delay, MAX_BACKOFF)
    next_attempt = dt.datetime.now(dt.UTC) + delay
    retry = _parse(getattr(failure, "retry_after", None))
    if retry is not None and retry > next_attempt:
        next_attempt = retry
    return {
        **renewal,
        "failures": failures,
        "last_attempt": now_iso(),
        "last_error": str(failure),
        "next_attempt": next_attempt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def warnings(cert: Certificate, now: dt.datetime | None = None) -> list[str]:
    """What a person should know about `cert`'s expiry and renewal (empty: all fine)."""
    now = now or dt.datetime.now(dt.UTC)
    found = []
    if cert.expires_on is not None:
        left = cert.expires_on - now
        if left <= dt.timedelta(0):
            found.append(f"expired on {cert.expires_on:%Y-%m-%d}")
        elif left < WARN_BEFORE:
            days = max(1, round(left.total_seconds() / 86400))
            found.append(f"expires in {days} day(s), on {cert.expires_on:%Y-%m-%d}")
    renewal = (cert.acme or {}).get("renewal") or {}
    if int(renewal.get("failures") or 0) > 0:
        found.append(
            f"renewal failed {renewal['failures']} time(s): {renewal.get('last_error') or ''}"
        )
    return found


def check_once(now: dt.datetime | None = None) -> list[int]:
    """Start a renewal for every due certificate; returns their ids."""
    from portway.certificates import issuance

    started = []
    for cert in Certificate.objects.filter(provider="letsencrypt", expires_on__isnull=False):
        if is_due(cert, now) and not issuance.is_running(cert):
            from portway.certificates.services import audit

            issuance.start(cert, "renew")
            audit(None, cert, "renewed")
            started.append(cert.pk)
    return started


class RenewalScheduler:
    """The background thread of `portway serve` (start() / stop())."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acme-renewal", daemon=True)

    def start(self) -> RenewalScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from portway.certificates import issuance

        try:
            jitter = installation_jitter()
            issuance.resume_interrupted()
        except Exception:
            log.exception("could not resume ACME jobs")
            jitter = random.random()
        finally:
            close_old_connections()
        period = interval()
        # first check soon after start, at a per-installation offset
        wait = min(period, 5 + jitter * 55)
        while not self._stop.wait(wait):
            try:
                started = check_once()
                if started:
                    log.info("renewing certificates %s", started)
            except Exception:
                log.exception("renewal check failed")
            finally:
                close_old_connections()
            period = interval()
            wait = period * (0.9 + 0.2 * ((jitter + random.random()) % 1.0))
