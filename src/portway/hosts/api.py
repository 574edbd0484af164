"""API: /api/nginx/proxy-hosts."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["proxy-hosts"])
