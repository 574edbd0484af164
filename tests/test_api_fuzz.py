"""Schemathesis over /api/schema against a real `portway serve`: no input gives a 5xx,
and every answer has the shape the document declares (success bodies and NPM's error body).

A throwaway installation (real nginx on loopback ports, its own database), authenticated
as its administrator; destructive calls are welcome. Bounded: a few examples per
operation, so the whole run takes a few minutes at most on two cores.

Everything stays on loopback: names resolve through a loopback DNS server that knows
none of them, and the ACME directory is a closed loopback port, so a generated
Let's Encrypt request fails at once instead of reaching the Internet.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[test]'")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from portway.testing.network import DNSServer  # noqa: E402
from portway.testing.process import PortwayProcess  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e_db]

EXAMPLES_PER_OPERATION = 10


@pytest.fixture(scope="module")
def fuzz_portway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortwayProcess]:
    with DNSServer() as dns_server:
        process = PortwayProcess(
            tmp_path_factory.mktemp("fuzz") / "data",
            env={
                "PORTWAY_RESOLVER": dns_server.address,
                "LE_SERVER": "https://127.0.0.1:9/directory",
                "PORTWAY_LOG_LEVEL": "WARNING",
            },
        )
        try:
            process.start()
            yield process
        finally:
            process.close()


CHECKS = ("not_a_server_error", "response_schema_conformance", "content_type_conformance")


def _run_operation(operation, mode, token: str, statuses: dict[int, int]) -> str | None:  # noqa: ANN001
    """Hypothesis over one operation in one generation mode; the failure text, or None.

    Counts the answers' status codes into `statuses`.
    """
    check_functions = [getattr(schemathesis.checks, name) for name in CHECKS]

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same inputs on every run: a failure here reproduces
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # noqa: ANN001
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(headers=headers, timeout=60)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=check_functions, headers=headers)

    try:
        run()
    except Unsatisfiable:  # nothing to vary (no parameters, so no invalid input either)
        return None
    except Exception as exc:  # a check failed (or the request did): report and go on
        return f"{operation.label} [{mode.value}]: {exc}"
    return None


def test_no_input_gives_a_server_error_and_answers_match_the_schema(
    fuzz_portway: PortwayProcess,
):
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{fuzz_portway.admin_port}/api/schema")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, [op.label for op in operations]
    failures = []
    statuses: dict[int, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _run_operation(operation, mode, fuzz_portway.token, statuses)
            if failure:
                failures.append(failure)
    summary = f"answers by status: {dict(sorted(statuses.items()))}"
    assert not failures, (
        "\n\n".join(failures) + f"\n\n{summary}\nPortway log:\n{fuzz_portway.log()}"
    )
    # The run exercised the API as the admin, not only its error paths
    assert sum(n for status, n in statuses.items() if status < 300) > 100, summary
    assert fuzz_portway.api("GET", "/api/users/me")[0] == 200, "the admin's token was lost"
