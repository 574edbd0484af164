"""scripts/install re-runs itself with sudo for a non-root user: every setting README.md
documents must survive that re-run (sudo drops the environment except what it is told
to keep), or `PORTWAY_TRUSTED_PROXIES=... scripts/install` would silently ignore it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# read by `portway tunnel connect` on a member's machine, never by the service
CLIENT_ONLY = {"PORTWAY_TUNNEL_KEY"}


def test_every_documented_setting_reaches_the_sudo_rerun() -> None:
    readme = (ROOT / "README.md").read_text()
    # the table of the "Settings" section (the container section has its own table)
    section = readme.split("\n## Settings\n", 1)[1]
    table = section.split("| Variable | Default | Meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.MULTILINE))
    documented -= CLIENT_ONLY
    script = (ROOT / "scripts" / "install").read_text()
    listed = re.search(r"^SETTINGS=\((.*?)^\)", script, re.MULTILINE | re.DOTALL)
    kept = set(listed.group(1).split())
    # that list is what the sudo re-run keeps
    assert '--preserve-env="$keep"' in script
    assert 'echo "${SETTINGS[*]},PORTWAY_INSTALL_ROOT"' in script
    assert len(documented) > 20
    assert documented <= kept, sorted(documented - kept)
