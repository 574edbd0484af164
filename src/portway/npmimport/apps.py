from django.apps import AppConfig


class NpmImportConfig(AppConfig):
    """The NPM import: CLI verb `portway import-npm` and the admin's upload page."""

    name = "portway.npmimport"
    label = "npmimport"
