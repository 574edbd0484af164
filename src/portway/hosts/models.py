"""Host kinds (proxy, redirection, 404, stream): NPM's host objects, stored with their
nginx status.

Every kind claims what it listens for in one table (HostName) whose unique index decides,
in the save transaction, whether it is free: server names across the HTTP kinds, and
`tcp:<port>` / `udp:<port>` for streams (a colon never occurs in a server name, so the
two namespaces cannot meet).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portway.core.fields import unicode_name


class HostBase(models.Model):
    """What every host kind has: names, TLS options, advanced config, status.

    `domain_names` holds normalised names (lowercase ASCII/punycode, no trailing dot).
    `meta` holds only the client's own keys; nginx status lives in its own columns.
    Subclasses set KIND, the key of their HostName claims and nginx files
    (`hosts/<KIND>-<id>.conf`), and LABEL, how people call one of them.
    """

    KIND = ""
    LABEL = "host"

    domain_names = models.JSONField(default=list)
    # The first name, kept in its own column so lists sort by it in the database (NPM order).
    first_domain = models.CharField(max_length=253, default="", db_index=True)
    ssl_forced = models.BooleanField(default=False)
    hsts_enabled = models.BooleanField(default=False)
    hsts_subdomains = models.BooleanField(default=False)
    http2_support = models.BooleanField(default=False)
    block_exploits = models.BooleanField(default=False)
    advanced_config = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    meta = models.JSONField(default=dict)
    nginx_online = models.BooleanField(default=True)
    nginx_err = models.TextField(null=True, blank=True, default=None)
    # nginx rejected the current version, but the last accepted one is still served
    nginx_serving_previous = models.BooleanField(default=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["first_domain", "id"]

    def __str__(self) -> str:
        """The names as people read them (Unicode, not punycode)."""
        return ", ".join(self.unicode_names) or f"{self.LABEL} {self.pk}"

    def save(self, *args, **kwargs) -> None:
        """Save the row and rewrite its name claims when names or `enabled` changed.

        Raises:
            django.db.IntegrityError: an enabled host of any kind already claims one of
                the names (the unique index on HostName.claim); callers run this in a
                savepoint and turn it into a 400 (portway.hosts.services).
        """
        self.first_domain = self.domain_names[0] if self.domain_names else ""
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"domain_names", "enabled"} & set(update_fields):
            self.sync_names()

    def delete(self, *args, **kwargs):  # noqa: ANN201 - Django's (count, per-model) tuple
        """Delete the row and its name claims."""
        HostName.objects.filter(kind=self.KIND, host_id=self.pk).delete()
        return super().delete(*args, **kwargs)

    @property
    def file_key(self) -> str:
        """The key of this host's nginx file and status (`proxy-5`, `dead-2`)."""
        return f"{self.KIND}-{self.pk}"

    def audit_meta(self) -> dict:
        """What the audit log keeps of the host beside its id: its names."""
        return {"domain_names": self.domain_names}

    def sync_names(self) -> None:
        """Mirror `domain_names` into HostName rows; an enabled host claims each name."""
        HostName.objects.filter(kind=self.KIND, host_id=self.pk).delete()
        HostName.objects.bulk_create(
            HostName(
                kind=self.KIND,
                host_id=self.pk,
                name=name,
                unicode_name=unicode_name(name),
                claim=name if self.enabled else None,
            )
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
        if not getattr(self, "access_list_id", 0):  # a 404 host has no access list
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


class ProxyHost(HostBase):
    """A set of domain names served by nginx and proxied to one upstream.

    `locations` holds NPM's custom-location objects, already validated.
    """

    KIND = "proxy"
    LABEL = "proxy host"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proxy_hosts"
    )
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
    caching_enabled = models.BooleanField(default=False)
    allow_websocket_upgrade = models.BooleanField(default=False)
    trust_forwarded_proto = models.BooleanField(default=False)
    # Portway: only Cloudflare may connect (Authenticated Origin Pulls), see nginx/render.py
    cloudflare_only = models.BooleanField(default=False)
    locations = models.JSONField(default=list)

    class Meta(HostBase.Meta):
        pass


class RedirectionHost(HostBase):
    """Domain names answered with a redirect to `forward_domain_name` (NPM's object).

    `forward_scheme` is "auto" (the request's own scheme), "http" or "https";
    `preserve_path` appends the request URI to the target.
    """

    KIND = "redirection"
    LABEL = "redirection host"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="redirection_hosts"
    )
    forward_http_code = models.PositiveSmallIntegerField(default=302)
    forward_scheme = models.CharField(max_length=5, default="auto")
    forward_domain_name = models.CharField(max_length=1024)
    preserve_path = models.BooleanField(default=False)
    # access lists (another change) attach here as they do on proxy hosts; 0 = none
    access_list_id = models.PositiveIntegerField(default=0)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redirection_hosts",
    )

    class Meta(HostBase.Meta):
        pass


class DeadHost(HostBase):
    """Domain names answered 404 for every request, with their own certificate (NPM's
    "404 host")."""

    KIND = "dead"
    LABEL = "404 host"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dead_hosts"
    )
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dead_hosts",
    )

    class Meta(HostBase.Meta):
        pass


class Stream(models.Model):
    """NPM's stream: TCP and/or UDP on `incoming_port` forwarded to
    `forwarding_host:forwarding_port` by nginx's stream module, TLS terminated with
    `certificate` when one is set (TCP only: nginx has no DTLS).

    An enabled stream claims `tcp:<port>` and/or `udp:<port>` in HostName (the same
    unique index as server names), so one port serves one stream per protocol.
    `forwarding_host` is validated like a proxy host's forward_host.
    """

    KIND = "stream"
    LABEL = "stream"
    PROTOCOLS = ("tcp", "udp")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="streams"
    )
    incoming_port = models.PositiveIntegerField(db_index=True)
    forwarding_host = models.CharField(max_length=255)
    forwarding_port = models.PositiveIntegerField()
    tcp_forwarding = models.BooleanField(default=True)
    udp_forwarding = models.BooleanField(default=False)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="streams",
    )
    enabled = models.BooleanField(default=True)
    meta = models.JSONField(default=dict)
    nginx_online = models.BooleanField(default=True)
    nginx_err = models.TextField(null=True, blank=True, default=None)
    nginx_serving_previous = models.BooleanField(default=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["incoming_port", "id"]  # NPM's list order

    def __str__(self) -> str:
        """`port 5000 (TCP, UDP) → db.lan:5432`: how the UI and messages name it."""
        upstream = self.forwarding_host
        if ":" in upstream:
            upstream = f"[{upstream}]"
        target = f"{upstream}:{self.forwarding_port}"
        return f"port {self.incoming_port} ({self.protocol_label}) → {target}"

    def save(self, *args, **kwargs) -> None:
        """Save the row and rewrite its port claims.

        Raises:
            django.db.IntegrityError: an enabled stream already claims the port for one
                of the protocols (HostName.claim's unique index); portway.hosts.services
                runs this in a savepoint and answers 400 naming incoming_port.
        """
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        claimed = {"incoming_port", "tcp_forwarding", "udp_forwarding", "enabled"}
        if update_fields is None or claimed & set(update_fields):
            self.sync_claims()

    def delete(self, *args, **kwargs):  # noqa: ANN201 - Django's (count, per-model) tuple
        """Delete the row and its port claims."""
        HostName.objects.filter(kind=self.KIND, host_id=self.pk).delete()
        return super().delete(*args, **kwargs)

    @property
    def protocols(self) -> list[str]:
        """The protocols forwarded, of "tcp" and "udp"."""
        return [p for p in self.PROTOCOLS if getattr(self, f"{p}_forwarding")]

    @property
    def protocol_label(self) -> str:
        """ "TCP", "UDP" or "TCP, UDP"."""
        return ", ".join(p.upper() for p in self.protocols) or "nothing"

    @property
    def port_claims(self) -> list[str]:
        """The HostName claims of this stream: `tcp:5000`, `udp:5000`."""
        return [f"{protocol}:{self.incoming_port}" for protocol in self.protocols]

    @property
    def file_key(self) -> str:
        """The key of this stream's nginx file and status (`stream-3`)."""
        return f"{self.KIND}-{self.pk}"

    @property
    def certificate_warnings(self) -> list[str]:
        """A stream has no names to check a certificate against: always []."""
        return []

    def audit_meta(self) -> dict:
        """What the audit log keeps of the stream beside its id."""
        return {
            "incoming_port": self.incoming_port,
            "forwarding_host": self.forwarding_host,
            "forwarding_port": self.forwarding_port,
            "tcp_forwarding": self.tcp_forwarding,
            "udp_forwarding": self.udp_forwarding,
        }

    def sync_claims(self) -> None:
        """Mirror the port and protocols into HostName rows; an enabled stream claims them."""
        HostName.objects.filter(kind=self.KIND, host_id=self.pk).delete()
        HostName.objects.bulk_create(
            HostName(
                kind=self.KIND,
                host_id=self.pk,
                name=claim,
                unicode_name=claim,
                claim=claim if self.enabled else None,
            )
            for claim in self.port_claims
        )


HOST_MODELS: dict[str, type[HostBase] | type[Stream]] = {
    model.KIND: model for model in (ProxyHost, RedirectionHost, DeadHost, Stream)
}
"""The host kinds of this app by their KIND."""

OTHER_HOST_MODELS = {"tunnel": "tunnels.Tunnel"}
"""Host kinds of other apps that claim names in HostName (KIND → model label, resolved
when used so that this app imports none of them)."""


def host_model(kind: str) -> type[HostBase]:
    """The model of any host kind that claims names (`proxy`, `tunnel`, ...).

    Raises KeyError for an unknown kind. One fixed registry, no plugins.
    """
    if kind in HOST_MODELS:
        return HOST_MODELS[kind]
    from django.apps import apps

    return apps.get_model(OTHER_HOST_MODELS[kind])


class HostName(models.Model):
    """One server name of a host of any kind, or one port of a stream: the claim index.

    `domain_names` on the host stays the source of truth (NPM's wire format); these rows
    are rewritten from it on every save. `claim` is the name while the host is enabled
    and NULL while it is disabled: its unique index is what makes a name belong to one
    enabled host across every kind, decided by the database in the save transaction.
    """

    kind = models.CharField(max_length=16, default="proxy")
    host_id = models.PositiveIntegerField()
    name = models.CharField(max_length=253, db_index=True)
    # the name in Unicode, so a search typed in the user's own script finds it
    unicode_name = models.CharField(max_length=253, default="")
    claim = models.CharField(max_length=253, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["kind", "host_id"], name="hosts_hostname_kind_host")]

    def __str__(self) -> str:
        return self.name

    @property
    def host(self) -> HostBase | Stream | None:
        """The host holding this name (None if it is gone)."""
        try:
            model = host_model(self.kind)
        except KeyError:  # the admin UI's name (nginx.admin_site) has no host row
            return None
        return model.objects.filter(pk=self.host_id).first()
