"""The real client address behind trusted proxies (nginx's realip module).

Setting `real-ip` (`/api/settings/real-ip`, the Settings page):
    value: "off" | "CF-Connecting-IP" | "X-Forwarded-For"  (the header to read)
    meta:  {"cloudflare": bool (trust Cloudflare's published ranges),
            "trusted_proxies": [CIDR, ...] (other proxies, e.g. a tunnel on the LAN)}

nginx replaces the connection's address with the header's only when the connection
comes from a trusted address (https://nginx.org/en/docs/http/ngx_http_realip_module.html),
so a header sent by anyone else is ignored. Access lists, the access log and the
`X-Real-IP`/`X-Forwarded-For` the upstream receives then carry the real client.

Cloudflare's ranges ship with Portway (data/cloudflare-ips.txt); `refresh_cloudflare`
fetches the current lists and keeps them in the data directory, which then wins.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from portway.access.htpasswd import write_private
from portway.access.render import RealIpSpec
from portway.core.errors import BadRequest, FieldError, PermissionDenied
from portway.nginx.models import AuditLogEntry, Setting

SETTING_ID = "real-ip"
HEADERS = ("off", "CF-Connecting-IP", "X-Forwarded-For")
MAX_TRUSTED = 100
CLOUDFLARE_URLS = "https://www.cloudflare.com/ips-v4 https://www.cloudflare.com/ips-v6"
MAX_DOWNLOAD = 65536


# The widest public network a proxy's addresses may be given as. Trusting a wider one
# (0.0.0.0/0, ::/0, 2000::/3...) lets anyone there set the header and pass for any
# address, so access lists' allow/deny clauses stop meaning anything. Cloudflare's widest
# range is a /12 (IPv4) and a /29 (IPv6); private networks (10.0.0.0/8, fc00::/7) may be
# as wide as they are.
WIDEST_PREFIX = {4: 8, 6: 16}


def trusted_network(text: str) -> str:
    """The canonical CIDR of a trusted proxy address or network.

    Raises ValueError with the reason: not an address or network, or a public network
    wider than WIDEST_PREFIX."""
    network = ipaddress.ip_network(text, strict=False)
    widest = WIDEST_PREFIX[network.version]
    if network.prefixlen < widest and not network.is_private:
        raise ValueError(
            f"{network} is wider than /{widest}: it holds addresses of anyone on the "
            "internet, who could then set the header and pass for any address (access "
            "lists' allow and deny would let them in); name your proxies' own networks"
        )
    return str(network)


def _networks(lines: list[str]) -> list[str]:
    """Canonical CIDRs of `lines`; comments and blank lines skipped. Raises ValueError
    (see trusted_network)."""
    found = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            found.append(trusted_network(text))
    return found


def _refreshed_file() -> Path:
    return Path(settings.DATA_DIR) / "cloudflare-ips.txt"


def cloudflare_ranges() -> list[str]:
    """Cloudflare's ranges: the last refreshed copy if any, else the shipped list."""
    refreshed = _refreshed_file()
    if refreshed.exists():
        return _networks(refreshed.read_text().splitlines())
    shipped = resources.files("portway.access") / "data" / "cloudflare-ips.txt"
    return _networks(shipped.read_text().splitlines())


def get_setting() -> Setting:
    """The `real-ip` setting (created "off" on first use)."""
    return Setting.get(SETTING_ID)


def spec() -> RealIpSpec | None:
    """The renderer's view of the setting; None when off."""
    setting = get_setting()
    if setting.value not in HEADERS[1:]:
        return None
    meta = setting.meta or {}
    trusted = list(cloudflare_ranges()) if meta.get("cloudflare") else []
    trusted += [cidr for cidr in meta.get("trusted_proxies") or [] if cidr not in trusted]
    return RealIpSpec(setting.value, tuple(trusted)) if trusted else None


def validate(value: Any, meta: Any) -> dict[str, Any]:
    """The setting's clean `meta` for `value`. Raises FieldError naming `value` or
    `meta/...` (`meta/trusted_proxies/<i>` for a CIDR that is not one)."""
    if value not in HEADERS:
        raise FieldError("value", f"must be one of {', '.join(HEADERS)}")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FieldError("meta", "must be an object")
    unknown = set(meta) - {"cloudflare", "trusted_proxies"}
    if unknown:
        raise FieldError(f"meta/{sorted(unknown)[0]}", "is not a property of this setting")
    cloudflare = meta.get("cloudflare", False)
    if cloudflare not in (True, False, 0, 1):
        raise FieldError("meta/cloudflare", "must be true or false")
    proxies = meta.get("trusted_proxies") or []
    if not isinstance(proxies, list):
        raise FieldError("meta/trusted_proxies", "must be a list of CIDR networks")
    if len(proxies) > MAX_TRUSTED:
        raise FieldError("meta/trusted_proxies", f"must have at most {MAX_TRUSTED} entries")
    clean: list[str] = []
    for index, cidr in enumerate(proxies):
        try:
            if not isinstance(cidr, str) or not cidr.strip():
                raise ValueError
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise FieldError(
                f"meta/trusted_proxies/{index}",
                f"must be an IP address or CIDR network (e.g. 10.0.0.0/8), not {cidr!r}",
            ) from None
        try:
            network = trusted_network(cidr.strip())
        except ValueError as exc:
            raise FieldError(f"meta/trusted_proxies/{index}", f"must not be {exc}") from None
        if network not in clean:
            clean.append(network)
    if value != "off" and not cloudflare and not clean:
        raise FieldError(
            "meta/trusted_proxies",
            "name at least one trusted proxy (or trust Cloudflare) to read the client "
            "address from a header",
        )
    return {"cloudflare": bool(cloudflare), "trusted_proxies": clean}


def set_real_ip(user, value: Any, meta: Any) -> Setting:  # noqa: ANN001
    """Change the setting (admins only) and apply. Raises FieldError/PermissionDenied."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    clean = validate(value, meta)
    with transaction.atomic():
        setting = get_setting()
        setting.store(user, value, clean)
    _request_apply()
    return setting


def _request_apply() -> None:
    from portway.nginx.engine import request_apply

    request_apply()


def refresh_cloudflare(user, urls: str | None = None) -> list[str]:  # noqa: ANN001
    """Fetch Cloudflare's current ranges and keep them (admins only); returns them.

    Args:
        urls: space-separated list URLs; default PORTWAY_CLOUDFLARE_IPS_URLS or
            Cloudflare's own (https://www.cloudflare.com/ips-v4 and ips-v6).
    Raises:
        BadRequest: a list could not be fetched or held something that is not a CIDR;
            the previous ranges stay in use.
    """
    if not user.is_admin:
        raise PermissionDenied("Only administrators may change settings")
    urls = urls or os.environ.get("PORTWAY_CLOUDFLARE_IPS_URLS") or CLOUDFLARE_URLS
    ranges: list[str] = []
    for url in urls.split():
        try:
            with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - admin's setting
                text = response.read(MAX_DOWNLOAD).decode("ascii")
            ranges += _networks(text.splitlines())
        except (OSError, ValueError) as exc:
            raise BadRequest(f"Could not refresh Cloudflare's ranges from {url}: {exc}") from exc
    if not ranges:
        raise BadRequest("Cloudflare's lists were empty; the previous ranges stay in use")
    write_private(_refreshed_file(), "".join(f"{cidr}\n" for cidr in ranges))
    AuditLogEntry.objects.create(
        user=user,
        object_type="setting",
        action="updated",
        meta={"id": SETTING_ID, "cloudflare_ranges": len(ranges)},
    )
    _request_apply()
    return ranges
