"""Shared case long-name-blocks-applies: a valid 239-253-character name never stops applies.

nginx keeps server names in a hash whose buckets must hold the longest name; Portway sizes
server_names_hash_bucket_size from the names it renders, so both hosts are served.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from portway.testing.process import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

CASE_ID = "long-name-blocks-applies"


def _case() -> dict:
    configured = os.environ.get("PORTWAY_SHARED_DIR")
    bases = [Path(configured)] if configured else []
    bases.append(Path(__file__).resolve().parents[2] / "shared")
    for base in bases:
        for path in sorted((base / "cases").glob("*.json")):
            for case in json.loads(path.read_text()):
                if case["id"] == CASE_ID:
                    return case
    pytest.fail(f"case {CASE_ID} not found in ../shared/cases (set PORTWAY_SHARED_DIR)")


def test_long_name_blocks_applies_both_hosts_are_served(portway, upstreams):
    case = _case()
    ports = {8080: upstreams("upstream-8080").port, 8081: upstreams("upstream-8081").port}
    created = []
    for step in case["steps"]:
        body = copy.deepcopy(step["body"])
        body["forward_port"] = ports[body["forward_port"]]
        status, host = portway.api(step["method"], step["path"], body)
        assert status == 201, host
        assert host["meta"]["nginx_online"] is True, host["meta"]
        created.append(host)
    long_name = created[0]["domain_names"][0]
    assert 239 <= len(long_name) <= 253
    assert portway.upstream_of(long_name) == "upstream-8080"
    assert portway.upstream_of("after.example.test") == "upstream-8081"
    status = portway.api("GET", "/api/nginx/status")[1]
    assert status["stuck"] is False and status["last_error"] is None


def test_long_name_blocks_applies_longest_valid_names_and_wildcards(portway, upstreams):
    """253 characters, the most a name may have, exact and as a wildcard."""
    label = "a" * 63
    longest = f"{label}.{label}.{label}.{'b' * 56}.test"
    wildcard = f"*.{label}.{label}.{label}.{'c' * 54}.test"
    assert len(longest) == 253 and len(wildcard) == 253
    app, after = upstreams("app"), upstreams("after")
    host = portway.create_proxy_host([longest, wildcard], app.port)
    assert host["meta"]["nginx_online"] is True, host["meta"]
    portway.create_proxy_host(["after.example.test"], after.port)
    assert portway.upstream_of(longest) == "app"
    assert portway.upstream_of("x" + wildcard[1:]) == "app"
    wait_for(lambda: portway.upstream_of("after.example.test") == "after")
