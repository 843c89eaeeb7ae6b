"""URLs of onboarding (favourite genres, then rating a few movies)."""
from django.urls import path

from recommendations import onboarding_views

app_name = "onboarding"

urlpatterns = [
    path("welcome/", onboarding_views.start, name="start"),
    path("welcome/genres/", onboarding_views.genres, name="genres"),
    path("welcome/rate/", onboarding_views.rate, name="rate"),
]
