"""Wire schemas of NPM's access-list object (request validation at the edge).

Every value that reaches the htpasswd file or nginx's config is checked here: usernames
cannot carry the file's separator (`:`) or a line break, addresses are IPs, CIDRs or
`all`. Unknown properties are refused; the read-only keys NPM's UI sends back with an
item or a rule (`id`, `hint`, timestamps...) are accepted and ignored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from portway.access.htpasswd import MAX_PASSWORD_BYTES
from portway.core import wire
from portway.core.validation import given

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def username(value: str) -> str:
    """A basic-auth user name: 1-255 characters, no `:` (RFC 7617 section 2), no control
    characters (a newline would start a new htpasswd line), no surrounding spaces."""
    if not value:
        raise ValueError("must not be empty")
    if ":" in value:
        raise ValueError(
            "must not contain ':' (basic authentication separates it from the password with ':')"
        )
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    if value != value.strip():
        raise ValueError("must not start or end with a space")
    return value


def password(value: str) -> str:
    """A new password (1-72 bytes of UTF-8, no control characters) or "" (keep the old one)."""
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes long (UTF-8)")
    return value


def address(value: str) -> str:
    """An IPv4/IPv6 address, a CIDR network, or `all`; returned in canonical form.

    A CIDR with host bits set (`10.0.0.1/8`) is stored as its network (`10.0.0.0/8`), the
    addresses nginx would match anyway.
    """
    text = value.strip()
    if text == "all":
        return text
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(
            f"must be an IP address, a CIDR network (e.g. 192.168.1.0/24 or 2001:db8::/32) "
            f"or all, not {given(value)}"
        ) from None


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    return value.strip()


def _storable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    problem = wire.meta_problem(meta)
    if problem:
        raise ValueError(problem)
    return meta


UserId = Annotated[int, Field(ge=1, le=2**53)]
Username = Annotated[str, Field(max_length=255), AfterValidator(username)]
Password = Annotated[str, AfterValidator(password)]
Address = Annotated[str, Field(max_length=64), AfterValidator(address)]
Name = Annotated[str, Field(max_length=255), AfterValidator(_name)]
ClientMeta = Annotated[dict[str, Any], AfterValidator(_storable_meta)]


class _ReadOnlyKeys(BaseModel):
    """Keys of the response objects NPM's UI sends back unchanged; ignored."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    access_list_id: int | None = None
    created_on: str | None = None
    modified_on: str | None = None
    meta: dict[str, Any] | None = None


class ItemIn(_ReadOnlyKeys):
    """A basic-auth user; an empty password keeps the stored one of the same username."""

    username: Username
    password: Password | None = ""
    hint: str | None = None


class ClientIn(_ReadOnlyKeys):
    """An address rule."""

    address: Address
    directive: Literal["allow", "deny"]


def _distinct_usernames(items: list[ItemIn] | None) -> list[ItemIn] | None:
    seen: set[str] = set()
    for item in items or []:
        if item.username in seen:
            raise ValueError(f"lists the user {item.username!r} twice: remove one of them")
        seen.add(item.username)
    return items


class AccessListFields(BaseModel):
    """Fields shared by create and update; all optional here."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    satisfy_any: bool | None = None
    pass_auth: bool | None = None
    items: Annotated[list[ItemIn], Field(max_length=100)] | None = None
    clients: Annotated[list[ClientIn], Field(max_length=500)] | None = None
    meta: ClientMeta | None = None
    # Portway extras (NPM clients never send them): the login gate
    portway_login: bool | None = None
    portway_users: Annotated[list[UserId], Field(max_length=1000)] | None = None

    @field_validator("items")
    @classmethod
    def _items(cls, value: list[ItemIn] | None) -> list[ItemIn] | None:
        return _distinct_usernames(value)


class AccessListCreate(AccessListFields):
    """POST body: `name` is required."""

    name: Name


class AccessListUpdate(AccessListFields):
    """PUT body: any subset (NPM's UI sends the whole object)."""

    name: Name = None  # type: ignore[assignment]


# --- responses ---------------------------------------------------------------------------


class ItemOut(BaseModel):
    """A user of the list: never its password or hash (`password` is always "")."""

    id: int
    created_on: str
    modified_on: str
    access_list_id: int
    username: str
    password: Literal[""]
    hint: str


class ClientOut(BaseModel):
    id: int
    created_on: str
    modified_on: str
    access_list_id: int
    address: str
    directive: str
    meta: dict[str, Any]


class AccessListOut(BaseModel):
    """NPM's access-list object; `owner`, `items`, `clients`, `proxy_hosts` with ?expand."""

    model_config = ConfigDict(extra="forbid")

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    name: str
    meta: dict[str, Any]
    satisfy_any: bool
    pass_auth: bool
    proxy_host_count: int
    owner: Any = None
    items: list[ItemOut] | None = None
    clients: list[ClientOut] | None = None
    proxy_hosts: list[Any] | None = None
    # Portway extras, with ?expand=portway
    portway_login: bool | None = None
    portway_users: list[int] | None = None
