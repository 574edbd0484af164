"""API: status, tokens, users (NPM's /api/, /api/tokens, /api/users)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["accounts"])
