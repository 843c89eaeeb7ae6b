"""Forms of the catalogue pages: search and browse filters, the rating widget."""
from django import forms
from django.core.exceptions import ValidationError

from catalog.models import HALF_STARS, Genre
from catalog.search import MAX_QUERY_LENGTH
from catalog.selectors import BROWSE_SORTS
from catalog.services import validate_score

YEAR_BOUNDS = {"min_value": 1870, "max_value": 2100}


class CatalogueFilterForm(forms.Form):
    """Genre and year range shared by search and browse."""

    genre = forms.ModelChoiceField(
        queryset=Genre.objects.all(), to_field_name="slug", required=False, empty_label="Any genre"
    )
    year_from = forms.IntegerField(required=False, label="From year", **YEAR_BOUNDS)
    year_to = forms.IntegerField(required=False, label="To year", **YEAR_BOUNDS)

    def clean(self):
        cleaned = super().clean()
        year_from, year_to = cleaned.get("year_from"), cleaned.get("year_to")
        if year_from and year_to and year_from > year_to:
            raise ValidationError("“From year” must not be after “To year”.")
        return cleaned

    def filters(self) -> dict:
        """Keyword arguments for the selectors (only when the form is valid)."""
        return {key: self.cleaned_data.get(key) for key in ("genre", "year_from", "year_to")}


class SearchForm(CatalogueFilterForm):
    q = forms.CharField(
        required=False,
        label="Search",
        strip=True,
        max_length=MAX_QUERY_LENGTH,
        error_messages={"max_length": f"Search for at most {MAX_QUERY_LENGTH} characters (yours has %(show_value)d)."},
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Title, director or actor", "autocomplete": "off"}),
    )

    field_order = ["q", "genre", "year_from", "year_to"]


class BrowseForm(CatalogueFilterForm):
    decade = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=[])
    sort = forms.ChoiceField(
        required=False, choices=[(key, label) for key, (label, _) in BROWSE_SORTS.items()], initial="popular"
    )

    def __init__(self, *args, decades=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decade"].choices = [("", "Any decade")] + [(d, f"{d}s") for d in decades]

    def filters(self) -> dict:
        filters = super().filters()
        decade = self.cleaned_data.get("decade")
        if decade is not None:
            filters["year_from"] = max(filters["year_from"] or decade, decade)
            filters["year_to"] = min(filters["year_to"] or decade + 9, decade + 9)
        return filters


class RatingForm(forms.Form):
    """Stars from 0.5 to 5.0 in half steps; the same rule as catalog.services.rate_movie."""

    score = forms.CharField()

    def clean_score(self):
        return validate_score(self.cleaned_data["score"])

    @staticmethod
    def choices():
        return HALF_STARS
