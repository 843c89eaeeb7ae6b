"""Signal receivers of accounts (connected in AccountsConfig.ready)."""
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from accounts import services


@receiver(user_logged_out)
def revoke_api_tokens_on_sign_out(sender, request, user, **kwargs):
    """Signing out of the website signs the account out of the API too: every token is revoked."""
    if user is not None and user.pk is not None:  # a deleted account's tokens went with it
        services.revoke_api_tokens(user=user)
