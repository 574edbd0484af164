"""UI pages for access lists: the list (search, status), the form, deletion."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portway.access import services
from portway.access.models import AccessList
from portway.core.errors import NotFound, PermissionDenied, PortwayError
from portway.web import queries
from portway.web.decorators import object_or_leave, page
from portway.web.forms import FormErrors
from portway.web.setting_form import setting_form

SPARE_USER_ROWS = 3  # empty rows for new users (the form works without JavaScript)
CLAIMED = (
    "name",
    "satisfy_any",
    "pass_auth",
    "items",
    "clients",
    "meta",
    "portway_login",
    "portway_users",
)
# plus items-<row>: claimed by the user rows (see _form_page)


def _list_context(request: HttpRequest) -> dict[str, Any]:
    query = request.GET.get("q", request.POST.get("q", "")).strip()
    try:
        lists = list(services.list_access_lists(request.user, query or None))
        denied = ""
    except PermissionDenied as exc:
        lists, denied = [], exc.message
    counts = services.host_counts([a.pk for a in lists], every_kind=True)
    return {
        "title": "Access Lists",
        "lists": lists,
        "rows": [(a, counts.get(a.pk, 0)) for a in lists],
        "query": query,
        "denied": denied,
        "can_manage": queries.can_manage(request.user, services.SECTION),
    }


@page
def access_list_index(request: HttpRequest) -> HttpResponse:
    if request.htmx and not request.htmx.boosted and request.htmx.target == "access-lists-table":
        return render(request, "access/_table.html", _list_context(request))
    return render(request, "access/list.html", _list_context(request))


@page
@require_POST
def access_list_delete(request: HttpRequest, access_list_id: int) -> HttpResponse:
    try:
        name = str(services.get_access_list(request.user, access_list_id))
        services.delete_access_list(request.user, access_list_id)
    except NotFound:
        messages.error(request, f"Access list {access_list_id} no longer exists.")
    except PortwayError as exc:
        messages.error(request, f"Could not delete access list {access_list_id}: {exc.message}")
    else:
        messages.success(request, f"Access list {name} deleted.")
    if request.htmx:
        context = {**_list_context(request), "oob_messages": True}
        return render(request, "access/_table.html", context)
    return redirect("access:list")


def _rules_text(access_list: AccessList | None) -> str:
    if access_list is None:
        return ""
    return "\n".join(f"{c.directive} {c.address}" for c in access_list.clients.all())


def _parse_rules(text: str, errors: FormErrors) -> list[dict[str, str]]:
    """`allow 10.0.0.0/8` / `deny all` lines (one rule each) as the API's client objects.

    A line that is not "<allow|deny> <address>" is reported on `clients/<index>` and sent
    on as written, so the service refuses it too and nothing is saved.
    """
    rules = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        parts = line.split()
        if len(parts) != 2 or parts[0].lower() not in ("allow", "deny"):
            errors.add(
                f"clients/{index}",
                f"line {index + 1} ({line!r}) must be 'allow' or 'deny' and one address, "
                "e.g. 'allow 192.168.1.0/24' or 'deny all'",
            )
            rules.append({"address": line, "directive": parts[0] if parts else ""})
        else:
            rules.append({"address": parts[1], "directive": parts[0].lower()})
    return rules


def _user_rows(post: QueryDict | None, access_list: AccessList | None) -> list[dict[str, str]]:
    """The user rows to show: what was posted, or the stored users plus spare rows.
    Passwords are never put back into the page."""
    if post is not None:
        rows = []
        index = 0
        while f"items-{index}-username" in post:
            rows.append({"username": post.get(f"items-{index}-username", "")})
            index += 1
        return rows
    rows = [{"username": item.username} for item in access_list.items.all()] if access_list else []
    return rows + [{"username": ""} for _ in range(SPARE_USER_ROWS)]


def _form_errors(exc: PortwayError, local: FormErrors, rows: list[int]) -> FormErrors:
    """The service's errors in the form's terms: `items/<i>/...` moved to the row the
    item came from (`items-<row>`), `clients/<i>/...` said with the line number; the
    form's own message for a line wins over the service's for the same line."""
    errors = FormErrors()
    service = FormErrors.of(exc)
    errors.general = service.general
    for field, reasons in service.fields.items():
        parts = field.split("/")
        if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            row = rows[int(parts[1])] if int(parts[1]) < len(rows) else int(parts[1])
            for reason in reasons:
                errors.add(f"items-{row}", f"{' '.join(parts[2:]) or 'user'} {reason}")
        elif parts[0] == "clients" and len(parts) > 1 and parts[1].isdigit():
            if f"clients/{parts[1]}" in local.fields:
                continue
            for reason in reasons:
                what = parts[2] if len(parts) > 2 else "rule"
                errors.add("clients", f"line {int(parts[1]) + 1}: {what} {reason}")
        else:
            for reason in reasons:
                errors.add(field, reason)
    for field, reasons in local.fields.items():
        for reason in reasons:
            errors.add("clients" if field.startswith("clients") else field, reason)
    return errors


def _data_from_post(
    post: QueryDict, errors: FormErrors, *, pick_users: bool = False
) -> tuple[dict[str, Any], list[int]]:
    """The API's fields from the form, and for each item the form row it came from
    (empty rows are skipped, so the API's `items/<i>` is not the row number).
    `pick_users`: the form showed the login gate's user picker (administrators only)."""
    items = []
    rows = []
    index = 0
    while f"items-{index}-username" in post:
        username = post.get(f"items-{index}-username", "")
        secret = post.get(f"items-{index}-password", "")
        if username or secret:
            items.append({"username": username, "password": secret})
            rows.append(index)
        index += 1
    return {
        "name": post.get("name", ""),
        "satisfy_any": post.get("satisfy_any") == "on",
        "pass_auth": post.get("pass_auth") == "on",
        "items": items,
        "clients": _parse_rules(post.get("clients", ""), errors),
        "portway_login": post.get("portway_login") == "on",
        **(
            {"portway_users": [int(v) for v in post.getlist("portway_users") if v.isdigit()]}
            if pick_users
            else {}
        ),
    }, rows


def _form_page(
    request: HttpRequest,
    access_list: AccessList | None,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> HttpResponse:
    post = request.POST if request.method == "POST" else None
    errors = errors or FormErrors()
    form = {
        "name": post.get("name", "") if post else (access_list.name if access_list else ""),
        "satisfy_any": (post.get("satisfy_any") == "on")
        if post
        else bool(access_list and access_list.satisfy_any),
        "pass_auth": (post.get("pass_auth") == "on")
        if post
        else bool(access_list and access_list.pass_auth),
        "clients": post.get("clients", "") if post else _rules_text(access_list),
        "portway_login": (post.get("portway_login") == "on")
        if post
        else bool(access_list and access_list.portway_login),
    }
    chosen = (
        {int(v) for v in post.getlist("portway_users") if v.isdigit()}
        if post
        else set(access_list.portway_users or [])
        if access_list
        else set()
    )
    context = {
        "title": f"Edit {access_list}" if access_list else "New access list",
        "access_list": access_list,
        "form": form,
        "user_rows": [
            {**row, "errors": errors.get(f"items-{index}")}
            for index, row in enumerate(_user_rows(post, access_list))
        ],
        "errors": errors,
        "unclaimed": [
            message for message in errors.unclaimed(CLAIMED) if not message.startswith("items-")
        ],
        "hosts": list(services.hosts_using(access_list.pk)) if access_list else [],
        # the login gate's user picker: administrators only (it lists every account)
        "gate_users": [
            {"id": u.pk, "label": f"{u.name} <{u.email}>", "checked": u.pk in chosen}
            for u in _accounts()
        ]
        if request.user.is_admin
        else None,
    }
    return render(request, "access/form.html", context, status=status)


def _accounts():  # noqa: ANN202
    from portway.accounts.models import User

    return User.objects.filter(is_disabled=False).order_by("name", "id")


def _submit(request: HttpRequest, access_list: AccessList | None) -> HttpResponse:
    local = FormErrors()
    data, rows = _data_from_post(request.POST, local, pick_users=request.user.is_admin)
    try:
        if access_list is None:
            saved = services.create_access_list(request.user, data)
        else:
            saved = services.update_access_list(request.user, access_list.pk, data)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PortwayError as exc:
        errors = _form_errors(exc, local, rows)
        return _form_page(request, access_list, errors=errors, status=400)
    verb = "created" if access_list is None else "saved"
    messages.success(request, f"Access list {saved} {verb}.")
    return redirect("access:list")


@page
def access_list_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _submit(request, None)
    return _form_page(request, None)


@page
def access_list_edit(request: HttpRequest, access_list_id: int) -> HttpResponse:
    access_list = object_or_leave(
        request, lambda: services.get_access_list(request.user, access_list_id)
    )
    if isinstance(access_list, HttpResponse):
        return access_list
    if request.method == "POST":
        return _submit(request, access_list)
    return _form_page(request, access_list)


# --- Settings: real client IP ---------------------------------------------------------------

REAL_IP_CHOICES = [
    ("off", "Off", "Use the address of the connection (no proxy in front of Portway)."),
    ("CF-Connecting-IP", "CF-Connecting-IP", "Cloudflare's header with the visitor's address."),
    ("X-Forwarded-For", "X-Forwarded-For", "The header most proxies and tunnels set."),
]


def _real_ip_errors(exc: PortwayError) -> FormErrors:
    """The service's paths on the form: `meta/trusted_proxies/2` is line 3 of the
    textarea, other `meta/x` the input `x`."""
    service = FormErrors.of(exc)
    errors = FormErrors()
    errors.general = service.general
    for field, reasons in service.fields.items():
        parts = field.split("/")
        if parts[:2] == ["meta", "trusted_proxies"] and len(parts) == 3:
            for reason in reasons:
                errors.add("trusted_proxies", f"line {int(parts[2]) + 1}: {reason}")
        else:
            name = parts[-1] if parts[0] == "meta" else field
            for reason in reasons:
                errors.add(name, reason)
    return errors


@page
def real_ip_settings(request: HttpRequest) -> HttpResponse:
    """The real-IP setting (portway.access.realip); administrators change it."""
    from portway.access import realip

    setting = realip.get_setting()
    meta = setting.meta or {}

    def save(values: dict[str, Any]) -> None:
        lines = [line.strip() for line in values["trusted_proxies"].splitlines() if line.strip()]
        new_meta = {"cloudflare": values["cloudflare"], "trusted_proxies": lines}
        realip.set_real_ip(request.user, values["value"], new_meta)

    return setting_form(
        request,
        "access/real_ip.html",
        values={
            "value": setting.value,
            "cloudflare": bool(meta.get("cloudflare")),
            "trusted_proxies": "\n".join(meta.get("trusted_proxies") or []),
        },
        submitted=lambda post: {
            "value": post.get("value", ""),
            "cloudflare": post.get("cloudflare") == "on",
            "trusted_proxies": post.get("trusted_proxies", ""),
        },
        save=save,
        saved="Real client IP saved; nginx is being reloaded.",
        url_name="access:real_ip",
        claimed=["value", "cloudflare", "trusted_proxies"],
        errors_of=_real_ip_errors,
        context=lambda: {
            "choices": REAL_IP_CHOICES,
            "cloudflare_count": len(realip.cloudflare_ranges()),
        },
    )


@page
@require_POST
def real_ip_refresh(request: HttpRequest) -> HttpResponse:
    """Fetch Cloudflare's current ranges (administrators)."""
    from portway.access import realip

    try:
        ranges = realip.refresh_cloudflare(request.user)
    except PortwayError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cloudflare's ranges refreshed: {len(ranges)} networks.")
    return redirect("access:real_ip")


# --- Settings: login gate -------------------------------------------------------------------


@page
def gate_settings(request: HttpRequest) -> HttpResponse:
    """The login gate's cookie domain (portway.access.gate); administrators change it."""
    from portway.accounts import gate

    def errors_of(exc: PortwayError) -> FormErrors:
        service = FormErrors.of(exc)
        errors = FormErrors()
        errors.general = service.general
        for field, reasons in service.fields.items():
            for reason in reasons:
                errors.add(field.split("/")[-1], reason)
        return errors

    return setting_form(
        request,
        "access/gate_settings.html",
        values={"cookie_domain": (gate.get_setting().meta or {}).get("cookie_domain", "")},
        submitted=lambda post: {"cookie_domain": post.get("cookie_domain", "").strip()},
        save=lambda values: gate.set_gate_setting(request.user, "default", values),
        saved="Login gate saved.",
        url_name="access:gate_settings",
        claimed=["cookie_domain"],
        errors_of=errors_of,
        forbidden_status=403,
    )
