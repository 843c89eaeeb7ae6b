"""How allauth treats movierec users: usernames derived from email; imported users never sign in."""
import uuid

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth import get_user_model
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def populate_username(self, request, user):
        """Sign-up asks only for an email; the (unique, internal) username is derived from it.

        This mirrors MovierecUserManager.create_user, so every user created on the site has the
        same kind of username whichever path created it.
        """
        if user.username:
            return
        username_field = get_user_model()._meta.get_field("username")
        email = (user.email or "").lower()
        taken = get_user_model().objects.filter(username=email).exists()
        if email and len(email) <= username_field.max_length and not taken:
            user.username = email
        else:
            user.username = f"user-{uuid.uuid4().hex}"

    def pre_login(self, request, user, **kwargs):
        """Imported and simulated users exist to train the model: they never hold a session."""
        if getattr(user, "is_imported", False):
            from allauth.account.internal.stagekit import clear_login

            clear_login(request)
            return self.respond_user_inactive(request, user)
        return super().pre_login(request, user, **kwargs)

    def get_login_redirect_url(self, request):
        """A user who has not told us their tastes yet starts with the onboarding."""
        from recommendations.onboarding import needs_onboarding

        if needs_onboarding(request.user):
            return reverse("onboarding:start")
        return super().get_login_redirect_url(request)

    def send_password_reset_mail(self, user, email, context):
        """A password reset must not turn an imported account into one that can sign in."""
        if getattr(user, "is_imported", False):
            return None
        return super().send_password_reset_mail(user, email, context)
