"""What `portway check` and `portway apply` print about an apply."""

from __future__ import annotations

from portway.cli import _report
from portway.nginx.engine import ApplyReport, HostOutcome


def test_admin_site_is_not_counted_as_a_host(capsys):
    """The admin UI's own site (PORTWAY_ADMIN_DOMAIN) is tested like a host, but an
    administrator with one proxy host must read "1 hosts"; a rejected admin site is
    named as such."""
    report = ApplyReport(
        "g1",
        {
            "admin-0": HostOutcome(False, "nginx rejected the admin site"),
            "proxy-1": HostOutcome(True),
        },
    )
    assert _report(report) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "1 hosts, 1 rejected by nginx"
    assert "  admin site: nginx rejected the admin site" in out


def test_all_online_exits_zero(capsys):
    assert _report(ApplyReport("g1", {"proxy-1": HostOutcome(True)})) == 0
    assert capsys.readouterr().out.startswith("1 hosts, 0 rejected by nginx")
