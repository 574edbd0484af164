"""Certificate metadata; the PEM files live under <data_dir>/certificates/<id>/."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from portway.core.fields import unicode_name


class Certificate(models.Model):
    """NPM's certificate object.

    provider: "other" (uploaded) or "letsencrypt" (ACME).
    domain_names: names the certificate covers (from its SAN list once uploaded).
    expires_on: notAfter of the leaf, None until PEMs exist.
    """

    PROVIDERS = [("other", "Custom"), ("letsencrypt", "Let's Encrypt")]

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="certificates"
    )
    provider = models.CharField(max_length=20, choices=PROVIDERS)
    nice_name = models.CharField(max_length=255, blank=True, default="")
    domain_names = models.JSONField(default=list)
    expires_on = models.DateTimeField(null=True, blank=True)
    meta = models.JSONField(default=dict)
    # ACME state of a letsencrypt certificate (see portway.certificates.issuance):
    # {"status", "step", "domains": {name: state}, "error", "error_domain", "started_on",
    #  "finished_on", "kind", "renewal": {"failures", "next_attempt", "last_attempt",
    #  "last_error"}}. Never holds secrets.
    acme = models.JSONField(default=dict, blank=True)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["nice_name", "id"]

    def __str__(self) -> str:
        return self.nice_name or f"certificate {self.pk}"

    @property
    def directory(self) -> Path:
        return Path(settings.DATA_DIR) / "certificates" / str(self.pk)

    @property
    def fullchain_path(self) -> Path:
        """Leaf followed by intermediates, as nginx's ssl_certificate wants."""
        return self.directory / "fullchain.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "privkey.pem"

    @property
    def has_files(self) -> bool:
        return self.fullchain_path.exists() and self.key_path.exists()

    @property
    def not_before(self) -> datetime | None:
        """notBefore of the leaf (from `meta`), None until PEMs exist."""
        raw = (self.meta or {}).get("not_before")
        try:
            return datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            return None

    def covers(self, name: str) -> bool:
        """Whether a browser accepts this certificate for the normalised host `name`.

        A SAN wildcard `*.example.com` matches exactly one label (`a.example.com`, not
        `example.com` or `a.b.example.com`), RFC 6125 section 6.4.3; a host wildcard is
        covered only by the same wildcard.
        """
        names = self.domain_names or []
        if name in names:
            return True
        head, dot, parent = name.partition(".")
        return bool(dot) and head != "*" and f"*.{parent}" in names

    def warnings_for(self, names: Sequence[str], now: datetime | None = None) -> list[str]:
        """Why browsers would refuse this certificate for a host serving `names`.

        Messages for people: names it does not cover (naming those it does), expired,
        not yet valid. Empty while the certificate has no files yet (ACME pending).
        """
        if self.expires_on is None:
            return []
        now = now or timezone.now()
        label = f"Certificate “{self}”"
        warnings = []
        missing = [name for name in names if not self.covers(name)]
        if missing:
            covered = ", ".join(_shown(n) for n in self.domain_names or []) or "no domain names"
            warnings.append(
                f"{label} does not cover {', '.join(_shown(n) for n in missing)}; "
                f"it covers {covered}."
            )
        if self.expires_on <= now:
            warnings.append(f"{label} expired on {_utc(self.expires_on)}.")
        not_before = self.not_before
        if not_before is not None and not_before > now:
            warnings.append(f"{label} is not valid before {_utc(not_before)}.")
        return warnings


def _shown(name: str) -> str:
    """A name as people read it, with its punycode form when that differs."""
    text = unicode_name(name)
    return text if text == name else f"{text} ({name})"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class CertificateEvent(models.Model):
    """One line of a certificate's log: issuance steps, renewals, revocation, failures.

    `detail` keeps the full ACME problem document(s) of a failure for people who want
    to dig further than the human message.
    """

    LEVELS = [("info", "info"), ("warning", "warning"), ("error", "error")]

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="events")
    created_on = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=20)  # issue | renew | revoke | test
    level = models.CharField(max_length=10, choices=LEVELS, default="info")
    message = models.TextField()
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "certificate event"

    def __str__(self) -> str:
        return f"{self.certificate_id} {self.action}: {self.message[:60]}"
