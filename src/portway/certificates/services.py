"""Certificate operations shared by the API and the UI.

Functions take the acting user, check permissions, and raise `portway.core.errors`
exceptions (`FieldError`/`PemError` 400, `PermissionDenied` 403, `NotFound` 404,
`Conflict` 409); they never build HTTP responses. Private keys are written only to
`<data_dir>/certificates/<id>/privkey.pem` (0600) and never returned or stored in the DB.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.deletion import ProtectedError
from django.db.models.functions import Lower

from portway.certificates import pem
from portway.certificates.models import Certificate
from portway.core import fields, wire
from portway.core.audit import record, snapshot
from portway.core.errors import BadRequest, Conflict, FieldError, NotFound, PermissionDenied

log = logging.getLogger("portway.certificates")

PROVIDERS = ("letsencrypt", "other")
MAX_NICE_NAME = 255
MAX_ACME_NAMES = 100  # Let's Encrypt's limit of names per certificate
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}")
# meta keys the server owns for uploaded certificates (see ParsedCertificate.as_meta)
SERVER_META_KEYS = frozenset(
    {
        "certificate",
        "certificate_key",
        "intermediate_certificate",
        "cn",
        "issuer",
        "serial",
        "fingerprint",
        "not_before",
        "not_after",
        "key_size",
        "curve",
        "self_signed",
        "expired",
        "not_yet_valid",
        "chain",
        "ignored_certificates",
    }
)
# meta keys that hold secrets and never leave the server
SECRET_META_KEYS = frozenset({"dns_provider_credentials"})
_LEVELS = {"hidden": 0, "view": 1, "manage": 2}
_BIDI_CONTROLS = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


# --------------------------------------------------------------------------- permissions


def _require(user: Any, level: str) -> None:
    """Raise PermissionDenied unless `user` may `level` ("view"/"manage") certificates.

    Admins always may. Otherwise `portway.accounts.permissions.require` decides; if that
    module is missing, the user's Permission row is read here (no row: manage).
    """
    if getattr(user, "is_admin", False):
        return
    try:
        from portway.accounts.permissions import require
    except ImportError:
        require = None
    if require is not None:
        require(user, "certificates", level)
        return
    permission = _permission(user)
    granted = getattr(permission, "certificates", "manage") if permission else "manage"
    if _LEVELS.get(granted, 0) < _LEVELS[level]:
        raise PermissionDenied(f"You do not have permission to {level} certificates")


def _permission(user: Any) -> Any:
    try:
        return user.permission
    except Exception:  # RelatedObjectDoesNotExist, or a user object without the relation
        return None


def _visible(user: Any, queryset: QuerySet[Certificate]) -> QuerySet[Certificate]:
    """Admins and users with visibility "all" see every certificate; others their own."""
    if getattr(user, "is_admin", False):
        return queryset
    try:
        from portway.accounts.permissions import visible_queryset
    except ImportError:
        visible_queryset = None
    if visible_queryset is not None:
        return visible_queryset(user, "certificates", queryset)
    permission = _permission(user)
    if permission is not None and getattr(permission, "visibility", "user") == "all":
        return queryset
    return queryset.filter(owner=user)


def _check_visible(user: Any, cert: Certificate) -> None:
    if not _visible(user, Certificate.objects.filter(pk=cert.pk)).exists():
        raise NotFound(f"Certificate {cert.pk} not found")


# --------------------------------------------------------------------------- validation


def clean_nice_name(raw: object) -> str:
    """The certificate's display name: stripped, 1–255 characters, no control characters.

    Raises:
        FieldError: `nice_name` is missing, blank, too long or holds control characters.
    """
    if raw is None:
        raise FieldError("nice_name", "is required")
    if not isinstance(raw, str):
        raise FieldError("nice_name", "must be a string")
    value = raw.strip()
    if not value:
        raise FieldError("nice_name", "must not be empty")
    if len(value) > MAX_NICE_NAME:
        raise FieldError("nice_name", f"must be at most {MAX_NICE_NAME} characters long")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            raise FieldError(
                "nice_name", f"must not contain control characters (found U+{ord(char):04X})"
            )
    return value


def clean_domain_names(raw: object) -> list[str]:
    """Strictly validated, normalised domain names (see `portway.core.fields.domain_names`).

    Raises:
        FieldError: naming `domain_names/<index>` for a bad item, `domain_names` for the list.
    """
    try:
        return fields.domain_names(raw)  # type: ignore[arg-type]
    except fields.IndexedValueError as exc:
        where = "domain_names" if exc.index is None else f"domain_names/{exc.index}"
        raise FieldError(where, exc.reason) from exc


def clean_meta(raw: object) -> dict:
    """The client's own `meta` keys: an object within `wire.meta_problem`'s limits
    (64 KiB, 16 levels) without key material.

    Server-owned keys (`SERVER_META_KEYS`) are dropped; the server sets them on upload.

    Raises:
        FieldError: `meta` is not an object, is too large or contains a private key.
    """
    if raw is None:
        return {}
    problem = wire.meta_problem(raw)
    if problem:
        raise FieldError("meta", problem)
    if "PRIVATE KEY" in json.dumps(raw):
        raise FieldError(
            "meta",
            "must not contain private key material; upload keys with "
            "POST /api/nginx/certificates/{id}/upload",
        )
    return {k: v for k, v in raw.items() if k not in SERVER_META_KEYS}


def public_meta(meta: dict) -> dict:
    """`meta` as it may leave the server: no secrets, upload markers only as booleans."""
    out = {
        k: v for k, v in (meta or {}).items() if k not in SECRET_META_KEYS and "credential" not in k
    }
    for key in ("certificate", "certificate_key", "intermediate_certificate"):
        if key in out and not isinstance(out[key], bool):
            out[key] = bool(out[key])
    return out


# --------------------------------------------------------------------------- queries


def list_certificates(user: Any, query: str | None = None) -> QuerySet[Certificate]:
    """Certificates `user` may see, ordered by nice_name (case-insensitive), then id.

    query: keep those whose nice_name contains this text (case-insensitive).

    Raises:
        PermissionDenied: the user's certificates permission is "hidden".
    """
    _require(user, "view")
    queryset = _visible(user, Certificate.objects.all())
    if query:
        queryset = queryset.filter(Q(nice_name__icontains=query))
    return queryset.order_by(Lower("nice_name"), "id")


def get_certificate(user: Any, id: int | str) -> Certificate:
    """One certificate `user` may see.

    Raises:
        PermissionDenied: the user's certificates permission is "hidden".
        NotFound: no such certificate, or it belongs to another user the user cannot see.
    """
    _require(user, "view")
    try:
        pk = int(id)
    except (TypeError, ValueError):
        raise NotFound(f"Certificate {id} not found") from None
    cert = _visible(user, Certificate.objects.filter(pk=pk)).first()
    if cert is None:
        raise NotFound(f"Certificate {pk} not found")
    return cert


# --------------------------------------------------------------------------- create


def create(
    user: Any,
    provider: str,
    *,
    nice_name: str | None = None,
    domain_names: list[str] | None = None,
    meta: dict | None = None,
) -> Certificate:
    """Create a certificate of either provider (the API's POST).

    "other" → `create_custom` (empty until `upload`); "letsencrypt" → `create_letsencrypt`.

    Raises:
        FieldError: unknown provider or an invalid field; PermissionDenied; BadRequest.
    """
    if provider == "other":
        return create_custom(user, nice_name, meta=meta)  # type: ignore[arg-type]
    if provider == "letsencrypt":
        return create_letsencrypt(user, domain_names, nice_name=nice_name, meta=meta)
    raise FieldError("provider", f"must be one of {', '.join(PROVIDERS)}")


def create_custom(user: Any, nice_name: str, *, meta: dict | None = None) -> Certificate:
    """A new, empty custom (provider "other") certificate owned by `user`.

    It has `domain_names == []` and `expires_on is None` until `upload` stores its PEMs.

    Raises:
        PermissionDenied: the user may not manage certificates.
        FieldError: `nice_name` or `meta` is invalid.
    """
    _require(user, "manage")
    name = clean_nice_name(nice_name)
    client_meta = clean_meta(meta)
    return Certificate.objects.create(
        owner=user, provider="other", nice_name=name, domain_names=[], meta=client_meta
    )


def create_letsencrypt(
    user: Any,
    domain_names: list[str] | None,
    *,
    nice_name: str | None = None,
    meta: dict | None = None,
    attach: list[list[Any]] | None = None,
) -> Certificate:
    """Request a certificate over ACME; it is issued in the background.

    The row is created at once with `acme.status == "pending"`; a worker thread then runs
    the order (`portway.certificates.issuance`). meta: `dns_challenge` (bool),
    `dns_provider` + `dns_provider_credentials` (INI text, stored 0600 in a file, never in
    the database), `propagation_seconds`, `key_type` ("ecdsa" default, or "rsa"),
    `letsencrypt_email` (defaults to the user's e-mail). attach: hosts to switch to the
    certificate once issued (`[[app_label.Model, pk, previous certificate id, tls], ...]`).

    Raises:
        PermissionDenied: the user may not manage certificates.
        FieldError: `domain_names/<i>`, `nice_name` or `meta/...` is invalid; a wildcard
            name with the HTTP challenge.
    """
    from portway.certificates import dns_providers, issuance

    _require(user, "manage")
    names = clean_domain_names(domain_names)
    if len(names) > MAX_ACME_NAMES:
        raise FieldError(
            "domain_names", f"an ACME certificate covers at most {MAX_ACME_NAMES} names"
        )
    name = clean_nice_name(nice_name) if nice_name else ", ".join(names)[:MAX_NICE_NAME]
    raw_meta = dict(meta or {})
    credentials = raw_meta.pop("dns_provider_credentials", None)
    client_meta = clean_meta(raw_meta)
    dns_challenge = bool(client_meta.get("dns_challenge"))
    client_meta["dns_challenge"] = dns_challenge
    key_type = client_meta.get("key_type") or "ecdsa"
    if key_type not in ("ecdsa", "rsa"):
        raise FieldError("meta/key_type", 'must be "ecdsa" or "rsa"')
    client_meta["key_type"] = key_type
    provider = None
    if dns_challenge:
        provider = dns_providers.get(client_meta.get("dns_provider"))
        dns_providers.parse_credentials(provider, credentials)
        seconds = client_meta.get("propagation_seconds")
        if seconds in (None, ""):
            client_meta["propagation_seconds"] = provider.propagation_seconds
        elif isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 3600:
            raise FieldError(
                "meta/propagation_seconds", "must be a whole number of seconds, 0-3600"
            )
    else:
        for key in ("dns_provider", "propagation_seconds"):
            client_meta.pop(key, None)
        wildcards = [n for n in names if n.startswith("*.")]
        if wildcards:
            index = names.index(wildcards[0])
            raise FieldError(
                f"domain_names/{index}",
                f"{wildcards[0]} is a wildcard name: wildcard certificates need the DNS "
                "challenge (meta.dns_challenge true with a dns_provider)",
            )
    email = str(client_meta.get("letsencrypt_email") or getattr(user, "email", "") or "").strip()
    if "letsencrypt_email" in client_meta and not _EMAIL.fullmatch(email):
        raise FieldError("meta/letsencrypt_email", "must be an e-mail address")
    with transaction.atomic():
        cert = Certificate.objects.create(
            owner=user,
            provider="letsencrypt",
            nice_name=name,
            domain_names=names,
            meta=client_meta,
            acme={"requested": names, "email": email, "attach": list(attach or [])},
        )
        if provider is not None:
            dns_providers.write_credentials(issuance.credentials_path(cert), str(credentials))
        issuance.start(cert, "issue")
        audit(user, cert, "created")
    return cert


# NPM's host meta keys that describe the certificate requested with certificate_id "new"
ACME_HOST_META = (
    "letsencrypt_email",
    "letsencrypt_agree",
    "dns_challenge",
    "dns_provider",
    "dns_provider_credentials",
    "propagation_seconds",
    "key_type",
)
HOST_TLS_OPTIONS = ("ssl_forced", "http2_support", "hsts_enabled", "hsts_subdomains")


def prepare_host_request(host: Any) -> dict:
    """For a host saved with certificate_id "new": what to request and how to switch.

    Takes NPM's certificate keys from the host's meta (the DNS credentials leave the
    host's meta: they are stored only with the certificate), and remembers the TLS
    options asked for, which apply once the host has its certificate. A host that had
    no certificate starts without TLS; one that had a certificate keeps it until then.
    """
    meta = dict(host.meta or {})
    wanted = {key: meta[key] for key in ACME_HOST_META if key in meta}
    meta.pop("dns_provider_credentials", None)
    host.meta = meta
    return {
        "meta": wanted,
        "tls": {name: bool(getattr(host, name, False)) for name in HOST_TLS_OPTIONS},
        "previous": host.certificate_id,
    }


def request_for_host(user: Any, host: Any, request: dict) -> Certificate:
    """Request a certificate for `host`'s names (see `prepare_host_request`).

    Raises:
        FieldError, PermissionDenied: as `create_letsencrypt` (the caller's transaction
            then undoes the host change too).
    """
    attach = [host._meta.label, host.pk, request.get("previous"), request.get("tls") or {}]
    return create_letsencrypt(
        user, list(host.domain_names), meta=request.get("meta") or {}, attach=[attach]
    )


def renew(user: Any, cert: Certificate) -> Certificate:
    """Renew an ACME certificate now (in the background, like issuance).

    Raises:
        PermissionDenied, NotFound; BadRequest: not an ACME certificate;
        Conflict: an issuance or renewal of it is already running.
    """
    from portway.certificates import issuance

    _require(user, "manage")
    _check_visible(user, cert)
    if cert.provider != "letsencrypt":
        raise BadRequest(
            f"Only Let's Encrypt certificates are renewed; certificate {cert.pk} is a custom "
            "certificate: upload its new files instead"
        )
    if (cert.acme or {}).get("status") in issuance.IN_PROGRESS or issuance.is_running(cert):
        raise Conflict(f"certificate {cert.pk} is already being issued or renewed")
    with transaction.atomic():
        issuance.start(cert, "renew" if cert.has_files else "issue")
        audit(user, cert, "renewed")
    return cert


def download(user: Any, cert: Certificate) -> bytes:
    """A zip of the certificate's public PEMs: cert.pem, chain.pem, fullchain.pem.

    The private key is not included: private keys never leave Portway through the API.

    Raises:
        PermissionDenied, NotFound; BadRequest: no files yet.
    """
    import io
    import zipfile

    _require(user, "view")
    _check_visible(user, cert)
    if not cert.has_files:
        raise BadRequest(f"certificate {cert.pk} has no files yet")
    fullchain = cert.fullchain_path.read_bytes()
    end = b"-----END CERTIFICATE-----\n"
    leaf = fullchain[: fullchain.index(end) + len(end)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cert.pem", leaf)
        archive.writestr("chain.pem", fullchain[len(leaf) :])
        archive.writestr("fullchain.pem", fullchain)
    return buffer.getvalue()


def events(user: Any, cert: Certificate) -> list[Any]:
    """The certificate's log, oldest first (issuance steps, renewals, failures)."""
    _require(user, "view")
    _check_visible(user, cert)
    return list(cert.events.order_by("id"))


def test_http(user: Any, domains: object) -> dict[str, str]:
    """NPM's test-http: is each name served by this Portway on the HTTP port?

    Checked from this server itself (see `portway.certificates.reachability`).

    Raises:
        PermissionDenied; FieldError: `domains/<i>` invalid.
    """
    from portway.certificates import reachability

    _require(user, "view")
    try:
        names = fields.domain_names(domains)  # type: ignore[arg-type]
    except fields.IndexedValueError as exc:
        where = "domains" if exc.index is None else f"domains/{exc.index}"
        raise FieldError(where, exc.reason) from exc
    wildcards = [n for n in names if n.startswith("*.")]
    if wildcards:
        raise FieldError(
            f"domains/{names.index(wildcards[0])}", "a wildcard name cannot be tested over HTTP"
        )
    return reachability.test_http(names)


# --------------------------------------------------------------------------- upload


def validate(certificate: bytes, key: bytes, intermediate: bytes | None = None) -> dict:
    """Check a certificate and key without storing anything (NPM's POST /validate).

    Returns:
        `{"certificate": {"cn", "issuer", "dates": {"from", "to"}}, "certificate_key": True}`
        (dates in Unix seconds), plus `"intermediate_certificate": {...}` when given.

    Raises:
        PemError: naming the bad field (see `portway.certificates.pem.parse`).
    """
    parsed = pem.parse(certificate, key, intermediate)
    result: dict = {"certificate": parsed.npm_info(), "certificate_key": True}
    if intermediate is not None and intermediate.strip():
        result["intermediate_certificate"] = pem.describe(intermediate, pem.INTERMEDIATE_FIELD)
    return result


def upload(
    user: Any,
    cert: Certificate,
    certificate: bytes,
    certificate_key: bytes,
    intermediate: bytes | None = None,
) -> Certificate:
    """Store the PEMs of a custom certificate and record what they hold.

    Writes `fullchain.pem` (0644, leaf first) and `privkey.pem` (0600, PKCS#8) under
    `cert.directory` (0700), each through a temporary file and `os.replace`. Sets
    `domain_names` (SAN DNS names), `expires_on` (leaf notAfter) and the server's `meta`
    keys (issuer, serial, fingerprint, key_type, expired, ...; never key material). An
    expired certificate is accepted with `meta.expired = true`. Then asks nginx to apply.

    Raises:
        PermissionDenied, NotFound: the user may not manage / see this certificate.
        BadRequest: the certificate is not a custom (provider "other") one.
        PemError: naming `certificate`, `certificate_key` or `intermediate_certificate`;
            nothing is written in that case.
    """
    _require(user, "manage")
    _check_visible(user, cert)
    if cert.provider != "other":
        raise BadRequest(
            f'Only custom certificates (provider "other") take uploaded files; '
            f"certificate {cert.pk} is provided by {cert.provider}"
        )
    parsed = pem.parse(certificate, certificate_key, intermediate)
    with transaction.atomic():
        before = snapshot(cert, skip=frozenset({"acme", "owner_id"}))
        _record(cert, parsed)
        _store_files(cert, parsed)
        audit(user, cert, "updated", before)
    _request_apply()
    return cert


def import_certificate(
    owner: Any,
    provider: str,
    nice_name: str,
    fullchain: bytes,
    key: bytes,
    *,
    meta: dict | None = None,
    acme_state: dict | None = None,
    dns_credentials: str | None = None,
    write_files: bool = True,
) -> Certificate:
    """Store a certificate brought from another installation (the NPM import).

    provider: "other" (custom) or "letsencrypt" (then `acme_state` is its
    `Certificate.acme`, status "valid", so renewal takes it over; `dns_credentials` INI
    text is written 0600 beside it for the DNS challenge). `fullchain`/`key`: PEM bytes
    as `upload` takes them. `write_files` False (a dry run) parses and saves the row but
    writes no file; the caller rolls the transaction back.

    Raises:
        PemError: the PEMs are unusable (naming `certificate` or `certificate_key`).
        FieldError: `nice_name` or `meta` is invalid.
    """
    from portway.certificates import dns_providers, issuance

    if provider not in PROVIDERS:
        raise FieldError("provider", f"must be one of {', '.join(PROVIDERS)}")
    parsed = pem.parse(fullchain, key)
    client_meta = clean_meta({k: v for k, v in (meta or {}).items() if k not in SECRET_META_KEYS})
    with transaction.atomic():
        cert = Certificate.objects.create(
            owner=owner,
            provider=provider,
            nice_name=clean_nice_name(nice_name) if nice_name else ", ".join(parsed.sans)[:255],
            domain_names=[],
            meta=client_meta,
            acme=dict(acme_state or {}),
        )
        _record(cert, parsed)
        if write_files:
            _store_files(cert, parsed)
            if dns_credentials:
                dns_providers.write_credentials(issuance.credentials_path(cert), dns_credentials)
    return cert


def _record(cert: Certificate, parsed: pem.ParsedCertificate) -> None:
    meta = {k: v for k, v in (cert.meta or {}).items() if k not in SERVER_META_KEYS}
    meta.update(parsed.as_meta())
    cert.domain_names = parsed.sans
    cert.expires_on = parsed.not_after
    cert.meta = meta
    cert.save()


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _temp_file(directory: Path, name: str, data: bytes, mode: int) -> str:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _store_files(cert: Certificate, parsed: pem.ParsedCertificate) -> None:
    """Write both PEMs to temporary files first, then move them into place."""
    _private_dir(cert.directory.parent)
    _private_dir(cert.directory)
    written: list[str] = []
    try:
        key_tmp = _temp_file(cert.directory, "privkey.pem", parsed.key_pem, 0o600)
        written.append(key_tmp)
        chain_tmp = _temp_file(cert.directory, "fullchain.pem", parsed.fullchain_pem, 0o644)
        written.append(chain_tmp)
        os.replace(key_tmp, cert.key_path)
        os.replace(chain_tmp, cert.fullchain_path)
    except BaseException:
        for tmp in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    dir_fd = os.open(cert.directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --------------------------------------------------------------------------- delete


def users_of(cert: Certificate) -> dict[str, list[str]]:
    """Objects that use `cert`, by kind: `{"proxy host": ["a.example", ...], ...}`.

    Every model with a foreign key to Certificate counts (proxy hosts today; redirection
    hosts, 404 hosts and streams when they exist).
    """
    found: dict[str, list[str]] = {}
    for relation in Certificate._meta.related_objects:
        if not relation.one_to_many or relation.related_model._meta.app_label == "certificates":
            continue
        objects = getattr(cert, relation.get_accessor_name()).all().order_by("pk")
        names = sorted(getattr(obj, "first_domain", "") or str(obj) for obj in objects)
        if names:
            found[str(relation.related_model._meta.verbose_name)] = names
    # the admin UI's HTTPS name (setting admin-domain, portway.nginx.admin_site) refers to
    # its certificate by id in the setting's meta, not by a foreign key
    from portway.nginx.models import Setting

    admin = Setting.objects.filter(id="admin-domain").first()
    if (
        admin
        and admin.value not in ("", "off")
        and (admin.meta or {}).get("certificate_id") == (cert.pk)
    ):
        found["admin UI domain"] = [admin.value]
    return found


def _in_use_message(found: dict[str, list[str]]) -> str:
    parts = []
    for kind, names in found.items():
        shown = ", ".join(names[:10])
        if len(names) > 10:
            shown += f" and {len(names) - 10} more"
        parts.append(f"{kind}(s) {shown}")
    return "certificate is used by " + "; ".join(parts)


def _revoke_best_effort(cert: Certificate) -> bool:
    """Revoke an ACME certificate before it is deleted; a failure only gets logged."""
    from portway.certificates import acme

    try:
        acme.revoke(cert.fullchain_path.read_bytes(), str((cert.acme or {}).get("email") or ""))
    except Exception as exc:  # best effort: deleting must work while the CA is unreachable
        log.warning("certificate %s: revocation failed, deleting anyway: %s", cert.pk, exc)
        return False
    log.info("certificate %s (%s) revoked", cert.pk, ", ".join(cert.domain_names))
    return True


def delete(user: Any, cert: Certificate) -> None:
    """Delete a certificate and its files; an ACME certificate is revoked first (best
    effort: deletion goes ahead when the CA cannot be reached).

    Raises:
        PermissionDenied, NotFound: the user may not manage / see this certificate.
        Conflict (409): hosts still use it: "certificate is used by proxy host(s) a.example,
            b.example".
    """
    _require(user, "manage")
    _check_visible(user, cert)
    found = users_of(cert)
    if found:
        raise Conflict(_in_use_message(found))
    from portway.certificates import issuance

    if issuance.is_running(cert):
        raise Conflict(
            f"certificate {cert.pk} is being issued or renewed right now; delete it when the "
            "job has finished"
        )
    if cert.provider == "letsencrypt" and cert.has_files:
        _revoke_best_effort(cert)
    directory = cert.directory  # before delete() clears the pk
    try:
        with transaction.atomic():
            audit(user, cert, "deleted")
            cert.delete()
    except (ProtectedError, IntegrityError) as exc:  # a host took it since the check
        found = users_of(cert)
        raise Conflict(_in_use_message(found) if found else "certificate is in use") from exc
    shutil.rmtree(directory, ignore_errors=True)
    _request_apply()


# --------------------------------------------------------------------------- audit


def audit(user: Any, cert: Certificate, action: str, before: dict | None = None) -> None:
    """Record `action` on `cert` in the audit log with the fields it changed (created: all
    as "after", deleted: all as "before"; `before`: a `snapshot` taken before the change).
    The ACME bookkeeping is left out; DNS credentials never appear (core.audit)."""
    fields = snapshot(cert, skip=frozenset({"acme", "owner_id"}))
    if action == "created":
        before, after = {}, fields
    elif action == "deleted":
        before, after = fields, {}
    else:
        after = fields if before is not None else None
    record(
        user if getattr(user, "pk", None) else None,
        "certificate",
        cert.pk,
        action,
        before=before,
        after=after,
        nice_name=cert.nice_name,
        provider=cert.provider,
        domain_names=list(cert.domain_names or []),
    )


# --------------------------------------------------------------------------- nginx


def _request_apply() -> None:
    """Ask the nginx engine to regenerate and reload, if the engine exists yet."""
    try:
        from portway.nginx.engine import request_apply
    except ImportError:
        request_apply = None
    if request_apply is not None:
        request_apply()
