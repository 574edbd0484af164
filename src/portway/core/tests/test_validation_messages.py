"""No pydantic wording reaches a client or a form: every 400 names the field and says what
to do.

Three layers, each table-driven: every pydantic error type Portway's schemas can raise
(through real pydantic models), the API's endpoints with many bad bodies (through the
real API and its authentication), and the HTML forms (through Django's test client).
The proxy-host API's own table (hosts/tests/test_api_validation.py) checks the same
through `ProxyHostAPI.rejected`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import pytest
from django.test import Client
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portway.core.validation import RAW_PHRASES, field_errors, has_raw_phrase
from portway.testing.api import api_client, make_admin, make_user, send


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any, tmp_path: Any) -> None:
    # every case makes users; the production hasher is slow on purpose
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path


# ----------------------------------------------------------------------- pydantic types


class Everything(BaseModel):
    """One field per kind of constraint the schemas use."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    short: Annotated[str, Field(min_length=3, max_length=5)] = "abc"
    nonempty: Annotated[str, Field(min_length=1)] = "x"
    pattern: Annotated[str, Field(pattern=r"^\d+y$")] = "1y"
    whole: int = 0
    ranged: Annotated[int, Field(ge=1, le=10)] = 1
    open_range: Annotated[int, Field(gt=0, lt=10)] = 1
    step: Annotated[int, Field(multiple_of=5)] = 5
    number: float = 0.0
    flag: bool = False
    choice: Literal["http", "https"] = "http"
    names: Annotated[list[str], Field(min_length=1, max_length=2)] = ["a"]
    domain_names: Annotated[list[str], Field(min_length=1, max_length=2)] = ["a"]
    mapping: dict[str, Any] = {}
    when: datetime | None = None
    required: str


PYDANTIC_CASES = [
    ("missing", {}, "required"),
    ("extra", {"required": "x", "surprise": 1}, "surprise"),
    ("str-int", {"required": 5}, "required"),
    ("str-null", {"required": None}, "required"),
    ("too-short", {"required": "x", "short": "a"}, "short"),
    ("too-long", {"required": "x", "short": "abcdef"}, "short"),
    ("empty", {"required": "x", "nonempty": ""}, "nonempty"),
    ("pattern", {"required": "x", "pattern": "1 year"}, "pattern"),
    ("int-word", {"required": "x", "whole": "abc"}, "whole"),
    ("int-fraction", {"required": "x", "whole": 1.5}, "whole"),
    ("int-list", {"required": "x", "whole": [1]}, "whole"),
    ("int-huge", {"required": "x", "whole": "9" * 5000}, "whole"),
    ("ge", {"required": "x", "ranged": 0}, "ranged"),
    ("le", {"required": "x", "ranged": 11}, "ranged"),
    ("gt", {"required": "x", "open_range": 0}, "open_range"),
    ("lt", {"required": "x", "open_range": 10}, "open_range"),
    ("multiple", {"required": "x", "step": 7}, "step"),
    ("float-word", {"required": "x", "number": "many"}, "number"),
    ("bool-word", {"required": "x", "flag": "maybe"}, "flag"),
    ("bool-list", {"required": "x", "flag": [True]}, "flag"),
    ("literal", {"required": "x", "choice": "ftp"}, "choice"),
    ("list-string", {"required": "x", "names": "a"}, "names"),
    ("list-empty", {"required": "x", "names": []}, "names"),
    ("list-long", {"required": "x", "names": ["a", "b", "c"]}, "names"),
    ("list-item", {"required": "x", "names": [5]}, "names/0"),
    ("domains-empty", {"required": "x", "domain_names": []}, "domain_names"),
    ("dict-list", {"required": "x", "mapping": [1]}, "mapping"),
    ("datetime-word", {"required": "x", "when": "soon"}, "when"),
]


@pytest.mark.parametrize(
    ("data", "field"), [c[1:] for c in PYDANTIC_CASES], ids=[c[0] for c in PYDANTIC_CASES]
)
def test_every_pydantic_error_reads_as_an_instruction(data: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Everything.model_validate(data)
    found = field_errors(caught.value.errors())
    assert field in found, found
    for reason in found.values():
        assert has_raw_phrase(reason) is None, reason
        assert re.match(r"^(must|is|has|may) ", reason), reason


def test_list_messages_name_what_the_list_holds() -> None:
    with pytest.raises(ValidationError) as caught:
        Everything.model_validate({"required": "x", "domain_names": []})
    assert field_errors(caught.value.errors()) == {
        "domain_names": "must contain at least one domain name"
    }


def test_values_are_quoted_safely() -> None:
    with pytest.raises(ValidationError) as caught:
        Everything.model_validate({"required": "x", "whole": "1\n}\nserver {" + "x" * 80})
    reason = field_errors(caught.value.errors())["whole"]
    assert "\n" not in reason and len(reason) < 100, reason


# ----------------------------------------------------------------------- the API

# (id, method, path, body, the field the message must name)
API_CASES: list[tuple[str, str, str, Any, str]] = [
    ("token-missing", "post", "/api/tokens", {"secret": "x"}, "data/identity"),
    ("token-type", "post", "/api/tokens", {"identity": 5, "secret": "x"}, "data/identity"),
    ("token-empty", "post", "/api/tokens", {"identity": "", "secret": "x"}, "data/identity"),
    ("token-scope", "post", "/api/tokens", {"identity": "a", "secret": "b", "scope": "x"}, "scope"),
    ("token-extra", "post", "/api/tokens", {"identity": "a", "secret": "b", "x": 1}, "data/x"),
    ("token-list-body", "post", "/api/tokens", [1], "data"),
    ("token-not-json", "post", "/api/tokens", "{", "data"),
    ("user-missing", "post", "/api/users", {"name": "N"}, "data/email"),
    ("user-name-int", "post", "/api/users", {"name": 5, "email": "a@b.test"}, "data/name"),
    ("user-roles-str", "post", "/api/users", {"name": "N", "email": "a@b.test", "roles": "x"},
     "data/roles"),
    ("user-roles-int", "post", "/api/users", {"name": "N", "email": "a@b.test", "roles": [5]},
     "data/roles/0"),
    ("user-disabled", "post", "/api/users",
     {"name": "N", "email": "a@b.test", "is_disabled": "maybe"}, "data/is_disabled"),
    ("user-auth-type", "post", "/api/users",
     {"name": "N", "email": "a@b.test", "auth": {"type": "pin", "secret": "x"}},
     "data/auth/type"),
    ("user-auth-str", "post", "/api/users", {"name": "N", "email": "a@b.test", "auth": "x"},
     "data/auth"),
    ("user-update-extra", "put", "/api/users/{user}", {"nick": "x"}, "data/nick"),
    ("password-missing", "put", "/api/users/{user}/auth", {"type": "password"}, "data/secret"),
    ("password-type", "put", "/api/users/{user}/auth", {"type": "pin", "secret": "x"},
     "data/type"),
    ("permission-level", "put", "/api/users/{user}/permissions", {"proxy_hosts": "edit"},
     "data/proxy_hosts"),
    ("permission-visibility", "put", "/api/users/{user}/permissions", {"visibility": 1},
     "data/visibility"),
    ("cert-provider", "post", "/api/nginx/certificates", {"provider": "acme"}, "data/provider"),
    ("cert-missing", "post", "/api/nginx/certificates", {}, "data/provider"),
    ("cert-names-str", "post", "/api/nginx/certificates",
     {"provider": "letsencrypt", "domain_names": "a.test"}, "data/domain_names"),
    ("cert-meta-str", "post", "/api/nginx/certificates", {"provider": "other", "meta": "x"},
     "data/meta"),
    ("test-http-str", "post", "/api/nginx/certificates/test-http", {"domains": "a.test"},
     "data/domains"),
    ("setting-missing", "put", "/api/settings/default-site", {}, "data/value"),
    ("setting-extra", "put", "/api/settings/default-site", {"value": "404", "x": 1}, "data/x"),
    ("host-url", "post", "/api/nginx/proxy-hosts",
     {"domain_names": ["a.test"], "forward_scheme": "http", "forward_host": "http://10.0.0.5:81/",
      "forward_port": 81}, "data/forward_host"),
    ("host-names-empty", "post", "/api/nginx/proxy-hosts",
     {"domain_names": [], "forward_scheme": "http", "forward_host": "10.0.0.5",
      "forward_port": 81}, "data/domain_names"),
    ("host-port", "post", "/api/nginx/proxy-hosts",
     {"domain_names": ["a.test"], "forward_scheme": "http", "forward_host": "10.0.0.5",
      "forward_port": "http"}, "data/forward_port"),
    ("host-everything", "post", "/api/nginx/proxy-hosts",
     {"domain_names": "a.test", "forward_scheme": "HTTP", "forward_host": 5,
      "forward_port": 0, "ssl_forced": "maybe", "locations": [{"path": 5}], "x": 1},
     "data/forward_scheme"),
]  # fmt: skip


@pytest.fixture
def admin_api(db: None) -> Client:
    return api_client(make_admin())


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_messages_name_the_field_and_say_what_to_do(
    admin_api: Client, method: str, path: str, body: Any, field: str
) -> None:
    user = make_user("someone@example.com")
    response = send(admin_api, method, path.replace("{user}", str(user.pk)), body)
    assert response.status_code == 400, response.content
    message = response.json()["error"]["message"]
    assert field in message, message
    assert has_raw_phrase(message) is None, message
    for part in message.split("; "):
        assert re.match(r'^data(/\S+)? ("[^"]*" )?(must|is|has|may|lists) ', part), part


def test_several_mistakes_are_all_reported(admin_api: Client) -> None:
    body = API_CASES[-1][3]
    message = send(admin_api, "post", "/api/nginx/proxy-hosts", body).json()["error"]["message"]
    for field in ("domain_names", "forward_scheme", "forward_host", "forward_port", "ssl_forced",
                  "locations/0/path", "x"):  # fmt: skip
        assert f"data/{field} " in message, message


def test_raw_phrases_cover_pydantic_wording() -> None:
    # the guard itself: pydantic's messages are caught
    for text in (
        "List should have at least 1 item after validation, not 0",
        "Input should be a valid integer, unable to parse string as an integer",
        "value is not a valid email address",
        "Value error, something",
    ):
        assert has_raw_phrase(text), text
    assert "should be" in RAW_PHRASES


# ----------------------------------------------------------------------- the HTML forms

FORM_CASES: list[tuple[str, str, dict[str, str]]] = [
    ("host-pasted-url", "/proxy-hosts/new",
     {"domain_names": "a.test", "forward_host": "http://127.0.0.1:8080/", "forward_port": "80"}),
    ("host-everything-wrong", "/proxy-hosts/new",
     {"domain_names": "a..test\nhttps://b.test/x, c.test:81\na.test\na.test",
      "forward_scheme": "ftp", "forward_host": "[::1", "forward_port": "http",
      "certificate_id": "x", "access_list_id": "-1",
      "locations-0-path": "api", "locations-0-forward_host": "h:1",
      "locations-0-forward_port": "0", "locations-0-forward_scheme": "gopher"}),
    ("host-empty", "/proxy-hosts/new", {"domain_names": "", "forward_host": "",
                                        "forward_port": ""}),
    ("certificate-empty", "/certificates/new", {"action": "save"}),
    ("certificate-garbage", "/certificates/new",
     {"action": "save", "certificate_text": "hello", "certificate_key_text": "world"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "data"), [c[1:] for c in FORM_CASES], ids=[c[0] for c in FORM_CASES]
)
def test_form_messages_have_no_pydantic_wording(db: None, path: str, data: dict) -> None:
    client = Client()
    client.force_login(make_admin())
    response = client.post(path, data)
    assert response.status_code == 400
    shown = _messages(response.content.decode())
    assert shown
    for message in shown:
        assert has_raw_phrase(message) is None, message


def _messages(html: str) -> list[str]:
    """The error texts a form shows: beside inputs and in its alert lists."""
    beside = re.findall(r'class="invalid-feedback"[^>]*>([^<]*)<', html)
    listed = re.findall(r"<li>(?:<strong>[^<]*</strong>)?([^<]*)</li>", html)
    return [text.strip() for text in beside + listed if text.strip()]


def test_setup_form_has_no_pydantic_wording(db: None) -> None:
    response = Client().post(
        "/setup", {"name": "", "email": "not-an-address", "password": "short", "password2": "x"}
    )
    assert response.status_code == 400
    shown = _messages(response.content.decode())
    assert len(shown) >= 3, shown
    for message in shown:
        assert has_raw_phrase(message) is None, message
