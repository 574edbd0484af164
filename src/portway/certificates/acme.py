"""ACME client: obtain and revoke certificates with certbot's `acme` library.

Why the `acme` library and not certbot itself:
    certbot (CLI or `certbot.main.main([...])` as a library) owns its own config tree,
    lock files, renewal configuration and logging, and reports failures as text meant for
    a terminal. Portway needs per-name progress while an order runs, the ACME problem
    documents themselves (to explain a failure in words a person can act on), its own
    storage layout (`<data_dir>/certificates/<id>/`, read by the nginx engine) and its own
    renewal scheduler. `acme` (the protocol library certbot is built on) gives exactly the
    protocol: account, order, authorizations, challenges, finalization, revocation. No
    subprocess and no shell is involved, so no user input can ever reach a shell.
    certbot's DNS plugins are still used as libraries for DNS-01 (see `dns_providers`).

Settings (read at each call):
    LE_SERVER=<directory url>   any ACME server (tests point it at pebble)
    LE_STAGING=1                Let's Encrypt staging instead of production
    REQUESTS_CA_BUNDLE          CA bundle trusted for the ACME server's HTTPS (as certbot)

One account per installation and ACME directory, registered with the first requesting
user's e-mail, stored 0600 in `<data_dir>/acme/` (directory 0700).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import josepy as jose
import requests
from acme import challenges, client, crypto_util, messages
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings

from portway import __version__

PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
USER_AGENT = f"Portway/{__version__} acme-python"
VALIDATION_TIMEOUT = 180  # seconds for the CA to validate all names, after propagation
FINALIZE_TIMEOUT = 120
KEY_TYPES = ("ecdsa", "rsa")

Progress = Callable[[str, dict[str, str]], None]


def directory_url() -> str:
    """LE_SERVER if set, else Let's Encrypt staging (LE_STAGING=1) or production."""
    server = (os.environ.get("LE_SERVER") or "").strip()
    if server:
        return server
    staging = (os.environ.get("LE_STAGING") or "").strip().lower() in {"1", "true", "yes", "on"}
    return STAGING if staging else PRODUCTION


def issuer_name() -> str:
    url = directory_url()
    if url in (PRODUCTION, STAGING):
        return "Let's Encrypt" + (" (staging)" if url == STAGING else "")
    return f"the ACME server {url}"


# --------------------------------------------------------------------------- failures


@dataclass(eq=False)
class AcmeFailure(Exception):
    """An issuance that failed, explained for people.

    message: what is wrong and what to do, naming the domain.
    domain: the failing name, when one name is to blame.
    problems: the ACME problem documents as the server sent them (kept in the log).
    retry_after: when the CA said to try again (rate limits).
    """

    message: str
    domain: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    retry_after: str | None = None

    def __str__(self) -> str:
        return self.message


def problem_of(error: messages.Error) -> dict[str, Any]:
    """The problem document as plain JSON (subproblems included)."""
    return json.loads(error.json_dumps())


def problem_code(problem: dict[str, Any]) -> str:
    typ = str(problem.get("type") or "")
    return typ.rsplit(":", 1)[-1] if typ.startswith("urn:") else typ


_RETRY_AFTER = re.compile(
    r"retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: ?(?:UTC|Z|[+-]\d\d:?\d\d))?)",
    re.I,
)


def retry_time(problem: dict[str, Any], header: str | None = None) -> str | None:
    """When to retry, from the problem's detail ("retry after ...") or a Retry-After header."""
    match = _RETRY_AFTER.search(str(problem.get("detail") or ""))
    if match:
        return match.group(1).strip()
    if header:
        header = header.strip()
        if header.isdigit():
            at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(header))
            return at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return header
    return None


def explain(
    problem: dict[str, Any],
    domain: str,
    challenge: str | None = None,
    *,
    diagnosis: tuple[list[str], list[Any]] | None = None,
    propagation_seconds: int | None = None,
    provider: str | None = None,
    retry_after_header: str | None = None,
) -> AcmeFailure:
    """Turn one ACME problem about `domain` into a message a person can act on.

    challenge: "http-01", "dns-01" or None (order-level problem).
    diagnosis: (addresses `domain` resolves to here, reachability probes of them), for
        HTTP-01 connection/unauthorized problems; see `reachability.diagnose`.
    """
    code = problem_code(problem)
    detail = str(problem.get("detail") or "").strip()
    said = f" The CA said: {detail}" if detail else ""
    issuer = issuer_name()

    def fail(message: str, retry: str | None = None) -> AcmeFailure:
        return AcmeFailure(message, domain, [problem], retry)

    if code == "rateLimited":
        when = retry_time(problem, retry_after_header)
        retry = f"; retry after {when}" if when else "; retry later"
        return fail(f"{domain}: rate limited by {issuer}{retry}.{said}", when)
    if code == "caa":
        return fail(
            f"{domain}: CAA records forbid {issuer} from issuing for {domain}. Add a CAA "
            f'record allowing it (e.g. 0 issue "letsencrypt.org") or remove the '
            f"restriction.{said}"
        )
    if code in ("rejectedIdentifier", "unsupportedIdentifier") or (
        code == "malformed" and re.search(r"block|policy|forbidden|not allowed", detail, re.I)
    ):
        return fail(f"{domain}: {issuer} refuses to issue a certificate for this name.{said}")
    if challenge == "dns-01" and code in ("unauthorized", "dns", "incorrectResponse"):
        record = "_acme-challenge." + domain.removeprefix("*.")
        wait = f" (now {propagation_seconds} s)" if propagation_seconds is not None else ""
        host = f"{provider} hosts" if provider else "the DNS provider hosts"
        return fail(
            f"{domain}: the DNS TXT record {record} was not seen by the certificate "
            f"authority. Check that {host} the zone of {domain.removeprefix('*.')} and that "
            f"the credentials may edit it, or raise propagation_seconds{wait}.{said}"
        )
    if challenge == "http-01" and code in (
        "connection",
        "unauthorized",
        "dns",
        "incorrectResponse",
    ):
        return _explain_http(problem, domain, code, diagnosis, fail, said)
    if code == "dns":
        return fail(
            f"{domain} does not resolve to this server: the certificate authority could not "
            f"look it up. Create a DNS A/AAAA record for {domain} pointing to this "
            f"server.{said}"
        )
    if code == "connection":
        return fail(
            f"{domain}: this server was not reachable on port 80 from the certificate "
            f"authority.{said}"
        )
    if code == "accountDoesNotExist":
        return fail(f"The ACME account is unknown to {issuer}; it will be registered again.")
    return fail(f"{domain}: {detail or code or 'the certificate authority refused the order'}")


def _explain_http(problem, domain, code, diagnosis, fail, said) -> AcmeFailure:  # noqa: ANN001
    addresses, probes = diagnosis if diagnosis is not None else (None, [])
    if code == "dns" or addresses == []:
        return fail(
            f"{domain} does not resolve to this server: there is no DNS A/AAAA record for "
            f"it. Create one pointing to this server's public address.{said}"
        )
    ours = [p for p in probes if p.result == "ok"]
    foreign = [p for p in probes if p.result != "ok"]
    if addresses and foreign and not ours:
        where = ", ".join(addresses)
        why = "; ".join(f"{p.address}: {p.detail or p.result}" for p in foreign)
        return fail(
            f"{domain} does not resolve to this server: it points to {where}, which did not "
            f"serve Portway's challenge token ({why}). Point the A/AAAA record of {domain} at "
            f"this server, or use the DNS challenge.{said}"
        )
    if code == "connection":
        target = _address_in(problem) or (addresses[0] if addresses else domain)
        return fail(
            f"{domain}: this server was not reachable on port 80: the certificate authority "
            f"could not connect to {target}. Open port 80 in the firewall and forward it to "
            f"this server; the HTTP challenge needs port 80 even for sites that force "
            f"HTTPS.{said}"
        )
    return fail(
        f"{domain}: wrong content was served at http://{domain}/.well-known/acme-challenge/: "
        f"the certificate authority did not get Portway's token there. Is another proxy or "
        f"a CDN in front of this server answering that URL?{said}"
    )


def _address_in(problem: dict[str, Any]) -> str | None:
    match = re.search(r"(\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-f:]+:[0-9a-f:]+\]?)", str(problem))
    return match.group(1) if match else None


# --------------------------------------------------------------------------- account


class _Network(client.ClientNetwork):
    """ClientNetwork that remembers the last Retry-After header (rate limits)."""

    last_retry_after: str | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any):  # noqa: ANN202
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_retry_after = response.headers.get("Retry-After")
        return response


_account_lock = threading.Lock()


def _acme_dir() -> Path:
    path = Path(settings.DATA_DIR) / "acme"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def account_path(url: str | None = None) -> Path:
    url = url or directory_url()
    return _acme_dir() / f"account-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Account:
    """The installation's ACME account at the configured directory."""

    def __init__(self, url: str, key: jose.JWK, regr: messages.RegistrationResource | None):
        self.url = url
        self.key = key
        self.net = _Network(key, alg=jose.ES256, user_agent=USER_AGENT, account=regr)
        self.net.session.trust_env = True  # REQUESTS_CA_BUNDLE, as certbot
        try:
            directory = client.ClientV2.get_directory(url, self.net)
        except requests.RequestException as exc:
            raise AcmeFailure(
                f"Could not reach the ACME server at {url}: {_short(exc)}. Check this "
                f"server's outbound HTTPS access (and REQUESTS_CA_BUNDLE for a private CA)."
            ) from exc
        self.client = client.ClientV2(directory, self.net)
        self.regr = regr

    @classmethod
    def load_or_register(cls, email: str) -> Account:
        """The stored account, or a new one registered with `email` (then stored 0600)."""
        url = directory_url()
        path = account_path(url)
        with _account_lock:
            if path.exists():
                data = json.loads(path.read_text())
                key = jose.JWK.from_json(data["key"])
                regr = messages.RegistrationResource.from_json(data["regr"])
                return cls(url, key, regr)
            account = cls(url, jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), None)
            account.register(email)
            return account

    def register(self, email: str) -> None:
        contact = (f"mailto:{email}",) if email else ()
        try:
            self.regr = self.client.new_account(
                messages.NewRegistration(contact=contact, terms_of_service_agreed=True)
            )
        except messages.Error as exc:
            problem = problem_of(exc)
            if problem_code(problem) == "invalidContact" and contact:
                # an e-mail the CA refuses must not block issuance: register without one
                self.regr = self.client.new_account(
                    messages.NewRegistration(terms_of_service_agreed=True)
                )
            else:
                raise
        self.net.account = self.regr
        _write_private(
            account_path(self.url),
            {
                "directory": self.url,
                "email": email,
                "created_on": dt.datetime.now(dt.UTC).isoformat(),
                "key": self.key.to_json(),
                "regr": self.regr.to_json(),
            },
        )

    def reregister(self, email: str) -> None:
        """The CA forgot the account (e.g. a test CA restarted): register the key anew."""
        with _account_lock:
            self.register(email)


def _short(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"(Max retries exceeded.*?)(?:\(Caused|$)", text)
    if isinstance(exc, requests.exceptions.SSLError):
        return "the server's TLS certificate is not trusted"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed" + (f" ({match.group(1).strip()})" if match else "")
    return text[:300]


# --------------------------------------------------------------------------- solvers


@dataclass
class Pending:
    """One authorization still to validate."""

    name: str  # as requested ("*.example.com" for a wildcard)
    authzr: messages.AuthorizationResource
    challb: messages.ChallengeBody


class Http01Solver:
    """HTTP-01: key authorizations as files in the webroot every port-80 server serves."""

    type = "http-01"
    challenge = challenges.HTTP01

    def __init__(self, webroot: Path) -> None:
        self.directory = webroot / ".well-known" / "acme-challenge"

    @contextlib.contextmanager
    def published(self, pending: list[Pending], key: jose.JWK) -> Iterator[list[Any]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        responses = []
        try:
            for item in pending:
                response, validation = item.challb.response_and_validation(key)
                path = self.directory / item.challb.chall.encode("token")
                path.write_text(validation)
                path.chmod(0o644)
                written.append(path)
                responses.append(response)
            yield responses
        finally:
            for path in written:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


class Dns01Solver:
    """DNS-01 through a certbot DNS plugin (see `dns_providers`)."""

    type = "dns-01"
    challenge = challenges.DNS01

    def __init__(self, provider: Any, credentials: Path, propagation_seconds: int) -> None:
        self.provider = provider
        self.credentials = credentials
        self.propagation_seconds = propagation_seconds

    @contextlib.contextmanager
    def published(self, pending: list[Pending], key: jose.JWK) -> Iterator[list[Any]]:
        from certbot import achallenges
        from certbot import errors as certbot_errors

        from portway.certificates import dns_providers

        plugin = dns_providers.authenticator(
            self.provider, self.credentials, self.propagation_seconds
        )
        achalls = [
            achallenges.KeyAuthorizationAnnotatedChallenge(
                challb=item.challb,
                account_key=key,
                identifier=item.authzr.body.identifier,
            )
            for item in pending
        ]
        try:
            with dns_providers.challenges_published(plugin, achalls) as responses:
                yield responses
        except certbot_errors.Error as exc:
            names = ", ".join(item.name for item in pending)
            raise AcmeFailure(
                f"{names}: {self.provider.name} could not publish the DNS TXT record: "
                f"{_scrub(str(exc))}. Check the credentials and that the zone is hosted there.",
                pending[0].name if len(pending) == 1 else None,
                [{"type": "portway:dns-plugin", "detail": _scrub(str(exc))}],
            ) from exc


def _scrub(text: str) -> str:
    """A plugin error without anything that looks like a secret value."""
    text = re.sub(r"(secret|token|key|password)(\S*\s*[=:]\s*)\S+", r"\1\2***", text, flags=re.I)
    return text[:500]


# --------------------------------------------------------------------------- obtain


@dataclass
class Issued:
    fullchain_pem: str
    key_pem: bytes


def new_key_pem(key_type: str) -> bytes:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key_type == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _requested_name(authzr: messages.AuthorizationResource) -> str:
    name = authzr.body.identifier.value
    return f"*.{name}" if authzr.body.wildcard else name


def _with_account(account: Account, email: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except messages.Error as exc:
        if exc.code != "accountDoesNotExist":
            raise
        account.reregister(email)
        return call()


def obtain(
    domains: list[str],
    *,
    email: str,
    key_type: str,
    solver: Http01Solver | Dns01Solver,
    progress: Progress,
    diagnose: Callable[[str], Any] | None = None,
) -> Issued:
    """Run one ACME order for `domains` to the end.

    progress(step, domain_states) is called at each step: "ordering", "validating",
    "issuing" with {name: "pending" | "validating" | "valid" | "invalid"}.

    Raises:
        AcmeFailure: with the human message and the ACME problem documents.
    """
    states = {name: "pending" for name in domains}
    progress("ordering", dict(states))
    account = Account.load_or_register(email)
    key_pem = new_key_pem(key_type)
    csr_pem = crypto_util.make_csr(key_pem, domains)
    try:
        order = _with_account(account, email, lambda: account.client.new_order(csr_pem))
        pending: list[Pending] = []
        for authzr in order.authorizations:
            name = _requested_name(authzr)
            if authzr.body.status == messages.STATUS_VALID:
                states[name] = "valid"
                continue
            challb = next(
                (c for c in authzr.body.challenges if isinstance(c.chall, solver.challenge)),
                None,
            )
            if challb is None:
                raise AcmeFailure(
                    f"{name}: {issuer_name()} offers no {solver.type} challenge for this name"
                    + (" (wildcard names need the DNS challenge)" if name.startswith("*.") else ""),
                    name,
                )
            pending.append(Pending(name, authzr, challb))
        progress("validating", dict(states))
        deadline = time.monotonic() + VALIDATION_TIMEOUT
        failures: list[tuple[Pending, messages.AuthorizationResource]] = []
        if pending:
            with solver.published(pending, account.key) as responses:
                for item, response in zip(pending, responses, strict=True):
                    account.client.answer_challenge(item.challb, response)
                    states[item.name] = "validating"
                progress("validating", dict(states))
                failures = _poll(account, pending, states, progress, deadline)
        if failures:
            raise _explain_failures(failures, solver, diagnose)
        progress("issuing", dict(states))
        finalize_deadline = dt.datetime.now() + dt.timedelta(seconds=FINALIZE_TIMEOUT)
        order = account.client.finalize_order(order, finalize_deadline)
    except messages.Error as exc:
        problem = problem_of(exc)
        domain = _domain_of(problem, domains)
        raise explain(
            problem, domain, None, retry_after_header=account.net.last_retry_after
        ) from exc
    except acme_errors.TimeoutError as exc:
        raise AcmeFailure(
            f"{', '.join(domains)}: {issuer_name()} did not finish the order in time; "
            "it will be retried."
        ) from exc
    except acme_errors.IssuanceError as exc:
        problem = problem_of(exc.error)
        raise explain(problem, _domain_of(problem, domains), None) from exc
    except requests.RequestException as exc:
        raise AcmeFailure(
            f"Lost the connection to the ACME server {account.url}: {_short(exc)}."
        ) from exc
    return Issued(order.fullchain_pem, key_pem)


def _poll(account, pending, states, progress, deadline):  # noqa: ANN001, ANN202
    failures = []
    remaining = list(pending)
    delay = 0.2
    while remaining:
        if time.monotonic() > deadline:
            names = ", ".join(item.name for item in remaining)
            raise AcmeFailure(
                f"{names}: the certificate authority did not finish validating in "
                f"{VALIDATION_TIMEOUT} s; it will be retried."
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
        changed = False
        for item in list(remaining):
            authzr, _ = account.client.poll(item.authzr)
            status = authzr.body.status
            if status == messages.STATUS_VALID:
                states[item.name] = "valid"
            elif status in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
                continue
            else:
                states[item.name] = "invalid"
                failures.append((item, authzr))
            remaining.remove(item)
            changed = True
        if changed:
            progress("validating", dict(states))
    return failures


def _explain_failures(failures, solver, diagnose) -> AcmeFailure:  # noqa: ANN001
    explained: list[AcmeFailure] = []
    for item, authzr in failures:
        problem: dict[str, Any] = {}
        for chall in authzr.body.challenges:
            if chall.error is not None:
                problem = problem_of(chall.error)
                break
        diagnosis = None
        if solver.type == "http-01" and diagnose is not None:
            with contextlib.suppress(Exception):
                diagnosis = diagnose(item.name)
        explained.append(
            explain(
                problem,
                item.name,
                solver.type,
                diagnosis=diagnosis,
                propagation_seconds=getattr(solver, "propagation_seconds", None),
                provider=getattr(getattr(solver, "provider", None), "name", None),
            )
        )
    first = explained[0]
    if len(explained) == 1:
        return first
    return AcmeFailure(
        " ".join(f.message for f in explained),
        first.domain,
        [p for f in explained for p in f.problems],
        first.retry_after,
    )


def _domain_of(problem: dict[str, Any], domains: list[str]) -> str:
    identifier = problem.get("identifier") or {}
    if identifier.get("value"):
        return str(identifier["value"])
    for sub in problem.get("subproblems") or []:
        value = (sub.get("identifier") or {}).get("value")
        if value:
            return str(value)
    detail = str(problem.get("detail") or "").lower()
    for name in sorted(domains, key=len, reverse=True):
        if name.lower() in detail:
            return name
    return ", ".join(domains)


# --------------------------------------------------------------------------- revoke


def revoke(fullchain_pem: bytes, email: str = "") -> None:
    """Revoke a certificate with the installation's account (reason unspecified).

    Raises:
        AcmeFailure: the CA refused or could not be reached.
    """
    cert = x509.load_pem_x509_certificate(fullchain_pem)
    account = Account.load_or_register(email)
    try:
        _with_account(account, email, lambda: account.client.revoke(cert, 0))
    except messages.Error as exc:
        problem = problem_of(exc)
        raise AcmeFailure(
            f"{issuer_name()} did not revoke the certificate: {problem.get('detail') or exc}",
            problems=[problem],
        ) from exc
    except requests.RequestException as exc:
        raise AcmeFailure(f"Could not reach the ACME server to revoke: {_short(exc)}") from exc
