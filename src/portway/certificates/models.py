"""Certificate metadata; the PEM files live under <data_dir>/certificates/<id>/."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models


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
