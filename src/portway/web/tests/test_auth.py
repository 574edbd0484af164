"""First-run setup, login/logout, the login requirement and CSRF protection."""

from __future__ import annotations

import pytest
from django.test import Client

from portway.accounts.models import User

from .conftest import PASSWORD

PAGES = [
    "/",
    "/proxy-hosts",
    "/proxy-hosts/new",
    "/certificates",
    "/certificates/new",
    "/settings/default-site",
]


@pytest.mark.django_db
class TestSetup:
    @pytest.mark.parametrize("url", [*PAGES, "/login"])
    def test_every_page_redirects_to_setup_while_no_user_exists(self, client: Client, url):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == "/setup"

    def test_htmx_requests_are_redirected_with_hx_redirect(self, client: Client):
        response = client.get("/proxy-hosts", headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert response["HX-Redirect"] == "/setup"

    def test_setup_form_asks_for_name_email_and_password_twice(self, client: Client):
        response = client.get("/setup")
        assert response.status_code == 200
        html = response.content.decode()
        for name in ("name", "email", "password", "password2", "csrfmiddlewaretoken"):
            assert f'name="{name}"' in html
        assert "Create administrator" in html

    def test_mismatched_passwords_are_reported_beside_the_field(self, client: Client):
        response = client.post(
            "/setup",
            {
                "name": "Ada",
                "email": "ada@example.com",
                "password": PASSWORD,
                "password2": PASSWORD + "x",
            },
        )
        assert response.status_code == 400
        assert 'data-error-for="password2">The two passwords do not match.' in (
            response.content.decode()
        )
        assert not User.objects.exists()

    def test_missing_fields_and_short_password(self, client: Client):
        response = client.post(
            "/setup", {"name": "", "email": "", "password": "short", "password2": "short"}
        )
        html = response.content.decode()
        assert response.status_code == 400
        assert 'data-error-for="name"' in html
        assert 'data-error-for="email"' in html
        assert 'data-error-for="password">Use 8 to 64 characters; this one has 5.' in html

    def test_setup_states_the_password_rules(self, client: Client):
        assert "8 to 64 characters" in client.get("/setup").content.decode()

    def test_every_setup_error_is_shown_at_once(self, client: Client):
        response = client.post(
            "/setup",
            {"name": " ", "email": "not-an-address", "password": "x" * 65, "password2": "y"},
        )
        html = response.content.decode()
        assert response.status_code == 400
        assert 'data-error-for="name">Enter your name.' in html
        assert 'data-error-for="email">Must be a valid e-mail address' in html
        assert 'data-error-for="password">Use 8 to 64 characters; this one has 65.' in html
        assert 'data-error-for="password2">The two passwords do not match.' in html
        assert 'value="not-an-address"' in html  # what was typed is kept
        assert not User.objects.exists()

    def test_invalid_email_from_the_service_is_shown_inline(self, client: Client):
        response = client.post(
            "/setup",
            {"name": "Ada", "email": "not-an-address", "password": PASSWORD, "password2": PASSWORD},
        )
        assert response.status_code == 400
        assert 'data-error-for="email">Must be a valid e-mail address' in (
            response.content.decode()
        )

    def test_setup_creates_an_admin_and_logs_in(self, client: Client):
        response = client.post(
            "/setup",
            {
                "name": "Ada Admin",
                "email": "Ada@Example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        )
        assert response.status_code == 302
        assert response["Location"] == "/"
        user = User.objects.get()
        assert (user.email, user.name, user.is_admin) == ("ada@example.com", "Ada Admin", True)
        dashboard = client.get("/")
        assert dashboard.status_code == 200
        assert "Welcome to Portway, Ada Admin" in dashboard.content.decode()

    def test_setup_is_closed_once_a_user_exists(self, client: Client, admin: User):
        assert client.get("/setup")["Location"] == "/login"
        response = client.post(
            "/setup",
            {
                "name": "Eve",
                "email": "eve@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        )
        assert response["Location"] == "/login"
        assert not User.objects.filter(email="eve@example.com").exists()


@pytest.mark.django_db
class TestLogin:
    @pytest.mark.parametrize("url", PAGES)
    def test_pages_need_a_login(self, client: Client, admin: User, url: str):
        response = client.get(url)
        assert response.status_code == 302
        expected = "/login" if url == "/" else "/login?next=" + url.replace("/", "%2F")
        assert response["Location"] == expected

    def test_actions_after_the_session_expired_return_to_the_page(self, client, admin):
        response = client.post("/proxy-hosts/1/delete")
        assert response["Location"] == "/login"
        response = client.post(
            "/proxy-hosts/1/delete",
            headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/proxy-hosts?q=a"},
        )
        assert response["HX-Redirect"] == "/login?next=%2Fproxy-hosts%3Fq%3Da"

    def test_login_page(self, client: Client, admin: User):
        response = client.get("/login")
        assert response.status_code == 200
        assert "Sign in to your account" in response.content.decode()

    def test_wrong_password_shows_an_error(self, client: Client, admin: User):
        response = client.post("/login", {"email": admin.email, "password": "nope"})
        assert response.status_code == 400
        assert "Invalid e-mail address or password." in response.content.decode()
        assert client.get("/").status_code == 302

    def test_disabled_user_cannot_log_in(self, client: Client, admin: User):
        admin.is_disabled = True
        admin.save()
        response = client.post("/login", {"email": admin.email, "password": PASSWORD})
        assert response.status_code == 400

    def test_login_goes_to_next(self, client: Client, admin: User):
        response = client.post(
            "/login?next=/certificates", {"email": "ADA@example.com", "password": PASSWORD}
        )
        assert response["Location"] == "/certificates"
        assert client.get("/certificates").status_code == 200

    def test_next_pointing_elsewhere_is_ignored(self, client: Client, admin: User):
        response = client.post(
            "/login",
            {"email": admin.email, "password": PASSWORD, "next": "https://evil.example/"},
        )
        assert response["Location"] == "/"

    def test_logout_needs_post(self, ui: Client):
        assert ui.get("/logout").status_code == 405
        response = ui.post("/logout")
        assert response["Location"] == "/login"
        assert ui.get("/")["Location"] == "/login"

    def test_navbar_has_sections_and_logout(self, ui: Client):
        html = ui.get("/").content.decode()
        for label in ("Dashboard", "Proxy Hosts", "Certificates", "Settings", "Log out"):
            assert label in html
        assert 'action="/logout"' in html
        assert "Ada Admin" in html


@pytest.mark.django_db
class TestCsrf:
    @pytest.fixture
    def strict(self, admin: User) -> Client:
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin)
        return client

    @pytest.mark.parametrize(
        "url",
        [
            "/logout",
            "/proxy-hosts/new",
            "/proxy-hosts/1/delete",
            "/proxy-hosts/1/disable",
            "/certificates/new",
            "/certificates/1/delete",
            "/settings/default-site",
        ],
    )
    def test_posts_without_a_token_are_refused(self, strict: Client, url: str):
        assert strict.post(url, {}).status_code == 403

    def test_login_post_without_token_is_refused(self, admin: User):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/login", {"email": admin.email, "password": PASSWORD})
        assert response.status_code == 403

    def test_token_from_the_page_is_accepted(self, strict: Client):
        page = strict.get("/settings/default-site")
        token = page.context["csrf_token"]
        response = strict.post(
            "/settings/default-site", {"csrfmiddlewaretoken": str(token), "value": "404"}
        )
        assert response.status_code == 302

    def test_htmx_requests_send_the_token_header(self, ui: Client):
        html = ui.get("/proxy-hosts").content.decode()
        assert 'hx-headers=\'{"X-CSRFToken": "' in html
