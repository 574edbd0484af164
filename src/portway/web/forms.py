"""Turning service errors into per-field messages for the HTML forms.

Services raise `InvalidFields` (field path → reason), `FieldError` (one field) or another
`PortwayError` (a message for the whole form). Paths are the API's: `domain_names/0`,
`locations/1/path`, `certificate`. A form shows each message beside its input and lists
the ones no input claimed at the top, so nothing a service says is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from django.http import Http404

from portway.core import fields
from portway.core.errors import FieldError, InvalidFields, NotFound, PortwayError

Saved = TypeVar("Saved")


class FormErrors:
    """Messages of one form submission, by field path, plus form-wide ones."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.general: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, field: str | None, reason: str) -> None:
        if field:
            self.fields.setdefault(field, []).append(reason)
        else:
            self.general.append(reason)

    def absorb(self, exc: PortwayError) -> None:
        """Record what a service raised."""
        if isinstance(exc, InvalidFields):
            for field, reason in exc.errors.items():
                self.add(field, reason)
        elif isinstance(exc, FieldError):
            self.add(exc.field, exc.reason)
        else:
            self.add(None, exc.message)

    @classmethod
    def of(cls, exc: PortwayError) -> FormErrors:
        errors = cls()
        errors.absorb(exc)
        return errors

    def get(self, field: str) -> list[str]:
        """Messages for exactly `field`."""
        return self.fields.get(field, [])

    def under(self, prefix: str) -> list[str]:
        """Messages for `prefix` and every path below it (`domain_names/3`)."""
        found: list[str] = []
        for field, reasons in self.fields.items():
            if field == prefix or field.startswith(prefix + "/"):
                found.extend(reasons)
        return found

    def any_under(self, prefixes: Iterable[str]) -> bool:
        return any(self.under(prefix) for prefix in prefixes)

    def relabel(self, labels: Mapping[str, str]) -> None:
        """Say "the Port field" where a reason names the API's `forward_port`.

        Services and validators name other fields as the API does ("put the port 8080 in
        forward_port"); a form shows labels. `labels` maps API names to labels.
        """
        if not labels:
            return
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, labels)) + r")\b")

        def swap(text: str) -> str:
            return pattern.sub(lambda m: f"the {labels[m.group(1)]} field", text)

        self.fields = {f: [swap(r) for r in reasons] for f, reasons in self.fields.items()}
        self.general = [swap(r) for r in self.general]

    def unclaimed(self, claimed: Iterable[str]) -> list[str]:
        """Form-wide messages plus field messages that no rendered input shows."""
        claimed = tuple(claimed)
        leftovers = list(self.general)
        for field, reasons in self.fields.items():
            if not any(field == c or field.startswith(c + "/") for c in claimed):
                leftovers.extend(f"{field.replace('/', ' ')}: {reason}" for reason in reasons)
        return leftovers


def number_or_text(text: str) -> int | str:
    """`text` (stripped) as an int when it is ASCII digits, else the text as typed: the
    service then names the field and why, with the API's rules (one set for both)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else text


def save_form(
    save: Callable[[], Saved],
    *,
    labels: Mapping[str, str],
    domain_text: str | None = None,
    local: FormErrors | None = None,
) -> tuple[Saved | None, FormErrors | None]:
    """Run a form's create or update (`save`, a service call) and say what went wrong.

    Args:
        labels: API field name → the form's label (see `FormErrors.relabel`).
        domain_text: the domain-names textarea as typed, to point messages at its lines.
        local: the form's own messages (they replace the service's for the same field).
    Returns:
        (what `save` returned, None), or (None, the messages) when the service refused.
    Raises:
        Http404: the object is gone (NotFound).
    """
    try:
        return save(), None
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PortwayError as exc:
        errors = FormErrors.of(exc)
    for field, reasons in (local.fields if local else {}).items():
        errors.fields[field] = reasons
    if domain_text is not None:
        explain_domain_lines(errors, domain_text)
    errors.relabel(labels)
    return None, errors


# --- domain-name text areas (one name per line) ---------------------------------------


def domain_lines(text: str) -> list[tuple[int, str]]:
    """(line number from 1, name) for each name in the textarea: one per line; commas and
    spaces also separate names on a line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        found.extend((number, part) for part in re.split(r"[\s,]+", line) if part)
    return found


def _normalised(name: str) -> str:
    try:
        return fields.domain_name(name)
    except ValueError:
        return name


def explain_domain_lines(errors: FormErrors, text: str) -> None:
    """Point each domain-name message at its line of the textarea.

    The service names items by position (`domain_names/2`); a person counts lines, and
    sees several names on one line when they used commas.
    """
    lines = domain_lines(text)
    for field, reasons in list(errors.fields.items()):
        match = re.fullmatch(r"domain_names/(\d+)", field)
        if match and int(match.group(1)) < len(lines):
            number, name = lines[int(match.group(1))]
            errors.fields[field] = [
                f"line {number}: {r}"
                if name.lower() in r.lower()
                else f'line {number}: "{name}" {r}'
                for r in reasons
            ]
        elif field == "domain_names":
            errors.fields[field] = [_duplicate_lines(r, lines) for r in reasons]


def _duplicate_lines(reason: str, lines: list[tuple[int, str]]) -> str:
    """ "lists a.com twice" → "a.com is on lines 1 and 3" (names compared normalised)."""
    by_name: dict[str, list[int]] = {}
    for number, name in lines:
        by_name.setdefault(_normalised(name), []).append(number)
    for name, numbers in by_name.items():
        if len(numbers) > 1 and f"lists {name} twice" in reason:
            listed = ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
            return f"{name} is on lines {listed}: remove all but one"
    return reason
