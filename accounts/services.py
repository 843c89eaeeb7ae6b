"""Services that write accounts: profile edits and account deletion."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

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
