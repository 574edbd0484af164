"""One settings page that edits one setting (real client IP, login gate, default site,
admin UI domain): show the current values, save a submission through the setting's
service, and on a refusal show the form again with the messages beside its inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render

from portway.core.errors import PortwayError
from portway.web.forms import FormErrors


def setting_form(
    request: HttpRequest,
    template: str,
    *,
    values: dict[str, Any],
    submitted: Callable[[QueryDict], dict[str, Any]],
    save: Callable[[dict[str, Any]], object],
    saved: str,
    url_name: str,
    claimed: Iterable[str],
    errors_of: Callable[[PortwayError], FormErrors] = FormErrors.of,
    forbidden_status: int = 400,
    context: Callable[[], Mapping[str, Any]] | None = None,
) -> HttpResponse:
    """The settings page `template` (a child of web/settings_form.html).

    Args:
        values: the form's values from the stored setting (GET).
        submitted: the form's values from a POST body.
        save: stores the submitted values; raises PortwayError (FieldError and
            InvalidFields name the API's field paths) to refuse them.
        saved: the success message; the browser is then redirected to `url_name`.
        claimed: the field paths the template shows beside an input (the rest is listed
            at the top of the form).
        errors_of: turns the service's error into the form's messages.
        forbidden_status: the status of a refused PermissionDenied (403 where the page
            says so; 400 otherwise, like every other refusal).
        context: more template variables (called once the submission is handled).
    Returns:
        The page (200; 400 or `forbidden_status` with the messages), or the redirect.
    """
    errors = FormErrors()
    status = 200
    if request.method == "POST":
        values = submitted(request.POST)
        try:
            save(values)
        except PortwayError as exc:
            errors = errors_of(exc)
            status = forbidden_status if exc.status == 403 else 400
        else:
            messages.success(request, saved)
            return redirect(url_name)
    return render(
        request,
        template,
        {
            "title": "Settings",
            "values": values,
            "errors": errors,
            "unclaimed": errors.unclaimed(claimed),
            "can_edit": request.user.is_admin,
            **(context() if context else {}),
        },
        status=status,
    )
