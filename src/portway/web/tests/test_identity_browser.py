"""Who may do what, in headless Chromium against the live app (pytest-django's live_server).

Users and permissions, log in as, TOTP enrolment and sign-in with codes computed here,
backup codes, API tokens revoked in the UI, the audit log page, and bad input: weak and
over-long passwords, duplicate e-mail addresses, malformed codes, tampered cookies and
redirect targets on another site.
"""

from __future__ import annotations

import time

import pyotp
import pytest
import requests

from portway.testing.api import make_admin, make_user
from portway.testing.browser import open_user_menu
from portway.testing.process import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "ada@example.com"
PASSWORD = "correct horse battery"


def sign_in(page, base: str, email: str, password: str = PASSWORD, next_url: str = "") -> None:
    page.goto(base + "/login" + (f"?next={next_url}" if next_url else ""))
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def sign_out(page) -> None:
    open_user_menu(page, "#logout-button")


def api_token(base: str, email: str, password: str = PASSWORD) -> str:
    answer = requests.post(
        base + "/api/tokens", json={"identity": email, "secret": password}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def test_admin_creates_a_limited_user(
    live_server, transactional_db, browser_page, admin, make_host
):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    make_host("wiki.example.test")
    sign_in(page, base, ADMIN)
    expect(page).to_have_url(base + "/")
    page.click("#nav-users")
    page.click("#add-user")
    page.fill("#id_name", "Lim Ited")
    page.fill("#id_email", ADMIN.upper())  # taken, in another case
    page.fill("#id_password", PASSWORD)
    page.click("#save-user")
    expect(page.locator('[data-error-for="email"]')).to_contain_text("already used")
    page.fill("#id_email", "lim@example.com")
    for weak, reason in (("12345678", "digits"), ("password1", "too common")):
        page.fill("#id_password", weak)
        page.click("#save-user")
        expect(page.locator('[data-error-for="password"]')).to_contain_text(reason)
    page.fill("#id_password", "x" * 65)
    page.click("#save-user")
    expect(page.locator('[data-error-for="password"]')).to_contain_text("at most 64")
    page.fill("#id_password", PASSWORD)
    page.click("#save-user")
    expect(page.locator("#messages")).to_contain_text("They can see nothing yet")
    # Least privilege: every section starts hidden.
    expect(page.locator("#id_proxy_hosts")).to_have_value("hidden")
    expect(page.locator("#id_certificates")).to_have_value("hidden")
    page.select_option("#id_visibility", "all")
    page.select_option("#id_proxy_hosts", "view")
    page.click("#save-user")
    expect(page.locator("#messages")).to_contain_text("User Lim Ited saved")

    # "Log in as": the admin now sees what the user sees.
    page.locator('tr[data-user="lim@example.com"] [data-action="login-as"]').click()
    expect(page.locator("#messages")).to_contain_text("signed in as Lim Ited")
    page.click("#nav-hosts")  # the Hosts menu, as in NPM
    expect(page.locator("#nav-proxy-hosts")).to_be_visible()
    for hidden in ("#nav-certificates", "#nav-users", "#nav-audit-log"):
        expect(page.locator(hidden)).to_have_count(0)
    page.click("#nav-proxy-hosts")
    expect(page.locator("#proxy-hosts-table")).to_contain_text("wiki.example.test")
    expect(page.locator("#add-proxy-host")).to_have_count(0)
    assert page.goto(base + "/users").status == 403

    # The API enforces the same definition.
    headers = {"Authorization": f"Bearer {api_token(base, 'lim@example.com')}"}
    hosts = requests.get(base + "/api/nginx/proxy-hosts", headers=headers, timeout=30)
    assert [h["domain_names"] for h in hosts.json()] == [["wiki.example.test"]]
    body = {"domain_names": ["x.example.test"], "forward_scheme": "http"}
    body |= {"forward_host": "127.0.0.1", "forward_port": 80}
    created = requests.post(base + "/api/nginx/proxy-hosts", json=body, headers=headers, timeout=30)
    assert created.status_code == 403
    certs = requests.get(base + "/api/nginx/certificates", headers=headers, timeout=30)
    assert certs.status_code == 403
    assert requests.get(base + "/api/users", headers=headers, timeout=30).status_code == 403

    # Back as the admin: disable the user; their token stops working.
    sign_out(page)
    sign_in(page, base, ADMIN)
    page.goto(base + "/users")
    page.locator('tr[data-user="lim@example.com"] [data-action="disable"]').click()
    page.click("#confirm-modal-ok")
    expect(page.locator('tr[data-user="lim@example.com"] [data-status]')).to_have_text("Disabled")
    me = requests.get(base + "/api/users/me", headers=headers, timeout=30)
    assert me.status_code == 401


def test_totp_enrolment_and_sign_in(live_server, transactional_db, browser_page):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    make_user("mel@example.com", PASSWORD, name="Mel")
    sign_in(page, base, "mel@example.com")
    open_user_menu(page, "text=Two-factor login")
    page.click("#start-2fa")
    secret = page.locator("#totp-secret").inner_text().strip()
    qr = page.locator("#totp-qr")
    assert qr.get_attribute("src").startswith("/account/2fa/qr.png")  # drawn by Portway
    # the QR image loaded (polled from here: wait_for_function evaluates a string in the
    # page, which Portway's CSP forbids, as it should)
    wait_for(lambda: qr.evaluate("img => img.complete && img.naturalWidth") > 0, timeout=15)
    page.fill("#id_code", "12ab56")
    page.click("#enable-2fa")
    expect(page.locator('[data-error-for="code"]')).to_contain_text("6-digit")
    totp = pyotp.TOTP(secret)
    page.fill("#id_code", totp.now())
    page.click("#enable-2fa")
    codes = page.locator("#backup-codes li").all_inner_texts()
    assert len(codes) == 8
    expect(page.locator("#backup-codes-remaining")).to_have_text("8")

    sign_out(page)
    sign_in(page, base, "mel@example.com")
    expect(page).to_have_url(base + "/login/2fa")
    page.fill("#id_code", "not-a-code")
    page.click("#verify-code")
    expect(page.locator("#login-error")).to_contain_text("6-digit")
    page.fill("#id_code", totp.at(time.time() + 30))  # the current step was used to enrol
    page.click("#verify-code")
    expect(page).to_have_url(base + "/")

    for attempt in range(2):
        sign_out(page)
        sign_in(page, base, "mel@example.com")
        page.fill("#id_code", codes[0])
        page.click("#verify-code")
        if attempt == 0:
            expect(page).to_have_url(base + "/")
            expect(page.locator("#messages")).to_contain_text("backup code")
        else:  # a backup code works once
            expect(page.locator("#login-error")).to_contain_text("not valid")
            expect(page).to_have_url(base + "/login/2fa")


def test_api_token_revoked_in_the_ui_stops_at_once(live_server, transactional_db, browser_page):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    make_user("tok@example.com", PASSWORD, name="Tok")
    sign_in(page, base, "tok@example.com")
    open_user_menu(page, "#api-tokens-link")
    page.fill("#id_name", "")
    page.click("#create-token")
    expect(page.locator('[data-error-for="name"]')).to_contain_text("blank")
    page.fill("#id_name", "backup script")
    page.select_option("#id_scope", "full")
    page.click("#create-token")
    token = page.locator("#new-token").inner_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(base + "/api/users/me", headers=headers, timeout=30).status_code == 200
    page.goto(base + "/account/tokens")
    row = page.locator('tr[data-token="backup script"]')
    expect(row.locator('[data-field="last-used"]')).to_contain_text("from 127.0.0.1")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once only
    row.locator('[data-action="revoke"]').click()
    page.click("#confirm-modal-ok")
    expect(page.locator("#messages")).to_contain_text("API token revoked")
    assert requests.get(base + "/api/users/me", headers=headers, timeout=30).status_code == 401


def test_redirects_cookies_and_the_audit_log(live_server, transactional_db, browser_page):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    make_admin(ADMIN, PASSWORD, name="Ada Admin")
    sign_in(page, base, ADMIN, "wrong password")
    expect(page.locator("#login-error")).to_contain_text("Invalid e-mail address or password")
    for target in ("https://evil.example/", "//evil.example/x", "https:/\\evil.example"):
        sign_in(page, base, ADMIN, next_url=target)
        expect(page).to_have_url(base + "/")  # never to another site
        sign_out(page)
    sign_in(page, base, ADMIN, next_url="/audit-log")
    expect(page).to_have_url(base + "/audit-log")

    page.select_option("#filter-action", "login-failed")
    page.click("#apply-filters")
    failed = page.locator('#audit-log tr[data-action="login-failed"]')
    expect(failed).to_have_count(1)
    expect(failed.locator('[data-field="source"]')).to_have_text("127.0.0.1")
    expect(failed).to_contain_text("wrong password")
    page.select_option("#filter-action", "login")
    page.click("#apply-filters")
    expect(page.locator('#audit-log tr[data-action="login"]').first).to_be_visible()

    # A tampered session cookie is no session at all.
    context = page.context
    cookies = [c for c in context.cookies() if c["name"] == "sessionid"]
    assert cookies
    context.add_cookies([{**cookies[0], "value": cookies[0]["value"][:-4] + "abcd"}])
    page.goto(base + "/users")
    expect(page).to_have_url(base + "/login?next=%2Fusers")


def test_users_change_their_own_details(live_server, transactional_db, browser_page):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    make_user("sam@example.com", PASSWORD, name="Sam")
    make_user("taken@example.com", PASSWORD, name="Taken")
    sign_in(page, base, "sam@example.com")
    open_user_menu(page, "#account-link")
    page.fill("#id_email", "taken@example.com")
    page.click("#save-profile")
    expect(page.locator('[data-error-for="email"]')).to_contain_text("already used")
    page.fill("#id_name", "Samantha")
    page.fill("#id_email", "samantha@example.com")
    page.click("#save-profile")
    expect(page.locator("#messages")).to_contain_text("Your details were saved")
    expect(page.locator("#id_name")).to_have_value("Samantha")

    new_password = "a much better passphrase"
    page.fill("#id_current", "not my password")
    page.fill("#id_new_password", new_password)
    page.fill("#id_new_password2", new_password)
    page.click("#change-password")
    expect(page.locator('[data-error-for="current"]')).to_contain_text("not your current password")
    page.fill("#id_current", PASSWORD)
    page.fill("#id_new_password", "y" * 65)
    page.fill("#id_new_password2", "y" * 65)
    page.click("#change-password")
    expect(page.locator('[data-error-for="new_password"]')).to_contain_text("at most 64")
    page.fill("#id_current", PASSWORD)
    page.fill("#id_new_password", new_password)
    page.fill("#id_new_password2", new_password)
    page.click("#change-password")
    expect(page.locator("#messages")).to_contain_text("Your password was changed")
    sign_out(page)
    sign_in(page, base, "samantha@example.com", new_password)
    expect(page).to_have_url(base + "/")
