"""Proxy host: NPM's proxy-host object, stored with its nginx status."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portway.core.fields import unicode_name


class ProxyHost(models.Model):
    """A set of domain names served by nginx and proxied to one upstream.

    `domain_names` holds normalised names (lowercase ASCII/punycode, no trailing dot).
    `locations` holds NPM's custom-location objects, already validated.
    `meta` holds only the client's own keys; nginx status lives in its own columns.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proxy_hosts"
    )
    domain_names = models.JSONField(default=list)
    # The first name, kept in its own column so lists sort by it in the database (NPM order).
    first_domain = models.CharField(max_length=253, default="", db_index=True)
    forward_scheme = models.CharField(max_length=5, default="http")
    forward_host = models.CharField(max_length=255)
    forward_port = models.PositiveIntegerField()
    access_list_id = models.PositiveIntegerField(default=0)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="proxy_hosts",
    )
    ssl_forced = models.BooleanField(default=False)
    hsts_enabled = models.BooleanField(default=False)
    hsts_subdomains = models.BooleanField(default=False)
    http2_support = models.BooleanField(default=False)
    block_exploits = models.BooleanField(default=False)
    caching_enabled = models.BooleanField(default=False)
    allow_websocket_upgrade = models.BooleanField(default=False)
    trust_forwarded_proto = models.BooleanField(default=False)
    # Portway: only Cloudflare may connect (Authenticated Origin Pulls), see nginx/render.py
    cloudflare_only = models.BooleanField(default=False)
    advanced_config = models.TextField(blank=True, default="")
    locations = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    meta = models.JSONField(default=dict)
    nginx_online = models.BooleanField(default=True)
    nginx_err = models.TextField(null=True, blank=True, default=None)
    # nginx rejected the current version, but the last accepted one is still served
    nginx_serving_previous = models.BooleanField(default=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["first_domain", "id"]

    def __str__(self) -> str:
        """The names as people read them (Unicode, not punycode)."""
        return ", ".join(self.unicode_names) or f"proxy host {self.pk}"

    def save(self, *args, **kwargs) -> None:
        self.first_domain = self.domain_names[0] if self.domain_names else ""
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "domain_names" in update_fields:
            self.sync_names()

    def sync_names(self) -> None:
        """Mirror `domain_names` into HostName rows (used for the uniqueness check)."""
        HostName.objects.filter(host=self).delete()
        HostName.objects.bulk_create(
            HostName(host=self, name=name, unicode_name=unicode_name(name))
            for name in self.domain_names
        )

    @property
    def unicode_names(self) -> list[str]:
        """`domain_names` in Unicode (`bücher.example`); the same list for ASCII names."""
        return [unicode_name(name) for name in self.domain_names]

    @property
    def names_for_display(self) -> list[tuple[str, str]]:
        """(name as stored, name in Unicode) pairs, for links that show Unicode."""
        return [(name, unicode_name(name)) for name in self.domain_names]

    @property
    def access_list_name(self) -> str:
        """The name of the host's access list ("" for none), for lists in the UI."""
        if not self.access_list_id:
            return ""
        from portway.access.models import AccessList

        found = AccessList.objects.filter(pk=self.access_list_id).values_list("name", flat=True)
        return found.first() or f"access list {self.access_list_id}"

    @property
    def certificate_warnings(self) -> list[str]:
        """Why browsers would refuse the host's certificate for its names (none: [])."""
        if self.certificate is None:
            return []
        return self.certificate.warnings_for(self.domain_names)


class HostName(models.Model):
    """One server name of a host, indexed so "is this name taken?" is a single query.

    `domain_names` on the host stays the source of truth (NPM's wire format); these rows
    are rewritten from it on every save.
    """

    host = models.ForeignKey(ProxyHost, on_delete=models.CASCADE, related_name="names")
    name = models.CharField(max_length=253, db_index=True)
    # the name in Unicode, so a search typed in the user's own script finds it
    unicode_name = models.CharField(max_length=253, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
