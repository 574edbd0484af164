"""UI pages for proxy hosts: the list (search, enable/disable/delete) and the form."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portway.core import fields
from portway.core.errors import NotFound, PermissionDenied, PortwayError
from portway.core.validation import given
from portway.hosts import services
from portway.web import queries
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors, domain_lines, explain_domain_lines

BOOLEAN_FIELDS = (
    "caching_enabled",
    "block_exploits",
    "allow_websocket_upgrade",
    "ssl_forced",
    "http2_support",
    "hsts_enabled",
    "hsts_subdomains",
    "trust_forwarded_proto",
    "cloudflare_only",
)
LOCATION_FIELDS = (
    "path",
    "forward_scheme",
    "forward_host",
    "forward_port",
    "forward_path",
    "advanced_config",
)
# Which tab shows which field, so a tab with an error gets a red dot and opens first.
TABS = {
    "details": (
        "domain_names",
        "forward_scheme",
        "forward_host",
        "forward_port",
        "caching_enabled",
        "block_exploits",
        "allow_websocket_upgrade",
        "access_list_id",
    ),
    "locations": ("locations",),
    "ssl": (
        "certificate_id",
        "ssl_forced",
        "http2_support",
        "hsts_enabled",
        "hsts_subdomains",
        "trust_forwarded_proto",
        "cloudflare_only",
    ),
    "advanced": ("advanced_config",),
}
# How the form calls the fields a message may point to ("put the port in the Port field").
FIELD_LABELS = {
    "forward_scheme": "Scheme",
    "forward_host": "Forward hostname / IP",
    "forward_port": "Port",
    "forward_path": "Forward path",
}
_LOCATION_KEY = re.compile(r"^locations-([0-9]{1,4})-(\w+)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


# --- the list -------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    query = request.GET.get("q", request.POST.get("q", "")).strip()
    try:
        hosts = list(services.list_proxy_hosts(request.user, query or None))
        denied = ""
    except PermissionDenied as exc:
        hosts, denied = [], exc.message
    return {
        "title": "Proxy Hosts",
        "hosts": hosts,
        "query": query,
        "denied": denied,
        "can_manage": queries.can_manage(request.user, "proxy_hosts"),
    }


def _table(request: HttpRequest) -> HttpResponse:
    """The table alone, plus the flash messages swapped out of band (HTMX answers)."""
    return render(request, "hosts/_table.html", {**_list_context(request), "oob_messages": True})


@page
def host_list(request: HttpRequest) -> HttpResponse:
    if request.htmx and not request.htmx.boosted and request.htmx.target == "proxy-hosts-table":
        return _table(request)
    return render(request, "hosts/list.html", _list_context(request))


def _action(request: HttpRequest, host_id: int, verb: str) -> HttpResponse:
    actions = {
        "enable": services.enable_proxy_host,
        "disable": services.disable_proxy_host,
        "delete": services.delete_proxy_host,
    }
    try:
        name = str(services.get_proxy_host(request.user, host_id))
        result = actions[verb](request.user, host_id)
    except NotFound:
        messages.error(request, f"Proxy host {host_id} no longer exists.")
    except PortwayError as exc:
        messages.error(request, f"Could not {verb} {host_id}: {exc.message}")
    else:
        past = {"enable": "enabled", "disable": "disabled", "delete": "deleted"}[verb]
        if verb == "enable" and result is not None and not result.nginx_online:
            messages.warning(
                request, f"{name} was enabled, but nginx rejected it: {result.nginx_err or ''}"
            )
        else:
            messages.success(request, f"Proxy host {name} {past}.")
    if request.htmx:
        return _table(request)
    query = request.POST.get("q", "").strip()
    return redirect(f"/proxy-hosts?q={query}" if query else "/proxy-hosts")


@page
@require_POST
def host_enable(request: HttpRequest, host_id: int) -> HttpResponse:
    return _action(request, host_id, "enable")


@page
@require_POST
def host_disable(request: HttpRequest, host_id: int) -> HttpResponse:
    return _action(request, host_id, "disable")


@page
@require_POST
def host_delete(request: HttpRequest, host_id: int) -> HttpResponse:
    return _action(request, host_id, "delete")


# --- the form -------------------------------------------------------------------------------


def split_domains(text: str) -> list[str]:
    """Names from the textarea: one per line; commas and spaces also separate."""
    return [name for _, name in domain_lines(text)]


def _port(raw: str, field: str, errors: FormErrors) -> int | str:
    """The port as an int when it is one from 1 to 65535; otherwise a friendly message in
    `errors` and the raw text, which the service rejects too (so it never saves it)."""
    raw = raw.strip()
    if not raw:
        errors.add(field, "enter the port the service listens on (1-65535)")
        return raw
    if not _PORT.match(raw) or not 1 <= int(raw) <= 65535:
        errors.add(field, f"must be a port number from 1 to 65535, not {given(raw)}")
        return int(raw) if _PORT.match(raw) else raw
    return int(raw)


class HostForm:
    """The proxy host form: raw values for re-display, NPM wire data for the service."""

    def __init__(self, values: dict[str, Any], locations: list[dict[str, Any]]) -> None:
        self.values = values
        self.locations = locations

    @classmethod
    def initial(cls) -> HostForm:
        values: dict[str, Any] = {
            "domain_names": "",
            "forward_scheme": "http",
            "forward_host": "",
            "forward_port": "",
            "access_list_id": "0",
            "certificate_id": "0",
            "advanced_config": "",
        }
        values.update(dict.fromkeys(BOOLEAN_FIELDS, False))
        values["block_exploits"] = True
        return cls(values, [])

    @classmethod
    def from_host(cls, host) -> HostForm:  # noqa: ANN001
        values: dict[str, Any] = {
            "domain_names": "\n".join(host.unicode_names),  # saved as punycode again
            "forward_scheme": host.forward_scheme,
            "forward_host": host.forward_host,
            "forward_port": str(host.forward_port),
            "access_list_id": str(host.access_list_id),
            "certificate_id": str(host.certificate_id or 0),
            "advanced_config": host.advanced_config or "",
        }
        for name in BOOLEAN_FIELDS:
            values[name] = bool(getattr(host, name))
        locations = [
            {field: str(loc.get(field) or "") for field in LOCATION_FIELDS}
            for loc in host.locations or []
        ]
        for loc in locations:
            loc["forward_scheme"] = loc["forward_scheme"] or "http"
        return cls(values, locations)

    @classmethod
    def from_post(cls, post) -> HostForm:  # noqa: ANN001
        values: dict[str, Any] = {
            "domain_names": post.get("domain_names", "").strip(),
            "forward_scheme": post.get("forward_scheme", "http"),
            "forward_host": post.get("forward_host", "").strip(),
            "forward_port": post.get("forward_port", "").strip(),
            "access_list_id": post.get("access_list_id", "0"),
            "certificate_id": post.get("certificate_id", "0"),
            "advanced_config": post.get("advanced_config", ""),
        }
        for name in BOOLEAN_FIELDS:
            values[name] = post.get(name) in ("on", "1", "true")
        rows: dict[int, dict[str, str]] = {}
        for key in post:
            match = _LOCATION_KEY.match(key)
            if match and match.group(2) in LOCATION_FIELDS:
                rows.setdefault(int(match.group(1)), {})[match.group(2)] = post.get(key, "")
        locations = []
        for index in sorted(rows):
            row = {field: rows[index].get(field, "") for field in LOCATION_FIELDS}
            row["forward_scheme"] = row["forward_scheme"] or "http"
            # A row left completely empty was added by mistake: drop it silently.
            if any(row[f].strip() for f in ("path", "forward_host", "forward_port")):
                locations.append(row)
        return cls(values, locations)

    def to_data(self, *, is_admin: bool) -> tuple[dict[str, Any], FormErrors]:
        """The service's `data` dict, and friendlier messages for what is already wrong.

        Invalid values stay in `data` as typed so the service rejects them along with
        everything else it finds; the form then shows one message per field.
        """
        errors = FormErrors()
        v = self.values
        data: dict[str, Any] = {
            "domain_names": split_domains(v["domain_names"]),
            "forward_scheme": v["forward_scheme"],
            "forward_host": v["forward_host"],
        }
        data["forward_port"] = _port(v["forward_port"], "forward_port", errors)
        for name in ("access_list_id", "certificate_id"):
            raw = str(v[name]).strip() or "0"
            # ASCII only: "¹".isdigit() is true but int() refuses it
            is_number = raw.isascii() and raw.isdigit()
            data[name] = int(raw) if is_number else raw
            if not is_number:
                errors.add(name, "choose one of the listed options")
        for name in BOOLEAN_FIELDS:
            data[name] = bool(v[name])
        if is_admin:
            data["advanced_config"] = v["advanced_config"]
        locations = []
        for index, loc in enumerate(self.locations):
            item: dict[str, Any] = {
                "path": loc["path"].strip(),
                "forward_scheme": loc["forward_scheme"],
                "forward_host": loc["forward_host"].strip(),
                "forward_path": loc["forward_path"].strip(),
                "advanced_config": loc["advanced_config"],
            }
            item["forward_port"] = _port(
                loc["forward_port"], f"locations/{index}/forward_port", errors
            )
            locations.append(item)
        data["locations"] = locations
        return data, errors


def _certificate_choices(user, current_id: str) -> list[dict[str, Any]]:  # noqa: ANN001
    try:
        certs = list(queries.certificates(user))
    except PermissionDenied:
        certs = []
    choices = []
    for cert in certs:
        choices.append(
            {
                "id": str(cert.pk),
                "label": str(cert),
                "domains": ", ".join(fields.unicode_name(n) for n in cert.domain_names or []),
                "usable": cert.has_files,
                "expires_on": cert.expires_on,
            }
        )
    if current_id not in ("", "0") and all(c["id"] != current_id for c in choices):
        choices.append(
            {
                "id": current_id,
                "label": f"Certificate {current_id}",
                "domains": "",
                "usable": True,
                "expires_on": None,
            }
        )
    return choices


def certificate_choices(user, current_id: str) -> list[dict[str, Any]]:  # noqa: ANN001
    """The certificates a host form of any kind offers `user`: dicts with id (str), label,
    domains (Unicode, comma-separated), usable (files uploaded) and expires_on; the
    current one (`current_id`) is listed even when the user may not see it."""
    return _certificate_choices(user, current_id)


def _access_list_choices(user, current: str) -> list[dict[str, str]]:  # noqa: ANN001
    """(id, label) of the access lists the user may pick; the current one always listed."""
    from portway.access.services import list_access_lists

    try:
        choices = [{"id": str(a.pk), "label": a.name} for a in list_access_lists(user)]
    except PermissionDenied:
        choices = []
    if current not in ("", "0") and all(c["id"] != current for c in choices):
        choices.append({"id": current, "label": f"Access list {current}"})
    return choices


def _form_page(
    request: HttpRequest,
    form: HostForm,
    *,
    host=None,  # noqa: ANN001
    errors: FormErrors | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or FormErrors()
    tab_errors = {tab: errors.any_under(fields) for tab, fields in TABS.items()}
    active_tab = next((tab for tab, bad in tab_errors.items() if bad), "details")
    claimed = [field for fields in TABS.values() for field in fields]
    context = {
        "title": f"Edit {host}" if host else "New proxy host",
        "host": host,
        "form": form.values,
        "locations": form.locations,
        "errors": errors,
        "tab_errors": tab_errors,
        "active_tab": request.POST.get("active_tab") if not errors else active_tab,
        "unclaimed": errors.unclaimed(claimed),
        "certificates": _certificate_choices(request.user, str(form.values["certificate_id"])),
        "access_lists": _access_list_choices(request.user, str(form.values["access_list_id"])),
        "is_admin": request.user.is_admin,
        "boolean_fields": BOOLEAN_FIELDS,
    }
    if context["active_tab"] not in TABS:
        context["active_tab"] = "details"
    return render(request, "hosts/form.html", context, status=status)


def _saved(request: HttpRequest, host, verb: str) -> HttpResponse:  # noqa: ANN001
    if host.enabled and not host.nginx_online:
        messages.warning(
            request,
            f"Proxy host {host} {verb}, but nginx rejected its configuration: "
            f"{host.nginx_err or 'see the status popover'}",
        )
    else:
        messages.success(request, f"Proxy host {host} {verb}.")
    for warning in host.certificate_warnings:
        messages.warning(request, warning)
    return redirect("hosts:list")


def _submit(request: HttpRequest, host=None) -> HttpResponse:  # noqa: ANN001
    form = HostForm.from_post(request.POST)
    data, local = form.to_data(is_admin=request.user.is_admin)
    try:
        # With `local` errors, `data` holds a value the service's schema refuses, so
        # nothing is saved and its answer lists every other problem as well.
        if host is None:
            saved = services.create_proxy_host(request.user, data)
        else:
            saved = services.update_proxy_host(request.user, host.pk, data)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PortwayError as exc:
        errors = FormErrors.of(exc)
        for field, reasons in local.fields.items():
            errors.fields[field] = reasons
        explain_domain_lines(errors, form.values["domain_names"])
        errors.relabel(FIELD_LABELS)
    else:
        return _saved(request, saved, "created" if host is None else "saved")
    return _form_page(request, form, host=host, errors=errors, status=400)


@page
def host_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _submit(request)
    return _form_page(request, HostForm.initial())


@page
def host_edit(request: HttpRequest, host_id: int) -> HttpResponse:
    host = object_or_leave(request, lambda: services.get_proxy_host(request.user, host_id))
    if isinstance(host, HttpResponse):
        return host
    if request.method == "POST":
        return _submit(request, host)
    return _form_page(request, HostForm.from_host(host), host=host)
