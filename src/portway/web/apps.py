from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "portway.web"
    label = "web"
