"""UI pages for certificates: the list, custom certificate upload (with a Validate step),
Let's Encrypt requests with a detail page showing live progress (HTMX polling), renew,
download and delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_POST

from portway.certificates import services
from portway.core.errors import NotFound, PermissionDenied, PortwayError
from portway.web import queries
from portway.web.decorators import page
from portway.web.forms import FormErrors, domain_lines, explain_domain_lines

MAX_UPLOAD_BYTES = 1024 * 1024  # a PEM file is a few kilobytes; a chain a few more
UPLOAD_FIELDS = {
    "certificate": "Certificate",
    "certificate_key": "Private key",
    "intermediate_certificate": "Intermediate certificate",
}


# --- the list -------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    try:
        certs = list(services.list_certificates(request.user).prefetch_related("proxy_hosts"))
        denied = ""
    except PermissionDenied as exc:
        certs, denied = [], exc.message
    return {
        "title": "Certificates",
        "certificates": certs,
        "denied": denied,
        "can_manage": queries.can_manage(request.user, "certificates"),
    }


@page
def certificate_list(request: HttpRequest) -> HttpResponse:
    return render(request, "certificates/list.html", _list_context(request))


@page
@require_POST
def certificate_delete(request: HttpRequest, cert_id: int) -> HttpResponse:
    try:
        cert = services.get_certificate(request.user, cert_id)
        name = str(cert)
        services.delete(request.user, cert)
    except NotFound:
        messages.error(request, f"Certificate {cert_id} no longer exists.")
    except PortwayError as exc:  # Conflict (409): still used by hosts
        messages.error(request, f"Could not delete the certificate: {exc.message}.")
    else:
        messages.success(request, f"Certificate {name} deleted.")
    if request.htmx:
        return render(
            request, "certificates/_table.html", {**_list_context(request), "oob_messages": True}
        )
    return redirect("certificates:list")


# --- upload ---------------------------------------------------------------------------------


def _read_uploads(request: HttpRequest, errors: FormErrors) -> dict[str, bytes | None]:
    """Each PEM's bytes (None when not given), from its file or from its pasted text.

    A Cloudflare Origin certificate and its key are shown as text to copy, so each field
    takes either; a chosen file wins over text kept from an earlier attempt. Size errors
    and missing parts go into `errors`.
    """
    files: dict[str, bytes | None] = {}
    for field in UPLOAD_FIELDS:
        upload = request.FILES.get(field)
        text = request.POST.get(f"{field}_text", "")
        if upload is not None and upload.size:
            data = upload.read(MAX_UPLOAD_BYTES + 1)
        elif text.strip():
            data = text.strip().encode("utf-8") + b"\n"
        else:
            data = None
        if data is not None and len(data) > MAX_UPLOAD_BYTES:
            errors.add(field, "is larger than 1 MiB; a PEM certificate or key is a few KiB")
            data = None
        files[field] = data
    if files["certificate"] is None and not errors.get("certificate"):
        errors.add(
            "certificate", "choose the certificate file (PEM, e.g. cert.pem) or paste its text"
        )
    if files["certificate_key"] is None and not errors.get("certificate_key"):
        errors.add(
            "certificate_key",
            "choose the private key file (PEM, e.g. privkey.pem) or paste its text",
        )
    return files


def _entered_texts(files: dict[str, bytes | None]) -> dict[str, str]:
    """What was given, as text for the form's text areas after a rejected save.

    A browser cannot refill a file input, so a file's contents come back as pasted text
    (binary files, which are refused anyway, do not).
    """
    texts = {}
    for field, data in files.items():
        try:
            texts[field] = data.decode("utf-8") if data else ""
        except UnicodeDecodeError:
            texts[field] = ""
    return texts


def _date(timestamp: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _summary(result: dict) -> dict[str, Any]:
    """validate()'s NPM-shaped answer as template-friendly values."""

    def one(info: Any) -> dict[str, Any] | None:
        if not isinstance(info, dict):
            return None
        dates = info.get("dates") or {}
        return {
            "cn": info.get("cn", ""),
            "issuer": info.get("issuer", ""),
            "valid_from": _date(dates.get("from")),
            "valid_to": _date(dates.get("to")),
        }

    return {
        "certificate": one(result.get("certificate")),
        "intermediate": one(result.get("intermediate_certificate")),
        "key_ok": bool(result.get("certificate_key")),
    }


def _validate(files: dict[str, bytes | None], errors: FormErrors) -> dict[str, Any] | None:
    if errors:
        return None
    try:
        result = services.validate(
            files["certificate"], files["certificate_key"], files["intermediate_certificate"]
        )
    except PortwayError as exc:
        errors.absorb(exc)
        return None
    return _summary(result)


def _form(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    errors = context.get("errors") or FormErrors()
    base = {
        "title": "Add custom certificate",
        "nice_name": "",
        "errors": errors,
        "summary": None,
        "texts": dict.fromkeys(UPLOAD_FIELDS, ""),
        "unclaimed": errors.unclaimed(["nice_name", *UPLOAD_FIELDS]),
    }
    base.update(context)
    template = (
        "certificates/_validation.html" if context.get("partial") else "certificates/form.html"
    )
    response = render(request, template, base, status=status)
    # the page may carry the private key the user pasted: no cache keeps a copy
    patch_cache_control(response, no_store=True)
    return response


def _save(request: HttpRequest, nice_name: str, files: dict, summary: dict):  # noqa: ANN202
    name = nice_name or (summary["certificate"] or {}).get("cn") or "Custom certificate"
    cert = services.create_custom(request.user, name)
    try:
        services.upload(
            request.user,
            cert,
            files["certificate"],
            files["certificate_key"],
            files["intermediate_certificate"],
        )
    except PortwayError:
        services.delete(request.user, cert)  # nothing was stored; do not leave an empty one
        raise
    return cert


@page
def certificate_create(request: HttpRequest) -> HttpResponse:
    """Upload a custom certificate. action=validate only checks the files."""
    if request.method != "POST":
        return _form(request, {})
    nice_name = request.POST.get("nice_name", "").strip()
    errors = FormErrors()
    files = _read_uploads(request, errors)
    summary = _validate(files, errors)
    if request.POST.get("action") == "validate":
        partial = bool(request.htmx)
        return _form(
            request,
            {
                "nice_name": nice_name,
                "errors": errors,
                "summary": summary,
                "partial": partial,
                "texts": _entered_texts(files),
            },
            status=200 if partial or not errors else 400,
        )
    if not errors and summary is not None:
        try:
            cert = _save(request, nice_name, files, summary)
        except PortwayError as exc:
            errors.absorb(exc)
        else:
            names = ", ".join(cert.domain_names) or "no names"
            messages.success(request, f"Certificate {cert} added; it covers {names}.")
            return redirect("certificates:list")
    return _form(
        request,
        {"nice_name": nice_name, "errors": errors, "texts": _entered_texts(files)},
        status=400,
    )


# --- Let's Encrypt (ACME) -------------------------------------------------------------------

ACME_FIELDS = (
    "domain_names",
    "letsencrypt_email",
    "dns_provider",
    "dns_provider_credentials",
    "propagation_seconds",
    "key_type",
)


def _split_names(raw: str) -> list[str]:
    return [name for _, name in domain_lines(raw)]


def _acme_form(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    from portway.certificates import dns_providers

    errors = context.get("errors") or FormErrors()
    values = {
        "domain_names": "",
        "letsencrypt_email": getattr(request.user, "email", ""),
        "dns_challenge": False,
        "dns_provider": "",
        "dns_provider_credentials": "",
        "propagation_seconds": "",
        "key_type": "ecdsa",
    }
    values.update(context.get("values") or {})
    return render(
        request,
        "certificates/acme_form.html",
        {
            "title": "Request a Let's Encrypt certificate",
            "values": values,
            "errors": errors,
            "providers": dns_providers.PROVIDERS.values(),
            "unclaimed": _acme_unclaimed(errors),
        },
        status=status,
    )


def _acme_unclaimed(errors: FormErrors) -> list[str]:
    # the service names meta fields meta/<key>; the form shows them beside their inputs
    claimed = ["domain_names", *(f"meta/{name}" for name in ACME_FIELDS[1:])]
    return errors.unclaimed(claimed)


@page
def certificate_request(request: HttpRequest) -> HttpResponse:
    """Request a Let's Encrypt certificate; then watch it on its own page."""
    if request.method != "POST":
        return _acme_form(request, {})
    post = request.POST
    values = {name: post.get(name, "").strip() for name in ACME_FIELDS}
    values["dns_provider_credentials"] = post.get("dns_provider_credentials", "")
    values["dns_challenge"] = post.get("dns_challenge") in ("on", "true", "1")
    meta: dict[str, Any] = {
        "dns_challenge": values["dns_challenge"],
        "key_type": values["key_type"] or "ecdsa",
    }
    if values["letsencrypt_email"]:
        meta["letsencrypt_email"] = values["letsencrypt_email"]
    if values["dns_challenge"]:
        meta["dns_provider"] = values["dns_provider"]
        meta["dns_provider_credentials"] = values["dns_provider_credentials"]
        if values["propagation_seconds"]:
            try:
                meta["propagation_seconds"] = int(values["propagation_seconds"])
            except ValueError:
                meta["propagation_seconds"] = values["propagation_seconds"]
    errors = FormErrors()
    try:
        cert = services.create_letsencrypt(
            request.user, _split_names(values["domain_names"]), meta=meta
        )
    except PortwayError as exc:
        errors.absorb(exc)
        explain_domain_lines(errors, values["domain_names"])
        values["dns_provider_credentials"] = ""  # never sent back to the browser
        return _acme_form(request, {"values": values, "errors": errors}, status=400)
    messages.success(request, f"Requesting a certificate for {', '.join(cert.domain_names)}.")
    return redirect("certificates:detail", cert_id=cert.pk)


@page
def dns_template(request: HttpRequest) -> HttpResponse:
    """The credentials textarea prefilled with the chosen provider's template (HTMX)."""
    from portway.certificates import dns_providers

    provider = dns_providers.PROVIDERS.get(request.GET.get("dns_provider", ""))
    return render(
        request,
        "certificates/_dns_credentials.html",
        {
            "values": {"dns_provider_credentials": provider.credentials if provider else ""},
            "provider": provider,
            "errors": FormErrors(),
        },
    )


def _detail_context(request: HttpRequest, cert_id: int) -> dict[str, Any]:
    from portway.certificates import issuance, renewal

    cert = services.get_certificate(request.user, cert_id)
    state = cert.acme or {}
    status = state.get("status") or ("valid" if cert.has_files else "")
    return {
        "title": str(cert),
        "cert": cert,
        "state": state,
        "status": status,
        "running": status in issuance.IN_PROGRESS,
        "domains": list((state.get("domains") or {}).items()),
        "events": list(cert.events.order_by("-id")[:50]),
        "warnings": renewal.warnings(cert),
        "renew_after": renewal.renew_at(cert),
        "can_manage": queries.can_manage(request.user, "certificates"),
    }


@page
def certificate_detail(request: HttpRequest, cert_id: int) -> HttpResponse:
    try:
        context = _detail_context(request, cert_id)
    except NotFound:
        messages.error(request, f"Certificate {cert_id} no longer exists.")
        return redirect("certificates:list")
    return render(request, "certificates/detail.html", context)


@page
def certificate_progress(request: HttpRequest, cert_id: int) -> HttpResponse:
    """The live part of the detail page; it polls itself while a job runs (HTMX)."""
    try:
        context = _detail_context(request, cert_id)
    except NotFound:
        return HttpResponse(status=404)
    return render(request, "certificates/_progress.html", context)


@page
@require_POST
def certificate_renew(request: HttpRequest, cert_id: int) -> HttpResponse:
    try:
        cert = services.get_certificate(request.user, cert_id)
        services.renew(request.user, cert)
    except NotFound:
        messages.error(request, f"Certificate {cert_id} no longer exists.")
        return redirect("certificates:list")
    except PortwayError as exc:
        messages.error(request, f"Could not renew: {exc.message}.")
    else:
        messages.success(request, f"Renewing {cert}.")
    return redirect("certificates:detail", cert_id=cert_id)


@page
def certificate_download(request: HttpRequest, cert_id: int) -> HttpResponse:
    try:
        cert = services.get_certificate(request.user, cert_id)
        data = services.download(request.user, cert)
    except PortwayError as exc:
        messages.error(request, f"Could not download: {exc.message}.")
        return redirect("certificates:list")
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="certificate-{cert.pk}.zip"'
    return response
