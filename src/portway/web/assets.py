"""Whether the vendored front-end assets (Tabler) were built into static/vendor/.

They come from npm (`npm ci && npm run build`, see scripts/build-assets.mjs) and are not
committed, so a checkout that skipped that step still serves pages, with a banner saying
how to fix it instead of an unstyled mess.
"""

from __future__ import annotations

from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"  # written last by the build script
BUILD_COMMAND = "npm ci && npm run build"


def assets_built() -> bool:
    """True once `npm run build` has completed (checked per call: one stat)."""
    return MANIFEST.is_file()
