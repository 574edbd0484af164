"""UI page of the proxy host form (its tabs, custom locations and proxy options).

The proxy host list and its enable/disable/delete actions are the generic host-kind pages
(portway.hosts.site_views, with the other kinds); only the form is the proxy host's own.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portway.core.validation import given
from portway.hosts import services
from portway.hosts.site_views import (
    FIELD_LABELS,
    PROXY,
    access_list_choices,
    certificate_choices,
    report_saved,
    split_domains,
)
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors, save_form

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
_LOCATION_KEY = re.compile(r"^locations-([0-9]{1,4})-(\w+)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


# --- the form -------------------------------------------------------------------------------


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
        "certificates": certificate_choices(request.user, str(form.values["certificate_id"])),
        "access_lists": access_list_choices(request.user, str(form.values["access_list_id"])),
        "is_admin": request.user.is_admin,
        "boolean_fields": BOOLEAN_FIELDS,
    }
    if context["active_tab"] not in TABS:
        context["active_tab"] = "details"
    return render(request, "hosts/form.html", context, status=status)


def _submit(request: HttpRequest, host=None) -> HttpResponse:  # noqa: ANN001
    form = HostForm.from_post(request.POST)
    data, local = form.to_data(is_admin=request.user.is_admin)
    # With `local` errors, `data` holds a value the service's schema refuses, so nothing
    # is saved and its answer lists every other problem as well.
    saved, errors = save_form(
        lambda: (
            services.create_proxy_host(request.user, data)
            if host is None
            else services.update_proxy_host(request.user, host.pk, data)
        ),
        labels=FIELD_LABELS,
        domain_text=form.values["domain_names"],
        local=local,
    )
    if errors is not None:
        return _form_page(request, form, host=host, errors=errors, status=400)
    report_saved(request, PROXY, saved, "created" if host is None else "saved")
    return redirect(PROXY.url("list"))


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
