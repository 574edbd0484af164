from django.apps import AppConfig


class NginxConfig(AppConfig):
    name = "portway.nginx"
    label = "nginx"
