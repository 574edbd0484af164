"""Every case in ../shared/cases (inputs users reported as failing) against a real Portway.

Each case runs on a fresh installation (`portway serve` with real nginx). Steps are sent
as written; the case's placeholder upstream ports 8080/8081 are replaced by real upstreams
on 127.0.0.1, and `/proxy-hosts/1/` means the first host the case created. The checks
for each case id are below. A case whose setup does not fit these generic steps (its own
certificates, TLS upstreams, two servers...) has its own module instead,
`tests/test_case_<id with - as _>.py`, whose test names carry the case id. A case with
neither fails `test_every_case_has_a_check`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from portway.testing.plugin import missing_prerequisite
from portway.testing.process import wait_for

# e2e_db: scripts/test runs these on PostgreSQL and MariaDB as well
pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]


def _cases_dir() -> Path | None:
    configured = os.environ.get("PORTWAY_SHARED_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared")
    for base in candidates:
        if (base / "cases").is_dir():
            return base / "cases"
    return None


def load_cases() -> list[dict]:
    directory = _cases_dir()
    if directory is None:
        return []
    cases = []
    for path in sorted(directory.glob("*.json")):
        for case in json.loads(path.read_text()):
            case["_file"] = path.name
            cases.append(case)
    return cases


CASES = load_cases()
CHECKS: dict[str, Callable] = {}


def check(case_id: str) -> Callable:
    def register(fn: Callable) -> Callable:
        CHECKS[case_id] = fn
        return fn

    return register


class CaseRun:
    """Runs a case's steps against one Portway and keeps each step's answer."""

    def __init__(self, portway, upstreams, case: dict) -> None:  # noqa: ANN001
        self.portway = portway
        self.case = case
        self.upstream_a = upstreams("upstream-8080")
        self.upstream_b = upstreams("upstream-8081")
        self.ports = {8080: self.upstream_a.port, 8081: self.upstream_b.port}
        self.results: list[tuple[int | None, object]] = []
        self.created: list[int] = []

    def body(self, step: dict) -> object:
        body = copy.deepcopy(step.get("body"))
        if isinstance(body, dict) and body.get("forward_port") in self.ports:
            body["forward_port"] = self.ports[body["forward_port"]]
        return body

    def path(self, step: dict) -> str:
        path = step["path"]
        for index, host_id in enumerate(self.created, start=1):
            path = path.replace(f"/proxy-hosts/{index}/", f"/proxy-hosts/{host_id}/")
        return path

    def run_step(self, step: dict) -> tuple[int | None, object]:
        if "restart" in step:
            self.portway.restart()
            result: tuple[int | None, object] = (None, "restarted")
        else:
            result = self.portway.api(step["method"], self.path(step), self.body(step))
            status, data = result
            if (
                step["method"] == "POST"
                and step["path"] == "/api/nginx/proxy-hosts"
                and status == 201
            ):
                self.created.append(data["id"])
        self.results.append(result)
        return result

    def run_all(self) -> list[tuple[int | None, object]]:
        for step in self.case["steps"]:
            self.run_step(step)
        return self.results

    def hosts(self) -> list[dict]:
        return self.portway.api("GET", "/api/nginx/proxy-hosts")[1]


def _error(result: tuple[int | None, object]) -> str:
    status, data = result
    assert status == 400, f"expected 400, got {status}: {data}"
    assert isinstance(data, dict) and data["error"]["code"] == 400
    return data["error"]["message"]


def _snapshot(directory: Path) -> dict[str, str]:
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.endswith((".log", ".sock", "-journal", "-wal", "-shm")):
            files[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@check("wildcard-domain")
def _wildcard(run: CaseRun) -> None:
    first, second = run.run_all()
    assert first[0] == 201, first
    assert first[1]["domain_names"] == ["*.example.com"]
    wait_for(lambda: run.portway.upstream_of("any-name.example.com") == "upstream-8080")
    assert "data/domain_names/0" in _error(second)
    assert len(run.hosts()) == 1


@check("trailing-dot-and-case")
def _trailing_dot(run: CaseRun) -> None:
    (created,) = run.run_all()
    assert created[0] == 201 and created[1]["domain_names"] == ["app.example.com"]
    wait_for(lambda: run.portway.upstream_of("app.example.com") == "upstream-8080")
    assert run.portway.upstream_of("app.example.com.") == "upstream-8080"
    assert run.portway.upstream_of("APP.Example.com") == "upstream-8080"


@check("duplicate-with-disabled-host")
def _duplicate_with_disabled(run: CaseRun) -> None:
    created, disabled, second, enable = run.run_all()
    assert created[0] == 201 and disabled == (200, True)
    assert second[0] == 201, second
    assert second[1]["domain_names"] == ["app.example.com"]
    message = _error(enable)
    assert "app.example.com" in message and "domain_names" in message
    first = run.portway.api("GET", f"/api/nginx/proxy-hosts/{run.created[0]}")[1]
    assert first["enabled"] is False
    wait_for(lambda: run.portway.upstream_of("app.example.com") == "upstream-8081")
    # the failed enable left nothing behind: both rows can still be deleted
    for host_id in run.created:
        assert run.portway.api("DELETE", f"/api/nginx/proxy-hosts/{host_id}") == (200, True)


@check("forward-host-injection")
def _injection(run: CaseRun) -> None:
    run.portway.wait_applied()
    before = _snapshot(run.portway.data_dir)
    results = run.run_all()
    fields = ["data/forward_host", "data/forward_host", "data/domain_names/0"]
    for result, field in zip(results, fields, strict=True):
        assert field in _error(result)
    assert run.hosts() == []
    assert run.portway.api("GET", "/api/nginx/certificates")[1] == []
    assert _snapshot(run.portway.data_dir) == before


@check("empty-and-odd-names")
def _empty_names(run: CaseRun) -> None:
    good = run.portway.create_proxy_host(["good.example.com"], run.upstream_a.port)
    wait_for(lambda: run.portway.upstream_of("good.example.com") == "upstream-8080")
    for result in run.run_all():
        assert "data/domain_names" in _error(result)
    assert [h["id"] for h in run.hosts()] == [good["id"]]
    run.portway.wait_applied()
    assert run.portway.upstream_of("good.example.com") == "upstream-8080"


@check("unresolvable-upstream-at-start")
def _unresolvable(run: CaseRun, dns_server) -> None:  # noqa: ANN001
    good, ghost, _restart = run.run_all()
    assert good[0] == 201 and ghost[0] == 201
    assert run.portway.api("GET", "/api/")[0] == 200
    assert run.portway.upstream_of("good.example.com") == "upstream-8080"
    assert run.portway.http("ghost.example.com")[0] == 502
    dns_server.records["bar"] = "127.0.0.1"
    # 'bar' now resolves (to the upstream the case calls port 3000: use ours)
    run.portway.api(
        "PUT", f"/api/nginx/proxy-hosts/{run.created[1]}", {"forward_port": run.upstream_b.port}
    )
    wait_for(lambda: run.portway.upstream_of("ghost.example.com") == "upstream-8081", timeout=30)


@check("advanced-config-server-block")
def _server_block(run: CaseRun) -> None:
    good_step, paste_step = run.case["steps"]
    assert run.run_step(good_step)[0] == 201
    wait_for(lambda: run.portway.upstream_of("good.example.com") == "upstream-8080")
    # nginx runs old and new workers side by side for ~100 ms after a reload: the
    # change is live for every connection once the apply has finished
    run.portway.wait_applied()
    status, data = run.run_step(paste_step)
    assert run.portway.upstream_of("good.example.com") == "upstream-8080"
    if status == 400:
        assert "server" in data["error"]["message"]
    else:
        assert status == 201
        assert data["meta"]["nginx_online"] is False
        assert '"server" directive is not allowed here' in data["meta"]["nginx_err"]
    run.portway.wait_applied()
    for _ in range(20):
        assert run.portway.upstream_of("good.example.com") == "upstream-8080"


def test_shared_cases_are_present():
    if _cases_dir() is None:
        missing_prerequisite("../shared/cases is not beside this checkout (set PORTWAY_SHARED_DIR)")
    assert CASES


def case_module(case_id: str) -> Path:
    """The module holding the tests of a case that has no generic check here."""
    return Path(__file__).with_name(f"test_case_{case_id.replace('-', '_')}.py")


def test_every_case_has_a_check():
    missing = []
    for case in CASES:
        module = case_module(case["id"])
        if case["id"] in CHECKS:
            continue
        if not module.exists() or case["id"].replace("-", "_") not in module.read_text():
            missing.append(case["id"])
    assert not missing, (
        f"cases without a check in {__file__} or a module tests/test_case_<id>.py: {missing}"
    )


GENERIC_CASES = [c for c in CASES if not case_module(c["id"]).exists()]


@pytest.mark.parametrize("case", GENERIC_CASES, ids=[c["id"] for c in GENERIC_CASES])
def test_case(case, portway, upstreams, dns_server):
    checker = CHECKS.get(case["id"])
    if checker is None:
        pytest.fail(f"no check for case {case['id']}")
    run = CaseRun(portway, upstreams, case)
    if "dns_server" in checker.__code__.co_varnames[: checker.__code__.co_argcount]:
        checker(run, dns_server)
    else:
        checker(run)
