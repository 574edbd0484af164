"""Whether a request reached the admin UI over HTTPS, and Secure cookies when it did.

The admin server speaks plain HTTP on PORTWAY_ADMIN_PORT. An administrator who wants
the UI over HTTPS puts a TLS-terminating proxy in front of it, typically a Portway proxy
host forwarding to 127.0.0.1:81, and that proxy says in `X-Forwarded-Proto` what the
browser used. Anyone can send that header, so it is believed only from the peers in
PORTWAY_TRUSTED_PROXIES (default: loopback, i.e. this machine's own nginx);
PORTWAY_ADMIN_HTTPS=1 declares every request HTTPS (a proxy that sends no header).

A request judged HTTPS gets `request.is_secure()` (Django's CSRF origin check then
expects `https://` origins, as the browser sends them) and every cookie in its response
is marked `Secure`, so the session and CSRF cookies never travel over plain HTTP later.
Cookies of plain-HTTP requests cannot be Secure: the browser would drop them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def came_over_https(request: HttpRequest) -> bool:
    """True if the browser used HTTPS, by the rules in the module docstring.

    Args:
        request: a Django request; REMOTE_ADDR is the peer that connected to us.
    """
    config = settings.PORTWAY
    if config.admin_https or request.environ.get("wsgi.url_scheme") == "https":
        return True
    header = request.META.get("HTTP_X_FORWARDED_PROTO", "")
    if not header:
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    # The admin server's own listen address is this machine (TCP cannot spoof it): Portway's
    # nginx connecting to a LAN PORTWAY_ADMIN_BIND (nginx.admin_site) comes from there.
    own = config.admin_bind and peer == ipaddress.ip_address(config.admin_bind)
    if not own and not any(peer in network for network in config.trusted_proxies):
        return False
    # A chain of proxies appends; the last value is the one our trusted peer saw.
    return header.split(",")[-1].strip().lower() == "https"


class HttpsMiddleware:
    """Marks HTTPS requests secure and their cookies `Secure` (list it first)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if came_over_https(request):
            # Django's request.scheme reads this for a WSGI request without a proxy header
            # setting, so is_secure(), build_absolute_uri() and the CSRF check agree.
            request.environ["wsgi.url_scheme"] = "https"
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response
