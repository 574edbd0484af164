from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "portway.hosts"
    label = "hosts"
