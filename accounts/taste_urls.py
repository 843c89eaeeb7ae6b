"""URL of the taste-profile page."""
from django.urls import path

from accounts import taste_views

app_name = "taste"

urlpatterns = [
    path("me/taste/", taste_views.profile, name="profile"),
]
