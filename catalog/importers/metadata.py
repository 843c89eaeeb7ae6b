"""Enrich movies already in the catalogue from public metadata files.

Supported sources, each detected by its columns (see ../shared/datasets/README.md):
- TMDB 5000 movies CSV: synopsis, keywords, runtime, release date; joined on Movie.tmdb_id.
- IMDB 5000 CSV: director, top three actors in billing order, plot keywords; joined on Movie.imdb_id.
- HetRec 2011 folder (movie_directors.dat): directors; joined on Movie.movielens_id.

Metadata is partial by nature: rows that match no movie are counted and skipped, and empty
fields never erase what the catalogue already has. Every write is keyed (names, movie ids),
so importing the same files again changes nothing.
"""
from __future__ import annotations

import csv
import datetime
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from catalog.importers.formats import ReleaseError
from catalog.models import Actor, CastMember, Director, Keyword, Movie
from catalog.text import normalize

TMDB_COLUMNS = {"id", "overview", "keywords", "runtime", "release_date", "title"}
IMDB_COLUMNS = {"director_name", "actor_1_name", "actor_2_name", "actor_3_name", "plot_keywords", "movie_imdb_link"}
_IMDB_ID = re.compile(r"/title/(tt\d+)")


@dataclass
class MetadataRecord:
    """What one source knows about one movie; empty fields mean "unknown"."""

    key: int | str
    synopsis: str = ""
    runtime: int | None = None
    release_date: datetime.date | None = None
    keywords: list[str] = field(default_factory=list)
    directors: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)


@dataclass
class MetadataSummary:
    source: str
    rows: int = 0
    matched_movies: int = 0
    synopses_set: int = 0
    movies_updated: int = 0
    keyword_links: int = 0
    director_links: int = 0
    cast_links: int = 0
    skipped: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        lines = [
            f"{self.source}: {self.rows:,} rows, {self.matched_movies:,} matched catalogue movies",
            f"  {self.movies_updated:,} movies got new details ({self.synopses_set:,} synopses); new links: "
            f"{self.keyword_links:,} keywords, {self.director_links:,} directors, {self.cast_links:,} cast members",
        ]
        lines += [f"  skipped {count:,}: {reason}" for reason, count in self.skipped.most_common()]
        return lines


def detect_source(path) -> str:
    """'tmdb', 'imdb' or 'hetrec' for a metadata file or folder; ReleaseError otherwise."""
    path = Path(path)
    if path.is_dir():
        if (path / "movie_directors.dat").is_file():
            return "hetrec"
        raise ReleaseError(path.name, None, "folder has no movie_directors.dat (expected the HetRec 2011 folder)")
    if not path.is_file():
        raise ReleaseError(str(path), None, "no such file or folder")
    if path.name == "movie_directors.dat":
        return "hetrec"
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        header = set(next(csv.reader(handle), []))
    if TMDB_COLUMNS <= header:
        return "tmdb"
    if IMDB_COLUMNS <= header:
        return "imdb"
    raise ReleaseError(path.name, 1, "unrecognised columns: expected the TMDB 5000 or IMDB 5000 movies CSV")


def _csv_dicts(path: Path):
    """(line number, row dict) of a UTF-8 CSV, with encoding and shape errors named by line."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            for row in reader:
                if None in row or None in row.values():
                    raise ReleaseError(path.name, reader.line_num, "wrong number of fields")
                yield reader.line_num, row
        except UnicodeDecodeError as exc:
            raise ReleaseError(path.name, reader.line_num + 1, f"bad encoding: not valid UTF-8 ({exc.reason})") from None


def read_tmdb(path: Path) -> list[MetadataRecord]:
    records = []
    for line, row in _csv_dicts(path):
        try:
            tmdb_id = int(row["id"])
            keywords = [item["name"].strip() for item in json.loads(row["keywords"] or "[]")]
            runtime = int(float(row["runtime"])) if row["runtime"].strip() else None
            released = datetime.date.fromisoformat(row["release_date"]) if row["release_date"].strip() else None
        except (ValueError, KeyError, TypeError) as exc:
            raise ReleaseError(path.name, line, f"malformed value ({exc})") from None
        records.append(
            MetadataRecord(
                tmdb_id, synopsis=row["overview"].strip(), runtime=runtime or None,
                release_date=released, keywords=[k for k in keywords if k],
            )
        )
    return records


def read_imdb(path: Path) -> list[MetadataRecord]:
    records = []
    for line, row in _csv_dicts(path):
        match = _IMDB_ID.search(row["movie_imdb_link"])
        if not match:
            raise ReleaseError(path.name, line, f"movie_imdb_link has no IMDb id: {row['movie_imdb_link']!r}")
        clean = lambda value: value.replace("\xa0", " ").strip()  # noqa: E731 (titles/names end in NBSP)
        records.append(
            MetadataRecord(
                match[1],
                directors=[d for d in [clean(row["director_name"])] if d],
                actors=[a for a in (clean(row[f"actor_{i}_name"]) for i in (1, 2, 3)) if a],
                keywords=[k for k in (clean(k) for k in row["plot_keywords"].split("|")) if k],
            )
        )
    return records


def read_hetrec(path: Path) -> list[MetadataRecord]:
    file = path / "movie_directors.dat" if path.is_dir() else path
    by_movie: dict[int, MetadataRecord] = {}
    with open(file, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if line == 1:
                continue  # "movieID directorID\tdirectorName": a space where a tab belongs.
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise ReleaseError(file.name, line, "bad encoding: not valid UTF-8") from None
            if not text.strip():
                continue
            parts = text.split("\t")
            if len(parts) != 3:
                raise ReleaseError(file.name, line, f"expected 3 tab-separated fields, found {len(parts)}")
            try:
                movie_id = int(parts[0])
            except ValueError:
                raise ReleaseError(file.name, line, f"movieID is not a whole number: {parts[0]!r}") from None
            name = parts[2].strip()
            if name:
                by_movie.setdefault(movie_id, MetadataRecord(movie_id)).directors.append(name)
    return list(by_movie.values())


SOURCES = {
    "tmdb": ("TMDB 5000", read_tmdb, "tmdb_id"),
    "imdb": ("IMDB 5000", read_imdb, "imdb_id"),
    "hetrec": ("HetRec 2011", read_hetrec, "movielens_id"),
}


def import_metadata(path) -> MetadataSummary:
    """Read one metadata file/folder (all of it, validated) and enrich matching movies in one transaction."""
    path = Path(path)
    source = detect_source(path)
    label, reader, key_field = SOURCES[source]
    records = reader(path)
    summary = MetadataSummary(source=f"{label} ({path.name})", rows=len(records))
    movie_pks = dict(Movie.objects.filter(**{f"{key_field}__isnull": False}).values_list(key_field, "pk"))
    merged: dict[int, MetadataRecord] = {}
    for record in records:
        pk = movie_pks.get(record.key)
        if pk is None:
            summary.skipped["rows matching no catalogue movie"] += 1
        elif pk in merged:
            summary.skipped["duplicate rows for the same movie (first kept)"] += 1
        else:
            merged[pk] = record
    summary.matched_movies = len(merged)
    with transaction.atomic():
        _update_movie_fields(merged, summary)
        summary.keyword_links = _link_names(merged, Keyword, "keywords", Movie.keywords.through, "keyword_id")
        summary.director_links = _link_names(merged, Director, "directors", Movie.directors.through, "director_id")
        summary.cast_links = _link_cast(merged)
    return summary


def _update_movie_fields(merged: dict[int, MetadataRecord], summary: MetadataSummary) -> None:
    movies = Movie.objects.filter(pk__in=merged).only("pk", "synopsis", "runtime", "release_date")
    changed = []
    for movie in movies:
        record, dirty = merged[movie.pk], False
        for name in ("synopsis", "runtime", "release_date"):
            value = getattr(record, name)
            if value and getattr(movie, name) != value:
                if name == "synopsis" and not movie.synopsis:
                    summary.synopses_set += 1
                setattr(movie, name, value)
                dirty = True
        if dirty:
            changed.append(movie)
    Movie.objects.bulk_update(changed, ["synopsis", "runtime", "release_date"], batch_size=1000)
    summary.movies_updated = len(changed)


def _ensure_named(model, names: set[str]) -> dict[str, int]:
    """{name: pk} for every name, creating the missing rows."""
    max_length = model._meta.get_field("name").max_length
    names = {name[:max_length] for name in names}
    existing = dict(model.objects.filter(name__in=names).values_list("name", "pk")) if names else {}
    new = [name for name in sorted(names) if name not in existing]
    if hasattr(model, "search_name"):
        objects = [model(name=n, search_name=normalize(n)) for n in new]
    else:
        objects = [model(name=n) for n in new]
    model.objects.bulk_create(objects, batch_size=2000)
    existing.update(model.objects.filter(name__in=new).values_list("name", "pk"))
    return existing


def _link_names(merged, model, attribute, link_model, target_column) -> int:
    wanted_names = {name for record in merged.values() for name in getattr(record, attribute)}
    if not wanted_names:
        return 0
    pks = _ensure_named(model, wanted_names)
    max_length = model._meta.get_field("name").max_length
    wanted = {(movie_pk, pks[name[:max_length]]) for movie_pk, record in merged.items() for name in getattr(record, attribute)}
    existing = set(link_model.objects.filter(movie_id__in=merged).values_list("movie_id", target_column))
    new = wanted - existing
    link_model.objects.bulk_create([link_model(movie_id=m, **{target_column: t}) for m, t in new], batch_size=5000)
    return len(new)


def _link_cast(merged) -> int:
    names = {name for record in merged.values() for name in record.actors}
    if not names:
        return 0
    pks = _ensure_named(Actor, names)
    existing = {(c.movie_id, c.actor_id): c for c in CastMember.objects.filter(movie_id__in=merged)}
    new, reorder = [], []
    for movie_pk, record in merged.items():
        for order, name in enumerate(record.actors):
            key = (movie_pk, pks[name[: Actor._meta.get_field("name").max_length]])
            member = existing.get(key)
            if member is None:
                new.append(CastMember(movie_id=key[0], actor_id=key[1], order=order))
                existing[key] = new[-1]
            elif member.pk and member.order != order:
                member.order = order
                reorder.append(member)
    CastMember.objects.bulk_create(new, batch_size=5000)
    CastMember.objects.bulk_update(reorder, ["order"], batch_size=5000)
    return len(new)
