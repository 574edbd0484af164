"""The engine reads only changed rows (portway.nginx.hostcache) and splits hosts into
fast and slow ones (portway.nginx.fastengine.split_hosts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from portway.access.models import AccessList, AccessListClient
from portway.certificates.models import Certificate
from portway.hosts.models import DeadHost, ProxyHost, RedirectionHost
from portway.nginx.engine import load_state, load_state_uncached
from portway.nginx.fastengine import split_hosts
from portway.nginx.fastpath import ineligible
from portway.nginx.hostcache import HostCache
from portway.nginx.render import ProxyHostSpec
from portway.nginx.render_redirection import RedirectionHostSpec
from portway.testing.api import make_admin


def _proxy(key_id: int, *names: str, advanced: str = "") -> ProxyHostSpec:
    return ProxyHostSpec(
        id=key_id,
        domain_names=names,
        forward_scheme="http",
        forward_host="127.0.0.1",
        forward_port=80,
        advanced_config=advanced,
    )


def test_a_slow_wildcard_makes_the_names_it_matches_slow():
    wildcard = _proxy(1, "*.example.com", advanced="")  # a wildcard name is slow itself
    deep = _proxy(2, "a.b.example.com")
    direct = _proxy(3, "a.example.com")
    apex = _proxy(4, "example.com")  # `*.example.com` does not match the bare name
    elsewhere = _proxy(5, "a.example.org")
    fast, slow, reasons = split_hosts([wildcard, deep, direct, apex, elsewhere], ineligible)
    assert [s.key for s in fast] == ["proxy-4", "proxy-5"]
    assert [s.key for s in slow] == ["proxy-1", "proxy-2", "proxy-3"]
    assert "wildcard" in reasons["proxy-1"]
    assert reasons["proxy-2"] == (
        "its name a.b.example.com is matched by another host's wildcard name *.example.com"
    )


def test_https_upstreams_whose_sni_names_share_a_keep_alive_pool_are_kept_apart():
    """Two SNI names in one of the router's HTTPS pools, on one port, could share TLS
    connections to one address: the second host takes the reload path; a host with the
    same name, another port, or a plain HTTP upstream stays fast."""
    import zlib

    from portway.nginx.fastpath import TLS_POOLS

    pools: dict[int, str] = {}
    for index in range(1000):
        name = f"svc{index}.ingress.test"
        first = pools.setdefault(zlib.crc32(name.encode()) % TLS_POOLS, name)
        if first != name:
            second = name
            break

    def https(key_id: int, upstream: str, port: int = 443) -> ProxyHostSpec:
        return ProxyHostSpec(
            id=key_id,
            domain_names=(f"h{key_id}.test",),
            forward_scheme="https",
            forward_host=upstream,
            forward_port=port,
        )

    specs = [
        https(1, first),
        https(2, second),
        https(3, first),  # the same SNI name may share connections
        https(4, second, port=8443),  # another port: another address to the cache
        _proxy(5, "plain.test"),
        RedirectionHostSpec(  # an https forward scheme, but no upstream connection
            id=6,
            domain_names=("old.test",),
            forward_http_code=301,
            forward_scheme="https",
            forward_domain_name="new.test",
        ),
    ]
    fast, slow, reasons = split_hosts(specs, ineligible)
    assert [s.key for s in fast] == ["proxy-1", "proxy-3", "proxy-4", "proxy-5", "redirection-6"]
    assert [s.key for s in slow] == ["proxy-2"]
    assert reasons["proxy-2"] == (
        f"its HTTPS upstream {second}:443 would share keep-alive connections with host "
        f"proxy-1's upstream {first}"
    )


def test_advanced_config_is_slow_and_plain_hosts_are_fast():
    fast, slow, reasons = split_hosts(
        [_proxy(1, "a.test"), _proxy(2, "b.test", advanced="add_header X 1;")], ineligible
    )
    assert [s.key for s in fast] == ["proxy-1"]
    assert [s.key for s in slow] == ["proxy-2"]
    assert reasons == {"proxy-2": "advanced config"}


@pytest.mark.django_db
def test_only_changed_rows_are_read_again_and_the_result_equals_a_full_read():
    owner = make_admin()
    cert = Certificate.objects.create(owner=owner, provider="other", nice_name="c")
    directory = Path(settings.DATA_DIR) / "certificates" / str(cert.pk)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fullchain.pem").write_text("one")
    (directory / "privkey.pem").write_text("one")
    guarded = AccessList.objects.create(owner=owner, name="guarded")
    hosts = [
        ProxyHost.objects.create(
            owner=owner,
            domain_names=[f"h{i}.test"],
            forward_scheme="http",
            forward_host="127.0.0.1",
            forward_port=8000 + i,
            certificate=cert if i % 2 else None,
            access_list_id=guarded.pk if i == 3 else 0,
        )
        for i in range(6)
    ]
    RedirectionHost.objects.create(
        owner=owner,
        domain_names=["r.test"],
        forward_scheme="https",
        forward_domain_name="x.test",
        forward_http_code=301,
    )
    DeadHost.objects.create(owner=owner, domain_names=["d.test"])

    cache = HostCache()

    def same_as_full_read() -> None:
        incremental, full = load_state(cache), load_state_uncached()
        assert incremental.hosts == full.hosts
        assert incremental.versions == full.versions

    same_as_full_read()
    assert cache.loaded == 8
    load_state(cache)
    assert cache.loaded == 0

    hosts[0].forward_port = 9999
    hosts[0].save()
    same_as_full_read()
    assert cache.loaded == 1

    # a certificate renewed (its files replaced) rereads every host that uses it
    (directory / "fullchain.pem.new").write_text("two")
    (directory / "fullchain.pem.new").replace(directory / "fullchain.pem")
    same_as_full_read()
    assert cache.loaded == 3

    # an access list's clients changed: its host is read again
    AccessListClient.objects.create(access_list=guarded, address="127.0.0.2", directive="allow")
    same_as_full_read()
    assert cache.loaded == 1
    guarded_spec = [s for s in load_state(cache).hosts if s.key == f"proxy-{hosts[3].pk}"][0]
    assert guarded_spec.access.clients

    # disabled and deleted rows are gone; a queryset update of the certificate is seen
    ProxyHost.objects.filter(pk=hosts[4].pk).update(enabled=False)
    hosts[5].delete()
    ProxyHost.objects.filter(pk=hosts[2].pk).update(certificate=cert)
    same_as_full_read()
    assert cache.loaded == 1
