"""Wire schemas of NPM's host objects: proxy, redirection and 404 hosts, streams (request
validation at the edge, and the responses /api/schema documents).

Every string that reaches nginx config passes a validator from portway.core.fields.
Unknown properties are rejected; numeric strings and 0/1 booleans are accepted because
NPM clients send them (pydantic's lax mode does exactly that).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from portway.accounts.schemas import UserOut
from portway.certificates.api import CertificateOut
from portway.core import fields, wire
from portway.core.validation import given


def _not_bool(value: Any) -> Any:
    # pydantic's lax int takes true/false as 1/0; a boolean is never a port or an id.
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


NoBool = BeforeValidator(_not_bool)
DomainName = Annotated[str, AfterValidator(fields.domain_name)]
ForwardHost = Annotated[str, Field(max_length=255), AfterValidator(fields.forward_host)]
LocationForwardHost = Annotated[
    str,
    Field(max_length=255),
    AfterValidator(partial(fields.forward_host, path_field="forward_path")),
]
ObjectId = Annotated[int, Field(ge=0), NoBool]
_OBJECT_ID: TypeAdapter[int] = TypeAdapter(ObjectId)
_PORT_NUMBER: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=1, le=65535), NoBool])


def _port(value: Any) -> int:
    """A TCP port, 1-65535 (numeric strings too, as NPM clients send); one clear error.

    pydantic would answer "Input should be greater than or equal to 1" or "… unable to
    parse string as an integer" depending on the mistake; a person needs the range.
    """
    try:
        return _PORT_NUMBER.validate_python(value)
    except ValidationError:
        raise ValueError(f"must be a port number from 1 to 65535, not {given(value)}") from None


Port = Annotated[
    int,
    PlainValidator(_port),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535}),
]


def _certificate_id(value: Any) -> int | str:
    """0 (none), a certificate id (numeric strings too), or "new"; one clear error otherwise.

    A plain `int | Literal["new"]` union reports one error per member, with pydantic's
    member names in the path (`certificate_id/constrained-int ...`).
    """
    if value == "new":
        return value
    try:
        return _OBJECT_ID.validate_python(value)
    except ValidationError:
        raise ValueError('must be 0 (none), the id of a certificate, or "new"') from None


CertificateId = Annotated[
    int | str,
    PlainValidator(_certificate_id),
    WithJsonSchema(
        {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": ["new"]}]}
    ),
]
AdvancedConfig = Annotated[str, Field(max_length=65536), AfterValidator(fields.balanced_config)]


def _storable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    problem = wire.meta_problem(meta)
    if problem:
        raise ValueError(problem)
    return meta


ClientMeta = Annotated[dict[str, Any], AfterValidator(_storable_meta)]
"""The client's own `meta` keys: capped as certificates' (64 KiB of JSON, 16 levels)."""


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"lists {name} twice: remove one of them")
        seen.add(name)
    return names


DomainNames = Annotated[
    list[DomainName], Field(min_length=1, max_length=100), AfterValidator(_unique)
]


class Location(BaseModel):
    """A custom location: requests under `path` go to another upstream."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None  # NPM's UI sends one; ignored
    path: Annotated[str, Field(max_length=1024), AfterValidator(fields.location_path)]
    forward_scheme: Literal["http", "https"] = "http"
    forward_host: LocationForwardHost
    forward_port: Port
    forward_path: Annotated[str | None, AfterValidator(fields.forward_path)] = ""
    advanced_config: AdvancedConfig | None = ""


class ProxyHostFields(BaseModel):
    """Fields shared by create and update; all optional here."""

    model_config = ConfigDict(extra="forbid")

    domain_names: DomainNames | None = None
    forward_scheme: Literal["http", "https"] | None = None
    forward_host: ForwardHost | None = None
    forward_port: Port | None = None
    access_list_id: ObjectId | None = None
    certificate_id: CertificateId | None = None
    ssl_forced: bool | None = None
    hsts_enabled: bool | None = None
    hsts_subdomains: bool | None = None
    http2_support: bool | None = None
    block_exploits: bool | None = None
    caching_enabled: bool | None = None
    allow_websocket_upgrade: bool | None = None
    trust_forwarded_proto: bool | None = None
    cloudflare_only: bool | None = None
    advanced_config: AdvancedConfig | None = None
    locations: Annotated[list[Location], Field(max_length=100)] | None = None
    enabled: bool | None = None
    meta: ClientMeta | None = None

    @field_validator("locations")
    @classmethod
    def _distinct_paths(cls, value: list[Location] | None) -> list[Location] | None:
        if value:
            # `/api` and `/api/` (or `= /api`) become the same nginx location
            seen: dict[str, str] = {}
            for loc in value:
                for modifier, path in fields.location_blocks(loc.path):
                    key = fields.location_clash_key(modifier, path)
                    if key in seen:
                        if seen[key] == loc.path:
                            raise ValueError(f"has the path {loc.path!r} twice")
                        raise ValueError(
                            f"has the paths {seen[key]!r} and {loc.path!r}, which nginx "
                            "treats as the same location; keep one"
                        )
                    seen[key] = loc.path
        return value


class ProxyHostCreate(ProxyHostFields):
    """POST body: the four routing fields are required."""

    domain_names: DomainNames
    forward_scheme: Literal["http", "https"]
    forward_host: ForwardHost
    forward_port: Port


class ProxyHostUpdate(ProxyHostFields):
    """PUT body: any subset of the fields.

    The four routing fields may be left out but not sent as null: a host always has them,
    and a null would otherwise be read as "not given" and silently change nothing.
    """

    domain_names: DomainNames = None  # type: ignore[assignment]
    forward_scheme: Literal["http", "https"] = None  # type: ignore[assignment]
    forward_host: ForwardHost = None  # type: ignore[assignment]
    forward_port: Port = None  # type: ignore[assignment]


def _http_code(value: Any) -> int:
    """A redirect status 300-308 (numeric strings too); one clear error otherwise."""
    try:
        code = _OBJECT_ID.validate_python(value)
    except ValidationError:
        code = None
    if code is None or not 300 <= code <= 308:
        raise ValueError(f"must be a redirect status code from 300 to 308, not {given(value)}")
    return code


HttpCode = Annotated[
    int,
    PlainValidator(_http_code),
    WithJsonSchema({"type": "integer", "minimum": 300, "maximum": 308}),
]
RedirectTarget = Annotated[str, Field(max_length=1024), AfterValidator(fields.redirect_target)]
RedirectScheme = Literal["auto", "http", "https"]


class SiteFields(BaseModel):
    """The fields every host kind shares (names, TLS options, advanced config); optional.

    NPM's 404 host has exactly these; its wire object has no `block_exploits`."""

    model_config = ConfigDict(extra="forbid")

    domain_names: DomainNames | None = None
    certificate_id: CertificateId | None = None
    ssl_forced: bool | None = None
    hsts_enabled: bool | None = None
    hsts_subdomains: bool | None = None
    http2_support: bool | None = None
    advanced_config: AdvancedConfig | None = None
    enabled: bool | None = None
    meta: ClientMeta | None = None


class RedirectionHostFields(SiteFields):
    """A redirection host's fields, all optional here (NPM's redirection-host object)."""

    block_exploits: bool | None = None  # NPM's 404 host has no such option
    # Portway: NPM's redirection host has no access list; accepted here (an NPM client never
    # sends it) and answered by /api/portway/redirection-hosts, not in NPM's object
    access_list_id: ObjectId | None = None

    forward_http_code: HttpCode | None = None
    forward_scheme: RedirectScheme | None = None
    forward_domain_name: RedirectTarget | None = None
    preserve_path: bool | None = None


class RedirectionHostCreate(RedirectionHostFields):
    """POST body: names, scheme and target required; the code defaults to 302 (NPM)."""

    domain_names: DomainNames
    forward_scheme: RedirectScheme
    forward_domain_name: RedirectTarget
    forward_http_code: HttpCode = 302


class RedirectionHostUpdate(RedirectionHostFields):
    """PUT body: any subset; the routing fields may be left out but not sent as null."""

    domain_names: DomainNames = None  # type: ignore[assignment]
    forward_scheme: RedirectScheme = None  # type: ignore[assignment]
    forward_domain_name: RedirectTarget = None  # type: ignore[assignment]
    forward_http_code: HttpCode = None  # type: ignore[assignment]


class DeadHostCreate(SiteFields):
    """POST body of a 404 host: names required."""

    domain_names: DomainNames


class DeadHostUpdate(SiteFields):
    """PUT body of a 404 host: any subset; names may be left out but not sent as null."""

    domain_names: DomainNames = None  # type: ignore[assignment]


# --- responses -----------------------------------------------------------------------------
# What the API answers with, so /api/schema documents it. Extra keys are kept (`extra=
# "allow"`): a location or `meta` holds what the client sent, and a response must return it.


class LocationOut(BaseModel):
    """A custom location as stored (see Location)."""

    model_config = ConfigDict(extra="allow")

    path: str
    forward_scheme: str = "http"
    forward_host: str
    forward_port: int
    forward_path: str = ""
    advanced_config: str = ""


class ProxyHostMeta(BaseModel):
    """The client's own `meta` keys, and the server's status of the host in nginx."""

    model_config = ConfigDict(extra="allow")

    nginx_online: bool = Field(description="nginx accepted the host's config")
    nginx_err: str | None = Field(description="nginx's error when it rejected the config")
    nginx_serving_previous: bool = Field(
        description="Portway: the rejected edit is not live; the previous config still serves"
    )
    certificate_warnings: list[str] = Field(
        default_factory=list,
        description="Portway: why the host's certificate may be refused by browsers "
        "(names it does not cover, expired, not yet valid); saved all the same",
    )


class ProxyHostOut(BaseModel):
    """NPM's proxy-host object; `owner`, `certificate`, `access_list` only with ?expand."""

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    domain_names: list[str]
    forward_scheme: str
    forward_host: str
    forward_port: int
    access_list_id: int
    certificate_id: int
    advanced_config: str
    locations: list[LocationOut]
    meta: ProxyHostMeta
    ssl_forced: bool
    caching_enabled: bool
    block_exploits: bool
    allow_websocket_upgrade: bool
    http2_support: bool
    enabled: bool
    hsts_enabled: bool
    hsts_subdomains: bool
    trust_forwarded_proto: bool
    cloudflare_only: bool = Field(
        default=False,
        description="Portway: only Cloudflare reaches the host (Authenticated Origin Pulls)",
    )
    owner: UserOut | None = None
    certificate: CertificateOut | None = None
    access_list: dict[str, Any] | None = None


class SiteOut(BaseModel):
    """What every host kind answers with (see ProxyHostOut for the proxy host)."""

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    domain_names: list[str]
    certificate_id: int
    ssl_forced: bool
    hsts_enabled: bool
    hsts_subdomains: bool
    http2_support: bool
    advanced_config: str
    enabled: bool
    meta: ProxyHostMeta
    owner: UserOut | None = None
    certificate: CertificateOut | None = None


class RedirectionHostOut(SiteOut):
    """NPM's redirection-host object; `owner`, `certificate` only with ?expand."""

    block_exploits: bool

    forward_http_code: int
    forward_scheme: str
    forward_domain_name: str
    preserve_path: bool


class PortwayRedirectionHostOut(RedirectionHostOut):
    """Portway's view of a redirection host (/api/portway/redirection-hosts): NPM's object
    plus the access list NPM's document has no room for."""

    access_list_id: int = Field(description="Portway: the host's access list (0: none)")
    access_list: dict[str, Any] | None = None


class DeadHostOut(SiteOut):
    """NPM's dead-host (404 host) object; `owner`, `certificate` only with ?expand."""


# --- streams -------------------------------------------------------------------------------

ForwardingHost = Annotated[
    str,
    Field(max_length=255),
    AfterValidator(partial(fields.forward_host, port_field="forwarding_port", scheme_field=None)),
]


class StreamFields(BaseModel):
    """A stream's fields, all optional here (NPM's stream object)."""

    model_config = ConfigDict(extra="forbid")

    incoming_port: Port | None = None
    forwarding_host: ForwardingHost | None = None
    forwarding_port: Port | None = None
    tcp_forwarding: bool | None = None
    udp_forwarding: bool | None = None
    certificate_id: CertificateId | None = None
    enabled: bool | None = None
    meta: ClientMeta | None = None


class StreamCreate(StreamFields):
    """POST body: port, host and forwarding port required; TCP on and UDP off by
    default (NPM).

    `domain_names` is in NPM's body for requesting a certificate with the stream
    (`certificate_id: "new"`); it is validated and, as Portway does not request
    certificates for streams, not stored (the service refuses "new" with the reason).
    """

    domain_names: Annotated[list[DomainName], Field(max_length=100)] | None = None
    incoming_port: Port
    forwarding_host: ForwardingHost
    forwarding_port: Port
    tcp_forwarding: bool = True
    udp_forwarding: bool = False


class StreamUpdate(StreamFields):
    """PUT body: any subset; the routing fields may be left out but not sent as null."""

    incoming_port: Port = None  # type: ignore[assignment]
    forwarding_host: ForwardingHost = None  # type: ignore[assignment]
    forwarding_port: Port = None  # type: ignore[assignment]
    tcp_forwarding: bool = None  # type: ignore[assignment]
    udp_forwarding: bool = None  # type: ignore[assignment]


class StreamMeta(BaseModel):
    """The client's own `meta` keys, and the server's status of the stream in nginx."""

    model_config = ConfigDict(extra="allow")

    nginx_online: bool = Field(description="nginx serves the stream (its port is bound)")
    nginx_err: str | None = Field(
        description="nginx's error when it rejected the stream (e.g. the port is held by "
        "another program)"
    )
    nginx_serving_previous: bool = Field(
        description="Portway: the rejected edit is not live; the previous config still serves"
    )


class StreamOut(BaseModel):
    """NPM's stream object; `owner`, `certificate` only with ?expand."""

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    incoming_port: int
    forwarding_host: str
    forwarding_port: int
    tcp_forwarding: bool
    udp_forwarding: bool
    certificate_id: int
    enabled: bool
    meta: StreamMeta
    owner: UserOut | None = None
    certificate: CertificateOut | None = None
