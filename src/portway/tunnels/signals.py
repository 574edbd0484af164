"""Republish the tunnel service's state when what it authenticates with changes: a
user's API token created or deleted, a user disabled, enabled or deleted."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portway.accounts.models import ApiToken, User


@receiver(post_save, sender=ApiToken)
@receiver(post_delete, sender=ApiToken)
@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _republish(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("update_fields") and set(kwargs["update_fields"]) <= {
        "last_used_on",
        "last_used_from",
        "last_login",
    }:
        return  # a token's or user's bookkeeping, not who may connect

    def publish() -> None:
        from portway.tunnels.models import Tunnel
        from portway.tunnels.services import publish_state

        if Tunnel.objects.exists():
            publish_state()

    transaction.on_commit(publish)
