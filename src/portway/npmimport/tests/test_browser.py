"""Settings → Import from NPM in headless Chromium (CSP violations and script errors fail
the test, see portway.testing.browser): upload, dry-run report, confirm."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from portway.hosts.models import DeadHost, ProxyHost
from portway.npmimport.tests.npm_fixture import make_installation
from portway.npmimport.tests.npm_schema import build_sqlite
from portway.testing.api import ADMIN_EMAIL, PASSWORD, make_admin
from portway.testing.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_import_page_in_the_browser(
    live_server: Any, transactional_db: Any, browser_page: Any, settings: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings.DATA_DIR = tmp_path / "portway"
    npm = make_installation(tmp_path / "npm", "br.test", 8001, 8002, "2023-03-03 03:00:00")
    build_sqlite(str(npm.data / "database.sqlite"), "current", npm.rows)
    upload = tmp_path / "npm-data.tar.gz"
    with tarfile.open(upload, "w:gz") as tar:
        tar.add(npm.data, arcname="data")
        tar.add(npm.letsencrypt, arcname="data/letsencrypt")

    page, base = browser_page, live_server.url
    make_admin()
    sign_in(page, base, ADMIN_EMAIL, PASSWORD)
    expect(page).to_have_url(base + "/")
    page.goto(base + "/settings")
    page.click("#settings-import-npm")
    expect(page).to_have_url(base + "/settings/import-npm")

    page.click("#npm-import-check")  # nothing chosen: an error, nothing else
    expect(page.locator("#npm-import-error")).to_contain_text("choose the archive")

    page.set_input_files("#id_archive", str(upload))
    page.click("#npm-import-check")
    expect(page.locator("#npm-import-summary")).to_contain_text("Nothing has changed yet")
    expect(page.locator("#npm-import-report")).to_contain_text("app.br.test")
    assert not ProxyHost.objects.exists()

    page.click("#npm-import-go")
    expect(page.locator("#npm-import-summary")).to_contain_text("Imported")
    assert ProxyHost.objects.filter(first_domain="app.br.test").exists()
    assert DeadHost.objects.filter(first_domain="gone.br.test").exists()
