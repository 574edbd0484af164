"""Every error the UI can answer with is a page in Portway's look; the API keeps NPM's JSON.

The 503 pages for a locked database and a full disk are proven end to end in
tests/test_unavailable_e2e.py; here are the pages Django and the views produce.
"""

from __future__ import annotations

import sys

import pytest
from django.test import Client, RequestFactory

from portway.testing.api import expect_error
from portway.web.errors import server_error

STYLED = ('id="error-page"', "tabler.min.css", "portway.css")


def assert_styled(response, status: int) -> str:  # noqa: ANN001
    """A full HTML page with `status` in the UI's layout; returns its text."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for marker in STYLED:
        assert marker in html, (marker, html[:500])
    assert f'data-status="{status}"' in html
    return html


def test_unknown_page_is_a_styled_404(ui: Client):
    html = assert_styled(ui.get("/no-such-page"), 404)
    assert "Page not found" in html
    assert 'href="/"' in html  # a way back


def test_unknown_page_is_styled_for_visitors_too(admin):  # noqa: ANN001
    assert_styled(Client().get("/no-such-page"), 404)


def test_unknown_object_in_the_ui_is_a_styled_404(ui: Client):
    assert_styled(ui.get("/proxy-hosts/99999999999999999999"), 404)


def test_get_logout_is_a_styled_405_naming_the_method(ui: Client):
    response = ui.get("/logout")
    html = assert_styled(response, 405)
    assert response["Allow"] == "POST"
    assert "POST" in html and "GET" in html


def test_a_forged_form_is_a_styled_403(admin):  # noqa: ANN001
    client = Client(enforce_csrf_checks=True)
    html = assert_styled(client.post("/login", {"email": "a@example.com"}), 403)
    assert "Reload the page" in html


def test_a_malformed_host_header_is_a_styled_400(admin):  # noqa: ANN001
    assert_styled(Client().get("/", HTTP_HOST="bad host!"), 400)


def test_an_unexpected_error_is_a_styled_500_and_logged(caplog: pytest.LogCaptureFixture):
    request = RequestFactory().get("/proxy-hosts")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        assert sys.exc_info()[0] is RuntimeError
        response = server_error(request)
    html = assert_styled(response, 500)
    assert "a bug" not in html  # details go to the log, not to the visitor
    assert any("a bug" in (r.exc_text or "") for r in caplog.records if r.name == "portway.web")


def test_htmx_fragment_errors_are_left_alone(ui: Client):
    response = ui.get("/certificates/999999/progress", HTTP_HX_REQUEST="true")
    assert response.status_code == 404
    assert b"error-page" not in response.content


@pytest.mark.django_db
def test_api_errors_outside_the_routes_stay_npm_json():
    client = Client()
    message = expect_error(client.get("/api/no-such-endpoint"), 404)
    assert "/api/no-such-endpoint" in message
    response = client.delete("/api/")
    message = expect_error(response, 405)
    assert response["Allow"] == "GET"
    assert "DELETE" in message and "GET" in message
    assert expect_error(client.get("/api/", HTTP_HOST="bad host!"), 400)
