"""Import an Nginx Proxy Manager installation into Portway.

`import_npm(database, files, actor, dry_run)` maps NPM's rows (see portway.npmimport.source)
onto Portway's objects through each app's public import function, in one transaction
(rolled back for a dry run), and returns a report of what was imported, what was skipped
and why. Soft-deleted rows (`is_deleted = 1`) are skipped. Objects already imported from
the same NPM rows (ImportedObject) are skipped, so a second run adds nothing.

Order: users (and their permissions), certificates, access lists, proxy hosts,
redirection hosts, 404 hosts, streams, the default-site setting. NPM ids are mapped to
the new Portway ids on the way (a host's certificate_id and access_list_id).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from portway.access.htpasswd import hash_password
from portway.access.models import AccessList
from portway.access.services import import_access_list
from portway.accounts.models import Permission, User
from portway.accounts.services import clean_email, clean_name, clean_nickname
from portway.certificates import dns_providers
from portway.certificates.models import Certificate
from portway.certificates.services import import_certificate
from portway.core.errors import FieldError, PortwayError
from portway.hosts.models import DeadHost, HostBase, ProxyHost, RedirectionHost, Stream
from portway.hosts.services import import_host, import_stream
from portway.nginx.models import AuditLogEntry
from portway.nginx.services import get_default_site, import_default_site
from portway.npmimport.models import ImportedObject
from portway.npmimport.source import NpmDatabase, NpmFiles, SourceError

log = logging.getLogger("portway.npmimport")

LEVELS = ("hidden", "view", "manage")
SECTIONS = (
    "proxy_hosts",
    "redirection_hosts",
    "dead_hosts",
    "streams",
    "access_lists",
    "certificates",
)
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
NPM_DEFAULT_PASSWORD = "changeme"  # NPM's first admin, admin@example.com, documented
# NPM's certificate meta keys Portway keeps (the rest is NPM's bookkeeping)
ACME_META_KEYS = ("letsencrypt_email", "letsencrypt_agree", "dns_challenge", "key_type")
HOST_META_DROP = ("nginx_online", "nginx_err", "dns_provider_credentials")


@dataclass
class Entry:
    """One line of the report: `outcome` is "imported" or "skipped"."""

    kind: str
    npm_id: int | str
    name: str
    outcome: str
    reason: str = ""

    def line(self) -> str:
        text = f"{self.outcome:8} {self.kind} {self.npm_id} ({self.name})"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass
class Report:
    """What an import did (or, for a dry run, would do)."""

    source: str
    dry_run: bool
    entries: list[Entry] = field(default_factory=list)

    def add(
        self, kind: str, row: dict[str, Any], name: str, outcome: str, reason: str = ""
    ) -> None:
        self.entries.append(Entry(kind, row.get("id", ""), name, outcome, reason))

    @property
    def imported(self) -> list[Entry]:
        return [e for e in self.entries if e.outcome == "imported"]

    @property
    def skipped(self) -> list[Entry]:
        return [e for e in self.entries if e.outcome == "skipped"]

    def text(self) -> str:
        """The report as people read it (the CLI prints it, the UI shows it)."""
        head = "Dry run: nothing was changed. " if self.dry_run else ""
        lines = [
            f"{head}Import from {self.source}: {len(self.imported)} imported, "
            f"{len(self.skipped)} skipped."
        ]
        lines += [e.line() for e in self.entries]
        return "\n".join(lines)


def _is_npm_default_password(secret: str) -> bool:
    """Whether the bcrypt hash `secret` is of NPM's published first password."""
    import bcrypt

    try:
        return bcrypt.checkpw(NPM_DEFAULT_PASSWORD.encode(), secret.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


class _DryRunDone(Exception):
    """Raised at the end of a dry run to roll its transaction back."""


def _live(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not int(r.get("is_deleted") or 0)]


def _flag(value: Any) -> bool:
    return bool(int(value or 0)) if not isinstance(value, bool) else value


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def _names(row: dict[str, Any]) -> str:
    names = row.get("domain_names")
    return ", ".join(str(n) for n in names) if isinstance(names, list) else ""


class _Importer:
    def __init__(self, db: NpmDatabase, files: NpmFiles, actor: User | None, dry_run: bool) -> None:
        self.db = db
        self.files = files
        self.actor = actor
        self.dry_run = dry_run
        self.report = Report(db.label, dry_run)
        self.users: dict[int, User] = {}
        self.certificates: dict[int, Certificate] = {}
        self.access_lists: dict[int, AccessList] = {}

    # --- bookkeeping ----------------------------------------------------------------
    def _already(self, kind: str, row: dict[str, Any], model: type) -> Any:
        marker = ImportedObject.objects.filter(
            kind=kind, npm_id=row["id"], npm_created_on=row["created_on"]
        ).first()
        if marker is None:
            return None
        found = model.objects.filter(pk=marker.object_id).first()
        if found is None:  # deleted in Portway since: import it again
            marker.delete()
        return found

    def _mark(self, kind: str, row: dict[str, Any], obj: Any) -> None:
        ImportedObject.objects.create(
            kind=kind, npm_id=row["id"], npm_created_on=row["created_on"], object_id=obj.pk
        )

    def _owner(self, row: dict[str, Any]) -> User:
        return self.users.get(int(row.get("owner_user_id") or 0)) or self.actor

    # --- users ----------------------------------------------------------------------
    def import_users(self) -> None:
        secrets = {
            int(a["user_id"]): str(a.get("secret") or "")
            for a in _live(self.db.rows("auth"))
            if a.get("type") == "password"
        }
        permissions = {int(p["user_id"]): p for p in self.db.rows("user_permission")}
        for row in _live(self.db.rows("user")):
            email = str(row.get("email") or "")
            try:
                email = clean_email(email)
                existing = User.objects.filter(email__iexact=email).first()
                if existing is not None and self._already("user", row, User) is not None:
                    self.users[int(row["id"])] = existing
                    self.report.add("user", row, email, "skipped", "already imported")
                    continue
                if existing is not None:
                    self.users[int(row["id"])] = existing
                    self.report.add(
                        "user",
                        row,
                        email,
                        "skipped",
                        "a Portway user with this e-mail exists; NPM objects owned by this "
                        "user go to that account",
                    )
                    continue
                user = self._create_user(row, email, secrets.get(int(row["id"]), ""))
                reasons = self._set_permission(user, permissions.get(int(row["id"])))
            except PortwayError as exc:
                self.report.add("user", row, email, "skipped", _reason(exc))
                continue
            self.users[int(row["id"])] = user
            self._mark("user", row, user)
            self.report.add("user", row, email, "imported", "; ".join(reasons))
        if self.actor is None:
            self.actor = (
                User.objects.filter(is_admin=True, is_disabled=False).order_by("id").first()
            )

    def _create_user(self, row: dict[str, Any], email: str, secret: str) -> User:
        roles = row.get("roles") if isinstance(row.get("roles"), list) else []
        user = User(
            email=email,
            name=clean_name(row.get("name") or email.split("@")[0]),
            nickname=clean_nickname(str(row.get("nickname") or "")[:100]),
            is_admin="admin" in roles,
            is_disabled=_flag(row.get("is_disabled")),
        )
        if _is_npm_default_password(secret):
            user.set_unusable_password()  # never carry a published password over
        elif secret.startswith(BCRYPT_PREFIXES) and len(secret) == 60:
            # Django's BCryptPasswordHasher stores "bcrypt$" + bcrypt's own string
            user.password = "bcrypt$" + secret
        else:
            user.set_unusable_password()
        user.save()
        return user

    def _set_permission(self, user: User, row: dict[str, Any] | None) -> list[str]:
        values: dict[str, str] = {}
        notes = []
        if row is None:
            notes.append("no NPM permission row: every section hidden")
        for section in SECTIONS:
            level = str((row or {}).get(section) or "hidden")
            if level not in LEVELS:
                notes.append(f"{section} {level!r} is not a level; hidden")
                level = "hidden"
            values[section] = level
        visibility = str((row or {}).get("visibility") or "user")
        if visibility not in ("all", "user"):
            notes.append(f"visibility {visibility!r} unknown; user")
            visibility = "user"
        Permission.objects.update_or_create(
            user=user, defaults={"visibility": visibility, **values}
        )
        if not user.has_usable_password():
            notes.append(
                "no password carried over (none in NPM, or still NPM's default "
                f"{NPM_DEFAULT_PASSWORD!r}): set one in Portway"
            )
        return notes

    # --- certificates ---------------------------------------------------------------
    def import_certificates(self) -> None:
        for row in _live(self.db.rows("certificate")):
            name = str(row.get("nice_name") or "") or _names(row)
            found = self._already("certificate", row, Certificate)
            if found is not None:
                self.certificates[int(row["id"])] = found
                self.report.add("certificate", row, name, "skipped", "already imported")
                continue
            try:
                cert, note = self._certificate(row, name)
            except (PortwayError, SourceError) as exc:
                self.report.add("certificate", row, name, "skipped", _reason(exc))
                continue
            self.certificates[int(row["id"])] = cert
            self._mark("certificate", row, cert)
            self.report.add("certificate", row, name, "imported", note)

    def _certificate(self, row: dict[str, Any], name: str) -> tuple[Certificate, str]:
        meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
        provider = row.get("provider")
        owner = self._owner(row)
        if provider == "other":
            fullchain, key = self.files.custom_certificate(row["id"])
            cert = import_certificate(
                owner, "other", name, fullchain, key, write_files=not self.dry_run
            )
            return cert, ""
        if provider != "letsencrypt":
            raise FieldError("provider", f"{provider!r} is not a provider Portway knows")
        fullchain, key = self.files.letsencrypt_certificate(row["id"])
        kept = {k: meta[k] for k in ACME_META_KEYS if k in meta}
        kept["dns_challenge"] = _flag(kept.get("dns_challenge"))
        if kept.get("key_type") not in ("rsa", "ecdsa"):
            kept.pop("key_type", None)
        credentials = None
        if kept["dns_challenge"]:
            try:
                dns = dns_providers.get(meta.get("dns_provider"))
                credentials = str(meta.get("dns_provider_credentials") or "")
                dns_providers.parse_credentials(dns, credentials)
            except FieldError as exc:
                # Served as it is, but Portway cannot renew it: say so, keep it as custom.
                cert = import_certificate(
                    owner, "other", name, fullchain, key, write_files=not self.dry_run
                )
                return cert, (
                    f"imported as a custom certificate, it will NOT be renewed: "
                    f"{_reason(exc)}; request a new one in Portway before it expires"
                )
            kept["dns_provider"] = dns.id
            seconds = meta.get("propagation_seconds")
            if isinstance(seconds, int) and not isinstance(seconds, bool) and 0 <= seconds <= 3600:
                kept["propagation_seconds"] = seconds
        requested = [str(n) for n in row.get("domain_names") or []]
        email = str(meta.get("letsencrypt_email") or owner.email)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        acme_state = {
            "status": "valid",
            "kind": "issue",
            "step": "Imported from Nginx Proxy Manager",
            "domains": {n: "valid" for n in requested},
            "requested": requested,
            "email": email,
            "error": "",
            "finished_on": now,
            "renewal": {"failures": 0, "last_error": "", "next_attempt": None},
            "imported": "npm",
        }
        cert = import_certificate(
            owner,
            "letsencrypt",
            name,
            fullchain,
            key,
            meta=kept,
            acme_state=acme_state,
            dns_credentials=credentials,
            write_files=not self.dry_run,
        )
        return cert, "renewed by Portway (ACME) before it expires"

    # --- access lists ---------------------------------------------------------------
    def import_access_lists(self) -> None:
        items: dict[int, list[dict[str, Any]]] = {}
        for item in self.db.rows("access_list_auth"):
            items.setdefault(int(item["access_list_id"]), []).append(item)
        clients: dict[int, list[dict[str, Any]]] = {}
        for client in self.db.rows("access_list_client"):
            clients.setdefault(int(client["access_list_id"]), []).append(client)
        for row in _live(self.db.rows("access_list")):
            name = str(row.get("name") or "")
            found = self._already("access_list", row, AccessList)
            if found is not None:
                self.access_lists[int(row["id"])] = found
                self.report.add("access list", row, name, "skipped", "already imported")
                continue
            hashes_in_file = self.files.htpasswd(row["id"])
            hashes, notes = [], []
            for item in items.get(int(row["id"]), []):
                username = str(item.get("username") or "")
                if username in hashes_in_file:
                    hashes.append((username, hashes_in_file[username]))
                elif item.get("password"):
                    # NPM's database keeps the password itself; its htpasswd file is gone
                    hashes.append((username, hash_password(str(item["password"]))))
                    notes.append(f"{username}: no htpasswd line, hashed from NPM's database")
                else:
                    notes.append(f"user {username!r} skipped: no password in NPM's files")
            data = {
                "name": name,
                "satisfy_any": _flag(row.get("satisfy_any")),
                "pass_auth": _flag(row.get("pass_auth")),
                "clients": [
                    {"address": str(c.get("address") or ""), "directive": c.get("directive")}
                    for c in clients.get(int(row["id"]), [])
                ],
            }
            try:
                access_list = import_access_list(self.actor, self._owner(row), data, hashes)
            except PortwayError as exc:
                self.report.add("access list", row, name, "skipped", _reason(exc))
                continue
            self.access_lists[int(row["id"])] = access_list
            self._mark("access_list", row, access_list)
            self.report.add("access list", row, name, "imported", "; ".join(notes))

    # --- hosts ----------------------------------------------------------------------
    def _host_common(self, row: dict[str, Any], notes: list[str]) -> tuple[dict, Any]:
        meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
        data: dict[str, Any] = {
            "domain_names": row.get("domain_names") or [],
            "ssl_forced": _flag(row.get("ssl_forced")),
            "hsts_enabled": _flag(row.get("hsts_enabled")),
            "hsts_subdomains": _flag(row.get("hsts_subdomains")),
            "http2_support": _flag(row.get("http2_support")),
            "advanced_config": str(row.get("advanced_config") or ""),
            "enabled": _flag(row.get("enabled")),
            "meta": {k: v for k, v in meta.items() if k not in HOST_META_DROP},
        }
        certificate = None
        cert_id = int(row.get("certificate_id") or 0)
        if cert_id:
            certificate = self.certificates.get(cert_id)
            if certificate is None:
                notes.append(
                    f"certificate {cert_id} was not imported (see above): served without "
                    "TLS until you pick a certificate"
                )
        return data, certificate

    def _import_hosts(self, table: str, kind: str, model: type[HostBase]) -> None:
        for row in _live(self.db.rows(table)):
            name = _names(row)
            if self._already(table, row, model) is not None:
                self.report.add(kind, row, name, "skipped", "already imported")
                continue
            notes: list[str] = []
            data, certificate = self._host_common(row, notes)
            data.update(self._kind_fields(table, row, notes))
            try:
                host = import_host(model, self.actor, self._owner(row), data, certificate)
            except PortwayError as exc:
                self.report.add(kind, row, name, "skipped", _reason(exc))
                continue
            self._mark(table, row, host)
            self.report.add(kind, row, name, "imported", "; ".join(notes))

    def _kind_fields(self, table: str, row: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        if table == "proxy_host":
            access_id = int(row.get("access_list_id") or 0)
            access = self.access_lists.get(access_id) if access_id else None
            if access_id and access is None:
                notes.append(f"access list {access_id} was not imported: host left open")
            locations = []
            for loc in row.get("locations") or []:
                if not isinstance(loc, dict):
                    continue
                known = {
                    k: loc[k]
                    for k in (
                        "path",
                        "forward_scheme",
                        "forward_host",
                        "forward_port",
                        "forward_path",
                        "advanced_config",
                    )
                    if k in loc and loc[k] is not None
                }
                locations.append(known)
            return {
                "forward_scheme": row.get("forward_scheme") or "http",
                "forward_host": str(row.get("forward_host") or ""),
                "forward_port": row.get("forward_port"),
                "access_list_id": access.pk if access else 0,
                "caching_enabled": _flag(row.get("caching_enabled")),
                "block_exploits": _flag(row.get("block_exploits")),
                "allow_websocket_upgrade": _flag(row.get("allow_websocket_upgrade")),
                "trust_forwarded_proto": _flag(row.get("trust_forwarded_proto")),
                "locations": locations,
            }
        if table == "redirection_host":
            scheme = row.get("forward_scheme") or "auto"
            return {
                "forward_scheme": "auto" if scheme == "$scheme" else scheme,
                "forward_http_code": row.get("forward_http_code") or 302,
                "forward_domain_name": str(row.get("forward_domain_name") or ""),
                "preserve_path": _flag(row.get("preserve_path")),
                "block_exploits": _flag(row.get("block_exploits")),
            }
        return {}

    def import_hosts(self) -> None:
        self._import_hosts("proxy_host", "proxy host", ProxyHost)
        self._import_hosts("redirection_host", "redirection host", RedirectionHost)
        self._import_hosts("dead_host", "404 host", DeadHost)

    # --- streams and settings -------------------------------------------------------
    def import_streams(self) -> None:
        for row in _live(self.db.rows("stream")):
            wire = stream_wire(row)
            name = f":{wire['incoming_port']} → {wire['forwarding_host']}:{wire['forwarding_port']}"
            if self._already("stream", row, Stream) is not None:
                self.report.add("stream", row, name, "skipped", "already imported")
                continue
            notes: list[str] = []
            cert_id = wire.pop("certificate_id")
            certificate = self.certificates.get(cert_id) if cert_id else None
            if cert_id and certificate is None:
                notes.append(
                    f"certificate {cert_id} was not imported (see above): forwarded without "
                    "TLS until you pick a certificate"
                )
            try:
                stream = import_stream(self.actor, self._owner(row), wire, certificate)
            except PortwayError as exc:
                self.report.add("stream", row, name, "skipped", _reason(exc))
                continue
            self._mark("stream", row, stream)
            self.report.add("stream", row, name, "imported", "; ".join(notes))

    def import_settings(self) -> None:
        for row in self.db.rows("setting"):
            if row.get("id") != "default-site":
                self.report.add("setting", row, str(row.get("id")), "skipped", "unknown setting")
                continue
            meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
            value = str(row.get("value") or "congratulations")
            clean = {k: meta[k] for k in ("redirect", "html") if k in meta}
            current = get_default_site()
            if current.value == value and (current.meta or {}) == clean:
                self.report.add("setting", row, "default site", "skipped", f"already {value}")
                continue
            try:
                import_default_site(self.actor, value, clean)
            except PortwayError as exc:
                self.report.add("setting", row, "default site", "skipped", _reason(exc))
                continue
            self.report.add("setting", row, "default site", "imported", value)

    def run(self) -> Report:
        self.import_users()
        if self.actor is None or not self.actor.is_admin:
            raise SourceError(
                "no Portway administrator to import as: create one first "
                "(portway createadmin) or import an NPM administrator"
            )
        self.import_certificates()
        for account in self.files.acme_accounts():
            self.report.add(
                "ACME account",
                {"id": account},
                "certbot",
                "skipped",
                "Portway renews with its own ACME account (registered at the first "
                "renewal); certificates do not depend on the account",
            )
        self.import_access_lists()
        self.import_hosts()
        self.import_streams()
        self.import_settings()
        AuditLogEntry.objects.create(
            user=self.actor,
            object_type="npm-import",
            action="imported",
            meta={
                "source": self.report.source,
                "imported": len(self.report.imported),
                "skipped": len(self.report.skipped),
            },
        )
        return self.report


def stream_wire(row: dict[str, Any]) -> dict[str, Any]:
    """NPM's stream row as NPM's API object (what POST /api/nginx/streams takes).

    `row`: a `stream` row as portway.npmimport.source reads it (old `forward_ip` already
    renamed, missing later columns filled in). `certificate_id` is NPM's id: the importer
    maps it to the imported certificate.
    """
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    return {
        "incoming_port": int(row.get("incoming_port") or 0),
        "forwarding_host": str(row.get("forwarding_host") or ""),
        "forwarding_port": int(row.get("forwarding_port") or 0),
        "tcp_forwarding": _flag(row.get("tcp_forwarding")),
        "udp_forwarding": _flag(row.get("udp_forwarding")),
        "certificate_id": int(row.get("certificate_id") or 0),
        "enabled": _flag(row.get("enabled")),
        "meta": {k: v for k, v in meta.items() if k not in HOST_META_DROP},
    }


def import_npm(
    db: NpmDatabase, files: NpmFiles, actor: User | None = None, *, dry_run: bool = False
) -> Report:
    """Import everything `db` and `files` hold; one transaction, rolled back if `dry_run`.

    actor: the administrator doing it (None from the CLI: the first enabled Portway
    administrator, or the first imported NPM administrator). After a real import the
    caller asks nginx to apply (portway.nginx.engine.request_apply, or `portway apply`).

    Raises:
        SourceError: no administrator to import as.
    """
    importer = _Importer(db, files, actor, dry_run)
    try:
        with transaction.atomic():
            importer.run()
            if dry_run:
                raise _DryRunDone
    except _DryRunDone:
        pass
    return importer.report
