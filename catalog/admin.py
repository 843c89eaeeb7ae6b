"""Django admin of the catalogue for staff: movies with cast and directors, people, ratings, lists.

Staff are warned before saving a likely duplicate (a movie with another's external id, or the same
normalised title and year; a person with another's normalised name), and merge duplicates with the
"Merge" action (catalog.services.merge_movies / merge_people), which loses no rating, list entry,
tag, credit or history row.
"""
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from catalog import services
from catalog.models import (
    Actor,
    CastMember,
    Director,
    Genre,
    Keyword,
    Movie,
    NotInterested,
    Rating,
    Tag,
    WatchlistEntry,
)
from catalog.tasks import fetch_posters_task
from recommendations.cache import REDIS_ERRORS
from catalog.templatetags.catalog_extras import poster_src
from catalog.text import normalize


class DecadeListFilter(admin.SimpleListFilter):
    title = "decade"
    parameter_name = "decade"

    def lookups(self, request, model_admin):
        decades = sorted({year // 10 * 10 for year in Movie.objects.exclude(year=None).values_list("year", flat=True)})
        return [(str(decade), f"{decade}s") for decade in reversed(decades)]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            decade = int(self.value())
            return queryset.filter(year__gte=decade, year__lte=decade + 9)
        return queryset


class CastMemberInline(admin.TabularInline):
    model = CastMember
    autocomplete_fields = ["actor"]
    fields = ["actor", "order"]
    extra = 3
    ordering = ["order"]


def _links(objects) -> str:
    """Comma-separated admin links to objects."""
    return format_html_join(", ", '<a href="{}">{}</a>', (
        (reverse(f"admin:catalog_{o._meta.model_name}_change", args=[o.pk]), str(o)) for o in objects))


def movies_with_title_and_year(title: str, year, *, exclude_pk=None):
    """Movies whose normalised title or alternative title is `title`'s, in the same year."""
    name = normalize(title)
    if not name:
        return Movie.objects.none()
    same_title = (Q(search_title=name) | Q(search_title__startswith=f"{name}\n")
                  | Q(search_title__endswith=f"\n{name}") | Q(search_title__contains=f"\n{name}\n"))
    return Movie.objects.filter(same_title, year=year).exclude(pk=exclude_pk)


class DuplicateWarningForm(forms.ModelForm):
    """A form that refuses, once, to save what looks like a duplicate: the error names the likely
    twins (with links) and the staff member ticks `save_anyway` if it is a different one."""

    save_anyway = forms.BooleanField(
        required=False, label="Save anyway",
        help_text="Tick if this is not the same as the entries named above (e.g. a remake or a namesake).")
    duplicate_noun = "movie"

    def likely_duplicates(self, data):
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        twins = list(self.likely_duplicates(data)[:5]) if not self.errors else []
        if twins and not data.get("save_anyway"):
            raise ValidationError(format_html(
                "This looks like a duplicate of {}. Merge them instead (select both in the list, action "
                "\u201cMerge\u201d), or tick \u201cSave anyway\u201d below if it is a different {}.",
                _links(twins), self.duplicate_noun), code="likely_duplicate")
        return data


class MovieForm(DuplicateWarningForm):
    """MovieAdmin's form (the admin builds its fields, with its formfield overrides)."""

    def likely_duplicates(self, data):
        return movies_with_title_and_year(data.get("title", ""), data.get("year"), exclude_pk=self.instance.pk)

    def _unique_id(self, name, label):
        value = self.cleaned_data.get(name)
        if value in (None, ""):
            return None
        owner = Movie.objects.filter(**{name: value}).exclude(pk=self.instance.pk).first()
        if owner:
            raise ValidationError(format_html(
                "{} {} already belongs to {}: this is the same film. Merge them instead (select both in the list, "
                "action \u201cMerge\u201d).", label, value, _links([owner])), code="duplicate_external_id")
        return value

    def clean_imdb_id(self):
        return self._unique_id("imdb_id", "IMDb id")

    def clean_tmdb_id(self):
        return self._unique_id("tmdb_id", "TMDB id")

    def clean_movielens_id(self):
        return self._unique_id("movielens_id", "MovieLens id")


class LikelyDuplicateMovieFilter(admin.SimpleListFilter):
    title = "likely duplicates"
    parameter_name = "duplicates"

    def lookups(self, request, model_admin):
        return [("title-year", "Same title and year")]

    def queryset(self, request, queryset):
        if self.value() != "title-year":
            return queryset
        groups: dict[tuple, list[int]] = {}
        for pk, search_title, year in Movie.objects.values_list("pk", "search_title", "year").iterator():
            groups.setdefault((search_title.split("\n", 1)[0], year), []).append(pk)
        return queryset.filter(pk__in=[pk for pks in groups.values() if len(pks) > 1 for pk in pks])


class MergeActionMixin:
    """The "Merge" action: an intermediate page to choose which of the selected rows to keep."""

    merge_template = "admin/catalog/merge.html"

    def merge_preview(self, obj) -> str:
        raise NotImplementedError

    def merge_default(self, objects):
        raise NotImplementedError

    def merge(self, keep, others):
        raise NotImplementedError

    @admin.action(description="Merge the selected %(verbose_name_plural)s into one")
    def merge_selected(self, request, queryset):
        objects = list(queryset)
        if len(objects) < 2:
            self.message_user(request, "Select at least two entries to merge.", messages.WARNING)
            return None
        if request.POST.get("confirm") == "yes":
            keep = next((o for o in objects if str(o.pk) == request.POST.get("keep")), None)
            if keep is None:
                self.message_user(request, "Choose the entry to keep.", messages.ERROR)
            else:
                summary = self.merge(keep, [o for o in objects if o.pk != keep.pk])
                self.message_user(request, str(summary), messages.SUCCESS)
                return redirect(reverse(f"admin:catalog_{self.model._meta.model_name}_change", args=[keep.pk]))
        default = self.merge_default(objects)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Merge {len(objects)} {self.model._meta.verbose_name_plural}",
            "opts": self.model._meta,
            "rows": [(o, self.merge_preview(o)) for o in objects],
            "default": default,
            "action": "merge_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, self.merge_template, context)


@admin.register(Movie)
class MovieAdmin(MergeActionMixin, admin.ModelAdmin):
    list_display = ["poster_thumbnail", "title", "year", "genre_names", "rating_count", "rating_mean_display", "updated_at"]
    list_display_links = ["poster_thumbnail", "title"]
    list_filter = ["genres", DecadeListFilter, LikelyDuplicateMovieFilter]
    search_fields = ["title", "alternative_titles", "imdb_id", "=movielens_id", "=tmdb_id"]
    form = MovieForm
    actions = ["merge_selected", "fetch_tmdb_posters"]
    autocomplete_fields = ["genres", "directors", "keywords"]
    readonly_fields = ["poster_preview", "rating_count", "rating_mean", "created_at", "updated_at"]
    inlines = [CastMemberInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["title", "alternative_titles", "year", "release_date", "runtime", "synopsis"]}),
        ("People and genres", {"fields": ["genres", "directors", "keywords"]}),
        ("Poster", {"fields": ["poster", "poster_url", "poster_preview"]}),
        ("External ids", {"fields": ["movielens_id", "imdb_id", "tmdb_id"]}),
        ("Ratings", {"fields": ["rating_count", "rating_mean", "created_at", "updated_at"]}),
    ]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("genres")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.method == "POST":  # the box a likely-duplicate warning asks for, right under it
            fieldsets = [("Likely duplicate", {"fields": ["save_anyway"]}), *fieldsets]
        return fieldsets

    def merge_default(self, movies):
        return max(movies, key=lambda m: (m.rating_count, m.movielens_id is not None, -m.pk))

    def merge_preview(self, movie):
        ids = ", ".join(f"{label} {value}" for label, value in (
            ("MovieLens", movie.movielens_id), ("IMDb", movie.imdb_id), ("TMDB", movie.tmdb_id)) if value)
        return (f"{movie.rating_count} ratings, {WatchlistEntry.objects.filter(movie=movie).count()} on watchlists, "
                f"{movie.directors.count()} directors, {movie.cast.count()} cast; {ids or 'no external ids'}")

    def merge(self, keep, others):
        return services.merge_movies(keep, others)

    @admin.action(description="Fetch posters from TMDB for the selected movies")
    def fetch_tmdb_posters(self, request, queryset):
        if not settings.TMDB_API_KEY:
            self.message_user(request, "Set TMDB_API_KEY to fetch posters from TMDB.", level="error")
            return
        ids = list(queryset.values_list("pk", flat=True))
        try:
            fetch_posters_task.delay(movie_ids=ids, retry_missing=True)
        except REDIS_ERRORS as error:
            self.message_user(request, f"Could not queue the poster task (is Redis running?): {error}", level="error")
            return
        self.message_user(request, f"Fetching posters for {len(ids)} movie{'s' if len(ids) != 1 else ''} from TMDB "
                                   "in the background; they appear as they arrive.")

    @admin.display(description="Genres")
    def genre_names(self, movie):
        return ", ".join(genre.name for genre in movie.genres.all())

    @admin.display(description="Mean", ordering="rating_mean")
    def rating_mean_display(self, movie):
        return f"{movie.rating_mean:.2f}" if movie.rating_count else "—"

    @admin.display(description="Poster")
    def poster_thumbnail(self, movie):
        return format_html('<img src="{}" alt="" width="40" height="60">', poster_src(movie))

    @admin.display(description="Preview")
    def poster_preview(self, movie):
        if not movie.pk:
            return "Shown after saving (a generated placeholder when there is no poster URL)."
        return format_html(
            '<img src="{}" alt="Poster of {}" width="150" height="225">',
            poster_src(movie),
            movie.title,
        )


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Keyword)
class KeywordAdmin(admin.ModelAdmin):
    search_fields = ["name"]


class PersonForm(DuplicateWarningForm):
    duplicate_noun = "person"

    def likely_duplicates(self, data):
        name = data.get("name") or ""
        return type(self.instance).objects.filter(search_name=normalize(name)).exclude(pk=self.instance.pk)


class LikelyDuplicatePersonFilter(admin.SimpleListFilter):
    title = "likely duplicates"
    parameter_name = "duplicates"

    def lookups(self, request, model_admin):
        return [("name", "Same name (accents and case aside)")]

    def queryset(self, request, queryset):
        if self.value() != "name":
            return queryset
        shared = queryset.model.objects.values("search_name").annotate(n=Count("id")).filter(n__gt=1)
        return queryset.filter(search_name__in=shared.values("search_name"))


class PersonAdmin(MergeActionMixin, admin.ModelAdmin):
    list_display = ["name", "imdb_name_id", "film_count"]
    search_fields = ["name", "search_name", "imdb_name_id"]
    list_filter = [LikelyDuplicatePersonFilter]
    form = PersonForm
    actions = ["merge_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(films=Count("movies", distinct=True))

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": ["name", "imdb_name_id"]})]
        if request.method == "POST":
            fieldsets.insert(0, ("Likely duplicate", {"fields": ["save_anyway"]}))
        return fieldsets

    @admin.display(description="Films", ordering="films")
    def film_count(self, person):
        return person.films

    def merge_default(self, people):
        return max(people, key=lambda p: (p.films, p.imdb_name_id is not None, len(p.name.encode()), -p.pk))

    def merge_preview(self, person):
        films = list(person.movies.order_by("-rating_count")[:3])
        more = person.films - len(films)
        return ", ".join(map(str, films)) + (f" and {more} more" if more > 0 else "") or "no films"

    def merge(self, keep, others):
        return services.merge_people(keep, others)


@admin.register(Director)
class DirectorAdmin(PersonAdmin):
    pass


@admin.register(Actor)
class ActorAdmin(PersonAdmin):
    pass


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    """Ratings saved and deleted through catalog.services, so movie statistics stay current."""

    list_display = ["user", "movie", "score", "updated_at"]
    list_filter = ["score", "user__source"]
    search_fields = ["user__email", "movie__title"]
    autocomplete_fields = ["user", "movie"]
    readonly_fields = ["created_at", "updated_at"]
    list_select_related = ["user", "movie"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["user", "movie"] if obj else [])

    def save_model(self, request, obj, form, change):
        saved = services.rate_movie(user=obj.user, movie=obj.movie, score=obj.score)
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    def delete_model(self, request, obj):
        services.remove_rating(user=obj.user, movie=obj.movie)

    def delete_queryset(self, request, queryset):
        movie_ids = list(queryset.values_list("movie_id", flat=True).distinct())
        queryset.delete()
        services.refresh_movie_stats(movie_ids)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["tag", "user", "movie", "created_at"]
    search_fields = ["tag", "user__email", "movie__title"]
    raw_id_fields = ["user", "movie"]


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(admin.ModelAdmin):
    list_display = ["user", "movie", "added_at"]
    search_fields = ["user__email", "movie__title"]
    autocomplete_fields = ["user", "movie"]


@admin.register(NotInterested)
class NotInterestedAdmin(admin.ModelAdmin):
    list_display = ["user", "movie", "added_at"]
    search_fields = ["user__email", "movie__title"]
    autocomplete_fields = ["user", "movie"]
