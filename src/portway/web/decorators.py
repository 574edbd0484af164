"""Access rules shared by every UI page.

While no account exists every page sends the visitor to /setup; after that, pages need a
logged-in user unless they are declared public (login, setup).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from portway.accounts.models import User
from portway.core.errors import NotFound, PermissionDenied


def setup_needed() -> bool:
    """No user exists yet: the first visitor creates the administrator."""
    return not User.objects.exists()


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    # An HTMX request would swap the login page into a table cell; reload the page instead.
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def page(view: Callable | None = None, *, public: bool = False, setup: bool = False) -> Callable:
    """Decorate a UI view: redirect to /setup before the first user, to /login if needed.

    Use as `@page` for pages that need a login, `@page(public=True)` for the login page
    and `@page(public=True, setup=True)` for the setup page itself.
    """

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not setup and setup_needed():
                return _redirect(request, "/setup")
            if not public and not request.user.is_authenticated:
                # Come back to the page the visitor was on: for a POST (an action button)
                # or an HTMX request that is the page around it, not the action's URL.
                target = request.get_full_path() if request.method == "GET" else "/"
                if getattr(request, "htmx", False) and request.htmx.current_url_abs_path:
                    target = request.htmx.current_url_abs_path
                query = urlencode({"next": target}) if target != "/" else ""
                return _redirect(request, settings.LOGIN_URL + (f"?{query}" if query else ""))
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def object_or_leave(request: HttpRequest, load: Callable[[], Any]) -> Any | HttpResponse:
    """What `load()` returns (a service's `get_*` for the signed-in user), for an edit page.

    A NotFound becomes the 404 page; a PermissionDenied sends the user to the dashboard
    with the reason as a message, which is then returned (an HttpResponse) for the view to
    return as it is.
    """
    try:
        return load()
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        messages.error(request, exc.message)
        return redirect("web:dashboard")
