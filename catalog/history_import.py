"""Bring your history: Letterboxd and IMDb exports in, Letterboxd CSV out.

The flow is parse → match → preview (a HistoryImport in PREVIEW state; nothing is rated yet)
→ confirm (the user picks candidates for ambiguous rows and the IMDb scale) → apply in a
background job that reports its progress on the HistoryImport row.
"""
from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import PurePosixPath

from celery import shared_task
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Movie, Rating, WatchlistEntry
from catalog.text import normalize
from recommendations.models import HistoryImport

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_UPLOAD_BYTES = 10 * MiB
MAX_ROWS = 20_000
MAX_CANDIDATES = 8
# Hostile uploads: what one zip member may expand to (counted as it is produced, not as declared),
# how many members a zip may list (and the central-directory bytes per member), the longest line.
MAX_MEMBER_BYTES = 10 * MiB
MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_ENTRY_BYTES = 400
MAX_LINE_CHARS = 64 * 1024
READ_CHUNK_BYTES = 64 * 1024
# Letterboxd's export is deflated; bzip2 and LZMA decompress a whole member in one call (no cap
# possible), and the site needs neither.
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
ZIP_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "Deflate64", 93: "Zstandard", 99: "AES"}

LETTERBOXD_RATINGS_COLUMNS = {"Date", "Name", "Year", "Letterboxd URI", "Rating"}
LETTERBOXD_LIST_COLUMNS = {"Date", "Name", "Year", "Letterboxd URI"}
IMDB_COLUMNS = {"Const", "Your Rating", "Title", "Year"}
LETTERBOXD_EXPORT_HEADER = ["Date", "Name", "Year", "Letterboxd URI", "Rating"]

# Leading articles ignored when comparing titles ("The Matrix" = "Matrix, The" = "Matrix").
ARTICLES = frozenset(
    "the a an le la les l un une el los las il lo gli der die das den det het ein eine".split()
)
_TRAILING_ARTICLE = re.compile(r"^(?P<title>.+),\s*(?P<article>[^\s,]+)$")
_IMDB_ID = re.compile(r"tt[0-9]{5,10}")
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


# --- Parsing ---------------------------------------------------------------------------------


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
    date: str = ""  # the diary date (YYYY-MM-DD): when it was rated or put on the watchlist


@dataclass
class ParsedHistory:
    source: str  # HistoryImport.Source value
    rows: list[HistoryRow]
    skipped: list[str] = field(default_factory=list)


def parse_history_file(filename: str, data: bytes) -> ParsedHistory:
    """Read a Letterboxd export (zip, ratings.csv, watchlist.csv) or an IMDb ratings.csv.

    Raises HistoryFileError naming the file, line and reason when the upload is not one of
    those or is malformed; nothing is returned half-read. Memory stays bounded whatever the
    upload holds: zip members are read in chunks up to a cap on the bytes they actually produce
    (not the size their header declares), and CSV lines are read up to a cap on their length.
    """
    if not data:
        raise HistoryFileError(f"{filename} is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise HistoryFileError(f"{filename} is larger than {MAX_UPLOAD_BYTES // MiB} MB.")
    if data[:4] == b"PK\x03\x04":
        return _parse_letterboxd_zip(filename, data)
    return _parse_csv(filename, data)


def _parse_letterboxd_zip(filename: str, data: bytes) -> ParsedHistory:
    archive = _open_zip(filename, data)
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
        parsed = _parse_csv(name, _read_member(filename, archive, members[name]))
        if parsed.source != HistoryImport.Source.LETTERBOXD:
            raise HistoryFileError(f"{filename}: {name} is not in Letterboxd's format.")
        rows += parsed.rows
        skipped += parsed.skipped
    return ParsedHistory(HistoryImport.Source.LETTERBOXD, rows, skipped)


def _open_zip(filename: str, data: bytes) -> zipfile.ZipFile:
    """The archive, once its central directory is known to be small enough to list."""
    # zipfile lists every member when it opens an archive: bound that list before it is built.
    directory = _central_directory(data)
    if directory is not None:
        entries, size = directory
        if entries > MAX_ZIP_MEMBERS or size > MAX_ZIP_MEMBERS * MAX_ZIP_ENTRY_BYTES:
            raise HistoryFileError(
                f"{filename} holds more than {MAX_ZIP_MEMBERS:,} files; a Letterboxd export holds a few dozen."
            )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as error:
        raise HistoryFileError(f"{filename} is not a readable zip file ({error}).") from error
    if len(archive.infolist()) > MAX_ZIP_MEMBERS:
        raise HistoryFileError(
            f"{filename} holds more than {MAX_ZIP_MEMBERS:,} files; a Letterboxd export holds a few dozen."
        )
    return archive


_END_OF_CENTRAL_DIRECTORY = struct.Struct("<4s4H2LH")


def _central_directory(data: bytes) -> tuple[int, int] | None:
    """(entries, bytes) of the zip's central directory as its end record states them; None when
    there is no end record (zipfile then refuses the file). A ZIP64 archive counts as too big."""
    start = data.rfind(b"PK\x05\x06", max(0, len(data) - _END_OF_CENTRAL_DIRECTORY.size - 0xFFFF))
    if start < 0 or len(data) - start < _END_OF_CENTRAL_DIRECTORY.size:
        return None
    _, _, _, _, entries, size, _, _ = _END_OF_CENTRAL_DIRECTORY.unpack_from(data, start)
    if data[max(0, start - 20) : start - 16] == b"PK\x06\x07":  # ZIP64 locator: sizes live elsewhere
        return (MAX_ZIP_MEMBERS + 1, size)
    return entries, size


def _read_member(filename: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, read in chunks and refused as soon as they pass MAX_MEMBER_BYTES."""
    where = f"{filename}: {info.filename}"
    if info.compress_type not in ZIP_METHODS:
        method = ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise HistoryFileError(
            f"{where} is compressed with {method}, which this site does not read: Letterboxd's export uses "
            "deflate. Upload the export as Letterboxd made it, or the CSV file itself."
        )
    if info.flag_bits & 0x1:
        raise HistoryFileError(f"{where} is password-protected; upload the export as Letterboxd made it.")
    too_large = HistoryFileError(
        f"{where} expands to more than {MAX_MEMBER_BYTES // MiB} MB; a Letterboxd ratings.csv is far smaller."
    )
    if info.file_size > MAX_MEMBER_BYTES:
        raise too_large
    chunks, size = [], 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_MEMBER_BYTES:
                    raise too_large
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as error:
        raise HistoryFileError(f"{where} is damaged and cannot be read ({error}).") from error
    return b"".join(chunks)


def _text_lines(filename: str, data: bytes) -> Iterator[str]:
    """The file's lines as text (UTF-8, else Windows-1252), each at most MAX_LINE_CHARS long."""
    nul = data.find(b"\x00")
    if nul >= 0:  # (the csv module passes NUL through, and PostgreSQL cannot store it)
        line = data.count(b"\n", 0, nul) + 1
        raise HistoryFileError(f"{filename} is a binary file (a NUL byte on line {line:,}), not a CSV export.")
    encoding = "utf-8-sig" if _is_utf8(data) else "cp1252"
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    number = 0
    while line := stream.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise HistoryFileError(f"{filename}, line {number}: longer than {MAX_LINE_CHARS:,} characters.")
        yield line


def _is_utf8(data: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), READ_CHUNK_BYTES):
            decoder.decode(view[start : start + READ_CHUNK_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _parse_csv(filename: str, data: bytes) -> ParsedHistory:
    reader = csv.DictReader(_text_lines(filename, data), strict=True)
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


_YEAR = re.compile(r"[0-9]{4}")
_IMDB_RATING = re.compile(r"10|[1-9]")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST_DIARY_DATE = date(1900, 1, 1)


def _year(filename, line, value) -> int | None:
    if not value:
        return None
    if not _YEAR.fullmatch(value) or not 1870 <= int(value) <= 2100:
        raise HistoryFileError(f"{filename}, line {line}: {_shown(value)} is not a year.")
    return int(value)


def _date(filename, line, value) -> str:
    """The row's diary date as YYYY-MM-DD ('' when the file gives none)."""
    if not value:
        return ""
    try:
        day = date.fromisoformat(value[:10]) if _DATE.match(value) else None
    except ValueError:
        day = None
    if day is None:
        raise HistoryFileError(f"{filename}, line {line}: {_shown(value)} is not a date (YYYY-MM-DD).")
    if not EARLIEST_DIARY_DATE <= day <= timezone.localdate() + timedelta(days=1):
        raise HistoryFileError(f"{filename}, line {line}: the date {day.isoformat()} is not plausible for a diary.")
    return day.isoformat()


def _title(filename, line, value) -> str:
    if not value:
        raise HistoryFileError(f"{filename}, line {line}: the film has no title.")
    return value


def _shown(value: str) -> str:
    """A value quoted for an error message, shortened so a hostile cell cannot flood the page."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _letterboxd_rating_row(filename, line, record, parsed) -> HistoryRow | None:
    raw = record.get("Rating", "")
    if not raw:  # ratings.csv always has one; diary-like files may not
        parsed.skipped.append(f"{filename}, line {line}: {record.get('Name')} has no rating.")
        return None
    try:
        score = catalog_services.validate_score(raw)
    except ValidationError:
        raise HistoryFileError(
            f"{filename}, line {line}: rating {_shown(raw)} is not 0.5–5 stars in half steps."
        ) from None
    return HistoryRow(
        file=filename,
        line=line,
        kind="rating",
        title=_title(filename, line, unescape_cell(record.get("Name", ""))),
        year=_year(filename, line, record.get("Year")),
        raw_score=score,
        date=_date(filename, line, record.get("Date", "")),
    )


def _letterboxd_watchlist_row(filename, line, record, parsed) -> HistoryRow:
    return HistoryRow(
        file=filename,
        line=line,
        kind="watchlist",
        title=_title(filename, line, unescape_cell(record.get("Name", ""))),
        year=_year(filename, line, record.get("Year")),
        date=_date(filename, line, record.get("Date", "")),
    )


def _imdb_row(filename, line, record, parsed) -> HistoryRow | None:
    title = _title(filename, line, record.get("Title"))
    title_type = record.get("Title Type", "").lower()
    if any(word in title_type for word in _SKIPPED_IMDB_TYPES):
        parsed.skipped.append(f"{filename}, line {line}: {title} is a {record['Title Type']}, not a film.")
        return None
    const = record.get("Const", "")
    if not _IMDB_ID.fullmatch(const):
        raise HistoryFileError(f"{filename}, line {line}: {_shown(const)} is not an IMDb id (tt…).")
    raw = record.get("Your Rating", "")
    if not _IMDB_RATING.fullmatch(raw):
        raise HistoryFileError(f"{filename}, line {line}: rating {_shown(raw)} is not a whole number from 1 to 10.")
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
        date=_date(filename, line, record.get("Date Rated", "")),
    )


# --- Spreadsheet-safe cells -------------------------------------------------------------------

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """Make a text cell inert in spreadsheets: a leading apostrophe before a formula character
    (and before an apostrophe that precedes one, so unescape_cell restores any title exactly)."""
    if value.startswith(FORMULA_STARTS) or (value.startswith("'") and value.lstrip("'").startswith(FORMULA_STARTS)):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo escape_cell. Titles that merely start with an apostrophe ('71, 'Round Midnight) stay."""
    if value.startswith("'") and value.lstrip("'").startswith(FORMULA_STARTS):
        return value[1:]
    return value


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
                "day": date.fromisoformat(row["date"]) if row.get("date") else None,
            }
        )
    return groups


# --- Confirm and apply -----------------------------------------------------------------------


class AlreadyConfirmed(Exception):
    """The import was confirmed already (by an earlier or a concurrent request): nothing was changed."""


def confirm_history_import(
    job: HistoryImport, *, choices: dict[int, int | None], excluded: set[int], scale: str = DEFAULT_IMDB_SCALE
) -> HistoryImport:
    """Fix the plan from the preview and queue it.

    choices maps an ambiguous row's index to the picked candidate (None: leave it out);
    excluded holds indexes of matched rows the user unticked. Each film is applied once: a
    rating wins over a watchlist entry, and a later row over an earlier one.

    Queues the import once however many requests confirm it at the same moment: the first one
    moves it out of PREVIEW, the others raise AlreadyConfirmed and change nothing.
    """
    if job.status != HistoryImport.Status.PREVIEW:
        raise AlreadyConfirmed("This import has already been confirmed.")
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
    queued = HistoryImport.objects.filter(pk=job.pk, status=HistoryImport.Status.PREVIEW).update(
        rows=rows, total=len(plan), status=HistoryImport.Status.QUEUED
    )
    if not queued:
        raise AlreadyConfirmed("This import has already been confirmed.")
    job.total, job.status = len(plan), HistoryImport.Status.QUEUED
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


def diary_datetime(day: str):
    """The moment a row's diary date stands for: noon of that day in the site's time zone (so it
    reads as the same day wherever it is shown), or now for a row without a date."""
    if not day:
        return timezone.now()
    return timezone.make_aware(datetime.combine(date.fromisoformat(day), time(12)))


def apply_history_import(job_id: int) -> HistoryImport:
    """Rate / add to watchlist every planned row of a confirmed import, all or nothing.

    Uses catalog.services (never duplicates: ratings are one per film, watchlist entries too).
    Each rating keeps its diary date; a film the user already rated keeps that rating when it is
    newer than the file's, and is not put on the watchlist; a film rated here leaves the watchlist
    (as a rating on the site does). On an error nothing of the import is kept and the job is
    marked FAILED with the reason. Runs once per import even if started twice.
    """
    job = HistoryImport.objects.select_related("user").get(pk=job_id)
    started = HistoryImport.objects.filter(pk=job.pk, status=HistoryImport.Status.QUEUED).update(
        status=HistoryImport.Status.RUNNING
    )
    if not started:  # not confirmed, or another worker has it
        return job
    planned = [row for row in job.rows if row.get("apply_movie_id")]
    movies = Movie.objects.in_bulk({row["apply_movie_id"] for row in planned})
    rated = {
        movie_id: (score, updated_at)
        for movie_id, score, updated_at in Rating.objects.filter(user=job.user, movie_id__in=movies).values_list(
            "movie_id", "score", "updated_at"
        )
    }
    listed = set(WatchlistEntry.objects.filter(user=job.user, movie_id__in=movies).values_list("movie_id", flat=True))
    saved = {"ratings_saved": 0, "watchlist_saved": 0}
    try:
        with transaction.atomic():
            for done, row in enumerate(planned, start=1):
                movie = movies.get(row["apply_movie_id"])
                when = diary_datetime(row.get("date", ""))
                if movie is None:  # deleted from the catalogue since the preview
                    pass
                elif row["kind"] == "rating":
                    current = rated.get(movie.pk)
                    if current is None or (current[0] != row["score"] and when >= current[1]):
                        catalog_services.rate_movie(user=job.user, movie=movie, score=row["score"], rated_at=when)
                        saved["ratings_saved"] += 1
                elif movie.pk not in rated and movie.pk not in listed:
                    catalog_services.add_to_watchlist(user=job.user, movie=movie, added_at=when)
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

    Date is the day of the rating (its diary date for an imported one). The URI column is empty:
    Letterboxd's importer matches on name and year. Titles are escaped (escape_cell) so that a
    spreadsheet opening the file runs no formula; this site's importer restores them exactly.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LETTERBOXD_EXPORT_HEADER)
    ratings = Rating.objects.filter(user=user).select_related("movie").order_by("updated_at", "pk")
    for rating in ratings.iterator(chunk_size=2000):
        day = timezone.localtime(rating.updated_at).date().isoformat()
        writer.writerow([day, escape_cell(rating.movie.title), rating.movie.year or "", "", f"{rating.score:g}"])
    return out.getvalue()
