"""scripts/install re-runs itself with sudo for a non-root user: every setting README.md
documents must survive that re-run (sudo drops the environment except what it is told
to keep), or `PORTWAY_TRUSTED_PROXIES=... scripts/install` would silently ignore it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_documented_setting_reaches_the_sudo_rerun() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| Variable | Default | Meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.MULTILINE))
    script = (ROOT / "scripts" / "install").read_text()
    listed = re.search(r"^SETTINGS=\((.*?)^\)", script, re.MULTILINE | re.DOTALL)
    kept = set(listed.group(1).split())
    # that list is what the sudo re-run keeps
    assert '--preserve-env="$keep"' in script
    assert 'echo "${SETTINGS[*]},PORTWAY_INSTALL_ROOT"' in script
    assert len(documented) > 20
    assert documented <= kept, sorted(documented - kept)
