"""UI pages of every host kind: the lists with their actions (proxy, redirection and 404
hosts, streams) and the forms of redirection and 404 hosts.

One set of views serves every kind (`SiteKindPage` says what differs: the model, URLs,
titles and the kind's own form fields); the proxy host's form, with its tabs and custom
locations, is its own (portway.hosts.views) and uses the helpers here; so is a stream's
(portway.hosts.stream_views: a stream has no names or HTTP options). Validation is the
services', shared with the API, so a form shows the same messages beside the fields they
name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portway.core import fields
from portway.core.errors import NotFound, PermissionDenied, PortwayError
from portway.hosts import services
from portway.hosts.models import DeadHost, HostBase, ProxyHost, RedirectionHost, Stream
from portway.web import queries
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors, domain_lines, number_or_text, save_form

SSL_FIELDS = ("ssl_forced", "http2_support", "hsts_enabled", "hsts_subdomains")
# How the forms call the fields a message may point to ("put the port in the Port field").
FIELD_LABELS = {
    "forward_scheme": "Scheme",
    "forward_host": "Forward hostname / IP",
    "forward_port": "Port",
    "forward_path": "Forward path",
}
REDIRECT_CODES = (
    (301, "301 Moved Permanently"),
    (302, "302 Found"),
    (303, "303 See Other"),
    (307, "307 Temporary Redirect"),
    (308, "308 Permanent Redirect"),
    (300, "300 Multiple Choices"),
    (304, "304 Not Modified"),
    (305, "305 Use Proxy"),
    (306, "306 (unused)"),
)


@dataclass(frozen=True)
class SiteKindPage:
    """What the pages of one host kind need to know about it."""

    model: type[HostBase]
    slug: str  # URL path and URL name prefix: "redirection-hosts"
    title: str  # "Redirection Hosts"
    description: str  # one line above the list
    text_fields: tuple[str, ...]  # the kind's own text inputs
    bool_fields: tuple[str, ...]  # the kind's own switches (besides SSL's)
    defaults: tuple[tuple[str, Any], ...]  # a new host's form values
    access_list: bool = False  # the kind takes an access list (proxy and redirection hosts)
    destination: str = "Destination"  # the heading of the list's second column
    icon: str = "world-www"  # Tabler icon of the empty list
    url_prefix: str = ""  # of the kind's URL names: "hosts:<prefix>list"
    templates: str = "hosts"  # where its list.html and _table.html are
    search_hint: str = "Search domain names…"
    logs: bool = True  # the kind has per-host nginx logs (a Logs page)

    @property
    def label(self) -> str:
        return self.model.LABEL

    @property
    def section(self) -> str:
        return services.SECTIONS[self.model.KIND]

    def url_name(self, name: str) -> str:
        """The URL name of one of the kind's pages ("list", "create", "edit", "enable"...)."""
        return f"hosts:{self.url_prefix}{name}"

    def url(self, name: str, *args: Any) -> str:
        return reverse(self.url_name(name), args=args)


PROXY = SiteKindPage(
    model=ProxyHost,
    slug="proxy-hosts",
    title="Proxy Hosts",
    description="Requests for these domain names are proxied to the destination.",
    text_fields=(),  # the proxy host's form is its own (portway.hosts.views)
    bool_fields=(),
    defaults=(),
    access_list=True,
)


REDIRECTION = SiteKindPage(
    model=RedirectionHost,
    slug="redirection-hosts",
    title="Redirection Hosts",
    description="Requests for these domain names are redirected to another address.",
    text_fields=("forward_scheme", "forward_domain_name", "forward_http_code"),
    bool_fields=("preserve_path", "block_exploits"),
    defaults=(
        ("forward_scheme", "auto"),
        ("forward_domain_name", ""),
        ("forward_http_code", "301"),
        ("preserve_path", True),
        ("block_exploits", True),
    ),
    access_list=True,
    destination="Redirects to",
    icon="arrow-forward-up",
    url_prefix="redirection_",
)
DEAD = SiteKindPage(
    model=DeadHost,
    slug="dead-hosts",
    title="404 Hosts",
    description="Requests for these domain names are answered 404 Not Found.",
    text_fields=(),
    bool_fields=(),  # NPM's 404 host has no "block common exploits"
    defaults=(),
    destination="Answer",
    icon="error-404",
    url_prefix="dead_",
)
STREAMS = SiteKindPage(
    model=Stream,  # type: ignore[arg-type]
    slug="streams",
    title="Streams",
    description="TCP and UDP ports forwarded to another machine, with optional TLS.",
    text_fields=("incoming_port", "forwarding_host", "forwarding_port"),
    bool_fields=("tcp_forwarding", "udp_forwarding"),
    defaults=(("tcp_forwarding", True),),
    templates="hosts/streams",
    search_hint="Search ports or hosts…",
    icon="arrows-exchange",
    url_prefix="stream_",
    logs=False,
)
LISTS = {page.model.KIND: page for page in (PROXY, REDIRECTION, DEAD, STREAMS)}
"""Every kind's list page (and its enable/disable/delete actions)."""
PAGES = {page.model.KIND: page for page in (REDIRECTION, DEAD)}
"""The kinds whose form is the generic one below (the proxy host's and a stream's are
their own)."""


# --- helpers the forms share ------------------------------------------------------------------


def split_domains(text: str) -> list[str]:
    """Names from the textarea: one per line; commas and spaces also separate."""
    return [name for _, name in domain_lines(text)]


def certificate_choices(user, current_id: str) -> list[dict[str, Any]]:  # noqa: ANN001
    """The certificates `user` may pick, for a form's select ({id, label, domains, usable,
    expires_on}); the host's current one is always listed."""
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


def access_list_choices(user, current: str) -> list[dict[str, str]]:  # noqa: ANN001
    """(id, label) of the access lists the user may pick; the current one always listed."""
    from portway.access.services import list_access_lists

    try:
        choices = [{"id": str(a.pk), "label": a.name} for a in list_access_lists(user)]
    except PermissionDenied:
        choices = []
    if current not in ("", "0") and all(c["id"] != current for c in choices):
        choices.append({"id": current, "label": f"Access list {current}"})
    return choices


def report_saved(request: HttpRequest, site: SiteKindPage, host: HostBase, verb: str) -> None:
    """The flash messages after a form saved `host` (`verb`: "created" or "saved"): nginx's
    verdict and the certificate's warnings."""
    if host.enabled and not host.nginx_online:
        messages.warning(
            request,
            f"{site.label.capitalize()} {host} {verb}, but nginx rejected its configuration: "
            f"{host.nginx_err or 'see the status popover'}",
        )
    else:
        messages.success(request, f"{site.label.capitalize()} {host} {verb}.")
    for warning in host.certificate_warnings:
        messages.warning(request, warning)


# --- the list -------------------------------------------------------------------------------


def _list_context(request: HttpRequest, kind: SiteKindPage) -> dict[str, Any]:
    query = request.GET.get("q", request.POST.get("q", "")).strip()
    try:
        hosts = list(services.list_hosts(kind.model, request.user, query or None))
        denied = ""
    except PermissionDenied as exc:
        hosts, denied = [], exc.message
    return {
        "title": kind.title,
        "kind": kind,
        "hosts": hosts,
        "query": query,
        "denied": denied,
        "can_manage": queries.can_manage(request.user, kind.section),
        "list_url": kind.url("list"),
        "create_url": kind.url("create"),
        "table_id": f"{kind.slug}-table",
        "url_edit": kind.url_name("edit"),
        "url_enable": kind.url_name("enable"),
        "url_disable": kind.url_name("disable"),
        "url_delete": kind.url_name("delete"),
        "url_logs": kind.url_name("logs"),
    }


def _table(request: HttpRequest, kind: SiteKindPage) -> HttpResponse:
    context = {**_list_context(request, kind), "oob_messages": True}
    return render(request, f"{kind.templates}/_table.html", context)


@page
def site_list(request: HttpRequest, kind: str) -> HttpResponse:
    """The list of one kind's hosts with search (HTMX swaps only the table)."""
    site = LISTS[kind]
    if request.htmx and not request.htmx.boosted and request.htmx.target == f"{site.slug}-table":
        return _table(request, site)
    return render(request, f"{site.templates}/list.html", _list_context(request, site))


@page
@require_POST
def site_action(request: HttpRequest, kind: str, host_id: int, verb: str) -> HttpResponse:
    """Enable, disable or delete one host (POST; the list asks for confirmation)."""
    site = LISTS[kind]
    try:
        name = str(services.get_host(site.model, request.user, host_id))
        if verb == "delete":
            result = None
            services.delete_host(site.model, request.user, host_id)
        else:
            result = services.set_host_enabled(site.model, request.user, host_id, verb == "enable")
    except NotFound:
        messages.error(request, f"{site.label.capitalize()} {host_id} no longer exists.")
    except PortwayError as exc:
        messages.error(request, f"Could not {verb} {host_id}: {exc.message}")
    else:
        past = {"enable": "enabled", "disable": "disabled", "delete": "deleted"}[verb]
        if verb == "enable" and result is not None and not result.nginx_online:
            messages.warning(
                request, f"{name} was enabled, but nginx rejected it: {result.nginx_err or ''}"
            )
        else:
            messages.success(request, f"{site.label.capitalize()} {name} {past}.")
    if request.htmx:
        return _table(request, site)
    query = request.POST.get("q", "").strip()
    return redirect(site.url("list") + (f"?q={query}" if query else ""))


# --- the form -------------------------------------------------------------------------------


def _initial(site: SiteKindPage) -> dict[str, Any]:
    values: dict[str, Any] = {"domain_names": "", "certificate_id": "0", "advanced_config": ""}
    values.update(dict.fromkeys(SSL_FIELDS, False))
    values.update(dict.fromkeys(site.bool_fields, False))
    values.update(site.defaults)
    if site.access_list:
        values["access_list_id"] = "0"
    return values


def _from_host(site: SiteKindPage, host: HostBase) -> dict[str, Any]:
    values: dict[str, Any] = {
        "domain_names": "\n".join(host.unicode_names),  # saved as punycode again
        "certificate_id": str(host.certificate_id or 0),
        "advanced_config": host.advanced_config or "",
    }
    for name in site.text_fields:
        values[name] = str(getattr(host, name))
    for name in SSL_FIELDS + site.bool_fields:
        values[name] = bool(getattr(host, name))
    if site.access_list:
        values["access_list_id"] = str(getattr(host, "access_list_id", 0) or 0)
    return values


def _from_post(site: SiteKindPage, post) -> dict[str, Any]:  # noqa: ANN001 - a QueryDict
    values: dict[str, Any] = {
        "domain_names": post.get("domain_names", "").strip(),
        "certificate_id": post.get("certificate_id", "0"),
        "advanced_config": post.get("advanced_config", ""),
    }
    for name in site.text_fields:
        values[name] = post.get(name, "").strip()
    for name in SSL_FIELDS + site.bool_fields:
        values[name] = post.get(name) in ("on", "1", "true")
    if site.access_list:
        values["access_list_id"] = post.get("access_list_id", "0")
    return values


def _to_data(site: SiteKindPage, values: dict[str, Any], *, is_admin: bool) -> dict[str, Any]:
    """The service's NPM wire `data`; values stay as typed so the service names the
    field of anything wrong (one set of rules for the API and the form)."""
    data: dict[str, Any] = {"domain_names": split_domains(values["domain_names"])}
    for name in ("certificate_id", "access_list_id") if site.access_list else ("certificate_id",):
        data[name] = number_or_text(str(values[name]).strip() or "0")
    for name in site.text_fields:
        data[name] = values[name]
    for name in SSL_FIELDS + site.bool_fields:
        data[name] = bool(values[name])
    if is_admin:
        data["advanced_config"] = values["advanced_config"]
    return data


def _form_page(
    request: HttpRequest,
    site: SiteKindPage,
    values: dict[str, Any],
    *,
    host: HostBase | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or FormErrors()
    claimed = ["domain_names", "certificate_id", "advanced_config", *SSL_FIELDS]
    claimed += [*site.text_fields, *site.bool_fields]
    if site.access_list:
        claimed.append("access_list_id")
    context = {
        "title": f"Edit {host}" if host else f"New {site.label}",
        "kind": site,
        "host": host,
        "form": values,
        "errors": errors,
        "unclaimed": errors.unclaimed(claimed),
        "certificates": certificate_choices(request.user, str(values["certificate_id"])),
        "access_lists": (
            access_list_choices(request.user, str(values["access_list_id"]))
            if site.access_list
            else []
        ),
        "is_admin": request.user.is_admin,
        "codes": [(str(code), text) for code, text in REDIRECT_CODES],
        "list_url": site.url("list"),
        "action_url": site.url("edit", host.pk) if host else site.url("create"),
        "logs_url": site.url("logs", host.pk) if host else "",
    }
    return render(request, "hosts/sites/form.html", context, status=status)


def _submit(request: HttpRequest, site: SiteKindPage, host: HostBase | None) -> HttpResponse:
    values = _from_post(site, request.POST)
    data = _to_data(site, values, is_admin=request.user.is_admin)
    saved, errors = save_form(
        lambda: (
            services.create_host(site.model, request.user, data)
            if host is None
            else services.update_host(site.model, request.user, host.pk, data)
        ),
        labels=FIELD_LABELS,
        domain_text=values["domain_names"],
    )
    if errors is not None:
        return _form_page(request, site, values, host=host, errors=errors, status=400)
    report_saved(request, site, saved, "created" if host is None else "saved")
    return redirect(site.url("list"))


@page
def site_create(request: HttpRequest, kind: str) -> HttpResponse:
    """The empty form (GET) or a new host from it (POST)."""
    site = PAGES[kind]
    if request.method == "POST":
        return _submit(request, site, None)
    return _form_page(request, site, _initial(site))


@page
def site_edit(request: HttpRequest, kind: str, host_id: int) -> HttpResponse:
    """One host's form (GET) or its changes (POST)."""
    site = PAGES[kind]
    host = object_or_leave(request, lambda: services.get_host(site.model, request.user, host_id))
    if isinstance(host, HttpResponse):
        return host
    if request.method == "POST":
        return _submit(request, site, host)
    return _form_page(request, site, _from_host(site, host), host=host)
