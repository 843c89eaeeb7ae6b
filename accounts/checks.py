"""System checks of accounts (registered in AccountsConfig.ready)."""
from django.conf import settings
from django.core import checks

# Backends that deliver nothing: verification and reset links would only reach the log (or memory).
UNDELIVERED_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


@checks.register(checks.Tags.security, deploy=True)
def email_is_delivered(app_configs, **kwargs):
    """`check --deploy`: sign-up needs a verified email, so the site must really send mail."""
    if settings.EMAIL_BACKEND not in UNDELIVERED_EMAIL_BACKENDS:
        return []
    return [
        checks.Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: verification and password-reset links are "
            "only written to the log, so nobody can finish signing up.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS) "
            "to send them by SMTP.",
            id="accounts.W001",
        )
    ]
