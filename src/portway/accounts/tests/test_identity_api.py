"""Named API tokens, two-factor login, the login throttle and the audit log, through the API.

Everything is real: tokens are minted and checked by `portway.accounts`, TOTP codes are
computed here with pyotp from the secret the API hands out (as an authenticator app
would), and the throttle counts in the test database.
"""

from __future__ import annotations

import os
import time

import pyotp
import pytest
from django.test import Client

from portway.accounts.models import ApiToken, LoginThrottle, TwoFactor, User
from portway.accounts.tests.helpers import snapshot
from portway.nginx.models import AuditLogEntry
from portway.testing.api import PASSWORD, api_client, expect_error, make_admin, make_user, send

# --- named API tokens ------------------------------------------------------------------


def _create_token(client: Client, **fields) -> dict:
    body = {"name": "backup script", "expiry": "90d", "scope": "read", **fields}
    response = send(client, "post", "/api/users/me/api-tokens", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_api_token_shown_once_and_stored_hashed(user_client, user):
    created = _create_token(user_client)
    secret = created["token"]
    assert secret.startswith("pwt_")
    row = ApiToken.objects.get(pk=created["id"])
    assert secret not in (row.secret_hash, row.key) and len(row.secret_hash) == 64
    listed = send(user_client, "get", "/api/users/me/api-tokens").json()
    assert [t["name"] for t in listed] == ["backup script"]
    assert "token" not in listed[0] and secret not in str(listed)
    entry = AuditLogEntry.objects.filter(object_type="api-token", action="created").get()
    assert secret not in str(entry.meta)


def test_read_only_token_reads_but_never_writes(user, user_client):
    token = _create_token(user_client)["token"]
    client = api_client(token=token)
    assert client.get("/api/users/me").status_code == 200
    before = snapshot()
    message = expect_error(send(client, "put", "/api/users/me", {"name": "Changed"}), 403)
    assert "read-only" in message
    assert snapshot() == before
    # It cannot be swapped for a login token (that would lift the read-only limit).
    expect_error(client.get("/api/tokens"), 403)
    assert ApiToken.objects.get().last_used_on is not None


def test_full_token_writes_and_revoked_token_stops_at_once(user_client):
    created = _create_token(user_client, name="deploy", scope="full")
    client = api_client(token=created["token"])
    assert send(client, "put", "/api/users/me", {"nickname": "ci"}).status_code == 200
    revoke = send(user_client, "delete", f"/api/users/me/api-tokens/{created['id']}")
    assert revoke.status_code == 200 and revoke.json() is True
    expect_error(client.get("/api/users/me"), 401)


def test_disabling_a_user_ends_their_api_tokens_for_good(admin_client, user, user_client):
    token = _create_token(user_client, name="deploy", scope="full")["token"]
    client = api_client(token=token)
    assert client.get("/api/users/me").status_code == 200
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": True})
    assert response.status_code == 200, response.content
    expect_error(client.get("/api/users/me"), 401)
    response = send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": False})
    assert response.status_code == 200, response.content
    expect_error(client.get("/api/users/me"), 401)
    assert send(admin_client, "get", f"/api/users/{user.pk}/api-tokens").json() == []


def test_tampered_and_expired_api_tokens_are_refused(user_client):
    created = _create_token(user_client)
    token = created["token"]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    expect_error(api_client(token=tampered).get("/api/users/me"), 401)
    ApiToken.objects.filter(pk=created["id"]).update(expires_on="2000-01-01T00:00:00Z")
    assert "expired" in expect_error(api_client(token=token).get("/api/users/me"), 401)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"expiry": "forever"}, "expiry"),
        ({"expiry": "2y"}, "expiry"),
        ({"scope": "admin"}, "scope"),
    ],
)
def test_api_token_fields_are_validated(user_client, fields, field):
    body = {"name": "ok", "expiry": "30d", "scope": "read", **fields}
    before = snapshot()
    message = expect_error(send(user_client, "post", "/api/users/me/api-tokens", body), 400)
    assert f"data/{field}" in message
    assert snapshot() == before and not ApiToken.objects.exists()


def test_api_token_name_is_unique_per_user(user_client):
    _create_token(user_client)
    body = {"name": "backup script", "expiry": "30d", "scope": "read"}
    message = expect_error(send(user_client, "post", "/api/users/me/api-tokens", body), 400)
    assert "data/name" in message


def test_tokens_of_others(admin, admin_client, user, user_client):
    created = _create_token(user_client)
    body = {"name": "x", "expiry": "1d", "scope": "read"}
    # Nobody mints a token for someone else, not even an admin.
    expect_error(send(admin_client, "post", f"/api/users/{user.pk}/api-tokens", body), 403)
    expect_error(send(user_client, "get", f"/api/users/{admin.pk}/api-tokens"), 403)
    # An admin may see and revoke them.
    assert len(send(admin_client, "get", f"/api/users/{user.pk}/api-tokens").json()) == 1
    path = f"/api/users/{user.pk}/api-tokens/{created['id']}"
    assert send(admin_client, "delete", path).status_code == 200
    expect_error(send(admin_client, "delete", path), 404)


# --- two-factor login ----------------------------------------------------------------------


def _enrol(client: Client) -> tuple[pyotp.TOTP, list[str]]:
    setup = send(client, "post", "/api/users/me/2fa").json()
    assert setup["otpauth_url"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(setup["secret"])
    wrong = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
    assert "data/code" in expect_error(
        send(client, "post", "/api/users/me/2fa/enable", {"code": wrong}), 400
    )
    response = send(client, "post", "/api/users/me/2fa/enable", {"code": totp.now()})
    assert response.status_code == 200, response.content
    return totp, response.json()["backup_codes"]


def _next_code(totp: pyotp.TOTP) -> str:
    # The enrolment used the current step's code; each code is accepted once.
    return totp.at(time.time() + 30)


def test_two_factor_login_through_the_api(user, user_client):
    totp, backup_codes = _enrol(user_client)
    assert len(backup_codes) == 8
    record = TwoFactor.objects.get(user=user)
    assert totp.secret not in record.secret  # encrypted at rest
    assert not any(code in str(record.backup_codes) for code in backup_codes)
    assert send(user_client, "get", "/api/users/me/2fa").json() == {
        "enabled": True,
        "backup_codes_remaining": 8,
    }

    anonymous = Client()
    login = {"identity": user.email, "secret": PASSWORD}
    first = send(anonymous, "post", "/api/tokens", login).json()
    assert first["requires_2fa"] is True and set(first) == {"requires_2fa", "challenge_token"}
    challenge = first["challenge_token"]

    malformed = {"challenge_token": challenge, "code": "12ab"}
    assert "data/code" in expect_error(send(anonymous, "post", "/api/tokens/2fa", malformed), 400)
    tampered = {"challenge_token": challenge[:-2] + "xx", "code": _next_code(totp)}
    expect_error(send(anonymous, "post", "/api/tokens/2fa", tampered), 401)

    code = _next_code(totp)
    answer = send(
        anonymous, "post", "/api/tokens/2fa", {"challenge_token": challenge, "code": code}
    )
    assert answer.status_code == 200, answer.content
    assert api_client(token=answer.json()["token"]).get("/api/users/me").status_code == 200
    # The same code again is a replay.
    replay = {"challenge_token": challenge, "code": code}
    expect_error(send(anonymous, "post", "/api/tokens/2fa", replay), 401)

    # A backup code works once.
    body = {"challenge_token": challenge, "code": backup_codes[0].lower()}
    assert send(anonymous, "post", "/api/tokens/2fa", body).status_code == 200
    expect_error(send(anonymous, "post", "/api/tokens/2fa", body), 401)
    assert send(user_client, "get", "/api/users/me/2fa").json()["backup_codes_remaining"] == 7
    actions = list(AuditLogEntry.objects.filter(user=user).values_list("action", flat=True))
    assert "2fa-enabled" in actions and "login-failed" in actions


def test_turning_two_factor_off(admin_client, user, user_client):
    totp, backup_codes = _enrol(user_client)
    expect_error(send(user_client, "delete", "/api/users/me/2fa"), 400)
    expect_error(send(user_client, "delete", "/api/users/me/2fa?code=000000"), 400)
    new = send(user_client, "post", "/api/users/me/2fa/backup-codes", {"code": _next_code(totp)})
    assert new.status_code == 200 and set(new.json()["backup_codes"]).isdisjoint(backup_codes)
    # An admin resets another user's 2FA without a code; the user signs in with the password.
    assert send(admin_client, "delete", f"/api/users/{user.pk}/2fa").status_code == 200
    assert not TwoFactor.objects.filter(user=user).exists()
    login = {"identity": user.email, "secret": PASSWORD}
    assert "token" in send(Client(), "post", "/api/tokens", login).json()
    assert AuditLogEntry.objects.filter(action="2fa-reset", object_id=user.pk).exists()


def test_nobody_enrols_someone_else(admin_client, user):
    expect_error(send(admin_client, "post", f"/api/users/{user.pk}/2fa"), 403)


@pytest.fixture
def keep_umask():
    """`portway` sets umask 077 for the process it runs in; in-process calls in a test must
    not leave it on the test run (files later tests hand to nginx's workers need 0644)."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


def test_cli_resets_two_factor_of_a_locked_out_admin(admin, admin_client, keep_umask):
    from portway.cli import main

    _enrol(admin_client)
    assert main(["reset-2fa", "--email", admin.email.upper()]) == 0
    login = {"identity": admin.email, "secret": PASSWORD}
    assert "token" in send(Client(), "post", "/api/tokens", login).json()
    assert main(["reset-2fa", "--email", "nobody@example.com"]) == 1


# --- brute force ----------------------------------------------------------------------------


def _login(address: str, password: str, email: str = "user@example.com"):
    client = Client(REMOTE_ADDR=address)
    return send(client, "post", "/api/tokens", {"identity": email, "secret": password})


def test_wrong_passwords_are_throttled_per_address_and_account(user):
    statuses = [_login("127.0.0.2", "wrong password").status_code for _ in range(8)]
    # Five free attempts; the sixth is checked, counted and starts a delay.
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429] * 2
    throttled = _login("127.0.0.2", PASSWORD)  # even the right one waits
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) >= 1
    assert "try again in" in throttled.json()["error"]["message"]
    # The real owner from another address is not locked out.
    assert _login("127.0.0.1", PASSWORD).status_code == 200
    failures = AuditLogEntry.objects.filter(action="login-failed")
    assert failures.count() == 6
    assert set(failures.values_list("source_address", flat=True)) == {"127.0.0.2"}
    assert failures.first().meta["identity"] == user.email


def test_throttle_delay_is_capped_and_forgets(user):
    for _ in range(40):
        LoginThrottle.objects.filter().update(blocked_until=None)
        _login("127.0.0.3", "wrong password")
    rows = {row.key: row for row in LoginThrottle.objects.all()}
    longest = max(r.blocked_until for r in rows.values())
    last = max(r.last_failure for r in rows.values())
    assert (longest - last).total_seconds() <= 15 * 60


def test_unknown_accounts_are_throttled_too(db):
    statuses = [
        _login("127.0.0.4", "x", email=f"ghost{i}@example.com").status_code for i in range(22)
    ]
    assert 429 in statuses  # per address, whatever the account


# --- audit log -------------------------------------------------------------------------------


def test_audit_log_records_before_and_after(admin_client, user):
    send(admin_client, "put", f"/api/users/{user.pk}", {"name": "Renamed", "nickname": "r"})
    send(admin_client, "put", f"/api/users/{user.pk}/permissions", {"proxy_hosts": "view"})
    send(
        admin_client,
        "put",
        f"/api/users/{user.pk}/auth",
        {"type": "password", "secret": "n3w-Secret!"},
    )
    entries = send(
        admin_client, "get", f"/api/audit-log?object_type=user&object_id={user.pk}"
    ).json()
    changes = [e["meta"].get("changes") for e in entries]
    assert {"name": {"before": "Ursula User", "after": "Renamed"}}.items() <= changes[2].items()
    assert changes[1] == {"permissions/proxy_hosts": {"before": "manage", "after": "view"}}
    assert changes[0] == {"password": {"before": "(hidden)", "after": "(changed)"}}
    assert "n3w-Secret!" not in str(entries)
    assert {e["meta"]["source_address"] for e in entries} == {"127.0.0.1"}
    assert set(entries[0]) == {
        "id",
        "created_on",
        "modified_on",
        "user_id",
        "object_type",
        "object_id",
        "action",
        "meta",
    }


def test_audit_log_filters_and_paging(admin, admin_client, user):
    _login("127.0.0.5", "wrong password")
    send(admin_client, "put", f"/api/users/{user.pk}", {"is_disabled": True})
    failed = send(admin_client, "get", "/api/audit-log?action=login-failed").json()
    assert [e["meta"]["source_address"] for e in failed] == ["127.0.0.5"]
    disabled = send(admin_client, "get", f"/api/audit-log?user_id={admin.pk}&action=disabled")
    assert [e["object_id"] for e in disabled.json()] == [user.pk]
    _login("127.0.0.5", "whatever1", email="ghost@example.com")
    # NPM's audit log object has no room for "nobody": Portway's full log has it
    assert send(admin_client, "get", "/api/audit-log?user_id=0").json() == []
    nobody = send(admin_client, "get", "/api/portway/audit-log?user_id=0").json()
    assert [(e["user_id"], e["object_id"], e["action"], e["meta"]["identity"]) for e in nobody] == [
        (None, None, "login-failed", "ghost@example.com")
    ]
    assert len(send(admin_client, "get", "/api/audit-log?limit=1&offset=1").json()) == 1
    for query, field in [
        ("user_id=abc", "user_id"),
        ("action=DROP%20TABLE", "action"),
        ("object_type=" + "x" * 51, "object_type"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
    ]:
        message = expect_error(admin_client.get(f"/api/audit-log?{query}"), 400)
        # filters are checked by the audit service, paging by core.params' types
        assert f"data/{field}" in message or f"query parameter {field}" in message, message


def test_audit_log_is_for_admins(user_client):
    expect_error(user_client.get("/api/audit-log"), 403)


# --- the last admin -------------------------------------------------------------------------


def test_last_enabled_admin_cannot_be_disabled_or_deleted(admin):
    from portway.accounts import services
    from portway.core.errors import PermissionDenied

    other = make_admin("second@example.com", is_disabled=True)
    with pytest.raises(PermissionDenied):
        services.update_user(other, admin, {"is_disabled": True})
    with pytest.raises(PermissionDenied):
        services.delete_user(other, admin)
    with pytest.raises(PermissionDenied):
        services.update_user(other, admin, {"roles": []})
    assert User.objects.get(pk=admin.pk).is_admin and not User.objects.get(pk=admin.pk).is_disabled


@pytest.mark.parametrize("password", ["short7!", "12345678901", "password123", "x" * 65])
def test_weak_or_overlong_passwords_are_refused(admin_client, password):
    body = {"name": "N", "email": "n@example.com", "auth": {"type": "password", "secret": password}}
    assert "data/auth/secret" in expect_error(send(admin_client, "post", "/api/users", body), 400)
    assert not User.objects.filter(email="n@example.com").exists()


def test_duplicate_email_is_refused(admin_client, user):
    body = {"name": "Dup", "email": user.email.upper()}
    assert "data/email" in expect_error(send(admin_client, "post", "/api/users", body), 400)
    make_user("other@example.com")
