"""UI form of a stream (list, enable/disable and delete are the generic ones of
portway.hosts.site_views): incoming port, forwarding host and port, TCP/UDP, and a
certificate for TLS termination. The service validates, as for the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portway.hosts import services
from portway.hosts.models import Stream
from portway.hosts.site_views import STREAMS, certificate_choices
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors, number_or_text, save_form

TEXT_FIELDS = ("incoming_port", "forwarding_host", "forwarding_port")
BOOL_FIELDS = ("tcp_forwarding", "udp_forwarding")
FIELD_LABELS = {
    "incoming_port": "Incoming port",
    "forwarding_host": "Forward host",
    "forwarding_port": "Forward port",
    "tcp_forwarding": "TCP",
    "udp_forwarding": "UDP",
}


def _initial() -> dict[str, Any]:
    return {
        "incoming_port": "",
        "forwarding_host": "",
        "forwarding_port": "",
        "tcp_forwarding": True,
        "udp_forwarding": False,
        "certificate_id": "0",
    }


def _from_stream(stream: Stream) -> dict[str, Any]:
    values: dict[str, Any] = {name: str(getattr(stream, name)) for name in TEXT_FIELDS}
    values.update({name: bool(getattr(stream, name)) for name in BOOL_FIELDS})
    values["certificate_id"] = str(stream.certificate_id or 0)
    return values


def _from_post(post) -> dict[str, Any]:  # noqa: ANN001 - a QueryDict
    values: dict[str, Any] = {name: post.get(name, "").strip() for name in TEXT_FIELDS}
    values.update({name: post.get(name) in ("on", "1", "true") for name in BOOL_FIELDS})
    values["certificate_id"] = post.get("certificate_id", "0")
    return values


def _to_data(values: dict[str, Any]) -> dict[str, Any]:
    """NPM wire `data`; text stays as typed so the service names what is wrong."""
    data: dict[str, Any] = {name: values[name] for name in TEXT_FIELDS}
    data.update({name: bool(values[name]) for name in BOOL_FIELDS})
    data["certificate_id"] = number_or_text(str(values["certificate_id"]).strip() or "0")
    return data


def _form_page(
    request: HttpRequest,
    values: dict[str, Any],
    *,
    stream: Stream | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or FormErrors()
    context = {
        "title": f"Edit stream {stream.incoming_port}" if stream else "New stream",
        "kind": STREAMS,
        "host": stream,
        "form": values,
        "errors": errors,
        "unclaimed": errors.unclaimed([*TEXT_FIELDS, *BOOL_FIELDS, "certificate_id"]),
        "certificates": certificate_choices(request.user, str(values["certificate_id"])),
        "list_url": STREAMS.url("list"),
        "action_url": STREAMS.url("edit", stream.pk) if stream else STREAMS.url("create"),
    }
    return render(request, "hosts/streams/form.html", context, status=status)


def _submit(request: HttpRequest, stream: Stream | None) -> HttpResponse:
    values = _from_post(request.POST)
    data = _to_data(values)
    saved, errors = save_form(
        lambda: (
            services.create_host(Stream, request.user, data)
            if stream is None
            else services.update_host(Stream, request.user, stream.pk, data)
        ),
        labels=FIELD_LABELS,
    )
    if errors is not None:
        return _form_page(request, values, stream=stream, errors=errors, status=400)
    verb = "created" if stream is None else "saved"
    if saved.enabled and not saved.nginx_online:
        messages.warning(
            request,
            f"Stream {saved} {verb}, but nginx could not serve it: "
            f"{saved.nginx_err or 'see the status popover'}",
        )
    else:
        messages.success(request, f"Stream {saved} {verb}.")
    return redirect(STREAMS.url("list"))


@page
def stream_create(request: HttpRequest, kind: str = "stream") -> HttpResponse:
    """The empty form (GET) or a new stream from it (POST)."""
    if request.method == "POST":
        return _submit(request, None)
    return _form_page(request, _initial())


@page
def stream_edit(request: HttpRequest, host_id: int, kind: str = "stream") -> HttpResponse:
    """One stream's form (GET) or its changes (POST)."""
    stream = object_or_leave(request, lambda: services.get_host(Stream, request.user, host_id))
    if isinstance(stream, HttpResponse):
        return stream
    if request.method == "POST":
        return _submit(request, stream)
    return _form_page(request, _from_stream(stream), stream=stream)
