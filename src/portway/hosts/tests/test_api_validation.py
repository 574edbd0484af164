"""Bad input for every proxy-host field, through POST and PUT /api/nginx/proxy-hosts.

Each rejection is a 400 whose message names the field (`data/domain_names/0 ...`) and
leaves the database exactly as it was (rows, including the PUT's target, and audit log).
Accepted-but-normalised input and the domain-name uniqueness rule are here too.
"""

from __future__ import annotations

from typing import Any

import pytest

from portway.hosts.models import ProxyHost
from portway.hosts.tests.test_api import (
    BASE,
    BOOL_FIELDS,
    FREE_BOOL_FIELDS,
    VALID,
    ProxyHostAPI,
    url,
)
from portway.testing.api import send

# Portway adds these beside NPM's nginx_online / nginx_err: a rejected edit whose previous
# config is still served, and why browsers would refuse the host's certificate
LIVE = {"nginx_serving_previous": False, "certificate_warnings": []}

pytestmark = pytest.mark.django_db

LOCATION = {"path": "/api", "forward_host": "10.0.0.20", "forward_port": 9000}


def names(*values: Any) -> dict[str, Any]:
    return {"domain_names": list(values)}


def loc(**fields: Any) -> dict[str, Any]:
    """A body whose only location is LOCATION with `fields` changed (None removes one)."""
    location = {**LOCATION, **fields}
    return {"locations": [{k: v for k, v in location.items() if v is not None}]}


def label(n: int, char: str = "a") -> str:
    return char * n


# A name of exactly 253 characters (the longest allowed) and one of 254.
NAME_253 = ".".join([label(63, "a"), label(63, "b"), label(63, "c"), label(61, "d")])
NAME_254 = ".".join([label(63, "a"), label(63, "b"), label(63, "c"), label(62, "d")])
assert len(NAME_253) == 253 and len(NAME_254) == 254

# (id, field named in the message, body fragment): rejected by POST (merged into a valid
# body) and by PUT (sent alone).
BAD_INPUT = [
    # ---------------------------------------------------------------- domain_names
    ("name-empty", "domain_names/0", names("")),
    ("name-blank", "domain_names/0", names("   ")),
    ("name-dot-only", "domain_names/0", names(".")),
    ("name-lone-star", "domain_names/0", names("*")),
    ("name-partial-wildcard", "domain_names/0", names("cam*.example.com")),
    ("name-star-tld", "domain_names/0", names("example.*")),
    ("name-star-inner", "domain_names/0", names("a.*.example.com")),
    ("name-double-wildcard", "domain_names/0", names("*.*.example.com")),
    ("name-empty-label", "domain_names/0", names("a..b")),
    ("name-leading-dot", "domain_names/0", names(".example.com")),
    ("name-label-64", "domain_names/0", names(label(64) + ".com")),
    ("name-254-chars", "domain_names/0", names(NAME_254)),
    ("name-leading-hyphen", "domain_names/0", names("-a.com")),
    ("name-trailing-hyphen", "domain_names/0", names("a-.com")),
    ("name-space", "domain_names/0", names("a b.com")),
    ("name-semicolon", "domain_names/0", names("a.com;")),
    ("name-double-quote", "domain_names/0", names('a"b.com')),
    ("name-single-quote", "domain_names/0", names("a'b.com")),
    ("name-open-brace", "domain_names/0", names("a{.com")),
    ("name-close-brace", "domain_names/0", names("a}.com")),
    ("name-hash", "domain_names/0", names("a#b.com")),
    ("name-newline", "domain_names/0", names("a.com\nb.com")),
    ("name-tab", "domain_names/0", names("a.com\tb")),
    ("name-backslash", "domain_names/0", names("a\\b.com")),
    ("name-dollar", "domain_names/0", names("$host")),
    ("name-backtick", "domain_names/0", names("a`b.com")),
    ("name-slash", "domain_names/0", names("a.com/x")),
    ("name-colon-port", "domain_names/0", names("a.com:8080")),
    ("name-url", "domain_names/0", names("https://a.com")),
    ("name-bad-idna", "domain_names/0", names("a\u200d\u0308.com")),
    ("name-int", "domain_names/0", names(5)),
    ("name-null", "domain_names/0", names(None)),
    ("name-object", "domain_names/0", names({"name": "a.com"})),
    ("name-second-item", "domain_names/1", names("ok.example.com", "bad name.com")),
    ("names-empty-list", "domain_names", names()),
    ("names-101", "domain_names", names(*[f"h{i}.example.com" for i in range(101)])),
    ("names-string", "domain_names", {"domain_names": "a.com"}),
    ("names-object", "domain_names", {"domain_names": {"0": "a.com"}}),
    ("names-duplicate", "domain_names", names("a.com", "a.com")),
    ("names-duplicate-normalised", "domain_names", names("A.com", "a.com.")),
    ("names-duplicate-idna", "domain_names", names("bücher.example", "xn--bcher-kva.example")),
    # ---------------------------------------------------------------- forward_host
    ("host-empty", "forward_host", {"forward_host": ""}),
    ("host-blank", "forward_host", {"forward_host": "  "}),
    ("host-ipv4-octet", "forward_host", {"forward_host": "999.1.1.1"}),
    ("host-ipv4-short", "forward_host", {"forward_host": "1.2.3"}),
    ("host-ipv4-long", "forward_host", {"forward_host": "1.2.3.4.5"}),
    ("host-url", "forward_host", {"forward_host": "http://x"}),
    ("host-with-path", "forward_host", {"forward_host": "backend/api"}),
    ("host-with-port", "forward_host", {"forward_host": "backend:8080"}),
    ("host-ipv6-unclosed", "forward_host", {"forward_host": "[::1"}),
    ("host-ipv6-bad", "forward_host", {"forward_host": "2001:db8::g"}),
    ("host-ipv6-zone", "forward_host", {"forward_host": "fe80::1%eth0"}),
    ("host-wildcard", "forward_host", {"forward_host": "*.example.com"}),
    ("host-empty-label", "forward_host", {"forward_host": "a..b"}),
    ("host-leading-hyphen", "forward_host", {"forward_host": "-backend"}),
    ("host-label-64", "forward_host", {"forward_host": label(64)}),
    ("host-too-long", "forward_host", {"forward_host": "a." * 128}),
    (
        "host-injection-quote",
        "forward_host",
        {"forward_host": '127.0.0.1"; return 200 "owned"; set $y "'},
    ),
    (
        "host-injection-newline",
        "forward_host",
        {"forward_host": "10.0.0.1\n}\nserver { listen 8081; }"},
    ),
    ("host-semicolon", "forward_host", {"forward_host": "10.0.0.1;"}),
    ("host-brace", "forward_host", {"forward_host": "backend}"}),
    ("host-variable", "forward_host", {"forward_host": "$http_host"}),
    ("host-int", "forward_host", {"forward_host": 10}),
    ("host-list", "forward_host", {"forward_host": ["10.0.0.1"]}),
    # ---------------------------------------------------------------- forward_scheme
    ("scheme-ftp", "forward_scheme", {"forward_scheme": "ftp"}),
    ("scheme-empty", "forward_scheme", {"forward_scheme": ""}),
    ("scheme-int", "forward_scheme", {"forward_scheme": 5}),
    ("scheme-upper", "forward_scheme", {"forward_scheme": "HTTP"}),
    ("scheme-with-colon", "forward_scheme", {"forward_scheme": "http://"}),
    # ---------------------------------------------------------------- forward_port
    ("port-0", "forward_port", {"forward_port": 0}),
    ("port-65536", "forward_port", {"forward_port": 65536}),
    ("port-negative", "forward_port", {"forward_port": -1}),
    ("port-word", "forward_port", {"forward_port": "abc"}),
    ("port-fraction", "forward_port", {"forward_port": 1.5}),
    ("port-fraction-string", "forward_port", {"forward_port": "80.5"}),
    ("port-bool", "forward_port", {"forward_port": True}),
    ("port-empty-string", "forward_port", {"forward_port": ""}),
    ("port-list", "forward_port", {"forward_port": [80]}),
    # ---------------------------------------------------------------- access_list_id
    ("access-list-negative", "access_list_id", {"access_list_id": -1}),
    ("access-list-missing", "access_list_id", {"access_list_id": 7}),
    ("access-list-word", "access_list_id", {"access_list_id": "abc"}),
    ("access-list-bool", "access_list_id", {"access_list_id": True}),
    # ---------------------------------------------------------------- certificate_id
    ("cert-missing", "certificate_id", {"certificate_id": 999999}),
    ("cert-negative", "certificate_id", {"certificate_id": -1}),
    ("cert-word", "certificate_id", {"certificate_id": "abc"}),
    ("cert-bool", "certificate_id", {"certificate_id": True}),
    ("cert-fraction", "certificate_id", {"certificate_id": 1.5}),
    # ---------------------------------------------------------------- advanced_config
    ("advanced-close-brace", "advanced_config", {"advanced_config": "}"}),
    ("advanced-open-brace", "advanced_config", {"advanced_config": "location /x {"}),
    ("advanced-escape", "advanced_config", {"advanced_config": "}\nserver { listen 8081; }\n{"}),
    ("advanced-quote", "advanced_config", {"advanced_config": 'add_header X "open;'}),
    ("advanced-int", "advanced_config", {"advanced_config": 5}),
    ("advanced-too-long", "advanced_config", {"advanced_config": "#" * 65537}),
    # ---------------------------------------------------------------- locations
    ("locations-object", "locations", {"locations": {"path": "/api"}}),
    ("locations-string", "locations", {"locations": "/api"}),
    ("location-not-object", "locations/0", {"locations": ["/api"]}),
    ("location-path-relative", "locations/0/path", loc(path="api")),
    ("location-path-empty", "locations/0/path", loc(path="")),
    ("location-path-semicolon", "locations/0/path", loc(path="/api;")),
    ("location-path-space", "locations/0/path", loc(path="/a b")),
    ("location-path-brace", "locations/0/path", loc(path="/api{")),
    ("location-path-close-brace", "locations/0/path", loc(path="/api}")),
    ("location-path-hash", "locations/0/path", loc(path="/api#x")),
    ("location-path-quote", "locations/0/path", loc(path='/api"')),
    ("location-path-newline", "locations/0/path", loc(path="/api\n}")),
    ("location-regex-semicolon", "locations/0/path", loc(path="~ ^/a;")),
    ("location-regex-brace", "locations/0/path", loc(path="~ ^/a{2}")),
    ("location-regex-trailing-backslash", "locations/0/path", loc(path="~ ^/a\\")),
    ("location-path-missing", "locations/0/path", loc(path=None)),
    ("location-path-int", "locations/0/path", loc(path=5)),
    ("location-host-bad", "locations/0/forward_host", loc(forward_host="999.1.1.1")),
    ("location-host-injection", "locations/0/forward_host", loc(forward_host="a;b")),
    ("location-host-missing", "locations/0/forward_host", loc(forward_host=None)),
    ("location-port-0", "locations/0/forward_port", loc(forward_port=0)),
    ("location-port-65536", "locations/0/forward_port", loc(forward_port=65536)),
    ("location-port-word", "locations/0/forward_port", loc(forward_port="abc")),
    ("location-port-missing", "locations/0/forward_port", loc(forward_port=None)),
    ("location-scheme-ftp", "locations/0/forward_scheme", loc(forward_scheme="ftp")),
    ("location-forward-path-semicolon", "locations/0/forward_path", loc(forward_path="/a;")),
    ("location-forward-path-space", "locations/0/forward_path", loc(forward_path="/a b")),
    ("location-forward-path-brace", "locations/0/forward_path", loc(forward_path="/a}")),
    ("location-forward-path-int", "locations/0/forward_path", loc(forward_path=5)),
    ("location-advanced-unbalanced", "locations/0/advanced_config", loc(advanced_config="}")),
    ("location-unknown-property", "locations/0/upstream", loc(upstream="x")),
    (
        "location-second-bad",
        "locations/1/path",
        {"locations": [LOCATION, {**LOCATION, "path": "nope"}]},
    ),
    (
        "locations-duplicate-path",
        "locations",
        {"locations": [LOCATION, {**LOCATION, "forward_port": 9001}]},
    ),
    # ---------------------------------------------------------------- meta, unknown
    ("meta-string", "meta", {"meta": "abc"}),
    ("meta-list", "meta", {"meta": [1]}),
    ("meta-int", "meta", {"meta": 5}),
    ("unknown-property", "nginx_template", {"nginx_template": "x"}),
    ("unknown-id", "id", {"id": 5}),
    ("unknown-owner", "owner_user_id", {"owner_user_id": 2}),
]
BAD_BOOLEANS = ["maybe", 2, -1, "", [True], {"v": True}]


class TestBadInput(ProxyHostAPI):
    @pytest.fixture(autouse=True)
    def _existing(self, _setup: None) -> None:
        # Another host, so "nothing changed" covers more than an empty table, and the
        # target of the PUTs.
        self.other = self.make_host(domain_names=["other.example.com"])
        self.host = self.make_host(
            domain_names=["target.example.com"], locations=[{**LOCATION, "forward_path": ""}]
        )

    @pytest.mark.parametrize(
        ("field", "fragment"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
    )
    def test_post_rejects(self, field: str, fragment: dict[str, Any]) -> None:
        self.rejected("post", BASE, self.body(**fragment), field=field)

    @pytest.mark.parametrize(
        ("field", "fragment"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
    )
    def test_put_rejects(self, field: str, fragment: dict[str, Any]) -> None:
        self.rejected("put", url(self.host.pk), fragment, field=field)

    @pytest.mark.parametrize("value", BAD_BOOLEANS, ids=repr)
    @pytest.mark.parametrize("field", BOOL_FIELDS)
    def test_bad_booleans(self, field: str, value: Any) -> None:
        self.rejected("post", BASE, self.body(**{field: value}), field=field)
        self.rejected("put", url(self.host.pk), {field: value}, field=field)

    @pytest.mark.parametrize(
        "field", ["domain_names", "forward_scheme", "forward_host", "forward_port"]
    )
    def test_post_requires(self, field: str) -> None:
        body = self.body()
        del body[field]
        message = self.rejected("post", BASE, body, field=field)
        assert "required" in message
        self.rejected("post", BASE, {**body, field: None}, field=field)

    @pytest.mark.parametrize(
        "field", ["domain_names", "forward_scheme", "forward_host", "forward_port"]
    )
    def test_put_refuses_null_for_routing_fields(self, field: str) -> None:
        self.rejected("put", url(self.host.pk), {field: None}, field=field)

    def test_several_errors_are_all_reported(self) -> None:
        message = self.rejected(
            "post", BASE, self.body(forward_port=0, forward_scheme="ftp", domain_names=["*"])
        )
        for field in ("domain_names/0", "forward_scheme", "forward_port"):
            assert f"data/{field} " in message

    @pytest.mark.parametrize("body", [[VALID], "null", '"text"', "not json", '{"domain_names": '])
    def test_body_not_an_object(self, body: Any) -> None:
        self.rejected("post", BASE, body)
        self.rejected("put", url(self.host.pk), body)

    def test_certificate_without_files(self) -> None:
        from portway.certificates import services as cert_services

        cert = cert_services.create_custom(self.admin, "Empty")
        message = self.rejected(
            "post", BASE, self.body(certificate_id=cert.pk), field="certificate_id"
        )
        assert "no certificate files" in message
        self.rejected("put", url(self.host.pk), {"certificate_id": cert.pk}, field="certificate_id")

    def test_certificate_new_requests_a_certificate_linked_once_issued(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        from portway.certificates.models import Certificate

        with django_capture_on_commit_callbacks() as queued:  # the ACME job is not run here
            host = self.create(certificate_id="new", ssl_forced=True)
        assert len(queued) == 1
        assert host["certificate_id"] == 0 and host["ssl_forced"] is False  # until issued
        cert = Certificate.objects.get(provider="letsencrypt")
        assert cert.domain_names == host["domain_names"]
        assert cert.acme["attach"] == [["hosts.ProxyHost", host["id"], None, {
            "ssl_forced": True, "http2_support": False, "hsts_enabled": False,
            "hsts_subdomains": False}]]  # fmt: skip

    def test_missing_access_list_names_it(self) -> None:
        message = self.rejected("post", BASE, self.body(access_list_id=7), field="access_list_id")
        assert "access list 7 does not exist" in message

    def test_messages_quote_the_offending_value_safely(self) -> None:
        message = self.rejected(
            "post", BASE, self.body(forward_host="10.0.0.1\n}\nserver { listen 8081; }")
        )
        assert "\n" not in message


# ====================================================================== accepted input


class TestAcceptedInput(ProxyHostAPI):
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            (["App.Example.COM."], ["app.example.com"]),
            (["bücher.example"], ["xn--bcher-kva.example"]),
            (["BÜCHER.example."], ["xn--bcher-kva.example"]),
            (["*.Example.com"], ["*.example.com"]),
            (["example.com", "*.example.com"], ["example.com", "*.example.com"]),
            (["_acme.example.com"], ["_acme.example.com"]),
            (["localhost"], ["localhost"]),
            ([NAME_253], [NAME_253]),
            ([label(63) + ".com"], [label(63) + ".com"]),
        ],
        ids=str,
    )
    def test_domain_names_are_normalised(self, given: list[str], stored: list[str]) -> None:
        host = self.create(domain_names=given)
        assert host["domain_names"] == stored
        assert ProxyHost.objects.get(pk=host["id"]).domain_names == stored

    def test_one_hundred_names(self) -> None:
        many = [f"h{i}.example.com" for i in range(100)]
        assert self.create(domain_names=many)["domain_names"] == many

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("backend", "backend"),
            ("Backend.Internal.", "backend.internal"),
            ("my_service", "my_service"),
            ("192.168.1.20", "192.168.1.20"),
            ("2001:DB8::0001", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("bücher.example", "xn--bcher-kva.example"),
        ],
    )
    def test_forward_host(self, given: str, stored: str) -> None:
        host = self.create(forward_host=given)
        assert host["forward_host"] == stored
        assert host["meta"]["nginx_online"] is True, host["meta"]

    @pytest.mark.parametrize(
        ("field", "given", "stored"),
        [
            ("forward_port", "8080", 8080),
            ("forward_port", 1, 1),
            ("forward_port", 65535, 65535),
            ("forward_scheme", "https", "https"),
            ("access_list_id", "0", 0),
            ("access_list_id", 0, 0),
            ("certificate_id", "0", 0),
            ("certificate_id", 0, 0),
            ("certificate_id", None, 0),
        ],
    )
    def test_coerced_values(self, field: str, given: Any, stored: Any) -> None:
        host = self.create(**{field: given})
        assert host[field] == stored and type(host[field]) is type(stored)

    @pytest.mark.parametrize("value", [True, False, 1, 0])
    @pytest.mark.parametrize("field", FREE_BOOL_FIELDS)
    def test_booleans_accept_true_false_0_1(self, field: str, value: Any) -> None:
        host = self.create(**{field: value})
        assert host[field] is bool(value)

    @pytest.mark.parametrize("value", [True, 1])
    @pytest.mark.parametrize(
        "field", ["ssl_forced", "http2_support", "hsts_enabled", "hsts_subdomains"]
    )
    def test_ssl_options_without_certificate_come_back_false(self, field: str, value: Any) -> None:
        host = self.create(**{field: value})
        assert host[field] is False
        response = send(self.api, "put", url(host["id"]), {field: value})
        assert response.status_code == 200 and response.json()[field] is False

    @pytest.mark.parametrize(
        ("location", "stored"),
        [
            ({"path": "~ ^/api/(.*)$"}, {"path": "~ ^/api/(.*)$"}),
            ({"path": "~* \\.(php|cgi)$"}, {"path": "~* \\.(php|cgi)$"}),
            ({"path": "= /exact"}, {"path": "= /exact"}),
            ({"path": "^~ /static/"}, {"path": "^~ /static/"}),
            ({"path": "/"}, {"path": "/"}),
            ({"forward_path": "v2/api"}, {"forward_path": "/v2/api"}),
            ({"forward_scheme": "https"}, {"forward_scheme": "https"}),
            ({"forward_host": "[::1]"}, {"forward_host": "::1"}),
            ({"forward_port": "9001"}, {"forward_port": 9001}),
            ({"id": 3}, {}),  # NPM's UI sends an id: accepted, not stored
            (
                {"advanced_config": "proxy_buffering off;"},
                {"advanced_config": "proxy_buffering off;"},
            ),
        ],
        ids=str,
    )
    def test_locations(self, location: dict[str, Any], stored: dict[str, Any]) -> None:
        host = self.create(locations=[{**LOCATION, **location}])
        expected = {
            "path": "/api",
            "forward_scheme": "http",
            "forward_host": "10.0.0.20",
            "forward_port": 9000,
            "forward_path": "",
            "advanced_config": "",
            **stored,
        }
        assert host["locations"] == [expected]
        assert host["meta"]["nginx_online"] is True, host["meta"]

    def test_regex_location_with_forward_path_passes_nginx(self) -> None:
        location = {**LOCATION, "path": "~ ^/api/(.*)$", "forward_path": "/v1"}
        host = self.create(locations=[location])
        assert host["meta"] == {"nginx_online": True, "nginx_err": None, **LIVE}

    def test_nulls_for_optional_fields_mean_not_given(self) -> None:
        host = self.create(access_list_id=None, advanced_config=None, locations=None, meta=None)
        assert host["access_list_id"] == 0 and host["advanced_config"] == ""
        assert host["locations"] == [] and host["meta"]["nginx_online"] is True


# ====================================================================== names in use


class TestDomainNamesInUse(ProxyHostAPI):
    def test_name_of_an_enabled_host_is_refused_case_insensitively(self) -> None:
        first = self.create(domain_names=["x.example.com", "shared.example.com"])
        message = self.rejected(
            "post",
            BASE,
            self.body(domain_names=["new.example.com", "Shared.EXAMPLE.com."]),
            field="domain_names/1",
        )
        assert "shared.example.com" in message and str(first["id"]) in message

    def test_update_to_a_taken_name_is_refused(self) -> None:
        self.create(domain_names=["taken.example.com"])
        second = self.create(domain_names=["free.example.com"])
        self.rejected(
            "put",
            url(second["id"]),
            {"domain_names": ["TAKEN.example.com"]},
            field="domain_names/0",
        )

    def test_a_host_may_keep_its_own_names(self) -> None:
        host = self.create(domain_names=["mine.example.com"])
        response = send(self.api, "put", url(host["id"]), {"domain_names": ["Mine.example.com"]})
        assert response.status_code == 200, response.content

    def test_wildcard_and_exact_names_do_not_clash(self) -> None:
        self.create(domain_names=["*.example.com"])
        assert self.create(domain_names=["app.example.com"])["domain_names"] == ["app.example.com"]

    def test_name_of_a_disabled_host_is_free_but_that_host_cannot_be_enabled(self) -> None:
        first = self.create(domain_names=["a.example.com"])
        assert self.api.post(url(first["id"], "disable")).json() is True
        second = self.create(domain_names=["A.example.com"])
        assert second["domain_names"] == ["a.example.com"]
        message = self.rejected("post", url(first["id"], "enable"), field="domain_names/0")
        assert str(second["id"]) in message
        assert ProxyHost.objects.get(pk=first["id"]).enabled is False
        # nor through PUT
        self.rejected("put", url(first["id"]), {"enabled": True}, field="domain_names/0")
        assert ProxyHost.objects.get(pk=first["id"]).enabled is False
        # once the second host is disabled, the first may come back
        assert self.api.post(url(second["id"], "disable")).json() is True
        assert self.api.post(url(first["id"], "enable")).json() is True

    def test_a_disabled_host_may_take_a_used_name(self) -> None:
        self.create(domain_names=["busy.example.com"])
        host = self.create(domain_names=["busy.example.com"], enabled=False)
        assert host["enabled"] is False
        disabled = self.create(domain_names=["idle.example.com"], enabled=False)
        response = send(
            self.api, "put", url(disabled["id"]), {"domain_names": ["busy.example.com"]}
        )
        assert response.status_code == 200, response.content

    def test_created_enabled_with_a_taken_name_creates_nothing(self) -> None:
        self.create(domain_names=["busy.example.com"])
        self.rejected(
            "post", BASE, self.body(domain_names=["busy.example.com"]), field="domain_names/0"
        )
        assert ProxyHost.objects.count() == 1
