"""UI pages for installation settings: what nginx answers for unknown host names."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portway.core.errors import FieldError, PortwayError
from portway.nginx import services
from portway.web.decorators import page
from portway.web.forms import FormErrors
from portway.web.setting_form import setting_form

CHOICES = [
    ("congratulations", "Congratulations page", "Portway's welcome page: shows that nginx works."),
    ("404", "404 Not Found", "Answer every unknown host name with a 404 page."),
    ("444", "Drop the connection (444)", "Close the connection without any answer."),
    ("redirect", "Redirect", "Send visitors to another address."),
    ("html", "Custom page", "Serve your own HTML."),
]
VALUES = {value for value, _, _ in CHOICES}


@page
def settings_index(request: HttpRequest) -> HttpResponse:
    return redirect("nginx:default_site")


def _default_site_errors(exc: PortwayError) -> FormErrors:
    """The service may name meta fields "meta/redirect" or just "redirect"."""
    errors = FormErrors.of(exc)
    for short in ("redirect", "html"):
        for reason in errors.fields.pop(short, []):
            errors.add(f"meta/{short}", reason)
    return errors


def _save_default_site(user, values: dict[str, Any]) -> None:  # noqa: ANN001
    if values["value"] not in VALUES:
        raise FieldError("value", "choose one of the options")
    if values["value"] == "redirect" and not values["redirect"]:
        raise FieldError("meta/redirect", "enter the address to redirect to")
    new_meta = {}
    if values["value"] == "redirect":
        new_meta = {"redirect": values["redirect"]}
    elif values["value"] == "html":
        new_meta = {"html": values["html"]}
    services.set_default_site(user, values["value"], new_meta)


@page
def default_site(request: HttpRequest) -> HttpResponse:
    setting = services.get_default_site()
    meta = setting.meta if isinstance(setting.meta, dict) else {}
    return setting_form(
        request,
        "nginx/default_site.html",
        values={
            "value": setting.value,
            "redirect": meta.get("redirect", ""),
            "html": meta.get("html", ""),
        },
        submitted=lambda post: {
            "value": post.get("value", ""),
            "redirect": post.get("redirect", "").strip(),
            "html": post.get("html", ""),
        },
        save=lambda values: _save_default_site(request.user, values),
        saved="Default site saved; nginx is being reloaded.",
        url_name="nginx:default_site",
        claimed=["value", "meta"],
        errors_of=_default_site_errors,
        context=lambda: {"choices": CHOICES},
    )


AUDIT_PAGE_SIZE = 50


@page
def audit_log(request: HttpRequest) -> HttpResponse:
    """Every change, login and failed login: who, when, from where, what changed.

    Filters (query parameters, the API's names): user_id, object_type, action; paged.
    """
    from django.core.paginator import Paginator

    from portway.accounts.models import User
    from portway.web.views import describe

    filters = {k: request.GET.get(k, "") for k in ("user_id", "object_type", "action")}
    try:
        entries = services.audit_entries(request.user, **filters)
    except PortwayError as exc:
        status = 403 if exc.status == 403 else 400
        return render(
            request,
            "accounts/denied.html",
            {"title": "Audit log", "reason": exc.message},
            status=status,
        )
    paginator = Paginator(entries, AUDIT_PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    rows = [{"entry": e, "text": describe(e), "changes": _changes(e)} for e in page_obj]
    kept = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(
        request,
        "nginx/audit_log.html",
        {
            "title": "Audit log",
            "rows": rows,
            "page_obj": page_obj,
            "filters": filters,
            "kept": kept,
            "users": User.objects.order_by("name", "id"),
            "object_types": services.AUDIT_OBJECT_TYPES,
            "actions": services.AUDIT_ACTIONS,
        },
    )


def _changes(entry) -> list[dict]:  # noqa: ANN001
    meta = entry.meta if isinstance(entry.meta, dict) else {}
    found = meta.get("changes")
    if not isinstance(found, dict):
        return []
    return [
        {"field": field, "before": _shown(pair.get("before")), "after": _shown(pair.get("after"))}
        for field, pair in found.items()
        if isinstance(pair, dict)
    ]


@page
def admin_domain(request: HttpRequest) -> HttpResponse:
    """The admin UI on a domain over HTTPS (portway.nginx.admin_site); admins change it."""
    from portway.certificates.models import Certificate
    from portway.nginx import admin_site

    def save(values: dict[str, Any]) -> None:
        meta: dict = {}
        if values["value"]:
            if not values["certificate_id"].isdigit():
                raise FieldError("meta/certificate_id", "choose the certificate to serve it with")
            meta = {"certificate_id": int(values["certificate_id"])}
        admin_site.set_admin_domain(request.user, values["value"], meta)

    def context() -> dict[str, Any]:
        config = admin_site.settings.PORTWAY
        return {
            "certificates": [
                c for c in Certificate.objects.order_by("nice_name", "id") if c.has_files
            ],
            "admin_port": config.admin_port,
            "admin_bind": config.admin_bind,
            "https_port": config.public_https_port,
        }

    setting = admin_site.get_setting()
    return setting_form(
        request,
        "nginx/admin_domain.html",
        values={
            "value": "" if setting.value == admin_site.OFF else setting.value,
            "certificate_id": str((setting.meta or {}).get("certificate_id") or ""),
        },
        submitted=lambda post: {
            "value": post.get("value", "").strip(),
            "certificate_id": post.get("certificate_id", "").strip(),
        },
        save=save,
        saved="Admin UI domain saved; nginx is being reloaded.",
        url_name="nginx:admin_domain",
        claimed=["value", "meta/certificate_id"],
        context=context,
    )


def _shown(value: object) -> object:
    """Lists and objects as JSON text (the page shows them as the API returns them)."""
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return value
