"""The default-site settings page."""

from __future__ import annotations

import pytest
from django.test import Client

from portway.nginx.models import Setting


@pytest.mark.django_db
class TestDefaultSite:
    def test_shows_the_choices_with_the_current_one_checked(self, ui: Client):
        html = ui.get("/settings/default-site").content.decode()
        for value in ("congratulations", "404", "444", "redirect", "html"):
            assert f'id="default-site-{value}"' in html
        assert (
            'value="congratulations" class="form-selectgroup-input" '
            'id="default-site-congratulations" checked' in html
        )
        assert "Drop the connection (444)" in html

    def test_settings_redirects_to_default_site(self, ui: Client):
        assert ui.get("/settings")["Location"] == "/settings/default-site"

    @pytest.mark.parametrize("value", ["404", "444", "congratulations"])
    def test_simple_choices_save(self, ui: Client, value: str):
        response = ui.post("/settings/default-site", {"value": value}, follow=True)
        assert "Default site saved" in response.content.decode()
        assert Setting.get("default-site").value == value

    def test_redirect_needs_a_url(self, ui: Client):
        response = ui.post("/settings/default-site", {"value": "redirect", "redirect": ""})
        assert response.status_code == 400
        html = response.content.decode()
        assert 'data-error-for="meta/redirect">Enter the address to redirect to' in html
        assert Setting.get("default-site").value == "congratulations"

    def test_redirect_url_is_checked_by_the_service(self, ui: Client):
        response = ui.post(
            "/settings/default-site", {"value": "redirect", "redirect": "ftp://x.example"}
        )
        assert response.status_code == 400
        assert 'data-error-for="meta/redirect">Must be an absolute http' in (
            response.content.decode()
        )

    def test_redirect_and_html_save_their_meta(self, ui: Client):
        ui.post(
            "/settings/default-site", {"value": "redirect", "redirect": "https://www.example.com/"}
        )
        setting = Setting.get("default-site")
        assert (setting.value, setting.meta) == (
            "redirect",
            {"redirect": "https://www.example.com/"},
        )
        ui.post("/settings/default-site", {"value": "html", "html": "<h1>Hi</h1>"})
        setting = Setting.get("default-site")
        assert (setting.value, setting.meta) == ("html", {"html": "<h1>Hi</h1>"})
        html = ui.get("/settings/default-site").content.decode()
        assert "&lt;h1&gt;Hi&lt;/h1&gt;</textarea>" in html

    def test_unknown_value(self, ui: Client):
        response = ui.post("/settings/default-site", {"value": "teapot"})
        assert 'data-error-for="value">Choose one of the options' in response.content.decode()

    def test_members_see_the_setting_read_only(self, member_ui: Client):
        html = member_ui.get("/settings/default-site").content.decode()
        assert "Only administrators can change settings." in html
        assert 'id="save-default-site"' not in html
        response = member_ui.post("/settings/default-site", {"value": "404"})
        assert response.status_code == 400
        assert "Only administrators may change settings" in response.content.decode()
        assert Setting.get("default-site").value == "congratulations"
