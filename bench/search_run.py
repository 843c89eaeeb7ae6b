"""The parts of `python -m bench search` that run inside Django, one database per process.

    DATABASE_URL=... python -m bench.search_run quality [queries.csv]   # JSON report on stdout
    DATABASE_URL=... python -m bench.search_run generate MOVIES PEOPLE SMALL IMDB_CSV  # a generated catalogue
    DATABASE_URL=... python -m bench.search_run latency REPEATS         # JSON timings on stdout

Quality: each line of bench/data/search_queries.csv names a query, what a person typing it means
(a film "Title (Year)", several separated by "|", or a person's name), optionally more words that
belong to the same franchise, and its set: "development" queries were written while the search
was being built (and looked at), "held-out" ones after it was frozen and never tuned for. A query is a hit when an intended film is among the first 3
films found (for a person: the person among the first 3 people found). A film in the first 5 is
*related* when it is an intended film, when its title shares a significant word (not "the", "a",
"an", "and", "of"; a plural "s" forgiven) with the query, the query's abbreviation expansion,
an intended title or the franchise words, or, for a person, when that person directed it or plays
in it. Every other film there is *unrelated*.
"""
from __future__ import annotations

import csv
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "search_queries.csv"
TITLE_YEAR = re.compile(r"^(?P<title>.*) \((?P<year>\d{4})\)$")


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")
    import django

    django.setup()


# --- Quality -----------------------------------------------------------------------------------


def _significant(text: str) -> set[str]:
    from catalog.search import OPTIONAL_WORDS
    from catalog.text import normalize

    words = set(normalize(text).split()) - OPTIONAL_WORDS
    return words | {word[:-1] for word in words if word.endswith("s") and len(word) > 3}


def _intended_films(intended: str) -> list:
    from catalog.models import Movie

    films = []
    for item in intended.split("|"):
        match = TITLE_YEAR.match(item.strip())
        if not match:
            raise ValueError(f"intended film {item!r} is not 'Title (Year)'")
        found = list(Movie.objects.filter(title=match["title"], year=int(match["year"])))
        if not found:
            raise ValueError(f"intended film {item!r} is not in the catalogue")
        films.extend(found)
    return films


def _person_films(name: str) -> set[int]:
    from catalog.models import CastMember, Movie

    return set(Movie.objects.filter(directors__name=name).values_list("id", flat=True)) | set(
        CastMember.objects.filter(actor__name=name).values_list("movie_id", flat=True)
    )


def judge(row: dict) -> dict:
    """Search one query of the list; whether it found what was meant and how much of the top 5 is unrelated."""
    from catalog.search import readings_of, search_catalogue
    from catalog.text import normalize

    found = search_catalogue(row["query"])
    films = found.movies
    shared = set()
    for reading in readings_of(normalize(row["query"])):
        shared |= _significant(reading.text)
    shared |= _significant(row.get("also_related") or "")
    if row["kind"] == "film":
        intended = _intended_films(row["intended"])
        intended_ids = {film.pk for film in intended}
        for film in intended:
            shared |= _significant(film.search_title)
        hit = any(film.pk in intended_ids for film in films[:3])
        person_films = set()
    else:
        intended_ids = set()
        hit = any(person.name == row["intended"] for person in found.people[:3])
        person_films = _person_films(row["intended"])

    def related(film) -> bool:
        return film.pk in intended_ids or film.pk in person_films or bool(_significant(film.search_title) & shared)

    top5 = films[:5]
    unrelated = [str(film) for film in top5 if not related(film)]
    return {
        "query": row["query"],
        "set": row.get("set") or "development",
        "category": row["category"],
        "hit": hit,
        "unrelated_in_top5": len(unrelated),
        "unrelated": unrelated,
        "top5": [str(film) for film in top5],
        "people": [person.name for person in found.people[:3]],
    }


def quality(path: Path = DATA) -> dict:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    results = [judge(row) for row in rows]
    return {
        "queries": len(results),
        "hits": sum(result["hit"] for result in results),
        "clean": sum(result["unrelated_in_top5"] <= 1 for result in results),
        "results": results,
    }


# --- A generated catalogue for latency ----------------------------------------------------------


def _real_parts(small: Path, imdb: Path) -> tuple[list[str], list[str], list[str]]:
    """Title words (as often as they occur) from ml-latest-small's titles, first and last names
    from the IMDB 5000 file's directors and actors: generated titles and names then look like
    real ones to the indexes (same letters, same word lengths), without copying any title or name."""
    from catalog.importers.formats import parse_title

    words = []
    with open(small / "movies.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            words.extend(parse_title(row["title"])[0].split())
    firsts, lasts = set(), set()
    with open(imdb, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for column in ("director_name", "actor_1_name", "actor_2_name", "actor_3_name"):
                parts = (row.get(column) or "").split()
                if len(parts) >= 2:
                    firsts.add(parts[0])
                    lasts.add(parts[-1])
    return words, sorted(firsts), sorted(lasts)


def generate(movies: int, people: int, small: Path, imdb: Path, seed: int = 13) -> None:
    """Add `movies` films and `people` directors and actors (one in ten a director), one director
    and six actors per film. Titles are 1-6 words drawn from the words of real titles, names a real
    first name and one or two real last names, recombined (see _real_parts)."""
    from django.db import connection, transaction
    from tqdm import tqdm

    from catalog.models import Actor, CastMember, Director, Movie
    from catalog.text import normalize

    rng = random.Random(seed)
    words, firsts, lasts = _real_parts(small, imdb)
    names = set()
    while len(names) < people:
        names.add(" ".join([rng.choice(firsts), *rng.sample(lasts, 2 if rng.random() < 0.1 else 1)]))
    names = sorted(names)
    rng.shuffle(names)
    director_names, actor_names = names[: people // 10], names[people // 10 :]
    with transaction.atomic():
        Director.objects.bulk_create(
            [Director(name=name, search_name=normalize(name)) for name in director_names], batch_size=5000
        )
        Actor.objects.bulk_create([Actor(name=name, search_name=normalize(name)) for name in actor_names], batch_size=5000)
        created = []
        for _ in tqdm(range(movies), desc="movies", unit="film", mininterval=5):
            title = " ".join(rng.choices(words, k=rng.choice((1, 2, 2, 3, 3, 4, 5, 6))))
            created.append(
                Movie(title=title, year=rng.randint(1920, 2024), search_title=normalize(title),
                      rating_count=int(rng.paretovariate(1.2)) - 1)
            )
        Movie.objects.bulk_create(created, batch_size=5000)
        movie_ids = list(Movie.objects.values_list("id", flat=True))
        director_ids = list(Director.objects.values_list("id", flat=True))
        actor_ids = list(Actor.objects.values_list("id", flat=True))
        Through = Movie.directors.through
        Through.objects.bulk_create(
            [Through(movie_id=movie_id, director_id=rng.choice(director_ids)) for movie_id in movie_ids], batch_size=5000
        )
        cast = []
        for movie_id in movie_ids:
            for order, actor_id in enumerate(rng.sample(actor_ids, 6)):
                cast.append(CastMember(movie_id=movie_id, actor_id=actor_id, order=order))
        CastMember.objects.bulk_create(cast, batch_size=10000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would soon: plans for tables of this size


# --- Latency -------------------------------------------------------------------------------------


def _typo(rng: random.Random, text: str) -> str:
    """One letter swapped with its neighbour in the longest word."""
    words = text.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[longest]
    if len(word) >= 4:
        i = rng.randrange(1, len(word) - 2)
        words[longest] = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return " ".join(words)


def latency_queries(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(kind, query) pairs drawn from the catalogue: whole titles, a title's first word, names,
    last names, and each of those with a typo."""
    from catalog.models import Actor, Director, Movie

    titles = list(Movie.objects.order_by("?").values_list("title", flat=True)[: n])
    names = list(Actor.objects.order_by("?").values_list("name", flat=True)[: n // 2]) + list(
        Director.objects.order_by("?").values_list("name", flat=True)[: n // 2]
    )
    queries = []
    for i in range(n):
        title, name = titles[i % len(titles)], names[i % len(names)]
        queries += [
            ("title", title),
            ("title word", title.split()[0]),
            ("name", name),
            ("last name", name.split()[-1]),
            ("title typo", _typo(rng, title)),
            ("name typo", _typo(rng, name)),
        ]
    return queries


def _percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
        "n": len(ordered),
    }


def latency(repeats: int, seed: int = 7) -> dict:
    """p50/p99 of search_catalogue per query kind, and of the reference: a movie by primary key
    with its genres (what a movie page starts with), timed in the same process over the same ids."""
    from django.db import connection

    from catalog.models import Movie
    from catalog.search import search_catalogue

    rng = random.Random(seed)
    queries = latency_queries(rng, repeats)
    ids = list(Movie.objects.values_list("id", flat=True))
    search_catalogue(queries[0][1])  # the connection open, the modules imported
    reference, by_kind = [], {}
    for kind, query in queries:
        pk = rng.choice(ids)
        started = time.perf_counter()
        Movie.objects.prefetch_related("genres").get(pk=pk)
        reference.append(time.perf_counter() - started)
        started = time.perf_counter()
        search_catalogue(query)
        by_kind.setdefault(kind, []).append(time.perf_counter() - started)
    every = [seconds for times in by_kind.values() for seconds in times]
    return {
        "vendor": connection.vendor,
        "movies": Movie.objects.count(),
        "reference": _percentiles(reference),
        "search": _percentiles(every),
        "by_kind": {kind: _percentiles(times) for kind, times in by_kind.items()},
    }


def main(argv: list[str]) -> None:
    _setup_django()
    command = argv[0]
    if command == "quality":
        print(json.dumps(quality(Path(argv[1]) if len(argv) > 1 else DATA)))
    elif command == "generate":
        generate(int(argv[1]), int(argv[2]), small=Path(argv[3]), imdb=Path(argv[4]))
    elif command == "latency":
        print(json.dumps(latency(int(argv[1]))))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
