"""UI pages: /tunnels (tunnel hosts, live sessions), /tunnels/new, /tunnels/<id> (the form,
its access keys with the new key shown once, its sessions). Validation is the services',
shared with the API; plain forms, no script of our own."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portway.core.errors import PermissionDenied, PortwayError
from portway.hosts.views import FIELD_LABELS, certificate_choices, split_domains
from portway.tunnels import services
from portway.tunnels.models import Tunnel
from portway.web import queries
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors, number_or_text, save_form

NEW_KEY = "portway.tunnels.new_key"
TEXT_FIELDS = ("domain_names", "forward_host", "forward_port", "certificate_id", "max_connections")
SWITCHES = ("ssl_forced", "passthrough", "proxy_protocol")


@page
def tunnel_list(request: HttpRequest) -> HttpResponse:
    """Every visible tunnel host and the live sessions, each with a kill button."""
    try:
        tunnels = list(services.list_tunnels(request.user))
        sessions = services.list_sessions(request.user, limit=20)
        denied = ""
    except PermissionDenied as exc:
        tunnels, sessions, denied = [], [], exc.message
    return render(
        request,
        "tunnels/list.html",
        {
            "title": "Tunnels",
            "tunnels": tunnels,
            "sessions": sessions,
            "denied": denied,
            "can_manage": queries.can_manage(request.user, "streams"),
        },
    )


def _values(tunnel: Tunnel | None) -> dict[str, Any]:
    if tunnel is None:
        return {
            "domain_names": "",
            "forward_host": "127.0.0.1",
            "forward_port": "",
            "certificate_id": "0",
            "max_connections": "100",
            "ssl_forced": True,
            "passthrough": False,
            "proxy_protocol": False,
            "user_ids": [],
        }
    return {
        "domain_names": "\n".join(tunnel.unicode_names),
        "forward_host": tunnel.forward_host,
        "forward_port": str(tunnel.forward_port),
        "certificate_id": str(tunnel.certificate_id or 0),
        "max_connections": str(tunnel.max_connections),
        "ssl_forced": tunnel.ssl_forced,
        "passthrough": tunnel.passthrough,
        "proxy_protocol": tunnel.proxy_protocol,
        "user_ids": [str(u.pk) for u in tunnel.users.all()],
    }


def _form(
    request: HttpRequest,
    values: dict[str, Any],
    tunnel: Tunnel | None,
    errors: FormErrors | None = None,
    new_key: str | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or FormErrors()
    context = {
        "title": f"Edit {tunnel}" if tunnel else "New tunnel host",
        "tunnel": tunnel,
        "form": values,
        "errors": errors,
        "unclaimed": errors.unclaimed([*TEXT_FIELDS, *SWITCHES, "user_ids", "name", "expires_on"]),
        "certificates": certificate_choices(request.user, str(values["certificate_id"])),
        "users": list(queries_users(request)),
        "keys": list(tunnel.keys.all()) if tunnel else [],
        "sessions": services.list_sessions(request.user, tunnel.pk, 20) if tunnel else [],
        "new_key": new_key,
        "can_manage": queries.can_manage(request.user, "streams"),
        "action_url": reverse("tunnels:edit", args=[tunnel.pk])
        if tunnel
        else reverse("tunnels:create"),
    }
    return render(request, "tunnels/form.html", context, status=status)


def queries_users(request: HttpRequest) -> Any:
    """Users an administrator may allow on a tunnel (others see only themselves)."""
    from portway.accounts.models import User

    if request.user.is_admin:
        return User.objects.order_by("email")
    return User.objects.filter(pk=request.user.pk)


def _submit(request: HttpRequest, tunnel: Tunnel | None) -> HttpResponse:
    post = request.POST
    values = {name: post.get(name, "").strip() for name in TEXT_FIELDS}
    for name in SWITCHES:
        values[name] = post.get(name) in ("on", "1", "true")
    values["user_ids"] = post.getlist("user_ids")
    raw_cert = values["certificate_id"] or "0"
    data: dict[str, Any] = {
        "domain_names": split_domains(values["domain_names"]),
        "forward_host": values["forward_host"],
        "forward_port": number_or_text(values["forward_port"]),
        "certificate_id": raw_cert if raw_cert == "new" else number_or_text(raw_cert),
        "max_connections": number_or_text(values["max_connections"]),
        "ssl_forced": values["ssl_forced"],
        "passthrough": values["passthrough"],
        "proxy_protocol": values["proxy_protocol"],
        "user_ids": [number_or_text(v) for v in values["user_ids"]],
    }
    saved, errors = save_form(
        lambda: (
            services.create_tunnel(request.user, data)
            if tunnel is None
            else services.update_tunnel(request.user, tunnel.pk, data)
        ),
        labels=FIELD_LABELS,
        domain_text=values["domain_names"],
    )
    if errors is not None:
        return _form(request, values, tunnel, errors, status=400)
    messages.success(request, f"Tunnel host {saved} {'created' if tunnel is None else 'saved'}.")
    return redirect("tunnels:edit", saved.pk)


@page
def tunnel_create(request: HttpRequest) -> HttpResponse:
    """The empty form (GET) or a new tunnel host from it (POST)."""
    if request.method == "POST":
        return _submit(request, None)
    return _form(request, _values(None), None)


def _tunnel(request: HttpRequest, tunnel_id: int) -> Tunnel | HttpResponse:
    return object_or_leave(request, lambda: services.get_tunnel(request.user, tunnel_id))


@page
def tunnel_edit(request: HttpRequest, tunnel_id: int) -> HttpResponse:
    """One tunnel host: its form, its keys, its sessions."""
    tunnel = _tunnel(request, tunnel_id)
    if isinstance(tunnel, HttpResponse):
        return tunnel
    if request.method == "POST":
        return _submit(request, tunnel)
    shown = request.session.pop(NEW_KEY, None)
    new_key = shown[1] if shown and shown[0] == tunnel.pk else None
    return _form(request, _values(tunnel), tunnel, new_key=new_key)


@page
@require_POST
def tunnel_delete(request: HttpRequest, tunnel_id: int) -> HttpResponse:
    """Delete a tunnel host (its sessions end)."""
    try:
        name = str(services.get_tunnel(request.user, tunnel_id))
        services.delete_tunnel(request.user, tunnel_id)
    except PortwayError as exc:
        messages.error(request, f"Could not delete tunnel host {tunnel_id}: {exc.message}")
    else:
        messages.success(request, f"Tunnel host {name} deleted.")
    return redirect("tunnels:list")


@page
@require_POST
def key_create(request: HttpRequest, tunnel_id: int) -> HttpResponse:
    """A new access key, shown once on the page this answers."""
    tunnel = _tunnel(request, tunnel_id)
    if isinstance(tunnel, HttpResponse):
        return tunnel
    data: dict[str, Any] = {"name": request.POST.get("name", "")}
    if request.POST.get("expires_on", "").strip():
        data["expires_on"] = request.POST["expires_on"].strip()
    try:
        _, secret = services.create_key(request.user, tunnel.pk, data)
    except PortwayError as exc:
        return _form(request, _values(tunnel), tunnel, FormErrors.of(exc), status=400)
    # shown on the next page only (post/redirect/get: a reload neither shows it again nor
    # creates another key); the session is server-side and the value is popped at once
    request.session[NEW_KEY] = [tunnel.pk, secret]
    return redirect("tunnels:edit", tunnel.pk)


@page
@require_POST
def key_revoke(request: HttpRequest, tunnel_id: int, key_id: int) -> HttpResponse:
    """Revoke an access key (its sessions end)."""
    try:
        services.revoke_key(request.user, tunnel_id, key_id)
    except PortwayError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Key revoked; its sessions are ended.")
    return redirect("tunnels:edit", tunnel_id)


@page
@require_POST
def session_kill(request: HttpRequest, session_id: str) -> HttpResponse:
    """End a live session, then back to where the button was."""
    try:
        services.kill_session(request.user, session_id)
    except PortwayError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Session {session_id} ended.")
    back = request.POST.get("next", "")
    return redirect(back if back.startswith("/tunnels") else reverse("tunnels:list"))
