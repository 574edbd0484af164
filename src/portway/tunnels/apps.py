from django.apps import AppConfig


class TunnelsConfig(AppConfig):
    """Tunnel hosts: TCP services carried over WebSockets on Portway's HTTPS port."""

    name = "portway.tunnels"
    label = "tunnels"

    def ready(self) -> None:
        """Republish the tunnel service's state when a user or an API token changes: a
        deleted token or a disabled user must stop opening (and holding) tunnels."""
        from portway.tunnels import signals  # noqa: F401
