"""Tunnel hosts: a name on Portway's HTTPS port whose WebSocket upgrades carry one TCP
connection each to a fixed target (forward_host:forward_port).

A tunnel host is a host kind (it claims its names in hosts.HostName like proxy,
redirection and 404 hosts). Who may open it: the holders of its access keys
(`TunnelKey`, only the SHA-256 of the secret stored) and its `users` with one of their
named API tokens. Each connection is recorded as a `TunnelSession`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portway.hosts.models import HostBase


class Tunnel(HostBase):
    """A tunnel host (KIND "tunnel"); see the module docstring.

    `max_connections`: how many tunnel connections may be open at once (1-100000).
    `passthrough`: instead of WebSockets, nginx hands the client's raw TLS stream to the
    target, chosen by the SNI name (portway.nginx.render_front); no certificate is used.
    `proxy_protocol`: with passthrough, the target receives a PROXY protocol v1 header
    first (the client's address); only for targets that expect one.
    """

    KIND = "tunnel"
    LABEL = "tunnel host"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tunnels"
    )
    forward_host = models.CharField(max_length=255)
    forward_port = models.PositiveIntegerField()
    max_connections = models.PositiveIntegerField(default=100)
    passthrough = models.BooleanField(default=False)
    proxy_protocol = models.BooleanField(default=False)
    certificate = models.ForeignKey(
        "certificates.Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tunnels",
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="usable_tunnels"
    )

    class Meta(HostBase.Meta):
        verbose_name = "tunnel host"


class TunnelKey(models.Model):
    """A revocable access key of one tunnel: `ptk_<key_id>_<secret>`.

    Only the SHA-256 of the secret is stored (the secret has 256 bits of entropy, so a
    fast hash suffices); the whole key is shown once, when it is created. Revoking
    deletes the row.
    """

    tunnel = models.ForeignKey(Tunnel, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    expires_on = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def expired(self) -> bool:
        """Whether the key's expiry has passed."""
        return self.expires_on is not None and self.expires_on <= timezone.now()


class TunnelSession(models.Model):
    """One TCP connection carried by a tunnel, as the tunnel service reported it.

    `credential`: which key or user opened it ("key office-laptop", "user a@b.c");
    `end_reason`: how it ended (e.g. "client closed", "key revoked", "target unreachable").
    Bytes are counted at the tunnel service: `bytes_in` from the client to the target,
    `bytes_out` back.
    """

    session_id = models.CharField(max_length=32, unique=True)
    tunnel = models.ForeignKey(
        Tunnel, null=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    tunnel_name = models.CharField(max_length=253, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    credential = models.CharField(max_length=200, default="")
    source = models.CharField(max_length=64, default="")
    started_on = models.DateTimeField()
    ended_on = models.DateTimeField(null=True, blank=True)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    end_reason = models.CharField(max_length=200, default="")

    class Meta:
        ordering = ["-started_on", "-id"]

    def __str__(self) -> str:
        return f"session {self.session_id}"
