from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"

    def ready(self):
        # Connects the sign-up/log-in receivers that keep a guest's ratings.
        from recommendations import onboarding  # noqa: F401
        # Connects the receiver that hands a group over when its owner's membership goes.
        from recommendations import group_services  # noqa: F401
