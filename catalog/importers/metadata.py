"""Enrich movies already in the catalogue from public metadata files, joined by identity.

Sources, each detected by its columns (see ../shared/datasets/README.md):
- TMDB 5000 movies CSV: synopsis, keywords, runtime, release date; its `id` is the TMDB id.
- IMDB 5000 CSV: director, top three actors in billing order, plot keywords; the IMDb id is
  inside `movie_imdb_link`.
- HetRec 2011 folder: directors (movie_directors.dat) of the films movies.dat names by IMDb id.

Every source is read into pandas DataFrames, validated (errors name file, line and reason) and
joined to the catalogue through the IMDb or TMDB id links.csv gave each movie, never through a
bare MovieLens id: HetRec's movieID is not always the MovieLens movieId (of the 6,620 ids
ml-latest-small shares with it, 570 name another film), so a HetRec film whose movieID and
imdbID name two different catalogue films is skipped and counted. Duplicate rows (one id
several times) keep the first; the summary counts them, identical or conflicting. Where IMDB 5000
gives a film's director, a HetRec director contradicting it is not attached (HetRec's directors
come from Rotten Tomatoes and are sometimes another film's even when both ids are right).

One person is one row: names are matched by their spelling keys (catalog.models.name_keys:
accents and two-letter transliterations folded) and by the IMDb name ids some HetRec
directorIDs hold (`_0190859`). HetRec's names hold U+FFFD where accents were lost ("Doris
D\ufffdrrie"); each is repaired from another source's spelling of the same name, else from its
ASCII directorID (`doris_doerrie`), else kept without the broken character, and the summary
says which.

Importing again repairs a catalogue written by the earlier importer, which joined HetRec on the
MovieLens id: director credits coming only from HetRec films whose ids disagree, or contradicting
IMDB 5000, are removed,
broken names are repaired and twins merged (catalog.services.merge_people); ratings, lists and
tags are not touched. Empty fields never erase what the catalogue has; importing the same files
again changes nothing.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.db import transaction

from catalog.importers.formats import ReleaseError
from catalog.models import Actor, CastMember, Director, Keyword, Movie, name_keys
from catalog.services import merge_people
from catalog.text import normalize

TMDB_COLUMNS = {"id", "overview", "keywords", "runtime", "release_date", "title"}
IMDB_COLUMNS = {"director_name", "actor_1_name", "actor_2_name", "actor_3_name", "plot_keywords", "movie_imdb_link"}
BROKEN = "\ufffd"  # what a decoder writes for a character it lost
ROLES = {"director": Director, "actor": Actor}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@dataclass
class MetadataRecord:
    """What the sources know about one movie; empty fields mean "unknown"."""

    key: int | str
    synopsis: str = ""
    runtime: int | None = None
    release_date: object = None
    keywords: list[str] = field(default_factory=list)
    directors: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)


@dataclass
class Source:
    """One metadata file or folder as validated frames. `records` has one row per source record
    (a film), with its id under `key`, a `signature` of its content (to tell identical duplicates
    from conflicting ones) and, for HetRec, the MovieLens id it claims (`movielens_id`); the other
    frames refer to it by `record`."""

    kind: str
    label: str
    path: Path
    key: str  # the catalogue column it joins on: "tmdb_id" or "imdb_id"
    rows: int
    records: pd.DataFrame
    details: pd.DataFrame  # record, synopsis, runtime, release_date
    keywords: pd.DataFrame  # record, keyword
    credits: pd.DataFrame  # record, role, order, name, person_ref (HetRec's directorID)
    orphan_rows: int = 0  # HetRec director rows of a movieID movies.dat does not have

    @property
    def title(self) -> str:
        return f"{self.label} ({self.path.name})"


@dataclass
class MetadataSummary:
    source: str
    rows: int = 0
    records: int = 0
    matched_movies: int = 0
    synopses_set: int = 0
    movies_updated: int = 0
    keyword_links: int = 0
    director_links: int = 0
    cast_links: int = 0
    skipped: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        films = f" ({self.records:,} films)" if self.records != self.rows else ""
        lines = [
            f"{self.source}: {self.rows:,} rows{films}, {self.matched_movies:,} matched catalogue movies",
            f"  {self.movies_updated:,} movies got new details ({self.synopses_set:,} synopses); new links: "
            f"{self.keyword_links:,} keywords, {self.director_links:,} directors, {self.cast_links:,} cast members",
        ]
        lines += [f"  skipped {count:,}: {reason}" for reason, count in self.skipped.most_common()]
        return lines


@dataclass
class NameRepairs:
    """Names that held U+FFFD: {broken: (stored name, how it was repaired)}."""

    repaired: dict = field(default_factory=dict)

    FROM_SOURCE = "from another source's spelling"
    FROM_ID = "from HetRec's ASCII directorID"
    DROPPED = "kept without the broken character"

    def lines(self) -> list[str]:
        if not self.repaired:
            return []
        how = Counter(method for _, method in self.repaired.values())
        lines = [f"Names with a broken character (U+FFFD): {len(self.repaired):,}, repaired "
                 + ", ".join(f"{how[m]:,} {m}" for m in (self.FROM_SOURCE, self.FROM_ID, self.DROPPED) if how[m])]
        dropped = sorted(name for name, method in self.repaired.values() if method == self.DROPPED)
        if dropped:
            lines.append(f"  kept without the broken character: {', '.join(dropped)}")
        return lines


@dataclass
class CatalogueRepair:
    """What an import fixed in people and credits already stored (e.g. by the earlier importer)."""

    renamed: int = 0
    merged: int = 0
    wrong_links_removed: int = 0
    orphans_removed: int = 0
    examples: list = field(default_factory=list)

    def lines(self) -> list[str]:
        line = (f"Catalogue repair: {self.renamed:,} names respelled, {self.merged:,} duplicate people merged, "
                f"{self.wrong_links_removed:,} wrong director credits removed, {self.orphans_removed:,} people left "
                "without films removed")
        return [line] + [f"  {example}" for example in self.examples[:10]]


@dataclass
class MetadataReport:
    sources: list[MetadataSummary] = field(default_factory=list)
    names: NameRepairs = field(default_factory=NameRepairs)
    repair: CatalogueRepair = field(default_factory=CatalogueRepair)

    def lines(self) -> list[str]:
        lines = [line for summary in self.sources for line in summary.lines()]
        return lines + self.names.lines() + self.repair.lines()


# --- reading -----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class _Table:
    """How a file is laid out, for pandas and for the line-exact scan that explains its errors."""

    path: Path
    sep: str = ","
    encoding: str = "utf-8"
    names: tuple[str, ...] | None = None  # None: the first line is the header
    skip_header: bool = False  # a first line to ignore (HetRec's header with a space for a tab)

    @property
    def quoting(self):
        return csv.QUOTE_MINIMAL if self.sep == "," else csv.QUOTE_NONE

    def read(self, usecols=None) -> pd.DataFrame:
        """The whole file as strings (empty for missing), index = record number; errors name the line."""
        options = dict(sep=self.sep, encoding=self.encoding, dtype=str, na_filter=False, quoting=self.quoting,
                       usecols=usecols, engine="c")
        if self.names:
            options.update(header=None, names=list(self.names), skiprows=1 if self.skip_header else 0)
        if usecols and not self.names:
            with open(self.path, encoding=self.encoding, errors="replace", newline="") as handle:
                header = next(csv.reader(handle, delimiter=self.sep, quoting=self.quoting), [])
            missing = [column for column in usecols if column not in header]
            if missing:
                raise ReleaseError(self.path.name, 1, f"missing columns: {', '.join(missing)}")
        try:
            return pd.read_csv(self.path, **options)
        except UnicodeDecodeError:
            raise self._encoding_error() from None
        except pd.errors.ParserError as exc:
            raise self._shape_error(exc) from None

    def _rows(self):
        """(first line, fields) of every record, blank lines skipped, as pandas counts them."""
        with open(self.path, encoding=self.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=self.sep, quoting=self.quoting)
            line = 1
            for fields in reader:
                start, line = line, reader.line_num + 1
                if fields:
                    yield start, fields

    def line_of(self, record: int) -> int:
        """The file line where record number `record` (0-based, header excluded) starts."""
        skip = 1 if (self.names is None or self.skip_header) else 0
        for index, (line, _) in enumerate(self._rows()):
            if index - skip == record:
                return line
        return 0

    def fail(self, record: int, reason: str) -> ReleaseError:
        return ReleaseError(self.path.name, self.line_of(record) or None, reason)

    def _encoding_error(self) -> ReleaseError:
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode(self.encoding)
                except UnicodeDecodeError as exc:
                    return ReleaseError(self.path.name, number, f"bad encoding: not valid UTF-8 "
                                        f"(byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
        return ReleaseError(self.path.name, None, "bad encoding: not valid UTF-8")

    def _shape_error(self, exc) -> ReleaseError:
        expected = len(self.names) if self.names else None
        try:
            for index, (line, fields) in enumerate(self._rows()):
                if index == 0 and (self.names is None or self.skip_header):
                    expected = expected or len(fields)
                    continue
                if len(fields) != expected:
                    return ReleaseError(self.path.name, line, f"wrong number of fields: expected {expected}, "
                                        f"found {len(fields)}")
        except csv.Error as error:
            return ReleaseError(self.path.name, None, f"malformed CSV ({error})")
        return ReleaseError(self.path.name, None, f"malformed file ({exc})")


def _check(table: _Table, bad: pd.Series, reason) -> None:
    """Raise for the first record where `bad` holds; reason(record) says why."""
    if bad.any():
        record = int(bad.idxmax())
        raise table.fail(record, reason(record))


def _numbers(table: _Table, column: pd.Series, what: str, *, required: bool) -> pd.Series:
    text = column.str.strip()
    values = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = values.isna() & ((text != "") | required)
    _check(table, bad, lambda r: f"{what} is not a number: {column[r]!r}")
    return values


def _source(kind, label, path, key, rows, records, details=None, keywords=None, credits=None) -> Source:
    details = details if details is not None else pd.DataFrame(columns=["record", "synopsis", "runtime", "release_date"])
    keywords = keywords if keywords is not None else pd.DataFrame(columns=["record", "keyword"])
    if credits is None:
        credits = pd.DataFrame(columns=["record", "role", "order", "name", "person_ref"])
    return Source(kind, label, Path(path), key, rows, records, details, keywords, credits)


def read_tmdb(path) -> Source:
    """TMDB 5000 movies CSV: one record per row, keyed by its TMDB id."""
    table = _Table(Path(path))
    frame = table.read(usecols=["id", "overview", "keywords", "runtime", "release_date"])
    ids = _numbers(table, frame["id"], "id", required=True)
    _check(table, ids != ids.round(), lambda r: f"id is not a whole number: {frame['id'][r]!r}")
    runtime = _numbers(table, frame["runtime"], "runtime", required=False)
    _check(table, runtime > 32767, lambda r: f"runtime is not a plausible number of minutes: {frame['runtime'][r]!r}")
    dates = pd.to_datetime(frame["release_date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    _check(table, dates.isna() & (frame["release_date"].str.strip() != ""),
           lambda r: f"release_date is not a date (YYYY-MM-DD): {frame['release_date'][r]!r}")
    keywords = []
    for record, text in frame["keywords"].items():
        try:
            names = [item["name"].strip() for item in json.loads(text or "[]")]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise table.fail(record, f"keywords are not a JSON list of {{\"name\": ...}} ({exc})") from None
        keywords += [(record, name) for name in dict.fromkeys(names) if name]
    details = pd.DataFrame({
        "record": frame.index,
        "synopsis": frame["overview"].str.strip(),
        "runtime": (runtime.where(runtime > 0) // 1).astype("Int64"),
        "release_date": dates.dt.date.where(dates.notna(), None),
    })
    keyword_frame = pd.DataFrame(keywords, columns=["record", "keyword"])
    signature = (details["synopsis"] + "|" + details["runtime"].astype(str) + "|" + details["release_date"].astype(str)
                 + "|" + frame["keywords"])
    records = pd.DataFrame({"key": ids.astype("Int64"), "signature": signature})
    return _source("tmdb", "TMDB 5000", path, "tmdb_id", len(frame), records, details, keyword_frame)


def read_imdb(path) -> Source:
    """IMDB 5000 CSV: one record per row, keyed by the IMDb id inside movie_imdb_link."""
    table = _Table(Path(path))
    people = ["director_name", "actor_1_name", "actor_2_name", "actor_3_name"]
    frame = table.read(usecols=[*people, "plot_keywords", "movie_imdb_link"])
    imdb_ids = frame["movie_imdb_link"].str.extract(r"/title/(tt\d+)", expand=False)
    _check(table, imdb_ids.isna(), lambda r: f"movie_imdb_link has no IMDb id: {frame['movie_imdb_link'][r]!r}")
    for column in people:  # names (and titles) end in a non-breaking space in this file
        frame[column] = frame[column].str.replace("\xa0", " ").str.strip()
    credits = pd.concat(
        [pd.DataFrame({"record": frame.index, "role": "director", "order": 0, "name": frame["director_name"]})]
        + [pd.DataFrame({"record": frame.index, "role": "actor", "order": order, "name": frame[f"actor_{order + 1}_name"]})
           for order in range(3)],
        ignore_index=True,
    )
    credits = credits[credits["name"] != ""].assign(person_ref="")
    keywords = frame["plot_keywords"].str.split("|").explode().str.replace("\xa0", " ").str.strip()
    keywords = keywords[keywords.notna() & (keywords != "")]
    keyword_frame = pd.DataFrame({"record": keywords.index, "keyword": keywords.values}).drop_duplicates()
    records = pd.DataFrame({"key": imdb_ids, "signature": frame[people + ["plot_keywords"]].agg("|".join, axis=1)})
    return _source("imdb", "IMDB 5000", path, "imdb_id", len(frame), records, keywords=keyword_frame, credits=credits)


def read_hetrec(path) -> Source:
    """HetRec 2011: directors by HetRec movieID, each film identified by movies.dat's imdbID."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    films_file = folder / "movies.dat"
    if not films_file.is_file():
        raise ReleaseError(folder.name, None, "movies.dat is missing: HetRec films are identified by its imdbID "
                           "column (HetRec's movieID is not always the MovieLens movieId)")
    films_table = _Table(films_file, sep="\t", encoding="latin-1")
    films = films_table.read(usecols=["id", "imdbID"])
    film_ids = _numbers(films_table, films["id"], "id", required=True)
    imdb_numbers = _numbers(films_table, films["imdbID"], "imdbID", required=True)
    films = pd.DataFrame({"movielens_id": film_ids.astype("Int64"),
                          "key": "tt" + imdb_numbers.astype("Int64").astype(str).str.zfill(7)})
    films = films.drop_duplicates("movielens_id")

    table = _Table(folder / "movie_directors.dat", sep="\t", names=("movieID", "directorID", "directorName"),
                   skip_header=True)  # its header line has a space where a tab belongs
    rows = table.read()
    movie_ids = _numbers(table, rows["movieID"], "movieID", required=True)
    names = rows["directorName"].map(_clean_name)
    rows = rows.assign(movielens_id=movie_ids.astype("Int64"), name=names, person_ref=rows["directorID"].str.strip())
    rows = rows[rows["name"] != ""]
    known = rows["movielens_id"].isin(films["movielens_id"])
    by_film = rows[known].groupby("movielens_id", sort=False)
    records = (by_film["name"].agg(lambda names: "|".join(sorted(names))).rename("signature").reset_index()
               .merge(films, on="movielens_id", how="left"))
    record_of = pd.Series(records.index, index=records["movielens_id"])
    credits = pd.DataFrame({
        "record": record_of[rows.loc[known, "movielens_id"]].to_numpy(),
        "role": "director",
        "order": by_film.cumcount().to_numpy(),
        "name": rows.loc[known, "name"].to_numpy(),
        "person_ref": rows.loc[known, "person_ref"].to_numpy(),
    })
    source = _source("hetrec", "HetRec 2011", folder, "imdb_id", len(rows), records[["key", "signature", "movielens_id"]],
                     credits=credits)
    source.orphan_rows = int((~known).sum())
    return source


READERS = {"tmdb": read_tmdb, "imdb": read_imdb, "hetrec": read_hetrec}


def read_source(path) -> Source:
    """Read and validate one metadata file or folder (nothing is written)."""
    return READERS[detect_source(path)](path)


# --- names ---------------------------------------------------------------------------------------
def _clean_name(name: str) -> str:
    """A name as a source should have written it: HetRec writes "Director Ridley Scott" 17 times."""
    return re.sub(r"^Director\s+", "", name.strip())


def _spelling_rank(name: str) -> tuple:
    """Higher is better: no broken character, then the most accented letters (the fuller spelling)."""
    return BROKEN not in name, len(_NON_ASCII.findall(name.replace(BROKEN, "")))


def _skeleton(name: str) -> str:
    return _NON_ASCII.sub(BROKEN, name)


def _repair_from_id(name: str, person_ref: str) -> str | None:
    """'Doris D\ufffdrrie' + 'doris_doerrie' -> 'Doris Doerrie': each broken character takes the
    ASCII letters the id has in its place; None when the id does not spell this name."""
    letters = [ch for ch in name if ch == BROKEN or ch.isalnum()]
    plain = re.sub(r"[^a-z0-9]", "", normalize(person_ref).replace(" ", ""))
    if not plain or plain.isdigit():
        return None
    pattern = "".join("([a-z]{1,2})" if ch == BROKEN else re.escape(normalize(ch).replace(" ", "")) for ch in letters)
    match = re.fullmatch(pattern, plain)
    if not match:
        return None
    pieces, out = iter(match.groups()), []
    for index, ch in enumerate(name):
        if ch != BROKEN:
            out.append(ch)
            continue
        piece = next(pieces)
        after = name[index + 1: index + 2]
        word_start = index == 0 or not name[index - 1].isalpha()
        out.append(piece.capitalize() if word_start and not after.isupper() else piece)
    return "".join(out)


def repair_names(credits: pd.DataFrame, known_names=()) -> NameRepairs:
    """Repair every name holding U+FFFD in `credits` (in place) and return what was done.

    First choice: a unique name from the sources or `known_names` (e.g. the catalogue's people)
    that differs only at the broken characters; then the person's ASCII HetRec directorID; else
    the name without its broken characters.
    """
    repairs = NameRepairs()
    broken_mask = credits["name"].str.contains(BROKEN, regex=False)
    if not broken_mask.any():
        return repairs
    pool: dict[str, set[str]] = {}
    for name in set(credits.loc[~broken_mask, "name"]) | {n for n in known_names if BROKEN not in n}:
        if _NON_ASCII.search(name):
            pool.setdefault(_skeleton(name), set()).add(name)
    refs = credits[broken_mask].groupby("name")["person_ref"].agg(lambda values: sorted(set(values)))
    for broken, person_refs in refs.items():
        candidates = {c for c in pool.get(_skeleton(broken), ())
                      if all(a == b or a == BROKEN for a, b in zip(broken, c))}
        if len(candidates) == 1:
            repairs.repaired[broken] = (candidates.pop(), NameRepairs.FROM_SOURCE)
            continue
        from_id = next((fixed for ref in person_refs if (fixed := _repair_from_id(broken, ref))), None)
        if from_id:
            repairs.repaired[broken] = (from_id, NameRepairs.FROM_ID)
        else:
            repairs.repaired[broken] = (re.sub(r" {2,}", " ", broken.replace(BROKEN, "")).strip(), NameRepairs.DROPPED)
    credits["name"] = credits["name"].map(lambda n: repairs.repaired[n][0] if n in repairs.repaired else n)
    return repairs


def canonical_names(names) -> dict[str, str]:
    """{name: the best spelling among the names sharing its keys} (one person, one name)."""
    parent: dict[str, str] = {}

    def find(item):
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    first_by_key = {}
    for name in names:
        for key in name_keys(name):
            other = first_by_key.setdefault(key, name)
            parent[find(name)] = find(other)
        find(name)
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(find(name), []).append(name)
    best = {root: max(members, key=lambda n: (_spelling_rank(n), n)) for root, members in groups.items()}
    return {name: best[find(name)] for name in parent}


# --- joining -------------------------------------------------------------------------------------
@dataclass
class Joined:
    """One source's frames with the catalogue movie of each row (`movie`)."""

    summary: MetadataSummary
    details: pd.DataFrame
    keywords: pd.DataFrame
    credits: pd.DataFrame
    # Credits not attached that an earlier importer may have stored: HetRec films whose movieID and
    # imdbID disagree (movie = the one its movieID names), and directors a more trusted source contradicts.
    mismatched: pd.DataFrame


def join_source(source: Source, links: pd.DataFrame) -> Joined:
    """Attach a source's rows to catalogue movies through its id, cross-checked against the links.

    `links`: one row per movie, index = the movie (a pk, or a MovieLens id), columns
    movielens_id, imdb_id, tmdb_id (as links.csv gives them).
    """
    summary = MetadataSummary(source=source.title, rows=source.rows, records=len(source.records))
    records = source.records.copy()
    if source.orphan_rows:
        summary.skipped["director rows of a movieID movies.dat does not have"] += source.orphan_rows
    mismatched = pd.DataFrame(columns=["movie", "role", "order", "name", "person_ref"])
    if "movielens_id" in records:
        claimed = links.reset_index(names="movie").dropna(subset=["movielens_id"])
        claimed = claimed[["movie", "movielens_id", "imdb_id"]].rename(columns={"imdb_id": "links_imdb_id"})
        checked = records.reset_index(names="record").merge(claimed, on="movielens_id", how="left")
        disagree = checked["links_imdb_id"].notna() & (checked["links_imdb_id"] != checked["key"])
        summary.skipped["films whose HetRec movieID is another film in links.csv than their imdbID"] += int(disagree.sum())
        wrong = checked.loc[disagree, ["record", "movie"]]
        mismatched = wrong.merge(source.credits, on="record").drop(columns="record")
        records = records.drop(index=wrong["record"])
    duplicated = records["key"].duplicated(keep="first")
    if duplicated.any():
        first_signature = records.drop_duplicates("key").set_index("key")["signature"]
        conflicting = duplicated & (records["signature"] != records["key"].map(first_signature))
        identical = int(duplicated.sum() - conflicting.sum())
        noun = "TMDB" if source.key == "tmdb_id" else "IMDb"
        what = "films" if source.kind == "hetrec" else "rows"
        if identical:
            summary.skipped[f"duplicate {what} for one {noun} id, identical (first kept)"] += identical
        if conflicting.any():
            summary.skipped[f"duplicate {what} for one {noun} id, conflicting (first kept)"] += int(conflicting.sum())
        records = records[~duplicated]
    ids = links[source.key].dropna()
    movie_of = pd.Series(ids.index, index=ids.to_numpy())
    movie_of = movie_of[~movie_of.index.duplicated()]
    records = records.assign(movie=records["key"].map(movie_of))
    unmatched = records["movie"].isna()
    if unmatched.any():
        what = "films" if source.kind == "hetrec" else "rows"
        summary.skipped[f"{what} matching no catalogue movie"] += int(unmatched.sum())
    records = records[~unmatched]
    summary.matched_movies = records["movie"].nunique()
    movie = records["movie"]

    def attach(frame):
        frame = frame[frame["record"].isin(movie.index)]
        return frame.assign(movie=frame["record"].map(movie)).drop(columns="record")

    return Joined(summary, attach(source.details), attach(source.keywords), attach(source.credits), mismatched)


# Which source's directors win when two give a film different ones: IMDB 5000 (scraped from IMDb)
# before HetRec (whose directors come from Rotten Tomatoes and are sometimes another film's, e.g.
# "Philip Jackson" for Blade Runner with both ids right). Each lists one director per film.
DIRECTOR_TRUST = ("imdb", "hetrec")


def overrule_conflicting_directors(sources: list[Source], joined: list[Joined]) -> None:
    """Drop a less trusted source's director credit for a film a more trusted source gives other
    directors (counted in its summary; kept in `mismatched`, so an earlier import's copy goes)."""
    trusted: dict[int, set[str]] = {}
    for kind in DIRECTOR_TRUST:
        given: dict[int, set[str]] = {}
        for source, result in zip(sources, joined):
            if source.kind != kind:
                continue
            credits = result.credits
            directors = credits["role"] == "director"
            keys = credits.loc[directors, "name"].map(name_keys)
            movies = credits.loc[directors, "movie"].astype(int)
            overruled = pd.Series(
                [movie in trusted and not (name & trusted[movie]) for movie, name in zip(movies, keys)],
                index=movies.index, dtype=bool)
            if overruled.any():
                result.summary.skipped[f"director credits contradicting {_trusted_label(kind)} for the same film"] += int(
                    overruled.sum())
                result.mismatched = pd.concat([result.mismatched, credits.loc[overruled[overruled].index]],
                                              ignore_index=True)
                result.credits = credits.drop(index=overruled[overruled].index)
            for movie, name in zip(movies[~overruled], keys[~overruled]):
                given.setdefault(movie, set()).update(name)
        for movie, names in given.items():
            trusted.setdefault(movie, names)


def _trusted_label(kind: str) -> str:
    better = DIRECTOR_TRUST[: DIRECTOR_TRUST.index(kind)]
    return " or ".join({"imdb": "IMDB 5000", "hetrec": "HetRec 2011"}[k] for k in better) or "another source"


def metadata_records(paths, movies) -> dict:
    """{MovieLens id: MetadataRecord} for release movies (formats.MovieRecord: movielens_id, imdb_id,
    tmdb_id) from metadata files, joined exactly as import_metadata joins them; the first file
    that has a synopsis provides it, keywords and directors are united, the first with a cast gives it."""
    if not paths:
        return {}
    links = pd.DataFrame([(m.movielens_id, m.imdb_id, m.tmdb_id) for m in movies],
                         columns=["movielens_id", "imdb_id", "tmdb_id"]).astype({"tmdb_id": "Int64", "movielens_id": "Int64"})
    links.index = links["movielens_id"].astype(int)
    sources = [read_source(path) for path in paths]
    all_credits = pd.concat([s.credits for s in sources], ignore_index=True)
    repairs = repair_names(all_credits)
    merged: dict[int, MetadataRecord] = {}
    for source in sources:
        source.credits["name"] = source.credits["name"].map(lambda n: repairs.repaired.get(n, (n,))[0])
    results = [join_source(source, links) for source in sources]
    overrule_conflicting_directors(sources, results)
    for joined in results:
        for row in joined.details.itertuples():
            into = merged.setdefault(row.movie, MetadataRecord(row.movie))
            into.synopsis = into.synopsis or row.synopsis
        for movie, words in joined.keywords.groupby("movie")["keyword"]:
            into = merged.setdefault(movie, MetadataRecord(movie))
            into.keywords = list(dict.fromkeys(into.keywords + list(words)))
        credits = joined.credits.sort_values("order", kind="stable")
        for (movie, role), names in credits.groupby(["movie", "role"])["name"]:
            into = merged.setdefault(movie, MetadataRecord(movie))
            if role == "director":
                into.directors = list(dict.fromkeys(into.directors + list(names)))
            else:
                into.actors = into.actors or list(dict.fromkeys(names))
    spelling = canonical_names({n for r in merged.values() for n in r.directors + r.actors})
    for record in merged.values():
        record.directors = list(dict.fromkeys(spelling[n] for n in record.directors))
        record.actors = list(dict.fromkeys(spelling[n] for n in record.actors))
    return merged


# --- writing -------------------------------------------------------------------------------------
def import_metadata(paths) -> MetadataReport:
    """Read every file (all validated first: a bad one writes nothing), then enrich matching
    movies and repair stored people and credits in one transaction; see the module docstring."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sources = [read_source(path) for path in paths]
    report = MetadataReport()
    if not sources:
        return report
    known = {n for model in ROLES.values() for n in model.objects.values_list("name", flat=True)}
    all_credits = pd.concat([s.credits for s in sources], ignore_index=True)
    report.names = repair_names(all_credits, known)
    for source in sources:
        source.credits["name"] = source.credits["name"].map(lambda n: report.names.repaired.get(n, (n,))[0])
        refs = source.credits["person_ref"].str.extract(r"^_(\d{7})$", expand=False)
        source.credits["imdb_name_id"] = ("nm" + refs).where(refs.notna(), None)
    with transaction.atomic():
        _repair_stored_people(report)
        links = pd.DataFrame.from_records(
            Movie.objects.values_list("pk", "movielens_id", "imdb_id", "tmdb_id"),
            columns=["pk", "movielens_id", "imdb_id", "tmdb_id"],
        ).set_index("pk").astype({"movielens_id": "Int64", "tmdb_id": "Int64"})
        joined = [join_source(source, links) for source in sources]
        overrule_conflicting_directors(sources, joined)
        people = _resolve_people(pd.concat([j.credits for j in joined], ignore_index=True))
        for source, result in zip(sources, joined):
            _update_movie_fields(result.details, result.summary)
            result.summary.keyword_links = _link_keywords(result.keywords)
            result.summary.director_links = _link_directors(result.credits, people["director"])
            result.summary.cast_links = _link_cast(result.credits, people["actor"])
            report.sources.append(result.summary)
        _remove_wrong_credits(joined, people["director"], report.repair)
    return report


def _stored_people(model) -> pd.DataFrame:
    return pd.DataFrame.from_records(model.objects.values_list("pk", "name", "imdb_name_id"),
                                     columns=["pk", "name", "imdb_name_id"])


def _repair_stored_people(report: MetadataReport) -> None:
    """Names in the catalogue this import spells otherwise (broken ones, repaired as in this import
    or by repair_names; HetRec's "Director Ridley Scott") renamed, or merged into the person already
    spelled so; then people whose names share a spelling key merged (unless their IMDb name ids differ)."""
    for model in ROLES.values():
        stored = _stored_people(model)
        broken = stored[stored["name"].str.contains(BROKEN, regex=False)]
        missing = broken.assign(person_ref="")[~broken["name"].isin(list(report.names.repaired))]
        if len(missing):
            report.names.repaired.update(repair_names(missing, set(stored["name"])).repaired)
        fixes = {name: report.names.repaired[name][0] for name in broken["name"]}
        fixes.update({name: _clean_name(name) for name in stored["name"] if _clean_name(name) != name})
        by_name = dict(zip(stored["name"], stored["pk"]))
        for name, fixed in sorted(fixes.items()):
            person = model.objects.get(pk=by_name[name])
            twin_pk = by_name.get(fixed)
            if twin_pk and twin_pk != person.pk:
                merge_people(model.objects.get(pk=twin_pk), [person])
                report.repair.merged += 1
            else:
                merge_people(person, [], name=fixed)
                by_name[fixed] = person.pk
            report.repair.renamed += 1
            report.repair.examples.append(f"{model.__name__.lower()} {name!r} -> {fixed!r}")
        _merge_twins(model, report.repair)


def _merge_twins(model, repair: CatalogueRepair) -> None:
    stored = _stored_people(model)
    if stored.empty:
        return
    canonical = canonical_names(stored["name"])
    stored["canonical"] = stored["name"].map(canonical)
    twins = stored[stored["canonical"].duplicated(keep=False)]
    for spelling, group in twins.groupby("canonical"):
        if group["imdb_name_id"].dropna().nunique() > 1:
            continue  # the same name, two IMDb people: left apart
        people = list(model.objects.filter(pk__in=group["pk"].tolist()))
        credits = Counter(
            CastMember.objects.filter(actor__in=people).values_list("actor_id", flat=True) if model is Actor
            else Movie.directors.through.objects.filter(director__in=people).values_list("director_id", flat=True))
        people.sort(key=lambda p: (-credits[p.pk], p.pk))
        merge_people(people[0], people[1:], name=spelling)
        repair.merged += len(people) - 1
        repair.examples.append(f"{model.__name__.lower()} {', '.join(repr(p.name) for p in people)} -> {spelling!r}")


def _resolve_people(credits: pd.DataFrame, *, create: bool = True) -> dict[str, dict[str, int]]:
    """{role: {name: person pk}} for the credits' names: found by IMDb name id, then by spelling
    key; missing people created (with `create`); a fuller spelling replaces a stored one."""
    resolved = {}
    for role, model in ROLES.items():
        wanted = credits[credits["role"] == role]
        if "imdb_name_id" not in wanted:
            wanted = wanted.assign(imdb_name_id=None)
        wanted = wanted.sort_values("imdb_name_id", na_position="last", kind="stable").drop_duplicates("name")
        stored = _stored_people(model)
        by_key = {key: pk for pk, name in zip(stored["pk"], stored["name"]) for key in name_keys(name)}
        by_name_id = dict(zip(stored["imdb_name_id"].dropna(), stored.dropna(subset=["imdb_name_id"])["pk"]))
        claimed = set(by_name_id)  # IMDb name ids given to a stored or a new person
        names = dict(zip(stored["pk"], stored["name"]))
        mapping, new_by_key, created, renames, name_ids = {}, {}, [], {}, {}
        best_first = sorted(zip(wanted["name"], wanted["imdb_name_id"]), key=lambda item: _spelling_rank(item[0]),
                            reverse=True)
        for name, name_id in best_first:
            name_id = name_id if isinstance(name_id, str) and name_id not in claimed else None
            pk = by_name_id.get(name_id) or next((by_key[k] for k in name_keys(name) if k in by_key), None)
            if pk is not None:
                mapping[name] = pk
                if _spelling_rank(name) > _spelling_rank(renames.get(pk, names[pk])):
                    renames[pk] = name
                if name_id:
                    name_ids[pk] = name_id
                    claimed.add(name_id)
                continue
            person = next((new_by_key[k] for k in name_keys(name) if k in new_by_key), None)
            if person is None and create:
                person = model(name=name, search_name=normalize(name))
                created.append(person)
                new_by_key.update(dict.fromkeys(name_keys(name), person))
            if person is not None and name_id and person.imdb_name_id is None:
                person.imdb_name_id = name_id
                claimed.add(name_id)
            mapping[name] = person
        model.objects.bulk_create(created, batch_size=2000)
        if created and created[0].pk is None:  # databases that do not return pks from a bulk insert
            pks = dict(model.objects.filter(name__in=[p.name for p in created]).values_list("name", "pk"))
            for person in created:
                person.pk = pks[person.name]
        changed = []
        for pk in set(renames) | set(name_ids):
            person = model(pk=pk, name=renames.get(pk, names[pk]), imdb_name_id=name_ids.get(pk))
            person.search_name = normalize(person.name)
            changed.append(person)
        fields = ["name", "search_name"]
        model.objects.bulk_update([p for p in changed if p.pk in renames], fields, batch_size=2000)
        model.objects.bulk_update([p for p in changed if p.pk in name_ids], ["imdb_name_id"], batch_size=2000)
        resolved[role] = {name: target.pk if isinstance(target, model) else target
                          for name, target in mapping.items() if target is not None}
    return resolved


def _update_movie_fields(details: pd.DataFrame, summary: MetadataSummary) -> None:
    if details.empty:
        return
    by_movie = details.drop_duplicates("movie").set_index("movie")
    movies = Movie.objects.filter(pk__in=by_movie.index.tolist()).only("pk", "synopsis", "runtime", "release_date")
    changed = []
    for movie in movies:
        record, dirty = by_movie.loc[movie.pk], False
        for name in ("synopsis", "runtime", "release_date"):
            value = record[name]
            if pd.isna(value) or value == "":
                continue
            value = int(value) if name == "runtime" else value
            if getattr(movie, name) != value:
                if name == "synopsis" and not movie.synopsis:
                    summary.synopses_set += 1
                setattr(movie, name, value)
                dirty = True
        if dirty:
            changed.append(movie)
    Movie.objects.bulk_update(changed, ["synopsis", "runtime", "release_date"], batch_size=1000)
    summary.movies_updated = len(changed)


def _link_keywords(keywords: pd.DataFrame) -> int:
    if keywords.empty:
        return 0
    max_length = Keyword._meta.get_field("name").max_length
    keywords = keywords.assign(keyword=keywords["keyword"].str.slice(0, max_length))
    names = set(keywords["keyword"])
    existing = dict(Keyword.objects.filter(name__in=names).values_list("name", "pk"))
    Keyword.objects.bulk_create([Keyword(name=n) for n in sorted(names - set(existing))], batch_size=2000)
    existing.update(Keyword.objects.filter(name__in=names - set(existing)).values_list("name", "pk"))
    wanted = set(zip(keywords["movie"].astype(int), keywords["keyword"].map(existing)))
    return _add_links(Movie.keywords.through, "keyword_id", wanted)


def _link_directors(credits: pd.DataFrame, people: dict[str, int]) -> int:
    directors = credits[credits["role"] == "director"]
    wanted = set(zip(directors["movie"].astype(int), directors["name"].map(people)))
    return _add_links(Movie.directors.through, "director_id", wanted)


def _add_links(link_model, column: str, wanted: set) -> int:
    if not wanted:
        return 0
    movies = sorted({movie for movie, _ in wanted})
    existing = set()
    for start in range(0, len(movies), 5000):
        existing |= set(link_model.objects.filter(movie_id__in=movies[start:start + 5000]).values_list("movie_id", column))
    new = wanted - existing
    link_model.objects.bulk_create([link_model(movie_id=m, **{column: t}) for m, t in sorted(new)], batch_size=5000)
    return len(new)


def _link_cast(credits: pd.DataFrame, people: dict[str, int]) -> int:
    actors = credits[credits["role"] == "actor"]
    if actors.empty:
        return 0
    actors = actors.assign(actor=actors["name"].map(people), movie=actors["movie"].astype(int))
    actors = actors.sort_values("order", kind="stable").drop_duplicates(["movie", "actor"])
    movies = sorted(set(actors["movie"]))
    existing = {}
    for start in range(0, len(movies), 5000):
        for member in CastMember.objects.filter(movie_id__in=movies[start:start + 5000]):
            existing[(member.movie_id, member.actor_id)] = member
    new, reorder = [], []
    for movie, actor, order in zip(actors["movie"], actors["actor"], actors["order"]):
        member = existing.get((movie, actor))
        if member is None:
            new.append(CastMember(movie_id=movie, actor_id=actor, order=int(order)))
        elif member.order != order:
            member.order = int(order)
            reorder.append(member)
    CastMember.objects.bulk_create(new, batch_size=5000)
    CastMember.objects.bulk_update(reorder, ["order"], batch_size=5000)
    return len(new)


def _remove_wrong_credits(joined: list[Joined], directors: dict[str, int], repair: CatalogueRepair) -> None:
    """Director credits the earlier importer made from HetRec films whose ids disagree (it joined
    on movieID): removed unless a source gives the same credit; people left without films go.
    `directors`: {name: pk} of the credits this import gives."""
    mismatched = pd.concat([j.mismatched for j in joined], ignore_index=True)
    mismatched = mismatched[mismatched["role"] == "director"]
    if mismatched.empty:
        return
    stored = _resolve_people(mismatched.assign(imdb_name_id=None), create=False)["director"]
    mismatched = mismatched.assign(director=mismatched["name"].map(stored)).dropna(subset=["director"])
    wrong = set(zip(mismatched["movie"].astype(int), mismatched["director"].astype(int)))
    wanted = set()
    for result in joined:
        given = result.credits[result.credits["role"] == "director"]
        wanted |= set(zip(given["movie"].astype(int), given["name"].map(directors).astype(int)))
    Link = Movie.directors.through
    for movie_id, director_id in sorted(wrong - wanted):
        removed, _ = Link.objects.filter(movie_id=movie_id, director_id=director_id).delete()
        repair.wrong_links_removed += removed
        if removed and len(repair.examples) < 10:
            movie, director = Movie.objects.get(pk=movie_id), Director.objects.get(pk=director_id)
            repair.examples.append(f"{director} no longer credited with {movie}")
    touched = {director_id for _, director_id in wrong - wanted}
    orphans = Director.objects.filter(pk__in=touched, movies__isnull=True)
    repair.orphans_removed, _ = orphans.delete()


# --- checking ------------------------------------------------------------------------------------
@dataclass
class CreditAudit:
    """How far the stored directors and people are from what the sources say (see audit_credits)."""

    films_checked: int = 0
    films_with_unconfirmed_director: list = field(default_factory=list)
    broken_names: list = field(default_factory=list)
    duplicate_people: list = field(default_factory=list)

    def lines(self) -> list[str]:
        films = self.films_with_unconfirmed_director
        lines = [
            f"Films with a director no source credits to them (of {self.films_checked:,} films with "
            f"directors): {len(films):,}",
            *[f"  {line}" for line in films[:10]],
            f"Names holding U+FFFD: {len(self.broken_names):,}",
            *[f"  {name}" for name in self.broken_names[:10]],
            f"Groups of duplicate people (one spelling key, several rows): {len(self.duplicate_people):,}",
            *[f"  {line}" for line in self.duplicate_people[:10]],
        ]
        return lines


def audit_credits(paths) -> CreditAudit:
    """Compare the catalogue's directors with the metadata files (joined by identity, as the
    import joins them) and look for broken names and duplicate people. Writes nothing."""
    audit = CreditAudit()
    sources = [read_source(path) for path in paths]
    links = pd.DataFrame.from_records(Movie.objects.values_list("pk", "movielens_id", "imdb_id", "tmdb_id"),
                                      columns=["pk", "movielens_id", "imdb_id", "tmdb_id"]).set_index("pk")
    links = links.astype({"movielens_id": "Int64", "tmdb_id": "Int64"})
    all_credits = pd.concat([s.credits for s in sources], ignore_index=True)
    repairs = repair_names(all_credits)
    confirmed: dict[int, set[str]] = {}
    for source in sources:
        source.credits["name"] = source.credits["name"].map(lambda n: repairs.repaired.get(n, (n,))[0])
    results = [join_source(source, links) for source in sources]
    overrule_conflicting_directors(sources, results)
    for result in results:
        directors = result.credits[result.credits["role"] == "director"]
        for movie, name in zip(directors["movie"], directors["name"]):
            confirmed.setdefault(int(movie), set()).update(name_keys(name))
    unconfirmed: dict[int, list[str]] = {}
    checked = set()
    for movie_id, name in Movie.directors.through.objects.values_list("movie_id", "director__name"):
        checked.add(movie_id)
        spelled = _clean_name(repairs.repaired.get(name, (name.replace(BROKEN, ""),))[0])  # spelling counted apart
        if not name_keys(spelled) & confirmed.get(movie_id, set()):
            unconfirmed.setdefault(movie_id, []).append(name)
    audit.films_checked = len(checked)
    movies = Movie.objects.in_bulk(list(unconfirmed))
    audit.films_with_unconfirmed_director = sorted(
        f"{movies[pk]}: {', '.join(sorted(names))}" for pk, names in unconfirmed.items())
    for model in ROLES.values():
        names = list(model.objects.values_list("name", flat=True))
        audit.broken_names += [f"{model.__name__.lower()} {name}" for name in names if BROKEN in name]
        groups: dict[str, list[str]] = {}
        for name, spelling in canonical_names([n for n in names if BROKEN not in n]).items():
            groups.setdefault(spelling, []).append(name)
        broken_keys: dict[str, list[str]] = {}
        for name in names:
            if BROKEN in name:  # a broken name is a twin of the name it lost an accent from
                fixed = repairs.repaired.get(name, (None,))[0] or name.replace(BROKEN, "")
                twin = next((g for k in name_keys(fixed) for g in groups if k in name_keys(g)), None)
                if twin:
                    broken_keys.setdefault(twin, []).append(name)
        for spelling, members in groups.items():
            members = members + broken_keys.get(spelling, [])
            if len(members) > 1:
                audit.duplicate_people.append(f"{model.__name__.lower()}: {', '.join(sorted(members))}")
    return audit
