"""Services that write accounts: profile edits, API tokens and account deletion."""
import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from catalog.models import Rating
from catalog.services import refresh_movie_stats

logger = logging.getLogger(__name__)

DELETION_LINK_SALT = "accounts.delete-account"
DELETION_LINK_MAX_AGE = 3600  # seconds a deletion link stays valid

PROFILE_FIELDS = ("birth_year", "gender", "occupation", "country")


def validate_birth_year(birth_year) -> None:
    """Birth years run from 1900 to the current year; None means "not told"."""
    if birth_year is None:
        return
    current_year = timezone.now().year
    if not 1900 <= birth_year <= current_year:
        raise ValidationError(f"Enter a year between 1900 and {current_year}.", code="birth_year_range")


def validate_occupation(occupation: str, *, stored: str = "") -> None:
    """An occupation is one of User.Occupation, blank, or the one the user already has (kept as it is)."""
    from accounts.models import User

    if occupation in ("", stored) or occupation in User.Occupation.values:
        return
    raise ValidationError("Choose one of the listed occupations (or leave it blank).", code="occupation_choice")


def update_profile(*, user, **fields):
    """Change the user's optional demographics; raises ValidationError (every field's errors) and saves nothing on bad input."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Not profile fields: {', '.join(sorted(unknown))}")
    errors: dict[str, list[str]] = {}
    if "birth_year" in fields:
        try:
            validate_birth_year(fields["birth_year"])
        except ValidationError as error:
            errors["birth_year"] = error.messages
    if "occupation" in fields:
        stored = user._meta.model.objects.filter(pk=user.pk).values_list("occupation", flat=True).first() or ""
        try:
            validate_occupation(fields["occupation"], stored=stored)
        except ValidationError as error:
            errors["occupation"] = error.messages
    for name, value in fields.items():
        setattr(user, name, value)
    try:  # the model's own rules for the other fields (and constraints not about a refused field)
        user.full_clean(exclude=[f.name for f in user._meta.fields if f.name not in fields or f.name in errors])
    except ValidationError as error:
        errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    user.save(update_fields=list(fields))
    return user


@transaction.atomic
def delete_account(*, user) -> None:
    """Delete the user and everything the site holds about them, at once.

    The database rows go with the user (ratings, tags, lists, history imports, genre picks,
    fold-in vectors, impressions, API tokens, email addresses, website sessions); the movies they rated get
    their rating count and mean recomputed in the same transaction. Once it commits, their
    cached recommendation lists (every model version's) are deleted from Redis. What stays in
    model artifacts until they are refitted and pruned is listed in the README ("Deleting an account").
    """
    user_id = user.pk
    rated_movie_ids = list(Rating.objects.filter(user=user).values_list("movie_id", flat=True))
    user.delete()
    refresh_movie_stats(rated_movie_ids)
    transaction.on_commit(lambda: forget_cached_recommendations(user_id))


def send_account_deletion_link(request, *, user) -> None:
    """Email the user a link that confirms deleting their account (for accounts without a password).

    The link carries the user's id, signed and timed: it works for an hour, and only for the
    same user signed in (accounts.views.confirm_delete_account checks both).
    """
    from allauth.account.adapter import get_adapter

    token = signing.dumps(user.pk, salt=DELETION_LINK_SALT)
    url = request.build_absolute_uri(reverse("accounts:confirm_delete", args=[token]))
    get_adapter(request).send_mail("account/email/delete_account", user.email,
                                   {"user": user, "delete_url": url, "request": request})


def user_id_of_deletion_link(token: str) -> int | None:
    """The user id a deletion link was made for, or None when it is forged or older than an hour."""
    try:
        return signing.loads(token, salt=DELETION_LINK_SALT, max_age=DELETION_LINK_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one too
        return None


def forget_cached_recommendations(user_id: int) -> None:
    """Delete the user's cached lists of every model version (and of "no model") from the cache."""
    from recommendations import cache

    try:
        cache.forget_user_lists(user_id, every_version=True)
    except cache.REDIS_ERRORS as error:
        logger.error("Could not delete the cached lists of deleted user %s (%s): they expire within "
                     "RECOMMENDER_CACHE_TTL.", user_id, error)


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
