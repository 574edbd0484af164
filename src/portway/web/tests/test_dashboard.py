"""The dashboard's counts and activity, and the page shell (assets, messages)."""

from __future__ import annotations

import pytest
from django.test import Client

from portway.hosts.models import ProxyHost
from portway.nginx.models import AuditLogEntry
from portway.web import assets


def count(html: str, card: str) -> str:
    """The number shown in a dashboard stat card."""
    start = html.index(f'id="{card}"')
    marker = "data-count>"
    at = html.index(marker, start) + len(marker)
    return html[at : html.index("<", at)]


@pytest.mark.django_db
class TestDashboard:
    def test_empty_installation_invites_to_add_a_host(self, ui: Client):
        html = ui.get("/").content.decode()
        assert "No proxy hosts yet" in html
        assert 'href="/proxy-hosts/new"' in html
        assert count(html, "stat-hosts-total") == "0"

    def test_says_how_changes_reach_nginx(self, ui: Client):
        from django.conf import settings

        from portway.nginx.engine import fast_path_unavailable

        html = ui.get("/").content.decode()
        note = html[html.index('id="apply-path"') :]
        note = note[: note.index("</p>")]
        reason = fast_path_unavailable(settings.PORTWAY)
        if reason is None:
            assert "without reloading nginx" in note
        else:
            assert f"Every change reloads nginx: {reason}" in note

    def test_host_counts_by_status(self, ui: Client, make_host):
        make_host("a.example.test")
        make_host("b.example.test")
        offline = make_host("c.example.test")
        ProxyHost.objects.filter(pk=offline.pk).update(nginx_online=False, nginx_err="boom")
        make_host("d.example.test", enabled=False)
        html = ui.get("/").content.decode()
        assert count(html, "stat-hosts-total") == "4"
        assert count(html, "stat-hosts-online") == "2"
        assert count(html, "stat-hosts-offline") == "1"
        assert count(html, "stat-hosts-disabled") == "1"
        assert "No proxy hosts yet" not in html

    def test_every_host_kind_counted(self, ui: Client, admin, make_host):
        from portway.hosts.models import DeadHost, RedirectionHost
        from portway.hosts.services import create_host

        make_host("a.example.test")
        create_host(
            RedirectionHost,
            admin,
            {
                "domain_names": ["r.example.test"],
                "forward_scheme": "auto",
                "forward_domain_name": "t.org",
            },
        )
        create_host(DeadHost, admin, {"domain_names": ["d.example.test"], "enabled": False})
        html = ui.get("/").content.decode()
        assert count(html, "stat-hosts-total") == "3"
        assert count(html, "stat-hosts-disabled") == "1"
        for label in ("1 proxy", "1 redirection", "1 404"):
            kind = label.split(" ", 1)[1]
            assert f'<span data-kind-count="{kind}">{label}</span>' in html

    def test_tunnel_hosts_counted(self, ui: Client, admin):
        from portway.tunnels.services import create_tunnel

        create_tunnel(
            admin,
            {
                "domain_names": ["db.example.test"],
                "forward_host": "127.0.0.1",
                "forward_port": 3306,
            },
        )
        html = ui.get("/").content.decode()
        assert count(html, "stat-hosts-total") == "1"
        assert '<span data-kind-count="tunnel">1 tunnel</span>' in html

    def test_streams_counted_and_offline_link_to_their_list(self, ui: Client, admin):
        from portway.hosts.models import Stream

        Stream.objects.create(
            owner=admin,
            incoming_port=5432,
            forwarding_host="db.lan",
            forwarding_port=5432,
            nginx_online=False,
            nginx_err="bind() to 0.0.0.0:5432 failed (98: Address already in use)",
        )
        html = ui.get("/").content.decode()
        assert count(html, "stat-hosts-total") == "1"
        assert count(html, "stat-hosts-offline") == "1"
        assert 'data-kind-count="stream">1 stream<' in html
        assert 'href="/streams" class="text-danger" id="offline-hosts-link"' in html

    def test_certificates_expiring_within_30_days(self, ui: Client, make_certificate):
        make_certificate("Long", ["long.example.test"], days=200)
        make_certificate("Soon", ["soon.example.test"], days=10)
        html = ui.get("/").content.decode()
        assert 'data-count="certificates">2<' in html
        assert 'data-count="expiring">1<' in html
        assert "Soon" in html and "days left" in html

    def test_recent_audit_entries_for_admins(self, ui: Client, make_host):
        make_host("audited.example.test")
        html = ui.get("/").content.decode()
        assert "created proxy host audited.example.test" in html

    def test_members_do_not_see_the_audit_log(self, member_ui: Client, admin, make_host):
        make_host("secret.example.test")
        AuditLogEntry.objects.create(user=admin, object_type="user", action="created")
        html = member_ui.get("/").content.decode()
        assert "secret.example.test" not in html
        assert "visible to administrators" in html

    def test_member_counts_only_their_own_hosts(self, member_ui: Client, member, make_host):
        make_host("admins.example.test")
        make_host("mine.example.test", owner=member)
        html = member_ui.get("/").content.decode()
        assert count(html, "stat-hosts-total") == "1"


@pytest.mark.django_db
class TestShell:
    def test_built_assets_are_linked(self, ui: Client, monkeypatch, tmp_path):
        manifest = tmp_path / "manifest.json"
        manifest.write_text("{}")
        monkeypatch.setattr(assets, "MANIFEST", manifest)
        html = ui.get("/").content.decode()
        assert '<link rel="stylesheet" href="/static/vendor/tabler/css/tabler.min.css">' in html
        assert "/static/vendor/tabler/js/tabler.min.js" in html
        assert "/static/django_htmx/htmx-2.min.js" in html
        assert 'id="assets-missing"' not in html

    @pytest.mark.parametrize("url", ["/", "/login"])
    def test_missing_assets_show_how_to_build_them(self, client, ui, monkeypatch, tmp_path, url):
        monkeypatch.setattr(assets, "MANIFEST", tmp_path / "absent.json")
        html = (ui if url == "/" else client).get(url).content.decode()
        assert 'id="assets-missing"' in html
        assert "npm ci &amp;&amp; npm run build" in html
        assert "tabler.min.css" not in html

    def test_system_check_warns_when_assets_are_missing(self, monkeypatch, tmp_path):
        from portway.web.apps import check_assets

        monkeypatch.setattr(assets, "MANIFEST", tmp_path / "absent.json")
        [warning] = check_assets()
        assert warning.id == "portway.W001"
        assert "npm ci && npm run build" in warning.hint

    def test_page_titles(self, ui: Client):
        assert "<title>Dashboard · Portway</title>" in ui.get("/").content.decode()
        assert "<title>Proxy Hosts · Portway</title>" in ui.get("/proxy-hosts").content.decode()
