"""pytest plugin loaded with `-p portway.testing.plugin` (see pyproject.toml).

Imported before Django's settings, so every test run gets its own data directory
instead of touching ./data (removed when the run ends). Database choice still comes
from DB_* variables.

It also marks every test that needs a database with `database`: tests marked
`django_db`, tests using one of pytest-django's database fixtures (directly or through
other fixtures), and end-to-end tests that start a real `portway serve` (the `portway`
fixture). scripts/test runs `(database and not slow) or e2e_db` again on PostgreSQL
and MariaDB.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

if not os.environ.get("PORTWAY_DATA_DIR"):
    _data_dir = tempfile.mkdtemp(prefix="portway-test-")
    os.environ["PORTWAY_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")

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
