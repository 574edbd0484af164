"""Tunnel host operations shared by the API and the UI.

Tunnel hosts are a host kind: create, update, delete and enable go through the generic
host services (portway.hosts.services: names claimed in the one name index, certificate
"new" requested as for proxy hosts, nginx status). This module adds what is the
tunnel's own: its users, its access keys, its sessions, and the state file the tunnel
service reads (`publish_state`, called after every change that can allow or forbid a
connection). Permissions: the "streams" section (TCP services).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import string
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portway.accounts.models import ApiToken, User
from portway.core.errors import FieldError, NotFound
from portway.hosts import services as hosts
from portway.nginx.models import AuditLogEntry
from portway.nginx.render import Paths
from portway.tunnels import protocol
from portway.tunnels.models import Tunnel, TunnelKey, TunnelSession
from portway.tunnels.schemas import KeyCreate, TunnelCreate, TunnelUpdate
from portway.tunnels.server import CONTROL_SOCKET, JOURNAL, STATE_FILE

log = logging.getLogger("portway.tunnels")
_ALPHABET = string.ascii_letters + string.digits


def paths() -> Paths:
    """The installation's paths (the tunnel directory is `paths().tunnels`)."""
    return Paths(Path(settings.DATA_DIR))


# ----- tunnel hosts ------------------------------------------------------------------------


def list_tunnels(user, query: str | None = None) -> QuerySet[Tunnel]:  # noqa: ANN001
    """Tunnel hosts the user may see, by first name; `query` filters by name."""
    return hosts.list_hosts(Tunnel, user, query).prefetch_related("users")


def get_tunnel(user, tunnel_id: int) -> Tunnel:  # noqa: ANN001
    """One visible tunnel host. Raises NotFound, PermissionDenied."""
    return hosts.get_host(Tunnel, user, tunnel_id)  # type: ignore[return-value]


def _users(user_ids: list[int] | None) -> list[User] | None:
    if user_ids is None:
        return None
    found = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
    for index, user_id in enumerate(user_ids):
        if user_id not in found:
            raise FieldError(f"user_ids/{index}", f"user {user_id} does not exist")
    return [found[i] for i in user_ids]


def _check_passthrough(payload: dict[str, Any], tunnel: Tunnel | None) -> None:
    """The passthrough rules, on the fields sent (`payload`, changed in place) and the
    stored ones (`tunnel`, None when creating).

    A passthrough host uses no certificate (the target's own is served): one sent with
    it is refused, a stored one is dropped when passthrough is turned on. The PROXY
    protocol header only exists on the passthrough path.

    Raises FieldError naming `certificate_id` or `proxy_protocol`.
    """
    passthrough = payload.get("passthrough")
    if passthrough is None:
        passthrough = tunnel.passthrough if tunnel is not None else False
    if passthrough:
        certificate = payload.get("certificate_id")
        if certificate not in (None, 0):
            raise FieldError(
                "certificate_id",
                "must be 0 for a passthrough tunnel host: the client gets the target's own "
                "certificate",
            )
        if tunnel is not None and tunnel.certificate_id:
            payload["certificate_id"] = 0
    proxy_protocol = payload.get("proxy_protocol")
    if proxy_protocol is None:
        proxy_protocol = tunnel.proxy_protocol if tunnel is not None else False
    if proxy_protocol and not passthrough:
        if "proxy_protocol" in payload:
            raise FieldError(
                "proxy_protocol", "needs passthrough: only a passthrough target gets the header"
            )
        payload["proxy_protocol"] = False  # passthrough turned off: the header goes too


def create_tunnel(user, data: dict[str, Any]) -> Tunnel:  # noqa: ANN001
    """Create a tunnel host from wire fields (see schemas.TunnelCreate).

    Raises InvalidFields/FieldError (400: nothing saved), PermissionDenied.
    """
    payload = dict(data)
    # every field's error before anything is saved
    values = hosts.parse(TunnelCreate, payload).model_dump(exclude_unset=True)
    _check_passthrough(values, None)
    users = _users(payload.pop("user_ids", None))
    # create_host commits, then waits for nginx to apply: not inside a transaction here
    tunnel = hosts.create_host(Tunnel, user, payload, schema=TunnelUpdate)
    if users is not None:
        tunnel.users.set(users)
    publish_state()
    return tunnel  # type: ignore[return-value]


def update_tunnel(user, tunnel_id: int, data: dict[str, Any]) -> Tunnel:  # noqa: ANN001
    """Change any subset of a tunnel host's fields. Raises as create_tunnel, NotFound."""
    payload = dict(data)
    values = hosts.parse(TunnelUpdate, payload).model_dump(exclude_unset=True)
    users = _users(payload.pop("user_ids", None))
    hosts.require_kind(Tunnel, user, "manage")
    current = get_tunnel(user, tunnel_id)  # NotFound before anything changes
    _check_passthrough(values, current)
    for name in ("certificate_id", "proxy_protocol"):
        if name in values and name not in payload:
            payload[name] = values[name]
    # update_host commits, then waits for nginx to apply: not inside a transaction here
    if payload:
        tunnel = hosts.update_host(Tunnel, user, tunnel_id, payload, schema=TunnelUpdate)
    else:
        tunnel = get_tunnel(user, tunnel_id)
    if users is not None:
        with transaction.atomic():
            tunnel.users.set(users)
            _audit(user, tunnel, "updated", {"user_ids": [u.pk for u in users]})
    publish_state()
    return tunnel  # type: ignore[return-value]


def delete_tunnel(user, tunnel_id: int) -> None:  # noqa: ANN001
    """Delete a tunnel host; its live sessions end. Raises NotFound, PermissionDenied."""
    hosts.delete_host(Tunnel, user, tunnel_id)
    publish_state()


def set_enabled(user, tunnel_id: int, enabled: bool) -> Tunnel:  # noqa: ANN001
    """Enable or disable a tunnel host; disabling ends its live sessions."""
    tunnel = hosts.set_host_enabled(Tunnel, user, tunnel_id, enabled)
    publish_state()
    return tunnel  # type: ignore[return-value]


# ----- access keys -------------------------------------------------------------------------


def _audit(user, tunnel: Tunnel, action: str, meta: dict[str, Any]) -> None:  # noqa: ANN001
    AuditLogEntry.objects.create(
        user=user,
        object_type="tunnel-host",
        object_id=tunnel.pk,
        action=action,
        meta={"domain_names": tunnel.domain_names, **meta},
    )


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_keys(user, tunnel_id: int) -> list[TunnelKey]:  # noqa: ANN001
    """A tunnel's access keys (no secrets: they are not stored)."""
    return list(get_tunnel(user, tunnel_id).keys.all())


def create_key(user, tunnel_id: int, data: dict[str, Any]) -> tuple[TunnelKey, str]:  # noqa: ANN001
    """A new access key: (row, the whole key `ptk_<key_id>_<secret>`, shown once).

    Raises InvalidFields (name 1-100 characters, expires_on a date-time in the future),
    NotFound, PermissionDenied.
    """
    hosts.require_kind(Tunnel, user, "manage")
    tunnel = get_tunnel(user, tunnel_id)
    values = hosts.parse(KeyCreate, data)
    name = values.name.strip()
    if not name or not name.isprintable():
        raise FieldError("name", "must be 1 to 100 printable characters")
    expires = values.expires_on
    if expires is not None:
        if timezone.is_naive(expires):
            expires = timezone.make_aware(expires, dt.UTC)
        if expires <= timezone.now():
            raise FieldError("expires_on", "must be in the future")
    secret = secrets.token_urlsafe(32)  # 43 characters
    with transaction.atomic():
        row = TunnelKey.objects.create(
            tunnel=tunnel,
            name=name,
            key_id=_random(16),
            secret_hash=protocol.secret_hash(secret),
            expires_on=expires,
            created_by=user,
        )
        _audit(user, tunnel, "key-created", {"key": name, "key_id": row.key_id})
    publish_state()
    return row, f"{protocol.KEY_PREFIX}{row.key_id}_{secret}"


def revoke_key(user, tunnel_id: int, key_id: int) -> None:  # noqa: ANN001
    """Revoke (delete) an access key; sessions it opened end within a second."""
    hosts.require_kind(Tunnel, user, "manage")
    tunnel = get_tunnel(user, tunnel_id)
    row = tunnel.keys.filter(pk=key_id).first()
    if row is None:
        raise NotFound(f"Key {key_id} of tunnel host {tunnel_id} not found")
    with transaction.atomic():
        _audit(user, tunnel, "key-revoked", {"key": row.name, "key_id": row.key_id})
        row.delete()
    publish_state()


# ----- the tunnel service's state ----------------------------------------------------------


def _epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def build_state() -> dict[str, Any]:
    """What the tunnel service needs, by tunnel id (see portway.tunnels.server)."""
    tunnels: dict[str, Any] = {}
    rows = Tunnel.objects.prefetch_related("keys", "users").select_related("owner")
    for tunnel in rows:
        allowed = [u for u in [tunnel.owner, *tunnel.users.all()] if not u.is_disabled]
        tokens = ApiToken.objects.filter(
            user__in=allowed, expires_on__gt=timezone.now()
        ).select_related("user")
        tunnels[str(tunnel.pk)] = {
            "name": tunnel.first_domain,
            "enabled": tunnel.enabled,
            "target": [tunnel.forward_host, tunnel.forward_port],
            "max_connections": tunnel.max_connections,
            "keys": {
                key.key_id: {
                    "hash": key.secret_hash,
                    "label": f"key {key.name}",
                    "expires": _epoch(key.expires_on),
                }
                for key in tunnel.keys.all()
            },
            "tokens": {
                token.key: {
                    "hash": token.secret_hash,
                    "label": f"user {token.user.email} (token {token.name})",
                    "user_id": token.user_id,
                    "expires": _epoch(token.expires_on),
                }
                for token in tokens
            },
        }
    return {"version": 1, "tunnels": tunnels}


def publish_state() -> None:
    """Write state.json atomically (0600, rename) and ask the service to read it."""
    directory = paths().tunnels
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o711)  # nginx's workers reach service.sock; nothing is listable
    text = json.dumps(build_state())
    temporary = directory / f".{STATE_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, directory / STATE_FILE)
    control("reload")


def control(op: str, **fields: Any) -> Any:
    """One request to the tunnel service's control socket; None if it is not running."""
    path = paths().tunnels / CONTROL_SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        return json.loads(answer) if answer else None
    except (OSError, ValueError):
        return None


# ----- sessions ----------------------------------------------------------------------------


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def ingest_journal() -> int:
    """Move the service's session journal into TunnelSession rows and the audit log.

    The journal is renamed first (the service reopens it for each record), so records
    are read exactly once even with several callers. Returns how many were read.
    """
    directory = paths().tunnels
    journal = directory / JOURNAL
    taking = directory / f".{JOURNAL}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.replace(journal, taking)
    except FileNotFoundError:
        return 0
    lines = taking.read_text().splitlines()
    count = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        count += 1
        tunnel_id = record.get("tunnel_id")
        tunnel = Tunnel.objects.filter(pk=tunnel_id).first()
        user_id = record.get("user_id")
        if user_id is not None and not User.objects.filter(pk=user_id).exists():
            user_id = None
        session, _ = TunnelSession.objects.get_or_create(
            session_id=record["session"],
            defaults={
                "tunnel": tunnel,
                "tunnel_name": record.get("tunnel_name", ""),
                "user_id": user_id,
                "credential": record.get("credential", "")[:200],
                "source": record.get("source", "")[:64],
                "started_on": _when(record["started"]),
            },
        )
        if record["event"] == "end":
            session.ended_on = _when(record["at"])
            session.bytes_in = record.get("bytes_in", 0)
            session.bytes_out = record.get("bytes_out", 0)
            session.end_reason = record.get("reason", "")[:200]
            session.save()
            AuditLogEntry.objects.create(
                user_id=user_id,
                object_type="tunnel-host",
                object_id=tunnel_id or 0,
                action="session",
                source_address=_address(record.get("source")),
                meta={
                    "domain_names": [record.get("tunnel_name", "")],
                    "session": record["session"],
                    "credential": session.credential,
                    "started_on": session.started_on.isoformat(),
                    "ended_on": session.ended_on.isoformat(),
                    "bytes_in": session.bytes_in,
                    "bytes_out": session.bytes_out,
                    "end_reason": session.end_reason,
                },
            )
    taking.unlink()
    return count


def _address(text: str | None) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text or ""))
    except ValueError:
        return None


def live_sessions(user, tunnel_id: int | None = None) -> list[dict[str, Any]]:  # noqa: ANN001
    """Sessions open now on the tunnels the user may see (the service's answer)."""
    visible = set(hosts.list_hosts(Tunnel, user).values_list("pk", flat=True))
    answer = control("sessions") or []
    return [
        s
        for s in answer
        if s["tunnel_id"] in visible and (tunnel_id is None or s["tunnel_id"] == tunnel_id)
    ]


def list_sessions(user, tunnel_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:  # noqa: ANN001
    """Live sessions first, then the latest ended ones (wire dicts, see SessionOut)."""
    ingest_journal()
    live = live_sessions(user, tunnel_id)
    live_ids = {s["session"] for s in live}
    visible = hosts.list_hosts(Tunnel, user).values_list("pk", flat=True)
    rows = TunnelSession.objects.filter(tunnel_id__in=visible)
    if tunnel_id is not None:
        rows = rows.filter(tunnel_id=tunnel_id)
    out = [
        {
            "session_id": s["session"],
            "tunnel_id": s["tunnel_id"],
            "tunnel_name": s["tunnel_name"],
            "user_id": s["user_id"],
            "credential": s["credential"],
            "source": s["source"],
            "started_on": _when(s["started"]).isoformat(),
            "ended_on": None,
            "bytes_in": s["bytes_in"],
            "bytes_out": s["bytes_out"],
            "end_reason": "",
            "live": True,
        }
        for s in live
    ]
    for row in rows.exclude(session_id__in=live_ids).filter(ended_on__isnull=False)[:limit]:
        out.append(
            {
                "session_id": row.session_id,
                "tunnel_id": row.tunnel_id,
                "tunnel_name": row.tunnel_name,
                "user_id": row.user_id,
                "credential": row.credential,
                "source": row.source,
                "started_on": row.started_on.isoformat(),
                "ended_on": row.ended_on.isoformat() if row.ended_on else None,
                "bytes_in": row.bytes_in,
                "bytes_out": row.bytes_out,
                "end_reason": row.end_reason,
                "live": False,
            }
        )
    return out


def kill_session(user, session_id: str) -> None:  # noqa: ANN001
    """End a live session (manage permission on its tunnel). Raises NotFound."""
    hosts.require_kind(Tunnel, user, "manage")
    session = next((s for s in live_sessions(user) if s["session"] == session_id), None)
    if session is None:
        raise NotFound(f"Live session {session_id} not found")
    tunnel = get_tunnel(user, session["tunnel_id"])
    control("kill", session=session_id)
    _audit(user, tunnel, "session-killed", {"session": session_id})
