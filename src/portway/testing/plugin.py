"""pytest plugin loaded with `-p portway.testing.plugin` (see pyproject.toml).

Imported before Django's settings, so every test run gets its own data directory
instead of touching ./data (removed when the run ends). Database choice still comes
from DB_* variables.

It also marks every test that needs a database with `database`: tests marked
`django_db`, tests using one of pytest-django's database fixtures (directly or through
other fixtures), and end-to-end tests that start a real `portway serve` (the `portway`
fixture). scripts/test runs `(database and not slow) or e2e_db` again on PostgreSQL
and MariaDB.

Under CI=true no test may skip: a skip in CI means a prerequisite (a program, ../shared,
the IPv6 loopback...) is missing and the suite would claim more than it checked. Every
skip, whatever raised it (`pytest.skip`, a `skipif` mark, `importorskip`, an empty
parametrization), is turned into a failure that carries the skip's reason. Tests say why
they cannot run with `missing_prerequisite(reason)`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import NoReturn

import pytest

if not os.environ.get("PORTWAY_DATA_DIR"):
    _data_dir = tempfile.mkdtemp(prefix="portway-test-")
    os.environ["PORTWAY_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")
# An installation's /etc/portway/portway.env on the test machine must not reach tests
# (its database settings would); a test that wants a settings file names its own.
os.environ.setdefault("PORTWAY_ENV_FILE", "none")

# Fixtures that give a test a database: pytest-django's, and the e2e `portway` process.
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
        "portway",
    }
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m database` sees the mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("django_db") or fixtures & DATABASE_FIXTURES:
            item.add_marker(pytest.mark.database)


def in_ci() -> bool:
    """True when the run is CI's (CI=true, as GitHub Actions, GitLab CI and .ci/run set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def missing_prerequisite(reason: str) -> NoReturn:
    """Stop the current test because something it needs is not installed or reachable.

    Outside CI the test is skipped (scripts/test reports skips in its recap); under
    CI=true it fails with `reason`. `reason` names what is missing and how to provide it.
    """
    if in_ci():
        pytest.fail(f"missing prerequisite (CI=true never skips): {reason}", pytrace=False)
    # reported at the test's location (as a skipif mark is), not at this line
    raise pytest.skip.Exception(reason, _use_item_location=True)


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, where a skip is a failure: {_skip_reason(report.longrepr)}"
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    report = yield
    if in_ci() and report.skipped:  # a module-level skip or importorskip
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, where a skip is a failure: {_skip_reason(report.longrepr)}"
        )
    return report
