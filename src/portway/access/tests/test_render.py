"""The access-list directives as nginx text (pure rendering, no nginx)."""

from __future__ import annotations

from pathlib import Path

from portway.access.render import AccessSpec, location_directives, server_directives
from portway.nginx.config import serialize

USERS = Path("/data/nginx/access/3.htpasswd")
GATE = Path("/data/gate/gate.sock")
# Remote-User/Remote-Email from a client never reach an upstream
STRIP = ['proxy_set_header Remote-User "";', 'proxy_set_header Remote-Email "";']
AUTH_STRIP = 'proxy_set_header Authorization "";'


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
    assert serialize(location_directives(spec)).splitlines() == [*STRIP, AUTH_STRIP]


def test_deny_rules_only_and_explicit_all_are_not_closed_again() -> None:
    assert text(AccessSpec(1, False, True, (("deny", "192.0.2.1"),))) == [
        "satisfy all;",
        "deny 192.0.2.1;",
    ]
    closed = AccessSpec(1, False, True, (("allow", "192.0.2.1"), ("deny", "all")))
    assert text(closed).count("deny all;") == 1


def lines(directives) -> list[str]:  # noqa: ANN001
    return serialize(directives).splitlines()


def test_pass_auth_or_no_users_keeps_the_header() -> None:
    assert lines(location_directives(AccessSpec(1, False, True, (), USERS))) == STRIP
    assert lines(location_directives(AccessSpec(1, False, False, (("allow", "all"),)))) == STRIP
    assert lines(location_directives(None)) == STRIP


def test_login_gate_asks_portway_and_passes_the_user_on() -> None:
    spec = AccessSpec(4, True, False, (("allow", "192.168.1.0/24"),), gate_socket=GATE)
    rendered = text(spec)
    assert rendered[:3] == ["satisfy any;", "allow 192.168.1.0/24;", "deny all;"]
    assert "auth_request /.portway/auth;" in rendered
    assert "auth_request_set $portway_gate_user $upstream_http_x_portway_user;" in rendered
    assert "error_page 401 =302 $portway_gate_redirect;" in rendered
    assert f"    proxy_pass http://unix:{GATE}:/.portway/auth/4;" in rendered
    assert f"    proxy_pass http://unix:{GATE}:;" in rendered
    assert "location = /.portway/auth {" in rendered and "    internal;" in rendered
    assert lines(location_directives(spec)) == [
        "proxy_set_header Remote-User $portway_gate_user;",
        "proxy_set_header Remote-Email $portway_gate_email;",
    ]
