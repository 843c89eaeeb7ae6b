from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from accounts import checks, receivers  # noqa: F401 (registers the checks, connects the receivers)
