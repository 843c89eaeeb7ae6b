"""Bring your history: Letterboxd and IMDb exports in, Letterboxd CSV out.

The flow is parse → match → preview (a HistoryImport in PREVIEW state; nothing is rated yet)
→ confirm (the user picks candidates for ambiguous rows and the IMDb scale) → apply in a
background job that reports its progress on the HistoryImport row.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import PurePosixPath

from celery import shared_task
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Movie, Rating, WatchlistEntry
from catalog.text import normalize
from recommendations.models import HistoryImport

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
MAX_CANDIDATES = 8

LETTERBOXD_RATINGS_COLUMNS = {"Date", "Name", "Year", "Letterboxd URI", "Rating"}
LETTERBOXD_LIST_COLUMNS = {"Date", "Name", "Year", "Letterboxd URI"}
IMDB_COLUMNS = {"Const", "Your Rating", "Title", "Year"}
LETTERBOXD_EXPORT_HEADER = ["Date", "Name", "Year", "Letterboxd URI", "Rating"]

# Leading articles ignored when comparing titles ("The Matrix" = "Matrix, The" = "Matrix").
ARTICLES = frozenset(
    "the a an le la les l un une el los las il lo gli der die das den det het ein eine".split()
)
_TRAILING_ARTICLE = re.compile(r"^(?P<title>.+),\s*(?P<article>[^\s,]+)$")
_IMDB_ID = re.compile(r"^tt\d{5,10}$")
_SKIPPED_IMDB_TYPES = ("series", "episode", "game", "podcast")


class HistoryFileError(ValueError):
    """The upload is not a Letterboxd or IMDb export we can read; the message says why."""


# --- IMDb 1–10 → half stars -------------------------------------------------------------------

IMDB_SCALES = {
    "halve": "Divide by 2 (1 → ½ star, 7 → 3½, 10 → 5)",
    "whole_stars": "Spread 1–10 over 1–5 stars (1 → 1 star, 7 → 3½, 10 → 5)",
}
DEFAULT_IMDB_SCALE = "halve"


def imdb_to_stars(value: int, scale: str = DEFAULT_IMDB_SCALE) -> float:
    """Map an IMDb rating (1–10) to half stars (0.5–5.0) with the chosen scale."""
    if scale not in IMDB_SCALES:
        raise ValueError(f"Unknown IMDb scale {scale!r}; choose one of {', '.join(IMDB_SCALES)}.")
    if scale == "halve":
        return value / 2
    return round((1 + (value - 1) * 4 / 9) * 2) / 2


def imdb_scale_table(scale: str) -> list[tuple[int, float]]:
    """[(imdb rating, stars)] for 1..10, shown next to the scale choice."""
    return [(value, imdb_to_stars(value, scale)) for value in range(1, 11)]


# --- Parsing ----------------------------------------------------------------------------------


@dataclass
class HistoryRow:
    """One film from the export: a rating (raw_score on the source's scale) or a watchlist entry."""

    file: str
    line: int
    kind: str  # "rating" | "watchlist"
    title: str
    year: int | None
    raw_score: float | None = None
    imdb_id: str = ""
    original_title: str = ""
    date: str = ""


@dataclass
class ParsedHistory:
    source: str  # HistoryImport.Source value
    rows: list[HistoryRow]
    skipped: list[str] = field(default_factory=list)


def parse_history_file(filename: str, data: bytes) -> ParsedHistory:
    """Read a Letterboxd export (zip, ratings.csv, watchlist.csv) or an IMDb ratings.csv.

    Raises HistoryFileError naming the file, line and reason when the upload is not one of
    those or is malformed; nothing is returned half-read.
    """
    if not data:
        raise HistoryFileError(f"{filename} is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise HistoryFileError(f"{filename} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    if data[:4] == b"PK\x03\x04":
        return _parse_letterboxd_zip(filename, data)
    return _parse_csv(filename, _decode(filename, data))


def _decode(filename: str, data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise HistoryFileError(f"{filename} is a binary file, not a CSV export.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _parse_letterboxd_zip(filename: str, data: bytes) -> ParsedHistory:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {}
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            # Letterboxd puts removed entries under deleted/ and orphaned/: they are not the history.
            if info.is_dir() or {"deleted", "orphaned"} & set(path.parts[:-1]):
                continue
            if path.name in ("ratings.csv", "watchlist.csv") and (
                path.name not in members or len(path.parts) < len(PurePosixPath(members[path.name].filename).parts)
            ):
                members[path.name] = info
        if not members:
            raise HistoryFileError(
                f"{filename} is a zip but not a Letterboxd export: it has no ratings.csv or watchlist.csv."
            )
        rows, skipped = [], []
        for name in ("ratings.csv", "watchlist.csv"):
            if name not in members:
                continue
            if members[name].file_size > MAX_UPLOAD_BYTES:
                raise HistoryFileError(f"{filename}: {name} is too large to import.")
            text = _decode(f"{filename}/{name}", archive.read(members[name]))
            parsed = _parse_csv(name, text)
            if parsed.source != HistoryImport.Source.LETTERBOXD:
                raise HistoryFileError(f"{filename}: {name} is not in Letterboxd's format.")
            rows += parsed.rows
            skipped += parsed.skipped
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, EOFError) as error:
        raise HistoryFileError(f"{filename} is not a readable zip file ({error}).") from error
    return ParsedHistory(HistoryImport.Source.LETTERBOXD, rows, skipped)


def _parse_csv(filename: str, text: str) -> ParsedHistory:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = {name.strip() for name in (reader.fieldnames or []) if name}
        if IMDB_COLUMNS <= header:
            source, read_row = HistoryImport.Source.IMDB, _imdb_row
        elif LETTERBOXD_RATINGS_COLUMNS <= header:
            source, read_row = HistoryImport.Source.LETTERBOXD, _letterboxd_rating_row
        elif LETTERBOXD_LIST_COLUMNS <= header:
            if "watched" in PurePosixPath(filename).name.lower():  # same columns as watchlist.csv
                raise HistoryFileError(
                    f"{filename} lists films you watched without their ratings: upload ratings.csv for your "
                    "ratings and watchlist.csv for films you want to see (or the whole export zip)."
                )
            source, read_row = HistoryImport.Source.LETTERBOXD, _letterboxd_watchlist_row
        else:
            raise HistoryFileError(
                f"{filename} is not a Letterboxd or IMDb export: its first line should name the columns "
                "Date, Name, Year, Letterboxd URI[, Rating] (Letterboxd) or Const, Your Rating, Title, Year … (IMDb)."
            )
        parsed = ParsedHistory(source, [])
        for record in reader:
            line = reader.line_num
            record = {(key or "").strip(): (value or "").strip() for key, value in record.items() if key}
            if not any(record.values()):
                continue
            if len(parsed.rows) >= MAX_ROWS:
                raise HistoryFileError(f"{filename} has more than {MAX_ROWS} rows.")
            row = read_row(filename, line, record, parsed)
            if row is not None:
                parsed.rows.append(row)
    except csv.Error as error:
        raise HistoryFileError(f"{filename}, line {reader.line_num}: not valid CSV ({error}).") from error
    if not parsed.rows and not parsed.skipped:
        raise HistoryFileError(f"{filename} has a header but no films.")
    return parsed


def _year(filename, line, value) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1870 <= int(value) <= 2100:
        raise HistoryFileError(f"{filename}, line {line}: {value!r} is not a year.")
    return int(value)


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return ""


def _title(filename, line, value) -> str:
    if not value:
        raise HistoryFileError(f"{filename}, line {line}: the film has no title.")
    return value


def _letterboxd_rating_row(filename, line, record, parsed) -> HistoryRow | None:
    raw = record.get("Rating", "")
    if not raw:  # ratings.csv always has one; diary-like files may not
        parsed.skipped.append(f"{filename}, line {line}: {record.get('Name')} has no rating.")
        return None
    try:
        score = float(raw)
    except ValueError:
        score = None
    if score is None or score * 2 != int(score * 2) or not 0.5 <= score <= 5:
        raise HistoryFileError(f"{filename}, line {line}: rating {raw!r} is not 0.5–5 stars in half steps.")
    return HistoryRow(
        file=filename,
        line=line,
        kind="rating",
        title=_title(filename, line, record.get("Name")),
        year=_year(filename, line, record.get("Year")),
        raw_score=score,
        date=_date(record.get("Date", "")),
    )


def _letterboxd_watchlist_row(filename, line, record, parsed) -> HistoryRow:
    return HistoryRow(
        file=filename,
        line=line,
        kind="watchlist",
        title=_title(filename, line, record.get("Name")),
        year=_year(filename, line, record.get("Year")),
        date=_date(record.get("Date", "")),
    )


def _imdb_row(filename, line, record, parsed) -> HistoryRow | None:
    title = _title(filename, line, record.get("Title"))
    title_type = record.get("Title Type", "").lower()
    if any(word in title_type for word in _SKIPPED_IMDB_TYPES):
        parsed.skipped.append(f"{filename}, line {line}: {title} is a {record['Title Type']}, not a film.")
        return None
    const = record.get("Const", "")
    if not _IMDB_ID.match(const):
        raise HistoryFileError(f"{filename}, line {line}: {const!r} is not an IMDb id (tt…).")
    raw = record.get("Your Rating", "")
    if not raw.isdigit() or not 1 <= int(raw) <= 10:
        raise HistoryFileError(f"{filename}, line {line}: rating {raw!r} is not a whole number from 1 to 10.")
    original = record.get("Original Title", "")
    return HistoryRow(
        file=filename,
        line=line,
        kind="rating",
        title=title,
        original_title=original if original != title else "",
        year=_year(filename, line, record.get("Year")),
        raw_score=int(raw),
        imdb_id=const,
        date=_date(record.get("Date Rated", "")),
    )


# --- Matching ---------------------------------------------------------------------------------


def title_key(title: str) -> str:
    """Accent-, case- and article-insensitive key: 'The Matrix', 'Matrix, The' → 'matrix'."""
    title = (title or "").strip()
    moved = _TRAILING_ARTICLE.match(title)
    if moved and normalize(moved["article"]) in ARTICLES:
        title = f"{moved['article']} {moved['title']}"
    words = normalize(title).replace("\n", " ").split()
    if len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(words)


def match_rows(rows: list[HistoryRow]) -> list[dict]:
    """Match each row to the catalogue; returns JSON-ready dicts for the preview.

    status "matched" (movie_id), "ambiguous" (candidate_ids to pick from: several films with
    the title, or only a ±1 year match) or "unmatched". IMDb ids win over titles.
    """
    by_imdb_id = dict(
        Movie.objects.filter(imdb_id__in={row.imdb_id for row in rows if row.imdb_id}).values_list("imdb_id", "pk")
    )
    index, popularity = _title_index([row for row in rows if row.imdb_id not in by_imdb_id])
    results = []
    for row in rows:
        result = asdict(row) | {"status": "unmatched", "movie_id": None, "candidate_ids": []}
        if row.imdb_id in by_imdb_id:
            result.update(status="matched", movie_id=by_imdb_id[row.imdb_id])
        else:
            exact, near = set(), set()
            for key in {title_key(row.title), title_key(row.original_title)} - {""}:
                for movie_id, year in index.get(key, ()):
                    if row.year is None or year == row.year:
                        exact.add(movie_id)
                    elif year is not None and abs(year - row.year) == 1:
                        near.add(movie_id)
            if len(exact) == 1:
                result.update(status="matched", movie_id=exact.pop())
            elif exact or near:
                ranked = sorted(exact, key=lambda pk: -popularity[pk]) + sorted(near, key=lambda pk: -popularity[pk])
                result.update(status="ambiguous", candidate_ids=ranked[:MAX_CANDIDATES])
        results.append(result)
    return results


def _title_index(rows):
    """{title key: [(movie id, year)]} over the movies whose year could match one of the rows."""
    if not rows:
        return {}, {}
    movies = Movie.objects.all()
    if all(row.year for row in rows):
        years = {row.year + delta for row in rows for delta in (-1, 0, 1)}
        movies = movies.filter(Q(year__in=years) | Q(year__isnull=True))
    index, popularity = defaultdict(list), {}
    for pk, title, alternatives, year, count in movies.values_list(
        "pk", "title", "alternative_titles", "year", "rating_count"
    ):
        popularity[pk] = count
        for key in {title_key(name) for name in [title, *alternatives.splitlines()]} - {""}:
            index[key].append((pk, year))
    return index, popularity


# --- Preview ----------------------------------------------------------------------------------


@transaction.atomic
def create_history_import(*, user, filename: str, data: bytes) -> HistoryImport:
    """Parse and match an upload into a HistoryImport awaiting confirmation (nothing is rated yet).

    Raises HistoryFileError (and changes nothing) when the file cannot be read.
    """
    parsed = parse_history_file(filename, data)
    if not parsed.rows:
        raise HistoryFileError(f"{filename} has no films to import ({len(parsed.skipped)} rows were not films).")
    # A new upload replaces any preview the user left unconfirmed.
    HistoryImport.objects.filter(user=user, status=HistoryImport.Status.PREVIEW).delete()
    return HistoryImport.objects.create(
        user=user, source=parsed.source, filename=filename[:255], rows=match_rows(parsed.rows)
    )


def history_import_preview(job: HistoryImport) -> dict:
    """The preview page's data: rows grouped by status, with their movies loaded in one query."""
    movie_ids = {row["movie_id"] for row in job.rows if row["movie_id"]}
    movie_ids |= {pk for row in job.rows for pk in row["candidate_ids"]}
    movies = Movie.objects.in_bulk(movie_ids)
    groups = {"matched": [], "ambiguous": [], "unmatched": []}
    for index, row in enumerate(job.rows):
        groups[row["status"]].append(
            row
            | {
                "index": index,
                "movie": movies.get(row["movie_id"]),
                "candidates": [movies[pk] for pk in row["candidate_ids"] if pk in movies],
            }
        )
    return groups


# --- Confirm and apply -----------------------------------------------------------------------


def confirm_history_import(
    job: HistoryImport, *, choices: dict[int, int | None], excluded: set[int], scale: str = DEFAULT_IMDB_SCALE
) -> HistoryImport:
    """Fix the plan from the preview and queue it.

    choices maps an ambiguous row's index to the picked candidate (None: leave it out);
    excluded holds indexes of matched rows the user unticked. Each film is applied once: a
    rating wins over a watchlist entry, and a later row over an earlier one.
    """
    if job.status != HistoryImport.Status.PREVIEW:
        raise ValueError("This import has already been confirmed.")
    if job.source == HistoryImport.Source.IMDB and scale not in IMDB_SCALES:
        raise ValueError(f"Unknown IMDb scale {scale!r}.")
    plan: dict[int, int] = {}  # movie id → index of the row that decides it
    rows = job.rows
    for index, row in enumerate(rows):
        row["apply_movie_id"], row["score"] = None, None
        if row["status"] == "matched" and index not in excluded:
            movie_id = row["movie_id"]
        elif row["status"] == "ambiguous" and choices.get(index) in row["candidate_ids"]:
            movie_id = choices[index]
        else:
            continue
        if row["kind"] == "rating":
            row["score"] = (
                imdb_to_stars(int(row["raw_score"]), scale)
                if job.source == HistoryImport.Source.IMDB
                else row["raw_score"]
            )
        earlier = plan.get(movie_id)
        if earlier is not None and rows[earlier]["kind"] == "rating" and row["kind"] == "watchlist":
            continue
        if earlier is not None:
            rows[earlier]["apply_movie_id"] = None
        plan[movie_id] = index
        row["apply_movie_id"] = movie_id
    job.total = len(plan)
    job.status = HistoryImport.Status.QUEUED
    job.save(update_fields=["rows", "total", "status"])
    return job


def start_history_import(job: HistoryImport) -> None:
    """Run apply_history_import in the background once the confirmation is committed.

    Inline instead when Celery runs eagerly (no Redis) or the broker cannot be reached.
    """
    transaction.on_commit(lambda: _enqueue(job.pk))


def _enqueue(job_id: int) -> None:
    try:
        apply_history_import_task.delay(job_id)
    except Exception:  # broker unreachable: the user still gets their import, in this request
        logger.warning("Broker unreachable; applying history import %s inline", job_id, exc_info=True)
        apply_history_import(job_id)


PROGRESS_EVERY = 10


def _progress_key(job_id: int) -> str:
    return f"history-import:{job_id}:progress"


def _report_progress(job_id: int, **figures) -> None:
    # Progress goes through the cache because the rows themselves are written in one transaction
    # (all or nothing), invisible to the poller until it commits.
    try:
        if figures:
            cache.set(_progress_key(job_id), figures, timeout=6 * 3600)
        else:
            cache.delete(_progress_key(job_id))
    except Exception:  # a progress bar is not worth failing the import for
        logger.warning("Could not record progress of history import %s", job_id, exc_info=True)


def apply_history_import(job_id: int) -> HistoryImport:
    """Rate / add to watchlist every planned row of a confirmed import, all or nothing.

    Uses catalog.services (never duplicates: ratings are one per film, watchlist entries too);
    a film already rated is not put on the watchlist. On an error nothing of the import is kept
    and the job is marked FAILED with the reason.
    """
    job = HistoryImport.objects.select_related("user").get(pk=job_id)
    if job.status != HistoryImport.Status.QUEUED:
        return job
    HistoryImport.objects.filter(pk=job.pk).update(status=HistoryImport.Status.RUNNING)
    planned = [row for row in job.rows if row.get("apply_movie_id")]
    movies = Movie.objects.in_bulk({row["apply_movie_id"] for row in planned})
    rated = dict(Rating.objects.filter(user=job.user, movie_id__in=movies).values_list("movie_id", "score"))
    listed = set(WatchlistEntry.objects.filter(user=job.user, movie_id__in=movies).values_list("movie_id", flat=True))
    saved = {"ratings_saved": 0, "watchlist_saved": 0}
    try:
        with transaction.atomic():
            for done, row in enumerate(planned, start=1):
                movie = movies.get(row["apply_movie_id"])
                if movie is None:  # deleted from the catalogue since the preview
                    pass
                elif row["kind"] == "rating":
                    if rated.get(movie.pk) != row["score"]:
                        catalog_services.rate_movie(user=job.user, movie=movie, score=row["score"])
                        saved["ratings_saved"] += 1
                elif movie.pk not in rated and movie.pk not in listed:
                    catalog_services.add_to_watchlist(user=job.user, movie=movie)
                    saved["watchlist_saved"] += 1
                if done % PROGRESS_EVERY == 0:
                    _report_progress(job.pk, done=done, **saved)
            HistoryImport.objects.filter(pk=job.pk).update(
                status=HistoryImport.Status.DONE, done=len(planned), finished_at=timezone.now(), **saved
            )
    except Exception as error:
        HistoryImport.objects.filter(pk=job.pk).update(
            status=HistoryImport.Status.FAILED,
            error=f"Nothing was imported: {error}",
            finished_at=timezone.now(),
        )
        raise
    finally:
        _report_progress(job.pk)  # clears the live figures: the row now holds the final ones
    job.refresh_from_db()
    return job


@shared_task(name="catalog.apply_history_import")
def apply_history_import_task(job_id: int) -> None:
    apply_history_import(job_id)


def history_import_progress(job: HistoryImport) -> dict:
    """JSON-ready progress of an import for the progress bar."""
    figures = {"done": job.done, "ratings_saved": job.ratings_saved, "watchlist_saved": job.watchlist_saved}
    if job.status == HistoryImport.Status.RUNNING:
        try:
            figures.update(cache.get(_progress_key(job.pk)) or {})
        except Exception:  # no live figures without the cache; the bar just waits for the end
            logger.warning("Could not read progress of history import %s", job.pk, exc_info=True)
    if job.status == HistoryImport.Status.DONE:
        percent = 100
    else:
        percent = int(100 * figures["done"] / job.total) if job.total else 0
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "total": job.total,
        "percent": percent,
        "error": job.error,
        "finished": job.status in (HistoryImport.Status.DONE, HistoryImport.Status.FAILED),
        **figures,
    }


# --- Export -----------------------------------------------------------------------------------


def export_letterboxd_csv(user) -> str:
    """The user's ratings as Letterboxd's ratings.csv (Date, Name, Year, Letterboxd URI, Rating).

    The URI column is empty: Letterboxd's importer matches on name and year.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LETTERBOXD_EXPORT_HEADER)
    ratings = Rating.objects.filter(user=user).select_related("movie").order_by("updated_at", "pk")
    for rating in ratings.iterator(chunk_size=2000):
        stars = f"{rating.score:g}"
        writer.writerow([rating.updated_at.date().isoformat(), rating.movie.title, rating.movie.year or "", "", stars])
    return out.getvalue()
