"""What an NPM import created, so a second import of the same installation skips it."""

from __future__ import annotations

from django.db import models


class ImportedObject(models.Model):
    """One NPM row imported into Portway.

    kind: NPM's table ("user", "certificate", "access_list", "proxy_host",
    "redirection_host", "dead_host", "stream"); npm_id: its id there; npm_created_on: its
    `created_on` as text, so rows of another NPM installation with the same id are not
    taken for it; object_id: the Portway object's primary key.
    """

    kind = models.CharField(max_length=32)
    npm_id = models.PositiveIntegerField()
    npm_created_on = models.CharField(max_length=64)
    object_id = models.PositiveIntegerField()
    imported_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "npm_id", "npm_created_on"], name="npmimport_one_per_row"
            )
        ]

    def __str__(self) -> str:
        return f"NPM {self.kind} {self.npm_id} → {self.object_id}"
