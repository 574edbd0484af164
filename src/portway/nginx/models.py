"""Installation-wide settings that shape the generated nginx config."""

from __future__ import annotations

from typing import Any

from django.db import models


class Setting(models.Model):
    """NPM's setting object; today only `default-site` exists.

    value: "congratulations" | "404" | "444" | "redirect" | "html".
    meta: {"redirect": url} or {"html": text} for the latter two.
    """

    id = models.CharField(max_length=100, primary_key=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    value = models.CharField(max_length=255)
    meta = models.JSONField(default=dict)

    DEFAULTS = {
        "default-site": {
            "name": "Default Site",
            "description": "What to show when nginx is hit with an unknown host",
            "value": "congratulations",
            "meta": {},
        },
        # portway.nginx.admin_site: the admin UI on a domain name over HTTPS
        "admin-domain": {
            "name": "Admin UI domain",
            "description": "Serve the admin UI on this name over HTTPS through Portway's nginx",
            "value": "off",
            "meta": {},
        },
        # portway.access.realip: the client address behind trusted proxies
        "real-ip": {
            "name": "Real client IP",
            "description": "Read the client's address from a header set by trusted proxies",
            "value": "off",
            "meta": {"cloudflare": False, "trusted_proxies": []},
        },
        # portway.access.gate: the login gate's session cookie scope
        "gate": {
            "name": "Login gate",
            "description": "Parent domain the login gate's session cookie is scoped to",
            "value": "default",
            "meta": {"cookie_domain": ""},
        },
    }

    @classmethod
    def get(cls, key: str) -> Setting:
        """The setting `key`, created with its default on first use."""
        obj, _ = cls.objects.get_or_create(id=key, defaults=cls.DEFAULTS[key])
        return obj

    def store(
        self, user: Any, value: str, meta: dict[str, Any], *, audit_value: bool = True
    ) -> None:
        """Save `value` and `meta` (already validated) and record the change in the audit
        log as "setting"/"updated" by `user`, with meta {"id", "value", "changes"}.

        `audit_value=False`: a setting whose value is fixed (the gate's "default") records
        only the changes of its meta, without "value". Call it inside the caller's
        transaction, so the row and its audit entry are saved together.
        """
        from portway.core.audit import changes

        before = (
            {"value": self.value, **(self.meta or {})} if audit_value else dict(self.meta or {})
        )
        after = {"value": value, **meta} if audit_value else dict(meta)
        self.value = value
        self.meta = meta
        self.save()
        entry: dict[str, Any] = {"id": self.id}
        if audit_value:
            entry["value"] = value
        entry["changes"] = changes(before, after)
        AuditLogEntry.objects.create(user=user, object_type="setting", action="updated", meta=entry)


class AuditLogEntry(models.Model):
    """One change, login or failed login made through the API or UI (NPM's audit log).

    `source_address` is the client's IP address; left unset, `save()` takes it from the
    request being served (`portway.core.audit`), so every app's entries carry it.
    """

    user = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL)
    object_type = models.CharField(max_length=50)
    object_id = models.PositiveIntegerField(default=0)
    action = models.CharField(max_length=50)
    meta = models.JSONField(default=dict)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_on", "-id"]
        indexes = [
            models.Index(fields=["object_type", "action"], name="audit_type_action"),
            models.Index(fields=["user", "created_on"], name="audit_user_created"),
        ]

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if self._state.adding and self.source_address is None:
            from portway.core.audit import current_source

            self.source_address = current_source()
        super().save(*args, **kwargs)
