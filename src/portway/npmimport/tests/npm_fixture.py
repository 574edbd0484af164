"""A realistic NPM installation on disk for tests: database rows, data/ and letsencrypt/.

`make_installation(root, suffix, upstreams)` writes NPM's files (custom certificate,
access list htpasswd with an `$apr1$` hash made by `openssl passwd -apr1` as NPM makes
it, a Let's Encrypt certificate as certbot lays it out: live/ symlinks into archive/,
renewal/npm-<id>.conf, accounts/) and returns the database rows, including
soft-deleted ones, to load with npm_schema.build_sqlite / build_mysql.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from portway.testing.certs import make_ca, make_leaf
from portway.testing.network import free_port, free_udp_port

EDITOR_PASSWORD = "npm-editor-pass"
ACCESS_USER, ACCESS_PASSWORD = "alice", "wonderland-42"


@dataclass
class NpmInstall:
    """Where the installation is, its rows, and what the tests check against."""

    data: Path
    letsencrypt: Path
    rows: dict[str, list[dict[str, Any]]]
    names: dict[str, str]
    custom_serial: int
    acme_serial: int
    editor_email: str
    ca_pem: bytes = b""  # the CA both certificates chain to
    stream_ports: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def checksums(self) -> dict[str, str]:
        """sha256 of every file under data/ and letsencrypt/ (symlinks by their target)."""
        found = {}
        for base in (self.data, self.letsencrypt):
            for path in sorted(base.rglob("*")):
                if path.is_symlink():
                    found[str(path)] = "link:" + str(path.readlink())
                elif path.is_file():
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found


def make_installation(
    root: Path,
    suffix: str,
    upstream_a: int,
    upstream_b: int,
    created: str,
    echo_port: int = 7,
    udp_echo_port: int = 7,
) -> NpmInstall:
    """Write an NPM installation under `root` for names ending in `suffix`.

    Its streams (incoming ports free on 127.0.0.1 now, in `NpmInstall.stream_ports`:
    "tcp", "tls" with the custom certificate, "udp" disabled, "clash") forward to
    127.0.0.1:`echo_port` (a TCP echo server in the e2e tests), the UDP one to
    127.0.0.1:`udp_echo_port`.

    created: the `created_on` of every row ("2019-03-01 10:00:00"), different per
    installation, as two real installations' rows would be.
    """
    data, le = root / "data", root / "letsencrypt"
    names = {
        "app": f"app.{suffix}",
        "private": f"private.{suffix}",
        "secure": f"secure.{suffix}",
        "old": f"old.{suffix}",
        "off": f"off.{suffix}",
        "taken": f"taken.{suffix}",
        "go": f"go.{suffix}",
        "gone": f"gone.{suffix}",
        "brokencert": f"brokencert.{suffix}",
    }
    ca = make_ca(cn=f"NPM test CA {suffix}")
    custom = make_leaf(ca, [names["app"]])
    acme = make_leaf(ca, [names["secure"]])
    # data/custom_ssl/npm-1: NPM's custom certificate files
    custom.write(data / "custom_ssl" / "npm-1")
    # letsencrypt/: certbot's layout for certificate npm-2
    archive = le / "archive" / "npm-2"
    archive.mkdir(parents=True)
    (archive / "fullchain1.pem").write_bytes(acme.fullchain_pem)
    (archive / "privkey1.pem").write_bytes(acme.key_pem())
    (archive / "cert1.pem").write_bytes(acme.cert_pem)
    (archive / "chain1.pem").write_bytes(acme.chain_pem or acme.root_pem)
    live = le / "live" / "npm-2"
    live.mkdir(parents=True)
    for part in ("fullchain", "privkey", "cert", "chain"):
        (live / f"{part}.pem").symlink_to(f"../../archive/npm-2/{part}1.pem")
    (le / "renewal").mkdir()
    (le / "renewal" / "npm-2.conf").write_text(
        "version = 2.11.0\narchive_dir = /etc/letsencrypt/archive/npm-2\n"
        "[renewalparams]\nauthenticator = webroot\n"
    )
    account = le / "accounts" / "acme-v02.api.letsencrypt.org" / "directory" / "abc123"
    account.mkdir(parents=True)
    (account / "regr.json").write_text('{"body": {}, "uri": "https://acme.invalid/acct/1"}')
    # data/access/1: the htpasswd NPM wrote with `openssl passwd -apr1`
    apr1 = subprocess.run(
        ["openssl", "passwd", "-apr1", ACCESS_PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    (data / "access").mkdir(parents=True)
    (data / "access" / "1").write_text(f"{ACCESS_USER}:{apr1}\n")
    (data / "nginx").mkdir()  # NPM's own generated config: never read
    (data / "nginx" / "default.conf").write_text("# NPM's\n")

    editor_email = f"editor@{suffix}"
    editor_hash = bcrypt.hashpw(EDITOR_PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    editor_hash = "$2a$" + editor_hash[4:]  # NPM's bcrypt writes $2a$
    ts = {"created_on": created, "modified_on": created}
    user = {"avatar": "", "is_disabled": 0, **ts}
    perms_all = {
        "visibility": "all",
        "proxy_hosts": "manage",
        "redirection_hosts": "manage",
        "dead_hosts": "manage",
        "streams": "manage",
        "access_lists": "manage",
        "certificates": "manage",
    }
    host = {"owner_user_id": 1, "is_deleted": 0, "meta": {}, "advanced_config": "", **ts}
    stream = {"owner_user_id": 1, "is_deleted": 0, "meta": {}, **ts}
    ports = {"tcp": free_port(), "tls": free_port(), "udp": free_udp_port(), "clash": free_port()}
    rows: dict[str, list[dict[str, Any]]] = {
        "user": [
            {
                "id": 1,
                "email": "admin@example.com",
                "name": "Administrator",
                "nickname": "Admin",
                "roles": ["admin"],
                "is_deleted": 0,
                **user,
            },
            {
                "id": 2,
                "email": editor_email,
                "name": "Eddie Editor",
                "nickname": "Eddie",
                "roles": [],
                "is_deleted": 0,
                **user,
            },
            {
                "id": 3,
                "email": f"former@{suffix}",
                "name": "Former",
                "nickname": "F",
                "roles": [],
                "is_deleted": 1,
                **user,
            },
        ],
        "auth": [
            {
                "id": 1,
                "user_id": 1,
                "type": "password",
                "secret": bcrypt.hashpw(b"changeme", bcrypt.gensalt(4)).decode(),
                "meta": {},
                "is_deleted": 0,
                **ts,
            },
            {
                "id": 2,
                "user_id": 2,
                "type": "password",
                "secret": editor_hash,
                "meta": {},
                "is_deleted": 0,
                **ts,
            },
        ],
        "user_permission": [
            {"id": 1, "user_id": 1, **perms_all, **ts},
            {
                "id": 2,
                "user_id": 2,
                **perms_all,
                "visibility": "user",
                "certificates": "view",
                "access_lists": "hidden",
                **ts,
            },
        ],
        "certificate": [
            {
                "id": 1,
                "owner_user_id": 1,
                "is_deleted": 0,
                "provider": "other",
                "nice_name": "App custom",
                "domain_names": [names["app"]],
                "expires_on": "2030-01-01 00:00:00",
                "meta": {},
                **ts,
            },
            {
                "id": 2,
                "owner_user_id": 1,
                "is_deleted": 0,
                "provider": "letsencrypt",
                "nice_name": "",
                "domain_names": [names["secure"]],
                "expires_on": "2030-01-01 00:00:00",
                "meta": {
                    "letsencrypt_email": f"le@{suffix}",
                    "letsencrypt_agree": True,
                    "dns_challenge": False,
                },
                **ts,
            },
            {
                "id": 3,
                "owner_user_id": 1,
                "is_deleted": 1,
                "provider": "other",
                "nice_name": "Deleted",
                "domain_names": [],
                "expires_on": "2030-01-01 00:00:00",
                "meta": {},
                **ts,
            },
            {
                "id": 4,
                "owner_user_id": 1,
                "is_deleted": 0,
                "provider": "other",
                "nice_name": "Files lost",
                "domain_names": [names["brokencert"]],
                "expires_on": "2030-01-01 00:00:00",
                "meta": {},
                **ts,
            },
        ],
        "access_list": [
            {
                "id": 1,
                "owner_user_id": 1,
                "is_deleted": 0,
                "name": f"Staff {suffix}",
                "meta": {},
                "satisfy_any": 0,
                "pass_auth": 0,
                **ts,
            },
            {
                "id": 2,
                "owner_user_id": 1,
                "is_deleted": 1,
                "name": "Deleted list",
                "meta": {},
                **ts,
            },
        ],
        "access_list_auth": [
            {
                "id": 1,
                "access_list_id": 1,
                "username": ACCESS_USER,
                "password": ACCESS_PASSWORD,
                "meta": {},
                **ts,
            },
        ],
        "access_list_client": [
            {
                "id": 1,
                "access_list_id": 1,
                "address": "127.0.0.0/8",
                "directive": "allow",
                "meta": {},
                **ts,
            },
        ],
        "proxy_host": [
            {
                **host,
                "id": 1,
                "domain_names": [names["app"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_a,
                "forward_scheme": "http",
                "certificate_id": 1,
                "ssl_forced": 1,
                "http2_support": 1,
                "block_exploits": 1,
                "allow_websocket_upgrade": 1,
                "enabled": 1,
                "advanced_config": 'add_header X-From-Npm "yes";',
                "locations": [
                    {
                        "path": "/api",
                        "forward_scheme": "http",
                        "forward_host": "127.0.0.1",
                        "forward_port": upstream_b,
                        "forward_path": "",
                        "advanced_config": "",
                    }
                ],
                "meta": {
                    "letsencrypt_agree": False,
                    "dns_challenge": False,
                    "nginx_online": True,
                    "nginx_err": None,
                },
            },
            {
                **host,
                "id": 2,
                "owner_user_id": 2,
                "domain_names": [names["private"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_b,
                "access_list_id": 1,
                "enabled": 1,
            },
            {
                **host,
                "id": 3,
                "domain_names": [names["secure"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_a,
                "certificate_id": 2,
                "enabled": 1,
            },
            {
                **host,
                "id": 4,
                "is_deleted": 1,
                "domain_names": [names["old"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_a,
            },
            {
                **host,
                "id": 5,
                "domain_names": [names["off"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_a,
                "enabled": 0,
            },
            {
                **host,
                "id": 6,
                "domain_names": [names["taken"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_a,
                "enabled": 1,
            },
            {
                **host,
                "id": 7,
                "domain_names": [names["brokencert"]],
                "forward_ip": "127.0.0.1",
                "forward_host": "127.0.0.1",
                "forward_port": upstream_a,
                "certificate_id": 4,
                "enabled": 1,
            },
        ],
        "redirection_host": [
            {
                **host,
                "id": 1,
                "domain_names": [names["go"]],
                "forward_domain_name": "target.example.org",
                "forward_scheme": "https",
                "forward_http_code": 301,
                "preserve_path": 1,
                "enabled": 1,
            },
        ],
        "dead_host": [{**host, "id": 1, "domain_names": [names["gone"]], "enabled": 1}],
        "stream": [
            {  # plain TCP, e.g. a game or SSH server behind NPM
                **stream,
                "id": 1,
                "incoming_port": ports["tcp"],
                "forward_ip": "127.0.0.1",
                "forwarding_host": "127.0.0.1",
                "forwarding_port": echo_port,
                "tcp_forwarding": 1,
                "udp_forwarding": 0,
                "enabled": 1,
                "meta": {"nginx_online": True, "nginx_err": None},
            },
            {  # TLS terminated by NPM with the custom certificate (NPM 2.12, 2024)
                **stream,
                "id": 2,
                "incoming_port": ports["tls"],
                "forward_ip": "127.0.0.1",
                "forwarding_host": "127.0.0.1",
                "forwarding_port": echo_port,
                "tcp_forwarding": 1,
                "udp_forwarding": 0,
                "certificate_id": 1,
                "enabled": 1,
            },
            {  # deleted in NPM, on the port the first stream uses now
                **stream,
                "id": 3,
                "is_deleted": 1,
                "incoming_port": ports["tcp"],
                "forward_ip": "127.0.0.1",
                "forwarding_host": "127.0.0.1",
                "forwarding_port": 9,
                "tcp_forwarding": 1,
                "udp_forwarding": 0,
                "enabled": 1,
            },
            {  # UDP (DNS-like), switched off in NPM
                **stream,
                "id": 4,
                "incoming_port": ports["udp"],
                "forward_ip": "127.0.0.1",
                "forwarding_host": "127.0.0.1",
                "forwarding_port": udp_echo_port,
                "tcp_forwarding": 0,
                "udp_forwarding": 1,
                "enabled": 0,
            },
            {  # a port a Portway stream may already hold (the test decides)
                **stream,
                "id": 5,
                "incoming_port": ports["clash"],
                "forward_ip": "127.0.0.1",
                "forwarding_host": "127.0.0.1",
                "forwarding_port": echo_port,
                "tcp_forwarding": 1,
                "udp_forwarding": 0,
                "enabled": 1,
            },
        ],
        "setting": [
            {
                "id": "default-site",
                "name": "Default Site",
                "description": "What to show when Nginx is hit with an unknown Host",
                "value": "404",
                "meta": {},
            },
        ],
    }
    return NpmInstall(
        data=data,
        letsencrypt=le,
        rows=rows,
        names=names,
        custom_serial=custom.cert.serial_number,
        acme_serial=acme.cert.serial_number,
        editor_email=editor_email,
        ca_pem=custom.root_pem,
        stream_ports=ports,
    )
