from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"

    def ready(self):
        # Connects the sign-up/log-in receivers that keep a guest's ratings.
        from recommendations import onboarding  # noqa: F401
