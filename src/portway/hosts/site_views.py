"""UI pages for the host kinds beyond the proxy host: redirection hosts, 404 hosts and
streams.

One set of views serves every such kind (`SiteKindPage` says what differs: the model,
URLs, titles, templates and the kind's own form fields); validation is the services',
shared with the API, so the form shows the same messages beside the fields they name.
A stream has no names or HTTP options: its form is portway.hosts.stream_views'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portway.core.errors import NotFound, PermissionDenied, PortwayError
from portway.hosts import services
from portway.hosts.models import DeadHost, HostBase, RedirectionHost, Stream
from portway.hosts.views import FIELD_LABELS, _certificate_choices, split_domains
from portway.web import queries
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors, explain_domain_lines

SSL_FIELDS = ("ssl_forced", "http2_support", "hsts_enabled", "hsts_subdomains")
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
    templates: str = "hosts/sites"  # its list.html and _table.html
    search_hint: str = "Search domain names…"

    @property
    def label(self) -> str:
        return self.model.LABEL

    @property
    def section(self) -> str:
        return services.SECTIONS[self.model.KIND]

    def url(self, name: str, *args: Any) -> str:
        return reverse(f"hosts:{self.model.KIND}_{name}", args=args)


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
)
DEAD = SiteKindPage(
    model=DeadHost,
    slug="dead-hosts",
    title="404 Hosts",
    description="Requests for these domain names are answered 404 Not Found.",
    text_fields=(),
    bool_fields=(),  # NPM's 404 host has no "block common exploits"
    defaults=(),
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
)
PAGES = {page.model.KIND: page for page in (REDIRECTION, DEAD, STREAMS)}


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
        "url_edit": f"hosts:{kind.model.KIND}_edit",
        "url_enable": f"hosts:{kind.model.KIND}_enable",
        "url_disable": f"hosts:{kind.model.KIND}_disable",
        "url_delete": f"hosts:{kind.model.KIND}_delete",
    }


def _table(request: HttpRequest, kind: SiteKindPage) -> HttpResponse:
    context = {**_list_context(request, kind), "oob_messages": True}
    return render(request, f"{kind.templates}/_table.html", context)


@page
def site_list(request: HttpRequest, kind: str) -> HttpResponse:
    """The list of one kind's hosts with search (HTMX swaps only the table)."""
    site = PAGES[kind]
    if request.htmx and not request.htmx.boosted and request.htmx.target == f"{site.slug}-table":
        return _table(request, site)
    return render(request, f"{site.templates}/list.html", _list_context(request, site))


@page
@require_POST
def site_action(request: HttpRequest, kind: str, host_id: int, verb: str) -> HttpResponse:
    """Enable, disable or delete one host (POST; the list asks for confirmation)."""
    site = PAGES[kind]
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
    return values


def _to_data(site: SiteKindPage, values: dict[str, Any], *, is_admin: bool) -> dict[str, Any]:
    """The service's NPM wire `data`; values stay as typed so the service names the
    field of anything wrong (one set of rules for the API and the form)."""
    data: dict[str, Any] = {"domain_names": split_domains(values["domain_names"])}
    raw = str(values["certificate_id"]).strip() or "0"
    data["certificate_id"] = int(raw) if raw.isascii() and raw.isdigit() else raw
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
    context = {
        "title": f"Edit {host}" if host else f"New {site.label}",
        "kind": site,
        "host": host,
        "form": values,
        "errors": errors,
        "unclaimed": errors.unclaimed(claimed),
        "certificates": _certificate_choices(request.user, str(values["certificate_id"])),
        "is_admin": request.user.is_admin,
        "codes": [(str(code), text) for code, text in REDIRECT_CODES],
        "list_url": site.url("list"),
        "action_url": site.url("edit", host.pk) if host else site.url("create"),
    }
    return render(request, "hosts/sites/form.html", context, status=status)


def _submit(request: HttpRequest, site: SiteKindPage, host: HostBase | None) -> HttpResponse:
    values = _from_post(site, request.POST)
    data = _to_data(site, values, is_admin=request.user.is_admin)
    try:
        if host is None:
            saved = services.create_host(site.model, request.user, data)
        else:
            saved = services.update_host(site.model, request.user, host.pk, data)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PortwayError as exc:
        errors = FormErrors.of(exc)
        explain_domain_lines(errors, values["domain_names"])
        errors.relabel(FIELD_LABELS)
        return _form_page(request, site, values, host=host, errors=errors, status=400)
    verb = "created" if host is None else "saved"
    if saved.enabled and not saved.nginx_online:
        messages.warning(
            request,
            f"{site.label.capitalize()} {saved} {verb}, but nginx rejected its configuration: "
            f"{saved.nginx_err or 'see the status popover'}",
        )
    else:
        messages.success(request, f"{site.label.capitalize()} {saved} {verb}.")
    for warning in saved.certificate_warnings:
        messages.warning(request, warning)
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
