"""The Access Lists pages: list with search and status, form with inline errors, delete."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from portway.access.htpasswd import verify_password
from portway.access.models import AccessList, AccessListItem
from portway.hosts.models import ProxyHost
from portway.testing.api import make_admin, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return make_admin()


@pytest.fixture
def ui(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def form(**fields: str) -> dict[str, str]:
    data = {
        "name": "Staff",
        "satisfy_any": "on",
        "items-0-username": "alice",
        "items-0-password": "wonderland1",
        "items-1-username": "",
        "items-1-password": "",
        "clients": "allow 10.0.0.0/8\ndeny all",
    }
    data.update(fields)
    return data


def test_navigation_list_and_search(ui, admin) -> None:
    page = ui.get("/").content.decode()
    assert 'id="nav-access-lists"' in page and "Access Lists" in page
    assert "No access lists yet" in ui.get("/access-lists").content.decode()
    ui.post("/access-lists/new", form())
    ui.post("/access-lists/new", form(name="Family"))
    staff = AccessList.objects.get(name="Staff")
    ProxyHost.objects.create(
        owner=admin,
        domain_names=["a.example.test"],
        forward_host="127.0.0.1",
        forward_port=80,
        access_list_id=staff.pk,
    )
    page = ui.get("/access-lists").content.decode()
    assert "Staff" in page and "Family" in page and "Used by 1 host" in page and "Unused" in page
    searched = ui.get("/access-lists", {"q": "fam"}).content.decode()
    assert "Family" in searched and "Staff" not in searched
    # the host form offers the list by name, the host list names it
    assert re.search(
        rf'<option value="{staff.pk}"[^>]*>Staff</option>',
        ui.get("/proxy-hosts/new").content.decode(),
    )
    assert "Staff" in ui.get("/proxy-hosts").content.decode()


def test_create_and_edit_keep_passwords(ui) -> None:
    response = ui.post("/access-lists/new", form())
    assert response.status_code == 302
    access_list = AccessList.objects.get()
    assert access_list.satisfy_any and not access_list.pass_auth
    assert list(access_list.clients.values_list("directive", "address")) == [
        ("allow", "10.0.0.0/8"),
        ("deny", "all"),
    ]
    old = AccessListItem.objects.get().password_hash
    page = ui.get(f"/access-lists/{access_list.pk}").content.decode()
    assert 'value="alice"' in page and "wonderland1" not in page and old not in page
    # empty password: kept; a new user in a spare row
    ui.post(
        f"/access-lists/{access_list.pk}",
        form(**{"items-0-password": "", "items-1-username": "bob", "items-1-password": "b0b"}),
    )
    stored = dict(AccessListItem.objects.values_list("username", "password_hash"))
    assert stored["alice"] == old and verify_password("b0b", stored["bob"])


@pytest.mark.parametrize(
    ("fields", "where", "text"),
    [
        ({"name": ""}, 'data-error-for="name"', "empty"),
        ({"items-1-username": "a:b", "items-1-password": "x"}, 'data-error-for="items-1"', "':'"),
        ({"items-1-username": "carol"}, 'data-error-for="items-1"', "required"),
        ({"clients": "allow 10.0.0.0/33"}, 'data-error-for="clients"', "line 1"),
        ({"clients": "allow 10.0.0.1\npermit all"}, 'data-error-for="clients"', "line 2"),
    ],
    ids=["name", "username-colon", "new-user-no-password", "cidr", "rule-word"],
)
def test_bad_input_shown_inline_nothing_saved(ui, fields, where, text) -> None:
    response = ui.post("/access-lists/new", form(**fields))
    assert response.status_code == 400
    page = response.content.decode()
    match = re.search(where + r">([^<]*)<", page)
    assert match and text.lower() in html.unescape(match.group(1)).lower(), page[
        page.find("invalid-feedback") - 200 :
    ][:800]
    assert not AccessList.objects.exists()


def test_delete_unused_and_in_use(ui, admin) -> None:
    ui.post("/access-lists/new", form())
    access_list = AccessList.objects.get()
    host = ProxyHost.objects.create(
        owner=admin,
        domain_names=["used.example.test"],
        forward_host="127.0.0.1",
        forward_port=80,
        access_list_id=access_list.pk,
    )
    page = ui.post(f"/access-lists/{access_list.pk}/delete", follow=True).content.decode()
    assert "used.example.test" in page and AccessList.objects.exists()
    host.delete()
    page = ui.post(f"/access-lists/{access_list.pk}/delete", follow=True).content.decode()
    assert "deleted" in page and not AccessList.objects.exists()


def test_hidden_section(admin) -> None:
    client = Client()
    client.force_login(make_user("h@example.com", access_lists="hidden"))
    assert 'id="nav-access-lists"' not in client.get("/").content.decode()
    assert "permission" in client.get("/access-lists").content.decode()


def test_real_ip_settings_page(ui) -> None:
    from portway.access.realip import get_setting

    page = ui.get("/settings").content.decode()
    page = ui.get("/settings/default-site").content.decode()
    assert 'id="settings-real-ip"' in page
    page = ui.get("/settings/real-ip").content.decode()
    assert "Real client IP" in page and "Cloudflare networks known" in page
    bad = ui.post(
        "/settings/real-ip",
        {"value": "X-Forwarded-For", "trusted_proxies": "10.0.0.0/8\nmy proxy"},
    )
    assert bad.status_code == 400
    match = re.search(r'data-error-for="trusted_proxies">([^<]*)<', bad.content.decode())
    assert match and "line 2" in match.group(1).lower()
    assert get_setting().value == "off"
    ok = ui.post("/settings/real-ip", {"value": "CF-Connecting-IP", "cloudflare": "on"})
    assert ok.status_code == 302
    setting = get_setting()
    assert setting.value == "CF-Connecting-IP" and setting.meta["cloudflare"] is True


def test_login_gate_fields_in_the_form(ui, admin) -> None:
    member = make_user("member@example.com", name="Member", access_lists="manage")
    page = ui.get("/access-lists/new").content.decode()
    assert 'name="portway_login"' in page and f'value="{member.pk}"' in page
    response = ui.post(
        "/access-lists/new", {**form(), "portway_login": "on", "portway_users": str(member.pk)}
    )
    assert response.status_code == 302
    saved = AccessList.objects.get(name="Staff")
    assert saved.portway_login is True and saved.portway_users == [member.pk]
    # a non-admin sees no user picker (it would list every account) and keeps the choice
    other = Client()
    other.force_login(member)
    saved.owner = member
    saved.save()
    page = other.get(f"/access-lists/{saved.pk}").content.decode()
    assert 'name="portway_login"' in page and 'name="portway_users"' not in page
    other.post(f"/access-lists/{saved.pk}", {**form(), "items-0-password": ""})
    saved.refresh_from_db()
    assert saved.portway_login is False and saved.portway_users == [member.pk]


def test_login_gate_setting_page(ui, admin) -> None:
    page = ui.get("/settings/login-gate").content.decode()
    assert 'id="settings-login-gate"' in page and 'name="cookie_domain"' in page
    response = ui.post("/settings/login-gate", {"cookie_domain": "not a domain"})
    assert response.status_code == 400
    assert 'data-error-for="cookie_domain"' in response.content.decode()
    assert ui.post("/settings/login-gate", {"cookie_domain": ".Club.Example"}).status_code == 302
    from portway.accounts.gate import cookie_domain_for

    assert cookie_domain_for("wiki.club.example") == "club.example"
    assert cookie_domain_for("club.example") == "club.example"
    assert cookie_domain_for("otherclub.example") is None
    member = make_user("viewer@example.com")
    other = Client()
    other.force_login(member)
    assert other.post("/settings/login-gate", {"cookie_domain": ""}).status_code == 403
