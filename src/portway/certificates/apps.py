from django.apps import AppConfig


class CertificatesConfig(AppConfig):
    name = "portway.certificates"
    label = "certificates"
