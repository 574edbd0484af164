"""No private key ever leaves Portway: a sweep of every API route and every UI page.

A real `portway serve` holds an uploaded RSA certificate, an uploaded EC certificate and
a certificate issued by pebble (key made by Portway), each used by a proxy host. Then
every GET route of the API's own OpenAPI document (path parameters filled with every id
its list route returns, `expand` with every relation it accepts) and every UI page of
the URL map (plain and as an HTMX request) is fetched, and neither any private key on
disk nor any base64 line of it may appear in an answer (zip downloads unpacked), in
Portway's output or in nginx's logs.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from portway.testing import certs
from portway.testing.acme import acme_stack
from portway.testing.network import free_port

pytestmark = pytest.mark.slow

# names NPM's API expands somewhere; each route is asked for every one it accepts
EXPAND_CANDIDATES = (
    "owner",
    "user",
    "certificate",
    "access_list",
    "proxy_hosts",
    "redirection_hosts",
    "dead_hosts",
    "streams",
    "permissions",
    "items",
    "clients",
)
UI_NEVER_FETCHED = {"logout", "gate_logout"}  # GET signs the session out; renders nothing
# may redirect to the login form, or are login forms (the gate's, on a gated site's name)
SIGNED_OUT_PAGES = {"setup", "login", "login_2fa", "gate_login"}


def key_sentinels(key: Any) -> set[bytes]:
    """Every form in which `key` could leak: each base64 line (32+ characters) of its
    PKCS#8 and traditional PEM, the whole body on one line, its DER bytes, the private
    number in hex and as a JWK's base64url "d" (RFC 7518 6.2.2.1, 6.3.2.1)."""
    found: set[bytes] = set()
    for key_format in (
        serialization.PrivateFormat.PKCS8,
        serialization.PrivateFormat.TraditionalOpenSSL,
    ):
        pem = key.private_bytes(
            serialization.Encoding.PEM, key_format, serialization.NoEncryption()
        )
        lines = [line for line in pem.splitlines() if not line.startswith(b"-----")]
        found.update(line for line in lines if len(line) >= 32)
        found.add(b"".join(lines))
        found.add(
            key.private_bytes(serialization.Encoding.DER, key_format, serialization.NoEncryption())
        )
    if isinstance(key, rsa.RSAPrivateKey):
        private, size = key.private_numbers().d, (key.private_numbers().d.bit_length() + 7) // 8
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        private, size = key.private_numbers().private_value, (key.curve.key_size + 7) // 8
    else:
        raise AssertionError(f"unexpected key type {type(key)}")
    found.add(format(private, "x").encode())
    found.add(base64.urlsafe_b64encode(private.to_bytes(size, "big")).rstrip(b"="))
    return found


def keys_on_disk(data_dir: Path) -> dict[str, Any]:
    """Every private key under the data directory, by path: PEM files, and the ACME
    account key (a JWK inside acme/account-*.json)."""
    import josepy

    keys = {}
    for path in data_dir.rglob("*"):
        name = str(path.relative_to(data_dir))
        if not path.is_file():
            continue
        if b"PRIVATE KEY-----" in path.read_bytes():
            keys[name] = serialization.load_pem_private_key(path.read_bytes(), password=None)
        elif path.parent.name == "acme" and path.name.startswith("account-"):
            jwk = josepy.JWK.from_json(json.loads(path.read_text())["key"])
            keys[name] = getattr(jwk.key, "_wrapped", jwk.key)
    return keys


def unpacked(body: bytes) -> list[bytes]:
    """The body, and the members of a zip body."""
    parts = [body]
    if body.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            parts += [archive.read(name) for name in archive.namelist()]
    return parts


class Sweep:
    """Collects every fetched answer and finds sentinels in them."""

    def __init__(self, sentinels: dict[bytes, str]) -> None:
        self.sentinels = sentinels
        self.leaks: list[str] = []
        self.fetched: list[str] = []

    def check(self, where: str, body: bytes) -> None:
        self.fetched.append(where)
        for part in unpacked(body):
            for variants in (part, part.replace(b"\\n", b"\n"), part.replace(b"\\/", b"/")):
                for sentinel, owner in self.sentinels.items():
                    if sentinel in variants or sentinel in base64.b64encode(variants):
                        self.leaks.append(f"{where}: {owner}")


def assert_sweep_finds_keys(sweep: Sweep, data_dir: Path, keys: dict[str, Any]) -> None:
    """The sweep is not blind: it finds each key file, and a key inside JSON or a zip."""
    on_disk = [path for path in keys if (data_dir / path).is_file()]
    for path in on_disk:
        sweep.check(path, (data_dir / path).read_bytes())
    pem = (data_dir / on_disk[0]).read_text()
    sweep.check("json", json.dumps({"key": pem}).encode())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("privkey.pem", pem)
    sweep.check("zip", buffer.getvalue())
    found = {leak.split(":")[0] for leak in sweep.leaks}
    assert found == {*on_disk, "json", "zip"}, found


def _ids(session: Any, url: str) -> list[str]:
    response = session.get(url, timeout=30)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    items = response.json()
    assert isinstance(items, list), (url, items)
    return [str(item["id"]) for item in items]


def sweep_api(pw: Any, sweep: Sweep) -> None:
    import requests

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {pw.token}"
    api.headers["Accept"] = "application/json"
    base = f"{pw.admin_url}/api"
    schema = api.get(f"{base}/schema", timeout=30).json()
    sweep.check("GET /api/schema", api.get(f"{base}/schema", timeout=30).content)
    routes = [path for path, item in schema["paths"].items() if "get" in item]
    assert len(routes) >= 15, routes
    for route in routes:
        operation = schema["paths"][route]["get"]
        params = {p["name"]: p["in"] for p in operation.get("parameters", [])}
        urls = [route]
        for name in [n for n, where in params.items() if where == "path"]:
            # a route's ids come from the list route above it ("/users/{user_id}" → /users)
            parent = route.split("/{" + name + "}")[0]
            if (
                parent.startswith("/portway/")
                and api.get(base + parent, timeout=30).status_code == 404
            ):
                # Portway's extras about NPM's objects (a host's logs): NPM's list has the ids
                parent = "/nginx/" + parent.removeprefix("/portway/")
            ids = _ids(api, base + parent)
            if name == "user_id":
                ids.append("me")
            assert ids, f"nothing to fill {{{name}}} of {route} with"
            urls = [url.replace("{" + name + "}", value) for url in urls for value in ids]
        for url in urls:
            variants = [url]
            if "expand" in params:
                accepted = [
                    name
                    for name in EXPAND_CANDIDATES
                    if api.get(f"{base}{url}", params={"expand": name}, timeout=30).ok
                ]
                variants += [f"{url}?expand={name}" for name in accepted]
                if len(accepted) > 1:
                    variants.append(f"{url}?expand={','.join(accepted)}")
            for variant in variants:
                response = api.get(base + variant, timeout=30)
                assert response.status_code < 500, (variant, response.text[:300])
                assert response.status_code == 200, (variant, response.status_code)
                sweep.check(f"GET /api{variant}", response.content)


def ui_routes() -> list[tuple[str, str]]:
    """(name, route) of every UI page in Portway's URL map, the API left out."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found = []

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if not route.startswith("api/"):
                    walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                found.append((pattern.name or route, "/" + route))

    walk(get_resolver().url_patterns, "")
    return found


def sweep_ui(pw: Any, sweep: Sweep, ids: dict[str, list[str]]) -> None:
    session = pw.ui_session()
    routes = ui_routes()
    assert len(routes) >= 15, routes
    for name, route in routes:
        if name in UI_NEVER_FETCHED:
            continue
        urls = [route]
        for converter, param in re.findall(r"<(?:(\w+):)?(\w+)>", route):
            assert param in ids, f"nothing to fill <{param}> of {route} with"
            pattern = f"<{converter}:{param}>" if converter else f"<{param}>"
            urls = [url.replace(pattern, value) for url in urls for value in ids[param]]
        for url in urls:
            for headers in ({}, {"HX-Request": "true", "HX-Current-URL": pw.admin_url + url}):
                response = session.get(pw.admin_url + url, headers=headers, timeout=30)
                assert response.status_code < 500, (url, headers, response.text[:300])
                # still signed in: a page that sent us to the login form showed nothing
                if name not in SIGNED_OUT_PAGES:
                    assert not response.url.split("?")[0].endswith("/login"), (url, response.url)
                sweep.check(f"UI GET {url} {headers or ''}", response.content)


def test_no_private_key_in_any_answer_or_log(tmp_path, pebble_tls, upstreams):
    app = upstreams("sweep")
    root = certs.make_ca("Sweep Root")
    uploaded = {
        kind: certs.make_leaf(root, [f"{kind}.sweep.test"], key_type=kind, label=f"sweep-{kind}")
        for kind in ("rsa", "ec")
    }
    with acme_stack(tmp_path / "data", pebble_tls) as stack:
        pw = stack.portway
        cert_ids = []
        for kind, leaf in uploaded.items():
            fmt = "pkcs1" if kind == "rsa" else "pkcs8"
            cert = pw.upload_certificate(f"sweep {kind}", leaf.cert_pem, leaf.key_pem(fmt))
            cert_ids.append(cert["id"])
            pw.create_proxy_host(
                [f"{kind}.sweep.test"], app.port, certificate_id=cert["id"], ssl_forced=True
            )
        issued = stack.wait(stack.request(["issued.sweep.test"])["id"])
        assert issued["meta"]["acme_status"] == "valid", issued["meta"].get("acme_error")
        cert_ids.append(issued["id"])
        host = pw.create_proxy_host(["issued.sweep.test"], app.port, certificate_id=issued["id"])
        # every host kind that links a certificate is swept too
        kind_hosts = {
            "/api/nginx/redirection-hosts": {
                "domain_names": ["moved.sweep.test"],
                "forward_scheme": "auto",
                "forward_domain_name": "issued.sweep.test",
            },
            "/api/nginx/dead-hosts": {"domain_names": ["gone.sweep.test"]},
            "/api/nginx/streams": {
                "incoming_port": free_port(),
                "forwarding_host": "127.0.0.1",
                "forwarding_port": app.port,
            },
            "/api/portway/tunnels": {
                "domain_names": ["tunnel.sweep.test"],
                "forward_host": "127.0.0.1",
                "forward_port": app.port,
            },
        }
        for path, body in kind_hosts.items():
            status, created = pw.api("POST", path, {**body, "certificate_id": cert_ids[0]})
            assert status == 201, created
        pw.wait_applied()
        assert pw.upstream_of("issued.sweep.test", https=True) == "sweep"

        keys = keys_on_disk(pw.data_dir)
        for cert_id in cert_ids:
            assert f"certificates/{cert_id}/privkey.pem" in keys, sorted(keys)
        assert any(path.startswith("acme/account-") for path in keys), sorted(keys)
        keys.update({f"uploaded {kind} key": leaf.key for kind, leaf in uploaded.items()})
        sentinels = {s: path for path, key in keys.items() for s in key_sentinels(key)}
        # a named API token's secret is shown once, at creation, and never again
        status, api_token = pw.api(
            "POST", "/api/users/me/api-tokens", {"name": "sweep", "expiry": "1d", "scope": "read"}
        )
        assert status == 201, api_token
        sentinels[api_token["token"].encode()] = "the API token's secret"
        # an access list's password and its hash are never returned either
        status, access_list = pw.api(
            "POST",
            "/api/nginx/access-lists",
            {"name": "sweep", "items": [{"username": "sweeper", "password": "sweep-basic-pass"}]},
        )
        assert status == 201, access_list
        sentinels[b"sweep-basic-pass"] = "an access list's password"
        user_file = pw.data_dir / "nginx" / "access" / f"{access_list['id']}.htpasswd"
        sentinels[user_file.read_text().split(":", 1)[1].strip().encode()] = "its hash"
        # a tunnel access key's secret is answered once, at creation
        tunnel = pw.api("GET", "/api/portway/tunnels")[1][0]
        status, tunnel_key = pw.api(
            "POST", f"/api/portway/tunnels/{tunnel['id']}/keys", {"name": "sweep"}
        )
        assert status == 201, tunnel_key
        sentinels[tunnel_key["key"].encode()] = "a tunnel access key's secret"
        assert_sweep_finds_keys(Sweep(sentinels), pw.data_dir, keys)
        sweep = Sweep(sentinels)
        sweep_api(pw, sweep)
        host_ids = [str(h["id"]) for h in pw.api("GET", "/api/nginx/proxy-hosts")[1]]
        assert str(host["id"]) in host_ids
        for path in kind_hosts:  # the ids of the other kinds' pages
            host_ids += [str(h["id"]) for h in pw.api("GET", path)[1]]
        host_ids = sorted(set(host_ids))
        ui_ids = {
            "cert_id": [str(i) for i in cert_ids],
            "host_id": host_ids,
            "user_id": [str(u["id"]) for u in pw.api("GET", "/api/users")[1]],
            "token_id": [str(api_token["id"])],
            "access_list_id": [str(access_list["id"])],
            "tunnel_id": [str(tunnel["id"])],
            "key_id": [str(tunnel_key["id"])],
            "session_id": ["none"],
        }
        sweep_ui(pw, sweep, ui_ids)
        for source in [pw.log_path, *sorted((pw.data_dir / "logs").rglob("*"))]:
            if source.is_file():
                sweep.check(f"log {source.name}", source.read_bytes())

        assert any(f.startswith("GET /api/nginx/certificates/") for f in sweep.fetched)
        assert any("/download" in f for f in sweep.fetched)
        assert any(f.startswith("UI GET /certificates/") for f in sweep.fetched)
        assert sweep.leaks == []
