"""Django admin of the catalogue for staff: movies with cast and directors, people, ratings, lists."""
from django.conf import settings
from django.contrib import admin
from django.db import models
from django.utils.html import format_html

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


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    list_display = ["poster_thumbnail", "title", "year", "genre_names", "rating_count", "rating_mean_display", "updated_at"]
    list_display_links = ["poster_thumbnail", "title"]
    list_filter = ["genres", DecadeListFilter]
    search_fields = ["title", "alternative_titles", "imdb_id", "=movielens_id", "=tmdb_id"]
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
    actions = ["fetch_tmdb_posters"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("genres")

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


class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "imdb_name_id"]
    search_fields = ["name", "search_name", "imdb_name_id"]


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
