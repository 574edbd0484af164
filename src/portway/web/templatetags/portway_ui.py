"""Template helpers for the admin UI: assets, field errors, badges."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.templatetags.static import static
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

from portway.core import fields
from portway.web.assets import BUILD_COMMAND, assets_built

register = template.Library()

EXPIRY_WARNING = timedelta(days=30)


@register.simple_tag
def vendor_css() -> SafeString:
    """<link>s for Tabler and its icon font, or nothing when they were not built."""
    if not assets_built():
        return mark_safe("")
    return format_html(
        '<link rel="stylesheet" href="{}">\n<link rel="stylesheet" href="{}">',
        static("vendor/tabler/css/tabler.min.css"),
        static("vendor/tabler-icons/tabler-icons.min.css"),
    )


@register.simple_tag
def vendor_js() -> SafeString:
    if not assets_built():
        return mark_safe("")
    return format_html('<script src="{}" defer></script>', static("vendor/tabler/js/tabler.min.js"))


@register.simple_tag
def assets_missing_banner() -> SafeString:
    """A warning saying how to build the assets, styled by portway.css (Tabler is missing)."""
    if assets_built():
        return mark_safe("")
    return format_html(
        '<div role="alert" id="assets-missing"><strong>The Portway UI assets have not been '
        "built.</strong> Pages work but look unstyled. In the source checkout run "
        "<code>{}</code> and restart Portway.</div>",
        BUILD_COMMAND,
    )


@register.simple_tag
def apply_path_note() -> SafeString:
    """How changes reach nginx (for administrators): through shared memory without a
    reload (the fast path), or by reload and why (GET /api/nginx/status's fast_path)."""
    from portway.nginx.services import apply_status

    status = apply_status()
    fast = status["fast_path"]
    last = status["last_apply_path"]
    last_text = {"fast": "without a reload", "reload": "with a reload"}.get(last or "", "")
    suffix = format_html(" The last change went live {}.", last_text) if last_text else ""
    if fast["enabled"]:
        return format_html(
            '<p class="text-secondary small mb-0" id="apply-path">'
            '<i class="ti ti-bolt me-1"></i>Routine host changes go live without reloading '
            "nginx; hosts with advanced config, custom locations or an access list reload "
            "it.{}</p>",
            suffix,
        )
    return format_html(
        '<p class="text-secondary small mb-0" id="apply-path">'
        '<i class="ti ti-refresh me-1"></i>Every change reloads nginx: {}.{}</p>',
        fast["reason"] or "the fast path is off",
        suffix,
    )


@register.simple_tag(takes_context=True)
def engine_stuck_banner(context) -> SafeString:  # noqa: ANN001 - a template Context
    """A red banner on every page while the apply engine cannot put changes live.

    nginx's message (file paths, addresses) is shown to administrators only.
    """
    from portway.nginx.services import apply_status

    status = apply_status()
    if not status["stuck"]:
        return mark_safe("")
    user = context.get("user")
    detail = (
        format_html(" nginx said: <code>{}</code>", status["last_error"] or "no message")
        if getattr(user, "is_admin", False)
        else ""
    )
    return format_html(
        '<div role="alert" id="engine-stuck" class="alert alert-danger m-0 rounded-0">'
        "<strong>Changes are not going live.</strong> nginx refused the last configuration "
        "and Portway could not isolate the cause to a host, so nginx keeps serving the "
        "previous configuration; hosts changed since are not served.{}</div>",
        detail,
    )


@register.filter
def errors_for(errors, field: str) -> list[str]:
    """Messages for exactly `field` (a slash path) from a FormErrors, [] if none."""
    return errors.get(field) if errors else []


@register.filter
def errors_under(errors, prefix: str) -> list[str]:
    """Messages for `prefix` and everything below it (`domain_names/2`)."""
    return errors.under(prefix) if errors else []


@register.filter
def unicode_name(name: str) -> str:
    """A domain name as people read it: `xn--bcher-kva.example` → `bücher.example`."""
    return fields.unicode_name(str(name))


@register.filter
def initials(user) -> str:
    name = (getattr(user, "name", "") or getattr(user, "email", "") or "?").strip()
    parts = [p for p in name.replace("@", " ").split() if p]
    letters = "".join(p[0] for p in parts[:2]) or "?"
    return letters.upper()


@register.inclusion_tag("web/_host_status.html")
def host_status(host) -> dict:
    """Online / Error, previous config live / Offline (nginx's error in a popover) / Disabled."""
    if not host.enabled:
        state = "disabled"
    elif host.nginx_online:
        state = "online"
    elif host.nginx_serving_previous:
        state = "previous"
    else:
        state = "offline"
    return {"state": state, "host": host, "error": host.nginx_err or ""}


@register.simple_tag
def expiry_badge(expires_on) -> SafeString:
    """A badge for a certificate's notAfter: expired, expiring within 30 days, or fine."""
    if expires_on is None:
        return format_html('<span class="badge bg-secondary-lt">{}</span>', "No certificate yet")
    now = timezone.now()
    date = timezone.localtime(expires_on).strftime("%Y-%m-%d")
    if expires_on <= now:
        return format_html(
            '<span class="badge bg-red-lt" title="Expired">{} · expired</span>', date
        )
    left = expires_on - now
    if left <= EXPIRY_WARNING:
        return format_html(
            '<span class="badge bg-yellow-lt" title="Expires soon">{} · {} days left</span>',
            date,
            left.days,
        )
    return format_html('<span class="text-secondary">{}</span>', date)


@register.filter
def ago(moment) -> str:
    """'just now', '5 minutes ago', '2 days ago'."""
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment).split(',')[0]} ago"


@register.simple_tag
def portway_version() -> str:
    from portway import __version__

    return __version__


@register.filter
def can_view(user, section: str) -> bool:
    """Whether the navigation shows `section` to `user` (the permission the API enforces)."""
    from portway.accounts.permissions import can

    return can(user, section, "view")
