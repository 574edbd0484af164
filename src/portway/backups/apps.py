from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "portway.backups"
    label = "backups"
