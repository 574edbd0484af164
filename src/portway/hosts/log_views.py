"""UI: a host's Logs page (any kind): the last lines of its access or error log, a
search filter, and the lines refreshed every few seconds through HTMX polling (no
script of our own; the strict CSP holds)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portway.core.errors import InvalidFields
from portway.hosts import services, site_views
from portway.nginx.logs import LOG_KINDS, LogLines
from portway.web.decorators import object_or_leave, page

LINE_CHOICES = (50, 100, 200, 500, 1000)


def _lines(raw: str | None) -> int:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and int(raw) in LINE_CHOICES else 100


@page
def host_logs(request: HttpRequest, kind: str, host_id: int) -> HttpResponse:
    """GET: the Logs page; as an HTMX request, only the lines (what the page polls)."""
    site = site_views.LISTS[kind]
    model = site.model
    host = object_or_leave(request, lambda: services.get_host(model, request.user, host_id))
    if isinstance(host, HttpResponse):
        return host
    which = request.GET.get("log", "access")
    which = which if which in LOG_KINDS else "access"
    query = request.GET.get("q", "")
    limit = _lines(request.GET.get("lines"))
    error = ""
    try:
        found = services.host_log(model, request.user, host_id, which, query, limit)
    except InvalidFields as exc:
        found, error = LogLines(lines=[], truncated=False), exc.message.removeprefix("data/")
    url = site.url("logs", host_id)
    context = {
        "title": f"Logs of {host}",
        "host": host,
        "which": which,
        "query": query,
        "limit": limit,
        "line_choices": LINE_CHOICES,
        "found": found,
        "error": error,
        "logs_url": url,
        "list_url": site.url("list"),
        "edit_url": site.url("edit", host_id),
    }
    if getattr(request, "htmx", False):
        return render(request, "hosts/_log_lines.html", context)
    return render(request, "hosts/logs.html", context)
