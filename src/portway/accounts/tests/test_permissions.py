"""portway.accounts.permissions: require() and visible_queryset() for other apps."""

from __future__ import annotations

import pytest

from portway.accounts.models import Permission, User
from portway.accounts.permissions import SECTIONS, can, permission_for, require, visible_queryset
from portway.core.errors import NotAuthenticated, PermissionDenied
from portway.hosts.models import ProxyHost
from portway.testing.api import PASSWORD, make_admin, make_user

pytestmark = pytest.mark.django_db


def _host(owner: User, name: str) -> ProxyHost:
    return ProxyHost.objects.create(
        owner=owner, domain_names=[name], forward_host="app", forward_port=8080
    )


@pytest.mark.parametrize("section", SECTIONS)
def test_admin_passes_everything(section):
    admin = make_admin(proxy_hosts="hidden", certificates="hidden")
    require(admin, section, "view")
    require(admin, section, "manage")


@pytest.mark.parametrize(
    ("granted", "view", "manage"),
    [("hidden", False, False), ("view", True, False), ("manage", True, True)],
)
def test_levels(granted, view, manage):
    user = make_user(proxy_hosts=granted)
    assert can(user, "proxy_hosts", "view") is view
    assert can(user, "proxy_hosts", "manage") is manage
    for level, allowed in (("view", view), ("manage", manage)):
        if allowed:
            require(user, "proxy_hosts", level)
        else:
            with pytest.raises(PermissionDenied) as exc:
                require(user, "proxy_hosts", level)
            assert exc.value.status == 403
            assert "proxy hosts" in exc.value.message
    require(user, "streams", "manage")  # other sections keep their default


def test_missing_row_created_with_defaults():
    user = User.objects.create_user("legacy@example.com", PASSWORD, name="Legacy")
    require(user, "certificates", "manage")
    permission = Permission.objects.get(user=user)
    assert permission.visibility == "user"
    assert all(getattr(permission, s) == "manage" for s in SECTIONS)
    admin = User.objects.create_user("a2@example.com", PASSWORD, name="A2", is_admin=True)
    assert permission_for(admin).visibility == "all"


def test_disabled_or_missing_user_is_not_authenticated():
    user = make_user(is_disabled=True)
    with pytest.raises(NotAuthenticated):
        require(user, "proxy_hosts", "view")
    with pytest.raises(NotAuthenticated):
        require(None, "proxy_hosts", "view")
    with pytest.raises(NotAuthenticated):
        visible_queryset(None, "proxy_hosts", ProxyHost.objects.all())
    assert can(user, "proxy_hosts", "view") is False


def test_unknown_section_or_level_is_a_programming_error():
    user = make_user()
    with pytest.raises(ValueError):
        require(user, "proxy-hosts", "view")
    with pytest.raises(ValueError):
        require(user, "proxy_hosts", "delete")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        visible_queryset(user, "hosts", ProxyHost.objects.all())


def test_visible_queryset_narrows_by_visibility():
    admin = make_admin()
    own = make_user("own@example.com", visibility="user")
    everyone = make_user("all@example.com", visibility="all")
    mine = _host(own, "mine.example.com")
    _host(admin, "admins.example.com")
    _host(everyone, "theirs.example.com")
    everything = ProxyHost.objects.all()
    assert list(visible_queryset(own, "proxy_hosts", everything)) == [mine]
    assert visible_queryset(everyone, "proxy_hosts", everything).count() == 3
    assert visible_queryset(admin, "proxy_hosts", everything).count() == 3
    admin_limited = make_admin("limited@example.com", visibility="user")
    assert visible_queryset(admin_limited, "proxy_hosts", everything).count() == 3
    # it composes with the caller's own filters
    narrowed = everything.filter(forward_port=8080)
    assert list(visible_queryset(own, "proxy_hosts", narrowed)) == [mine]
