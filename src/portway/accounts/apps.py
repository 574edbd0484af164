from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "portway.accounts"
    label = "accounts"
