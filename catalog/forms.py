"""Forms of the catalogue pages: search and browse filters, the rating widget, the history import."""
from django import forms
from django.core.exceptions import ValidationError

from catalog.history_import import DEFAULT_IMDB_SCALE, IMDB_SCALES
from catalog.models import HALF_STARS
from catalog.search import MAX_QUERY_LENGTH
from catalog.selectors import BROWSE_SORTS, genres_by_id
from catalog.services import validate_score

YEAR_BOUNDS = {"min_value": 1870, "max_value": 2100}


class GenreField(forms.ChoiceField):
    """A genre by its slug, cleaned to the Genre: a ModelChoiceField's choices and checks, from the
    genres kept in the process (catalog.selectors.genres_by_id) instead of a query per form."""

    default_error_messages = {"invalid_choice": forms.ModelChoiceField.default_error_messages["invalid_choice"]}

    def __init__(self, **kwargs):
        super().__init__(choices=self._genre_choices, **kwargs)

    @staticmethod
    def _genre_choices() -> list[tuple[str, str]]:
        genres = sorted(genres_by_id().values(), key=lambda genre: (genre.name, genre.pk))
        return [("", "Any genre")] + [(genre.slug, str(genre)) for genre in genres]

    def clean(self, value):
        slug = super().clean(value)
        if not slug:
            return None
        return next(genre for genre in genres_by_id().values() if genre.slug == slug)

    def valid_value(self, value) -> bool:
        if any(genre.slug == value for genre in genres_by_id().values()):
            return True
        return any(genre.slug == value for genre in genres_by_id(refresh=True).values())  # a genre added since


class CatalogueFilterForm(forms.Form):
    """Genre and year range shared by search and browse."""

    genre = GenreField(required=False)
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


class HistoryUploadForm(forms.Form):
    file = forms.FileField(
        label="Export file",
        help_text="Letterboxd: the export zip, ratings.csv or watchlist.csv. IMDb: ratings.csv.",
    )


class _RowIndexesField(forms.TypedMultipleChoiceField):
    """Row indexes out of a set that may hold thousands (ChoiceField would scan its choices per value)."""

    def __init__(self, *, allowed: set[str], **kwargs):
        super().__init__(coerce=int, required=False, **kwargs)
        self.allowed = allowed

    def valid_value(self, value):
        return str(value) in self.allowed


class HistoryConfirmForm(forms.Form):
    """The preview's answers: which matched rows to import (`include`), the film picked for each
    ambiguous row (`choice_<row>`, empty for none) and the IMDb scale. Anything else is a form
    error, never a guess: a value is only ever compared with the choices the preview offered."""

    def __init__(self, data=None, *, rows: list[dict], **kwargs):
        super().__init__(data, **kwargs)
        self.rows = rows
        matched = {str(index) for index, row in enumerate(rows) if row["status"] == "matched"}
        self.fields["include"] = _RowIndexesField(allowed=matched, label="Films to import")
        self.fields["scale"] = forms.ChoiceField(choices=list(IMDB_SCALES.items()), required=False, label="IMDb scale")
        for index, row in enumerate(rows):
            if row["status"] == "ambiguous":
                self.fields[f"choice_{index}"] = forms.TypedChoiceField(
                    choices=[("", "None of these")] + [(str(pk), str(pk)) for pk in row["candidate_ids"]],
                    coerce=int,
                    empty_value=None,
                    required=False,
                    label=f"{row['title']} ({row['file']}, line {row['line']})",
                )

    def plan(self) -> dict:
        """Keyword arguments for history_import.confirm_history_import (only when the form is valid)."""
        included = set(self.cleaned_data["include"])
        matched = {index for index, row in enumerate(self.rows) if row["status"] == "matched"}
        choices = {
            int(name.removeprefix("choice_")): value
            for name, value in self.cleaned_data.items()
            if name.startswith("choice_") and value is not None
        }
        scale = self.cleaned_data["scale"] or DEFAULT_IMDB_SCALE
        return {"choices": choices, "excluded": matched - included, "scale": scale}
