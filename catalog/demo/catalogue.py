"""Read and validate the demo film data files (catalog/demo/data/*.jsonl, one film per line)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

MOVIELENS_GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
FIRST_YEAR, LAST_YEAR = 1900, 2030
MIN_CAST, MAX_CAST = 3, 5
_REQUIRED = ("title", "year", "genres", "directors", "cast", "synopsis")
_OPTIONAL = ("runtime", "alternative_titles")


class DemoDataError(ValueError):
    """A demo data file is malformed; the message names the file, the line and the reason."""


@dataclass(frozen=True)
class DemoFilm:
    title: str
    year: int
    genres: tuple[str, ...]
    directors: tuple[str, ...]
    cast: tuple[str, ...]  # top-billed actors in billing order
    synopsis: str
    runtime: int | None = None
    alternative_titles: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> tuple[str, int]:
        return (self.title, self.year)


def load_films(data_dir: Path = DATA_DIR) -> list[DemoFilm]:
    """All demo films, in a stable order (files by name, then line order).

    Raises DemoDataError naming file and line for malformed JSON, missing or unknown fields,
    genres outside the MovieLens list, implausible years or runtimes, a cast outside 3-5 names,
    or a (title, year) that appears twice.
    """
    films: list[DemoFilm] = []
    seen: dict[tuple[str, int], str] = {}
    paths = sorted(Path(data_dir).glob("*.jsonl"))
    if not paths:
        raise DemoDataError(f"{data_dir}: no *.jsonl demo data files found")
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path.name}, line {line_number}"
                film = _parse_film(line, where)
                if film.key in seen:
                    raise DemoDataError(f"{where}: {film.title} ({film.year}) already appears at {seen[film.key]}")
                seen[film.key] = where
                films.append(film)
    return films


def _parse_film(line: str, where: str) -> DemoFilm:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DemoDataError(f"{where}: invalid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DemoDataError(f"{where}: expected a JSON object")
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        raise DemoDataError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(record) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise DemoDataError(f"{where}: unknown field(s) {', '.join(unknown)}")

    title = _text(record["title"], "title", where)
    year = record["year"]
    if not isinstance(year, int) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise DemoDataError(f"{where}: year must be a whole number between {FIRST_YEAR} and {LAST_YEAR}, got {year!r}")
    genres = _names(record["genres"], "genres", where)
    unknown_genres = [g for g in genres if g not in MOVIELENS_GENRES]
    if unknown_genres:
        raise DemoDataError(f"{where}: unknown genre(s) {', '.join(unknown_genres)}")
    directors = _names(record["directors"], "directors", where)
    cast = _names(record["cast"], "cast", where)
    if not MIN_CAST <= len(cast) <= MAX_CAST:
        raise DemoDataError(f"{where}: cast must list {MIN_CAST} to {MAX_CAST} actors, got {len(cast)}")
    runtime = record.get("runtime")
    if runtime is not None and (not isinstance(runtime, int) or not 1 <= runtime <= 600):
        raise DemoDataError(f"{where}: runtime must be minutes between 1 and 600, got {runtime!r}")
    alternative_titles = _names(record.get("alternative_titles", []), "alternative_titles", where, allow_empty=True)
    return DemoFilm(
        title=title,
        year=year,
        genres=genres,
        directors=directors,
        cast=cast,
        synopsis=_text(record["synopsis"], "synopsis", where),
        runtime=runtime,
        alternative_titles=alternative_titles,
    )


def _text(value, name: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DemoDataError(f"{where}: {name} must be a non-empty string")
    return value.strip()


def _names(value, name: str, where: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise DemoDataError(f"{where}: {name} must be a {'' if allow_empty else 'non-empty '}list of strings")
    names = tuple(_text(item, name, where) for item in value)
    if len(set(names)) != len(names):
        raise DemoDataError(f"{where}: {name} lists the same name twice")
    return names
