"""Background ACME jobs: issue and renew letsencrypt certificates, with live progress.

The API only validates and queues (`start`); a worker thread runs the order (`run`) and
writes its progress to `Certificate.acme` after every step, so the UI and API can show
"ordering", "validating <name>", "issuing", then "valid" or "failed" with a message a
person can act on. Every job and failure is also written to the certificate's log
(`CertificateEvent`, with the full ACME problem documents).

`Certificate.acme` (never holds secrets):
    status       pending | ordering | validating | issuing | valid | failed
    kind         issue | renew (the job that set status)
    step         human text of the current step
    domains      {name: pending | validating | valid | invalid}
    error        the last failure's message, error_domain the name it is about
    started_on / finished_on   ISO times of the last job
    email        the e-mail the ACME account was registered with
    attach       [[app_label.model, pk], ...] hosts to switch to this certificate once issued
    renewal      {failures, last_attempt, next_attempt, last_error}
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from portway.certificates import acme, dns_providers, pem
from portway.certificates.models import Certificate, CertificateEvent

log = logging.getLogger("portway.certificates.acme")

IN_PROGRESS = ("pending", "ordering", "validating", "issuing")
STEP_TEXT = {
    "pending": "Waiting to start",
    "ordering": "Ordering the certificate",
    "validating": "Validating domain names",
    "issuing": "Issuing the certificate",
    "valid": "Certificate installed",
    "failed": "Failed",
}
CREDENTIALS_FILE = "dns-credentials.ini"
MAX_WORKERS = 2

# Daemon worker threads: stopping `portway serve` never waits for an order in progress
# (it may be sleeping through a DNS propagation wait); the next start resumes it.
_jobs: queue.Queue[tuple[int, str] | None] = queue.Queue()
_workers: list[threading.Thread] = []
_workers_lock = threading.Lock()
_running: set[int] = set()
_running_lock = threading.Lock()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credentials_path(cert: Certificate) -> Path:
    return cert.directory / CREDENTIALS_FILE


def webroot() -> Path:
    from portway.nginx.render import Paths

    return Paths(Path(settings.DATA_DIR)).acme_webroot


def record(cert: Certificate | int, action: str, message: str, level: str = "info", **detail):  # noqa: ANN003, ANN201
    """Append a line to the certificate's log (and Portway's log, without secrets)."""
    pk = cert if isinstance(cert, int) else cert.pk
    getattr(log, "warning" if level == "error" else "info")(
        "certificate %s %s: %s", pk, action, message
    )
    return CertificateEvent.objects.create(
        certificate_id=pk, action=action, level=level, message=message, detail=detail
    )


# --------------------------------------------------------------------------- queueing


def is_running(cert: Certificate) -> bool:
    with _running_lock:
        return cert.pk in _running


def start(cert: Certificate, kind: str) -> None:
    """Mark `cert` pending and run the job once the current transaction commits."""
    state = dict(cert.acme or {})
    state.update(
        status="pending",
        kind=kind,
        step=STEP_TEXT["pending"],
        domains={name: "pending" for name in cert.domain_names},
        error="",
        error_domain="",
        started_on=now_iso(),
        finished_on=None,
    )
    cert.acme = state
    Certificate.objects.filter(pk=cert.pk).update(acme=state)
    record(cert, kind, f"{'Renewal' if kind == 'renew' else 'Issuance'} requested")
    pk = cert.pk
    transaction.on_commit(lambda: submit(pk, kind))


def submit(pk: int, kind: str) -> bool:
    """Queue a job on the worker threads; False if one already runs for this certificate."""
    with _running_lock:
        if pk in _running:
            return False
        _running.add(pk)
    with _workers_lock:
        _workers[:] = [t for t in _workers if t.is_alive()]
        while len(_workers) < MAX_WORKERS:
            worker = threading.Thread(target=_work, name=f"acme-{len(_workers)}", daemon=True)
            worker.start()
            _workers.append(worker)
    _jobs.put((pk, kind))
    return True


def _work() -> None:
    while True:
        item = _jobs.get()
        if item is None:
            return
        _job(*item)


def _job(pk: int, kind: str) -> None:
    try:
        close_old_connections()
        run(pk, kind)
    except Exception:  # a job must never kill the worker thread
        log.exception("ACME job for certificate %s failed unexpectedly", pk)
    finally:
        with _running_lock:
            _running.discard(pk)
        close_old_connections()


def resume_interrupted() -> int:
    """Queue again the jobs a previous process left unfinished (at `portway serve` start)."""
    count = 0
    for cert in Certificate.objects.filter(provider="letsencrypt"):
        state = cert.acme or {}
        if state.get("status") in IN_PROGRESS:
            record(cert, state.get("kind") or "issue", "Resumed after a restart")
            submit(cert.pk, state.get("kind") or "issue")
            count += 1
    return count


def shutdown() -> None:
    """Drop queued jobs (they are resumed at the next start); running ones are abandoned."""
    with contextlib.suppress(queue.Empty):
        while True:
            _jobs.get_nowait()
    with _workers_lock:
        for _ in _workers:
            _jobs.put(None)


# --------------------------------------------------------------------------- the job


class _Progress:
    """Writes each step to the database as the order advances."""

    def __init__(self, cert: Certificate) -> None:
        self.cert = cert
        self.last_step = ""

    def __call__(self, step: str, domains: dict[str, str]) -> None:
        state = dict(self.cert.acme or {})
        text = STEP_TEXT.get(step, step)
        if step == "validating":
            waiting = [n for n, s in domains.items() if s in ("pending", "validating")]
            if waiting:
                text = "Validating " + ", ".join(waiting)
        state.update(status=step, step=text, domains=domains)
        self.cert.acme = state
        Certificate.objects.filter(pk=self.cert.pk).update(acme=state)
        if step != self.last_step:
            record(self.cert, state.get("kind") or "issue", text)
            self.last_step = step


def solver_for(cert: Certificate) -> acme.Http01Solver | acme.Dns01Solver:
    meta = cert.meta or {}
    if meta.get("dns_challenge"):
        provider = dns_providers.get(meta.get("dns_provider"))
        seconds = meta.get("propagation_seconds")
        seconds = provider.propagation_seconds if seconds in (None, "") else int(seconds)
        return acme.Dns01Solver(provider, credentials_path(cert), seconds)
    return acme.Http01Solver(webroot())


def run(pk: int, kind: str = "issue") -> Certificate | None:
    """Run one issue/renew job for certificate `pk` synchronously; returns it afterwards."""
    cert = Certificate.objects.filter(pk=pk).first()
    if cert is None or cert.provider != "letsencrypt":
        return None
    from portway.certificates import reachability

    meta = cert.meta or {}
    state = dict(cert.acme or {})
    state.update(kind=kind, started_on=state.get("started_on") or now_iso())
    cert.acme = state
    email = str(meta.get("letsencrypt_email") or state.get("email") or cert.owner.email)
    try:
        issued = acme.obtain(
            _requested(cert),
            email=email,
            key_type=str(meta.get("key_type") or "ecdsa"),
            solver=solver_for(cert),
            progress=_Progress(cert),
            diagnose=reachability.diagnose,
        )
        parsed = pem.parse(issued.fullchain_pem.encode(), issued.key_pem)
    except acme.AcmeFailure as failure:
        _failed(cert, kind, failure)
        return cert
    except Exception as exc:  # a bug or an unexpected library error: still say what failed
        log.exception("ACME %s for certificate %s", kind, pk)
        _failed(cert, kind, acme.AcmeFailure(f"Unexpected error: {exc.__class__.__name__}: {exc}"))
        return cert
    _installed(cert, kind, parsed, email)
    return cert


def _requested(cert: Certificate) -> list[str]:
    """Names to renew: those first requested (kept in acme.requested), else the SANs."""
    return list((cert.acme or {}).get("requested") or cert.domain_names)


def _installed(cert: Certificate, kind: str, parsed: pem.ParsedCertificate, email: str) -> None:
    from portway.certificates import services

    cert.refresh_from_db()
    state = dict(cert.acme or {})
    requested = state.get("requested") or list(cert.domain_names)
    renewal = dict(state.get("renewal") or {})
    renewal.update(failures=0, last_error="", last_attempt=now_iso(), next_attempt=None)
    state.update(
        status="valid",
        kind=kind,
        step=STEP_TEXT["valid"],
        domains={name: "valid" for name in requested},
        error="",
        error_domain="",
        finished_on=now_iso(),
        email=email,
        requested=requested,
        renewal=renewal,
    )
    attach = state.pop("attach", [])
    cert.acme = state
    with transaction.atomic():
        services._record(cert, parsed)
        services._store_files(cert, parsed)
    record(
        cert,
        kind,
        f"Certificate {'renewed' if kind == 'renew' else 'issued'} by {parsed.issuer}, "
        f"serial {parsed.serial}, valid until {parsed.not_after:%Y-%m-%d %H:%M} UTC",
    )
    _attach(cert, attach)
    services._request_apply()


def _attach(cert: Certificate, attach: list[list[Any]]) -> None:
    """Switch hosts saved with certificate_id "new" to the issued certificate, with the
    TLS options asked for then, unless their certificate was changed meanwhile."""
    for entry in attach:
        label, host_pk = entry[0], entry[1]
        previous = entry[2] if len(entry) > 2 else None
        tls = entry[3] if len(entry) > 3 else {}
        with contextlib.suppress(LookupError, ValueError):
            model = apps.get_model(label)
            hosts = model.objects.filter(pk=host_pk)
            hosts = (
                hosts.filter(certificate__isnull=True)
                if previous is None
                else hosts.filter(certificate_id=previous)
            )
            switched = {k: bool(v) for k, v in (tls or {}).items()}
            # modified_on: the apply engine reads a row again only when its version changed
            if hosts.update(certificate=cert, modified_on=timezone.now(), **switched):
                record(cert, "issue", f"Now used by {model._meta.verbose_name} {host_pk}")


def _failed(cert: Certificate, kind: str, failure: acme.AcmeFailure) -> None:
    cert.refresh_from_db()
    state = dict(cert.acme or {})
    domains = dict(state.get("domains") or {})
    if failure.domain in domains and domains[failure.domain] != "valid":
        domains[failure.domain] = "invalid"
    state.update(
        status="failed",
        kind=kind,
        step=STEP_TEXT["failed"],
        domains=domains,
        error=failure.message,
        error_domain=failure.domain or "",
        finished_on=now_iso(),
    )
    if kind == "renew" or cert.has_files:
        from portway.certificates import renewal

        state["renewal"] = renewal.after_failure(state.get("renewal") or {}, failure)
    cert.acme = state
    Certificate.objects.filter(pk=cert.pk).update(acme=state)
    record(
        cert,
        kind,
        failure.message,
        level="error",
        problems=failure.problems,
        retry_after=failure.retry_after,
    )
