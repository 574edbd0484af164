from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "portway.access"
    label = "access"
