"""Request and response schemas of /api/portway/tunnels (NPM's style: snake_case fields,
`meta` for the client's own keys, `certificate_id` 0, an id or "new")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from portway.core.params import ObjectId
from portway.hosts.schemas import CertificateId, ClientMeta, DomainNames, ForwardHost, Port

MaxConnections = Annotated[int, Field(ge=1, le=100000, strict=True)]


class TunnelFields(BaseModel):
    """A tunnel host's fields, all optional (an update sends any subset)."""

    model_config = ConfigDict(extra="forbid")

    domain_names: DomainNames | None = None
    forward_host: ForwardHost | None = None
    forward_port: Port | None = None
    certificate_id: CertificateId | None = None
    ssl_forced: bool | None = None
    hsts_enabled: bool | None = None
    hsts_subdomains: bool | None = None
    http2_support: bool | None = None
    max_connections: MaxConnections | None = None
    # SNI passthrough: the client's TLS stream goes to the target untouched
    passthrough: bool | None = None
    # with passthrough: send the target a PROXY protocol header (the client's address)
    proxy_protocol: bool | None = None
    enabled: bool | None = None
    meta: ClientMeta | None = None
    # users who may open the tunnel with one of their API tokens (pwt_...)
    user_ids: Annotated[list[ObjectId], Field(max_length=1000)] | None = None


class TunnelCreate(TunnelFields):
    """POST body: names and target required."""

    domain_names: DomainNames
    forward_host: ForwardHost
    forward_port: Port


class TunnelUpdate(TunnelFields):
    """PUT body: any subset of the fields."""


class TunnelOut(BaseModel):
    """A tunnel host as the API answers it (server status merged into `meta`)."""

    id: int
    created_on: str
    modified_on: str
    owner_user_id: int
    domain_names: list[str]
    forward_host: str
    forward_port: int
    certificate_id: int
    ssl_forced: bool
    hsts_enabled: bool
    hsts_subdomains: bool
    http2_support: bool
    max_connections: int
    passthrough: bool
    proxy_protocol: bool
    enabled: bool
    user_ids: list[int]
    meta: dict[str, Any]


class KeyCreate(BaseModel):
    """POST .../keys: a name (1-100 characters) and an optional expiry."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    expires_on: datetime | None = None


class KeyOut(BaseModel):
    """An access key without its secret; `key` (the whole key) only in the create answer."""

    id: int
    tunnel_id: int
    name: str
    key_id: str
    expires_on: str | None
    expired: bool
    created_on: str
    key: str | None = None


class SessionOut(BaseModel):
    """A tunnel session, live or ended (bytes_in: client → target; bytes_out: back)."""

    session_id: str
    tunnel_id: int | None
    tunnel_name: str
    user_id: int | None
    credential: str
    source: str
    started_on: str
    ended_on: str | None
    bytes_in: int
    bytes_out: int
    end_reason: str
    live: bool
