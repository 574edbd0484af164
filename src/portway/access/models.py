"""Access lists: basic-auth users and IP rules, applied to every host that names the list.

An access list is a policy, not a kind of host: hosts refer to it by `access_list_id`
and the renderer adds its directives to their server blocks (see
portway.access.render).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AccessList(models.Model):
    """NPM's access-list object.

    `satisfy_any`: a request passes when the address rules OR the password allow it
    (nginx `satisfy any`); otherwise both must (`satisfy all`).
    `portway_login`: a visitor may also (satisfy any) or must also (satisfy all) sign
    in with a Portway account on the site's own login page; `portway_users` narrows
    which accounts (user ids; empty: every enabled user).
    `pass_auth`: forward the client's Authorization header to the upstream; when off it
    is removed, so the upstream never sees the list's passwords.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_lists"
    )
    name = models.CharField(max_length=255)
    satisfy_any = models.BooleanField(default=False)
    pass_auth = models.BooleanField(default=False)
    # Portway's login gate (portway.access.gate): visitors sign in with a Portway account;
    # `portway_users` lists the user ids allowed in (empty: every enabled user).
    portway_login = models.BooleanField(default=False)
    portway_users = models.JSONField(default=list)
    meta = models.JSONField(default=dict)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class AccessListItem(models.Model):
    """One basic-auth user. Only the crypt(3) hash is stored (see portway.access.htpasswd)."""

    access_list = models.ForeignKey(AccessList, on_delete=models.CASCADE, related_name="items")
    username = models.CharField(max_length=255)
    password_hash = models.CharField(max_length=255)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username


class AccessListClient(models.Model):
    """One address rule: `directive` ("allow" | "deny") for `address` (a CIDR, an IP or "all").

    Rules are checked in order (nginx's access module stops at the first match).
    """

    access_list = models.ForeignKey(AccessList, on_delete=models.CASCADE, related_name="clients")
    address = models.CharField(max_length=64)
    directive = models.CharField(max_length=5)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.directive} {self.address}"
