from django.apps import AppConfig
from django.core import checks


class WebConfig(AppConfig):
    name = "portway.web"
    label = "web"

    def ready(self) -> None:
        checks.register(check_assets, checks.Tags.staticfiles)


def check_assets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn at startup (and in `manage.py check`) when the UI assets were not built."""
    from portway.web.assets import BUILD_COMMAND, VENDOR_DIR, assets_built

    if assets_built():
        return []
    return [
        checks.Warning(
            f"The admin UI's CSS/JS assets are missing from {VENDOR_DIR}.",
            hint=f"Run `{BUILD_COMMAND}` in the repository root, then restart Portway.",
            id="portway.W001",
        )
    ]
