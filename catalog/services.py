"""Services that write the catalogue: ratings, lists, the denormalised movie statistics, and merging
duplicate movies and people."""
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Avg, Count
from django.utils import timezone

from catalog.models import HALF_STARS, CastMember, Director, Movie, NotInterested, Rating, Tag, WatchlistEntry
from catalog.text import normalize
from recommendations import impressions
from recommendations.tasks import request_user_refresh

RATING_RULE = "A rating is 0.5 to 5 stars in half-star steps (0.5, 1, 1.5 … 5)."


def validate_score(score) -> float:
    """Return score as a float if it is a half-star value from 0.5 to 5.0, else raise ValidationError."""
    try:
        value = Decimal(str(score).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{score!r} is not a number. {RATING_RULE}", code="not_a_number")
    if not value.is_finite() or float(value) not in HALF_STARS:
        raise ValidationError(f"{score} is not a valid rating. {RATING_RULE}", code="out_of_range")
    return float(value)


def _notify_feedback_changed(user, outcome: tuple | None = None) -> None:
    """After commit: the debounced refresh of the user's list and, for a change made on the site
    now, the outcome (movie id, kind, stars) for the impressions log."""
    def notify():
        # A debounced Celery task folds the user in (recommendations.feedback) and replaces their cached list.
        request_user_refresh(user.pk)
        if outcome is not None:
            movie_id, kind, stars = outcome
            impressions.log_outcome(user, movie_id, kind, stars=stars)

    transaction.on_commit(notify)


@transaction.atomic
def rate_movie(*, user, movie, score, rated_at=None) -> Rating:
    """Create or change the user's rating of movie; keeps the movie's statistics current.

    rated_at (default now) is when the rating was given: an imported diary keeps its dates.
    A rated film leaves the user's watchlist (it has been seen).
    Raises ValidationError (nothing stored) when score is not a half-star value in 0.5..5.0.
    """
    value = validate_score(score)
    when = rated_at or timezone.now()
    rating, created = Rating.objects.get_or_create(
        user=user, movie=movie, defaults={"score": value, "created_at": when, "updated_at": when}
    )
    if not created and rating.score != value:
        rating.score = value
        rating.updated_at = when
        rating.save(update_fields=["score", "updated_at"])
    WatchlistEntry.objects.filter(user=user, movie=movie).delete()
    refresh_movie_stats([movie.pk])
    # An outcome only for a rating given now on the site, not one imported from a diary.
    _notify_feedback_changed(user, (movie.pk, "rated", value) if rated_at is None else None)
    return rating


@transaction.atomic
def remove_rating(*, user, movie) -> bool:
    """Delete the user's rating of movie if there is one; returns whether one was deleted."""
    deleted, _ = Rating.objects.filter(user=user, movie=movie).delete()
    if deleted:
        refresh_movie_stats([movie.pk])
        _notify_feedback_changed(user)
    return bool(deleted)


def add_to_watchlist(*, user, movie, added_at=None) -> WatchlistEntry:
    """Put movie on the user's watchlist (no-op if it is already there).

    added_at (default now) dates a new entry: an imported watchlist keeps its order.
    """
    entry, created = WatchlistEntry.objects.get_or_create(user=user, movie=movie)
    if created and added_at is None:
        impressions.log_outcome_on_commit(user, movie.pk, "watchlisted")
    if created and added_at is not None:  # added_at is auto_now_add: it can only be changed after
        WatchlistEntry.objects.filter(pk=entry.pk).update(added_at=added_at)
        entry.added_at = added_at
    return entry


def remove_from_watchlist(*, user, movie) -> None:
    """Take movie off the user's watchlist (no-op if it is not there)."""
    WatchlistEntry.objects.filter(user=user, movie=movie).delete()


@transaction.atomic
def hide_movie(*, user, movie) -> NotInterested:
    """Mark movie as "not interested": it is never recommended to this user again."""
    entry, created = NotInterested.objects.get_or_create(user=user, movie=movie)
    if created:
        _notify_feedback_changed(user, (movie.pk, "hidden", None))
    return entry


@transaction.atomic
def unhide_movie(*, user, movie) -> None:
    """Undo hide_movie: the movie may be recommended again."""
    deleted, _ = NotInterested.objects.filter(user=user, movie=movie).delete()
    if deleted:
        _notify_feedback_changed(user)


def refresh_movie_stats(movie_ids=None) -> None:
    """Recompute Movie.rating_count and Movie.rating_mean from the ratings table.

    With movie_ids, only those movies; without, the whole catalogue in one set-based update
    (used after bulk imports and the demo load).
    """
    if movie_ids is not None:
        stats = {
            row["movie_id"]: row
            for row in Rating.objects.filter(movie_id__in=movie_ids)
            .values("movie_id")
            .annotate(n=Count("id"), mean=Avg("score"))
        }
        movies = list(Movie.objects.filter(pk__in=movie_ids))
        for movie in movies:
            row = stats.get(movie.pk)
            movie.rating_count = row["n"] if row else 0
            movie.rating_mean = row["mean"] if row else 0.0
        Movie.objects.bulk_update(movies, ["rating_count", "rating_mean"])
        return
    movie_table, rating_table = Movie._meta.db_table, Rating._meta.db_table
    # One aggregate pass over the ratings joined back to the movies (per-movie correlated
    # subqueries take minutes at 10M ratings); only movies whose figures changed are written.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {movie_table} SET rating_count = s.n, rating_mean = s.mean
                FROM (SELECT m.id AS movie_id, COUNT(r.id) AS n, COALESCE(AVG(r.score), 0) AS mean
                      FROM {movie_table} m LEFT JOIN {rating_table} r ON r.movie_id = m.id GROUP BY m.id) s
                WHERE {movie_table}.id = s.movie_id
                AND ({movie_table}.rating_count <> s.n OR {movie_table}.rating_mean <> s.mean)"""
        )


# --- merging duplicates (admin actions, metadata repair) -------------------------------------


@dataclass
class MergeSummary:
    """What a merge moved onto the row kept; `dropped` counts the rows that were twins of one already there."""

    kept: str
    merged: int = 0
    moved: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        moved = ", ".join(f"{count} {name}" for name, count in self.moved.items() if count) or "nothing"
        text = f"Merged {self.merged} into {self.kept}: moved {moved}"
        dropped = ", ".join(f"{count} {name}" for name, count in self.dropped.items() if count)
        return f"{text}; kept one of each duplicate ({dropped})." if dropped else f"{text}."


@transaction.atomic
def merge_people(keep, duplicates, *, name: str | None = None) -> MergeSummary:
    """Fold `duplicates` (directors, or actors: the model of `keep`) into `keep` and delete them.

    Every credit moves to `keep`; a film credited to both keeps one credit (an actor keeps the
    higher billing). `keep` takes the first IMDb name id found if it has none, and `name` if given.
    """
    model = type(keep)
    others = [person for person in duplicates if person.pk != keep.pk]
    ids = [person.pk for person in others]
    summary = MergeSummary(kept=str(keep), merged=len(others))
    if model is Director:
        summary.moved["film credits"], summary.dropped["film credits"] = _merge_links(
            Movie.directors.through, "director_id", keep.pk, ids, "movie_id")
    else:
        summary.moved["roles"], summary.dropped["roles"] = _merge_cast(
            CastMember.objects.filter(actor_id__in=[keep.pk, *ids]), "movie_id", actor_id=keep.pk)
    name_id = keep.imdb_name_id or next((person.imdb_name_id for person in others if person.imdb_name_id), None)
    model.objects.filter(pk__in=ids).delete()  # first: the name and the name id become free
    keep.imdb_name_id = name_id
    if name:
        keep.name = name
    keep.save()
    return summary


def _merge_links(link_model, owner: str, keep_pk: int, ids: list[int], other: str) -> tuple[int, int]:
    """Move many-to-many rows (owner -> other) from ids to keep_pk; returns (moved, dropped as twins)."""
    have = set(link_model.objects.filter(**{owner: keep_pk}).values_list(other, flat=True))
    theirs = link_model.objects.filter(**{f"{owner}__in": ids})
    targets = set(theirs.values_list(other, flat=True))
    new = targets - have
    link_model.objects.bulk_create([link_model(**{owner: keep_pk, other: target}) for target in sorted(new)])
    total = theirs.count()
    theirs.delete()
    return len(new), total - len(new)


def _merge_cast(members, group: str, **target) -> tuple[int, int]:
    """Point cast rows at one movie or one actor (`target`), keeping per `group` the best-billed row."""
    field_name, keep_pk = next(iter(target.items()))
    best: dict[int, CastMember] = {}
    worse = []
    for member in members.order_by("order", "pk"):
        if getattr(member, group) in best:
            worse.append(member.pk)
        else:
            best[getattr(member, group)] = member
    CastMember.objects.filter(pk__in=worse).delete()  # first: the unique (movie, actor) pairs become free
    moving = [member for member in best.values() if getattr(member, field_name) != keep_pk]
    for member in moving:
        setattr(member, field_name, keep_pk)
    CastMember.objects.bulk_update(moving, [field_name.removesuffix("_id")])
    return len(moving), len(worse)


_FILLED_FROM_DUPLICATES = ("synopsis", "runtime", "release_date", "poster_url", "year")
_EXTERNAL_IDS = ("movielens_id", "imdb_id", "tmdb_id")


@transaction.atomic
def merge_movies(keep: Movie, duplicates) -> MergeSummary:
    """Fold `duplicates` into the movie `keep` and delete them, losing nothing a user made.

    Ratings, watchlist and not-interested entries and tags move to `keep`; a user who had rated
    several of these films keeps their most recent rating (its stars and dates), one list entry
    (the earliest) and one of each tag. Genres, keywords, directors and cast are united; empty
    details and external ids of `keep` are filled from the duplicates, their titles become
    alternative titles; history imports waiting for confirmation point at `keep`. The movie
    statistics of `keep` are recomputed.
    """
    from recommendations.models import HistoryImport

    others = [movie for movie in duplicates if movie.pk != keep.pk]
    ids = [movie.pk for movie in others]
    group = [keep.pk, *ids]
    summary = MergeSummary(kept=str(keep), merged=len(others))
    if not others:
        return summary
    summary.moved["ratings"], summary.dropped["ratings"] = _merge_user_rows(
        Rating, group, keep.pk, ("user_id",), newest_first=("-updated_at", "-pk"))
    summary.moved["watchlist entries"], summary.dropped["watchlist entries"] = _merge_user_rows(
        WatchlistEntry, group, keep.pk, ("user_id",), newest_first=("added_at", "pk"))
    summary.moved["not-interested entries"], summary.dropped["not-interested entries"] = _merge_user_rows(
        NotInterested, group, keep.pk, ("user_id",), newest_first=("added_at", "pk"))
    summary.moved["tags"], summary.dropped["tags"] = _merge_user_rows(
        Tag, group, keep.pk, ("user_id", "tag"), newest_first=("created_at", "pk"))
    for label, link_model, other in (("genres", Movie.genres.through, "genre_id"),
                                     ("keywords", Movie.keywords.through, "keyword_id"),
                                     ("directors", Movie.directors.through, "director_id")):
        summary.moved[label], summary.dropped[label] = _merge_links(link_model, "movie_id", keep.pk, ids, other)
    summary.moved["cast members"], summary.dropped["cast members"] = _merge_cast(
        CastMember.objects.filter(movie_id__in=group), "actor_id", movie_id=keep.pk)
    summary.moved["history import rows"] = _repoint_history_imports(HistoryImport, set(ids), keep.pk)

    for movie in others:
        for name in _FILLED_FROM_DUPLICATES:
            if not getattr(keep, name) and getattr(movie, name):
                setattr(keep, name, getattr(movie, name))
    external = {name: next((getattr(m, name) for m in others if getattr(m, name) is not None), None)
                for name in _EXTERNAL_IDS if getattr(keep, name) is None}
    known_titles = {normalize(keep.title)}
    alternatives = [line for line in keep.alternative_titles.splitlines() if line.strip()]
    known_titles |= {normalize(line) for line in alternatives}
    for movie in others:
        for title in [movie.title, *movie.alternative_titles.splitlines()]:
            if title.strip() and normalize(title) not in known_titles:
                alternatives.append(title.strip())
                known_titles.add(normalize(title))
    keep.alternative_titles = "\n".join(alternatives)
    Movie.objects.filter(pk__in=ids).delete()  # first: their external ids become free
    for name, value in external.items():
        if value is not None:
            setattr(keep, name, value)
    keep.save()
    refresh_movie_stats([keep.pk])
    return summary


def _merge_user_rows(model, group: list[int], keep_pk: int, per: tuple[str, ...], *, newest_first) -> tuple[int, int]:
    """Point a user table's rows for the films in `group` at keep_pk, keeping, where one user has
    several (per the `per` columns), the row that sorts first by `newest_first`. Returns (moved, dropped)."""
    rows = model.objects.filter(movie_id__in=group)
    crowded = rows.values(*per).annotate(n=Count("id")).filter(n__gt=1)
    dropped = []
    if crowded.exists():
        seen = set()
        users = {row["user_id"] for row in crowded}
        for row in rows.filter(user_id__in=users).order_by(*newest_first).values("pk", *per):
            key = tuple(row[name] for name in per)
            if key in seen:
                dropped.append(row["pk"])
            seen.add(key)
        model.objects.filter(pk__in=dropped).delete()
    moved = rows.exclude(movie_id=keep_pk).update(movie_id=keep_pk)
    return moved, len(dropped)


def _repoint_history_imports(model, old_ids: set[int], keep_pk: int) -> int:
    """Rows of history imports (previews, queued or running jobs) that named a merged film name keep_pk."""
    changed_rows = 0
    pending = model.objects.exclude(status__in=[model.Status.DONE, model.Status.FAILED])
    for job in pending.only("pk", "rows").iterator():
        rows_before = changed_rows
        for row in job.rows:
            row_changed = False
            for key in ("movie_id", "apply_movie_id"):
                if row.get(key) in old_ids:
                    row[key], row_changed = keep_pk, True
            if any(pk in old_ids for pk in row.get("candidate_ids", ())):
                row["candidate_ids"] = list(dict.fromkeys(keep_pk if pk in old_ids else pk for pk in row["candidate_ids"]))
                row_changed = True
            changed_rows += row_changed
        if changed_rows > rows_before:
            job.save(update_fields=["rows"])
    return changed_rows
