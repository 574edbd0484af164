"""The proxy host list (search, status, actions) and the create/edit form."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from portway.hosts import services
from portway.hosts.models import ProxyHost

HTMX = {
    "HX-Request": "true",
    "HX-Target": "proxy-hosts-table",
    "HX-Current-URL": "http://testserver/proxy-hosts",
}


def errors(html: str) -> dict[str, list[str]]:
    """Inline messages by field path, as rendered beside the inputs."""
    found: dict[str, list[str]] = {}
    for field, text in re.findall(r'data-error-for="([^"]+)">([^<]*)<', html):
        found.setdefault(field, []).append(text)
    return found


def form_data(**overrides) -> dict[str, str]:
    data = {
        "domain_names": "app.example.test\nwww.app.example.test",
        "forward_scheme": "http",
        "forward_host": "10.0.0.5",
        "forward_port": "8080",
        "access_list_id": "0",
        "certificate_id": "0",
        "block_exploits": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
class TestList:
    def test_empty_state(self, ui: Client):
        html = ui.get("/proxy-hosts").content.decode()
        assert "No proxy hosts yet" in html
        assert "Add proxy host" in html

    def test_rows_show_domains_destination_ssl_and_status(self, ui, make_host, certificate):
        make_host(
            "app.example.test",
            "www.app.example.test",
            forward_scheme="https",
            forward_port=8443,
            certificate_id=certificate.pk,
            ssl_forced=True,
        )
        broken = make_host("broken.example.test", forward_host="fd00::5")
        ProxyHost.objects.filter(pk=broken.pk).update(
            nginx_online=False, nginx_err='unknown directive "bogus" in host.conf:3'
        )
        make_host("off.example.test", enabled=False)
        html = ui.get("/proxy-hosts").content.decode()
        assert ">app.example.test<" in html and ">www.app.example.test<" in html
        assert "https://10.0.0.5:8443" not in html  # default host is 127.0.0.1
        assert "https://127.0.0.1:8443" in html
        assert "http://[fd00::5]:8080" in html
        assert "App wildcard" in html and "HTTPS forced" in html
        # the certificate's expiry is shown on the host too
        assert certificate.expires_on.strftime("%Y-%m-%d") in html
        assert re.findall(r'data-status="(\w+)"', html) == ["online", "offline", "disabled"]
        # the nginx error is in the Offline badge's popover
        assert 'data-bs-toggle="popover"' in html
        assert "unknown directive &quot;bogus&quot; in host.conf:3" in html

    def test_search_returns_only_the_table_to_htmx(self, ui: Client, make_host):
        make_host("grafana.example.test")
        make_host("plex.example.test")
        response = ui.get("/proxy-hosts?q=graf", headers=HTMX)
        html = response.content.decode()
        assert "<html" not in html
        assert "grafana.example.test" in html and "plex.example.test" not in html
        assert 'hx-swap-oob="true"' in html  # flash messages ride along

    def test_search_without_htmx_renders_the_page(self, ui: Client, make_host):
        make_host("grafana.example.test")
        html = ui.get("/proxy-hosts?q=nothing").content.decode()
        assert "<html" in html
        assert "No proxy hosts match" in html
        assert 'value="nothing"' in html

    def test_actions_have_confirmations(self, ui: Client, make_host):
        host = make_host("app.example.test")
        html = ui.get("/proxy-hosts").content.decode()
        assert f'hx-post="/proxy-hosts/{host.pk}/disable"' in html
        assert f'hx-post="/proxy-hosts/{host.pk}/delete"' in html
        assert 'hx-confirm="Delete app.example.test? This cannot be undone."' in html

    def test_disable_then_enable_through_htmx(self, ui: Client, make_host):
        host = make_host("app.example.test")
        response = ui.post(f"/proxy-hosts/{host.pk}/disable", headers=HTMX)
        html = response.content.decode()
        assert response.status_code == 200
        assert "Proxy host app.example.test disabled." in html
        assert 'data-status="disabled"' in html
        assert not ProxyHost.objects.get(pk=host.pk).enabled
        html = ui.post(f"/proxy-hosts/{host.pk}/enable", headers=HTMX).content.decode()
        assert "Proxy host app.example.test enabled." in html
        assert ProxyHost.objects.get(pk=host.pk).enabled

    def test_delete_without_htmx_redirects_with_a_message(self, ui: Client, make_host):
        host = make_host("app.example.test")
        response = ui.post(f"/proxy-hosts/{host.pk}/delete", follow=True)
        assert response.redirect_chain == [("/proxy-hosts", 302)]
        html = response.content.decode()
        assert "Proxy host app.example.test deleted." in html
        assert "No proxy hosts yet" in html
        assert not ProxyHost.objects.exists()

    def test_enabling_a_host_whose_names_are_taken_shows_the_reason(self, ui, make_host):
        old = make_host("app.example.test", enabled=False)
        make_host("app.example.test")
        html = ui.post(f"/proxy-hosts/{old.pk}/enable", headers=HTMX).content.decode()
        assert f"Could not enable {old.pk}" in html
        assert "already used by enabled proxy host" in html

    def test_actions_on_a_missing_host(self, ui: Client):
        html = ui.post("/proxy-hosts/999/delete", headers=HTMX).content.decode()
        assert "Proxy host 999 no longer exists." in html

    def test_actions_need_post(self, ui: Client, make_host):
        host = make_host("app.example.test")
        assert ui.get(f"/proxy-hosts/{host.pk}/delete").status_code == 405

    def test_view_only_members_get_no_action_buttons(self, member, make_host):
        from portway.accounts.permissions import permission_for

        make_host("mine.example.test", owner=member)
        permission = permission_for(member)
        permission.proxy_hosts = "view"
        permission.save()
        client = Client()
        client.force_login(member)
        html = client.get("/proxy-hosts").content.decode()
        assert "mine.example.test" in html
        assert "Add proxy host" not in html
        assert "/proxy-hosts/new" not in html
        assert "hx-post" not in html

    def test_hidden_section_says_so(self, member):
        from portway.accounts.permissions import permission_for

        permission = permission_for(member)
        permission.proxy_hosts = "hidden"
        permission.save()
        client = Client()
        client.force_login(member)
        html = client.get("/proxy-hosts").content.decode()
        assert "do not have permission" in html


@pytest.mark.django_db
class TestForm:
    def test_new_form_has_every_option(self, ui: Client, certificate):
        html = ui.get("/proxy-hosts/new").content.decode()
        for name in (
            "domain_names",
            "forward_scheme",
            "forward_host",
            "forward_port",
            "caching_enabled",
            "block_exploits",
            "allow_websocket_upgrade",
            "access_list_id",
            "certificate_id",
            "ssl_forced",
            "http2_support",
            "hsts_enabled",
            "hsts_subdomains",
            "trust_forwarded_proto",
            "advanced_config",
        ):
            assert f'name="{name}"' in html, name
        for name in (
            "path",
            "forward_scheme",
            "forward_host",
            "forward_port",
            "forward_path",
            "advanced_config",
        ):
            assert f'name="locations-0-{name}"' in html  # the row template
        assert '<option value="0" selected>Publicly accessible</option>' in html
        assert f'<option value="{certificate.pk}"' in html
        assert "App wildcard" in html
        for tab in ("Details", "Custom locations", "SSL", "Advanced"):
            assert tab in html

    def test_create_sends_npm_wire_data(self, ui: Client, certificate):
        response = ui.post(
            "/proxy-hosts/new",
            form_data(
                domain_names="App.Example.test, www.app.example.test\n\n",
                forward_scheme="https",
                certificate_id=str(certificate.pk),
                ssl_forced="on",
                http2_support="on",
                hsts_enabled="on",
                caching_enabled="on",
                allow_websocket_upgrade="on",
                advanced_config="client_max_body_size 10m;",
                **{
                    "locations-0-path": "/api",
                    "locations-0-forward_scheme": "http",
                    "locations-0-forward_host": "10.0.0.6",
                    "locations-0-forward_port": "9000",
                    "locations-0-forward_path": "/v1",
                    "locations-0-advanced_config": "",
                    # a row added and left empty is dropped
                    "locations-1-path": "",
                    "locations-1-forward_host": "",
                    "locations-1-forward_port": "",
                },
            ),
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] == "/proxy-hosts"
        host = ProxyHost.objects.get()
        assert host.domain_names == ["app.example.test", "www.app.example.test"]
        assert (host.forward_scheme, host.forward_host, host.forward_port) == (
            "https",
            "10.0.0.5",
            8080,
        )
        assert host.certificate_id == certificate.pk
        assert host.ssl_forced and host.http2_support and host.hsts_enabled
        assert not host.hsts_subdomains and not host.trust_forwarded_proto
        assert host.caching_enabled and host.allow_websocket_upgrade and host.block_exploits
        assert host.advanced_config == "client_max_body_size 10m;"
        assert host.locations == [
            {
                "path": "/api",
                "forward_scheme": "http",
                "forward_host": "10.0.0.6",
                "forward_port": 9000,
                "forward_path": "/v1",
                "advanced_config": "",
            }
        ]
        assert host.owner.email == "ada@example.com"
        page = ui.get("/proxy-hosts").content.decode()
        assert "app.example.test" in page and "created" in page

    def test_validation_messages_are_shown_beside_each_field(self, ui: Client):
        response = ui.post(
            "/proxy-hosts/new",
            form_data(
                domain_names="good.example.test\ncam*.example.test",
                forward_host="10.0.0.5;evil",
                forward_port="99999",
                advanced_config="location / {",
                **{
                    "locations-0-path": "no-slash",
                    "locations-0-forward_host": "10.0.0.6",
                    "locations-0-forward_port": "abc",
                },
            ),
        )
        assert response.status_code == 400
        html = response.content.decode()
        found = errors(html)
        assert found["domain_names"][0].startswith("Line 2: &quot;cam*.example.test&quot; may")
        assert "partial wildcards" in found["domain_names"][0]
        assert found["forward_host"] == ["Must not contain &#x27;;&#x27;"]
        assert "Must be a port number from 1 to 65535" in found["forward_port"][0]
        assert "must start with &#x27;/&#x27;" in found["locations/0/path"][0]
        assert "Must be a port number from 1 to 65535" in found["locations/0/forward_port"][0]
        assert "braces must balance" in found["advanced_config"][0]
        # what the user typed is kept
        assert "cam*.example.test</textarea>" in html
        assert 'value="no-slash"' in html
        # tabs with problems are marked; the first one is open
        assert html.count("portway-tab-error") == 3
        assert 'class="tab-pane active show" id="tab-details"' in html
        assert not ProxyHost.objects.exists()

    def test_error_on_another_tab_opens_that_tab(self, ui: Client):
        html = ui.post("/proxy-hosts/new", form_data(certificate_id="999")).content.decode()
        assert 'class="tab-pane active show" id="tab-ssl"' in html
        assert "Certificate 999 does not exist" in errors(html)["certificate_id"][0]

    def test_empty_form(self, ui: Client):
        html = ui.post(
            "/proxy-hosts/new", form_data(domain_names="", forward_host="", forward_port="")
        ).content.decode()
        found = errors(html)
        assert set(found) >= {"domain_names", "forward_host", "forward_port"}
        assert found["forward_port"] == ["Enter the port the service listens on (1-65535)"]

    def test_duplicate_domain_is_reported_on_the_domain_field(self, ui: Client, make_host):
        make_host("app.example.test")
        html = ui.post("/proxy-hosts/new", form_data()).content.decode()
        assert "already used by enabled proxy host" in errors(html)["domain_names"][0]

    def test_a_name_listed_twice_is_shown_with_both_lines(self, ui: Client):
        html = ui.post(
            "/proxy-hosts/new",
            form_data(domain_names="a.example.test\nb.example.test\nA.example.test."),
        ).content.decode()
        assert errors(html)["domain_names"] == [
            "A.example.test is on lines 1 and 3: remove all but one"
        ]

    def test_a_name_in_use_is_shown_with_its_line(self, ui: Client, make_host):
        make_host("www.app.example.test")
        html = ui.post("/proxy-hosts/new", form_data()).content.decode()
        (message,) = errors(html)["domain_names"]
        assert message.startswith("Line 2: "), message
        assert "www.app.example.test" in message

    @pytest.mark.parametrize(
        ("pasted", "expected"),
        [
            (
                "https://10.0.0.5:8443/app",
                "remove the scheme https:// and put it in the Scheme field, put the port 8443 "
                "in the Port field, remove the path /app",
            ),
            ("10.0.0.5:8080", "put the port 8080 in the Port field and enter only 10.0.0.5"),
            ("[fd00::5]:8080", "put the port 8080 in the Port field and enter only fd00::5"),
        ],
    )
    def test_a_pasted_url_says_which_field_gets_what(self, ui: Client, pasted, expected):
        html = ui.post("/proxy-hosts/new", form_data(forward_host=pasted)).content.decode()
        (message,) = errors(html)["forward_host"]
        assert expected in message, message
        assert "IPv6" not in message
        assert not ProxyHost.objects.exists()

    def test_a_pasted_url_in_a_location_points_to_its_forward_path(self, ui: Client):
        data = form_data(
            **{
                "locations-0-path": "/api",
                "locations-0-forward_host": "http://10.0.0.6/v1",
                "locations-0-forward_port": "80",
            }
        )
        html = ui.post("/proxy-hosts/new", data).content.decode()
        (message,) = errors(html)["locations/0/forward_host"]
        assert "put the path /v1 in the Forward path field" in message, message

    def test_spaces_around_the_forward_host_are_trimmed(self, ui: Client):
        response = ui.post("/proxy-hosts/new", form_data(forward_host="  10.0.0.5 \t"))
        assert response.status_code == 302
        assert ProxyHost.objects.get().forward_host == "10.0.0.5"

    def test_edit_shows_current_values(self, ui: Client, make_host, certificate):
        host = make_host(
            "app.example.test",
            "www.app.example.test",
            certificate_id=certificate.pk,
            ssl_forced=True,
            advanced_config="gzip on;",
            locations=[
                {
                    "path": "/api",
                    "forward_scheme": "https",
                    "forward_host": "api.lan",
                    "forward_port": 443,
                    "forward_path": "",
                    "advanced_config": "",
                }
            ],
        )
        html = ui.get(f"/proxy-hosts/{host.pk}").content.decode()
        assert "app.example.test\nwww.app.example.test</textarea>" in html
        assert f'<option value="{certificate.pk}" selected' in html
        assert 'name="ssl_forced" id="id_ssl_forced" checked' in html
        assert 'name="locations-0-path" id="location-0-path" value="/api"' in html
        assert ">gzip on;</textarea>" in html
        assert "Save changes" in html

    def test_edit_saves(self, ui: Client, make_host):
        host = make_host("app.example.test")
        response = ui.post(
            f"/proxy-hosts/{host.pk}",
            form_data(domain_names="app.example.test\nnew.example.test", forward_port="9090"),
        )
        assert response.status_code == 302
        host.refresh_from_db()
        assert host.domain_names == ["app.example.test", "new.example.test"]
        assert host.forward_port == 9090

    def test_rejected_edit_with_previous_config_live_has_its_own_status(self, ui, make_host):
        host = make_host("stale.example.test")
        ProxyHost.objects.filter(pk=host.pk).update(
            nginx_online=False,
            nginx_serving_previous=True,
            nginx_err="nginx rejected this host's new config; its previous config is still served",
        )
        html = ui.get("/proxy-hosts").content.decode()
        assert re.findall(r'data-status="(\w+)"', html) == ["previous"]
        assert "Previous config live" in html

    def test_edit_page_shows_nginx_error(self, ui: Client, make_host):
        host = make_host("broken.example.test")
        assert "data-nginx-error" not in ui.get(f"/proxy-hosts/{host.pk}").content.decode()
        ProxyHost.objects.filter(pk=host.pk).update(
            nginx_online=False, nginx_err='unknown directive "this_is_wrong" (line 3)'
        )
        html = ui.get(f"/proxy-hosts/{host.pk}").content.decode()
        assert "data-nginx-error" in html
        assert "unknown directive &quot;this_is_wrong&quot; (line 3)" in html

    def test_edit_missing_host_is_404(self, ui: Client):
        assert ui.get("/proxy-hosts/424242").status_code == 404

    def test_members_cannot_see_or_set_advanced_config(self, member_ui: Client, monkeypatch):
        sent = {}
        real = services.create_proxy_host

        def spy(user, data):
            sent.update(data)
            return real(user, data)

        monkeypatch.setattr(services, "create_proxy_host", spy)
        html = member_ui.get("/proxy-hosts/new").content.decode()
        assert 'name="advanced_config"' not in html
        assert "Only administrators can change custom nginx configuration" in html
        response = member_ui.post("/proxy-hosts/new", form_data(advanced_config="return 200;"))
        assert response.status_code == 302
        assert "advanced_config" not in sent
        assert ProxyHost.objects.get().advanced_config == ""

    def test_members_keep_but_cannot_remove_an_admins_location_config(
        self, member, member_ui: Client, make_host
    ):
        admin_text = "allow 10.0.0.0/8;\ndeny all;"
        host = make_host(
            "app.example.test",
            locations=[
                {
                    "path": "/admin",
                    "forward_host": "10.0.0.9",
                    "forward_port": 80,
                    "advanced_config": admin_text,
                },
            ],
        )
        ProxyHost.objects.filter(pk=host.pk).update(owner=member)  # the admin's text, her host
        row = {
            "locations-0-path": "/admin",
            "locations-0-forward_scheme": "http",
            "locations-0-forward_host": "10.0.0.9",
            "locations-0-forward_port": "8081",
            "locations-0-forward_path": "",
            # what a browser submits for the read-only textarea: CRLF line ends
            "locations-0-advanced_config": admin_text.replace("\n", "\r\n"),
        }
        response = member_ui.post(f"/proxy-hosts/{host.pk}", form_data(**row))
        assert response.status_code == 302, response.content.decode()
        host.refresh_from_db()
        assert host.locations[0]["forward_port"] == 8081
        assert host.locations[0]["advanced_config"] == admin_text

        response = member_ui.post(f"/proxy-hosts/{host.pk}", form_data())  # row removed
        assert response.status_code in (400, 403)
        assert "only an administrator may remove it" in response.content.decode()
        host.refresh_from_db()
        assert [loc["path"] for loc in host.locations] == ["/admin"]


@pytest.mark.slow
def test_config_nginx_rejects_is_reported_after_save(portway, upstreams):
    """Through a real `portway serve`: nginx itself rejects the custom config."""
    app = upstreams("app")
    session = portway.ui_session()
    data = form_data(
        domain_names="rejected.example.test",
        forward_host="127.0.0.1",
        forward_port=str(app.port),
        advanced_config="proxy_buffering maybe;",
    )
    response = portway.ui_post(session, "/proxy-hosts/new", data)
    assert response.status_code == 200 and response.url.endswith("/proxy-hosts")
    html = response.text
    assert "Proxy host rejected.example.test created, but nginx rejected its configuration" in html
    assert "proxy_buffering" in html and "line 1 of the advanced config" in html
    assert re.findall(r'data-status="(\w+)"', html) == ["offline"]
    (host,) = portway.api("GET", "/api/nginx/proxy-hosts")[1]
    edit_page = session.get(f"{portway.admin_url}/proxy-hosts/{host['id']}", timeout=30).text
    assert "data-nginx-error" in edit_page and "proxy_buffering" in edit_page
    assert portway.http("rejected.example.test")[0] == 200  # the default site, not the host
    assert portway.upstream_of("rejected.example.test") is None
