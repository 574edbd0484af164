"""API: /api/nginx/certificates (NPM's certificate endpoints, same wire format).

    GET    /                 list (?expand=owner  ?query=<nice_name part>)
    POST   /                 create: {"provider": "other", "nice_name"} → 201;
                             {"provider": "letsencrypt", "domain_names", "meta"} → 201 at
                             once; issued in the background
    POST   /validate         multipart certificate, certificate_key[, intermediate_certificate]
    GET    /dns-providers    [{"id", "name", "credentials"}]
    POST   /test-http        {"domains": [...]} → {"<domain>": "ok"|"no-host"|"404"|...}
    GET    /{id}             one certificate (?expand=...)
    DELETE /{id}             → true; 409 while hosts use it; ACME certificates are revoked
    POST   /{id}/upload      multipart certificate, certificate_key[, intermediate_certificate]
    POST   /{id}/renew       renew an ACME certificate now (background) → the certificate
    GET    /{id}/download    zip of cert.pem, chain.pem, fullchain.pem (never the key)
    GET    /{id}/events      the certificate's log (Portway): steps, failures, ACME problems

Every answer validates against NPM's OpenAPI document (backend/schema in NPM's repository),
whose certificate `meta` allows no keys of its own and whose `expires_on` is always a
string. So the NPM object carries only NPM's meta keys, and `expires_on` is the creation
time until a certificate exists (NPM's own default). Portway's details live in Portway's
own endpoints (`portway_router`, mounted at /api/portway):

    GET /api/portway/certificates[/{id}]   the certificate with every `meta` key Portway
        keeps: the parsed files (cn, issuer, serial, fingerprint, not_before, not_after,
        key_size, curve, self_signed, expired, not_yet_valid, chain, ignored_certificates,
        certificate / certificate_key / intermediate_certificate as booleans), the ACME
        state (acme_status pending|ordering|validating|issuing|valid|failed, acme_step,
        acme_domains {name: pending|validating|valid|invalid}, acme_error,
        acme_error_domain, acme_started_on, acme_finished_on, renewal {failures,
        last_attempt, next_attempt, last_error, renew_after}) and `warnings` ([text], only
        when there is something to warn about); `expires_on` is null until files exist.
    GET /api/portway/certificates/{id}/events   the certificate's log (also served at
        /api/nginx/certificates/{id}/events, where earlier Portway versions had it).
    GET /api/portway/dns-providers         the providers with their `propagation_seconds`.

NPM's certificate object has room for one expansion, `owner`. NPM's server also embeds the
hosts using a certificate (`?expand=proxy_hosts,redirection_hosts,dead_hosts,streams`),
keys its own document forbids; Portway's NPM endpoints accept those expansions (NPM
clients send them) and answer NPM's documented object, and Portway's endpoints
(`/api/portway/certificates[/{id}]`) embed the hosts.

No response ever contains private key material or DNS credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.core.files.uploadedfile import UploadedFile as DjangoUploadedFile
from django.http import HttpRequest, HttpResponse
from ninja import File, Router, Schema, Status, UploadedFile
from pydantic import ConfigDict, Field

from portway.accounts.schemas import UserOut
from portway.accounts.services import serialize_user
from portway.certificates import pem, services
from portway.certificates.models import Certificate
from portway.core.errors import FieldError
from portway.core.params import ObjectId

try:
    from portway.core.wire import iso as _wire_iso
except ImportError:  # core.wire is being written concurrently
    _wire_iso = None

router = Router(tags=["certificates"])
portway_router = Router(tags=["portway"])

HOST_RELATIONS = ("proxy_hosts", "redirection_hosts", "dead_hosts", "streams")
EXPANDABLE = ("owner", *HOST_RELATIONS)
UPLOAD_FIELDS = (pem.CERTIFICATE_FIELD, pem.KEY_FIELD, pem.INTERMEDIATE_FIELD)
# The keys NPM's certificate object allows in `meta` (components/certificate-object.json;
# it forbids any other). `certificate` / `certificate_key` hold PEM text there, which
# Portway never returns, so they are left out.
NPM_META_KEYS = ("dns_challenge", "dns_provider", "propagation_seconds", "key_type")


def iso(dt: datetime | None) -> str | None:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, or None."""
    if dt is None:
        return None
    if _wire_iso is not None:
        return _wire_iso(dt)
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- schemas


class CertificateCreate(Schema):
    """POST body. provider "other" needs nice_name; "letsencrypt" needs domain_names."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["letsencrypt", "other"]
    nice_name: str | None = None
    domain_names: list[Any] | None = None
    meta: dict[str, Any] | None = None


class CertificateOut(Schema):
    """NPM's certificate object; expanded relations appear only when asked for."""

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    provider: str
    nice_name: str
    domain_names: list[str]
    expires_on: str = Field(description="the creation time until the certificate exists")
    meta: dict[str, Any]
    owner: UserOut | None = None


class TestHttpIn(Schema):
    model_config = ConfigDict(extra="forbid")

    domains: list[Any]


class DnsProviderOut(Schema):
    """NPM's DNS provider (components/dns-providers-list.json)."""

    id: str
    name: str
    credentials: str


class PortwayDnsProviderOut(DnsProviderOut):
    """A DNS provider with the seconds its plugin waits for DNS by default."""

    propagation_seconds: int


class PortwayCertificateOut(Schema):
    """A certificate as Portway knows it: NPM's fields, every `meta` key, and an
    `expires_on` that is null until the certificate's files exist."""

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    provider: str
    nice_name: str
    domain_names: list[str]
    expires_on: str | None
    meta: dict[str, Any]
    owner: UserOut | None = None
    proxy_hosts: list[dict[str, Any]] | None = None
    redirection_hosts: list[dict[str, Any]] | None = None
    dead_hosts: list[dict[str, Any]] | None = None
    streams: list[dict[str, Any]] | None = None


class EventOut(Schema):
    id: int
    created_on: str
    action: str
    level: str
    message: str
    detail: dict[str, Any]


class Dates(Schema):
    from_: int = Field(alias="from", description="notBefore, Unix seconds")
    to: int = Field(description="notAfter, Unix seconds")


class CertificateInfoOut(Schema):
    cn: str
    issuer: str
    dates: Dates


class ValidateOut(Schema):
    """NPM's answer: the leaf's names and dates, and that the key matches. NPM's schema
    has no room for the intermediate's details; a bad intermediate is still a 400."""

    certificate: CertificateInfoOut
    certificate_key: bool


# NPM echoes the uploaded key as `certificate_key` (a non-empty string in its schema);
# Portway never returns a private key, so the string says where it went instead.
KEY_STORED = "stored on the server (Portway never returns private keys)"


class UploadOut(Schema):
    """NPM answers with the uploaded files; the key is only confirmed, never echoed."""

    certificate: str
    certificate_key: str = Field(description=f'always "{KEY_STORED}"')
    intermediate_certificate: str | None = None


# --------------------------------------------------------------------------- wire


def _host_wire(host: Any) -> dict[str, Any]:
    """A host embedded by `?expand=proxy_hosts` (or redirection_hosts, dead_hosts): the
    hosts app's own wire form of its kind (imported here: hosts imports this module)."""
    from portway.hosts.api import any_host_wire

    return any_host_wire(host)


def acme_meta(cert: Certificate) -> dict[str, Any]:
    """The ACME state and expiry warnings, as extra `meta` keys."""
    from portway.certificates import renewal

    out: dict[str, Any] = {}
    state = cert.acme or {}
    if cert.provider == "letsencrypt":
        out.update(
            acme_status=state.get("status") or ("valid" if cert.has_files else "pending"),
            acme_step=state.get("step") or "",
            acme_domains=dict(state.get("domains") or {}),
            acme_error=state.get("error") or "",
            acme_error_domain=state.get("error_domain") or "",
            acme_started_on=state.get("started_on"),
            acme_finished_on=state.get("finished_on"),
            renewal=dict(state.get("renewal") or {}),
        )
        next_renewal = renewal.renew_at(cert)
        out["renewal"]["renew_after"] = iso(next_renewal)
    found = renewal.warnings(cert)
    if found:
        out["warnings"] = found
    return out


def npm_meta(cert: Certificate) -> dict[str, Any]:
    """The certificate's `meta` as NPM's schema allows it: NPM's keys only, and for an
    issued Let's Encrypt certificate `letsencrypt_certificate` {cn, issuer, dates: {from,
    to}} (Unix seconds) as NPM reports it."""
    stored = services.public_meta(cert.meta)
    meta = {key: stored[key] for key in NPM_META_KEYS if key in stored}
    if cert.provider == "letsencrypt" and stored.get("cn") and cert.expires_on:
        not_before = stored.get("not_before")
        started = datetime.fromisoformat(not_before.replace("Z", "+00:00")) if not_before else None
        meta["letsencrypt_certificate"] = {
            "cn": stored["cn"],
            "issuer": stored.get("issuer", ""),
            "dates": {
                "from": int((started or cert.created_on).timestamp()),
                "to": int(cert.expires_on.timestamp()),
            },
        }
    return meta


def certificate_wire(
    cert: Certificate,
    expand: set[str] = frozenset(),  # type: ignore[assignment]
    *,
    hosts: bool = False,
) -> dict[str, Any]:
    """NPM's certificate object (components/certificate-object.json); `expand` adds the
    owner, and with `hosts` (Portway's endpoints only: NPM's document forbids the keys) the
    hosts of each kind in HOST_RELATIONS that use it. `expires_on` is the creation time
    until files exist (NPM's model default). Never any key material."""
    data: dict[str, Any] = {
        "id": cert.pk,
        "created_on": iso(cert.created_on),
        "modified_on": iso(cert.modified_on),
        "owner_user_id": cert.owner_id,
        "provider": cert.provider,
        "nice_name": cert.nice_name,
        "domain_names": list(cert.domain_names or []),
        "expires_on": iso(cert.expires_on or cert.created_on),
        "meta": npm_meta(cert),
    }
    if "owner" in expand:
        data["owner"] = serialize_user(cert.owner)
    for relation in HOST_RELATIONS:
        if hosts and relation in expand:
            manager = getattr(cert, relation, None)
            data[relation] = [_host_wire(h) for h in manager.all()] if manager else []
    return data


def portway_certificate_wire(
    cert: Certificate,
    expand: set[str] = frozenset(),  # type: ignore[assignment]
) -> dict[str, Any]:
    """The certificate with every `meta` key Portway keeps (parsed files, ACME state,
    renewal, warnings), `expires_on` null until files exist, and `expand`'s owner and
    hosts. Never any key material."""
    return {
        **certificate_wire(cert, expand, hosts=True),
        "expires_on": iso(cert.expires_on),
        "meta": {**services.public_meta(cert.meta), **acme_meta(cert)},
    }


def _expand(raw: str | None) -> set[str]:
    wanted = {part.strip() for part in (raw or "").split(",") if part.strip()}
    unknown = sorted(wanted - set(EXPANDABLE))
    if unknown:
        raise FieldError("expand", f"{unknown[0]!r} is not one of {', '.join(EXPANDABLE)}")
    return wanted


def _related(queryset: Any, expand: set[str]) -> Any:
    if "owner" in expand:
        queryset = queryset.select_related("owner")
    for relation in HOST_RELATIONS:
        if relation in expand and hasattr(Certificate, relation):
            queryset = queryset.prefetch_related(relation)
    return queryset


def _read(request: HttpRequest, name: str, upload: DjangoUploadedFile | None) -> bytes | None:
    """An upload field's bytes: the file part, or a plain form field holding PEM text.

    Raises:
        FieldError: the field is larger than 1 MiB.
    """
    limit = pem.MAX_FILE_BYTES
    too_large = f"is too large; a certificate or key file is at most {limit // 1024} KiB"
    if upload is not None:
        if upload.size is not None and upload.size > limit:
            raise FieldError(name, too_large)
        data = upload.read(limit + 1)
    else:
        text = request.POST.get(name)
        if text is None:
            return None
        data = text.encode("utf-8")
    if len(data) > limit:
        raise FieldError(name, too_large)
    return data


def _files(
    request: HttpRequest,
    certificate: DjangoUploadedFile | None,
    certificate_key: DjangoUploadedFile | None,
    intermediate_certificate: DjangoUploadedFile | None,
) -> tuple[bytes, bytes, bytes | None]:
    cert_data = _read(request, pem.CERTIFICATE_FIELD, certificate)
    key_data = _read(request, pem.KEY_FIELD, certificate_key)
    inter_data = _read(request, pem.INTERMEDIATE_FIELD, intermediate_certificate)
    if cert_data is None:
        raise FieldError(pem.CERTIFICATE_FIELD, "is required")
    if key_data is None:
        raise FieldError(pem.KEY_FIELD, "is required")
    return cert_data, key_data, inter_data


# --------------------------------------------------------------------------- routes


@router.get("", response=list[CertificateOut], exclude_unset=True, summary="List certificates")
def list_certificates(request: HttpRequest, expand: str | None = None, query: str | None = None):
    wanted = _expand(expand) & {"owner"}  # the hosts: /api/portway/certificates only
    queryset = _related(services.list_certificates(request.auth, query), wanted)
    return [certificate_wire(cert, wanted) for cert in queryset]


@router.post("", response={201: CertificateOut}, exclude_unset=True, summary="Create a certificate")
def create_certificate(request: HttpRequest, payload: CertificateCreate):
    cert = services.create(
        request.auth,
        payload.provider,
        nice_name=payload.nice_name,
        domain_names=payload.domain_names,
        meta=payload.meta,
    )
    return Status(201, certificate_wire(cert))


@router.post(
    "/validate",
    response=ValidateOut,
    by_alias=True,
    exclude_unset=True,
    summary="Check a certificate and key without storing them",
)
def validate_certificate(
    request: HttpRequest,
    certificate: UploadedFile | None = File(None),
    certificate_key: UploadedFile | None = File(None),
    intermediate_certificate: UploadedFile | None = File(None),
):
    cert_data, key_data, inter_data = _files(
        request, certificate, certificate_key, intermediate_certificate
    )
    return services.validate(cert_data, key_data, inter_data)


@router.get(
    "/dns-providers",
    response=list[DnsProviderOut],
    summary="DNS providers for the DNS challenge, with their credentials templates",
)
def dns_providers(request: HttpRequest):
    from portway.certificates import dns_providers as providers

    services.list_certificates(request.auth)  # the same permission as reading certificates
    return providers.list_providers()


@router.post(
    "/test-http",
    response=dict[str, str],
    summary="Check from this server that names reach Portway over HTTP (port 80)",
)
def test_http(request: HttpRequest, payload: TestHttpIn):
    return services.test_http(request.auth, payload.domains)


@router.get(
    "/{certificate_id}", response=CertificateOut, exclude_unset=True, summary="Get a certificate"
)
def get_certificate(request: HttpRequest, certificate_id: ObjectId, expand: str | None = None):
    wanted = _expand(expand)
    cert = services.get_certificate(request.auth, certificate_id)
    return certificate_wire(cert, wanted)


@router.delete("/{certificate_id}", response=bool, summary="Delete a certificate")
def delete_certificate(request: HttpRequest, certificate_id: ObjectId):
    services.delete(request.auth, services.get_certificate(request.auth, certificate_id))
    return True


@router.post(
    "/{certificate_id}/upload",
    response=UploadOut,
    exclude_unset=True,
    summary="Upload the PEM files of a custom certificate",
)
def upload_certificate(
    request: HttpRequest,
    certificate_id: ObjectId,
    certificate: UploadedFile | None = File(None),
    certificate_key: UploadedFile | None = File(None),
    intermediate_certificate: UploadedFile | None = File(None),
):
    cert = services.get_certificate(request.auth, certificate_id)
    cert_data, key_data, inter_data = _files(
        request, certificate, certificate_key, intermediate_certificate
    )
    services.upload(request.auth, cert, cert_data, key_data, inter_data)
    stored = cert.fullchain_path.read_bytes().decode("ascii")
    leaf_end = stored.index("-----END CERTIFICATE-----\n") + len("-----END CERTIFICATE-----\n")
    result: dict[str, Any] = {"certificate": stored[:leaf_end], "certificate_key": KEY_STORED}
    if stored[leaf_end:]:
        result["intermediate_certificate"] = stored[leaf_end:]
    return result


@router.post(
    "/{certificate_id}/renew",
    response=CertificateOut,
    exclude_unset=True,
    summary="Renew an ACME certificate now (in the background)",
)
def renew_certificate(request: HttpRequest, certificate_id: ObjectId):
    cert = services.get_certificate(request.auth, certificate_id)
    services.renew(request.auth, cert)
    cert.refresh_from_db()
    return certificate_wire(cert)


@router.get(
    "/{certificate_id}/download",
    summary="Download the certificate and its chain as a zip of PEM files",
    openapi_extra={
        "responses": {
            200: {
                "description": "cert.pem, chain.pem and fullchain.pem (never the key)",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def download_certificate(request: HttpRequest, certificate_id: ObjectId):
    cert = services.get_certificate(request.auth, certificate_id)
    data = services.download(request.auth, cert)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="certificate-{cert.pk}.zip"'
    return response


def _events(request: HttpRequest, certificate_id: int) -> list[dict[str, Any]]:
    cert = services.get_certificate(request.auth, certificate_id)
    return [
        {
            "id": e.pk,
            "created_on": iso(e.created_on),
            "action": e.action,
            "level": e.level,
            "message": e.message,
            "detail": e.detail or {},
        }
        for e in services.events(request.auth, cert)
    ]


@router.get(
    "/{certificate_id}/events",
    response=list[EventOut],
    summary="The certificate's log (also at /api/portway/certificates/{id}/events)",
)
def certificate_events(request: HttpRequest, certificate_id: ObjectId):
    return _events(request, certificate_id)


# --------------------------------------------------------------------------- Portway's own


@portway_router.get(
    "/certificates",
    response=list[PortwayCertificateOut],
    exclude_unset=True,
    summary="Portway: certificates with their details, ACME state and (?expand) hosts",
)
def portway_list_certificates(
    request: HttpRequest, expand: str | None = None, query: str | None = None
):
    wanted = _expand(expand)
    queryset = _related(services.list_certificates(request.auth, query), wanted)
    return [portway_certificate_wire(cert, wanted) for cert in queryset]


@portway_router.get(
    "/certificates/{certificate_id}",
    response=PortwayCertificateOut,
    exclude_unset=True,
    summary="Portway: a certificate with its details, ACME state and (?expand) hosts",
)
def portway_get_certificate(
    request: HttpRequest, certificate_id: ObjectId, expand: str | None = None
):
    cert = services.get_certificate(request.auth, certificate_id)
    return portway_certificate_wire(cert, _expand(expand))


@portway_router.get(
    "/certificates/{certificate_id}/events",
    response=list[EventOut],
    summary="Portway: the certificate's log: issuance steps, renewals, failures with ACME details",
)
def portway_certificate_events(request: HttpRequest, certificate_id: ObjectId):
    return _events(request, certificate_id)


@portway_router.get(
    "/dns-providers",
    response=list[PortwayDnsProviderOut],
    summary="Portway: DNS providers with their default propagation wait",
)
def portway_dns_providers(request: HttpRequest):
    from portway.certificates import dns_providers as providers

    services.list_certificates(request.auth)  # the same permission as reading certificates
    return providers.list_providers()
