"""Services that write accounts: profile edits, API tokens and account deletion."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from catalog.models import Rating
from catalog.services import refresh_movie_stats

PROFILE_FIELDS = ("birth_year", "gender", "occupation", "country")


def validate_birth_year(birth_year) -> None:
    """Birth years run from 1900 to the current year; None means "not told"."""
    if birth_year is None:
        return
    current_year = timezone.now().year
    if not 1900 <= birth_year <= current_year:
        raise ValidationError(f"Enter a year between 1900 and {current_year}.", code="birth_year_range")


def update_profile(*, user, **fields):
    """Change the user's optional demographics; raises ValidationError and saves nothing on bad input."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Not profile fields: {', '.join(sorted(unknown))}")
    if "birth_year" in fields:
        try:
            validate_birth_year(fields["birth_year"])
        except ValidationError as error:
            raise ValidationError({"birth_year": error.messages}) from error
    for name, value in fields.items():
        setattr(user, name, value)
    user.full_clean(exclude=[f.name for f in user._meta.fields if f.name not in fields])
    user.save(update_fields=list(fields))
    return user


@transaction.atomic
def delete_account(*, user) -> None:
    """Delete the user with their ratings, tags, watchlist and not-interested list.

    The movies they rated get their rating count and mean recomputed in the same transaction.
    """
    rated_movie_ids = list(Rating.objects.filter(user=user).values_list("movie_id", flat=True))
    user.delete()
    refresh_movie_stats(rated_movie_ids)


def issue_api_token(*, user) -> tuple[AuthToken, str]:
    """A new API token for one sign-in (each sign-in gets its own): (stored row, token text).

    The text is shown once; only its hash is stored. The token expires after
    API_TOKEN_TTL_DAYS. The user's expired tokens are deleted, and beyond API_TOKENS_PER_USER
    live ones the oldest go, so clients that sign in on every run do not pile tokens up.
    """
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    instance, token = AuthToken.objects.create(user=user)
    surplus = AuthToken.objects.filter(user=user).order_by("-created", "-pk").values_list("pk", flat=True)
    AuthToken.objects.filter(pk__in=list(surplus[settings.API_TOKENS_PER_USER:])).delete()
    return instance, token


def revoke_api_tokens(*, user, digest: str | None = None) -> int:
    """Revoke one of the user's API tokens (by digest) or, without a digest, all of them; returns how many."""
    tokens = AuthToken.objects.filter(user=user)
    if digest is not None:
        tokens = tokens.filter(digest=digest)
    deleted, _ = tokens.delete()
    return deleted
