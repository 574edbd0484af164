"""NPM's own OpenAPI document as a test oracle: every response must validate against it.

NPM publishes its API as `backend/schema/swagger.json` (OpenAPI 3.1) plus the files it
`$ref`s; a copy lives next to this module in `npm_schema/` (source, commit and licence in
`npm_schema/NOTICE`). NPM's own API test suite validates each response against it; so do
Portway's contract tests:

    from portway.testing.npm_contract import assert_npm_response

    response = client.get("/api/nginx/certificates/1")
    assert_npm_response("GET", "/api/nginx/certificates/1", response.status_code, response.json())

`$ref`s are resolved as NPM resolves them (file-relative, `@apidevtools/json-schema-ref-parser`)
through the `referencing` registry of `jsonschema`, and schemas are checked as JSON Schema
2020-12 (the dialect of OpenAPI 3.1).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_DIR = Path(__file__).resolve().parent / "npm_schema"
SWAGGER = SCHEMA_DIR / "swagger.json"
API_PREFIX = "/api"
ERROR_SCHEMA = "components/error.json"
LIST_ERRATA: dict[tuple[str, str, int], str] = {
    ("GET", "/nginx/access-lists", 200): (
        "NPM's document gives this list operation the schema of one access-list object; "
        "NPM's server answers an array of them (as every other list operation, each of "
        "which has a *-list.json array schema), and NPM's UI reads an array"
    ),
}
"""Where NPM's copied document contradicts NPM's own server, and why: (METHOD, template,
status) of list operations whose documented schema is the single object. Each element of
the answer is checked against that object (an answer that is not an array fails); the
copied files stay unmodified."""


def _load(path: Path) -> dict[str, Any]:
    contents = json.loads(path.read_text(encoding="utf-8"))
    # common.json declares `"$id": "common"`; NPM's ref parser ignores it and resolves
    # refs relative to the file, and so must we (a relative $id would move the base URI).
    if isinstance(contents, dict):
        contents.pop("$id", None)
    return contents


def _retrieve(uri: str) -> Resource:
    path = Path(unquote(urlsplit(uri).path))
    if SCHEMA_DIR not in path.parents:
        raise LookupError(f"{uri} is outside NPM's schema directory")
    return Resource.from_contents(_load(path), default_specification=DRAFT202012)


@cache
def _registry() -> Registry:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@cache
def _operations() -> dict[tuple[str, str], str]:
    """{(METHOD, "/nginx/certificates/{certID}"): file URI of the operation}."""
    swagger = _load(SWAGGER)
    found = {}
    for template, methods in swagger["paths"].items():
        for method, operation in methods.items():
            found[(method.upper(), template)] = (SCHEMA_DIR / operation["$ref"]).resolve().as_uri()
    return found


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """NPM's path templates as regular expressions, literal paths before parameterised
    ones (so `/nginx/certificates/dns-providers` never matches `{certID}`)."""
    templates = sorted({t for _, t in _operations()}, key=lambda t: ("{" in t, t))
    return [
        (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"), t)
        for t in templates
    ]


def npm_template(url: str) -> str | None:
    """NPM's path template for a request URL (`/api/users/3?expand=x` → `/users/{userID}`),
    or None when NPM has no such endpoint (Portway's own, e.g. /api/portway/...)."""
    path = urlsplit(url).path
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :] or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    for pattern, template in _templates():
        if pattern.match(path):
            return template
    return None


def _operation(method: str, template: str) -> tuple[str, dict[str, Any]]:
    uri = _operations().get((method.upper(), template))
    if uri is None:
        raise AssertionError(f"NPM documents no {method.upper()} {template}")
    return uri, _registry().get_or_retrieve(uri).value.contents


def response_schema_ref(method: str, template: str, status: int) -> str | None:
    """The URI of the JSON schema NPM documents for this response; None when NPM documents
    the status without a body schema (GET /schema: any document).

    Statuses NPM leaves undocumented for an operation (e.g. 401, 403, 404, most 400s)
    must still carry NPM's error body, `components/error.json`.

    Raises:
        AssertionError: a 2xx status NPM does not document for this operation, or one it
            documents with a body other than JSON.
    """
    uri, operation = _operation(method, template)
    responses = operation.get("responses", {})
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        if status >= 400:
            return (SCHEMA_DIR / ERROR_SCHEMA).as_uri()
        raise AssertionError(
            f"NPM documents no {status} for {method.upper()} {template} "
            f"(documented: {', '.join(sorted(responses))})"
        )
    content = response.get("content")
    if not content:
        return None
    if "schema" not in content.get("application/json", {}):
        raise AssertionError(
            f"NPM documents {', '.join(content)} for {status} {method} {template}, not JSON"
        )
    return f"{uri}#/responses/{status if str(status) in responses else 'default'}" + (
        "/content/application~1json/schema"
    )


def npm_errors(method: str, url: str, status: int, body: Any) -> list[str]:
    """Why `body` breaks NPM's contract for this response: readable lines, empty if it
    validates. `url` is the request path as sent (`/api/...`, query allowed)."""
    template = npm_template(url)
    if template is None:
        return [f"{url} is not one of NPM's endpoints"]
    ref = response_schema_ref(method, template, status)
    if ref is None:
        return []
    schema: dict[str, Any] = {"$ref": ref}
    if (method.upper(), template, status) in LIST_ERRATA:
        schema = {"type": "array", "items": schema}
    validator = Draft202012Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    lines = []
    for error in errors:
        deepest = best_match([error, *error.context]) if error.context else error
        where = "/".join(str(p) for p in deepest.absolute_path) or "(body)"
        lines.append(f"{method.upper()} {url} → {status}: at {where}: {deepest.message}")
    return lines


def assert_npm_response(method: str, url: str, status: int, body: Any) -> None:
    """Fail, naming every offending field, unless `body` validates against NPM's schema
    for `method` `url` answered with `status`.

    Raises:
        AssertionError: the body breaks NPM's document, or NPM has no such endpoint.
    """
    errors = npm_errors(method, url, status, body)
    assert not errors, "response breaks NPM's OpenAPI document:\n" + "\n".join(errors)
