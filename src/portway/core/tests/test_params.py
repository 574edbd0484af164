"""Numbers in API paths and query strings: every one answers 400/404, never a 500.

The routes come from the API's own OpenAPI document, so a route added later with an id
in its path or a numeric query parameter is covered without editing this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from portway.testing.api import api_client, expect_error, make_admin, send

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Not ids: other scripts' digits (int() takes "١", refuses "¹" although "¹".isdigit()),
# what pydantic's lax int would take (" 1", "1_0"), signs, fractions, booleans, and
# numbers beyond a 64-bit column (SQLite: "datatype mismatch" for such an OFFSET).
BAD_NUMBERS = [
    "%C2%B9",
    "%D9%A1",
    "%EF%BC%91",  # fullwidth 1
    "%201",
    "1_0",
    "-1",
    "%2B1",
    "1.0",
    "1e3",
    "true",
    "0x10",
    "99999999999999999999",
    "9223372036854775808",
    "9" * 5000,
]


def _integer_parameters() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(method, path template, name) of every integer path and query parameter."""
    schema = Client().get("/api/schema").json()
    in_path, in_query = [], []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("schema", {}).get("type") != "integer":
                    continue
                where = in_path if parameter["in"] == "path" else in_query
                where.append((method.upper(), "/api" + path, parameter["name"]))
    return in_path, in_query


def _fill(template: str, name: str, value: str) -> str:
    """`template` with `value` for `{name}` and 1 for any other path parameter."""
    path = template.replace("{" + name + "}", value)
    return re.sub(r"\{[^}]+\}", "1", path)


def _assert_refused(response: Any, what: str) -> str:
    assert response.status_code in (400, 404), (what, response.status_code, response.content)
    return expect_error(response, response.status_code)


def test_the_document_lists_the_id_and_paging_parameters():
    in_path, in_query = _integer_parameters()
    assert ("GET", "/api/nginx/proxy-hosts/{host_id}", "host_id") in in_path
    assert ("GET", "/api/nginx/certificates/{certificate_id}", "certificate_id") in in_path
    assert ("GET", "/api/audit-log/{entry_id}", "entry_id") in in_path
    assert ("GET", "/api/audit-log", "offset") in in_query
    assert ("GET", "/api/audit-log", "limit") in in_query


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_an_integer_path_parameter_takes_only_ascii_digits_in_range(value: str):
    client = api_client(make_admin())
    in_path, _ = _integer_parameters()
    for method, template, name in in_path:
        path = _fill(template, name, value)
        response = send(client, method, path, {} if method in ("POST", "PUT") else None)
        message = _assert_refused(response, f"{method} {path[:80]}")
        if method in ("GET", "DELETE"):
            assert response.status_code == 400, (method, path[:80], message)
            assert message.startswith(f"{name} in the URL must be "), message


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_numeric_query_parameter_takes_only_ascii_digits_in_range(value: str):
    client = api_client(make_admin())
    _, in_query = _integer_parameters()
    for method, template, name in in_query:
        path = _fill(template, "", "") + f"?{name}={value}"
        message = expect_error(send(client, method, path), 400)
        assert message.startswith(f"query parameter {name} must be "), message


def test_the_issue_examples():
    client = api_client(make_admin())
    assert "not found" in expect_error(client.get("/api/users/%C2%B9"), 404)
    message = expect_error(client.get("/api/audit-log?offset=99999999999999999999"), 400)
    assert message == (
        "query parameter offset must be 2147483647 or less, not 99999999999999999999"
    )


def test_paging_bounds_are_inclusive_and_work():
    client = api_client(make_admin())
    for query in ("offset=0", "offset=2147483647", "limit=1", "limit=1000", "offset=007"):
        response = client.get(f"/api/audit-log?{query}")
        assert response.status_code == 200, (query, response.content)
    assert "query parameter limit" in expect_error(client.get("/api/audit-log?limit=0"), 400)
    assert "query parameter limit" in expect_error(client.get("/api/audit-log?limit=1001"), 400)


def test_a_valid_but_unknown_id_is_a_404():
    client = api_client(make_admin())
    for path in (
        "/api/nginx/proxy-hosts/9223372036854775807",
        "/api/nginx/certificates/0",
        "/api/audit-log/123456",
        "/api/users/9223372036854775807",
    ):
        assert "not found" in expect_error(client.get(path), 404).lower()


@pytest.mark.parametrize("expiry", ["%D9%A1d", "9" * 400 + "ms", "9" * 5000 + "y", "%C2%B9d"])
def test_token_expiry_takes_only_ascii_digits(expiry: str):
    client = api_client(make_admin())
    assert expect_error(client.get(f"/api/tokens?expiry={expiry}"), 400).startswith("data/expiry ")
