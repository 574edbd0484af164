"""pytest plugin loaded with `-p portway.testing.plugin` (see pyproject.toml).

Imported before Django's settings, so every test run gets its own data directory
instead of touching ./data. Database choice still comes from DB_* variables.
"""

from __future__ import annotations

import os
import tempfile

if not os.environ.get("PORTWAY_DATA_DIR"):
    os.environ["PORTWAY_DATA_DIR"] = tempfile.mkdtemp(prefix="portway-test-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portway.settings")
