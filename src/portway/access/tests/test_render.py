"""The access-list directives as nginx text (pure rendering, no nginx)."""

from __future__ import annotations

from pathlib import Path

from portway.access.render import AccessSpec, location_directives, server_directives
from portway.nginx.config import serialize

USERS = Path("/data/nginx/access/3.htpasswd")


def text(spec: AccessSpec) -> list[str]:
    return [
        line for line in serialize(server_directives(spec)).splitlines() if not line.startswith("#")
    ]


def test_allow_rules_close_with_deny_all_and_users_ask_for_password() -> None:
    spec = AccessSpec(3, True, False, (("allow", "10.0.0.0/8"), ("allow", "2001:db8::/32")), USERS)
    assert text(spec) == [
        "satisfy any;",
        "allow 10.0.0.0/8;",
        "allow 2001:db8::/32;",
        "deny all;",
        'auth_basic "Authorization required";',
        f"auth_basic_user_file {USERS};",
    ]
    assert serialize(location_directives(spec)) == 'proxy_set_header Authorization "";\n'


def test_deny_rules_only_and_explicit_all_are_not_closed_again() -> None:
    assert text(AccessSpec(1, False, True, (("deny", "192.0.2.1"),))) == [
        "satisfy all;",
        "deny 192.0.2.1;",
    ]
    closed = AccessSpec(1, False, True, (("allow", "192.0.2.1"), ("deny", "all")))
    assert text(closed).count("deny all;") == 1


def test_pass_auth_or_no_users_keeps_the_header() -> None:
    assert location_directives(AccessSpec(1, False, True, (), USERS)) == []
    assert location_directives(AccessSpec(1, False, False, (("allow", "all"),))) == []
    assert location_directives(None) == []
