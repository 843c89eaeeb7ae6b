"""The taste-profile page."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.taste import taste_profile


@login_required
@require_GET
def profile(request):
    return render(request, "experience/taste_profile.html", {"taste": taste_profile(request.user)})
