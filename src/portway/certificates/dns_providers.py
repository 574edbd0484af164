"""DNS-01 providers: certbot's DNS plugins used as a library.

Each provider is a certbot DNS authenticator plugin (`certbot-dns-cloudflare`,
`certbot-dns-rfc2136`, `certbot-dns-route53`) instantiated in-process with a minimal
configuration object: Portway calls the plugin's `perform()` / `cleanup()` with annotated
challenges built from the ACME order, exactly as certbot does, so the plugin's own zone
lookup, TTLs and `propagation_seconds` wait apply. No subprocess and no shell is involved.

Credentials are INI text (the same templates NPM shows). They are written to
`<data_dir>/certificates/<id>/dns-credentials.ini` with mode 0600 (directory 0700), read
only by the plugin, and never stored in the database, returned by the API or logged.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portway.core.errors import FieldError

CREDENTIALS_FIELD = "meta/dns_provider_credentials"
MAX_CREDENTIALS_BYTES = 16 * 1024
_LINE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class DnsProvider:
    """One supported DNS provider.

    id: NPM's provider id (`meta.dns_provider`); plugin: certbot's plugin name;
    credentials: the template shown to people; required: INI keys that must be present;
    propagation_seconds: the plugin's default wait before validation.
    """

    id: str
    name: str
    plugin: str
    credentials: str
    required: tuple[str, ...]
    propagation_seconds: int

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "credentials": self.credentials,
            "propagation_seconds": self.propagation_seconds,
        }


PROVIDERS: dict[str, DnsProvider] = {
    p.id: p
    for p in (
        DnsProvider(
            id="cloudflare",
            name="Cloudflare",
            plugin="dns-cloudflare",
            credentials=(
                "# Cloudflare API token (Zone:DNS:Edit permission on the zone)\n"
                "dns_cloudflare_api_token = 0123456789abcdef0123456789abcdef01234567"
            ),
            required=("dns_cloudflare_api_token",),
            propagation_seconds=10,
        ),
        DnsProvider(
            id="rfc2136",
            name="RFC 2136 (BIND, Knot, PowerDNS, ... dynamic updates)",
            plugin="dns-rfc2136",
            credentials=(
                "# Target DNS server (an IP address)\n"
                "dns_rfc2136_server = 192.0.2.1\n"
                "# Target DNS port\n"
                "dns_rfc2136_port = 53\n"
                "# TSIG key name\n"
                "dns_rfc2136_name = keyname.\n"
                "# TSIG key secret\n"
                "dns_rfc2136_secret = 4q4wM/2I180UXoMyN4INVhJNi8V9BCV+jMw2mXgZw/CSuxUT8C7NKKFs"
                "AmKd7ak51vWKgSl12ib86oQRPkpDjg==\n"
                "# TSIG key algorithm\n"
                "dns_rfc2136_algorithm = HMAC-SHA512"
            ),
            required=("dns_rfc2136_server", "dns_rfc2136_name", "dns_rfc2136_secret"),
            propagation_seconds=60,
        ),
        DnsProvider(
            id="route53",
            name="Route 53 (Amazon)",
            plugin="dns-route53",
            credentials=(
                "[default]\n"
                "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
            ),
            required=("aws_access_key_id", "aws_secret_access_key"),
            propagation_seconds=0,  # the plugin waits for Route 53 to report INSYNC
        ),
    )
}


def list_providers() -> list[dict[str, Any]]:
    """`GET /dns-providers`: `[{"id", "name", "credentials", "propagation_seconds"}]`."""
    return [p.wire() for p in PROVIDERS.values()]


def get(provider_id: object) -> DnsProvider:
    """The provider with this id.

    Raises:
        FieldError: on `meta/dns_provider`, listing the supported ids.
    """
    provider = PROVIDERS.get(provider_id) if isinstance(provider_id, str) else None
    if provider is None:
        raise FieldError(
            "meta/dns_provider", f"must be one of {', '.join(PROVIDERS)} (got {provider_id!r})"
        )
    return provider


def parse_credentials(provider: DnsProvider, text: object) -> dict[str, str]:
    """Check credentials INI text for `provider`; returns key → value.

    Messages name missing or unknown keys but never repeat a value.

    Raises:
        FieldError: on `meta/dns_provider_credentials`.
    """
    if not isinstance(text, str) or not text.strip():
        raise FieldError(
            CREDENTIALS_FIELD, f"is required for {provider.name}; fill in the template"
        )
    if len(text.encode("utf-8")) > MAX_CREDENTIALS_BYTES:
        raise FieldError(CREDENTIALS_FIELD, "is too long")
    values: dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")) or re.fullmatch(r"\[[^\]]*\]", stripped):
            continue
        match = _LINE.match(line)
        if not match:
            raise FieldError(CREDENTIALS_FIELD, f"line {number} is not of the form `key = value`")
        values[match.group(1)] = match.group(2)
    missing = [key for key in provider.required if not values.get(key)]
    if missing:
        raise FieldError(
            CREDENTIALS_FIELD,
            f"{provider.name} needs {', '.join(missing)} (see the template)",
        )
    return values


def write_credentials(path: Path, text: str) -> None:
    """Store credentials 0600 (parent directory 0700), replacing any previous file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_credentials(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if match and not line.strip().startswith(("#", ";")):
            values[match.group(1)] = match.group(2)
    return values


# --------------------------------------------------------------------------- plugins

_display_lock = threading.Lock()
_display_ready = False


def _quiet_display() -> None:
    """certbot plugins print progress through certbot's display service; send it nowhere."""
    global _display_ready
    with _display_lock:
        if _display_ready:
            return
        from certbot._internal.display import obj

        obj.set_display(obj.NoninteractiveDisplay(open(os.devnull, "w")))  # noqa: SIM115
        _display_ready = True


def authenticator(provider: DnsProvider, credentials: Path, propagation_seconds: int) -> Any:
    """An instance of the provider's certbot authenticator plugin, ready for `perform()`."""
    _quiet_display()
    prefix = provider.plugin.replace("-", "_")
    config = types.SimpleNamespace(
        **{
            f"{prefix}_credentials": str(credentials),
            f"{prefix}_propagation_seconds": int(propagation_seconds),
        }
    )
    if provider.id == "cloudflare":
        from certbot_dns_cloudflare._internal.dns_cloudflare import Authenticator
    elif provider.id == "rfc2136":
        from certbot_dns_rfc2136._internal.dns_rfc2136 import Authenticator
    elif provider.id == "route53":
        return _route53(config, credentials)
    else:  # pragma: no cover - PROVIDERS and this list are kept together
        raise ValueError(provider.id)
    return Authenticator(config, provider.plugin)


def _route53(config: Any, credentials: Path) -> Any:
    """Route 53's plugin reads AWS credentials from boto3's environment; give it a client
    built from the stored credentials instead, so no process environment is touched."""
    import boto3
    from certbot_dns_route53._internal.dns_route53 import Authenticator

    values = read_credentials(credentials)
    plugin = Authenticator(config, "dns-route53")
    plugin.r53 = boto3.client(
        "route53",
        aws_access_key_id=values.get("aws_access_key_id"),
        aws_secret_access_key=values.get("aws_secret_access_key"),
    )
    return plugin


@contextlib.contextmanager
def challenges_published(plugin: Any, achalls: list[Any]) -> Iterator[list[Any]]:
    """`plugin.perform(achalls)` (publishes TXT records, waits for propagation), then
    always `plugin.cleanup(achalls)`. Yields the challenge responses."""
    try:
        yield plugin.perform(achalls)
    finally:
        with contextlib.suppress(Exception):
            plugin.cleanup(achalls)
