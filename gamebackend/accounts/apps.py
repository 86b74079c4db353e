from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "gamebackend.accounts"
    label = "accounts"
    verbose_name = "Player accounts"
